#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer

/// A thread a test starts (a second client, a writer, a peer): a plain
/// pthread, not one of Swift concurrency's pool, so it may block as long as
/// it likes. Every wait for it is bounded: ``finished(within:)``,
/// ``join(timeout:)``.
///
/// ```swift
/// let sender = try TestThread { try socket.sendAll(bytes) }
/// ...
/// try sender.join()
/// ```
public final class TestThread<T: Sendable>: Sendable {
    private struct State {
        var kernelID: Int32 = 0
        var result: Result<T, any Error>?
        var joined = false
    }

    private let state: Locked<State>
    /// The pthread, for `pthread_kill`.
    public let pthread: pthread_t

    /// Starts `body` on a new thread. `unblocking` are signals the thread
    /// takes although the test runner's threads block them (SIGUSR1 for
    /// the EINTR tests, SIGPIPE to see that the library never raises it);
    /// by default the thread keeps the starting thread's signal mask.
    public init(unblocking signals: [Int32] = [], _ body: @escaping @Sendable () throws -> T) throws {
        let state = Locked(State())
        self.state = state
        let start = ThreadStart {
            if !signals.isEmpty {
                var set = sigset_t()
                sigemptyset(&set)
                for s in signals { sigaddset(&set, s) }
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
            }
            let tid = currentKernelThreadID()
            state.update { $0.kernelID = tid }
            let result = Result { try body() }
            state.update { $0.result = result }
        }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(start)
        let r = pthread_create(&thread, nil, { context in
            Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        if r != 0 {
            box.release()
            throw TestFailure("pthread_create: \(Errno(r))")
        }
        pthread = thread
    }

    deinit {
        if !state.withLock({ $0.joined }) { pthread_detach(pthread) }
    }

    /// The kernel's id of the thread, once it runs (-1 if unknown).
    public var tid: Int32 {
        state.wait(timeout: 30) { $0.kernelID != 0 }
        return state.withLock { $0.kernelID == 0 ? -1 : $0.kernelID }
    }

    /// Whether the body has returned (or thrown).
    public var isFinished: Bool { state.withLock { $0.result != nil } }

    /// Waits at most `seconds` for the body to end; whether it did.
    public func finished(within seconds: Double) -> Bool {
        state.wait(timeout: seconds) { $0.result != nil }
    }

    /// Waits at most `timeout` seconds for the body and returns what it
    /// returned, or throws what it threw (a ``TestFailure`` if it is still
    /// running).
    @discardableResult
    public func join(timeout: Double = 30) throws -> T {
        guard finished(within: timeout) else { throw TestFailure("test thread still running after \(timeout) s") }
        let (result, mustJoin) = state.withLock { s -> (Result<T, any Error>, Bool) in
            defer { s.joined = true }
            return (s.result!, !s.joined)
        }
        if mustJoin { pthread_join(pthread, nil) }
        return try result.get()
    }
}

private final class ThreadStart: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Runs `body` on `count` threads (each given its index) and waits for
/// them all, at most `timeout` seconds; whether they all started and ended.
public func runThreads(_ count: Int, timeout: Double = 120, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    guard let threads = try? (0..<count).map({ i in try TestThread { body(i) } }) else { return false }
    let deadline = now() + timeout
    return threads.allSatisfy { $0.finished(within: max(0, deadline - now())) }
}

/// The kernel's id of the calling thread ("/proc/thread-self" links to
/// "PID/task/TID"); -1 if unknown.
public func currentKernelThreadID() -> Int32 {
    var link = [CChar](repeating: 0, count: 128)
    let n = readlink("/proc/thread-self", &link, link.count - 1)
    guard n > 0 else { return -1 }
    let text = String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return Int32(text.split(separator: "/").last ?? "") ?? -1
}

/// The kernel ids of this process's live threads (from /proc/self/task).
public func liveThreadIDs() -> Set<Int32> {
    Set(directoryEntries("/proc/self/task").compactMap { Int32($0) })
}
