/// What the server knows of one admitted request from accept to end.
struct ConnectionRecord: Sendable {
    let id: UInt64
    let clientAddress: SocketAddress
    let acceptedAt: UInt64
    /// The per-client slot it holds (``ConnectionLimits/maxPerClient``).
    let clientKey: ClientKey?
    /// The connection, for cutting it at a graceful close; nil for a datagram.
    let socket: Socket?
}

/// How a server runs the requests it admitted: on the serving thread
/// (``InlineDispatch``), one thread each (``ThreadDispatch``), or one child
/// process each (``ForkDispatch``). `BaseServer` keeps the loop and the
/// hooks; a dispatch keeps its workers.
protocol RequestDispatch: AnyObject, Sendable {
    /// Serves `request` or hands it to a worker (Python's `process_request`).
    /// The request ends with ``BaseServer/endRequest(_:outcome:slot:)``
    /// once served; a throw means it never started (the caller ends it).
    func process(_ request: Request, record: ConnectionRecord, server: BaseServer) throws
    /// Once per loop turn (and on ``BaseServer/handleTimeout()``).
    func serviceActions(_ server: BaseServer)
    /// Waits until no worker is left or `deadline` passes (nil: no
    /// limit); returns whether none is left. `all`: daemon threads too.
    func waitForWorkers(_ server: BaseServer, until deadline: UInt64?, all: Bool) -> Bool
    /// Ends what is still being served: shuts down the open connections,
    /// or sends the children SIGTERM.
    func cutWorkers()
    /// After a cut and its grace: what still runs is killed (children) or left.
    func killWorkers(_ server: BaseServer)
}

/// The connections being served, for cutting at a graceful close.
final class OpenConnections: Sendable {
    private let sockets = Locked<[UInt64: Socket]>([:])

    func add(_ record: ConnectionRecord) {
        guard let s = record.socket else { return }
        sockets.withLock { $0[record.id] = s }
    }

    func remove(_ record: ConnectionRecord) {
        guard record.socket != nil else { return }
        sockets.withLock { _ = $0.removeValue(forKey: record.id) }
    }

    /// Shuts down both directions of every open connection: a handler
    /// blocked on it wakes with end of file or an error.
    func cut() {
        for s in sockets.withLock({ Array($0.values) }) { try? s.shutdown(.both) }
    }
}

/// Requests served one at a time on the serving thread (Python's plain
/// `TCPServer`).
final class InlineDispatch: RequestDispatch {
    private let running = Locked(0)
    private let open = OpenConnections()

    func process(_ request: Request, record: ConnectionRecord, server: BaseServer) throws {
        running.update { $0 += 1 }
        open.add(record)
        defer {
            open.remove(record)
            running.update { $0 -= 1 }
        }
        server.runRequest(request, record: record)
    }

    func serviceActions(_ server: BaseServer) {}

    func waitForWorkers(_ server: BaseServer, until deadline: UInt64?, all: Bool) -> Bool {
        running.wait(deadline: deadline) { $0 == 0 }
    }

    func cutWorkers() { open.cut() }
    func killWorkers(_ server: BaseServer) {}
}
