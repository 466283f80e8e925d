// The one home of the libc calls the library makes, and of the Glibc/Darwin
// differences between them. Everything above this file speaks Swift types.

#if canImport(Glibc)
@preconcurrency import Glibc
internal import CSocketServer
#elseif canImport(Musl)
internal import CSocketServer
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#else
#error("SocketServer supports Linux (Glibc, Musl) and Darwin")
#endif

enum Sys {
    #if canImport(Darwin)
    static let sockStream = SOCK_STREAM
    static let sockDgram = SOCK_DGRAM
    static let sockSeqpacket = SOCK_SEQPACKET
    static let sockRaw = SOCK_RAW
    /// Darwin has no MSG_NOSIGNAL; sockets get SO_NOSIGPIPE at creation instead.
    static let noSignal: Int32 = 0
    #else
    static let sockStream = Int32(SOCK_STREAM.rawValue)
    static let sockDgram = Int32(SOCK_DGRAM.rawValue)
    static let sockSeqpacket = Int32(SOCK_SEQPACKET.rawValue)
    static let sockRaw = Int32(SOCK_RAW.rawValue)
    static let noSignal = Int32(MSG_NOSIGNAL)
    #endif

    static var errno: Int32 {
        #if canImport(Glibc)
        Glibc.errno
        #elseif canImport(Musl)
        Musl.errno
        #else
        Darwin.errno
        #endif
    }

    /// Creates a socket with close-on-exec set and, on Darwin, SO_NOSIGPIPE:
    /// the one place SIGPIPE is dealt with for descriptors we create.
    static func socket(_ family: Int32, _ type: Int32, _ proto: Int32) -> Int32 {
        #if canImport(Darwin)
        return prepared(Darwin.socket(family, type, proto))
        #else
        return Glibc.socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto)
        #endif
    }

    static func accept(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>, _ len: UnsafeMutablePointer<socklen_t>) -> Int32 {
        #if canImport(Darwin)
        return prepared(Darwin.accept(fd, addr, len))
        #else
        return csocketserver_accept4(fd, addr, len, Int32(SOCK_CLOEXEC.rawValue))
        #endif
    }

    static func socketpair(_ family: Int32, _ type: Int32, _ proto: Int32, _ fds: UnsafeMutablePointer<Int32>) -> Int32 {
        #if canImport(Darwin)
        let r = Darwin.socketpair(family, type, proto, fds)
        if r == 0 { _ = prepared(fds[0]); _ = prepared(fds[1]) }
        return r
        #else
        return Glibc.socketpair(family, type | Int32(SOCK_CLOEXEC.rawValue), proto, fds)
        #endif
    }

    #if canImport(Darwin)
    /// Darwin has neither SOCK_CLOEXEC nor MSG_NOSIGNAL: a descriptor we make
    /// gets FD_CLOEXEC and SO_NOSIGPIPE here, right after it is made.
    private static func prepared(_ fd: Int32) -> Int32 {
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        return fd
    }
    #endif

    /// `close(2)`, never retried: on Linux the descriptor is gone even when
    /// close reports EINTR, and retrying could close a descriptor another
    /// thread has just been given.
    @discardableResult
    static func close(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        return Glibc.close(fd)
        #elseif canImport(Musl)
        return Musl.close(fd)
        #else
        return Darwin.close(fd)
        #endif
    }

    static func setNonBlocking(_ fd: Int32, _ on: Bool) -> Int32 {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 { return flags }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted == flags { return 0 }
        return fcntl(fd, F_SETFL, wanted)
    }

    /// Monotonic time in nanoseconds.
    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Waits for `events` on `fd` for at most `timeoutMillis` (-1: forever).
    /// Returns the revents, or 0 on time-out; EINTR is reported as -1 with
    /// errno set so the caller recomputes its deadline.
    static func poll(_ fd: Int32, _ events: Int16, _ timeoutMillis: Int32) -> Int32 {
        var p = pollfd(fd: fd, events: events, revents: 0)
        let r = Glibc_or_Darwin_poll(&p, 1, timeoutMillis)
        if r <= 0 { return r }
        return Int32(p.revents)
    }

    /// Sleeps for the given number of nanoseconds (restarting after signals).
    static func sleep(nanos: UInt64) {
        var req = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
        var rem = timespec()
        while nanosleep(&req, &rem) != 0 && Sys.errno == EINTR { req = rem }
    }
}

@inline(__always)
func Glibc_or_Darwin_poll(_ fds: UnsafeMutablePointer<pollfd>, _ n: Int, _ timeout: Int32) -> Int32 {
    #if canImport(Darwin)
    return Darwin.poll(fds, nfds_t(n), timeout)
    #elseif canImport(Musl)
    return Musl.poll(fds, nfds_t(n), timeout)
    #else
    return Glibc.poll(fds, nfds_t(n), timeout)
    #endif
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
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 { if Sys.errno == EINTR { continue }; return }
            offset += n
        }
    }
}
