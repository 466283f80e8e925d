#if canImport(Glibc)
@preconcurrency import Glibc
internal import CSocketServer
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// Sends `count` bytes of the open file `fileDescriptor`, starting at
    /// `offset`, without copying them through user space where the platform
    /// can (`sendfile(2)` on Linux; a read/send loop elsewhere). Stops early
    /// only at the file's end. Returns the number of bytes sent (Python's
    /// `socket.sendfile`). Obeys the socket's time-out; never raises SIGPIPE.
    @discardableResult
    public func sendFile(_ fileDescriptor: Int32, offset: Int = 0, count: Int) throws -> Int {
        guard offset >= 0, count >= 0 else { throw SocketError.invalidArgument("negative offset or count") }
        #if os(Linux)
        // sendfile(2) takes no MSG_NOSIGNAL: block SIGPIPE in this thread for
        // the call, and take back a SIGPIPE it raised before unblocking.
        var pipeSet = sigset_t()
        sigemptyset(&pipeSet)
        sigaddset(&pipeSet, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSet, &previous)
        defer {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 && sigismember(&previous, SIGPIPE) == 0 {
                var zero = timespec()
                while sigtimedwait(&pipeSet, nil, &zero) < 0 && Sys.errno == EINTR {}
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        var position = Int64(offset)
        var sent = 0
        var deadline: UInt64 = 0
        while sent < count {
            if sent > 0 { startDeadline(&deadline) }
            let chunk = min(count - sent, 1 << 30)
            let n = try io("sendfile", events: Int16(POLLOUT), deadline: &deadline) { fd in
                csocketserver_sendfile(fd, fileDescriptor, &position, UInt(chunk))
            }
            if n == 0 { break }  // end of file
            sent += n
        }
        return sent
        #else
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var sent = 0
        while sent < count {
            let want = min(buffer.count, count - sent)
            let n = buffer.withUnsafeMutableBytes { pread(fileDescriptor, $0.baseAddress, want, off_t(offset + sent)) }
            if n < 0 { if Sys.errno == EINTR { continue }; throw SocketError.fromErrno("read file") }
            if n == 0 { break }
            try buffer.withUnsafeBytes { try sendAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            sent += n
        }
        return sent
        #endif
    }
}
