// Helpers for the Socket and Streams tests, beside the shared ones of
// TestSupport (its `SockKit` has the loopback listeners and pairs).

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

extension SockKit {
    /// The signals a test thread takes (``TestThread/init(unblocking:_:)``):
    /// SIGUSR1 for the EINTR tests, and its own SIGPIPE like any thread of
    /// an ordinary program.
    static let ordinarySignals: [Int32] = [SIGUSR1, SIGPIPE]

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

    /// Writes `bytes` to a new file at `path`; returns an open read-only descriptor.
    static func makeFile(_ path: String, _ bytes: [UInt8]) throws -> Int32 {
        try writeFile(path, bytes)
        let r = open(path, O_RDONLY | O_CLOEXEC)
        guard r >= 0 else { throw TestFailure("cannot open \(path)") }
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

extension SockKit {
    /// Waits until thread `tid` sleeps in one of `syscalls` (numbers as
    /// /proc/<pid>/task/<tid>/syscall shows them).
    static func waitUntilBlocked(tid: Int32, in syscalls: Set<Int>, seconds: Double = ioTimeout) -> Bool {
        eventually(seconds) {
            guard let stat = readTextFile("/proc/self/task/\(tid)/stat"),
                  let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(close, offsetBy: 2)]
            guard state == "S" || state == "D",
                  let sc = readTextFile("/proc/self/task/\(tid)/syscall"),
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
