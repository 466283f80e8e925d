// The socket system calls, as thin Swift functions. The ones that may wait
// (accept, recv, send, ...) return the raw result with `errno` set, for
// `Sys.io` to run; the others throw `Errno` themselves.

#if canImport(Glibc)
@preconcurrency import Glibc
internal import CSocketServer
#endif

extension Sys {
    /// Creates a socket with close-on-exec set.
    static func socket(_ family: Int32, _ type: Int32, _ proto: Int32) throws(Errno) -> Int32 {
        try call("socket") { Glibc.socket(family, type | sockCloexec, proto) }
    }

    /// accept4(2) with close-on-exec; -1 with `errno` set (for ``io(_:deadline:waitingFor:events:_:)``).
    @inline(__always)
    static func accept(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>, _ len: UnsafeMutablePointer<socklen_t>) -> Int32 {
        csocketserver_accept4(fd, addr, len, sockCloexec)
    }

    /// A connected pair, close-on-exec.
    static func socketpair(_ family: Int32, _ type: Int32, _ proto: Int32) throws(Errno) -> (Int32, Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> Int32 in
            let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try call("socketpair") { Glibc.socketpair(family, type | sockCloexec, proto, p) }
        }
        return fds
    }

    static func bind(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws(Errno) {
        _ = try call("bind") { Glibc.bind(fd, address, length) }
    }

    static func listen(_ fd: Int32, _ backlog: Int32) throws(Errno) {
        _ = try call("listen") { Glibc.listen(fd, backlog) }
    }

    /// connect(2) once: 0, or the error number (EINPROGRESS, EINTR...),
    /// which the caller decides about (a connect is not simply retried).
    static func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
        Glibc.connect(fd, address, length) == 0 ? 0 : Glibc.errno
    }

    /// recv(2), straight to the kernel (not a cancellation point: see
    /// CSocketServer's shims.c).
    @inline(__always)
    static func recv(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int, _ flags: Int32) -> Int {
        csocketserver_recv(fd, p, UInt(n), flags)
    }

    /// send(2), straight to the kernel, never raising SIGPIPE.
    @inline(__always)
    static func send(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int, _ flags: Int32) -> Int {
        csocketserver_send(fd, p, UInt(n), flags | noSignal)
    }

    @inline(__always)
    static func recvfrom(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int, _ flags: Int32,
                         _ a: UnsafeMutablePointer<sockaddr>, _ l: UnsafeMutablePointer<socklen_t>) -> Int {
        Glibc.recvfrom(fd, p, n, flags, a, l)
    }

    @inline(__always)
    static func sendto(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int, _ flags: Int32,
                       _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int {
        Glibc.sendto(fd, p, n, flags | noSignal, a, l)
    }

    enum ShutdownHow { case read, write, both }

    static func shutdown(_ fd: Int32, _ how: ShutdownHow) throws(Errno) {
        let h: Int32
        switch how {
        case .read: h = Int32(SHUT_RD)
        case .write: h = Int32(SHUT_WR)
        case .both: h = Int32(SHUT_RDWR)
        }
        _ = try call("shutdown") { Glibc.shutdown(fd, h) }
    }

    static func getsockname(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>, _ l: UnsafeMutablePointer<socklen_t>) throws(Errno) {
        _ = try call("getsockname") { Glibc.getsockname(fd, a, l) }
    }

    static func getpeername(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>, _ l: UnsafeMutablePointer<socklen_t>) throws(Errno) {
        _ = try call("getpeername") { Glibc.getpeername(fd, a, l) }
    }

    static func setsockopt(_ fd: Int32, _ level: Int32, _ name: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        _ = try call("setsockopt") { Glibc.setsockopt(fd, level, name, bytes.baseAddress, socklen_t(bytes.count)) }
    }

    /// getsockopt(2) into `bytes`; returns the length the kernel wrote.
    static func getsockopt(_ fd: Int32, _ level: Int32, _ name: Int32, _ bytes: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        var len = socklen_t(bytes.count)
        _ = try call("getsockopt") { Glibc.getsockopt(fd, level, name, bytes.baseAddress, &len) }
        return Int(len)
    }

    /// An integer socket option.
    static func getsockopt(_ fd: Int32, _ level: Int32, _ name: Int32) throws(Errno) -> Int32 {
        var value: Int32 = 0
        _ = try withUnsafeMutableBytes(of: &value) { (raw) throws(Errno) -> Int in try getsockopt(fd, level, name, raw) }
        return value
    }

    static func setsockopt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var v = value
        try withUnsafeBytes(of: &v) { (raw) throws(Errno) in try setsockopt(fd, level, name, raw) }
    }

    /// SO_RCVTIMEO or SO_SNDTIMEO from seconds (0: none), capped at
    /// Int32.max seconds so that a huge value cannot trap.
    static func setTimeval(_ fd: Int32, _ name: Int32, seconds: Double) throws(Errno) {
        let capped = min(max(0, seconds), Double(Int32.max))
        let whole = capped.rounded(.down)
        var tv = timeval(tv_sec: Int(whole), tv_usec: .init((capped - whole) * 1_000_000))
        try withUnsafeBytes(of: &tv) { (raw) throws(Errno) in try setsockopt(fd, SOL_SOCKET, name, raw) }
    }

    /// SO_RCVTIMEO or SO_SNDTIMEO in seconds (0: none).
    static func getTimeval(_ fd: Int32, _ name: Int32) throws(Errno) -> Double {
        var tv = timeval()
        _ = try withUnsafeMutableBytes(of: &tv) { (raw) throws(Errno) -> Int in try getsockopt(fd, SOL_SOCKET, name, raw) }
        return Double(tv.tv_sec) + Double(tv.tv_usec) / 1_000_000
    }

    /// Sets both SO_RCVTIMEO and SO_SNDTIMEO (0: none).
    static func setKernelTimeouts(_ fd: Int32, seconds: Double) throws(Errno) {
        try setTimeval(fd, SO_RCVTIMEO, seconds: seconds)
        try setTimeval(fd, SO_SNDTIMEO, seconds: seconds)
    }

    /// What an adopted descriptor is: its family, type and protocol.
    static func describeSocket(_ fd: Int32) throws(Errno) -> (family: Int32, type: Int32, proto: Int32) {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try withUnsafeMutablePointer(to: &ss) { (p) throws(Errno) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(Errno) in try getsockname(fd, sa, &len) }
        }
        let type = try getsockopt(fd, SOL_SOCKET, SO_TYPE)
        let proto = (try? getsockopt(fd, SOL_SOCKET, SO_PROTOCOL)) ?? 0
        return (Int32(ss.ss_family), type, proto)
    }

    /// sendfile(2) of up to `count` bytes of `file` from `offset` (advanced
    /// by what was sent); -1 with `errno` set, for ``io(_:deadline:waitingFor:events:_:)``.
    /// Call it inside ``withSIGPIPEBlocked(_:)``: sendfile takes no MSG_NOSIGNAL.
    @inline(__always)
    static func sendfile(_ socket: Int32, _ file: Int32, _ offset: inout Int64, _ count: Int) -> Int {
        var position = offset
        let n = csocketserver_sendfile(socket, file, &position, UInt(count))
        offset = position
        return n
    }

    /// Runs `body` with SIGPIPE blocked in this thread, and takes back a
    /// SIGPIPE it raised before the mask is restored.
    static func withSIGPIPEBlocked<R>(_ body: () throws -> R) rethrows -> R {
        var pipeSet = sigset_t()
        sigemptyset(&pipeSet)
        sigaddset(&pipeSet, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSet, &previous)
        defer {
            let saved = Glibc.errno
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 && sigismember(&previous, SIGPIPE) == 0 {
                var zero = timespec()
                while sigtimedwait(&pipeSet, nil, &zero) < 0 && Glibc.errno == EINTR {}
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
            Glibc.errno = saved
        }
        return try body()
    }

    // MARK: - Descriptors over Unix sockets (SCM_RIGHTS)

    /// sendmsg(2) of `data` with `fds` attached as one `SCM_RIGHTS`
    /// control message; -1 with `errno` set (for ``io(_:deadline:waitingFor:events:_:)``).
    static func sendmsg(_ fd: Int32, _ data: UnsafeRawBufferPointer, fds: [Int32]) -> Int {
        let dataBytes = fds.count * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: ControlMessage.space(dataBytes))
        return control.withUnsafeMutableBytes { raw in
            let header = raw.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
            header.pointee.cmsg_level = SOL_SOCKET
            header.pointee.cmsg_type = Int32(SCM_RIGHTS)
            header.pointee.cmsg_len = .init(ControlMessage.length(dataBytes))
            fds.withUnsafeBytes { (raw.baseAddress! + ControlMessage.headerSize).copyMemory(from: $0.baseAddress!, byteCount: dataBytes) }
            return ControlMessage.withMessage(UnsafeMutableRawBufferPointer(mutating: data), control: raw) { msg in
                Glibc.sendmsg(fd, &msg, noSignal)
            }
        }
    }

    /// What ``recvmsg(_:_:maxFDs:into:)`` received besides the bytes.
    struct ReceivedDescriptors {
        /// The descriptors attached (new, close-on-exec).
        var fds: [Int32] = []
        /// The sender attached more descriptors than there was room for (MSG_CTRUNC).
        var controlTruncated = false
        /// A datagram was longer than the buffer (MSG_TRUNC).
        var dataTruncated = false
    }

    /// recvmsg(2) into `data` with room for `maxFDs` descriptors, taken
    /// close-on-exec (MSG_CMSG_CLOEXEC) into `received`; -1 with `errno`
    /// set (for ``io(_:deadline:waitingFor:events:_:)``).
    static func recvmsg(_ fd: Int32, _ data: UnsafeMutableRawBufferPointer, maxFDs: Int,
                        into received: inout ReceivedDescriptors) -> Int {
        var control = [UInt8](repeating: 0, count: ControlMessage.space(maxFDs * MemoryLayout<Int32>.size))
        return control.withUnsafeMutableBytes { raw in
            return ControlMessage.withMessage(data, control: raw) { msg in
                let n = Glibc.recvmsg(fd, &msg, Int32(MSG_CMSG_CLOEXEC))
                guard n >= 0 else { return n }
                received = ReceivedDescriptors(fds: ControlMessage.descriptors(in: UnsafeRawBufferPointer(raw),
                                                                               length: Int(msg.msg_controllen)),
                                               controlTruncated: msg.msg_flags & Int32(MSG_CTRUNC) != 0,
                                               dataTruncated: msg.msg_flags & Int32(MSG_TRUNC) != 0)
                return n
            }
        }
    }

    /// The user id of the process at the other end of a Unix socket (SO_PEERCRED).
    static func peerUserID(_ fd: Int32) throws(Errno) -> UInt32 {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (hidden without _GNU_SOURCE)
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        _ = try withUnsafeMutableBytes(of: &cred) { (raw) throws(Errno) -> Int in try getsockopt(fd, SOL_SOCKET, SO_PEERCRED, raw) }
        return cred.1
    }

    /// The effective user id of this process (geteuid(2)).
    static var effectiveUserID: UInt32 { geteuid() }

    /// Sets a file's offset (`lseek(2)`, SEEK_SET).
    static func seek(_ fd: Int32, to offset: Int64) throws(Errno) {
        _ = try call("lseek") { lseek(fd, off_t(offset), SEEK_SET) }
    }
}

/// The control-message arithmetic of `CMSG_SPACE`/`CMSG_LEN` (macros Swift
/// does not import), and the descriptors of `SCM_RIGHTS` messages.
private enum ControlMessage {
    static let alignment = MemoryLayout<Int>.size
    static func align(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }
    static var headerSize: Int { align(MemoryLayout<cmsghdr>.size) }
    static func space(_ dataBytes: Int) -> Int { headerSize + align(dataBytes) }
    static func length(_ dataBytes: Int) -> Int { headerSize + dataBytes }

    /// Runs `body` with a message header over `data` (one iovec) and the
    /// control buffer `control`.
    static func withMessage(_ data: UnsafeMutableRawBufferPointer, control: UnsafeMutableRawBufferPointer,
                            _ body: (inout msghdr) -> Int) -> Int {
        var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
        return withUnsafeMutablePointer(to: &iov) { iovp in
            var msg = msghdr()
            msg.msg_iov = iovp
            msg.msg_iovlen = 1
            msg.msg_control = control.baseAddress
            msg.msg_controllen = .init(control.count)
            return body(&msg)
        }
    }

    /// The descriptors of the `SCM_RIGHTS` messages in the first `length` bytes of `raw`.
    static func descriptors(in raw: UnsafeRawBufferPointer, length controlLength: Int) -> [Int32] {
        var fds: [Int32] = []
        var offset = 0
        while offset + headerSize <= controlLength {
            let header = (raw.baseAddress! + offset).loadUnaligned(as: cmsghdr.self)
            let length = Int(header.cmsg_len)
            guard length >= headerSize, offset + length <= controlLength else { break }
            if header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS) {
                let count = (length - headerSize) / MemoryLayout<Int32>.size
                for i in 0..<count {
                    fds.append((raw.baseAddress! + offset + headerSize + i * 4).loadUnaligned(as: Int32.self))
                }
            }
            offset += align(length)
        }
        return fds
    }
}

// MARK: - Option names

extension Sys {
    static let solSocket = SOL_SOCKET
    static let ipprotoTCP = Int32(IPPROTO_TCP)
    static let soReuseAddr = SO_REUSEADDR
    static let soReusePort = SO_REUSEPORT
    static let soBroadcast = SO_BROADCAST
    static let soKeepAlive = SO_KEEPALIVE
    static let soAcceptConn = SO_ACCEPTCONN
    static let soRcvBuf = SO_RCVBUF
    static let soSndBuf = SO_SNDBUF
    static let soError = SO_ERROR
    static let soRcvTimeo = SO_RCVTIMEO
    static let soSndTimeo = SO_SNDTIMEO
    static let soType = SO_TYPE
    static let tcpNoDelay = Int32(TCP_NODELAY)
}
