extension ByteStream {
    /// Sends `count` bytes of the open file `fileDescriptor` from `offset`
    /// (stopping early only at the file's end), over this stream: a plain
    /// socket uses ``Socket/sendFile(_:offset:count:)`` (no
    /// copy through user space); any other stream, a TLS session, reads
    /// the file and sends what it read (Python's `sendfile` fallback).
    /// Returns the count sent. Send what `wfile` holds first.
    @discardableResult
    public func sendFile(_ fileDescriptor: Int32, offset: Int = 0, count: Int) throws -> Int {
        if let socket = self as? Socket { return try socket.sendFile(fileDescriptor, offset: offset, count: count) }
        guard offset >= 0, count >= 0 else { throw SocketError.invalidArgument("negative offset or count") }
        let chunk = 64 * 1024
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var sent = 0
        var deadline: UInt64 = 0
        while sent < count {
            let n: Int
            do {
                n = try Sys.pread(fileDescriptor, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(chunk, count - sent)]),
                                  offset: Int64(offset + sent))
            } catch {
                throw SocketError.system(error, operation: "read file", address: nil)
            }
            if n == 0 { break }
            if sent > 0 { socket.startDeadline(&deadline) }
            try sendAll(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), deadline: &deadline)
            sent += n
        }
        return sent
    }
}

