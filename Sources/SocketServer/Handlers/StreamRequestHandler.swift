/// A handler for a connection, with buffered streams over it (Python's
/// `StreamRequestHandler`):
///
/// ```swift
/// final class Echo: StreamRequestHandler {
///     override func handle() throws {
///         while let line = try rfile.readLine() { try wfile.write(line) }
///     }
/// }
/// ```
///
/// Settings, overridable in a subclass: ``rbufsize``, ``wbufsize`` (0:
/// every write is sent at once), ``timeout`` (applied to the connection in
/// ``setup()``), ``disableNagleAlgorithm``.
///
/// Writes to ``wfile`` are sent when the handler next waits for input,
/// when the buffer fills, at `flush()` and at ``finish()``, and at once when
/// no more input is buffered: a request/response exchange costs one `send`
/// per reply, and pipelined requests get their replies batched. A handler
/// that writes without reading, from a loop that never reads, should call
/// `wfile.flush()` (or set `wbufsize` to 0) to send at once.
open class StreamRequestHandler: BaseRequestHandler {
    /// The read buffer size.
    open var rbufsize: Int { SocketReader.defaultBufferSize }
    /// The write buffer size; 0 for unbuffered writes (Python's default).
    open var wbufsize: Int { SocketWriter.defaultBufferSize }
    /// A time-out in seconds for every call on the connection; nil: none.
    /// A peer that stays silent past it ends the handler with
    /// ``SocketError/timeout(operation:address:)``; so does one that trickles
    /// a line slower than that: the time-out covers a whole
    /// `rfile.readLine`, not each `recv` (slowloris).
    open var timeout: Double? { nil }
    /// Sets TCP_NODELAY on the connection.
    open var disableNagleAlgorithm: Bool { false }

    // Made together on first use (they are paired); kept apart so that
    // each access in a handler's loop touches one object, not both.
    private var reader: SocketReader?
    private var writer: SocketWriter?

    /// The connected socket.
    public var connection: Socket { request.socket }

    /// What ``rfile`` and ``wfile`` read and write: the connection, or the
    /// stream a stage put over it (a TLS session). Write to this, not to
    /// ``connection``, when writing around `wfile` (from another thread,
    /// say), so that TLS still applies.
    public var stream: any ByteStream { context?.stream ?? connection }

    /// The buffered reader over the connection.
    public var rfile: SocketReader {
        if let reader { return reader }
        return makeStreams().reader
    }

    /// The buffered writer over the connection.
    public var wfile: SocketWriter {
        if let writer { return writer }
        return makeStreams().writer
    }

    private func makeStreams() -> (reader: SocketReader, writer: SocketWriter) {
        let made: (SocketReader, SocketWriter)
        if let context {
            made = context.stream.makeStreams(readBufferSize: rbufsize, writeBufferSize: wbufsize,
                                              reader: context.makeReader(bufferSize: rbufsize))
        } else {
            made = connection.makeStreams(readBufferSize: rbufsize, writeBufferSize: wbufsize)
        }
        reader = made.0
        writer = made.1
        return made
    }

    override var traffic: (received: UInt64, sent: UInt64) {
        let other = super.traffic
        return (other.received &+ (reader?.receivedCount ?? 0), other.sent &+ (writer?.sentCount ?? 0))
    }

    /// Applies ``timeout`` and ``disableNagleAlgorithm`` to the connection.
    open override func setup() throws {
        if let timeout { try connection.setTimeout(timeout) }
        if disableNagleAlgorithm && connection.family != .unix { try connection.setOption(.noDelay, true) }
    }

    /// Flushes ``wfile`` (a peer that has gone is ignored here: the error,
    /// if any, was already reported), then closes both streams.
    open override func finish() throws {
        guard let reader, let writer else { return }
        do {
            try writer.flush()
        } catch is SocketError {
            // As Python: a final socket error on a dead connection is not news.
        }
        try? writer.close()
        reader.close()
    }
}

/// A handler for one datagram (Python's `DatagramRequestHandler`): the
/// datagram is in ``rfile``; what is written to ``wfile`` is sent back to
/// the client as one datagram by ``finish()`` (nothing is sent when nothing
/// was written; Python sends an empty datagram).
open class DatagramRequestHandler: BaseRequestHandler {
    /// The datagram received.
    public var packet: [UInt8] { request.packet ?? [] }
    /// The server's socket, for replies.
    public var socket: Socket { request.socket }

    private var reader: SocketReader?
    /// The datagram, as a reader.
    public var rfile: SocketReader {
        if let reader { return reader }
        let r = SocketReader(bytes: packet)
        reader = r
        return r
    }

    /// Collects the reply.
    public let wfile = SocketWriter()

    override var traffic: (received: UInt64, sent: UInt64) {
        let other = super.traffic
        return (other.received &+ UInt64(packet.count), other.sent &+ UInt64(wfile.heldCount))
    }

    /// Sends the reply in ``wfile`` to the client as one datagram. For a
    /// client without an address (an unbound Unix socket) the reply goes
    /// over the socket itself if it is connected (a socketpair), else
    /// nowhere.
    open override func finish() throws {
        let reply = wfile.bytes
        guard !reply.isEmpty else { return }
        if clientAddress.family == .unix && (clientAddress.path ?? "").isEmpty {
            do { _ = try socket.send(reply) } catch Errno.notConnected {} catch Errno.destinationAddressRequired {}
            return
        }
        try socket.sendTo(reply, clientAddress)
    }
}
