import Synchronization

/// How to shut down part of a full-duplex connection (`shutdown(2)`).
public enum ShutdownHow: Sendable {
    /// No more receives (`SHUT_RD`).
    case read
    /// No more sends; the peer reads end-of-file (`SHUT_WR`).
    case write
    /// Both (`SHUT_RDWR`).
    case both
}

/// One socket: Python's `socket.socket`, owning one file descriptor.
///
/// - Every blocking call retries on EINTR and obeys the socket's time-out
///   (``setTimeout(_:)``): `nil` blocks, `0` never blocks (throwing
///   `Errno.wouldBlock`), a positive number of seconds is a deadline for each
///   call, after which ``SocketError/timeout(operation:address:)`` is thrown.
/// - Sends never raise SIGPIPE: a write to a peer that has gone throws
///   `Errno.brokenPipe` (MSG_NOSIGNAL; SIGPIPE blocked around `sendfile`).
/// - ``close()`` is idempotent; a socket that is dropped closes its
///   descriptor; a closed socket's ``fileno`` is -1 and every call on it
///   throws ``SocketError/closed(operation:)``.
/// - ``close()`` closes the descriptor at once, even while a reader or
///   writer made from the socket is open (Python keeps it open until the
///   `makefile` objects are closed too): the streams' next system call
///   throws ``SocketError/closed(operation:)``; bytes a reader had already
///   buffered can still be read. A descriptor number the kernel reuses is
///   never read by a stream of the closed socket.
///
/// `Socket` is safe to share between threads: its descriptor and time-out
/// are atomics. As with any descriptor, closing it while another thread is
/// blocked in it does not wake that thread: use ``shutdown(_:)`` for that.
public final class Socket: Sendable, CustomStringConvertible {
    private let descriptor: Atomic<Int32>
    /// -1: blocking; 0: non-blocking; > 0: time-out in nanoseconds.
    private let timeoutNanos: Atomic<Int64>
    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`).
    public let family: AddressFamily
    /// The socket type (`SOCK_STREAM`, `SOCK_DGRAM`, ...), without the
    /// `SOCK_NONBLOCK`/`SOCK_CLOEXEC` flags it may have been created with.
    public let type: SocketType
    /// The protocol number (0 for the family's default).
    public let proto: Int32

    /// Creates a socket (`socket(2)`), with close-on-exec set and the
    /// default time-out (``defaultTimeout``) applied. `SOCK_NONBLOCK` in
    /// `type` makes it non-blocking (time-out 0), as in Python.
    public init(family: AddressFamily = .inet, type: SocketType = .stream, proto: Int32 = 0) throws {
        let fd: Int32
        do { fd = try Sys.socket(family.rawValue, type.rawValue, proto) } catch {
            throw SocketError(error, operation: "socket(\(family), \(type.withoutFlags))")
        }
        let nonBlocking = type.rawValue & Sys.sockNonBlock != 0
        self.descriptor = Atomic(fd)
        self.timeoutNanos = Atomic(nonBlocking ? 0 : -1)
        self.family = family
        self.type = type.withoutFlags
        self.proto = proto
        if !nonBlocking { try applyDefaultTimeout() }
    }

    /// Adopts an open socket descriptor (Python's `socket(fileno=fd)`); the
    /// new `Socket` owns it and closes it. Family, type and protocol are
    /// read from the descriptor. Its blocking mode is taken as it is.
    public init(fileDescriptor fd: Int32) throws {
        guard fd >= 0 else { throw SocketError.system(.badFileDescriptor, operation: "adopt descriptor", address: nil) }
        let described: (family: Int32, type: Int32, proto: Int32)
        let nonBlocking: Bool
        do {
            described = try Sys.describeSocket(fd)
            nonBlocking = try Sys.isNonBlocking(fd)
        } catch {
            throw SocketError(error, operation: "adopt descriptor \(fd)")
        }
        self.family = AddressFamily(rawValue: described.family)
        self.type = SocketType(rawValue: described.type)
        self.proto = described.proto
        self.timeoutNanos = Atomic(nonBlocking ? 0 : -1)
        self.descriptor = Atomic(fd)
    }

    /// Wraps a descriptor `accept` or `socketpair` just made.
    init(adopting fd: Int32, family: AddressFamily, type: SocketType, proto: Int32, nonBlocking: Bool = false) {
        self.descriptor = Atomic(fd)
        self.timeoutNanos = Atomic(nonBlocking ? 0 : -1)
        self.family = family
        self.type = type
        self.proto = proto
    }

    /// Duplicates `fd` and wraps the duplicate (Python's `socket.fromfd`);
    /// the caller keeps ownership of `fd`.
    public static func fromfd(_ fd: Int32) throws -> Socket {
        let copy: Int32
        do { copy = try Sys.duplicate(fd) } catch { throw SocketError(error, operation: "dup descriptor \(fd)") }
        do { return try Socket(fileDescriptor: copy) } catch { Sys.close(copy); throw error }
    }

    deinit {
        let fd = descriptor.load(ordering: .acquiring)
        if fd >= 0 { Sys.close(fd) }
    }

    /// The descriptor, or -1 once the socket is closed or detached.
    public var fileno: Int32 { descriptor.load(ordering: .acquiring) }

    /// Whether ``close()`` or ``detach()`` has been called.
    public var isClosed: Bool { fileno < 0 }

    @inline(__always)
    func fd(_ operation: @autoclosure () -> String) throws -> Int32 {
        let fd = descriptor.load(ordering: .acquiring)
        if fd < 0 { throw SocketError.closed(operation: operation()) }
        return fd
    }

    /// Closes the descriptor; later calls do nothing (`close(2)`, never retried).
    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { Sys.close(fd) }
    }

    /// Gives up ownership of the descriptor and returns it; the socket
    /// behaves as closed afterwards, and the descriptor stays open.
    public func detach() -> Int32 {
        descriptor.exchange(-1, ordering: .acquiringAndReleasing)
    }

    // MARK: - Time-outs

    private static let defaultTimeoutNanos = Atomic<Int64>(-1)

    /// The time-out new sockets start with (Python's `getdefaulttimeout` /
    /// `setdefaulttimeout`): `nil` (blocking) unless set.
    ///
    /// Setting a negative or NaN value traps (a setter cannot throw): for a
    /// value from outside the program, use ``setDefaultTimeout(_:)``, which
    /// throws as Python's `setdefaulttimeout(-1)` raises `ValueError`.
    public static var defaultTimeout: Double? {
        get { seconds(fromNanos: defaultTimeoutNanos.load(ordering: .relaxed)) }
        set {
            guard let n = Self.storedNanos(newValue) else { preconditionFailure("a time-out cannot be negative") }
            defaultTimeoutNanos.store(n, ordering: .relaxed)
        }
    }

    /// Sets ``defaultTimeout``; throws ``SocketError/invalidArgument(_:)``
    /// (EINVAL) for a negative or NaN value and leaves it unchanged.
    public static func setDefaultTimeout(_ seconds: Double?) throws {
        guard let n = storedNanos(seconds) else {
            throw SocketError.invalidArgument("time-out \(seconds ?? 0) is negative")
        }
        defaultTimeoutNanos.store(n, ordering: .relaxed)
    }

    /// -1 for nil, 0 for 0, nanoseconds (at least 1) otherwise; nil for a
    /// negative or NaN value.
    private static func storedNanos(_ seconds: Double?) -> Int64? {
        guard let seconds else { return -1 }
        guard seconds >= 0 else { return nil }
        if seconds == 0 { return 0 }
        return max(1, Int64(clamping: nanos(fromSeconds: seconds)))
    }

    private static func seconds(fromNanos n: Int64) -> Double? {
        n < 0 ? nil : Double(n) / 1e9
    }

    func applyDefaultTimeout() throws {
        let n = Socket.defaultTimeoutNanos.load(ordering: .relaxed)
        if n >= 0 { try setTimeoutNanos(n) }
    }

    /// The time-out in seconds: `nil` blocking, `0` non-blocking (`gettimeout`).
    public var timeout: Double? { Socket.seconds(fromNanos: timeoutNanos.load(ordering: .relaxed)) }

    /// Sets the time-out (Python's `settimeout`): `nil` makes every call
    /// block; `0` makes it non-blocking; a positive number of seconds is a
    /// deadline for each blocking call, accept and connect included.
    public func setTimeout(_ seconds: Double?) throws {
        guard let n = Socket.storedNanos(seconds) else {
            throw SocketError.invalidArgument("time-out \(seconds ?? 0) is negative")
        }
        try setTimeoutNanos(n)
    }

    private func setTimeoutNanos(_ n: Int64) throws {
        let fd = try fd("set time-out")
        let old = timeoutNanos.load(ordering: .relaxed)
        // A time-out keeps the descriptor blocking and lets the kernel keep
        // the time (SO_RCVTIMEO/SO_SNDTIMEO): one system call per receive,
        // where non-blocking I/O with poll(2) would take three whenever the
        // peer is not ahead of us. Only non-blocking mode (0) sets O_NONBLOCK.
        do {
            if (old == 0) != (n == 0) { try Sys.setNonBlocking(fd, n == 0) }
            if n > 0 || old > 0 { try Sys.setKernelTimeouts(fd, seconds: n > 0 ? Double(n) / 1e9 : 0) }
        } catch {
            throw SocketError(error, operation: "set time-out")
        }
        timeoutNanos.store(n, ordering: .relaxed)
    }

    /// `setblocking(true)` is `setTimeout(nil)`; `setblocking(false)` is `setTimeout(0)`.
    public func setBlocking(_ blocking: Bool) throws { try setTimeout(blocking ? nil : 0) }

    /// Whether calls block (with or without a deadline): Python's `getblocking()`.
    public var isBlocking: Bool { timeoutNanos.load(ordering: .relaxed) != 0 }

    // MARK: - System calls

    /// Runs one system call of this socket through the platform's loop
    /// (``Sys/io(_:deadline:waitingFor:events:_:)``: EINTR retried). A
    /// time-out shows as EAGAIN from the blocking descriptor (the kernel
    /// kept the time) and is thrown as ``SocketError/timeout(operation:address:)``;
    /// in non-blocking mode EAGAIN is thrown as it is (`Errno.wouldBlock`).
    ///
    /// `deadline` (monotonic nanoseconds, 0: none yet) is shared by the
    /// system calls of one operation made of several (`sendAll`, a stream's
    /// `readLine`): once it has passed, the next call is not made. Such an
    /// operation starts its deadline (``startDeadline(_:)``) when it needs a
    /// second call, so the common one-call case reads no clock; each call
    /// waits at most the time-out, so the operation ends within twice it.
    /// A signal starts the deadline too: a call interrupted (EINTR) is
    /// retried only within what is left of it, so however often signals
    /// come, it ends at most one time-out after the first one.
    @inline(__always)
    func io<T: BinaryInteger>(_ operation: StaticString, events: Int16, address: SocketAddress? = nil,
                              deadline: inout UInt64, _ body: (Int32) -> T) throws -> T {
        let fd = try fd("\(operation)")
        let t = timeoutNanos.load(ordering: .relaxed)
        if t > 0 && deadline != 0 && Sys.monotonicNanos() >= deadline {
            throw SocketError(timeoutOf: "\(operation)", address: address)
        }
        var limit = t > 0 ? Deadline(instant: deadline, span: UInt64(t)) : Deadline.none
        let outcome: SysOutcome<T>
        do {
            outcome = try Sys.io(operation, deadline: &limit, waitingFor: fd, events: events) { _ in body(fd) }
        } catch {
            throw SocketError(error, operation: "\(operation)", address: address)
        }
        if t > 0 { deadline = limit.instant }  // a signal may have started it
        switch outcome {
        case .done(let r):
            return r
        case .timedOut:
            throw SocketError(timeoutOf: "\(operation)", address: address)
        case .wouldBlock:
            throw wouldBlockError(operation, address: address)
        }
    }

    /// Starts the deadline of a multi-call operation, if the socket has a
    /// time-out and the deadline is not running yet (see ``ByteStream``).
    @inline(__always)
    public func startDeadline(_ deadline: inout UInt64) {
        let t = timeoutNanos.load(ordering: .relaxed)
        if t > 0 && deadline == 0 { deadline = Sys.monotonicNanos() &+ UInt64(t) }
    }

    /// Waits until `fd` is ready for `events` or the deadline (0: none) passes.
    func wait(_ fd: Int32, _ events: Int16, until deadline: UInt64, operation: String, address: SocketAddress?) throws {
        var limit = Deadline(instant: deadline)
        let outcome: SysOutcome<Int16>
        do { outcome = try Sys.poll(fd, events, deadline: &limit) } catch {
            throw SocketError(error, operation: operation, address: address)
        }
        if case .timedOut = outcome { throw SocketError(timeoutOf: operation, address: address) }
    }

    /// A receive with `MSG_DONTWAIT`: nil when no byte is there.
    func recvNow(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        let fd = try fd("recv")
        var unlimited = Deadline.none
        let outcome: SysOutcome<Int>
        do {
            outcome = try Sys.io("recv", deadline: &unlimited) { _ in
                Sys.recv(fd, buffer.baseAddress, buffer.count, Sys.dontWait)
            }
        } catch {
            throw SocketError(error, operation: "recv")
        }
        if case .done(let n) = outcome { return n }
        return nil
    }

    /// What EAGAIN from a call of this socket means: a blocking socket says
    /// it only when SO_RCVTIMEO or SO_SNDTIMEO (ours, or the caller's own)
    /// ran out, so it is the time-out; a non-blocking one, `Errno.wouldBlock`.
    @inline(never)
    func wouldBlockError(_ operation: StaticString, address: SocketAddress?) -> SocketError {
        if timeoutNanos.load(ordering: .relaxed) != 0 { return SocketError(timeoutOf: "\(operation)", address: address) }
        return SocketError(.wouldBlock, operation: "\(operation)", address: address)
    }

    /// The first try of a call made directly (the fast path of ``recv(into:deadline:)``
    /// and ``sendEvery(_:flags:deadline:)``) returned -1: throws what
    /// ``io(_:events:address:deadline:_:)`` would have thrown, or, after a
    /// signal, starts the deadline (as `io` does) and returns, for the
    /// call to be made again through `io`. Never retries the call itself: a
    /// time-out the kernel reported (EAGAIN) must not be waited for twice.
    @inline(never)
    func firstTryFailed(_ operation: StaticString, sent: Int? = nil, deadline: inout UInt64) throws {
        let error: SocketError
        switch Sys.lastFailure(operation) {
        case .interrupted:
            startDeadline(&deadline)
            return
        case .wouldBlock:
            error = wouldBlockError(operation, address: nil)
        case .failed(let errno):
            error = SocketError(errno, operation: "\(operation)")
        }
        throw sent.map { error.sent($0) } ?? error
    }

    /// Sends every byte under one deadline for the whole call; an error
    /// after a partial send carries the count sent (``SocketError/bytesSent``).
    ///
    /// The common case, one `send(2)` that takes everything, is made here
    /// directly (no deadline is running before the first call, so there is
    /// nothing to check); anything else goes on in ``sendRest(_:from:flags:deadline:)``.
    @inline(__always)
    func sendEvery(_ bytes: UnsafeRawBufferPointer, flags: Int32, deadline: inout UInt64) throws {
        var offset = 0
        let fd = descriptor.load(ordering: .acquiring)
        if fd >= 0 && deadline == 0 && !bytes.isEmpty {
            let n = Sys.send(fd, bytes.baseAddress, bytes.count, flags)
            if n == bytes.count { return }
            if n >= 0 {
                offset = n
            } else {
                try firstTryFailed("send", sent: 0, deadline: &deadline)
            }
        }
        try sendRest(bytes, from: offset, flags: flags, deadline: &deadline)
    }

    /// ``sendEvery(_:flags:deadline:)`` from `offset` on, through ``io(_:events:address:deadline:_:)``.
    @inline(never)
    func sendRest(_ bytes: UnsafeRawBufferPointer, from start: Int, flags: Int32, deadline: inout UInt64) throws {
        var offset = start
        do {
            while offset < bytes.count {
                if offset > 0 { startDeadline(&deadline) }  // a partial send: the rest shares one deadline
                let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                offset += try io("send", events: Sys.pollOut, deadline: &deadline) { fd in
                    Sys.send(fd, rest.baseAddress, rest.count, flags)
                }
            }
        } catch let error as SocketError {
            throw error.sent(offset)
        }
    }

    // MARK: - Server side

    /// Binds the socket to `address` (`bind(2)`).
    public func bind(to address: SocketAddress) throws {
        let fd = try fd("bind to \(address)")
        do { try address.withSockAddr { sa, len in try Sys.bind(fd, sa, len) } } catch let error as Errno {
            throw SocketError(error, operation: "bind to", address: address)
        }
    }

    /// Binds to a host and port, resolved for this socket's family.
    public func bind(to address: (host: String, port: Int)) throws {
        try bind(to: SocketAddress.resolve(host: address.host, port: address.port, family: family, type: type, passive: true))
    }

    /// The backlog ``listen(backlog:)`` asks for by default: `SOMAXCONN`.
    public static let defaultBacklog = Sys.maxBacklog

    /// Starts listening (`listen(2)`). The kernel caps `backlog` at
    /// `net.core.somaxconn`; a negative one is taken as 0 and one over
    /// `Int32.max` is refused (``SocketError/invalidArgument(_:)``), as in Python.
    public func listen(backlog: Int = Socket.defaultBacklog) throws {
        let fd = try fd("listen")
        guard backlog <= Int(Int32.max) else { throw SocketError.invalidArgument("backlog \(backlog) is over Int32.max") }
        do { try Sys.listen(fd, Int32(max(0, backlog))) } catch { throw SocketError(error, operation: "listen") }
    }

    /// Accepts a connection (`accept4(2)`, close-on-exec): the connected
    /// socket and the peer's address. The new socket starts with the
    /// default time-out, whatever the listener's (Linux copies a listener's
    /// SO_RCVTIMEO/SO_SNDTIMEO to it; those of our time-out are cleared).
    public func accept() throws -> (Socket, SocketAddress) {
        var deadline: UInt64 = 0
        let (fd, peer) = try SocketAddress.receiving { sa, len in
            try io("accept", events: Sys.pollIn, deadline: &deadline) { fd in
                len.pointee = SocketAddress.storageSize
                return Sys.accept(fd, sa, len)
            }
        }
        let connection = Socket(adopting: fd, family: family, type: type, proto: proto)
        if timeoutNanos.load(ordering: .relaxed) > 0 && Socket.defaultTimeoutNanos.load(ordering: .relaxed) <= 0 {
            do { try Sys.setKernelTimeouts(fd, seconds: 0) } catch {
                throw SocketError(error, operation: "accept")
            }
        }
        try connection.applyDefaultTimeout()
        return (connection, peer ?? .unnamedUnix)
    }

    // MARK: - Client side

    /// Connects to `address` (`connect(2)`), within the time-out if one is set.
    public func connect(to address: SocketAddress) throws {
        let code = try connectCode(address)
        if code != 0 {
            if code == Errno.timedOut.rawValue && timeoutNanos.load(ordering: .relaxed) > 0 {
                throw SocketError(timeoutOf: "connect to", address: address)
            }
            throw SocketError(Errno(code), operation: "connect to", address: address)
        }
    }

    /// Connects to a host and port, resolved for this socket's family.
    public func connect(to address: (host: String, port: Int)) throws {
        try connect(to: SocketAddress.resolve(host: address.host, port: address.port, family: family, type: type))
    }

    /// Like ``connect(to:)-(SocketAddress)`` but returns the error number
    /// instead of throwing: 0 on success (Python's `connect_ex`). A time-out
    /// returns `ETIMEDOUT` (Python returns `EWOULDBLOCK`).
    public func connectEx(to address: SocketAddress) -> Int32 {
        do { return try connectCode(address) } catch let e as SocketError { return e.errno?.rawValue ?? Errno.invalidArgument.rawValue } catch { return Errno.invalidArgument.rawValue }
    }

    private func connectCode(_ address: SocketAddress) throws -> Int32 {
        let fd = try fd("connect to \(address)")
        let t = timeoutNanos.load(ordering: .relaxed)
        // Under a time-out the descriptor is blocking (see setTimeout); the
        // connect alone runs non-blocking, waited for with poll(2).
        if t > 0 { try? Sys.setNonBlocking(fd, true) }
        defer { if t > 0 { try? Sys.setNonBlocking(fd, false) } }
        let e = address.withSockAddr { Sys.connect(fd, $0, $1) }
        if e == 0 { return 0 }
        // EINTR: the connection goes on in the background; wait for it as
        // for EINPROGRESS (what CPython does too).
        guard e == Errno.interrupted.rawValue || (e == Errno.inProgress.rawValue && t != 0) else { return e }
        let deadline = t > 0 ? Sys.monotonicNanos() &+ UInt64(t) : 0
        do {
            try wait(fd, Sys.pollOut, until: deadline, operation: "connect to", address: address)
        } catch SocketError.timeout {
            return Errno.timedOut.rawValue
        }
        do { return try Sys.getsockopt(fd, Sys.solSocket, Sys.soError) } catch { return error.rawValue }
    }

    // MARK: - Data

    /// Receives up to `maxCount` bytes (`recv(2)`); an empty result means the
    /// peer closed its side (end of file). `recv(0)` returns an empty array
    /// at once, as Python's does (the system call would wait for data).
    public func recv(_ maxCount: Int, flags: Int32 = 0) throws -> [UInt8] {
        guard maxCount >= 0 else { throw SocketError.invalidArgument("negative buffer size \(maxCount)") }
        if maxCount == 0 { _ = try fd("recv"); return [] }
        return try [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, count in
            count = try recv(into: UnsafeMutableRawBufferPointer(buffer), flags: flags)
        }
    }

    /// Receives into `buffer` (Python's `recv_into`); returns the count, 0 at
    /// end of file. An empty buffer returns 0 at once.
    public func recv(into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0) throws -> Int {
        if buffer.isEmpty { _ = try fd("recv"); return 0 }
        var deadline: UInt64 = 0
        return try io("recv", events: Sys.pollIn, deadline: &deadline) { fd in
            Sys.recv(fd, buffer.baseAddress, buffer.count, flags)
        }
    }

    /// Receives into `buffer` under a deadline shared by the calls of one
    /// stream operation (see ``io(_:events:address:deadline:_:)``). The
    /// first try, before any deadline runs, is made here directly.
    @inline(__always)
    func recv(into buffer: UnsafeMutableRawBufferPointer, deadline: inout UInt64) throws -> Int {
        let fd = descriptor.load(ordering: .acquiring)
        if fd >= 0 && deadline == 0 && !buffer.isEmpty {
            let n = Sys.recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            try firstTryFailed("recv", deadline: &deadline)
        }
        return try recvRest(into: buffer, deadline: &deadline)
    }

    /// ``recv(into:deadline:)`` through ``io(_:events:address:deadline:_:)``.
    @inline(never)
    func recvRest(into buffer: UnsafeMutableRawBufferPointer, deadline: inout UInt64) throws -> Int {
        if buffer.isEmpty { _ = try fd("recv"); return 0 }
        return try io("recv", events: Sys.pollIn, deadline: &deadline) { fd in
            Sys.recv(fd, buffer.baseAddress, buffer.count, 0)
        }
    }

    /// Receives into the first `count` bytes of `buffer` (all of it by
    /// default). A count over the buffer's size, or negative, is refused
    /// (``SocketError/invalidArgument(_:)``), as Python's `recv_into`.
    public func recv(into buffer: inout [UInt8], count: Int? = nil, flags: Int32 = 0) throws -> Int {
        let n = try checkedCount(count, buffer.count)
        return try buffer.withUnsafeMutableBytes { try recv(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), flags: flags) }
    }

    /// Sends what the kernel takes now (`send(2)`) and returns how many
    /// bytes that was: possibly fewer than given.
    public func send(_ bytes: UnsafeRawBufferPointer, flags: Int32 = 0) throws -> Int {
        var deadline: UInt64 = 0
        return try io("send", events: Sys.pollOut, deadline: &deadline) { fd in
            Sys.send(fd, bytes.baseAddress, bytes.count, flags)
        }
    }

    /// Sends what the kernel takes now; returns the count sent.
    public func send<Bytes: Sequence<UInt8>>(_ bytes: Bytes, flags: Int32 = 0) throws -> Int {
        try withBytes(bytes) { try send($0, flags: flags) }
    }

    /// Sends every byte, looping over partial sends (Python's `sendall`).
    /// Under a time-out, the deadline covers the whole call. If it fails
    /// part-way (a time-out; a non-blocking socket whose buffer is full:
    /// `Errno.wouldBlock`), the error's ``SocketError/bytesSent`` says how
    /// many bytes went out.
    public func sendAll(_ bytes: UnsafeRawBufferPointer, flags: Int32 = 0) throws {
        var deadline: UInt64 = 0
        try sendEvery(bytes, flags: flags, deadline: &deadline)
    }

    /// Sends every byte of an array (Python's `sendall`).
    public func sendAll(_ bytes: [UInt8], flags: Int32 = 0) throws {
        try bytes.withUnsafeBytes { try sendAll($0, flags: flags) }
    }

    /// Sends every byte (Python's `sendall`).
    public func sendAll<Bytes: Sequence<UInt8>>(_ bytes: Bytes, flags: Int32 = 0) throws {
        try withBytes(bytes) { try sendAll($0, flags: flags) }
    }

    /// Receives one datagram of up to `maxCount` bytes and its sender (`recvfrom(2)`).
    public func recvFrom(_ maxCount: Int, flags: Int32 = 0) throws -> ([UInt8], SocketAddress) {
        guard maxCount >= 0 else { throw SocketError.invalidArgument("negative buffer size \(maxCount)") }
        var sender = SocketAddress.unnamedUnix
        let bytes = try [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, count in
            (count, sender) = try recvFrom(into: UnsafeMutableRawBufferPointer(buffer), flags: flags)
        }
        return (bytes, sender)
    }

    /// Receives one datagram into `buffer` (Python's `recvfrom_into`):
    /// the count and the sender.
    public func recvFrom(into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0) throws -> (Int, SocketAddress) {
        var deadline: UInt64 = 0
        let (n, sender) = try SocketAddress.receiving { sa, len in
            try io("recvfrom", events: Sys.pollIn, deadline: &deadline) { fd in
                len.pointee = SocketAddress.storageSize
                return Sys.recvfrom(fd, buffer.baseAddress, buffer.count, flags, sa, len)
            }
        }
        return (n, sender ?? .unnamedUnix)
    }

    /// Receives one datagram into `buffer` (all of it, or its first `count`
    /// bytes). A count over the buffer's size, or negative, is refused
    /// (``SocketError/invalidArgument(_:)``), as Python's `recvfrom_into`.
    public func recvFrom(into buffer: inout [UInt8], count: Int? = nil, flags: Int32 = 0) throws -> (Int, SocketAddress) {
        let n = try checkedCount(count, buffer.count)
        return try buffer.withUnsafeMutableBytes { try recvFrom(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), flags: flags) }
    }

    /// Sends one datagram to `address` (`sendto(2)`); returns the count sent.
    public func sendTo(_ bytes: UnsafeRawBufferPointer, _ address: SocketAddress, flags: Int32 = 0) throws -> Int {
        var deadline: UInt64 = 0
        return try address.withSockAddr { sa, salen in
            try io("sendto", events: Sys.pollOut, address: address, deadline: &deadline) { fd in
                Sys.sendto(fd, bytes.baseAddress, bytes.count, flags, sa, salen)
            }
        }
    }

    /// Sends one datagram to `address`; returns the count sent.
    @discardableResult
    public func sendTo<Bytes: Sequence<UInt8>>(_ bytes: Bytes, _ address: SocketAddress, flags: Int32 = 0) throws -> Int {
        try withBytes(bytes) { try sendTo($0, address, flags: flags) }
    }

    // MARK: - Addresses and ending

    /// The socket's own address (`getsockname(2)`).
    public func localAddress() throws -> SocketAddress {
        try address(of: "getsockname") { fd, sa, len in try Sys.getsockname(fd, sa, len) }
    }

    /// The connected peer's address (`getpeername(2)`).
    public func peerAddress() throws -> SocketAddress {
        try address(of: "getpeername") { fd, sa, len in try Sys.getpeername(fd, sa, len) }
    }

    private func address(of operation: String,
                         _ call: (Int32, UnsafeMutablePointer<SockAddr>, UnsafeMutablePointer<SockLen>) throws -> Void) throws -> SocketAddress {
        let fd = try fd(operation)
        let address: SocketAddress?
        do {
            (_, address) = try SocketAddress.receiving { sa, len in try call(fd, sa, len) }
        } catch let error as Errno {
            throw SocketError(error, operation: operation)
        }
        guard let address else {
            throw SocketError.system(.addressFamilyNotSupported, operation: operation, address: nil)
        }
        return address
    }

    /// Shuts down one or both directions (`shutdown(2)`); wakes a thread
    /// blocked in `recv` on this socket.
    public func shutdown(_ how: ShutdownHow) throws {
        let fd = try fd("shutdown")
        let h: Sys.ShutdownHow
        switch how {
        case .read: h = .read
        case .write: h = .write
        case .both: h = .both
        }
        do { try Sys.shutdown(fd, h) } catch { throw SocketError(error, operation: "shutdown") }
    }

    /// Python's `repr`: `<Socket fd=5 family=AF_INET type=SOCK_STREAM proto=6
    /// laddr=127.0.0.1:8000 raddr=127.0.0.1:50124>` (the addresses while open).
    public var description: String {
        let fd = fileno
        var s = "<Socket fd=\(fd) family=\(family) type=\(type) proto=\(proto)"
        if fd >= 0 {
            if let l = try? localAddress() { s += " laddr=\(l)" }
            if let r = try? peerAddress() { s += " raddr=\(r)" }
        }
        return s + ">"
    }

    // MARK: - Module functions

    /// A connected pair of sockets (`socketpair(2)`, Python's `socket.socketpair`).
    /// `SOCK_NONBLOCK` in `type` makes both non-blocking, as in ``init(family:type:proto:)``.
    public static func pair(family: AddressFamily = .unix, type: SocketType = .stream, proto: Int32 = 0) throws -> (Socket, Socket) {
        let fds: (Int32, Int32)
        do { fds = try Sys.socketpair(family.rawValue, type.rawValue, proto) } catch {
            throw SocketError(error, operation: "socketpair")
        }
        let nonBlocking = type.rawValue & Sys.sockNonBlock != 0
        let a = Socket(adopting: fds.0, family: family, type: type.withoutFlags, proto: proto, nonBlocking: nonBlocking)
        let b = Socket(adopting: fds.1, family: family, type: type.withoutFlags, proto: proto, nonBlocking: nonBlocking)
        if !nonBlocking {
            try a.applyDefaultTimeout()
            try b.applyDefaultTimeout()
        }
        return (a, b)
    }

    /// Connects to `host`:`port` over TCP (Python's `create_connection`):
    /// tries each address the resolver gives in turn, closing each failed
    /// attempt, and throws the last error if none connects. `timeout` is set
    /// on the socket before connecting; `sourceAddress` is bound first.
    public static func createConnection(host: String, port: Int, timeout: Double? = Socket.defaultTimeout,
                                        sourceAddress: SocketAddress? = nil) throws -> Socket {
        let infos = try Resolver.addressInfo(host: host, port: String(port), type: .stream)
        var lastError: Error = SocketError.addressResolution(code: Sys.ResolveFailure.noNameCode, message: "no address found", host: host)
        for info in infos {
            var socket: Socket?
            do {
                let s = try Socket(family: info.family, type: info.type, proto: info.proto)
                socket = s
                try s.setTimeout(timeout)
                if let sourceAddress { try s.bind(to: sourceAddress) }
                try s.connect(to: info.address)
                return s
            } catch {
                socket?.close()
                lastError = error
            }
        }
        throw lastError
    }

    /// Connects to `address` (Python's `create_connection` for an address
    /// already resolved, Unix paths included).
    public static func createConnection(to address: SocketAddress, timeout: Double? = Socket.defaultTimeout,
                                        type: SocketType = .stream) throws -> Socket {
        let s = try Socket(family: address.family, type: type)
        do {
            try s.setTimeout(timeout)
            try s.connect(to: address)
            return s
        } catch {
            s.close()
            throw error
        }
    }

    /// Whether this machine can make IPv6 sockets (Python's `socket.has_ipv6`).
    public static let hasIPv6: Bool = {
        guard let fd = try? Sys.socket(Sys.afInet6, Sys.sockStream, 0) else { return false }
        Sys.close(fd)
        return true
    }()
}

/// Gives `body` the bytes of any byte sequence as one contiguous buffer,
/// without a copy for arrays, slices and native strings' UTF-8 views.
@inline(__always)
func withBytes<Bytes: Sequence<UInt8>, R>(_ bytes: Bytes, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if let r = try bytes.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) { return r }
    return try Array(bytes).withUnsafeBytes { try body($0) }
}

/// The count of bytes to receive into a buffer of `size`: `count`, or
/// all of it; a count over the size or negative is refused, as in Python.
func checkedCount(_ count: Int?, _ size: Int) throws -> Int {
    guard let count else { return size }
    guard count >= 0 else { throw SocketError.invalidArgument("negative buffer size \(count)") }
    guard count <= size else { throw SocketError.invalidArgument("count \(count) is over the buffer's \(size) bytes") }
    return count
}

extension SocketType {
    /// The type without the `SOCK_NONBLOCK` and `SOCK_CLOEXEC` flags.
    var withoutFlags: SocketType { SocketType(rawValue: rawValue & ~(Sys.sockNonBlock | Sys.sockCloexec)) }
}
