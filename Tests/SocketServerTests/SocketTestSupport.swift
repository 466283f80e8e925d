// Helpers for the Socket and Streams tests. Everything lives in `SockKit`
// so nothing collides with the server tests' helpers in the same target.

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Synchronization
import Testing

enum SockKit {
    /// The time-out test-side sockets get: nothing a test waits for can hang.
    static let ioTimeout: Double = 10

    /// Whether ::1 can be bound on this machine.
    static let ipv6Loopback: Bool = {
        guard Socket.hasIPv6, let s = try? Socket(family: .inet6, type: .stream) else { return false }
        defer { s.close() }
        guard let a = try? SocketAddress(ipv6: "::1", port: 0) else { return false }
        return (try? s.bind(to: a)) != nil
    }()

    /// The IP families the loopback tests run on.
    static let ipFamilies: [AddressFamily] = ipv6Loopback ? [.inet, .inet6] : [.inet]

    /// Connected stream kinds: "unix" (socketpair), "tcp4", and "tcp6" when ::1 works.
    static let connectionKinds: [String] = ipv6Loopback ? ["unix", "tcp4", "tcp6"] : ["unix", "tcp4"]

    /// The loopback address of `family`, port 0 unless given.
    static func loopback(_ family: AddressFamily, port: Int = 0) throws -> SocketAddress {
        family == .inet6 ? try SocketAddress(ipv6: "::1", port: port) : try SocketAddress(ipv4: "127.0.0.1", port: port)
    }

    /// A TCP socket listening on the loopback address of `family`, port 0.
    static func listener(_ family: AddressFamily = .inet, backlog: Int = 16) throws -> (Socket, SocketAddress) {
        let s = try Socket(family: family, type: .stream)
        try s.setTimeout(ioTimeout)
        try s.bind(to: loopback(family))
        try s.listen(backlog: backlog)
        return (s, try s.localAddress())
    }

    /// A connected TCP pair over loopback, both with the test time-out.
    static func tcpPair(_ family: AddressFamily = .inet) throws -> (client: Socket, server: Socket) {
        let (l, address) = try listener(family)
        defer { l.close() }
        let c = try Socket.createConnection(to: address, timeout: ioTimeout)
        let (s, _) = try l.accept()
        try s.setTimeout(ioTimeout)
        return (c, s)
    }

    /// A socketpair, both ends with the test time-out.
    static func pair(type: SocketType = .stream) throws -> (Socket, Socket) {
        let (a, b) = try Socket.pair(type: type)
        try a.setTimeout(ioTimeout)
        try b.setTimeout(ioTimeout)
        return (a, b)
    }

    /// A loopback port nobody listens on: bound, then closed at once.
    static func refusedPort(_ family: AddressFamily = .inet) throws -> Int {
        let s = try Socket(family: family, type: .stream)
        defer { s.close() }
        try s.bind(to: loopback(family))
        return try s.localAddress().port!
    }

    /// Reads exactly `count` bytes (fails on early end of file).
    static func recvExactly(_ socket: Socket, _ count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count < count {
            let chunk = try socket.recv(count - result.count)
            if chunk.isEmpty { throw SocketError.invalidArgument("early EOF after \(result.count) of \(count) bytes") }
            result += chunk
        }
        return result
    }

    /// Reads until end of file, at most `limit` bytes.
    static func recvToEOF(_ socket: Socket, limit: Int = 1 << 24) throws -> [UInt8] {
        var result: [UInt8] = []
        while result.count <= limit {
            let chunk = try socket.recv(64 * 1024)
            if chunk.isEmpty { return result }
            result += chunk
        }
        throw SocketError.invalidArgument("more than \(limit) bytes")
    }

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    /// Runs `body`, which must throw a `SocketError` carrying one of the
    /// given error numbers; returns that error.
    @discardableResult
    static func expectErrno(_ expected: [Errno], sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () throws -> Void) -> SocketError? {
        do {
            try body()
            Issue.record("expected one of \(expected), nothing was thrown", sourceLocation: sourceLocation)
            return nil
        } catch let e as SocketError {
            if !expected.contains(where: { $0 ~= e }) {
                Issue.record("expected one of \(expected), got \(e)", sourceLocation: sourceLocation)
            }
            return e
        } catch {
            Issue.record("expected a SocketError, got \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Monotonic time in seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A short pause between checks of a condition that has no event to wait on.
    static func pause() {
        var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        nanosleep(&ts, nil)
    }

    /// Polls `condition` until it holds or `seconds` pass; returns whether it held.
    static func eventually(_ seconds: Double = ioTimeout, _ condition: () -> Bool) -> Bool {
        let deadline = now() + seconds
        while now() < deadline {
            if condition() { return true }
            pause()
        }
        return condition()
    }

    // MARK: - Files

    /// A fresh temporary directory under /tmp; `cleanup()` removes it and
    /// the files created through `file(_:)`.
    final class TempDir: @unchecked Sendable {
        let path: String
        private let names = Locked<[String]>([])

        init() throws {
            var template = Array("/tmp/socktest-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw SocketError.invalidArgument("mkdtemp failed") }
            path = String(cString: p)
        }

        func file(_ name: String) -> String {
            names.withLock { $0.append(name) }
            return path + "/" + name
        }

        func cleanup() {
            for name in names.withLock({ $0 }) { unlink(path + "/" + name) }
            rmdir(path)
        }

        deinit { cleanup() }
    }

    /// Reads a small text file (for /proc).
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var result: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            result += buffer[0..<n]
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Writes `bytes` to a new file at `path`; returns an open read-only descriptor.
    static func makeFile(_ path: String, _ bytes: [UInt8]) throws -> Int32 {
        let w = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard w >= 0 else { throw SocketError.invalidArgument("cannot create \(path)") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(w, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { if errno == EINTR { continue }; close(w); throw SocketError.invalidArgument("write \(path)") }
            offset += n
        }
        close(w)
        let r = open(path, O_RDONLY | O_CLOEXEC)
        guard r >= 0 else { throw SocketError.invalidArgument("cannot open \(path)") }
        return r
    }

    // MARK: - Data patterns

    /// A pseudo-random table of prime length: byte `i` of the pattern is
    /// `table[i % table.count]`, so any misplaced chunk shows.
    static let patternTable: [UInt8] = {
        var g = SockKitRandom(seed: 0x5EED)
        return (0..<65521).map { _ in UInt8.random(in: 0...255, using: &g) }
    }()

    /// `count` bytes of the pattern from `offset`.
    static func pattern(offset: Int = 0, count: Int) -> [UInt8] {
        let table = patternTable
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var i = 0
            while i < count {
                let at = (offset + i) % table.count
                let n = min(table.count - at, count - i)
                table.withUnsafeBufferPointer { t in
                    UnsafeMutableRawPointer(buffer.baseAddress! + i).copyMemory(from: t.baseAddress! + at, byteCount: n)
                }
                i += n
            }
            initialized = count
        }
    }

    /// Whether `bytes` equal the pattern from `offset`.
    static func matchesPattern(_ bytes: UnsafeRawBufferPointer, offset: Int) -> Bool {
        let table = patternTable
        var i = 0
        while i < bytes.count {
            let at = (offset + i) % table.count
            let n = min(table.count - at, bytes.count - i)
            let same = table.withUnsafeBytes { t in memcmp(bytes.baseAddress! + i, t.baseAddress! + at, n) == 0 }
            if !same { return false }
            i += n
        }
        return true
    }
}

/// SplitMix64: a small seeded generator, so random tests reproduce.
struct SockKitRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

protocol SockKitRunnable: AnyObject { func run() }

/// Starts a joinable pthread that runs a retained `SockKitRunnable`.
private func sockKitSpawn(_ context: UnsafeMutableRawPointer) -> (pthread_t, Int32) {
    var t = pthread_t()
    let r = pthread_create(&t, nil, { ctx in
        let runnable = Unmanaged<AnyObject>.fromOpaque(ctx!).takeRetainedValue() as! SockKitRunnable
        runnable.run()
        return nil
    }, context)
    return (t, r)
}

/// A joinable pthread running `body`; `join` waits with a deadline.
final class SockKitThread<T: Sendable>: SockKitRunnable, @unchecked Sendable {
    // @unchecked: `result` and `tid` are only touched with `mutex` held.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var result: Result<T, any Error>?
    private var kernelID: Int32 = 0
    private var joined = false
    private(set) var thread = pthread_t()
    private let body: @Sendable () throws -> T

    init(_ body: @escaping @Sendable () throws -> T) throws {
        self.body = body
        mutex.initialize(to: pthread_mutex_t())
        cond.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
        let (t, r) = sockKitSpawn(Unmanaged.passRetained(self as AnyObject).toOpaque())
        if r != 0 {
            Unmanaged.passUnretained(self as AnyObject).release()  // the retain made for the thread
            throw SocketError.system(Errno(r), operation: "pthread_create", address: nil)
        }
        thread = t
    }

    func run() {
        // Threads of the test runner's pool block signals; this thread
        // takes SIGUSR1 (the EINTR tests) and its own SIGPIPE like any
        // thread of an ordinary program.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        // "/proc/thread-self" links to "<pid>/task/<tid>".
        var link = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/thread-self", &link, link.count - 1)
        let tid = n > 0 ? Int32(String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "/").last ?? "") ?? -1 : -1
        pthread_mutex_lock(mutex)
        kernelID = tid
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        let r = Result { try body() }
        pthread_mutex_lock(mutex)
        result = r
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// The kernel thread id, once the thread runs (-1 if unknown).
    var tid: Int32 {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = SockKit.now() + SockKit.ioTimeout
        while kernelID == 0 && SockKit.now() < deadline { timedWait() }
        return kernelID
    }

    /// Whether the body has returned.
    var isFinished: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return result != nil
    }

    private func timedWait() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        ts.tv_nsec += 50_000_000
        if ts.tv_nsec >= 1_000_000_000 { ts.tv_sec += 1; ts.tv_nsec -= 1_000_000_000 }
        pthread_cond_timedwait(cond, mutex, &ts)
    }

    /// Waits for the body (at most `seconds`) and returns its result.
    func join(timeout seconds: Double = 30) throws -> T {
        pthread_mutex_lock(mutex)
        let deadline = SockKit.now() + seconds
        while result == nil && SockKit.now() < deadline { timedWait() }
        let r = result
        pthread_mutex_unlock(mutex)
        guard let r else { throw SocketError.timeout(operation: "join test thread", address: nil) }
        if !joined {
            joined = true
            pthread_join(thread, nil)
        }
        return try r.get()
    }

    deinit {
        if !joined { pthread_detach(thread) }
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }
}

extension SockKit {
    /// Waits until thread `tid` sleeps in one of `syscalls` (numbers as
    /// /proc/<pid>/task/<tid>/syscall shows them).
    static func waitUntilBlocked(tid: Int32, in syscalls: Set<Int>, seconds: Double = ioTimeout) -> Bool {
        eventually(seconds) {
            guard let stat = readFile("/proc/self/task/\(tid)/stat"),
                  let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(close, offsetBy: 2)]
            guard state == "S" || state == "D",
                  let sc = readFile("/proc/self/task/\(tid)/syscall"),
                  let number = Int(sc.split(separator: " ").first ?? "") else { return false }
            return syscalls.contains(number)
        }
    }

    #if arch(x86_64)
    static let sysPoll: Set<Int> = [7, 271]  // poll, ppoll
    static let sysRecv: Set<Int> = [45, 47]  // recvfrom, recvmsg
    static let sysSend: Set<Int> = [44, 46]  // sendto, sendmsg
    static let sysAccept: Set<Int> = [43, 288]  // accept, accept4
    static let sysConnect: Set<Int> = [42]
    #elseif arch(arm64)
    static let sysPoll: Set<Int> = [73]  // ppoll
    static let sysRecv: Set<Int> = [207, 212]
    static let sysSend: Set<Int> = [206, 211]
    static let sysAccept: Set<Int> = [202, 242]
    static let sysConnect: Set<Int> = [203]
    #endif
}
