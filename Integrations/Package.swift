// swift-tools-version:6.0
import PackageDescription

// Adapters from SocketServer to the Swift server ecosystem. A package of its
// own, so that what they use never becomes a dependency of the library.
let package = Package(
    name: "SocketServerIntegrations",
    products: [
        .library(name: "SocketServerLogging", targets: ["SocketServerLogging"]),
        .library(name: "SocketServerLifecycle", targets: ["SocketServerLifecycle"]),
        .library(name: "SocketServerMetrics", targets: ["SocketServerMetrics"]),
    ],
    dependencies: [
        .package(name: "SocketServer", path: ".."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    ],
    targets: [
        .target(name: "SocketServerLogging", dependencies: [
            .product(name: "SocketServer", package: "SocketServer"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "SocketServerLifecycle", dependencies: [
            .product(name: "SocketServer", package: "SocketServer"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "SocketServerMetrics", dependencies: [
            .product(name: "SocketServer", package: "SocketServer"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "IntegrationsTests", dependencies: [
            "SocketServerLogging", "SocketServerLifecycle", "SocketServerMetrics",
            .product(name: "SocketServer", package: "SocketServer"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
