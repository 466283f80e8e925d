#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import SocketServerTLS
import Testing
import TestSupport

/// A stage before TLS that reads a `HELLO` line through the connection's
/// reader, as a PROXY header stage does: the reader buffers what follows.
struct HelloStage: ConnectionStage {
    /// How many bytes past the line the reader held, for the last connection.
    static let bufferedAfterHello = Locked<Int>(-1)
    func prepare(_ connection: ConnectionContext, server: BaseServer) throws {
        let reader = connection.makeReader()
        guard try reader.readTextLine() == "HELLO" else { throw TestFailure("no HELLO") }
        HelloStage.bufferedAfterHello.withLock { $0 = reader.bufferedCount }
    }
}

@Suite("TLS: after other stages, plain connections, half-close", .serialized)
struct TLSStageOrderTests {
    let certs: Certificates
    init() throws { certs = try Certificates.get() }

    /// Copies bytes from `from` to `to` until end of file, then shuts `to` down.
    static func relay(_ from: Socket, _ to: Socket, prefix: [UInt8] = []) {
        var first = true
        while let bytes = try? from.recv(65536), !bytes.isEmpty {
            // The prefix and the first bytes go in one send: one segment.
            let out = first ? prefix + bytes : bytes
            first = false
            guard (try? to.sendAll(out)) != nil else { break }
        }
        try? to.shutdown(.write)
    }

    @Test func theHandshakeReadsTheBytesAnEarlierStageBuffered() throws {
        let server = try TLSTestServer(("127.0.0.1", 0), InfoHandler.self)
        server.connectionStages.append(HelloStage())
        server.enableTLS(try certs.serverContext())
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.stop() }
        let upstream = try Socket.createConnection(host: "127.0.0.1", port: server.port, timeout: 10)
        defer { upstream.close() }
        let (clientSide, relaySide) = try Socket.pair(family: .unix, type: .stream)
        try clientSide.setTimeout(10)
        let relays = [
            try TestThread { TLSStageOrderTests.relay(relaySide, upstream, prefix: Array("HELLO\n".utf8)) },
            try TestThread { TLSStageOrderTests.relay(upstream, relaySide) },
        ]
        let tls = try TLSStream.client(over: clientSide, context: certs.clientContext(), serverName: "localhost")
        let (r, w) = tls.makeStreams()
        try w.write("info\n")
        try w.flush()
        #expect(try r.readTextLine()?.hasPrefix("version=TLSv1.3") == true)
        // Our close_notify goes through the relay, the server answers with
        // its own and closes: both relays end by themselves. (Cutting them
        // here could drop the close_notify on its way: a ragged end.)
        tls.close()
        let ended = relays.allSatisfy { $0.finished(within: 20) }
        if !ended {
            try? relaySide.shutdown(.both)
            try? upstream.shutdown(.both)
        }
        #expect(ended)
        #expect(server.errorTexts.isEmpty, "\(server.errorTexts)")
        // The ClientHello came in the HELLO line's segment: the TLS stage took it from the reader.
        #expect(HelloStage.bufferedAfterHello.withLock { $0 } > 0)
    }

    @Test func aPlainConnectionHasNoTLSSession() throws {
        final class Probe: StreamRequestHandler {
            override func handle() throws {
                try wfile.write(tls == nil && tlsStream == nil ? "plain\n" : "tls\n")
            }
        }
        let server = try TLSTestServer(("127.0.0.1", 0), Probe.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.stop() }
        let c = try Socket.createConnection(host: "127.0.0.1", port: server.port, timeout: 10)
        defer { c.close() }
        #expect(try c.makeReader().readTextLine() == "plain")
    }

    /// Reads to the end, then answers: a reply after the peer's close_notify.
    final class CountHandler: StreamRequestHandler {
        override func handle() throws {
            var count = 0
            while try rfile.readLine() != nil { count += 1 }
            try wfile.write("\(count) lines\n")
        }
    }

    @Test func aHalfClosedSessionStillGetsItsAnswer() throws {
        let server = try TLSTestServer(("127.0.0.1", 0), CountHandler.self)
        server.enableTLS(try certs.serverContext())
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.stop() }
        let c = try TestClient(port: server.port, context: certs.clientContext())
        try c.writer.write("one\ntwo\nthree\n")
        try c.writer.flush()
        try c.stream.shutdown()  // our close_notify: the server's readLine ends
        #expect(try c.reader.readTextLine() == "3 lines")
        #expect(try c.reader.readLine() == nil)  // then the server's close_notify
        #expect(throws: TLSError.self) { try c.writer.write("more\n"); try c.writer.flush() }
    }
}
