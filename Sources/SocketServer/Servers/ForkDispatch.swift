#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process per request (``ForkingMixIn``). The child serves the
/// request and ends with `_exit`, never returning into the loop; the
/// parent reaps it and ends the request's record then (outcome from the
/// exit status; bytes are not known to the parent).
final class ForkDispatch: RequestDispatch {
    let children = Locked<[pid_t: ConnectionRecord]>([:])

    func process(_ request: Request, record: ConnectionRecord, server: BaseServer) throws {
        collect(server, blocking: false)
        fflush(nil)
        let pid = fork()
        if pid < 0 { throw SocketError.fromErrno("fork") }
        if pid == 0 {
            // The child: serve this one request, then _exit. It never returns
            // into the parent's loop, and runs no atexit handlers.
            SignalWatcher.resetInChild()
            server.releaseInChild()
            server.isChild = true
            let ok = server.runRequest(request, record: record)
            fflush(nil)
            _exit(ok ? 0 : 1)
        }
        children.update { $0[pid] = record }
        server.closeRequest(request)
    }

    func serviceActions(_ server: BaseServer) { collect(server, blocking: false) }

    /// Reaps finished children; with more than ``BaseServer/maxChildren``
    /// running, first waits until one ends. `blocking` waits for all.
    func collect(_ server: BaseServer, blocking: Bool) {
        while children.withLock({ $0.count }) >= server.maxChildren {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid > 0 {
                reaped(pid, status: status, server)
            } else if Sys.errno == ECHILD {
                for pid in children.withLock({ Array($0.keys) }) { reaped(pid, status: 0, server) }
            } else if Sys.errno != EINTR {
                break
            }
        }
        for pid in children.withLock({ Array($0.keys) }) {
            var status: Int32 = 0
            var r: pid_t
            repeat { r = waitpid(pid, &status, blocking ? 0 : WNOHANG) } while r < 0 && Sys.errno == EINTR
            if r == pid || (r < 0 && Sys.errno == ECHILD) { reaped(pid, status: status, server) }
        }
    }

    private func reaped(_ pid: pid_t, status: Int32, _ server: BaseServer) {
        guard let record = children.update({ $0.removeValue(forKey: pid) }) else { return }
        // Exited with 0: completed; anything else (an error, a signal): failed.
        let outcome: ConnectionOutcome = status == 0
            ? .completed : .failed(ChildExitError(pid: pid, status: status))
        server.endRequest(record, outcome: outcome, context: nil)
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
        for pid in children.withLock({ Array($0.keys) }) { kill(pid, SIGTERM) }
    }

    func killWorkers(_ server: BaseServer) {
        for pid in children.withLock({ Array($0.keys) }) { kill(pid, SIGKILL) }
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
