#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SocketServer

/// Connects to `host`:`port` (TCP, or UDP with `.datagram`); if that fails,
/// prints `error: cannot connect to HOST:PORT: REASON` and exits 1.
public func connecting(host: String, port: Int, type: SocketType = .stream) -> Socket {
    do {
        if type == .stream {
            return try Socket.createConnection(host: host, port: port, timeout: nil)
        }
        let address = try SocketAddress.resolve(host: host, port: port, type: type)
        return try Socket.createConnection(to: address, timeout: nil, type: type)
    } catch {
        fail("cannot connect to \(hostPort(host, port)): \(reason(error))")
    }
}

/// Whether a file descriptor is a terminal (stdin 0, stdout 1, stderr 2).
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// Lines from a file descriptor as bytes, LF included (a last line without
/// one as it is): `getline(3)` over stdin, so any byte is kept as it is.
public final class InputLines {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0

    /// Lines from stdin.
    public init() { file = stdin }

    deinit { free(buffer) }

    /// The next line, or nil at end of input.
    public func next() -> [UInt8]? {
        while true {
            let n = getline(&buffer, &capacity, file)
            if n >= 0 {
                return buffer!.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
            }
            if ferror(file) != 0 && errno == EINTR { clearerr(file); continue }
            return nil
        }
    }
}

/// Writes bytes to stdout at once (unbuffered: the samples' output is
/// interactive).
public func printBytes<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
    writeAll(1, Array(bytes))
}
