// The bridge to Swift concurrency. The serving loop and the handlers run
// on the library's own threads, never on the cooperative pool: the pool is
// as wide as the machine has cores and does not grow when a thread blocks,
// and everything here blocks. So a handler may wait on async work (a
// semaphore on a Task) without starving the pool that work runs on.

extension ServerControl {
    /// Serves until the server is shut down or closed, on a thread of the
    /// library's own (``BaseServer/serveForever(pollInterval:)``), and
    /// returns when the loop ends (after a graceful close or a drain: when
    /// that has finished). Cancelling the task stops the loop, cuts
    /// the open connections (``BaseServer/closeGracefully(timeout:)`` with
    /// no grace) and throws `CancellationError`. Throws the loop's
    /// ``ServerError`` for a misuse (already serving, closed), and
    /// ``ServerError/Kind/closed`` when the server has been dropped.
    ///
    /// ```swift
    /// let server = try ThreadingTCPServer(("127.0.0.1", 8000), Echo.self)
    /// try await server.control.run()
    /// ```
    public func run(pollInterval: Double? = 0.5) async throws {
        guard let server = owner.withLock({ $0.server }) else { throw ServerError.closed(operation: "run") }
        let hop = ThreadHop(server)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                do {
                    try Threads.spawn(stackSize: 1 << 20) { [lifecycle] in
                        let result = Result { try hop.value.serveForever(pollInterval: pollInterval) }
                        // A graceful close (a drain, a cancellation) stopped
                        // the loop: return once it has finished.
                        lifecycle.wait(deadline: nil) { !$0.gracefulRunning }
                        done.resume(with: result)
                    }
                } catch {
                    done.resume(throwing: error)
                }
            }
        } onCancel: {
            if !self.onOwnThread({ $0.closeGracefully(timeout: 0) }) {
                // No thread for the close: stop the loop at least, without waiting.
                self.apply(.shutdown)
                self.wakeup.signal()
            }
        }
        try Task.checkCancellation()
    }

    /// Closes the server gracefully (``BaseServer/closeGracefully(timeout:)``):
    /// stops accepting at once, lets the requests in progress finish for up
    /// to `timeout` seconds, cuts the rest, and returns when it is closed.
    public func drain(timeout: Double) async {
        await drain(delay: 0, grace: timeout)
    }

    /// Starts ``BaseServer/drain(delay:grace:)`` on a thread of the
    /// library's and returns at once: for a synchronous callback (a
    /// ServiceLifecycle graceful-shutdown handler). ``run(pollInterval:)`` returns when
    /// the close has finished.
    public func beginDrain(delay: Double = 0, grace: Double) {
        apply(.beginDrain)
        onOwnThread { $0.drain(delay: delay, grace: grace) }
    }

    /// What the server has done so far (``BaseServer/stats``); nil once
    /// the server is gone.
    public var stats: ServerStats? { owner.withLock { $0.server?.stats } }

    /// ``BaseServer/drain(delay:grace:)`` from async code: ``state`` turns
    /// `.draining` at once, the server serves for `delay` more seconds, then
    /// closes with `grace` seconds for the requests in progress.
    public func drain(delay: Double, grace: Double) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            if !onOwnThread({ server in
                server.drain(delay: delay, grace: grace)
                done.resume()
            }) {
                done.resume()
            }
        }
    }

    /// Runs `body` with the server on a new thread of the library's;
    /// false if the server is gone or no thread could be started.
    @discardableResult
    private func onOwnThread(_ body: @escaping @Sendable (BaseServer) -> Void) -> Bool {
        guard let server = owner.withLock({ $0.server }) else { return false }
        let hop = ThreadHop(server)
        do {
            try Threads.spawn(stackSize: 1 << 20) { body(hop.value) }
            return true
        } catch {
            return false
        }
    }
}
