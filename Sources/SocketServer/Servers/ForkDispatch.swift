/// A child process per request (``ForkingMixIn``). The child serves the
/// request and ends with `_exit`, never returning into the loop; the
/// parent reaps it and ends the request's record then (outcome from the
/// exit status; bytes are not known to the parent).
final class ForkDispatch: RequestDispatch {
    let children = Locked<[ProcessID: ConnectionRecord]>([:])

    func process(_ request: Request, record: ConnectionRecord, server: BaseServer) throws {
        collect(server, blocking: false)
        let pid: ProcessID
        do { pid = try Sys.fork() } catch { throw ServerError.processStart(error) }
        if pid == 0 {
            // The child: serve this one request, then _exit. It never returns
            // into the parent's loop, and runs no atexit handlers.
            SignalWatcher.resetInChild()
            server.releaseInChild()
            server.isChild = true
            let ok = server.runRequest(request, record: record)
            Sys.exitChild(ok ? 0 : 1)
        }
        children.update { $0[pid] = record }
        server.closeRequest(request)
    }

    func serviceActions(_ server: BaseServer) { collect(server, blocking: false) }

    /// Reaps finished children; with more than ``BaseServer/maxChildren``
    /// running, first waits until one ends. `blocking` waits for all.
    func collect(_ server: BaseServer, blocking: Bool) {
        waitForSlot: while children.withLock({ $0.count }) >= server.maxChildren {
            switch try? Sys.reap(-1, block: true) {
            case .ended(let pid, let status):
                reaped(pid, status: status, server)
            case .noChild:
                // None left to wait for (reaped elsewhere): their requests are over.
                for pid in children.withLock({ Array($0.keys) }) { reaped(pid, status: 0, server) }
            case .running, nil:
                break waitForSlot
            }
        }
        for pid in children.withLock({ Array($0.keys) }) {
            switch try? Sys.reap(pid, block: blocking) {
            case .ended(_, let status): reaped(pid, status: status, server)
            case .noChild: reaped(pid, status: 0, server)
            case .running, nil: break
            }
        }
    }

    private func reaped(_ pid: ProcessID, status: Int32, _ server: BaseServer) {
        guard let record = children.update({ $0.removeValue(forKey: pid) }) else { return }
        // Exited with 0: completed; anything else (an error, a signal): failed.
        let outcome: ConnectionOutcome = status == 0
            ? .completed : .failed(ChildExitError(pid: pid, status: status))
        server.endRequest(record, outcome: outcome)
    }

    func waitForWorkers(_ server: BaseServer, until deadline: UInt64?, all: Bool) -> Bool {
        guard let deadline else {
            collect(server, blocking: true)
            return true
        }
        while true {
            collect(server, blocking: false)
            if children.withLock({ $0.isEmpty }) { return true }
            if Sys.monotonicNanos() >= deadline { return false }
            Sys.sleep(nanos: 5_000_000)
        }
    }

    func cutWorkers() {
        for pid in children.withLock({ Array($0.keys) }) { try? Sys.kill(pid, Sys.signalTerminate) }
    }

    func killWorkers(_ server: BaseServer) {
        for pid in children.withLock({ Array($0.keys) }) { try? Sys.kill(pid, Sys.signalKill) }
        _ = waitForWorkers(server, until: Sys.monotonicNanos() &+ 200_000_000, all: true)
    }
}

/// A forked child that served a request did not exit with status 0 (its
/// handler failed, or a signal ended it).
public struct ChildExitError: Error, Sendable, CustomStringConvertible {
    /// The child's process id.
    public let pid: Int32
    /// Its `waitpid` status.
    public let status: Int32

    /// `child PID ended with status N`.
    public var description: String { "child \(pid) ended with status \(status)" }
}
