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
        .executable(name: "nio-echo-server", targets: ["nio-echo-server"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        .executableTarget(
            name: "nio-echo-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
