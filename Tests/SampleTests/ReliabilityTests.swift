// Reliability: what the sample servers survive, over real loopback sockets.
//
// Each test asserts one protection of Samples/README.md ("No client can make a
// server hold more memory than its limits allow", invalid UTF-8 "never stops
// anything")
// or of the library (accept errors retried with back-off, no SIGPIPE,
// nothing left behind by a connection), by watching the server process
// from outside: its replies, its stderr, and /proc/PID (VmRSS, VmHWM,
// Threads, fd). Every wait has a deadline; nothing asserts on timing.
//
// Run alone:
//   swift build --build-tests --scratch-path .build-rel
//   .build-rel/debug/SocketServerPackageTests.xctest --testing-library swift-testing --filter Reliability
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif
import Dispatch
import SampleSupport
import SocketServer
import Synchronization
import Testing
import TestSupport

// MARK: - Watching a server from outside

/// What /proc says about a running server process.
private struct ProcessView {
    let pid: pid_t

    /// A numeric field of /proc/PID/status (`Threads`, `VmRSS` in KiB, ...).
    func status(_ key: String) -> Int? {
        guard let text = readFile("/proc/\(pid)/status")?.text else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let value = line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return value.flatMap { Int($0) }
        }
        return nil
    }

    var threads: Int { status("Threads") ?? -1 }
    var rssKiB: Int { status("VmRSS") ?? -1 }
    /// The peak resident size so far.
    var peakKiB: Int { status("VmHWM") ?? -1 }
    var fds: Int { directoryEntries("/proc/\(pid)/fd").count }

    var usage: Usage { Usage(fds: fds, threads: threads, rssKiB: rssKiB) }
}

private struct Usage: CustomStringConvertible {
    var fds: Int
    var threads: Int
    var rssKiB: Int
    var description: String { "fds \(fds), threads \(threads), RSS \(rssKiB) KiB" }
}

/// Waits (at most `timeout`) until the server is back to at most `threads`
/// threads and `fds` descriptors; whether it got there.
private func settles(_ view: ProcessView, threads: Int, fds: Int? = nil, timeout: Double = 20) -> Bool {
    eventually(timeout) { view.threads <= threads && (fds.map { view.fds <= $0 } ?? true) }
}

/// The inode of the socket listening on 127.0.0.1:`port` (from /proc/net/tcp):
/// the same inode before and after means the listener was never closed.
private func listenerInode(port: Int) -> String? {
    guard let table = readFile("/proc/net/tcp")?.text else { return nil }
    let wanted = ":" + String(port, radix: 16, uppercase: true).leftPadded(to: 4)
    for line in table.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ")
        guard f.count > 9 else { continue }
        if f[1].hasSuffix(wanted) && f[3] == "0A" { return String(f[9]) }
    }
    return nil
}

private extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

private func stderrLines(_ server: ServerProcess) -> [Substring] {
    server.stderr.split(separator: "\n")
}

/// Whether the process is still running (it is not reaped as exited).
private func isAlive(_ server: ServerProcess) -> Bool { server.process.wait(timeout: 0) == nil }

/// Closes with a reset: SO_LINGER {1, 0}, then close, so the peer gets RST.
private func reset(_ socket: Socket) {
    try? resetOnClose(socket)
    socket.close()
}

/// A TCP connection with a small receive buffer (so a server writing to
/// us blocks soon), 10-second time-outs.
private func connectSmall(port: Int) throws -> Socket {
    let s = try Socket(family: .inet, type: .stream)
    try s.setOption(.receiveBufferSize, 64 * 1024)
    try s.setTimeout(10)
    try s.connect(to: SocketAddress(ipv4: "127.0.0.1", port: port))
    return s
}

/// The server answers a fresh client: proves it is alive and still listening.
private func servesFreshClient(_ server: ServerProcess, _ kind: String) -> Bool {
    do {
        let c = try server.connect()
        switch kind {
        case "echo-server":
            try c.send("fresh\n")
            return try c.line() == "fresh"
        case "file-server":
            try c.send("LIST\n")
            return try c.line()?.hasPrefix("OK ") == true
        case "chat-server":
            return try c.line()?.hasPrefix("* welcome, you are ") == true
        case "timestamp-server":
            try c.send("fresh\n")
            return try c.line()?.hasSuffix("] fresh") == true
        default:
            return false
        }
    } catch {
        return false
    }
}

/// Outcomes gathered from many threads.
private final class Tally: Sendable {
    let completed = Atomic<Int>(0)
    let failureCount = Atomic<Int>(0)
    let counter = Atomic<Int>(0)
    private let failures = Locked<[String]>([])

    func fail(_ what: String) {
        failureCount.add(1, ordering: .relaxed)
        failures.withLock { if $0.count < 10 { $0.append(what) } }
    }

    var firstFailures: [String] { failures.withLock { $0 } }
}

/// A line's content as Samples/README.md defines it: without the LF and one
/// CR right before it (a CR not followed by the LF stays).
private func content(_ line: [UInt8]) -> [UInt8] {
    var end = line.count
    guard end > 0 && line[end - 1] == 0x0A else { return line }
    end -= 1
    if end > 0 && line[end - 1] == 0x0D { end -= 1 }
    return Array(line[..<end])
}

/// The reliability suites, one after another (each starts its own server
/// and some load it heavily, or watch its memory).
@Suite(.serialized) struct ReliabilityTests {}

// MARK: - 1. Line limits: bounded memory

extension ReliabilityTests {
    @Suite struct ReliabilityLineLimitTests {
        /// A line over the limit is refused with the error line and the
        /// connection closed; 100 MB with no newline at all cannot grow the
        /// server: it replies, closes, and its RSS stays within 32 MiB.
        @Test(arguments: ["echo-server", "file-server"])
        func endlessLineIsRefusedWithBoundedMemory(_ name: String) throws {
            let dir = try TempDir()
            let isEcho = name == "echo-server"
            let refusal = isEcho ? "error: line too long" : "ERR bad request"
            let server = try ServerProcess(name, isEcho ? [] : ["--dir", dir.path])
            let view = ProcessView(pid: server.process.pid)
            let idleThreads = view.threads

            // At the limit: served. One byte over: refused and closed.
            do {
                let c = try server.connect()
                if isEcho {
                    let longest = String(repeating: "a", count: 65536)
                    try c.send(longest + "\n")
                    #expect(try c.line() == longest)
                    try c.send(String(repeating: "b", count: 65537) + "\n")
                } else {
                    try c.send("GET " + String(repeating: "a", count: 1020) + "\n")  // 1024 bytes: a header, a bad name
                    #expect(try c.line() == "ERR invalid name")
                    try c.send("GET " + String(repeating: "a", count: 1021) + "\n")  // 1025 bytes
                }
                #expect(try c.line() == refusal)
                #expect(c.isClosedByServer())
            }
            #expect(settles(view, threads: idleThreads))
            let before = view.usage

            // 100 MB without a newline, streamed from a thread until the server closes.
            let total = 100 << 20
            let c = try server.connect()
            let socket = c.socket
            let tally = Tally()
            let sender = try TestThread {
                let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 16)
                var sent = 0
                while sent < total {
                    do { try socket.sendAll(chunk) } catch { break }
                    sent += chunk.count
                }
                tally.counter.store(sent, ordering: .relaxed)
            }
            #expect(try c.line() == refusal)
            #expect(c.isClosedByServer())
            #expect(sender.finished(within: 120), "the sender never stopped")
            let sent = tally.counter.load(ordering: .relaxed)
            #expect(sent < total, "the server read all \(sent) bytes instead of closing")
            socket.close()

            #expect(settles(view, threads: idleThreads), "threads: \(view.threads), idle: \(idleThreads)")
            let after = view.usage
            let peak = view.peakKiB
            // Under a sanitizer, shadow memory and quarantines make RSS
            // meaningless; the plain `swift test` run checks it.
            #expect(underSanitizer || after.rssKiB - before.rssKiB < 32 * 1024, "RSS before: \(before.rssKiB) KiB, after: \(after.rssKiB) KiB (sent \(sent) bytes)")
            #expect(underSanitizer || peak - before.rssKiB < 32 * 1024, "peak RSS \(peak) KiB, before \(before.rssKiB) KiB")
            #expect(isAlive(server))
            #expect(servesFreshClient(server, name))
        }
    }
}

// MARK: - 2. The peer vanishes mid-request

extension ReliabilityTests {
    @Suite struct ReliabilityPeerGoneTests {
        static let scenarios = [
            "echo: reset mid-line",
            "echo: reset while the server writes",
            "echo: close while the server writes",
            "file: reset mid-download",
            "file: close mid-download",
            "file: reset mid-upload",
        ]

        /// No crash, no SIGPIPE (the process lives), at most one stderr line for
        /// the connection, the handler thread ends, and a fresh client is served.
        @Test(arguments: scenarios)
        func peerVanishes(_ scenario: String) throws {
            let dir = try TempDir()
            let isEcho = scenario.hasPrefix("echo")
            let bigSize = 32 << 20
            if !isEcho {
                var rng = SplitMix(seed: 7)
                try writeFile(dir.file("big"), rng.bytes(bigSize))
            }
            let kind = isEcho ? "echo-server" : "file-server"
            let server = try ServerProcess(kind, isEcho ? [] : ["--dir", dir.path])
            let view = ProcessView(pid: server.process.pid)
            let idleThreads = view.threads
            #expect(servesFreshClient(server, kind))
            #expect(settles(view, threads: idleThreads))
            let idleFDs = view.fds
            let linesBefore = stderrLines(server).count

            let s = try connectSmall(port: server.port)
            let c = Client(socket: s)
            switch scenario {
            case "echo: reset mid-line":
                try c.send("a line that never ends")
                try c.send("\nfull line\n")
                #expect(try c.line() == "a line that never ends")
                #expect(try c.line() == "full line")
                try c.send("and a partial one")
                reset(s)
            case "echo: reset while the server writes", "echo: close while the server writes":
                // Push lines without reading until our own sends stall: the
                // server, echoing into our full receive buffer, is blocked writing.
                let pushed = pushUntilStalled(s, limit: 64 << 20)
                #expect(pushed > 0)
                if scenario.contains("reset") { reset(s) } else { s.close() }
            case "file: reset mid-download", "file: close mid-download":
                try c.send("GET big\n")
                #expect(try c.line() == "OK \(bigSize)")
                #expect(try c.read(1 << 20).count == 1 << 20)
                if scenario.contains("reset") { reset(s) } else { s.close() }
            case "file: reset mid-upload":
                try c.send("PUT upload \(bigSize)\n")
                #expect(try c.line() == "READY")
                try c.send([UInt8](repeating: 0x55, count: 1 << 20))
                reset(s)
            default:
                Issue.record("unknown scenario \(scenario)")
            }

            #expect(settles(view, threads: idleThreads, fds: idleFDs), "threads \(view.threads) (idle \(idleThreads)), fds \(view.fds) (idle \(idleFDs))")
            #expect(isAlive(server), "the server died: \(server.stderr)")
            let newLines = stderrLines(server).dropFirst(linesBefore)
            #expect(newLines.count <= 1, "stderr for one connection: \(newLines)")
            if scenario == "file: reset mid-upload" {
                #expect(eventually { dir.entries() == ["big"] }, "left behind: \(dir.entries())")
            }
            #expect(servesFreshClient(server, kind))
        }

        /// Sends 32 KiB lines without reading until a send has been blocked for
        /// half a second (or `limit` bytes went); the bytes sent.
        private func pushUntilStalled(_ s: Socket, limit: Int) -> Int {
            let line = [UInt8](repeating: UInt8(ascii: "e"), count: 32767) + [0x0A]
            let fd = s.fileno
            var sent = 0
            while sent < limit {
                let offset = sent % line.count
                let n = line.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
                if n > 0 { sent += n; continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&p, 1, 500) == 0 { break }  // stalled: the server is stuck writing to us
                    continue
                }
                Issue.record("send failed: \(String(cString: strerror(errno)))")
                break
            }
            return sent
        }
    }
}

// MARK: - 3. Descriptor exhaustion

extension ReliabilityTests {
    @Suite struct ReliabilityDescriptorTests {
        /// Under `ulimit -n 48`: connections are served until descriptors run
        /// out; then the held ones are still served, accept errors are reported
        /// without a flood (the loop backs off), and once descriptors are freed
        /// the waiting and new connections are served, on the same listener.
        @Test func descriptorExhaustionIsSurvived() throws {
            let sh = pathFromRoot("/bin/sh")
            let server = try ServerProcess(sh, ["-c", "ulimit -n 48 && exec \"$0\" \"$@\"", binDirectory + "/echo-server", "--port", "0"])
            #expect(server.listeningLine == "listening on 127.0.0.1:\(server.port)")
            let view = ProcessView(pid: server.process.pid)
            let listener = listenerInode(port: server.port)
            #expect(listener != nil)

            var held: [Client] = []
            var waiting: (Client, String)?
            for i in 0..<100 {
                let c = try server.connect()
                try c.socket.setTimeout(2)
                try c.send("ping \(i)\n")
                var reply: String? = try? c.line()
                if reply == nil && !server.stderr.contains("Too many open files") {
                    // Not refused, only slow (a loaded machine): wait longer.
                    try c.socket.setTimeout(10)
                    reply = try? c.line()
                }
                if reply == "ping \(i)" {
                    held.append(c)
                } else {
                    #expect(reply == nil, "unexpected reply \(reply ?? "")")
                    waiting = (c, "ping \(i)")
                    break
                }
            }
            #expect(waiting != nil, "100 connections were all served under ulimit -n 48")
            #expect(held.count >= 20, "only \(held.count) served")
            #expect(eventually { server.stderr.contains("Too many open files") }, "no accept error reported: \(server.stderr)")

            // The held connections are still served.
            for (i, c) in held.enumerated() {
                try c.socket.setTimeout(10)
                try c.send("still \(i)\n")
                #expect(try c.line() == "still \(i)")
            }

            // Free descriptors: the waiting connection and a new one are served.
            held.removeLast(max(0, held.count - 5))
            if let (c, expected) = waiting {
                try c.socket.setTimeout(10)
                #expect(try c.line() == expected)
            }
            #expect(servesFreshClient(server, "echo-server"))
            #expect(isAlive(server))
            #expect(listenerInode(port: server.port) == listener, "the listening socket changed")
            let lines = stderrLines(server)
            #expect(lines.count < 100, "\(lines.count) stderr lines: \(lines.prefix(5))...")
            #expect(view.fds <= 48)
        }
    }
}

/// `path` (absolute) as a path relative to the sample directory, for
/// ``Proc``, which runs `binDirectory/NAME`: as many `..` as needed, then `path`.
private func pathFromRoot(_ path: String) -> String {
    String(repeating: "../", count: binDirectory.split(separator: "/").count) + path.drop { $0 == "/" }
}

// MARK: - 4. fork() fails

extension ReliabilityTests {
    @Suite struct ReliabilityForkTests {
        /// Run as `nobody` with RLIMIT_NPROC at what it already uses, a forking
        /// server cannot fork: each connection is closed and reported, and the
        /// server goes on listening.
        @Test func forkFailureClosesAndGoesOn() throws {
            if underThreadSanitizer { try Test.cancel("forking is not supported under the thread sanitizer") }
            let setprivPaths: [String] = ["/usr/bin/setpriv", "/bin/setpriv"]
            let prlimitPaths: [String] = ["/usr/bin/prlimit", "/bin/prlimit"]
            guard let setpriv = setprivPaths.first(where: { access($0, X_OK) == 0 }) else { try Test.cancel("setpriv is not installed") }
            guard let prlimit = prlimitPaths.first(where: { access($0, X_OK) == 0 }) else { try Test.cancel("prlimit is not installed") }
            guard getuid() == 0 else { try Test.cancel("needs root to switch to nobody (setpriv --reuid)") }
            guard let pw = getpwnam("nobody") else { try Test.cancel("no user nobody") }
            let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)

            // A copy nobody can execute, if the build directory is not reachable.
            var binary = binDirectory + "/echo-server"
            var copyDir: TempDir?
            if !reachableByOthers(binary) {
                let d = try TempDir()
                chmod(d.path, 0o755)
                guard let bytes = readFile(binary) else { throw TestFailure("cannot read \(binary)") }
                try writeFile(d.file("echo-server"), bytes)
                chmod(d.file("echo-server"), 0o755)
                binary = d.file("echo-server")
                copyDir = d
            }
            defer { _ = copyDir }
            let asNobody = ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups"]
            let probe = try Proc(pathFromRoot(setpriv), asNobody + [prlimit, "--nproc=64:64", "/bin/sh", "-c", "test -x \"$0\"", binary])
            guard probe.exitCode() == 0 else { try Test.cancel("cannot run \(binary) as nobody: \(probe.stderr)") }

            // The server's own tasks (main and signal threads), measured unconfined.
            let threads: Int
            do {
                let plain = try ServerProcess("echo-server", ["--mode", "forking"])
                threads = ProcessView(pid: plain.process.pid).threads
                plain.process.kill()
            }
            #expect(threads >= 1)
            // RLIMIT_NPROC counts every task of the user: what nobody already runs, plus the server's.
            let limit = tasksOf(uid: uid) + threads
            let server = try ServerProcess(pathFromRoot(setpriv), asNobody + [
                prlimit, "--nproc=\(limit):\(limit)", binary, "--mode", "forking", "--port", "0",
            ])
            let listener = listenerInode(port: server.port)
            #expect(listener != nil)

            for round in 1...2 {
                let c = try server.connect()
                try? c.send("hello\n")
                #expect(c.isClosedByServer(), "connection \(round) was not closed")
                #expect(eventually { forkLines(server).count >= round },
                        "fork failure \(round) not reported: \(server.stderr)")
                #expect(isAlive(server))
            }
            #expect(listenerInode(port: server.port) == listener, "the server stopped listening")
            let reported = forkLines(server)
            #expect(reported.count <= 3, "\(reported)")
        }

        /// The stderr lines that mention fork.
        private func forkLines(_ server: ServerProcess) -> [String] {
            server.stderr.split(separator: "\n").map(String.init).filter { line in line.contains("fork") }
        }

        /// Whether every directory on the way to `path` is searchable by others
        /// and the file is readable and executable by them.
        private func reachableByOthers(_ path: String) -> Bool {
            var prefix = ""
            for part in path.split(separator: "/").dropLast() {
                prefix += "/" + part
                var st = stat()
                guard stat(prefix, &st) == 0, st.st_mode & S_IXOTH != 0 else { return false }
            }
            var st = stat()
            return stat(path, &st) == 0 && st.st_mode & (S_IXOTH | S_IROTH) == (S_IXOTH | S_IROTH)
        }

        /// How many tasks (threads) processes of `uid` run now.
        private func tasksOf(uid: uid_t) -> Int {
            var total = 0
            for entry in directoryEntries("/proc") where entry.allSatisfy(\.isNumber) {
                guard let text = readFile("/proc/\(entry)/status")?.text else { continue }
                var realUID: String?
                var threads = 0
                for line in text.split(separator: "\n") {
                    let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                    if f.first == "Uid:", f.count > 1 { realUID = String(f[1]) }
                    if f.first == "Threads:", f.count > 1 { threads = Int(f[1]) ?? 0 }
                }
                if realUID == String(uid) { total += threads }
            }
            return total
        }
    }
}

// MARK: - 5. Churn: connections dropped at random among real work

extension ReliabilityTests {
    @Suite struct ReliabilityChurnTests {
        /// 1,000 connections dropped at random (FIN, RST, mid-line) while 50
        /// others each echo 200 random lines: every exchange is byte-exact, and
        /// the server ends with the descriptors and threads it had before.
        @Test func randomDropsAmongRealWork() throws {
            let server = try ServerProcess("echo-server")
            let view = ProcessView(pid: server.process.pid)
            let idleThreads = view.threads
            #expect(servesFreshClient(server, "echo-server"))
            #expect(settles(view, threads: idleThreads))
            let before = view.usage
            let port = server.port
            let workers = Tally()
            let droppers = Tally()

            let finished = runThreads(50 + 10, timeout: 300) { i in
                if i < 50 {
                    Self.work(port: port, seed: UInt64(1000 + i), tally: workers)
                } else {
                    Self.drop(port: port, seed: UInt64(2000 + i), count: 100, tally: droppers)
                }
            }
            #expect(finished, "the clients did not finish within 300 s")
            #expect(workers.failureCount.load(ordering: .relaxed) == 0, "\(workers.firstFailures)")
            #expect(workers.completed.load(ordering: .relaxed) == 50)
            #expect(droppers.failureCount.load(ordering: .relaxed) == 0, "\(droppers.firstFailures)")
            #expect(droppers.completed.load(ordering: .relaxed) == 1000)

            #expect(settles(view, threads: before.threads, fds: before.fds, timeout: 30),
                    "before: \(before); now: \(view.usage)")
            #expect(isAlive(server))
            #expect(servesFreshClient(server, "echo-server"))
        }

        /// One real client: 200 lines of random bytes and lengths, each echoed exactly.
        private static func work(port: Int, seed: UInt64, tally: Tally) {
            var rng = SplitMix(seed: seed)
            do {
                let c = try Client(port: port)
                for n in 0..<200 {
                    let length = Int.random(in: 0...10, using: &rng) == 0 ? Int.random(in: 4096...65536, using: &rng) : Int.random(in: 0...2048, using: &rng)
                    let line = rng.bytes(length, excluding: [0x0A]) + [0x0A]
                    try c.send(line)
                    guard let got = try c.rawLine() else { tally.fail("seed \(seed) line \(n): EOF"); return }
                    if got != line { tally.fail("seed \(seed) line \(n): \(got.count) bytes back for \(line.count), differing"); return }
                }
                try c.socket.shutdown(.write)
                if try c.rawLine() != nil { tally.fail("seed \(seed): data after the last line") }
                tally.completed.add(1, ordering: .relaxed)
            } catch {
                tally.fail("seed \(seed): \(error)")
            }
        }

        /// `count` connections, each abandoned one of six ways.
        private static func drop(port: Int, seed: UInt64, count: Int, tally: Tally) {
            var rng = SplitMix(seed: seed)
            for _ in 0..<count {
                do {
                    let s = try Socket.createConnection(host: "127.0.0.1", port: port, timeout: 10)
                    let partial = rng.bytes(Int.random(in: 1...3000, using: &rng), excluding: [0x0A])
                    switch Int.random(in: 0..<6, using: &rng) {
                    case 0: s.close()  // FIN at once
                    case 1: reset(s)  // RST at once
                    case 2: try s.sendAll(partial); s.close()  // FIN mid-line
                    case 3: try s.sendAll(partial); reset(s)  // RST mid-line
                    case 4: try s.sendAll(partial + [0x0A] + partial); reset(s)  // RST with a reply unread
                    default:  // one exchange, then FIN
                        let c = Client(socket: s)
                        try c.send(partial + [0x0A])
                        if try c.rawLine() != partial + [0x0A] { tally.fail("seed \(seed): bad echo") }
                        s.close()
                    }
                    tally.completed.add(1, ordering: .relaxed)
                } catch {
                    tally.fail("seed \(seed): \(error)")
                }
            }
        }
    }
}

// MARK: - 6. Garbage: random bytes, invalid UTF-8, NUL, lone CR

extension ReliabilityTests {
    @Suite struct ReliabilityGarbageTests {
        /// Hand-picked awkward lines, then random ones.
        static func awkwardLines(seed: UInt64, count: Int) -> [[UInt8]] {
            var lines: [[UInt8]] = [
                [0x00, 0x00, 0x0A],
                Array("a\rb\r\r\n".utf8),
                Array("cr only\r".utf8) + [0x0A],
                [0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80, 0x0A],  // invalid UTF-8 of all kinds
                [0xE2, 0x82, 0x0A],  // truncated sequence
                Array("caf\u{E9} \u{1F600}\n".utf8),
                [0x0D, 0x0D, 0x0D, 0x41, 0x0A],
            ]
            var rng = SplitMix(seed: seed)
            for _ in 0..<count {
                lines.append(rng.bytes(Int.random(in: 1...1500, using: &rng), excluding: [0x0A]) + [0x0A])
            }
            return lines
        }

        /// echo-server is a byte path: 1 MiB of random bytes (LFs included)
        /// comes back exactly, the unterminated tail too.
        @Test func echoPassesBytesThrough() throws {
            let server = try ServerProcess("echo-server")
            var rng = SplitMix(seed: 42)
            var payload = Self.awkwardLines(seed: 43, count: 50).flatMap { $0 }
            var sinceLF = 0
            for b in rng.bytes(1 << 20) {  // random, with an LF forced at least every 4000 bytes
                payload.append(sinceLF >= 4000 ? 0x0A : b)
                sinceLF = payload.last == 0x0A ? 0 : sinceLF + 1
            }
            payload += [0x00, 0x0D, 0xFF]  // a last line without LF
            let c = try server.connect()
            let socket = c.socket
            let bytes = payload
            let sender = try TestThread {
                try? socket.sendAll(bytes)
                try? socket.shutdown(.write)
            }
            var got: [UInt8] = []
            while let line = try c.rawLine() { got += line }
            #expect(sender.finished(within: 60))
            #expect(got.count == payload.count)
            #expect(got == payload, "first difference at \(zip(got, payload).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, payload.count))")
            #expect(isAlive(server))
        }

        /// chat-server is a text path: invalid UTF-8 is forwarded with U+FFFD,
        /// NUL and lone CRs as they are, in order.
        @Test func chatReplacesInvalidUTF8() throws {
            let server = try ServerProcess("chat-server")
            let a = try server.connect()
            let aName = String(try a.line()?.dropFirst("* welcome, you are ".count) ?? "")
            let b = try server.connect()
            #expect(try b.line()?.hasPrefix("* welcome, you are ") == true)
            #expect(try a.line()?.hasSuffix(" joined") == true)

            // Lines the server forwards as text: not commands, not empty.
            let lines = Self.awkwardLines(seed: 44, count: 300).map { line -> [UInt8] in
                content(line).first == UInt8(ascii: "/") ? [UInt8(ascii: "x")] + line : line
            }.filter { !content($0).allSatisfy { $0 == 0x20 || $0 == 0x09 } }  // blank lines go to nobody
            let socket = a.socket
            let sender = try TestThread { try? socket.sendAll(lines.flatMap { $0 }) }
            for (i, line) in lines.enumerated() {
                let expected = Array("\(aName): \(String(decoding: content(line), as: UTF8.self))\n".utf8)
                let got = try b.rawLine()
                #expect(got == expected, "line \(i): sent \(line), got \(got ?? [])")
                if got != expected { break }
            }
            #expect(sender.finished(within: 60))
            try b.send("/who\n")
            #expect(try b.line()?.hasPrefix("* online: ") == true)
            #expect(isAlive(server))
        }

        /// timestamp-server echoes the bytes of LINE unchanged after the stamp.
        @Test func timestampKeepsLineBytes() throws {
            let server = try ServerProcess("timestamp-server")
            let lines = Self.awkwardLines(seed: 45, count: 300)
            let c = try server.connect()
            let socket = c.socket
            let sender = try TestThread { try? socket.sendAll(lines.flatMap { $0 }) }
            for (i, line) in lines.enumerated() {
                guard let got = try c.rawLine() else { Issue.record("EOF at line \(i)"); break }
                // `[` + 24 characters of ctime + `] ` + LINE + LF
                let ok = got.count >= 28 && got[0] == UInt8(ascii: "[") && got[25] == UInt8(ascii: "]")
                    && got[26] == UInt8(ascii: " ") && Array(got[27..<(got.count - 1)]) == content(line) && got.last == 0x0A
                #expect(ok, "line \(i): sent \(line), got \(got)")
                if !ok { break }
            }
            #expect(sender.finished(within: 60))
            #expect(isAlive(server))
        }

        /// Pure random bytes (no LF guaranteed) to every server: whatever it
        /// answers, it does not crash and serves the next client.
        @Test(arguments: ["echo-server", "chat-server", "timestamp-server", "file-server"])
        func randomBytesDoNotCrash(_ name: String) throws {
            let dir = try TempDir()
            let server = try ServerProcess(name, name == "file-server" ? ["--dir", dir.path] : [])
            for seed in UInt64(0)..<4 {
                var rng = SplitMix(seed: 100 + seed)
                let noise = rng.bytes(256 << 10)
                let c = try server.connect()
                let socket = c.socket
                let sender = try TestThread {
                    try? socket.sendAll(noise)
                    try? socket.shutdown(.write)
                }
                // Read whatever comes back until the server closes (or resets).
                var buffer = [UInt8](repeating: 0, count: 65536)
                let deadline = now() + 60
                while now() < deadline {
                    guard let n = try? socket.recv(into: &buffer), n > 0 else { break }
                }
                #expect(sender.finished(within: 60))
                if seed.isMultiple(of: 2) { reset(socket) } else { socket.close() }
                #expect(isAlive(server), "\(name) died on seed \(100 + seed): \(server.stderr)")
            }
            #expect(servesFreshClient(server, name))
            #expect(dir.entries().isEmpty)
        }
    }
}

// MARK: - 7. Leaks

extension ReliabilityTests {
    @Suite struct ReliabilityLeakTests {
        /// 3,000 connections through the threading echo-server: afterwards its
        /// descriptors, threads and resident memory are back where they were
        /// (RSS measured after a warm-up of 300 connections, within 8 MiB).
        @Test func noLeakAfterThousandsOfConnections() throws {
            let server = try ServerProcess("echo-server", ["--mode", "threading"])
            let view = ProcessView(pid: server.process.pid)
            let idleThreads = view.threads
            let port = server.port

            func connections(_ total: Int, seed: UInt64) -> Tally {
                let tally = Tally()
                let finished = runThreads(4, timeout: 300) { t in
                    var rng = SplitMix(seed: seed + UInt64(t))
                    for _ in 0..<(total / 4) {
                        do {
                            let c = try Client(port: port)
                            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                                let line = rng.bytes(Int.random(in: 0...2000, using: &rng), excluding: [0x0A]) + [0x0A]
                                try c.send(line)
                                if try c.rawLine() != line { tally.fail("bad echo") }
                            }
                            if Bool.random(using: &rng) { reset(c.socket) } else { c.socket.close() }
                            tally.completed.add(1, ordering: .relaxed)
                        } catch {
                            tally.fail("\(error)")
                        }
                    }
                }
                if !finished { tally.fail("clients did not finish within 300 s") }
                return tally
            }

            let warmUp = connections(300, seed: 1)
            #expect(warmUp.failureCount.load(ordering: .relaxed) == 0, "\(warmUp.firstFailures)")
            #expect(settles(view, threads: idleThreads))
            let before = view.usage

            let run = connections(3000, seed: 2)
            #expect(run.failureCount.load(ordering: .relaxed) == 0, "\(run.firstFailures)")
            #expect(run.completed.load(ordering: .relaxed) == 3000)

            #expect(settles(view, threads: before.threads, fds: before.fds, timeout: 30), "before: \(before); now: \(view.usage)")
            let after = view.usage
            // RSS is meaningless under a sanitizer (shadow memory); the plain run checks it.
            #expect(underSanitizer || after.rssKiB - before.rssKiB <= 8 * 1024, "before: \(before); after: \(after)")
            #expect(isAlive(server))
        }
    }
}
