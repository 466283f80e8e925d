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
        let done: @Sendable () -> Void = { [counts, open] in
            open.remove(record)
            counts.update { c in
                c.threads -= 1
                if tracked { c.tracked -= 1 }
            }
        }
        do {
            let hop = ThreadHop(server)
            try Threads.spawn(stackSize: server.threadStackSize) {
                hop.value.processRequestThread(request, record: record)
                done()
            }
        } catch {
            done()
            throw error
        }
    }

    func serviceActions(_ server: BaseServer) {}

    func waitForWorkers(_ server: BaseServer, until deadline: UInt64?, all: Bool) -> Bool {
        counts.wait(deadline: deadline) { all ? $0.threads == 0 : $0.tracked == 0 }
    }

    func cutWorkers() { open.cut() }
    func killWorkers(_ server: BaseServer) {}
}
