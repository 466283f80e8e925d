#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Testing
import TestSupport

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
private func text(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

/// A running recording server on 127.0.0.1 with `config`.
private func startServer(_ config: ProxyProtocolConfig?) throws -> ProxyRecordingServer {
    let server = try ProxyRecordingServer(("127.0.0.1", 0), ClientEchoHandler.self)
    server.proxyProtocol = config
    try server.serveInBackground(pollInterval: 0.05)
    return server
}

@Suite("PROXY protocol: a server reading headers from trusted peers")
struct ProxyServerTests {
    @Test(arguments: [ProxyHeader.Version.v1, .v2])
    func trustedPeerIsSeenAsTheClientItNames(_ version: ProxyHeader.Version) throws {
        let server = try startServer(ProxyProtocolConfig(trusted: CIDR.loopback))
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        defer { c.close() }
        let named = try SocketAddress(ipv4: "203.0.113.5", port: 4711)
        let header = ProxyHeader(source: named, destination: server.serverAddress)
        try c.sendAll(try header.encode(version) + bytes("PING\nPONG\n"))  // data in the same send
        let r = c.makeReader()
        #expect(text(try r.readLine()) == "203.0.113.5:4711 PING\n")
        #expect(text(try r.readLine()) == "203.0.113.5:4711 PONG\n")
        let seen = server.seen.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.proxy == (try c.localAddress()))
        #expect(seen.first?.header?.version == version && seen.first?.healthCheck == false)
        c.close()
        #expect(eventually { server.activeThreadCount == 0 })
        #expect(server.errors.withLock { $0.isEmpty }, "\(server.errorLines.withLock { $0 })")
    }

    @Test func untrustedPeerHeaderIsPlainData() throws {
        let server = try startServer(ProxyProtocolConfig(trusted: [try CIDR("10.0.0.0/8")]))
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        defer { c.close() }
        let me = try c.localAddress()
        #expect(try roundTrip(c, c.makeReader(), "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n") == "\(me) PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n")
        #expect(server.seen.withLock { $0.first?.header } == nil)
        #expect(server.seen.withLock { $0.first?.proxy } == nil)
    }

    @Test func noConfigMeansNothingIsParsed() throws {
        let server = try startServer(nil)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        defer { c.close() }
        let me = try c.localAddress()
        #expect(try roundTrip(c, c.makeReader(), "PROXY UNKNOWN\r\n") == "\(me) PROXY UNKNOWN\r\n")
    }

    @Test func silentTrustedPeerIsClosedAtTheDeadlineWithoutDelayingOthers() throws {
        let server = try startServer(ProxyProtocolConfig(trusted: CIDR.loopback, headerTimeout: 1))
        defer { server.shutdown(); server.serverClose() }
        let silent = try client(server.serverAddress)
        defer { silent.close() }
        try silent.sendAll(bytes("PROXY TCP4 "))  // a start, then nothing
        // Another client is served while the silent one still waits.
        let other = try client(server.serverAddress)
        defer { other.close() }
        try other.sendAll(try ProxyHeader.local.encode(.v2))
        let me = try other.localAddress()
        #expect(try roundTrip(other, other.makeReader(), "hi\n") == "\(me) hi\n")
        do {  // still open: nothing to read, no end of file
            _ = try silent.recv(1, flags: Int32(MSG_DONTWAIT))
            Issue.record("the silent connection ended before its deadline")
        } catch let e as SocketError {
            #expect(e.isTimeout || e.errno == .wouldBlock)
        }
        // Then the silent one is closed (end of file), with no handler run.
        #expect(try silent.recv(10).isEmpty)
        #expect(server.seen.withLock { $0.count } == 1)
        #expect(eventually { server.errors.withLock { $0.count } == 1 })
        #expect(server.errors.withLock { ($0.first as? SocketError)?.isTimeout } == true, "\(server.errorLines.withLock { $0 })")
    }

    @Test(arguments: [
        ("garbage", bytes("GET / HTTP/1.0\r\n\r\n")),
        ("oversized v1", bytes("PROXY UNKNOWN " + String(repeating: "x", count: 200) + "\r\n")),
        ("oversized v2", ProxyHeader.v2Signature + [0x21, 0x11, 0xFF, 0xFF]),
        ("lone LF", bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")),
        ("truncated", bytes("PROXY TCP4 1.2.3.4")),
    ])
    func badHeadersCloseWithoutAHandler(_ name: String, _ wire: [UInt8]) throws {
        let server = try startServer(ProxyProtocolConfig(trusted: CIDR.loopback))
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        defer { c.close() }
        try c.sendAll(wire)
        if name == "truncated" { try c.shutdown(.write) }
        #expect(try SockKit.recvToEOF(c).isEmpty, "\(name)")
        #expect(eventually { server.errors.withLock { $0.count } == 1 }, "\(name)")
        #expect(server.seen.withLock { $0.count } == 0, "\(name)")
        #expect(server.errors.withLock { $0.first is ProxyProtocolError }, "\(server.errorLines.withLock { $0 })")
    }

    @Test func splitHeaderArrivingInPieces() throws {
        let server = try startServer(ProxyProtocolConfig(trusted: CIDR.loopback))
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        defer { c.close() }
        try c.setOption(.noDelay, true)
        let wire = try ProxyHeader(source: SocketAddress(ipv6: "2001:db8::7", port: 9), destination: SocketAddress(ipv6: "::1", port: 1),
                                   tlvs: [ProxyTLV(type: ProxyTLV.authority, value: bytes("a.test"))]).encode(.v2, checksum: true)
        for piece in [wire[0..<5], wire[5..<14], wire[14..<17], wire[17...]] {
            try c.sendAll(Array(piece))
            Sys.sleep(nanos: 20_000_000)  // deadline: spaces the pieces so they arrive in separate receives
        }
        #expect(try roundTrip(c, c.makeReader(), "x\n") == "[2001:db8::7]:9 x\n")
        #expect(server.seen.withLock { $0.first?.header?.authority } == "a.test")
    }

    /// A stage that runs after the header, as a TLS handshake would: it
    /// finds the header read and takes the bytes buffered after it.
    struct TakeOverStage: ConnectionStage {
        let taken: Locked<[UInt8]?>
        func prepare(_ connection: ConnectionContext, server: BaseServer) throws {
            guard connection.proxyHeader != nil, let reader = connection.reader else { return }
            var bytes = reader.takeBuffered()
            while !bytes.contains(0x0A) { bytes += try reader.readSome(64) }  // the rest of the first line
            taken.withLock { $0 = bytes }
            // A new stream would start here; give the bytes back to a new reader.
            connection.reader = SocketReader(stream: connection.stream, buffered: bytes)
        }
    }

    @Test func theHeaderIsReadBeforeTheOtherStagesAndTheyGetTheBytesAfterIt() throws {
        let server = try ProxyRecordingServer(("127.0.0.1", 0), ClientEchoHandler.self)
        let taken = Locked<[UInt8]?>(nil)
        server.connectionStages = [TakeOverStage(taken: taken)]
        server.proxyProtocol = ProxyProtocolConfig(trusted: CIDR.loopback)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        defer { c.close() }
        try c.sendAll(try ProxyHeader(source: SocketAddress(ipv4: "192.0.2.1", port: 5), destination: server.serverAddress).encode(.v1)
                      + bytes("hello after the header\n"))
        #expect(text(try c.makeReader().readLine()) == "192.0.2.1:5 hello after the header\n")
        #expect(text(taken.withLock { $0 }) == "hello after the header\n")
    }

    @Test func healthChecksReachNoHandleError() throws {
        let server = try startServer(ProxyProtocolConfig(trusted: CIDR.loopback))
        defer { server.shutdown(); server.serverClose() }
        // LOCAL then close; connect then close; LOCAL then reset.
        let a = try client(server.serverAddress)
        try a.sendAll(try ProxyHeader.local.encode(.v2))
        a.close()
        let b = try client(server.serverAddress)
        b.close()
        let c = try client(server.serverAddress)
        try c.sendAll(try ProxyHeader.local.encode(.v2))
        try resetOnClose(c)
        c.close()
        #expect(eventually { server.seen.withLock { $0.count } >= 1 && server.activeThreadCount == 0 })
        #expect(server.seen.withLock { $0.allSatisfy(\.healthCheck) })
        #expect(server.errors.withLock { $0.isEmpty }, "\(server.errorLines.withLock { $0 })")
    }
}
