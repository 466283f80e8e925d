// swift-tools-version:6.0
import PackageDescription

/// The sample executables (Samples/NAME/main.swift), described in Samples/README.md.
let samples = ["timestamp-server", "timestamp-client", "chat-server", "chat-client",
               "echo-server", "file-server", "file-client"]

let package = Package(
    name: "SocketServer",
    products: [
        .library(name: "SocketServer", targets: ["SocketServer"]),
        // TLS over the system's OpenSSL 3: a separate product, so that
        // `SocketServer` alone never compiles or links OpenSSL.
        .library(name: "SocketServerTLS", targets: ["SocketServerTLS"]),
    ] + samples.map { .executable(name: $0, targets: [$0]) },
    targets: [
        // A few libc calls Swift's Glibc module hides without _GNU_SOURCE.
        .target(name: "CSocketServer"),
        .target(name: "SocketServer", dependencies: ["CSocketServer"]),
        // What the test targets share: temporary directories, bounded waits,
        // threads, processes, files, sockets, certificates.
        .target(name: "TestSupport", dependencies: ["SocketServer"], path: "Tests/TestSupport"),
        .testTarget(name: "SocketServerTests", dependencies: ["SocketServer", "TestSupport", "activation-echo"]),
        // A test-only echo server for the socket activation and restart tests.
        .executableTarget(name: "activation-echo", dependencies: ["SocketServer"], path: "Tests/activation-echo"),
        // TLS on the system's OpenSSL 3 (a C library, not a package); SocketServer never depends on it.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
        .target(name: "SocketServerTLS", dependencies: ["SocketServer", "COpenSSL"]),
        .testTarget(name: "SocketServerTLSTests", dependencies: ["SocketServerTLS", "SocketServer", "TestSupport"]),
        // What the samples share: option parsing, the signal-to-shutdown
        // wiring, the `listening on` and error lines.
        .target(name: "SampleSupport", dependencies: ["SocketServer", "SocketServerTLS"], path: "Samples/SampleSupport"),
    ] + samples.map {
        .executableTarget(name: $0, dependencies: ["SampleSupport", "SocketServer"], path: "Samples/\($0)")
    } + [
        // Starts the built samples and talks to them; depends on them so they are built first.
        .testTarget(name: "SampleTests", dependencies: ["SocketServer", "SampleSupport", "TestSupport"] + samples.map { .target(name: $0) },
                    path: "Tests/SampleTests"),
        // Fuzz targets (Fuzz/README.md): libFuzzer binaries when built by
        // Fuzz/run.sh (-sanitize=fuzzer -DFUZZING), corpus replayers otherwise.
        // Targets, not products: nothing for users of the package.
        .target(name: "CFuzzer", path: "Fuzz/CFuzzer"),
        .executableTarget(name: "fuzz-readline", dependencies: ["SampleSupport", "CFuzzer"], path: "Fuzz/readline"),
        .executableTarget(name: "fuzz-file-request", dependencies: ["SampleSupport", "CFuzzer"], path: "Fuzz/file-request"),
        .executableTarget(name: "fuzz-proxy-header", dependencies: ["SampleSupport", "CFuzzer"], path: "Fuzz/proxy-header"),
    ],
    swiftLanguageModes: [.v6]
)
