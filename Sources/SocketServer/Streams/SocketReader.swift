
/// Errors of the buffered streams (beyond the socket's own ``SocketError``).
public enum StreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// ``SocketReader/readLine(maxLength:)`` found no line end within
    /// `maxLength` bytes. The bytes stay unread.
    case lineTooLong(maxLength: Int)
    /// ``SocketReader/readExactly(_:)`` met the end of the stream after
    /// `got` of the `expected` bytes.
    case unexpectedEOF(expected: Int, got: Int)

    /// `line too long (over 65536 bytes)`, `unexpected end of stream (3 of 8 bytes)`.
    public var description: String {
        switch self {
        case .lineTooLong(let n): return "line too long (over \(n) bytes)"
        case .unexpectedEOF(let expected, let got): return "unexpected end of stream (\(got) of \(expected) bytes)"
        }
    }
}

/// A buffered reader over a socket: Python's `makefile('rb')`, the
/// `rfile` of stream handlers.
///
/// - ``readLine(maxLength:)`` returns one line with its LF, or `nil` at end of
///   file; a last line without LF is returned as it is. A line longer than
///   the limit throws ``StreamError/lineTooLong(maxLength:)``: the buffer
///   never grows past the limit plus one read, whatever the peer sends.
/// - Each refill is one `recv` of up to the buffer size, never a byte at a
///   time; the line end is found with `memchr`, and bytes already scanned
///   are not scanned again, so a long line arriving in pieces costs linear
///   time.
/// - Unbuffered (`bufferSize` 0, Python's `makefile('rb', buffering=0)`):
///   the reader never takes a byte from the socket that the call does not
///   return, so another reader (or `recv`) made later starts exactly where
///   it stopped. A line is then read one byte per `recv`, as in Python.
/// - A time-out (the socket's) leaves the reader usable: nothing read is
///   lost (a ``read(_:)`` or ``readAll()`` that fails part-way puts back what
///   it had taken), and the next call goes on where it stopped.
///
/// Not for concurrent use from several threads.
public final class SocketReader {
    /// The default refill size: one `recv` asks for up to this many bytes
    /// (the buffer starts at 256 bytes and grows to it while the peer is ahead).
    public static let defaultBufferSize = 64 * 1024
    /// The size of the first buffer; it doubles up to the refill size while
    /// receives fill it.
    static let initialCapacity = 256
    /// The default maximum line length for ``readLine(maxLength:)``, not counting the LF.
    public static let defaultMaxLineLength = 65536

    /// The stream read from; nil for a reader over bytes in memory.
    public let stream: (any ByteStream)?
    /// The stream when it is a plain socket: called directly, without the
    /// protocol's dynamic dispatch and without a retain, on the hot path
    /// (``stream`` holds it).
    private let direct: Unmanaged<Socket>?
    /// The socket beneath the stream; nil for a reader over bytes in memory.
    public var socket: Socket? { stream?.socket }
    /// The size of one refill (1 for an unbuffered reader).
    public let bufferSize: Int
    /// Whether the reader was made unbuffered (`bufferSize` 0): it never
    /// receives more than the call in progress returns.
    public let isUnbuffered: Bool

    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0
    /// Bytes in `start..<scanned` are known to hold no LF.
    private var scanned = 0
    private var atEOF = false
    private var closed = false
    /// Whether the last receive filled all the room there was.
    private var lastReceiveFilled = false
    /// The deadline of the read call in progress under a socket time-out
    /// (monotonic nanoseconds; 0 until the call first has to wait). One
    /// deadline covers a whole `readLine`, so a peer that trickles a byte
    /// at a time cannot keep a line open past the time-out (slowloris).
    private var callDeadline: UInt64 = 0
    /// Whether the read call in progress has received once already.
    private var callReceived = false

    /// A writer whose pending bytes are sent before this reader would block,
    /// so replies batched while input was already buffered are never held
    /// back while we wait for the peer. Set by ``Socket/makeStreams(readBufferSize:writeBufferSize:)``.
    var pairedWriter: SocketWriter? {
        didSet { writerRef = pairedWriter.map { Unmanaged.passUnretained($0) } }
    }
    /// ``pairedWriter`` without a retain per use (``pairedWriter`` holds it).
    private var writerRef: Unmanaged<SocketWriter>?

    /// A reader over `socket` with the given refill size; 0 makes it unbuffered.
    public init(_ socket: Socket, bufferSize: Int = SocketReader.defaultBufferSize) {
        self.stream = socket
        self.direct = Unmanaged.passUnretained(socket)
        self.bufferSize = max(1, bufferSize)
        self.isUnbuffered = bufferSize <= 0
    }

    /// A reader over any byte stream (a TLS session, say) with the given
    /// refill size. `buffered` are bytes already taken from the stream's
    /// source that must be read first (see ``takeBuffered()``).
    public init(stream: any ByteStream, bufferSize: Int = SocketReader.defaultBufferSize, buffered: [UInt8] = []) {
        self.stream = stream
        self.direct = (stream as? Socket).map { Unmanaged.passUnretained($0) }
        self.bufferSize = max(1, bufferSize)
        self.isUnbuffered = bufferSize <= 0
        if !buffered.isEmpty { unread(buffered) }
    }

    /// A reader over bytes in memory (a datagram, a test's input).
    public init<Bytes: Sequence<UInt8>>(bytes: Bytes) {
        self.stream = nil
        self.direct = nil
        let array = Array(bytes)
        self.bufferSize = max(1, array.count)
        self.isUnbuffered = false
        if !array.isEmpty {
            storage = UnsafeMutableRawPointer.allocate(byteCount: array.count, alignment: 16)
            capacity = array.count
            array.withUnsafeBytes { storage!.copyMemory(from: $0.baseAddress!, byteCount: array.count) }
            end = array.count
        }
        atEOF = true
    }

    deinit {
        pairedWriter?.pairedReader = nil
        storage?.deallocate()
    }

    /// How many bytes this reader has received from its stream so far.
    public internal(set) var receivedCount: UInt64 {
        get { received }
        set { received = newValue }
    }
    /// Private, so that its accesses are checked at compile time: a public
    /// stored property's would be checked at run time on every receive.
    private var received: UInt64 = 0

    /// How many bytes are buffered and not yet read.
    public var bufferedCount: Int { end - start }

    /// Whether the peer's end of file has been seen and every byte read.
    public var isAtEOF: Bool { atEOF && start == end }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { closed }

    /// Hands over the bytes buffered and not yet read, leaving the buffer
    /// empty: for a layer that takes the connection over from here (a TLS
    /// handshake after a PROXY header read through this reader), so that
    /// no byte the peer sent is lost.
    public func takeBuffered() -> [UInt8] {
        guard let storage, end > start else { return [] }
        let bytes = Array(UnsafeRawBufferPointer(start: storage + start, count: end - start))
        start = 0; end = 0; scanned = 0
        return bytes
    }

    /// Releases the buffer; later reads throw. The socket stays open.
    public func close() {
        closed = true
        storage?.deallocate()
        storage = nil
        capacity = 0
        start = 0; end = 0; scanned = 0
        pairedWriter?.pairedReader = nil
        pairedWriter = nil
    }

    // MARK: - Lines

    /// Reads one line: its bytes up to and including the LF, the last bytes
    /// before end of file without one, or `nil` at end of file.
    ///
    /// Throws ``StreamError/lineTooLong(maxLength:)`` if no LF comes within
    /// `maxLength` bytes (the LF itself not counted); those bytes stay unread.
    public func readLine(maxLength: Int = SocketReader.defaultMaxLineLength) throws -> [UInt8]? {
        guard let range = try nextLine(maxLength: maxLength) else { return nil }
        return Array(UnsafeRawBufferPointer(start: storage! + range.lowerBound, count: range.count))
    }

    /// Reads one line as text: without its LF (and a CR right before it),
    /// invalid UTF-8 replaced by U+FFFD; `nil` at end of file. A CR with no
    /// LF after it (the last bytes before end of file) is text, and stays.
    public func readTextLine(maxLength: Int = SocketReader.defaultMaxLineLength) throws -> String? {
        guard let range = try nextLine(maxLength: maxLength) else { return nil }
        var count = range.count
        let base = storage! + range.lowerBound
        if count > 0 && base.load(fromByteOffset: count - 1, as: UInt8.self) == 0x0A {
            count -= 1
            if count > 0 && base.load(fromByteOffset: count - 1, as: UInt8.self) == 0x0D { count -= 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(start: base, count: count), as: UTF8.self)
    }

    /// Calls `body` with the next line's bytes (LF included) in place, without
    /// copying them; the view is valid only during the call. Returns nil at
    /// end of file.
    @inlinable
    public func withNextLine<R>(maxLength: Int = SocketReader.defaultMaxLineLength,
                                _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        guard let line = try nextLineInPlace(maxLength: maxLength) else { return nil }
        return try body(line)
    }

    /// The next line's bytes in the buffer, consumed; valid until the next
    /// call on the reader. (Not generic, so that ``withNextLine(maxLength:_:)``
    /// can be inlined into the caller without exposing the buffer.)
    @usableFromInline
    func nextLineInPlace(maxLength: Int) throws -> UnsafeRawBufferPointer? {
        guard let range = try nextLine(maxLength: maxLength) else { return nil }
        return UnsafeRawBufferPointer(start: storage! + range.lowerBound, count: range.count)
    }

    /// Calls `body` with each line until end of file (Python's `for line in rfile`).
    public func forEachLine(maxLength: Int = SocketReader.defaultMaxLineLength,
                            _ body: ([UInt8]) throws -> Void) throws {
        while let line = try readLine(maxLength: maxLength) { try body(line) }
    }

    /// The buffer range of the next line, consumed; nil at end of file.
    private func nextLine(maxLength: Int) throws -> Range<Int>? {
        callDeadline = 0
        callReceived = false
        guard maxLength >= 0 else { throw SocketError.invalidArgument("negative line limit \(maxLength)") }
        let limit = maxLength &+ 1  // room for the LF
        while true {
            if closed { throw SocketError.closed(operation: "readline") }
            let scanEnd = start + min(end - start, limit)
            if scanned < scanEnd, let base = storage {
                if let p = Sys.find(0x0A, in: base + scanned, count: scanEnd - scanned) {
                    let lineEnd = UnsafeRawPointer(base).distance(to: p) + 1
                    let range = start..<lineEnd
                    start = lineEnd
                    scanned = lineEnd
                    return range
                }
                scanned = scanEnd
            }
            if end - start >= limit { throw StreamError.lineTooLong(maxLength: maxLength) }
            if atEOF {
                if start == end { return nil }
                let range = start..<end
                start = end
                scanned = end
                return range
            }
            // Unbuffered: one byte at a time, so nothing past the LF is taken.
            try fill(atLeast: limit, atMost: 1)
        }
    }

    // MARK: - Bytes

    /// Reads `count` bytes, fewer only at end of file (Python's `read(n)`):
    /// a short result means the peer closed. For a frame that must be
    /// complete, ``readExactly(_:)`` throws instead.
    public func read(_ count: Int) throws -> [UInt8] {
        callDeadline = 0
        callReceived = false
        if closed { throw SocketError.closed(operation: "read") }
        guard count >= 0 else { throw SocketError.invalidArgument("negative count \(count)") }
        var result: [UInt8] = []
        result.reserveCapacity(min(count, 1 << 20))
        do {
            while result.count < count {
                if start < end {
                    let n = min(end - start, count - result.count)
                    result.append(contentsOf: UnsafeRawBufferPointer(start: storage! + start, count: n))
                    consume(n)
                    continue
                }
                if atEOF { break }
                let want = count - result.count
                if want >= bufferSize {
                    // A large read goes straight into the result, not through the buffer.
                    let old = result.count
                    var got = 0
                    result.append(contentsOf: repeatElement(0, count: min(want, 1 << 20)))
                    defer { result.removeSubrange((old + got)...) }
                    try result.withUnsafeMutableBytes { raw in
                        got = try receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[old...]))
                    }
                    if got == 0 { atEOF = true }
                } else {
                    try fill(atLeast: 1)
                }
            }
        } catch {
            // A time-out (or any error) part-way loses nothing already read.
            unread(result)
            throw error
        }
        return result
    }

    /// Reads exactly `count` bytes, for length-prefixed frames: where
    /// ``read(_:)`` returns fewer at end of file, this throws
    /// ``StreamError/unexpectedEOF(expected:got:)``. The bytes that did
    /// come stay unread (``readAll()`` still returns them).
    ///
    /// ```swift
    /// let header = try rfile.readExactly(4)
    /// let length = header.reduce(0) { $0 << 8 | Int($1) }
    /// let body = try rfile.readExactly(length)
    /// ```
    public func readExactly(_ count: Int) throws -> [UInt8] {
        let bytes = try read(count)
        if bytes.count < count {
            unread(bytes)
            throw StreamError.unexpectedEOF(expected: count, got: bytes.count)
        }
        return bytes
    }

    /// Reads everything up to end of file (Python's `read()`). Unbounded:
    /// prefer ``read(_:)`` or ``readSome(_:)`` with data from untrusted peers.
    /// After an error (a time-out), what it had read is still unread.
    public func readAll() throws -> [UInt8] {
        var result: [UInt8] = []
        do {
            while true {
                let chunk = try readSome(max(bufferSize, 64 * 1024))
                if chunk.isEmpty { return result }
                result.append(contentsOf: chunk)
            }
        } catch {
            unread(result)
            throw error
        }
    }

    /// Returns up to `maxCount` bytes: what is buffered, or else what one
    /// `recv` brings; empty only at end of file (Python's `read1`).
    public func readSome(_ maxCount: Int) throws -> [UInt8] {
        callDeadline = 0
        callReceived = false
        if closed { throw SocketError.closed(operation: "read") }
        guard maxCount > 0 else { return [] }
        if start == end && !atEOF { try fill(atLeast: 1, atMost: maxCount) }
        let n = min(end - start, maxCount)
        guard n > 0 else { return [] }
        let bytes = Array(UnsafeRawBufferPointer(start: storage! + start, count: n))
        consume(n)
        return bytes
    }

    /// Like ``readSome(_:)``, into `buffer`; returns the count, 0 at end of file.
    public func readSome(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        callDeadline = 0
        callReceived = false
        if closed { throw SocketError.closed(operation: "read") }
        guard buffer.count > 0 else { return 0 }
        if start == end {
            if atEOF { return 0 }
            if buffer.count >= bufferSize {
                let n = try receive(into: buffer)
                if n == 0 { atEOF = true }
                return n
            }
            try fill(atLeast: 1)
        }
        let n = min(end - start, buffer.count)
        if n > 0 { buffer.baseAddress!.copyMemory(from: storage! + start, byteCount: n) }
        consume(n)
        return n
    }

    /// Returns the buffered bytes without consuming them (at most `maxCount`),
    /// filling the buffer first if it is empty (Python's `peek`).
    public func peek(_ maxCount: Int = Int.max) throws -> [UInt8] {
        callDeadline = 0
        callReceived = false
        if closed { throw SocketError.closed(operation: "peek") }
        if start == end && !atEOF { try fill(atLeast: 1, atMost: 1) }
        let n = min(end - start, maxCount)
        return n > 0 ? Array(UnsafeRawBufferPointer(start: storage! + start, count: n)) : []
    }

    /// Puts `bytes`, taken by a read that then failed, back in front of the
    /// buffered ones, so the next read returns them first.
    private func unread(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, !closed else { return }
        let buffered = end - start
        if start >= bytes.count, let storage {
            start -= bytes.count
            bytes.withUnsafeBytes { (storage + start).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        } else {
            let newCapacity = max(capacity, bytes.count + buffered)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            bytes.withUnsafeBytes { grown.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            if let storage {
                (grown + bytes.count).copyMemory(from: storage + start, byteCount: buffered)
                storage.deallocate()
            }
            storage = grown
            capacity = newCapacity
            start = 0
            end = bytes.count + buffered
        }
        scanned = start
    }

    private func consume(_ n: Int) {
        start += n
        if scanned < start { scanned = start }
        if start == end { start = 0; end = 0; scanned = 0 }
    }

    // MARK: - Refill

    /// Makes room and receives once. `want` is how many bytes the caller
    /// needs buffered at most; the buffer grows toward it, never past it or
    /// the refill size, whichever is larger. An unbuffered reader receives
    /// at most `most` bytes: what the call can return.
    private func fill(atLeast want: Int, atMost most: Int = .max) throws {
        if storage == nil {
            // Start small: an idle or chatty connection needs little, and
            // small buffers pack densely (ten thousand idle connections).
            capacity = min(bufferSize, SocketReader.initialCapacity)
            storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        } else if lastReceiveFilled && capacity < bufferSize {
            // The last receive filled the buffer: the peer is ahead of us,
            // so read in bigger pieces, up to the refill size.
            resize(to: min(capacity * 2, bufferSize))
        }
        if end == capacity {
            if start > 0 {
                resize(to: capacity)  // compact
            } else {
                let bound = max(bufferSize, want)
                let newCapacity = min(max(capacity * 2, capacity + bufferSize), bound)
                guard newCapacity > capacity else { return }
                resize(to: newCapacity)
            }
        }
        let space = isUnbuffered ? min(capacity - end, most) : capacity - end
        let n = try receive(into: UnsafeMutableRawBufferPointer(start: storage! + end, count: space))
        lastReceiveFilled = n == space
        if n == 0 { atEOF = true }
        end += n
    }

    /// Moves the unread bytes to the front of a buffer of `newCapacity`
    /// bytes (the same one when the size does not change).
    private func resize(to newCapacity: Int) {
        let n = end - start
        if newCapacity == capacity {
            if start > 0 { storage!.copyMemory(from: storage! + start, byteCount: n) }
        } else {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            grown.copyMemory(from: storage! + start, byteCount: n)
            storage!.deallocate()
            storage = grown
            capacity = newCapacity
        }
        scanned -= start
        start = 0
        end = n
    }

    /// One receive from the socket. If a paired writer holds bytes, they are
    /// sent before we would block: first a non-blocking try, so input that
    /// is already there keeps the replies batched.
    private func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try receiveOnce(into: buffer)
        received &+= UInt64(n)
        return n
    }

    private func receiveOnce(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let writer = writerRef, writer._withUnsafeGuaranteedRef({ $0.pendingCount > 0 }) {
            let now: Int?
            if let direct {
                now = try direct._withUnsafeGuaranteedRef { try $0.receiveNow(into: buffer) }
            } else if let stream {
                now = try stream.receiveNow(into: buffer)
            } else {
                now = nil
            }
            if let now { return now }
            try writer._withUnsafeGuaranteedRef { try $0.flush() }
        }
        // The first receive of a call waits at most the time-out; from the
        // second on, the call shares one deadline (a trickling peer).
        // The deadline goes through a local: an `inout` of the stored
        // property would be a long access, checked at run time.
        var deadline = callDeadline
        defer { callDeadline = deadline }
        if let direct {
            return try direct._withUnsafeGuaranteedRef { socket in
                if callReceived { socket.startDeadline(&deadline) }
                callReceived = true
                return try socket.recv(into: buffer, deadline: &deadline)
            }
        }
        guard let stream else { atEOF = true; return 0 }
        if callReceived { stream.socket.startDeadline(&deadline) }
        callReceived = true
        return try stream.receive(into: buffer, deadline: &deadline)
    }
}
