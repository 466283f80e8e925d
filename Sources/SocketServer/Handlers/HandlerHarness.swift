/// Runs a handler without a server, over a socketpair, so it can be
/// unit-tested: the handler serves one end on its own thread while the test
/// talks to the other.
///
/// ```swift
/// let connection = try HandlerHarness.stream(Echo.self)
/// try connection.peer.sendAll(Array("hello\n".utf8))
/// try connection.peer.shutdown(.write)
/// let reply = try connection.peer.makeReader().readAll()   // "hello\n"
/// try connection.wait()                                    // rethrows the handler's error
/// ```
public enum HandlerHarness {
    /// Starts `handler` on one end of a Unix stream socketpair and returns
    /// the other end. `server` is what the handler sees as its server (a
    /// bare ``BaseServer`` by default); `clientAddress` what it sees as the
    /// peer's address.
    public static func stream(_ handler: StreamRequestHandler.Type, server: BaseServer? = nil,
                              clientAddress: SocketAddress? = nil) throws -> HandlerConnection {
        let (mine, theirs) = try Socket.pair(family: .unix, type: .stream)
        let server = try server ?? BaseServer(serverAddress: SocketAddress.unnamedUnix, handler: handler)
        let address = clientAddress ?? SocketAddress.unnamedUnix
        let connection = HandlerConnection(peer: mine)
        let hop = ThreadHop((server, handler))
        try Threads.spawn(stackSize: 1 << 20) {
            let (server, handler) = hop.value
            let result: Result<Void, any Error>
            do {
                let h = handler.init(request: .stream(theirs), clientAddress: address, server: server)
                try h.run()
                result = .success(())
            } catch {
                result = .failure(error)
            }
            try? theirs.shutdown(.write)
            theirs.close()
            connection.outcome.update { $0 = result }
        }
        return connection
    }

    /// Runs `handler` on one datagram, on this thread, and returns the
    /// reply it sent (nil when it sent none).
    public static func datagram(_ handler: DatagramRequestHandler.Type, packet: [UInt8], server: BaseServer? = nil,
                                clientAddress: SocketAddress? = nil) throws -> [UInt8]? {
        let (mine, theirs) = try Socket.pair(family: .unix, type: .datagram)
        defer { mine.close(); theirs.close() }
        let server = try server ?? BaseServer(serverAddress: SocketAddress.unnamedUnix, handler: handler)
        let h = handler.init(request: .datagram(packet: packet, socket: theirs),
                             clientAddress: clientAddress ?? SocketAddress.unnamedUnix, server: server)
        try h.run()
        try mine.setTimeout(0)
        do {
            return try mine.recv(65536)
        } catch Errno.wouldBlock {
            return nil
        }
    }
}

/// A handler running over a socketpair (see ``HandlerHarness``).
public final class HandlerConnection: Sendable {
    /// The test's end of the connection.
    public let peer: Socket
    let outcome = Locked<Result<Void, any Error>?>(nil)

    init(peer: Socket) { self.peer = peer }

    /// Waits for the handler to finish (at most `timeout` seconds) and
    /// rethrows what it threw; throws ``SocketError/timeout(operation:address:)``
    /// if it is still running.
    public func wait(timeout: Double = 10) throws {
        let deadline = Sys.monotonicNanos() &+ nanos(fromSeconds: timeout)
        guard outcome.wait(deadline: deadline, for: { $0 != nil }) else {
            throw SocketError.timeout(operation: "wait for handler", address: nil)
        }
        try outcome.withLock { $0 }!.get()
    }

    /// Whether the handler has finished.
    public var isFinished: Bool { outcome.withLock { $0 != nil } }
}
