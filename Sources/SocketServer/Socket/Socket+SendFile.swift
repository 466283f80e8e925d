extension Socket {
    /// Sends `count` bytes of the open file `fileDescriptor`, starting at
    /// `offset`, without copying them through user space (`sendfile(2)`).
    /// Stops early only at the file's end. Returns the number of bytes sent
    /// (Python's `socket.sendfile`). Obeys the socket's time-out; never
    /// raises SIGPIPE.
    ///
    /// As in Python, the file's offset is left after the last byte sent,
    /// also when the call fails part-way (so `lseek(fd, 0, SEEK_CUR)` tells
    /// how far it got; the error's ``SocketError/bytesSent`` says it too);
    /// a non-blocking socket (time-out 0) is refused up front with
    /// ``SocketError/invalidArgument(_:)``. A `count` of 0 sends nothing and
    /// returns 0 (Python raises `ValueError`, because its `None` means "to
    /// the end"; here `count` is always given, and an empty file is not an
    /// error).
    @discardableResult
    public func sendFile(_ fileDescriptor: Int32, offset: Int = 0, count: Int) throws -> Int {
        guard offset >= 0 else { throw SocketError.invalidArgument("negative offset \(offset)") }
        guard count >= 0 else { throw SocketError.invalidArgument("negative count \(count)") }
        guard timeout != 0 else { throw SocketError.invalidArgument("sendFile on a non-blocking socket") }
        if count == 0 {
            try? Sys.seek(fileDescriptor, to: Int64(offset))
            return 0
        }
        var position = Int64(offset)
        var sent = 0
        defer { try? Sys.seek(fileDescriptor, to: position) }
        do {
            try Sys.withSIGPIPEBlocked {
                var deadline: UInt64 = 0
                while sent < count {
                    if sent > 0 { startDeadline(&deadline) }
                    let chunk = min(count - sent, 1 << 30)
                    let n = try io("sendfile", events: Sys.pollOut, deadline: &deadline) { fd in
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
