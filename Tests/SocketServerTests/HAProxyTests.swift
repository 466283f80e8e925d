#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Testing
import TestSupport

/// HAProxy (Debian's `haproxy`, installed by `.ci/run`) in front of two
/// servers on loopback: one backend with `send-proxy` (v1), one with
/// `send-proxy-v2`, frontends on 127.0.0.1 and ::1, health checks every
/// 200 ms. Skipped when haproxy is not installed.
@Suite("PROXY protocol behind a real HAProxy", .enabled(if: haveProgram("haproxy")), .serialized)
struct HAProxyTests {
    /// HAProxy with its two frontends up, and the two servers behind it.
    final class Setup {
        let dir: TempDir
        let haproxy: TestProcess
        let v1Server: ProxyRecordingServer
        let v2Server: ProxyRecordingServer
        let v1Frontend: SocketAddress
        let v2Frontend: SocketAddress
        let v6Frontend: SocketAddress?

        init() throws {
            dir = try TempDir()
            let trusted = ProxyProtocolConfig(trusted: CIDR.loopback, headerTimeout: 5)
            v1Server = try ProxyRecordingServer(("127.0.0.1", 0), ClientEchoHandler.self)
            v2Server = try ProxyRecordingServer(("127.0.0.1", 0), ClientEchoHandler.self)
            v1Server.proxyProtocol = trusted
            v2Server.proxyProtocol = trusted
            try v1Server.serveInBackground(pollInterval: 0.05)
            try v2Server.serveInBackground(pollInterval: 0.05)
            let pv1 = try freePort(), pv2 = try freePort()
            let pv6 = ipv6Loopback ? try freePort(.inet6) : nil
            let config = """
                defaults
                    mode tcp
                    timeout connect 2s
                    timeout client 5s
                    timeout server 5s
                frontend fe_v1
                    bind 127.0.0.1:\(pv1)
                    default_backend be_v1
                frontend fe_v2
                    bind 127.0.0.1:\(pv2)
                \(pv6.map { "    bind [::1]:\($0)\n" } ?? "")    default_backend be_v2
                backend be_v1
                    server s1 127.0.0.1:\(v1Server.serverAddress.port!) send-proxy check inter 200ms
                backend be_v2
                    server s2 127.0.0.1:\(v2Server.serverAddress.port!) send-proxy-v2 check inter 200ms

                """
            let cfg = dir.file("haproxy.cfg")
            try writeFile(cfg, config)
            haproxy = try TestProcess([programPath("haproxy")!, "-db", "-f", cfg], stdoutPath: dir.file("haproxy.log"), ownProcessGroup: true)
            v1Frontend = try SocketAddress(ipv4: "127.0.0.1", port: pv1)
            v2Frontend = try SocketAddress(ipv4: "127.0.0.1", port: pv2)
            v6Frontend = try pv6.map { try SocketAddress(ipv6: "::1", port: $0) }
            for frontend in [v1Frontend, v2Frontend] + (v6Frontend.map { [$0] } ?? []) {
                // Up when it answers; ended cleanly, after a whole exchange
                // (FIN first, then our handler's close), so that HAProxy
                // does not reset the backend side (a quiet peer-gone report).
                let probe = try connectWhenUp(frontend)
                _ = try roundTrip(probe, probe.makeReader(), "probe\n")  // the backend side is up too
                try probe.shutdown(.write)
                _ = try SockKit.recvToEOF(probe)
                probe.close()
            }
        }

        func close() {
            haproxy.kill()
            for s in [v1Server, v2Server] { s.shutdown(); s.serverClose() }
            dir.cleanup()
        }
    }

    @Test func clientsAreSeenWithTheirOwnAddressAndHealthChecksAreQuiet() throws {
        let setup = try Setup()
        defer { setup.close() }
        let routes: [(SocketAddress, ProxyRecordingServer, ProxyHeader.Version)] =
            [(setup.v1Frontend, setup.v1Server, .v1), (setup.v2Frontend, setup.v2Server, .v2)]
            + (setup.v6Frontend.map { [($0, setup.v2Server, ProxyHeader.Version.v2)] } ?? [])
        for (frontend, server, version) in routes {
            let c = try Socket.createConnection(to: frontend, timeout: 10)
            defer { c.close() }
            let me = try c.localAddress()
            let r = c.makeReader()
            // Bytes after the header reach the handler intact, both ways, twice.
            #expect(try roundTrip(c, r, "PING\n") == "\(me) PING\n", "via \(frontend), \(setup.haproxy.stdout)")
            #expect(try roundTrip(c, r, "PING again\n") == "\(me) PING again\n")
            // A clean end: our FIN reaches the handler as end of file, its
            // close comes back. (Closing first instead makes HAProxy reset
            // the server side: a quiet peer-gone report, not tested here.)
            try c.shutdown(.write)
            #expect(try r.readLine() == nil)
            let seen = server.seen.withLock { $0.filter { $0.client == me } }
            #expect(seen.count == 1)
            #expect(seen.first?.header?.version == version)
            #expect(seen.first?.healthCheck == false)
            #expect(seen.first?.proxy?.host == "127.0.0.1")
        }
        // Health checks arrive (every 200 ms) and are recognised as such.
        for server in [setup.v1Server, setup.v2Server] {
            #expect(eventually(10) { server.seen.withLock { $0.filter(\.healthCheck).count } >= 3 },
                    "\(server.seen.withLock { $0 }) \(setup.haproxy.stdout)")
        }
        let v2Checks = setup.v2Server.seen.withLock { $0.filter(\.healthCheck) }
        #expect(v2Checks.allSatisfy { $0.header?.command == .local })
        // None of it (clients, checks) reached handleError.
        #expect(setup.v1Server.errors.withLock { $0.isEmpty }, "\(setup.v1Server.errorLines.withLock { $0 }) \(setup.v1Server.seen.withLock { $0 })")
        #expect(setup.v2Server.errors.withLock { $0.isEmpty }, "\(setup.v2Server.errorLines.withLock { $0 }) \(setup.v2Server.seen.withLock { $0 })")
    }

    @Test func aForgedHeaderFromAnUntrustedPeerIsData() throws {
        // A server that trusts only HAProxy's address block... but not the direct client's:
        // 127.0.0.2 is loopback yet outside 127.0.0.1/32.
        let server = try ProxyRecordingServer(("127.0.0.1", 0), ClientEchoHandler.self)
        server.proxyProtocol = ProxyProtocolConfig(trusted: [try CIDR("127.0.0.1")])
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try Socket(family: .inet, type: .stream)
        defer { c.close() }
        try c.setTimeout(10)
        try c.bind(to: SocketAddress(ipv4: "127.0.0.2", port: 0))
        try c.connect(to: server.serverAddress)
        let me = try c.localAddress()
        let forged = "PROXY TCP4 1.2.3.4 127.0.0.1 1000 80\r\n"
        #expect(try roundTrip(c, c.makeReader(), forged) == "\(me) \(forged)")
        #expect(server.seen.withLock { $0.first?.header } == nil)
    }
}
