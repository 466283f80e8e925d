/// The base of request handlers (Python's `BaseRequestHandler`).
///
/// A server makes one handler per request and runs ``setup()``,
/// ``handle()`` and ``finish()``; `finish` runs even when `handle` throws.
/// What they throw reaches the server's
/// ``BaseServer/handleError(_:request:clientAddress:)``.
///
/// Subclass ``StreamRequestHandler`` (TCP, Unix stream) or
/// ``DatagramRequestHandler`` (UDP, Unix datagram) and override `handle()`.
open class BaseRequestHandler {
    /// What the server received: a connection, or a datagram with its socket.
    public let request: Request
    /// The peer's address.
    public let clientAddress: SocketAddress
    /// The server that made this handler.
    public let server: BaseServer
    /// What ran before the handler on this connection (the stages of
    /// ``BaseServer/connectionStages``); nil when nothing did.
    public internal(set) var context: ConnectionContext?

    /// Made by the server for each request (``BaseServer/finishRequest(_:clientAddress:)``),
    /// or by ``HandlerHarness`` in a test; a subclass that overrides it calls `super`.
    public required init(request: Request, clientAddress: SocketAddress, server: BaseServer) {
        self.request = request
        self.clientAddress = clientAddress
        self.server = server
    }

    /// Bytes counted with ``countTraffic(received:sent:)``.
    private var otherReceived: UInt64 = 0
    private var otherSent: UInt64 = 0

    /// Counts bytes that went over the connection other than through the
    /// handler's streams (`rfile`/`wfile` count themselves): a raw
    /// `connection.send`, or a thread of the handler's own writing to the
    /// connection. The counts join the connection's summary (`in=`/`out=`
    /// of the `connection.closed` event) and ``BaseServer/stats``. Call it
    /// from the handler's thread, before ``handle()`` returns.
    public func countTraffic(received: Int = 0, sent: Int = 0) {
        precondition(received >= 0 && sent >= 0, "countTraffic: negative count")
        otherReceived &+= UInt64(received)
        otherSent &+= UInt64(sent)
    }

    /// What the handler received and sent (for the server's stats and its
    /// `connection.closed` event). A subclass adds what its streams counted.
    var traffic: (received: UInt64, sent: UInt64) { (otherReceived, otherSent) }

    /// Called before ``handle()``. Base: nothing.
    open func setup() throws {}

    /// Serves the request. Base: nothing.
    open func handle() throws {}

    /// Called after ``handle()``, even when it threw. Base: nothing.
    open func finish() throws {}

    /// Runs ``setup()``, ``handle()`` and ``finish()``. If `handle` throws,
    /// `finish` still runs and `handle`'s error is the one thrown.
    public final func run() throws {
        try setup()
        do {
            try handle()
        } catch {
            try? finish()
            throw error
        }
        try finish()
    }
}
