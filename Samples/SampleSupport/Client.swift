#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SocketServer
import SocketServerTLS

/// The TLS options of the sample clients: `--tls`, `--ca FILE` (implies
/// `--tls`), `--server-name NAME`.
public enum ClientTLSOptions {
    /// The options that take a value.
    public static let valued = ["--ca", "--server-name"]
    /// The options without one.
    public static let flags = ["--tls"]
    /// Their lines for a usage text.
    public static let usageLines = """
          --tls              connect with TLS; verify the server against the system's certificates
          --ca FILE          trust the certificates in FILE instead (implies --tls)
          --server-name NAME the name to send (SNI) and to verify, instead of --host
    """

    /// Whether TLS was asked for.
    public static func wanted(_ args: Arguments) -> Bool {
        args.flag("--tls") || args.value("--ca") != nil || args.value("--server-name") != nil
    }
}

/// Connects to `host`:`port` over TCP, with TLS if the options ask for it
/// (``ClientTLSOptions``); if that fails, prints
/// `error: cannot connect to HOST:PORT: REASON` (REASON names a
/// certificate problem) and exits 1. Nothing is sent before the server's
/// certificate is verified.
public func connectingStream(_ args: Arguments, host: String, port: Int) -> any ByteStream {
    guard ClientTLSOptions.wanted(args) else { return connecting(host: host, port: port) }
    do {
        let trust: TLSTrust = args.value("--ca").map { .caFile($0) } ?? .system
        let context = try TLSContext(client: TLSClientConfiguration(trust: trust))
        return try TLSStream.connect(host: host, port: port, context: context,
                                     serverName: args.value("--server-name") ?? host, timeout: nil)
    } catch {
        fail("cannot connect to \(hostPort(host, port)): \(reason(error))")
    }
}

extension ByteStream {
    /// Sends every byte of `bytes`.
    public func sendAll(_ bytes: [UInt8]) throws {
        var deadline: UInt64 = 0
        try bytes.withUnsafeBytes { try sendAll($0, deadline: &deadline) }
    }

    /// Receives up to `maxCount` bytes; empty at end of file.
    public func receiveSome(_ maxCount: Int) throws -> [UInt8] {
        var deadline: UInt64 = 0
        return try [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, count in
            count = try receive(into: UnsafeMutableRawBufferPointer(buffer), deadline: &deadline)
        }
    }

    /// Ends the connection: a TLS session says close_notify first.
    public func closeStream() {
        if let tls = self as? TLSStream { tls.close() } else { socket.close() }
    }
}

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
