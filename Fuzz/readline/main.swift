// fuzz-readline: SocketReader against a reference model (ReaderCheck, in
// SampleSupport), in memory and over a socket pair fed in chunks.
//
// Built with `-sanitize=fuzzer,address -DFUZZING` (Fuzz/run.sh) it is a
// libFuzzer binary and takes libFuzzer's options; in a normal build it
// replays corpus files: `fuzz-readline FILE|DIR...`. See Fuzz/README.md.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SampleSupport

#if FUZZING
import CFuzzer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    do {
        try ReaderCheck.check(input)
    } catch {
        printError("fuzz-readline: FAILED: \(error)\n")
        abort()  // libFuzzer saves the input as a crash
    }
    return 0
}
#endif

@main struct FuzzReadline {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        exit(FuzzCorpus.replay(Array(CommandLine.arguments.dropFirst()), tool: "fuzz-readline") {
            try ReaderCheck.check($0)
        })
        #endif
    }
}
