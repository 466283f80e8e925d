/// A thread per request (``ThreadingMixIn``): the thread is started with
/// the server's ``BaseServer/threadStackSize`` and ends with the request.
final class ThreadDispatch: RequestDispatch {
    struct Counts: Sendable {
        var threads = 0
        /// Threads ``BaseServer/serverClose()`` waits for (not daemon ones).
        var tracked = 0
    }

    let counts = Locked(Counts())
    private let open = OpenConnections()

    var activeCount: Int { counts.withLock { $0.threads } }

    func process(_ request: Request, record: ConnectionRecord, server: BaseServer) throws {
        let tracked = !server.daemonThreads
        counts.withLock { c in
            c.threads += 1
            if tracked { c.tracked += 1 }
        }
        open.add(record)
        // One closure, the thread's whole job: a second one for the ending
        // (shared with the failure path) would be one more allocation per
        // connection, which an idle connection's memory shows.
        do {
            let hop = ThreadHop(server)
            try Threads.spawn(stackSize: server.threadStackSize) { [counts, open] in
                hop.value.processRequestThread(request, record: record)
                Self.finished(record, tracked: tracked, counts: counts, open: open)
            }
        } catch {
            Self.finished(record, tracked: tracked, counts: counts, open: open)
            throw error
        }
    }

    /// A request's thread ended (or never started): it is no longer counted.
    private static func finished(_ record: ConnectionRecord, tracked: Bool, counts: Locked<Counts>, open: OpenConnections) {
        open.remove(record)
        counts.update { c in
            c.threads -= 1
            if tracked { c.tracked -= 1 }
        }
    }

    func serviceActions(_ server: BaseServer) {}

    func waitForWorkers(_ server: BaseServer, until deadline: UInt64?, all: Bool) -> Bool {
        counts.wait(deadline: deadline) { all ? $0.threads == 0 : $0.tracked == 0 }
    }

    func cutWorkers() { open.cut() }
    func killWorkers(_ server: BaseServer) {}
}
