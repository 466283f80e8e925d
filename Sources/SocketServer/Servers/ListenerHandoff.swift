/// Hands listening sockets from a running server process to its
/// replacement over a Unix socket (`SCM_RIGHTS`), so that a restart
/// refuses no connection: the new process accepts on the very socket the
/// old one listened on, and connections waiting in its backlog are served
/// by whichever accepts first. A second socket on the same port
/// (`SO_REUSEPORT`) cannot do that: the connections queued on the old
/// socket are reset when it closes.
///
/// ```swift
/// // old process, on a signal to hand over:
/// try ListenerHandoff.offer(server, at: "/run/myapp/handoff.sock")
/// server.shutdown()            // stop accepting; the new process accepts now
/// server.serverClose()         // waits for the connections in progress
///
/// // new process, at start:
/// let sockets = try ListenerHandoff.take(from: "/run/myapp/handoff.sock")
/// let server = try ThreadingTCPServer(socket: sockets[0], Echo.self)
/// ```
///
/// The exchange: the taker connects; the offerer sends one line,
/// `LISTENERS n`, with the `n` descriptors attached; the taker answers
/// `OK`, and only then does `offer(_:at:timeout:)` return. On Linux the
/// offerer accepts only a taker of its own user (or root) (`SO_PEERCRED`);
/// put the path in a directory only the service can reach.
///
/// Before sending, the offerer makes the sockets non-blocking (the flag
/// belongs to the shared socket): while both processes accept (or
/// receive datagrams), one may find the other took the connection, and
/// must not block on it; the servers' loops pass over that quietly.
public enum ListenerHandoff {
    /// Offers `sockets` at `path` (a Unix socket created there, removed
    /// afterwards): waits for one taker, at most `timeout` seconds (nil:
    /// forever), gives it the sockets and returns once it has them. Our
    /// descriptors stay open: close them (``BaseServer/serverClose()``)
    /// once the new process serves. Throws if no taker came in time, or
    /// it did not confirm.
    public static func offer(_ sockets: [Socket], at path: String, timeout: Double? = nil) throws {
        guard !sockets.isEmpty else { throw SocketError.invalidArgument("nothing to hand over") }
        let address = try SocketAddress(unixPath: path)
        let listener = try Socket(family: .unix, type: .stream)
        defer { listener.close() }
        if let timeout { try listener.setTimeout(timeout) }
        try? Sys.unlink(path)
        try listener.bind(to: address)
        defer { try? Sys.unlink(path) }
        try listener.listen(backlog: 4)
        let deadline = timeout.map { Socket.monotonicNanos() &+ UInt64($0 * 1e9) }
        while true {
            if let deadline {
                let now = Socket.monotonicNanos()
                guard now < deadline else { throw SocketError.timeout(operation: "hand over listeners at", address: path) }
                try listener.setTimeout(Double(deadline - now) / 1e9)
            }
            let (connection, _) = try listener.accept()
            defer { connection.close() }
            guard isOwnUser(connection) else { continue }
            try connection.setTimeout(10)
            for s in sockets { try s.setBlocking(false) }
            try connection.sendFDs(Array("LISTENERS \(sockets.count)\n".utf8), sockets: sockets)
            let reply = try SocketReader(connection).readLine(maxLength: 16)
            guard reply == Array("OK\n".utf8) else {
                throw SocketError.invalidArgument("the taker at \(path) did not confirm the handoff")
            }
            return
        }
    }

    /// Offers a server's listening socket at `path` (see
    /// `offer(_:at:timeout:)`). A Unix server then no longer removes its
    /// socket file when closed: the new process serves on it.
    public static func offer(_ server: TCPServer, at path: String, timeout: Double? = nil) throws {
        try offer([server.socket], at: path, timeout: timeout)
        (server as? UnixStreamServer)?.socketFile.forget()
        (server as? UnixDatagramServer)?.socketFile.forget()
    }

    /// Takes the sockets offered at `path`, within `timeout` seconds:
    /// connects (retrying while nobody offers yet), receives them and
    /// confirms. They are close-on-exec and owned by the caller; give them
    /// to ``TCPServer/init(socket:_:)``.
    public static func take(from path: String, timeout: Double = 10) throws -> [Socket] {
        let address = try SocketAddress(unixPath: path)
        let deadline = Socket.monotonicNanos() &+ UInt64(max(0, timeout) * 1e9)
        var connection: Socket?
        while connection == nil {
            let s = try Socket(family: .unix, type: .stream)
            let code = s.connectEx(to: address)
            if code == 0 { connection = s; break }
            s.close()
            let notYet = Errno(code) == .noSuchFile || Errno(code) == .connectionRefused
            guard notYet, Socket.monotonicNanos() < deadline else {
                if notYet { throw SocketError.timeout(operation: "take listeners from", address: path) }
                throw SocketError.system(Errno(code), operation: "take listeners from", address: path)
            }
            Sys.sleep(nanos: 10_000_000)  // the offerer is not listening yet: poll again shortly
        }
        let socket = connection!
        defer { socket.close() }
        let remaining = Double(deadline &- min(deadline, Socket.monotonicNanos())) / 1e9
        try socket.setTimeout(max(remaining, 0.001))
        let (bytes, fds) = try socket.recvFDs(maxBytes: 64, maxFDs: 64)
        var sockets: [Socket] = []
        var failure: (any Error)?
        for fd in fds {
            do { sockets.append(try Socket(fileDescriptor: fd)) } catch { Sys.close(fd); failure = failure ?? error }
        }
        if let failure { throw failure }
        let line = String(decoding: bytes, as: UTF8.self)
        guard line == "LISTENERS \(sockets.count)\n", !sockets.isEmpty else {
            throw SocketError.invalidArgument("unexpected handoff message \(line.debugDescription) with \(fds.count) descriptors")
        }
        try socket.sendAll(Array("OK\n".utf8))
        return sockets
    }

    /// Whether the peer runs as our user (or root); true where unknown.
    private static func isOwnUser(_ connection: Socket) -> Bool {
        guard let uid = try? Sys.peerUserID(connection.fileno) else { return false }
        return uid == Sys.effectiveUserID || uid == 0
    }
}
