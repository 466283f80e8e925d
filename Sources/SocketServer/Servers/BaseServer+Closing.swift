// Stopping: serverClose (Python's server_close), the graceful close a
// service makes on SIGTERM, and the drain a load balancer needs.
extension BaseServer {
    /// ``serverClose()``'s work (the `open` method is declared in the class).
    func closeServer() {
        let otherGraceful = control.lifecycle.withLock { s -> Bool in
            if case .running(let t) = s.graceful { return !Sys.isCurrentThread(t) }
            return false
        }
        if otherGraceful {
            // Another thread is closing gracefully (a signal): wait for it.
            control.lifecycle.wait(deadline: nil) { !$0.gracefulRunning }
            return
        }
        let workerDeadline: UInt64? = (try? control.apply(.close) { $0.workerDeadline }) ?? nil
        control.wakeup.signal()
        guard blockOnClose else { return }
        let deadline = workerDeadline ?? closeTimeout.map { Sys.monotonicNanos() &+ nanos(fromSeconds: $0) }
        if dispatch.waitForWorkers(self, until: deadline, all: false) { return }
        guard workerDeadline == nil else { return }  // closeGracefully has cut them already
        // The bound: cut what is left, and give it a moment to end.
        dispatch.cutWorkers()
        if !dispatch.waitForWorkers(self, until: Sys.monotonicNanos() &+ 1_000_000_000, all: false) {
            dispatch.killWorkers(self)
        }
    }

    /// Closes the server the way a service stops on SIGTERM: stops
    /// accepting and closes the listening socket at once, lets the requests
    /// in progress go on for up to `timeout` seconds (returning as soon as
    /// the last one ends), then shuts down the connections still open (a
    /// forking server sends its children SIGTERM), gives them a moment to
    /// end, and finishes with ``serverClose()``.
    public func closeGracefully(timeout: Double) {
        let me = Sys.currentThread()
        let started = (try? control.apply(.beginGraceful(me)) { $0.graceful == .running(me) }) ?? false
        guard started else {
            // Already done, or under way in another thread: wait for it.
            control.lifecycle.wait(deadline: nil) { !$0.gracefulRunning }
            return
        }
        control.wakeup.signal()
        let deadline = Sys.monotonicNanos() &+ nanos(fromSeconds: timeout)
        // Let the loop leave its poll first (within the grace period): until
        // it has, the kernel keeps the listening socket open, so a client
        // could still connect after this returned, and be reset.
        control.waitForLoopToEnd(until: deadline)
        releaseListener()
        let done = dispatch.waitForWorkers(self, until: deadline, all: true)
        if !done { dispatch.cutWorkers() }
        control.apply(.workerDeadline(Sys.monotonicNanos() &+ (done ? 0 : 500_000_000)))
        serverClose()
        if !done { dispatch.killWorkers(self) }
        control.apply(.endGraceful)
    }

    /// Leaves a load balancer's pool without refusing a connection:
    /// ``ServerControl/state`` turns `.draining` at once (a health check
    /// reading it fails, so the balancer stops sending), the server goes on
    /// serving for `delay` seconds (the balancer's check interval), then
    /// closes gracefully with `grace` seconds for the requests in progress
    /// (``closeGracefully(timeout:)``). Returns when the server is closed.
    public func drain(delay: Double, grace: Double) {
        control.apply(.beginDrain)
        if delay > 0 {
            // The wait ends early if the server is closed meanwhile.
            control.lifecycle.wait(deadline: Sys.monotonicNanos() &+ nanos(fromSeconds: delay)) { $0.closed }
        }
        closeGracefully(timeout: grace)
    }
}

/// Python's `with server:` block: ``closing(_:)`` closes the server however
/// the block ends.
public protocol ServerClosing: AnyObject {
    /// Closes the server: ``BaseServer/serverClose()``.
    func serverClose()
}

extension ServerClosing {
    /// Runs `body` with the server, then closes it, whether `body` returns
    /// or throws (Python's `with server: ...`).
    ///
    /// ```swift
    /// try ThreadingTCPServer(("127.0.0.1", 0), Echo.self).closing { server in
    ///     try server.serveForever()
    /// }
    /// ```
    public func closing<R>(_ body: (Self) throws -> R) rethrows -> R {
        defer { serverClose() }
        return try body(self)
    }
}
