/// One accepted stream connection on its way to its handler, on the
/// handler's own thread: what the steps before the handler learned and
/// changed (a PROXY protocol header read, a TLS handshake made).
///
/// A server with no ``ConnectionStage`` makes none: the handler then reads
/// and writes the socket directly. With stages, ``BaseServer`` makes one
/// per connection, runs the stages in order over it, and gives it to the
/// handler as ``BaseRequestHandler/context``; a ``StreamRequestHandler``'s
/// `rfile`/`wfile` then read and write ``stream``, starting with the bytes
/// ``reader`` already buffered.
///
/// Not shared between threads: it lives on the connection's thread.
public final class ConnectionContext {
    /// The accepted socket.
    public let socket: Socket
    /// The address of the peer that connected: the client itself, or the
    /// proxy in front of it.
    public let peerAddress: SocketAddress
    /// The client, as the handler sees it: the peer, or the source a
    /// trusted proxy named (PROXY protocol).
    public var clientAddress: SocketAddress
    /// What `rfile` and `wfile` read and write: the socket, or a stream
    /// over it (a TLS session).
    public var stream: any ByteStream
    /// A reader made over ``stream`` by a stage that read through it (a
    /// PROXY header): the handler's `rfile` is this reader, so bytes it
    /// buffered past what the stage took are not lost. A stage that
    /// replaces ``stream`` takes those bytes first (``SocketReader/takeBuffered()``)
    /// and sets this to nil.
    public var reader: SocketReader?
    /// The connection's id in the server's events (0 outside a server).
    public internal(set) var id: UInt64 = 0
    /// Facts a stage adds to the connection's `connection.closed` log
    /// record (`tls=TLSv1.3`).
    public var logFields: [LogField] = []
    /// The per-client slot the connection holds (changed when a PROXY
    /// header names the client).
    var clientKey: ClientKey?
    private var values: [ObjectIdentifier: Any] = [:]

    /// A context for `socket`, accepted from `peerAddress`.
    public init(socket: Socket, peerAddress: SocketAddress) {
        self.socket = socket
        self.peerAddress = peerAddress
        self.clientAddress = peerAddress
        self.stream = socket
    }

    /// What a stage recorded under `key` (the TLS session, the PROXY
    /// header); nil if none did.
    public subscript<Key: ConnectionContextKey>(key: Key.Type) -> Key.Value? {
        get { values[ObjectIdentifier(key)] as? Key.Value }
        set { values[ObjectIdentifier(key)] = newValue }
    }

    /// The reader over ``stream``: ``reader`` if a stage made one, else a
    /// new one, kept as ``reader``.
    public func makeReader(bufferSize: Int = SocketReader.defaultBufferSize) -> SocketReader {
        if let reader, reader.stream === stream { return reader }
        let made = SocketReader(stream: stream, bufferSize: bufferSize)
        reader = made
        return made
    }
}

/// A key for a value a ``ConnectionStage`` records in a ``ConnectionContext``.
public protocol ConnectionContextKey {
    /// The type of the value.
    associatedtype Value
}

/// A step that runs on a connection's thread before its handler: reads a
/// header, makes a handshake, changes the stream. Throwing ends the
/// connection without running the handler; the error goes to
/// ``BaseServer/handleError(_:request:clientAddress:)`` (a peer that went
/// away is reported quietly, as always).
///
/// Stages run in ``BaseServer/connectionStages`` order, after the
/// library's own (the PROXY protocol header comes first, before any TLS
/// handshake). They must not keep the connection beyond the call.
public protocol ConnectionStage: Sendable {
    /// Prepares `connection` for its handler.
    func prepare(_ connection: ConnectionContext, server: BaseServer) throws
}

/// What the server keeps of the request the calling thread is serving, on
/// that thread's stack for the request's length: the context, if stages
/// made one, and what the handler counted. Set by the server around
/// ``BaseServer/finishRequest(_:clientAddress:)``, so that the
/// Python-shaped hook needs no extra parameter, and so that a connection
/// with no stages costs no context object.
struct ConnectionSlot {
    /// The connection's id in the server's events.
    let id: UInt64
    /// The context the stages ran over; nil when there were none.
    var context: ConnectionContext?
    /// Bytes the handler received and sent (set when it ends).
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0

    init(id: UInt64) { self.id = id }
}

enum CurrentConnection {
    private static let current = ThreadSpecific()

    /// The calling thread's slot; nil outside ``with(_:_:)``.
    static var slot: UnsafeMutablePointer<ConnectionSlot>? {
        current.value?.assumingMemoryBound(to: ConnectionSlot.self)
    }

    /// Runs `body` with `slot` as the thread's current one.
    static func with<R>(_ slot: inout ConnectionSlot, _ body: () throws -> R) rethrows -> R {
        try withUnsafeMutablePointer(to: &slot) { pointer in
            current.set(UnsafeMutableRawPointer(pointer))
            defer { current.set(nil) }
            return try body()
        }
    }
}
