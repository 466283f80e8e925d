#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The control-message arithmetic of `CMSG_SPACE`/`CMSG_LEN` (macros Swift does not import).
private enum ControlMessage {
    #if canImport(Darwin)
    static let alignment = 4
    #else
    static let alignment = MemoryLayout<Int>.size
    #endif
    static func align(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }
    static var headerSize: Int { align(MemoryLayout<cmsghdr>.size) }
    static func space(_ dataBytes: Int) -> Int { headerSize + align(dataBytes) }
    static func length(_ dataBytes: Int) -> Int { headerSize + dataBytes }
}

private let scmRights = Int32(SCM_RIGHTS)

extension Socket {
    /// Sends `bytes` with open descriptors attached (`SCM_RIGHTS` over a Unix
    /// socket; Python's `socket.send_fds`). The receiver gets its own
    /// descriptors for the same open files; ours stay open. A stream socket
    /// needs at least one byte to carry them. Returns the bytes sent (all
    /// of them, or the call throws; the descriptors go with the first byte).
    @discardableResult
    public func sendFDs(_ bytes: [UInt8], fds: [Int32]) throws -> Int {
        guard !fds.isEmpty else { try sendAll(bytes); return bytes.count }
        guard !bytes.isEmpty else { throw SocketError.invalidArgument("descriptors need at least one byte to go with") }
        let dataBytes = fds.count * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: ControlMessage.space(dataBytes))
        var bytes = bytes
        var deadline: UInt64 = 0
        let sent = try bytes.withUnsafeMutableBytes { data in
            try control.withUnsafeMutableBytes { raw in
                let header = raw.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                header.pointee.cmsg_level = SOL_SOCKET
                header.pointee.cmsg_type = scmRights
                header.pointee.cmsg_len = .init(ControlMessage.length(dataBytes))
                fds.withUnsafeBytes { (raw.baseAddress! + ControlMessage.headerSize).copyMemory(from: $0.baseAddress!, byteCount: dataBytes) }
                var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return try withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = raw.baseAddress
                    msg.msg_controllen = .init(raw.count)
                    return try io("sendmsg", events: Int16(POLLOUT), deadline: &deadline) { fd in
                        sendmsg(fd, &msg, Sys.noSignal)
                    }
                }
            }
        }
        if sent < bytes.count { try sendAll(Array(bytes[sent...])) }
        return bytes.count
    }

    /// Sends `bytes` with the descriptors of `sockets` attached (see ``sendFDs(_:fds:)``).
    @discardableResult
    public func sendFDs(_ bytes: [UInt8], sockets: [Socket]) throws -> Int {
        try sendFDs(bytes, fds: sockets.map(\.fileno))
    }

    /// Receives up to `maxBytes` bytes and up to `maxFDs` descriptors sent
    /// with them (Python's `socket.recv_fds`). The descriptors are new,
    /// close-on-exec (`MSG_CMSG_CLOEXEC`), and the caller's to close (wrap
    /// them: `Socket(fileDescriptor:)`). Empty bytes and no descriptors at
    /// end of file.
    ///
    /// Throws `EMSGSIZE` when the sender attached more descriptors than
    /// `maxFDs` (the kernel drops the rest: `MSG_CTRUNC`), or a datagram was
    /// longer than `maxBytes`; the descriptors that did arrive are closed
    /// first, so none leak.
    public func recvFDs(maxBytes: Int, maxFDs: Int) throws -> (bytes: [UInt8], fds: [Int32]) {
        guard maxBytes > 0, maxFDs > 0 else { throw SocketError.invalidArgument("recvFDs needs room for a byte and a descriptor") }
        var bytes = [UInt8](repeating: 0, count: maxBytes)
        var control = [UInt8](repeating: 0, count: ControlMessage.space(maxFDs * MemoryLayout<Int32>.size))
        var flags: Int32 = 0
        var deadline: UInt64 = 0
        #if os(Linux)
        let recvFlags = Int32(MSG_CMSG_CLOEXEC)
        #else
        let recvFlags: Int32 = 0
        #endif
        let (n, controlLength) = try bytes.withUnsafeMutableBytes { data in
            try control.withUnsafeMutableBytes { raw in
                var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return try withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = raw.baseAddress
                    msg.msg_controllen = .init(raw.count)
                    let n = try io("recvmsg", events: Int16(POLLIN), deadline: &deadline) { fd in recvmsg(fd, &msg, recvFlags) }
                    flags = msg.msg_flags
                    return (n, Int(msg.msg_controllen))
                }
            }
        }
        var fds: [Int32] = []
        control.withUnsafeBytes { raw in
            var offset = 0
            while offset + ControlMessage.headerSize <= controlLength {
                let header = (raw.baseAddress! + offset).loadUnaligned(as: cmsghdr.self)
                let length = Int(header.cmsg_len)
                guard length >= ControlMessage.headerSize, offset + length <= controlLength else { break }
                if header.cmsg_level == SOL_SOCKET && header.cmsg_type == scmRights {
                    let count = (length - ControlMessage.headerSize) / MemoryLayout<Int32>.size
                    for i in 0..<count {
                        fds.append((raw.baseAddress! + offset + ControlMessage.headerSize + i * 4).loadUnaligned(as: Int32.self))
                    }
                }
                offset += ControlMessage.align(length)
            }
        }
        #if !os(Linux)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        #endif
        if flags & Int32(MSG_CTRUNC) != 0 || flags & Int32(MSG_TRUNC) != 0 {
            for fd in fds { Sys.close(fd) }
            let what = flags & Int32(MSG_CTRUNC) != 0 ? "more descriptors than \(maxFDs) were sent" : "the message was over \(maxBytes) bytes"
            throw SocketError.system(Errno(EMSGSIZE), operation: "recvmsg (truncated: \(what))", address: nil)
        }
        return (Array(bytes[0..<n]), fds)
    }
}
