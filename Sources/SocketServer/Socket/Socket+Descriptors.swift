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
        var deadline: UInt64 = 0
        let sent = try bytes.withUnsafeBytes { data in
            try io("sendmsg", events: Sys.pollOut, deadline: &deadline) { fd in Sys.sendmsg(fd, data, fds: fds) }
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
        var received = Sys.ReceivedDescriptors()
        var deadline: UInt64 = 0
        let n = try bytes.withUnsafeMutableBytes { data in
            try io("recvmsg", events: Sys.pollIn, deadline: &deadline) { fd in
                Sys.recvmsg(fd, data, maxFDs: maxFDs, into: &received)
            }
        }
        let fds = received.fds
        if received.controlTruncated || received.dataTruncated {
            for fd in fds { Sys.close(fd) }
            let what = received.controlTruncated ? "more descriptors than \(maxFDs) were sent" : "the message was over \(maxBytes) bytes"
            throw SocketError.system(.messageTooLong, operation: "recvmsg (truncated: \(what))", address: nil)
        }
        return (Array(bytes[0..<n]), fds)
    }
}
