import ServiceLifecycle
import SocketServer

/// A server as a swift-service-lifecycle `Service`: run it in a
/// `ServiceGroup`, which stops it gracefully on SIGTERM.
///
/// ```swift
/// let server = try ThreadingTCPServer(("0.0.0.0", 8000), Echo.self)
/// let group = ServiceGroup(configuration: .init(
///     services: [SocketServerService(server.control)],
///     gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()
/// ```
///
/// On graceful shutdown the server drains (``SocketServer/ServerControl/beginDrain(delay:grace:)``):
/// its state turns `draining`, it goes on serving for `drainDelay` seconds
/// (for a load balancer to notice), stops accepting, and gives the
/// requests in progress `gracePeriod` seconds before it cuts them; `run()`
/// returns once that is done. Task cancellation cuts at once.
public struct SocketServerService: Service {
    /// The server's control.
    public let control: ServerControl
    /// Seconds to keep serving after a graceful shutdown begins.
    public let drainDelay: Double
    /// Seconds the requests in progress get before they are cut.
    public let gracePeriod: Double

    /// A service for the server that `control` belongs to.
    public init(_ control: ServerControl, drainDelay: Double = 0, gracePeriod: Double = 10) {
        self.control = control
        self.drainDelay = drainDelay
        self.gracePeriod = gracePeriod
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await control.run()
        } onGracefulShutdown: { [control, drainDelay, gracePeriod] in
            control.beginDrain(delay: drainDelay, grace: gracePeriod)
        }
    }
}
