#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

/// Records every opened and closed event.
class RecordingServer: ThreadingTCPServer {
    let opened = Locked<[UInt64]>([])
    let closed = Locked<[ConnectionSummary]>([])
    override func connectionOpened(_ connection: ConnectionInfo) {
        opened.withLock { $0.append(connection.id) }
    }
    override func connectionClosed(_ summary: ConnectionSummary) {
        closed.update { $0.append(summary) }
        super.connectionClosed(summary)
    }
}

/// Resets the connection (RST) instead of closing it.
func reset(_ s: Socket) throws {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    try withUnsafeBytes(of: &linger) { try s.setOption(level: SOL_SOCKET, name: SO_LINGER, bytes: $0) }
    s.close()
}

@Suite struct StatsAndEventsTests {
    @Test func statsAfterTwoHundredEchoClients() throws {
        let server = try RecordingServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.logSink = TextLogSink(minimumLevel: .error)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        var sent: UInt64 = 0
        for i in 0..<200 {
            let c = try client(server.serverAddress)
            let text = "line \(i) " + String(repeating: "y", count: i) + "\n"
            sent += UInt64(text.utf8.count)
            #expect(try roundTrip(c, c.makeReader(), text) == text)
            c.close()
        }
        #expect(eventually { server.stats.completed == 200 })
        let stats = server.stats
        #expect(stats.accepted == 200)
        #expect(stats.active == 0)
        #expect(stats.bytesIn == sent)
        #expect(stats.bytesOut == sent)
        #expect(stats.failed == 0 && stats.peerGone == 0 && stats.rejectedTotal == 0)
        #expect(stats.capacity == nil && stats.saturation == nil)
        let closed = server.closed.withLock { $0 }
        #expect(closed.count == 200)
        #expect(Set(closed.map(\.id)).count == 200)
        #expect(closed.allSatisfy { $0.bytesIn == $0.bytesOut && $0.clientAddress.host == "127.0.0.1" })
    }

    @Test func resetsArePeerGoneNotFailures() throws {
        let server = try RecordingServer(("127.0.0.1", 0), EchoStreamHandler.self)
        let lines = Locked<[String]>([])
        server.logSink = LogfmtLogSink { line in lines.withLock { $0.append(line) } }
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for _ in 0..<50 {
            let c = try client(server.serverAddress)
            #expect(try roundTrip(c, c.makeReader(), "hi\n") == "hi\n")
            try reset(c)
        }
        #expect(eventually { server.stats.peerGone == 50 })
        #expect(server.stats.failed == 0)
        // A request's counters are updated before its record is logged: wait for the records too.
        func peerGoneRecords() -> Int {
            lines.withLock { $0.filter { $0.contains("event=connection.closed") && $0.contains("outcome=peer_gone") }.count }
        }
        #expect(eventually { peerGoneRecords() >= 50 })
        #expect(peerGoneRecords() == 50)
        let logged = lines.withLock { $0 }
        #expect(!logged.contains { $0.contains("level=error") })
    }

    @Test func openedEqualsClosedOnceEachUnderRandomDrops() throws {
        let server = try RecordingServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.logSink = TextLogSink(minimumLevel: .error)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        var random = SockKitRandom(seed: 11)
        for i in 0..<1000 {
            let c = try client(server.serverAddress)
            switch random.next() % 4 {
            case 0: c.close()
            case 1: try reset(c)
            case 2:
                try c.sendAll(Array("half a line \(i)".utf8))
                try reset(c)
            default:
                #expect(try roundTrip(c, c.makeReader(), "full \(i)\n") == "full \(i)\n")
                c.close()
            }
        }
        #expect(eventually(30) { server.closed.withLock { $0.count } == 1000 })
        let opened = server.opened.withLock { $0 }
        let closed = server.closed.withLock { $0.map(\.id) }
        #expect(opened.count == 1000)
        #expect(Set(opened) == Set(closed))
        #expect(Set(closed).count == closed.count)
        #expect(server.stats.active == 0 && server.stats.accepted == 1000)
    }

    @Test func logfmtLinesParse() throws {
        let record = LogRecord(level: .info, event: "connection.closed", message: "a \"quoted\" \\ text",
                               fields: [LogField("peer", "127.0.0.1:5"), LogField("note", "two words"), LogField("empty", "")])
        let line = LogfmtLogSink.line(record, timestamp: "2026-12-02T10:00:00.000Z")
        #expect(line == "ts=2026-12-02T10:00:00.000Z level=info event=connection.closed peer=127.0.0.1:5 note=\"two words\" empty=\"\" msg=\"a \\\"quoted\\\" \\\\ text\"\n")
        let now = LogfmtLogSink.rfc3339Now()
        #expect(now.count == 24 && now.hasSuffix("Z") && Array(now.utf8)[10] == UInt8(ascii: "T"))
    }

    @Test func textSinkKeepsTheOldLinesAndDropsMachineRecords() throws {
        // The default sink prints messages only: connection.closed has none.
        let record = LogRecord(level: .info, event: "connection.closed", message: nil)
        TextLogSink().log(record)  // prints nothing (nothing to assert on stderr but that it does not trap)
        #expect(TextLogSink().minimumLevel == .debug)
    }

    @Test func refusedByVerifyRequestIsCountedAndClosed() throws {
        final class Picky: RecordingServer {
            override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool { false }
        }
        let server = try Picky(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        #expect(try c.makeReader().readLine() == nil)
        #expect(eventually { server.stats.rejected[.verifyRequest] == 1 })
        #expect(server.closed.withLock { $0.first?.outcome.name } == "refused")
    }

    @Test("bytes sent by wfile.sendFile and counted with countTraffic join the summary")
    func trafficAroundTheStreams() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let fd = try SockKit.makeFile(dir.file("f"), SockKit.pattern(count: 1000))
        defer { close(fd) }
        final class FileHandler: StreamRequestHandler {
            static let file = Atomic<Int32>(-1)
            override func handle() throws {
                guard try rfile.readLine() != nil else { return }
                try wfile.write("OK\n")
                #expect(try wfile.sendFile(Self.file.load(ordering: .relaxed), offset: 0, count: 1000) == 1000)
                #expect(try wfile.sendFile(Self.file.load(ordering: .relaxed), offset: 0, count: 0) == 0)
                let raw = Array("raw\n".utf8)
                try connection.sendAll(raw)
                countTraffic(sent: raw.count)
            }
        }
        FileHandler.file.store(fd, ordering: .relaxed)
        let server = try RecordingServer(("127.0.0.1", 0), FileHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        try c.sendAll(Array("GET\n".utf8))
        let r = c.makeReader()
        #expect(try r.readLine() == Array("OK\n".utf8))
        #expect(try r.readExactly(1000) == SockKit.pattern(count: 1000))
        #expect(try r.readLine() == Array("raw\n".utf8))
        c.close()
        #expect(server.closed.wait(timeout: 10) { $0.count == 1 })
        #expect(server.closed.withLock { $0[0].bytesIn == 4 && $0[0].bytesOut == 3 + 1000 + 4 })
        #expect(server.stats.bytesOut == 3 + 1000 + 4)
    }

    @Test func datagramRequestsHaveEventsToo() throws {
        final class UDP: ThreadingUDPServer {
            let closed = Locked<[ConnectionSummary]>([])
            override func connectionClosed(_ summary: ConnectionSummary) { closed.update { $0.append(summary) } }
        }
        let server = try UDP(("127.0.0.1", 0), EchoDatagramHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try Socket(family: .inet, type: .datagram)
        try c.setTimeout(10)
        _ = try c.sendTo(Array("ping".utf8), server.serverAddress)
        #expect(try c.recvFrom(100).0 == Array("ping".utf8))
        #expect(server.closed.wait(timeout: 10) { $0.count == 1 })
        #expect(server.closed.withLock { $0[0].bytesIn == 4 && $0[0].bytesOut == 4 })
    }

    /// Echoes, and says first whether anything ran before it (its context).
    final class ContextReportingHandler: StreamRequestHandler {
        override func handle() throws {
            try wfile.write(Array((context.map { "context \($0.id)\n" } ?? "none\n").utf8))
            while let line = try rfile.readLine() { try wfile.write(line) }
        }
    }

    /// A stage that only marks the connection.
    struct MarkStage: ConnectionStage {
        func prepare(_ connection: ConnectionContext, server: BaseServer) throws {
            connection.logFields.append(LogField("marked", "yes"))
        }
    }

    @Test(arguments: [false, true])
    func aContextIsMadeOnlyWhenStagesRunAndTheCountsAreKeptEitherWay(withStage: Bool) throws {
        let server = try RecordingServer(("127.0.0.1", 0), ContextReportingHandler.self)
        server.logSink = TextLogSink(minimumLevel: .error)
        if withStage { server.connectionStages = [MarkStage()] }
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        let reader = c.makeReader()
        let first = String(decoding: try reader.readLine() ?? [], as: UTF8.self)
        #expect(try roundTrip(c, reader, "eleven byte\n") == "eleven byte\n")
        c.close()
        #expect(server.closed.wait(timeout: 10) { $0.count == 1 })
        let summary = try #require(server.closed.withLock { $0.first })
        #expect(first == (withStage ? "context \(summary.id)\n" : "none\n"))
        #expect(summary.bytesIn == 12)
        #expect(summary.bytesOut == UInt64(first.utf8.count) + 12)
        #expect(summary.fields.contains { $0.key == "marked" } == withStage)
    }
}
