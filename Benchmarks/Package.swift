// swift-tools-version:6.0
//
// Benchmark harness for the project. This is deliberately a separate package:
// nothing it compares against (SwiftNIO, ...) becomes a dependency of the
// library in the parent folder. See README.md; the whole comparison is run by
// `./run.sh`.
import PackageDescription

let package = Package(
    name: "Benchmarks",
    products: [
        .executable(name: "nio-echo-server", targets: ["nio-echo-server"]),
        .executable(name: "nio-tls-echo-server", targets: ["nio-tls-echo-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Only nio-tls-echo-server uses it: building just nio-echo-server
        // (--product) does not compile its BoringSSL.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
    ],
    targets: [
        .executableTarget(
            name: "nio-echo-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "nio-tls-echo-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
