/// The bytes of one connection, as the buffered streams read and write
/// them: a ``Socket`` is one; a TLS session over a socket
/// (`SocketServerTLS`) is another.
///
/// ``SocketReader`` and ``SocketWriter`` work over any `ByteStream`, so
/// bounded lines, batching, the whole-line deadline and sticky errors hold
/// for every transport alike.
///
/// Deadlines: an operation made of several calls (one `readLine` that
/// needs several receives, a `sendAll` after a partial send) passes the
/// same `deadline` to each call. It is a monotonic time in nanoseconds
/// (``Socket/monotonicNanos()``), 0 until the operation has to wait a
/// second time and starts it with ``Socket/startDeadline(_:)``. A
/// conforming stream must not make a call once the deadline has passed,
/// and must report a time-out as ``SocketError/timeout(operation:address:)``.
public protocol ByteStream: AnyObject, Sendable {
    /// The socket beneath: its addresses, options, time-out and shutdown.
    var socket: Socket { get }

    /// Receives up to `buffer.count` bytes, waiting at most as long as the
    /// socket's time-out (and `deadline`) allow; 0 at end of file.
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: inout UInt64) throws -> Int

    /// Receives what is there now without waiting: the count (0 at end of
    /// file), or nil when nothing is there yet.
    func receiveNow(into buffer: UnsafeMutableRawBufferPointer) throws -> Int?

    /// Sends every byte, under one deadline for the whole call.
    func sendAll(_ bytes: UnsafeRawBufferPointer, deadline: inout UInt64) throws

    /// Whether input the stream received is buffered in it, readable without
    /// waiting for the peer (a TLS session's records not yet decrypted). A
    /// writer paired with a reader holds its replies while the reader or
    /// this has more input, so a burst of requests gets its replies in one
    /// send. A plain socket: false (the default).
    var hasBufferedInput: Bool { get }

    /// Ends the stream's own protocol politely, leaving the socket open: a
    /// TLS session sends its close_notify. The server calls it once the
    /// handler is done, before it shuts the connection down. A plain socket
    /// does nothing (the default).
    func finishStream()
}

extension ByteStream {
    /// Nothing to end: the default.
    public func finishStream() {}

    /// Nothing buffered beneath the reader: the default.
    public var hasBufferedInput: Bool { false }
}

extension Socket: ByteStream {
    /// The socket itself.
    public var socket: Socket { self }

    /// Receives under the socket's time-out and `deadline` (see ``ByteStream``).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: inout UInt64) throws -> Int {
        try recv(into: buffer, deadline: &deadline)
    }

    /// A receive with `MSG_DONTWAIT`: nil when no byte is there.
    public func receiveNow(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        try recvNow(into: buffer)
    }

    /// Sends every byte; the deadline covers the whole call.
    public func sendAll(_ bytes: UnsafeRawBufferPointer, deadline: inout UInt64) throws {
        try sendEvery(bytes, flags: 0, deadline: &deadline)
    }

    /// Now on the monotonic clock, in nanoseconds: the clock of stream deadlines.
    public static func monotonicNanos() -> UInt64 { Sys.monotonicNanos() }
}
