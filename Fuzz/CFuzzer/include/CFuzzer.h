// libFuzzer's driver, for the fuzz targets built with -sanitize=fuzzer.
// SwiftPM names an executable's entry point MODULE_main and links it as
// `main`, so libFuzzer's own main is never linked in: the targets' @main
// calls LLVMFuzzerRunDriver instead (only in a -DFUZZING build; the
// declaration alone costs nothing in a normal one).
#ifndef CFUZZER_H
#define CFUZZER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
