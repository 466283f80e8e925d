import Synchronization

/// Where a server is in its life, as a health check or a load balancer
/// asks: ``ServerControl/state``.
public enum ServerState: Sendable, Equatable, CustomStringConvertible {
    /// Made, not serving yet.
    case starting
    /// ``BaseServer/serveForever(pollInterval:)`` is running.
    case serving
    /// Going away: a drain or a graceful close is under way. A health
    /// check should now fail, so that the load balancer sends no more.
    case draining
    /// The loop has ended, or the server is closed.
    case stopped

    /// `starting`, `serving`, `draining` or `stopped`.
    public var description: String {
        switch self {
        case .starting: return "starting"
        case .serving: return "serving"
        case .draining: return "draining"
        case .stopped: return "stopped"
        }
    }
}

/// The serving lifecycle: one value, changed only by ``apply(_:)``.
struct Lifecycle: Sendable {
    enum Graceful: Sendable, Equatable { case none, running(ThreadHandle), done }

    enum Event {
        /// `serveForever` starts on this thread.
        case startServing(ThreadHandle)
        /// `serveForever` returns.
        case stoppedServing
        /// `shutdown()` was called.
        case shutdown
        /// `serverClose()`.
        case close
        /// A drain began (``BaseServer/drain(delay:grace:)``): health checks see `.draining`.
        case beginDrain
        /// `closeGracefully` starts on this thread.
        case beginGraceful(ThreadHandle)
        case endGraceful
        /// How long `serverClose()` may still wait for workers (monotonic nanoseconds).
        case workerDeadline(UInt64)
    }

    /// `serveForever` is running.
    var serving = false
    var servingThread: ThreadHandle?
    /// `shutdown()` was asked: the running loop stops, or the next one
    /// returns at once (as Python's).
    var stopRequested = false
    var closed = false
    var hasServed = false
    var draining = false
    var graceful = Graceful.none
    var workerDeadline: UInt64?

    /// Whether a running loop must stop now: the one fact the loop reads on
    /// every turn, mirrored in an atomic by ``ServerControl/apply(_:_:)``.
    var mustStop: Bool { serving && (closed || stopRequested) }

    var gracefulRunning: Bool {
        if case .running = graceful { return true }
        return false
    }

    var state: ServerState {
        if closed { return .stopped }
        if draining || gracefulRunning { return .draining }
        if serving { return stopRequested ? .draining : .serving }
        return hasServed ? .stopped : .starting
    }

    /// The transition function. Throws ``ServerError`` for a misuse:
    /// serving a closed server (`.closed`), or serving twice (`.alreadyServing`).
    mutating func apply(_ event: Event) throws {
        switch event {
        case .startServing(let thread):
            if closed { throw ServerError.closed(operation: "serve forever") }
            if serving { throw ServerError.alreadyServing() }
            serving = true
            servingThread = thread
            hasServed = true
        case .stoppedServing:
            serving = false
            servingThread = nil
            stopRequested = false
        case .shutdown:
            stopRequested = true
        case .close:
            closed = true
        case .beginDrain:
            draining = true
        case .beginGraceful(let thread):
            guard graceful == .none else { return }
            graceful = .running(thread)
            draining = true
            stopRequested = true
        case .endGraceful:
            graceful = .done
        case .workerDeadline(let deadline):
            workerDeadline = deadline
        }
    }
}

/// The part of a server that other threads may hold: its serving loop's
/// state. `shutdown()` from any thread, a signal watcher, a health check
/// reading ``state``, or `async` code awaiting ``run(pollInterval:)``.
public final class ServerControl: Sendable {
    let lifecycle = Locked(Lifecycle())
    /// `lifecycle.mustStop`, for the loop to read without the lock. Written
    /// only by ``apply(_:)``.
    let stopFlag = Atomic<Bool>(false)
    let wakeup: Wakeup
    /// The server, for ``run()`` and ``drain(delay:grace:)``; weak, so that
    /// the control does not keep a dropped server alive.
    let owner = Locked(WeakServer())

    init() throws { wakeup = try Wakeup() }

    /// Applies a lifecycle event and returns what `body` computes from the
    /// new state, under the lock.
    @discardableResult
    func apply<R>(_ event: Lifecycle.Event, _ body: (Lifecycle) -> R) throws -> R {
        try lifecycle.update { s in
            try s.apply(event)
            stopFlag.store(s.mustStop, ordering: .releasing)
            return body(s)
        }
    }

    /// Applies an event that cannot fail.
    func apply(_ event: Lifecycle.Event) {
        try? apply(event) { _ in () }
    }

    /// Whether ``BaseServer/serveForever(pollInterval:)`` is running.
    public var isServing: Bool { lifecycle.withLock { $0.serving } }

    /// Where the server is in its life: starting, serving, draining or stopped.
    public var state: ServerState { lifecycle.withLock { $0.state } }

    /// Waits until the serving loop has ended (or is this thread), at most
    /// until `deadline`.
    func waitForLoopToEnd(until deadline: UInt64) {
        _ = lifecycle.wait(deadline: deadline) { s in
            !s.serving || (s.servingThread.map { Sys.isCurrentThread($0) } ?? false)
        }
    }

    /// Stops ``BaseServer/serveForever(pollInterval:)`` and returns once it
    /// has stopped; see ``BaseServer/shutdown()``.
    public func shutdown() {
        let mustWait = (try? apply(.shutdown) { s in
            s.serving && !(s.servingThread.map { Sys.isCurrentThread($0) } ?? false)
        }) ?? false
        wakeup.signal()
        if mustWait { lifecycle.wait(deadline: nil) { !$0.serving } }
    }
}

/// A weak reference to a server that may be held across threads: the
/// server's own state is guarded (see ``BaseServer``), which is what makes
/// handing it over safe.
struct WeakServer: @unchecked Sendable {
    weak var server: BaseServer?
}

/// Carries a server to the thread that serves one of its requests. The
/// server's own state is guarded (see ``BaseServer``); handing it to
/// handler threads is the contract of the threading mix-in, as in Python.
struct ThreadHop<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
