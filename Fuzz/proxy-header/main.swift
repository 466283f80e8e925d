// fuzz-proxy-header: the PROXY protocol parser (ProxyHeaderCheck, in
// SampleSupport): ProxyHeader.parse and ProxyHeader.read on any bytes.
//
// Built with `-sanitize=fuzzer,address -DFUZZING` (Fuzz/run.sh) it is a
// libFuzzer binary and takes libFuzzer's options; in a normal build it
// replays corpus files: `fuzz-proxy-header FILE|DIR...`. See Fuzz/README.md.
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
        try ProxyHeaderCheck.check(input)
    } catch {
        printError("fuzz-proxy-header: FAILED: \(error)\n")
        abort()  // libFuzzer saves the input as a crash
    }
    return 0
}
#endif

@main struct FuzzProxyHeader {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        exit(FuzzCorpus.replay(Array(CommandLine.arguments.dropFirst()), tool: "fuzz-proxy-header") {
            try ProxyHeaderCheck.check($0)
        })
        #endif
    }
}
