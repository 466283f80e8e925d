#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

/// Counters shared by the load threads, and the flag that tells them the
/// handover is over.
private final class Load: Sendable {
    let done = Atomic<Int>(0)
    let handedOver = Atomic<Bool>(false)
    let failures = Locked<[String]>([])
}

/// What one load thread did: exchanges in all, and those after the handover.
private struct Tally: Sendable { var total = 0, afterHandover = 0 }

/// Echo exchanges, each on a new connection, with a payload that names the
/// thread and the exchange, until `afterHandover` of them ran after
/// `load.handedOver` was set (so the load spans the whole handover by
/// construction, however slow the machine), or `limit` in all; failures are
/// recorded, not thrown.
private func exchanges(_ address: SocketAddress, thread: Int, load: Load, afterHandover: Int = 50, limit: Int = 20_000) -> Tally {
    var tally = Tally()
    while tally.total < limit && tally.afterHandover < afterHandover {
        let wasHandedOver = load.handedOver.load(ordering: .acquiring)
        let i = tally.total
        let payload = "thread \(thread) exchange \(i) " + String(repeating: "x", count: 64 + (i % 64)) + "\n"
        do {
            let c = try Socket.createConnection(to: address, timeout: 10)
            defer { c.close() }
            let r = c.makeReader()
            try c.sendAll(Array(payload.utf8))
            let line = try r.readLine()
            if line != Array(payload.utf8) {
                load.failures.withLock { $0.append("\(thread)/\(i): echoed \(line.map { $0.count } ?? -1) bytes") }
            }
        } catch {
            load.failures.withLock { $0.append("\(thread)/\(i): \(error)") }
        }
        load.done.add(1, ordering: .relaxed)
        tally.total += 1
        if wasHandedOver { tally.afterHandover += 1 }
    }
    return tally
}

@Suite("A restart under load refuses nothing", .serialized)
struct RestartTests {
    /// Two processes: the old one started by systemd-socket-activate, the
    /// new one taking its listener by ``ListenerHandoff`` while 4 client
    /// threads make one exchange after another (each on a new connection);
    /// the old one then stops accepting, finishes what it has and exits, and
    /// the clients go on for 50 exchanges each against the new one.
    @Test(.enabled(if: haveProgram("systemd-socket-activate")))
    func listenerHandedFromOneProcessToAnother() throws {
        let dir = try TempDir()
        let handoff = dir.file("handoff.sock")
        let echo = binDirectory + "/activation-echo"
        var old: TestProcess?
        var address: SocketAddress?
        for _ in 0..<3 {  // the free port may be taken before the activator binds it: try another
            let port = try freePort()
            let candidate = try SocketAddress(ipv4: "127.0.0.1", port: port)
            let child = try TestProcess([programPath("systemd-socket-activate")!, "-l", "127.0.0.1:\(port)", echo, "--offer-at", handoff],
                                         stdoutPath: dir.file("old.log"), ownProcessGroup: true)
            if let c = try? connectWhenUp(candidate), (try? roundTrip(c, c.makeReader(), "up?\n")) == "up?\n" {
                c.close()
                old = child
                address = candidate
                break
            }
            child.kill()
        }
        guard let old, let address else { Issue.record("the old server did not come up"); return }
        defer { old.kill() }

        let load = Load()
        let clients = try (0..<4).map { t in try TestThread<Tally>(unblocking: SockKit.ordinarySignals) { exchanges(address, thread: t, load: load) } }
        #expect(eventually(30) { load.done.load(ordering: .relaxed) >= 200 })
        let new = try TestProcess([echo, "--take-from", handoff], stdoutPath: dir.file("new.log"), ownProcessGroup: true)
        defer { new.kill() }
        // The old process hands over, drains and exits on its own.
        #expect(eventually(30) { !old.isRunning }, "old: \(old.stdout)")
        load.handedOver.store(true, ordering: .releasing)
        let tallies = try clients.map { try $0.join(timeout: 120) }
        #expect(tallies.allSatisfy { $0.afterHandover == 50 }, "the load went on after the handover: \(tallies)")
        #expect(load.done.load(ordering: .relaxed) == tallies.reduce(0) { $0 + $1.total })
        let failures = load.failures.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.count) failed, first: \(failures.prefix(5)); old: \(old.stdout) new: \(new.stdout)")
        #expect(old.stdout.contains("handed over"), "\(old.stdout)")
        #expect(new.isRunning && new.stdout.contains("serving 127.0.0.1:\(address.port!)"), "\(new.stdout)")
        // The new process alone serves now.
        let c = try client(address)
        #expect(try roundTrip(c, c.makeReader(), "after\n") == "after\n")
        c.close()
    }

    /// The same in one process (two server objects, the descriptor passed
    /// over a Unix socket all the same): cheaper, and it runs under TSan.
    @Test func listenerHandedFromOneServerToAnotherInProcess() throws {
        let dir = try TempDir()
        let handoff = dir.file("handoff.sock")
        let old = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        let address = old.serverAddress
        old.timeout = 0.05
        let load = Load()
        let clients = try (0..<4).map { t in try TestThread<Tally>(unblocking: SockKit.ordinarySignals) { exchanges(address, thread: t, load: load) } }
        // The old server's loop runs on this thread (handleRequest, so a
        // connection it accepted is always served) until enough exchanges ran.
        while load.done.load(ordering: .relaxed) < 200 { try old.handleRequest() }
        let taking = try TestThread<[Socket]>(unblocking: SockKit.ordinarySignals) { try ListenerHandoff.take(from: handoff, timeout: 10) }
        // Keep serving while the taker connects (offer blocks): requests queue in the backlog meanwhile.
        try ListenerHandoff.offer(old, at: handoff, timeout: 10)
        let new = try ThreadingTCPServer(socket: try taking.join()[0], EchoStreamHandler.self)
        try new.serveInBackground(pollInterval: 0.05)
        defer { new.shutdown(); new.serverClose() }
        // The old server accepts no more (its loop, this thread, stopped)
        // and finishes what it has.
        old.serverClose()
        load.handedOver.store(true, ordering: .releasing)
        let tallies = try clients.map { try $0.join(timeout: 120) }
        #expect(tallies.allSatisfy { $0.afterHandover == 50 }, "the load went on after the handover: \(tallies)")
        #expect(load.done.load(ordering: .relaxed) == tallies.reduce(0) { $0 + $1.total })
        let failures = load.failures.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.count) failed, first: \(failures.prefix(5))")
    }
}
