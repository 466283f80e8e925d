// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SocketServer",
    products: [
        .library(name: "SocketServer", targets: ["SocketServer"]),
    ],
    targets: [
        // A few libc calls Swift's Glibc module hides without _GNU_SOURCE.
        .target(name: "CSocketServer"),
        .target(name: "SocketServer", dependencies: ["CSocketServer"]),
        .testTarget(name: "SocketServerTests", dependencies: ["SocketServer"]),
    ],
    swiftLanguageModes: [.v6]
)
