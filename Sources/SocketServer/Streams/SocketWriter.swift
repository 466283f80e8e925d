/// A buffered writer over a socket: Python's `makefile('wb')`, the `wfile`
/// of stream handlers.
///
/// - Buffered (`bufferSize > 0`): bytes collect until the buffer is full or
///   ``flush()`` is called; a write larger than the buffer goes straight out.
/// - Unbuffered (`bufferSize == 0`): every write is one `sendAll`, as
///   Python's `wbufsize = 0`.
/// - On a non-blocking socket (time-out 0), a write or flush that meets a
///   full send buffer throws `Errno.wouldBlock` with the count that went
///   out (``SocketError/bytesSent``, Python's
///   `BlockingIOError.characters_written`); that error is not sticky, and a
///   buffered writer keeps the bytes not sent for the next flush.
/// - Paired with a reader (``Socket/makeStreams(readBufferSize:writeBufferSize:)``,
///   the handlers' `rfile`/`wfile`): a write is sent at once unless more
///   input is already buffered (in the reader, or in the stream beneath it:
///   ``ByteStream/hasBufferedInput``), and whatever is pending is sent
///   before the reader would wait for the peer. A request/response exchange therefore
///   costs one `send` per reply, and pipelined requests get their replies
///   batched into one `send`.
/// - Other errors are sticky: once a send failed, every later write and
///   flush throws the same error (the connection is broken; nothing is retried).
///
/// Not for concurrent use from several threads.
public final class SocketWriter {
    /// The default buffer size.
    public static let defaultBufferSize = 64 * 1024

    /// The stream written to; nil for a writer that collects in memory.
    public let stream: (any ByteStream)?
    /// The stream when it is a plain socket, called without dynamic dispatch
    /// and without a retain (``stream`` holds it).
    private let direct: Unmanaged<Socket>?
    /// Whether there is a stream (false: a writer in memory).
    private let hasStream: Bool
    /// The socket beneath the stream; nil for a writer that collects in memory.
    public var socket: Socket? { stream?.socket }
    /// The buffer size; 0 for unbuffered.
    public let bufferSize: Int

    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var count = 0
    private var stickyError: (any Error)?
    private var closed = false
    /// With a paired reader: send now unless the reader holds more input.
    /// Not `weak`: a weak reference moves the reader's reference counts to
    /// a side table and slows every retain and release of it (seen in
    /// profiles of the echo benchmark). The reader clears this in its
    /// `deinit` and `close()`, so it never dangles.
    var pairedReader: SocketReader? {
        get { readerRef?.takeUnretainedValue() }
        set { readerRef = newValue.map { Unmanaged.passUnretained($0) } }
    }
    private var readerRef: Unmanaged<SocketReader>?

    /// A writer over `socket`; `bufferSize` 0 makes it unbuffered.
    public init(_ socket: Socket, bufferSize: Int = SocketWriter.defaultBufferSize) {
        self.stream = socket
        self.direct = Unmanaged.passUnretained(socket)
        self.hasStream = true
        self.bufferSize = max(0, bufferSize)
    }

    /// A writer over any byte stream (a TLS session, say); `bufferSize` 0
    /// makes it unbuffered.
    public init(stream: any ByteStream, bufferSize: Int = SocketWriter.defaultBufferSize) {
        self.stream = stream
        self.direct = (stream as? Socket).map { Unmanaged.passUnretained($0) }
        self.hasStream = true
        self.bufferSize = max(0, bufferSize)
    }

    /// A writer that collects what is written in memory (``bytes``): the
    /// reply of a datagram handler, a test's output.
    public init() {
        self.stream = nil
        self.direct = nil
        self.hasStream = false
        self.bufferSize = Int.max
    }

    deinit { storage?.deallocate() }

    /// How many bytes this writer has sent to its stream so far.
    public var sentCount: UInt64 { sent }
    /// Private, so that its accesses are checked at compile time.
    private var sent: UInt64 = 0

    /// How many bytes are written but not yet sent.
    public var pendingCount: Int { hasStream ? count : 0 }
    /// How many bytes the buffer holds (for a writer in memory: all of them).
    var heldCount: Int { count }

    /// For a writer in memory: everything written so far.
    public var bytes: [UInt8] {
        guard let storage, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { closed }

    /// Writes bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if closed { throw SocketError.closed(operation: "write") }
        if let stickyError { throw stickyError }
        guard hasStream else { append(bytes); return }
        if bufferSize == 0 {
            try send(bytes)
            return
        }
        if count == 0 && bytes.count < bufferSize, let reader = readerRef, inputIsDrained(reader) {
            // Nothing pending and no more input waiting: this write would be
            // sent at once anyway; send it without copying it to the buffer.
            try send(bytes)
            return
        }
        if count + bytes.count > bufferSize {
            try flush()
            if bytes.count >= bufferSize {
                try send(bytes)
                return
            }
        }
        append(bytes)
        if count >= bufferSize {
            try flush()
        } else if let reader = readerRef, inputIsDrained(reader) {
            try flush()
        }
    }

    /// Whether the paired reader has no more input without a receive: its
    /// buffer is empty, and so is the stream beneath it (a TLS session can
    /// hold whole records the reader has not asked for yet).
    @inline(__always)
    private func inputIsDrained(_ reader: Unmanaged<SocketReader>) -> Bool {
        guard reader._withUnsafeGuaranteedRef({ $0.bufferedCount == 0 }) else { return false }
        if direct != nil { return true }  // a plain socket buffers nothing of its own
        return !(stream?.hasBufferedInput ?? false)
    }

    /// Writes an array of bytes.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes a slice of bytes.
    public func write(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes any byte sequence (`[UInt8]`, a slice, a string's `utf8`).
    public func write<Bytes: Sequence<UInt8>>(_ bytes: Bytes) throws {
        try withBytes(bytes) { try write($0) }
    }

    /// Writes a string's UTF-8 bytes.
    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Sends everything pending.
    public func flush() throws {
        if let stickyError { throw stickyError }
        guard hasStream, count > 0 else { return }
        let n = count
        count = 0
        do {
            try send(UnsafeRawBufferPointer(start: storage, count: n))
        } catch let error as SocketError where error.errno == .wouldBlock {
            // Non-blocking and full: keep what did not go out, in order.
            let sent = min(error.bytesSent ?? 0, n)
            if sent < n, let storage { storage.copyMemory(from: storage + sent, byteCount: n - sent) }
            count = n - sent
            throw error
        }
    }

    /// Sends what is pending, then `count` bytes of the open file
    /// `fileDescriptor` from `offset` over the stream
    /// (``ByteStream/sendFile(_:offset:count:)``: `sendfile(2)` on a plain
    /// socket, no copy through user space), and counts them in
    /// ``sentCount``. Returns the number of file bytes sent, fewer than
    /// `count` only at the file's end. A failure part-way is sticky, as for
    /// any send, and its ``SocketError/bytesSent`` says how far it got.
    @discardableResult
    public func sendFile(_ fileDescriptor: Int32, offset: Int = 0, count: Int) throws -> Int {
        if closed { throw SocketError.closed(operation: "sendFile") }
        guard let stream else { throw SocketError.invalidArgument("sendFile on a writer in memory") }
        try flush()
        do {
            let n = try stream.sendFile(fileDescriptor, offset: offset, count: count)
            sent &+= UInt64(n)
            return n
        } catch {
            if let error = error as? SocketError, let partial = error.bytesSent { sent &+= UInt64(partial) }
            if (error as? SocketError)?.kind != .invalidArgument { stickyError = error }
            throw error
        }
    }

    /// Flushes, then refuses further writes. The socket stays open.
    /// Calling it again does nothing.
    public func close() throws {
        if closed { return }
        defer {
            closed = true
            if hasStream { storage?.deallocate(); storage = nil; capacity = 0; count = 0 }
        }
        try flush()
    }

    private func send(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            var deadline: UInt64 = 0
            if let direct {
                try direct._withUnsafeGuaranteedRef { try $0.sendAll(bytes, deadline: &deadline) }
            } else {
                try stream!.sendAll(bytes, deadline: &deadline)
            }
            sent &+= UInt64(bytes.count)
        } catch {
            // A full buffer of a non-blocking socket breaks nothing.
            if (error as? SocketError)?.errno != .wouldBlock { stickyError = error }
            throw error
        }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if count + bytes.count > capacity {
            var newCapacity = max(capacity * 2, 256)
            while newCapacity < count + bytes.count { newCapacity *= 2 }
            if hasStream { newCapacity = min(newCapacity, max(bufferSize, count + bytes.count)) }
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            if let storage {
                grown.copyMemory(from: storage, byteCount: count)
                storage.deallocate()
            }
            storage = grown
            capacity = newCapacity
        }
        (storage! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }
}

extension Socket {
    /// A buffered reader over this socket (Python's `makefile('rb')`).
    public func makeReader(bufferSize: Int = SocketReader.defaultBufferSize) -> SocketReader {
        SocketReader(self, bufferSize: bufferSize)
    }

    /// A writer over this socket (Python's `makefile('wb')`); 0 for unbuffered.
    public func makeWriter(bufferSize: Int = SocketWriter.defaultBufferSize) -> SocketWriter {
        SocketWriter(self, bufferSize: bufferSize)
    }

    /// A reader and a writer that work together: writes are batched only
    /// while more input is already buffered, and sent before the reader
    /// waits for the peer (see ``SocketWriter``). With `writeBufferSize` 0
    /// the writer is unbuffered.
    public func makeStreams(readBufferSize: Int = SocketReader.defaultBufferSize,
                            writeBufferSize: Int = SocketWriter.defaultBufferSize) -> (SocketReader, SocketWriter) {
        pairStreams(SocketReader(self, bufferSize: readBufferSize), SocketWriter(self, bufferSize: writeBufferSize))
    }
}

extension ByteStream {
    /// A paired reader and writer over this stream, as
    /// ``Socket/makeStreams(readBufferSize:writeBufferSize:)``. `reader`: one
    /// already made over this stream (its buffered bytes are kept).
    public func makeStreams(readBufferSize: Int = SocketReader.defaultBufferSize,
                            writeBufferSize: Int = SocketWriter.defaultBufferSize,
                            reader: SocketReader? = nil) -> (SocketReader, SocketWriter) {
        let r = reader ?? SocketReader(stream: self, bufferSize: readBufferSize)
        return pairStreams(r, SocketWriter(stream: self, bufferSize: writeBufferSize))
    }
}

/// Pairs a reader and a writer over one stream (see ``SocketWriter``).
func pairStreams(_ reader: SocketReader, _ writer: SocketWriter) -> (SocketReader, SocketWriter) {
    if writer.bufferSize > 0 {
        reader.pairedWriter = writer
        writer.pairedReader = reader
    }
    return (reader, writer)
}
