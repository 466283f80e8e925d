// The platform seam: every libc call the library makes is made in
// Platform/, through the one loop below (`Sys.io`). Above this layer the
// library speaks Swift types; Platform throws `Errno`, and the Socket layer
// wraps it into `SocketError`.
//
// Linux with Glibc only: the Musl and Darwin paths were never built, so
// they are not claimed.

#if canImport(Glibc)
@preconcurrency import Glibc
#else
#error("SocketServer builds on Linux (Glibc) only")
#endif

/// What a system call that may wait came to: its value, or one of the two
/// outcomes a caller decides about itself (not errors to unpick).
enum SysOutcome<Value> {
    case done(Value)
    /// EAGAIN/EWOULDBLOCK: a non-blocking descriptor has nothing now, or a
    /// blocking one ran out of its kernel time-out (SO_RCVTIMEO/SO_SNDTIMEO).
    case wouldBlock
    /// The deadline passed while the call was being retried after EINTR.
    case timedOut
}

/// Why a call that returned -1 failed, read from `errno` at once.
enum SysFailure {
    /// EINTR: a signal came; the call may be made again.
    case interrupted
    /// EAGAIN/EWOULDBLOCK (see ``SysOutcome/wouldBlock``).
    case wouldBlock
    /// Any other error.
    case failed(Errno)
}

/// A deadline on the monotonic clock that may start late: an operation
/// whose first call needs no clock (the kernel keeps the time) starts it
/// only when it must wait again, after an EINTR or a second call.
struct Deadline {
    /// When it passes, in monotonic nanoseconds; 0 until started.
    var instant: UInt64
    /// How long it runs once started; 0 when the deadline is not limited
    /// by a span (either `instant` is set, or there is no limit).
    let span: UInt64

    init(instant: UInt64 = 0, span: UInt64 = 0) {
        self.instant = instant
        self.span = span
    }

    /// No limit.
    static var none: Deadline { Deadline() }

    /// A deadline `nanos` from now.
    static func after(nanos: UInt64) -> Deadline { Deadline(instant: Sys.monotonicNanos() &+ nanos) }

    /// Whether there is a limit at all.
    var isLimited: Bool { instant != 0 || span != 0 }

    /// Starts a late deadline now (nothing if running or unlimited).
    mutating func start() {
        if instant == 0 && span != 0 { instant = Sys.monotonicNanos() &+ span }
    }

    /// Milliseconds left for poll(2), rounded up so that a wait never ends
    /// before the deadline: -1 for no limit (or not started), 0 once passed.
    var millisLeft: Int32 {
        guard instant != 0 else { return -1 }
        return pollMillis(until: instant)
    }

    /// Whether it has started and passed.
    var hasPassed: Bool { instant != 0 && Sys.monotonicNanos() >= instant }
}

enum Sys {
    static let sockStream = Int32(SOCK_STREAM.rawValue)
    static let sockDgram = Int32(SOCK_DGRAM.rawValue)
    static let sockSeqpacket = Int32(SOCK_SEQPACKET.rawValue)
    static let sockRaw = Int32(SOCK_RAW.rawValue)
    static let sockNonBlock = Int32(SOCK_NONBLOCK.rawValue)
    static let sockCloexec = Int32(SOCK_CLOEXEC.rawValue)
    static let noSignal = Int32(MSG_NOSIGNAL)
    static let dontWait = Int32(MSG_DONTWAIT)

    /// The calling thread's `errno`.
    static var errno: Int32 { Glibc.errno }

    // MARK: - The one loop

    /// Makes a system call: retries it on EINTR, reports EAGAIN as
    /// ``SysOutcome/wouldBlock``, and throws any other failure as an
    /// ``Errno`` naming `call`.
    ///
    /// `deadline`, when limited, is recomputed from the monotonic clock
    /// after each EINTR (a late one starts then): once it has passed the
    /// outcome is ``SysOutcome/timedOut``. With `fd`, the retry first waits
    /// for `events` on it within what is left, so a call that the kernel
    /// times (SO_RCVTIMEO restarts in full after a signal) cannot wait past
    /// the deadline however often it is interrupted. With `passingTimeLeft`,
    /// `body` gets the milliseconds left (-1: no limit), for calls that take
    /// a time-out themselves (poll); otherwise -1, and no clock is read.
    @inline(__always)
    static func io<T: BinaryInteger>(_ call: StaticString, deadline: inout Deadline, waitingFor fd: Int32 = -1,
                                     events: Int16 = 0, passingTimeLeft: Bool = false,
                                     _ body: (Int32) -> T) throws(Errno) -> SysOutcome<T> {
        while true {
            let r = body(passingTimeLeft ? deadline.millisLeft : -1)
            if r >= 0 { return .done(r) }
            let e = Glibc.errno
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            if e != EINTR { throw Errno(e, call: call) }
            guard deadline.isLimited else { continue }
            deadline.start()
            if deadline.hasPassed { return .timedOut }
            if fd >= 0 {
                guard case .done = try poll(fd, events, deadline: &deadline) else { return .timedOut }
            }
        }
    }

    /// Why the call just made failed (it returned -1): for a caller that
    /// made the first try of a call itself, before ``io(_:deadline:waitingFor:events:passingTimeLeft:_:)``.
    @inline(__always)
    static func lastFailure(_ call: StaticString) -> SysFailure {
        let e = Glibc.errno
        if e == EINTR { return .interrupted }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        return .failed(Errno(e, call: call))
    }

    /// A call with no deadline whose EAGAIN is an error like any other
    /// (fork, pthread_create, fcntl...): its value, or the `Errno` thrown.
    @inline(__always)
    static func call<T: BinaryInteger>(_ call: StaticString, _ body: () -> T) throws(Errno) -> T {
        var unlimited = Deadline.none
        switch try io(call, deadline: &unlimited, { _ in body() }) {
        case .done(let value): return value
        case .wouldBlock, .timedOut: throw Errno(EAGAIN, call: call)
        }
    }

    // MARK: - Waiting

    /// `POLLIN`: readable (or an error or hang-up, which poll reports anyway).
    static let pollIn = Int16(POLLIN)
    /// `POLLOUT`: writable.
    static let pollOut = Int16(POLLOUT)
    /// `SOMAXCONN`: the largest listen backlog the kernel takes by default.
    static let maxBacklog = Int(SOMAXCONN)

    /// `memchr(3)`: the first `byte` in `count` bytes from `start`, or nil.
    @inline(__always)
    static func find(_ byte: UInt8, in start: UnsafeRawPointer, count: Int) -> UnsafeRawPointer? {
        UnsafeRawPointer(memchr(start, Int32(byte), count))
    }

    /// Waits until `first` or `second` is readable (or in error, or hung
    /// up) or the deadline passes: whether each is ready (both false at the
    /// deadline). A negative `second` is left out. EINTR is retried within
    /// what is left. No allocation: the serving loop calls it per request.
    static func waitReadable(_ first: Int32, _ second: Int32, deadline: inout Deadline) throws(Errno) -> (Bool, Bool) {
        var polled = (pollfd(fd: first, events: pollIn, revents: 0), pollfd(fd: second, events: pollIn, revents: 0))
        let count = second >= 0 ? 2 : 1
        let outcome = try withUnsafeMutableBytes(of: &polled) { (raw) throws(Errno) -> SysOutcome<Int32> in
            let fds = UnsafeMutableBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: pollfd.self), count: count)
            return try poll(fds, deadline: &deadline)
        }
        guard case .done = outcome else { return (false, false) }
        return (polled.0.revents != 0, count == 2 && polled.1.revents != 0)
    }

    /// Waits for `events` on `fd` until the deadline: the revents, or
    /// `.timedOut`. A deadline not started yet is started now.
    static func poll(_ fd: Int32, _ events: Int16, deadline: inout Deadline) throws(Errno) -> SysOutcome<Int16> {
        var p = pollfd(fd: fd, events: events, revents: 0)
        return try withUnsafeMutablePointer(to: &p) { (pointer) throws(Errno) -> SysOutcome<Int16> in
            switch try poll(UnsafeMutableBufferPointer(start: pointer, count: 1), deadline: &deadline) {
            case .done: return .done(pointer.pointee.revents)
            case .wouldBlock, .timedOut: return .timedOut
            }
        }
    }

    /// poll(2) over several descriptors until the deadline: how many are
    /// ready, or `.timedOut`. The time-out is recomputed after each EINTR.
    static func poll(_ fds: UnsafeMutableBufferPointer<pollfd>, deadline: inout Deadline) throws(Errno) -> SysOutcome<Int32> {
        deadline.start()
        while true {
            let outcome = try io("poll", deadline: &deadline, passingTimeLeft: true) { ms in
                Glibc.poll(fds.baseAddress, nfds_t(fds.count), ms)
            }
            switch outcome {
            case .done(let n) where n > 0: return .done(n)
            case .done:
                // poll's own time-out: over only if the deadline is.
                if !deadline.isLimited || deadline.hasPassed { return .timedOut }
            case .wouldBlock: continue  // poll does not say EAGAIN on Linux, but would be retried
            case .timedOut: return .timedOut
            }
        }
    }

    /// Sleeps for the given number of nanoseconds (restarting after signals
    /// with what is left).
    static func sleep(nanos: UInt64) {
        var req = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
        var rem = timespec()
        while nanosleep(&req, &rem) != 0 && Glibc.errno == EINTR { req = rem }
    }

    /// Monotonic time in nanoseconds.
    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    // MARK: - Descriptors

    /// `close(2)`, never retried: on Linux the descriptor is gone even when
    /// close reports EINTR, and retrying could close a descriptor another
    /// thread has just been given.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Whether `O_NONBLOCK` is set on `fd`.
    static func isNonBlocking(_ fd: Int32) throws(Errno) -> Bool {
        try call("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) } & O_NONBLOCK != 0
    }

    /// Sets or clears `O_NONBLOCK`.
    static func setNonBlocking(_ fd: Int32, _ on: Bool) throws(Errno) {
        let flags = try call("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted == flags { return }
        _ = try call("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, wanted) }
    }

    /// A close-on-exec duplicate of `fd`.
    static func duplicate(_ fd: Int32) throws(Errno) -> Int32 {
        try call("fcntl(F_DUPFD_CLOEXEC)") { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// read(2): the count, 0 at end of file, nil when a non-blocking
    /// descriptor has nothing.
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        var unlimited = Deadline.none
        switch try io("read", deadline: &unlimited, { _ in Glibc.read(fd, buffer.baseAddress, buffer.count) }) {
        case .done(let n): return n
        case .wouldBlock, .timedOut: return nil
        }
    }

    /// write(2) of all of `bytes`; stops (returning the count written) when a
    /// non-blocking descriptor is full.
    @discardableResult
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        var offset = 0
        var unlimited = Deadline.none
        while offset < bytes.count {
            let outcome = try io("write", deadline: &unlimited) { _ in
                Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            }
            guard case .done(let n) = outcome else { break }
            offset += n
        }
        return offset
    }

    /// Reads up to `buffer.count` bytes of `fd` at `offset` (pread(2)),
    /// leaving the file offset alone: the count, 0 at end of file.
    static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int64) throws(Errno) -> Int {
        try call("pread") { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// Sets close-on-exec on `fd` (fcntl(2) F_GETFD, F_SETFD).
    static func setCloseOnExec(_ fd: Int32) throws(Errno) {
        let flags = try call("fcntl(F_GETFD)") { fcntl(fd, F_GETFD) }
        if flags & FD_CLOEXEC != 0 { return }
        _ = try call("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    // MARK: - Environment and clock

    /// The value of environment variable `name` (getenv(3)); nil when unset.
    static func environment(_ name: String) -> String? {
        getenv(name).map { cString($0) }
    }

    /// Removes environment variable `name` (unsetenv(3)).
    static func unsetEnvironment(_ name: String) {
        _ = unsetenv(name)
    }

    /// The wall-clock time in UTC, broken down (clock_gettime(2)
    /// CLOCK_REALTIME, gmtime_r(3)), to the millisecond.
    struct UTCTime {
        var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millisecond: Int
    }

    /// Now, as ``UTCTime``.
    static func utcNow() -> UTCTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return UTCTime(year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday),
                       hour: Int(parts.tm_hour), minute: Int(parts.tm_min), second: Int(parts.tm_sec),
                       millisecond: ts.tv_nsec / 1_000_000)
    }
}

/// Converts seconds (as Python gives them) to whole nanoseconds, saturating.
@inline(__always)
func nanos(fromSeconds seconds: Double) -> UInt64 {
    if !(seconds > 0) { return 0 }
    if seconds >= 9_000_000_000 { return UInt64(Int64.max) }
    return UInt64(seconds * 1_000_000_000)
}

/// Milliseconds left until `deadline` for poll(2), rounded up so a wait
/// never ends before its deadline.
@inline(__always)
func pollMillis(until deadline: UInt64) -> Int32 {
    let now = Sys.monotonicNanos()
    if now >= deadline { return 0 }
    let ms = (deadline - now + 999_999) / 1_000_000
    return ms > UInt64(Int32.max) ? Int32.max : Int32(ms)
}

/// A Swift string from a NUL-terminated C buffer (invalid UTF-8 repaired).
func cString(_ buffer: [CChar]) -> String {
    let end = buffer.firstIndex(of: 0) ?? buffer.count
    return buffer[..<end].withUnsafeBufferPointer {
        String(decoding: UnsafeRawBufferPointer($0), as: UTF8.self)
    }
}

/// A Swift string from a NUL-terminated C pointer (invalid UTF-8 repaired).
func cString(_ pointer: UnsafePointer<CChar>) -> String {
    String(decoding: UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)), as: UTF8.self)
}

/// Writes `text` to standard error in one `write(2)` where it fits, so
/// lines from concurrent threads do not interleave.
func writeStderr(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = try? Sys.write(2, UnsafeRawBufferPointer(bytes)) }
}
