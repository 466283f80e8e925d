#if canImport(Glibc)
@preconcurrency import Glibc
#endif

extension Socket {
    /// Sends `count` bytes of the open file `fileDescriptor`, starting at
    /// `offset`, without copying them through user space (`sendfile(2)`).
    /// Stops early only at the file's end. Returns the number of bytes sent
    /// (Python's `socket.sendfile`). Obeys the socket's time-out; never
    /// raises SIGPIPE. An error after a partial send carries the count sent
    /// (``SocketError/bytesSent``).
    @discardableResult
    public func sendFile(_ fileDescriptor: Int32, offset: Int = 0, count: Int) throws -> Int {
        guard offset >= 0, count >= 0 else { throw SocketError.invalidArgument("negative offset or count") }
        var position = Int64(offset)
        var sent = 0
        do {
            try Sys.withSIGPIPEBlocked {
                var deadline: UInt64 = 0
                while sent < count {
                    if sent > 0 { startDeadline(&deadline) }
                    let chunk = min(count - sent, 1 << 30)
                    let n = try io("sendfile", events: Int16(POLLOUT), deadline: &deadline) { fd in
                        Sys.sendfile(fd, fileDescriptor, &position, chunk)
                    }
                    if n == 0 { break }  // end of file
                    sent += n
                }
            }
        } catch let error as SocketError {
            throw error.sent(sent)
        }
        return sent
    }
}
