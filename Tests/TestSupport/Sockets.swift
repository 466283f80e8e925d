#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer

/// Whether ::1 can be bound on this machine.
public let ipv6Loopback: Bool = {
    guard Socket.hasIPv6, let s = try? Socket(family: .inet6, type: .stream) else { return false }
    defer { s.close() }
    guard let a = try? SocketAddress(ipv6: "::1", port: 0) else { return false }
    return (try? s.bind(to: a)) != nil
}()

/// Sockets for tests: loopback listeners and connected pairs, every one
/// with a time-out, so that nothing a test waits for can hang.
public enum SockKit {
    /// The time-out test-side sockets get.
    public static let ioTimeout: Double = 10

    /// The IP families the loopback tests run on.
    public static let ipFamilies: [AddressFamily] = ipv6Loopback ? [.inet, .inet6] : [.inet]

    /// Connected stream kinds: "unix" (socketpair), "tcp4", and "tcp6" when ::1 works.
    public static let connectionKinds: [String] = ipv6Loopback ? ["unix", "tcp4", "tcp6"] : ["unix", "tcp4"]

    /// The loopback address of `family`, port 0 unless given.
    public static func loopback(_ family: AddressFamily, port: Int = 0) throws -> SocketAddress {
        family == .inet6 ? try SocketAddress(ipv6: "::1", port: port) : try SocketAddress(ipv4: "127.0.0.1", port: port)
    }

    /// A TCP socket listening on the loopback address of `family`, port 0.
    public static func listener(_ family: AddressFamily = .inet, backlog: Int = 16) throws -> (Socket, SocketAddress) {
        let s = try Socket(family: family, type: .stream)
        try s.setTimeout(ioTimeout)
        try s.bind(to: loopback(family))
        try s.listen(backlog: backlog)
        return (s, try s.localAddress())
    }

    /// A connected TCP pair over loopback, both with the test time-out.
    public static func tcpPair(_ family: AddressFamily = .inet) throws -> (client: Socket, server: Socket) {
        let (l, address) = try listener(family)
        defer { l.close() }
        let c = try Socket.createConnection(to: address, timeout: ioTimeout)
        let (s, _) = try l.accept()
        try s.setTimeout(ioTimeout)
        return (c, s)
    }

    /// A Unix socketpair, both ends with the test time-out.
    public static func pair(type: SocketType = .stream) throws -> (Socket, Socket) {
        let (a, b) = try Socket.pair(type: type)
        try a.setTimeout(ioTimeout)
        try b.setTimeout(ioTimeout)
        return (a, b)
    }

    /// A loopback port nobody listens on: bound, then closed at once
    /// (another process may take it in between).
    public static func refusedPort(_ family: AddressFamily = .inet) throws -> Int {
        let s = try Socket(family: family, type: .stream)
        defer { s.close() }
        try s.bind(to: loopback(family))
        return try s.localAddress().port!
    }

    /// Reads exactly `count` bytes (fails on early end of file).
    public static func recvExactly(_ socket: Socket, _ count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count < count {
            let chunk = try socket.recv(count - result.count)
            if chunk.isEmpty { throw TestFailure("early end of file after \(result.count) of \(count) bytes") }
            result += chunk
        }
        return result
    }

    /// Reads until end of file, at most `limit` bytes.
    public static func recvToEOF(_ socket: Socket, limit: Int = 1 << 24) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count <= limit {
            let chunk = try socket.recv(64 * 1024)
            if chunk.isEmpty { return result }
            result += chunk
        }
        throw TestFailure("more than \(limit) bytes")
    }

    public static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    public static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
}

/// A free loopback TCP port for a program that binds it itself (bound,
/// then closed: another process may take it in between, so callers retry
/// on EADDRINUSE where they can).
public func freePort(_ family: AddressFamily = .inet) throws -> Int { try SockKit.refusedPort(family) }

/// Connects until something answers on `address`, for at most `seconds`
/// (a child that is still starting to listen).
public func connectWhenUp(_ address: SocketAddress, seconds: Double = 10) throws -> Socket {
    let deadline = now() + seconds
    while true {
        do { return try Socket.createConnection(to: address, timeout: SockKit.ioTimeout) } catch {
            if now() >= deadline { throw error }
            pause(0.02)  // deadline: polling step of a bounded wait for a child to listen
        }
    }
}

/// SO_LINGER 0: `close` sends a reset instead of a FIN.
public func resetOnClose(_ socket: Socket) throws {
    var option = linger(l_onoff: 1, l_linger: 0)
    try withUnsafeBytes(of: &option) { try socket.setOption(level: SOL_SOCKET, name: SO_LINGER, bytes: $0) }
}
