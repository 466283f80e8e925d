import Dispatch
import SocketServer

/// A task executor with a thread of its own, for async tests.
///
/// Swift Testing runs the synchronous tests on the cooperative pool too (as
/// many threads as cores, here 2), and they block it for seconds each. A
/// `Task` an async test starts, and every resumption of the test after an
/// `await`, would queue behind them (seen in CI: `control.run()` not started
/// after 10 s). Jobs with this executor as their preference run here instead:
///
/// ```swift
/// @Test func x() async throws { try await offThePool {
///     let task = Task(executorPreference: ThreadExecutor.shared) { try await control.run() }
///     ...
/// } }
/// ```
public final class ThreadExecutor: TaskExecutor {
    /// The one executor of the test process; its thread lives as long.
    public static let shared = ThreadExecutor()

    private let jobs = Locked<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    private init() {
        let executor = Unmanaged.passUnretained(self)  // `shared` keeps it for ever
        do {
            try Threads.start(stackSize: 1 << 20) { executor.takeUnretainedValue().runJobs() }
        } catch {
            fatalError("ThreadExecutor: no thread: \(error)")
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }

    private func runJobs() {
        while true {
            ready.wait()  // one signal for every job queued
            let job = jobs.withLock { $0.removeFirst() }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs `body` with ``ThreadExecutor/shared`` as its executor preference:
/// off the cooperative pool.
public func offThePool<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
    try await withTaskExecutorPreference(ThreadExecutor.shared) { try await body() }
}
