#if canImport(Glibc)
@preconcurrency import Glibc
internal import CSocketServer
#endif

/// Threads on pthreads directly: Foundation stays out of the library, and
/// the stack size is ours to choose. For your own threads beside a server's
/// (a writer thread per client, a client reading while it sends), use
/// ``start(stackSize:_:)``, Python's `threading.Thread(target=...).start()`.
public enum Threads {
    /// Starts a detached thread running `body`, with a stack of `stackSize`
    /// bytes (rounded up to the system's minimum and page size; the default
    /// is the servers' ``BaseServer/threadStackSize``).
    ///
    /// ```swift
    /// try Threads.start { outbox.runWriter() }
    /// ```
    ///
    /// There is no `join`: to wait for the thread, let it report through a
    /// ``Locked`` value and ``Locked/wait(timeout:until:)`` on it. Throws
    /// ``ServerError/threadStart(_:operation:)`` with the `pthread_create`
    /// error (``Errno/wouldBlock`` when the system is out of threads). The thread is not one of Swift
    /// concurrency's pool, so it may block as long as it likes.
    public static func start(stackSize: Int = 512 * 1024, _ body: @escaping @Sendable () -> Void) throws {
        try spawn(stackSize: stackSize, body)
    }

    /// Starts a detached thread running `body` with the given stack size
    /// (rounded up to the system's minimum and page size). Throws
    /// ``ServerError/threadStart(_:operation:)`` with the `pthread_create`
    /// error (EAGAIN when the system is out of threads).
    static func spawn(stackSize: Int, name: String? = nil, _ body: @escaping @Sendable () -> Void) throws {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        if stackSize > 0 {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let minimum = Int(PTHREAD_STACK_MIN)
            let size = (max(stackSize, minimum) + page - 1) / page * page
            pthread_attr_setstacksize(&attr, size)
        }
        let box = Unmanaged.passRetained(ThreadBody(body))
        var thread = pthread_t()
        let r = pthread_create(&thread, &attr, { context in
            let body = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        if r != 0 {
            box.release()
            throw ServerError.threadStart(Errno(r, call: "pthread_create"))
        }
    }

    /// The kernel's id of the calling thread (-1 where unknown).
    static func currentID() -> Int32 {
        csocketserver_gettid()
    }

    /// A count of the threads alive in this process (from /proc; -1 if unknown).
    static func count() -> Int {
        guard let f = fopen("/proc/self/status", "r") else { return -1 }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = cString(line)
            if s.hasPrefix("Threads:") {
                return Int(s.dropFirst(8).filter { $0.isNumber }) ?? -1
            }
        }
        return -1
    }
}

/// A thread's handle (`pthread_t`), to tell threads apart.
typealias ThreadHandle = pthread_t

extension Sys {
    /// The calling thread's handle (pthread_self(3)).
    static func currentThread() -> ThreadHandle { pthread_self() }

    /// Whether `thread` is the calling thread (pthread_equal(3)).
    static func isCurrentThread(_ thread: ThreadHandle) -> Bool { pthread_equal(thread, pthread_self()) != 0 }
}

/// A pointer each thread has its own value of (pthread_key_create(3)):
/// nil on every thread until that thread sets it. The key is never
/// deleted (one per use, made once).
struct ThreadSpecific: @unchecked Sendable {
    // @unchecked: a pthread key is an index the library reads and writes
    // only through the thread-safe pthread_getspecific/setspecific.
    private let key: pthread_key_t

    init() {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        self.key = key
    }

    /// The calling thread's value.
    var value: UnsafeMutableRawPointer? { pthread_getspecific(key) }

    /// Sets the calling thread's value.
    func set(_ value: UnsafeMutableRawPointer?) { pthread_setspecific(key, value) }
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// A value guarded by a lock, with a condition to wait on: for the state
/// that a server's handler threads share (Python's `threading.Lock` and
/// `Condition` in one).
///
/// ```swift
/// let clients = Locked<[String: Socket]>([:])
/// clients.withLock { $0[name] = connection }
/// ```
///
/// Built on `pthread_mutex_t` and `pthread_cond_t` rather than
/// `Synchronization.Mutex`: on Linux the thread sanitizer does not see
/// `Mutex`'s futex, and reports every contended use as a race. With
/// `Locked`, `swift test --sanitize=thread` checks your handlers' shared
/// state for real.
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `mutex` held (`withLock`,
    // `update`, `wait`), which is what makes this type safe to share.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    /// A lock guarding `initial`.
    public init(_ initial: Value) {
        value = initial
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the value, the lock held.
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Changes the value, the lock held, and wakes every ``wait(timeout:until:)``.
    public func update<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
        return try body(&value)
    }

    /// Waits until `condition` holds (checked after each ``update(_:)``) or
    /// `timeout` seconds pass (nil: no limit); returns whether it holds.
    @discardableResult
    public func wait(timeout: Double? = nil, until condition: (Value) -> Bool) -> Bool {
        wait(deadline: timeout.map { Sys.monotonicNanos() &+ nanos(fromSeconds: $0) }, for: condition)
    }

    /// As ``wait(timeout:until:)``, with a deadline in monotonic nanoseconds.
    @discardableResult
    func wait(deadline: UInt64?, for condition: (Value) -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !condition(value) {
            if let deadline {
                if Sys.monotonicNanos() >= deadline { return condition(value) }
                var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                pthread_cond_timedwait(cond, mutex, &ts)
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
        return true
    }
}

/// An eventfd that wakes a thread blocked in poll(2): how
/// ``BaseServer/shutdown()`` reaches `serveForever` at once.
final class Wakeup: Sendable {
    let readFD: Int32
    let writeFD: Int32

    init() throws {
        let fd = try Sys.call("eventfd") { csocketserver_eventfd() }
        readFD = fd
        writeFD = fd
    }

    deinit {
        Sys.close(readFD)
    }

    func signal() {
        var one: UInt64 = 1
        // Non-blocking: a counter that is already huge simply stays ready.
        _ = try? withUnsafeBytes(of: &one) { (raw) throws(Errno) in try Sys.write(writeFD, raw) }
    }

    func drain() {
        var counter: UInt64 = 0
        _ = try? withUnsafeMutableBytes(of: &counter) { (raw) throws(Errno) in try Sys.read(readFD, raw) }
    }
}
