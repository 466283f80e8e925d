#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

/// Counts the handlers running at once and the most seen.
final class Concurrency: Sendable {
    let now = Atomic<Int>(0)
    let peak = Atomic<Int>(0)
    func enter() {
        let n = now.add(1, ordering: .relaxed).newValue
        var p = peak.load(ordering: .relaxed)
        while n > p {
            let (ok, old) = peak.compareExchange(expected: p, desired: n, ordering: .relaxed)
            if ok { break }
            p = old
        }
    }
    func leave() { now.subtract(1, ordering: .relaxed) }
}

let limitsConcurrency = Concurrency()

/// Echoes lines, counting itself in ``limitsConcurrency``.
final class CountingEcho: StreamRequestHandler {
    override func handle() throws {
        limitsConcurrency.enter()
        defer { limitsConcurrency.leave() }
        while let line = try rfile.readLine() { try wfile.write(line) }
    }
}

/// Whether `socket` stays silent (no byte, no EOF) for `seconds`: a bounded wait.
func staysSilent(_ socket: Socket, _ seconds: Double) -> Bool {
    var p = pollfd(fd: socket.fileno, events: Int16(POLLIN), revents: 0)
    return poll(&p, 1, Int32(seconds * 1000)) == 0
}

/// A client from a chosen loopback source address (127.0.0.2 reaches `lo` too).
func client(_ address: SocketAddress, from source: String) throws -> Socket {
    let s = try Socket(family: .inet, type: .stream)
    try s.bind(to: (source, 0))
    try s.setTimeout(10)
    try s.connect(to: address)
    return s
}

@Suite(.serialized) struct LimitsTests {
    @Test func waitPolicyHoldsTheFifthUntilOneEnds() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.limits = ConnectionLimits(maxConnections: 4, policy: .wait)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let four = try (0..<4).map { _ in try client(server.serverAddress) }
        for (i, c) in four.enumerated() { #expect(try roundTrip(c, c.makeReader(), "held \(i)\n") == "held \(i)\n") }
        #expect(server.stats.active == 4)
        let fifth = try client(server.serverAddress)  // the kernel's backlog takes it
        try fifth.sendAll(Array("fifth\n".utf8))
        #expect(staysSilent(fifth, 0.5))
        #expect(server.stats.accepted == 4)
        four[0].close()
        #expect(try fifth.makeReader().readLine() == Array("fifth\n".utf8))
        #expect(server.stats.capacity == 4)
        for c in four.dropFirst() { c.close() }
        fifth.close()
        #expect(eventually { server.stats.active == 0 })
        #expect(server.stats.rejectedTotal == 0)
    }

    @Test func twoHundredClientsNeverMoreThanFourHandlers() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), CountingEcho.self)
        server.limits = ConnectionLimits(maxConnections: 4, policy: .wait)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        limitsConcurrency.peak.store(0, ordering: .relaxed)
        let failures = Atomic<Int>(0)
        let threads = Atomic<Int>(0)
        let address = server.serverAddress
        let done = Locked(0)
        for t in 0..<8 {
            try Threads.spawn(stackSize: 256 * 1024) {
                for i in 0..<25 {
                    do {
                        let c = try client(address)
                        let text = "client \(t)-\(i) " + String(repeating: "x", count: i * 37) + "\n"
                        if try roundTrip(c, c.makeReader(), text) != text { failures.add(1, ordering: .relaxed) }
                        c.close()
                    } catch {
                        failures.add(1, ordering: .relaxed)
                    }
                }
                threads.add(1, ordering: .relaxed)
                done.update { $0 += 1 }
            }
        }
        #expect(done.wait(timeout: 60) { $0 == 8 })
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(limitsConcurrency.peak.load(ordering: .relaxed) <= 4)
        #expect(eventually { server.stats.completed == 200 })
        #expect(server.stats.peakActive <= 4)
    }

    @Test func rejectPolicyHandsTheFifthToTheHook() throws {
        final class Refusing: ThreadingTCPServer {
            override func rejectRequest(_ request: Request, clientAddress: SocketAddress, reason: RejectReason) {
                try? request.socket.setTimeout(0.2)
                try? request.socket.sendAll(Array("busy: \(reason)\n".utf8))
                super.rejectRequest(request, clientAddress: clientAddress, reason: reason)
            }
        }
        let server = try Refusing(("127.0.0.1", 0), EchoStreamHandler.self)
        server.limits = ConnectionLimits(maxConnections: 4, policy: .reject)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let four = try (0..<4).map { _ in try client(server.serverAddress) }
        for c in four { #expect(try roundTrip(c, c.makeReader(), "x\n") == "x\n") }
        let fifth = try client(server.serverAddress)
        let reader = fifth.makeReader()
        #expect(try reader.readLine() == Array("busy: server full\n".utf8))
        #expect(try reader.readLine() == nil)
        #expect(eventually { server.stats.rejected[.capacity] == 1 })
        for c in four { c.close() }
    }

    @Test func shutdownWhileFullReturns() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.limits = ConnectionLimits(maxConnections: 1, policy: .wait)
        try server.serveInBackground(pollInterval: nil)  // no poll interval: only a wake-up ends the wait
        let one = try client(server.serverAddress)
        #expect(try roundTrip(one, one.makeReader(), "a\n") == "a\n")
        let waiting = try client(server.serverAddress)
        server.shutdown()  // returns once the loop has stopped, though it waits for a slot
        #expect(!server.control.isServing)
        one.close()
        waiting.close()
        server.serverClose()
    }

    @Test func aThreadThatCannotStartGivesItsSlotBack() throws {
        final class Flaky: ThreadingTCPServer {
            let failNext = Atomic<Bool>(true)
            override var threadStackSize: Int {
                failNext.exchange(false, ordering: .relaxed) ? 1 << 46 : 256 * 1024  // 64 TiB: pthread_create fails
            }
            override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {}
        }
        let server = try Flaky(("127.0.0.1", 0), EchoStreamHandler.self)
        server.limits = ConnectionLimits(maxConnections: 1, policy: .wait)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let first = try client(server.serverAddress)
        #expect(try first.makeReader().readLine() == nil)  // closed: no thread for it
        let second = try client(server.serverAddress)
        #expect(try roundTrip(second, second.makeReader(), "served\n") == "served\n")
        #expect(eventually { server.stats.failed == 1 })
        second.close()
    }

    @Test func perClientCapCountsEachSourceAddress() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.limits = ConnectionLimits(maxPerClient: 2)
        let lines = Locked<[String]>([])
        server.logSink = LogfmtLogSink { line in lines.withLock { $0.append(line) } }
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let a = try (0..<2).map { _ in try client(server.serverAddress, from: "127.0.0.1") }
        for c in a { #expect(try roundTrip(c, c.makeReader(), "a\n") == "a\n") }
        let third = try client(server.serverAddress, from: "127.0.0.1")
        #expect(try third.makeReader().readLine() == nil)  // closed at once, nothing sent
        let other = try client(server.serverAddress, from: "127.0.0.2")
        #expect(try roundTrip(other, other.makeReader(), "b\n") == "b\n")
        #expect(eventually { server.stats.rejected[.perClientLimit] == 1 })
        #expect(lines.withLock { $0.contains { $0.contains("event=connection.refused") && $0.contains("too many connections") } })
        a[0].close()
        #expect(eventually { server.stats.active == 2 })
        let again = try client(server.serverAddress, from: "127.0.0.1")
        #expect(try roundTrip(again, again.makeReader(), "c\n") == "c\n")
        for c in a + [other, again] { c.close() }
    }

    @Test func clientKeysCountIPv6ByPrefixAndMappedAsIPv4() throws {
        func key(_ host: String, _ prefix: Int = 64) throws -> ClientKey? {
            ClientKey(try SocketAddress.resolve(host: host, port: 1, family: host.contains(":") ? .inet6 : .inet), ipv6PrefixLength: prefix)
        }
        #expect(try key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"))
        #expect(try key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(try key("2001:db8:1:2::1", 128) != key("2001:db8:1:2::2", 128))
        #expect(try key("::ffff:127.0.0.2") == key("127.0.0.2"))
        #expect(try key("127.0.0.1") != key("127.0.0.2"))
        #expect(ClientKey(SocketAddress.unnamedUnix, ipv6PrefixLength: 64) == nil)
    }

    @Test(.disabled(if: underThreadSanitizer, "fork() under the thread sanitizer hangs the child"))
    func forkingServerReleasesSlotsWhenChildrenEnd() throws {
        let server = try ForkingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.limits = ConnectionLimits(maxConnections: 2, policy: .wait)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for i in 0..<6 {
            let c = try client(server.serverAddress)
            #expect(try roundTrip(c, c.makeReader(), "\(i)\n") == "\(i)\n")
            // shutdown, not just close: the children forked meanwhile hold
            // copies of this (in-process) client's descriptor.
            try c.shutdown(.both)
            c.close()
        }
        #expect(eventually { server.stats.completed == 6 && server.stats.active == 0 })
    }
}
