#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

func address(_ host: String, _ port: Int = 1) throws -> SocketAddress {
    try SocketAddress.resolve(host: host, port: port, family: host.contains(":") ? .inet6 : .inet)
}

@Suite struct AddressFilterTests {
    @Test func denyWinsAndAnEmptyAllowListMeansEveryone() throws {
        let everyone = AddressFilter.everyone
        #expect(everyone.allows(try address("203.0.113.9")))
        let filter = try AddressFilter(allow: ["127.0.0.0/8", "::1"], deny: ["127.0.0.2"])
        #expect(filter.allows(try address("127.0.0.1")))
        #expect(!filter.allows(try address("127.0.0.2")))
        #expect(!filter.allows(try address("10.1.2.3")))
        #expect(filter.allows(try address("::1")))
        #expect(!filter.allows(try address("::2")))
        let denyOnly = try AddressFilter(deny: ["2001:db8::/32"])
        #expect(!denyOnly.allows(try address("2001:db8:1::5")))
        #expect(denyOnly.allows(try address("2001:db9::5")))
        #expect(denyOnly.allows(SocketAddress.unnamedUnix))
    }

    @Test func ipv4MappedAddressesMatchAsIPv4() throws {
        let filter = try AddressFilter(allow: ["127.0.0.0/8"], deny: ["127.0.0.2"])
        #expect(filter.allows(try address("::ffff:127.0.0.1")))
        #expect(!filter.allows(try address("::ffff:127.0.0.2")))
        #expect(!filter.allows(try address("::ffff:10.0.0.1")))
    }

    @Test func malformedNetworksThrow() {
        #expect(throws: (any Error).self) { try AddressFilter(allow: ["127.0.0.0/33"]) }
        #expect(throws: (any Error).self) { try AddressFilter(deny: ["not an address"]) }
    }

    @Test func refusedBeforeAnyThreadAndLogged() throws {
        let server = try RecordingServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.addressFilter = try AddressFilter(deny: ["127.0.0.2"])
        let lines = Locked<[String]>([])
        server.logSink = TextLogSinkCapture(lines)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let denied = try client(server.serverAddress, from: "127.0.0.2")
        #expect(try denied.makeReader().readLine() == nil)  // closed at once, nothing sent
        let allowed = try client(server.serverAddress, from: "127.0.0.1")
        #expect(try roundTrip(allowed, allowed.makeReader(), "in\n") == "in\n")
        allowed.close()
        #expect(eventually { server.stats.rejected[.addressFilter] == 1 })
        #expect(lines.withLock { $0.contains { $0.hasPrefix("refused 127.0.0.2:") && !$0.contains("too many") } })
        #expect(server.stats.completed == 1 || eventually { server.stats.completed == 1 })
    }

    @Test func ipv6ServerFiltersToo() throws {
        let server = try ThreadingTCPServer(("::1", 0), EchoStreamHandler.self)
        server.addressFilter = try AddressFilter(allow: ["127.0.0.0/8"])  // ::1 is not in it
        server.logSink = TextLogSink(minimumLevel: .error)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        #expect(try c.makeReader().readLine() == nil)
        #expect(eventually { server.stats.rejected[.addressFilter] == 1 })
    }

    @Test func proxiedClientsAreFilteredAndCappedByTheirOwnAddress() throws {
        let server = try ProxyRecordingServer(("127.0.0.1", 0), ClientEchoHandler.self)
        server.proxyProtocol = try ProxyProtocolConfig(trusted: ["127.0.0.1"])
        server.addressFilter = try AddressFilter(deny: ["198.51.100.66"])
        server.limits = ConnectionLimits(maxPerClient: 1)
        let lines = Locked<[String]>([])
        server.logSink = TextLogSinkCapture(lines)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        func proxied(_ source: String) throws -> (Socket, SocketReader) {
            let c = try client(server.serverAddress)
            let header = ProxyHeader(command: .proxy, source: try address(source, 40000), destination: server.serverAddress)
            try c.sendAll(try header.encode(.v1))
            return (c, c.makeReader())
        }
        // The proxy (127.0.0.1) itself is over no cap: two clients through it.
        let (a, ra) = try proxied("198.51.100.1")
        #expect(try roundTrip(a, ra, "a\n") == "198.51.100.1:40000 a\n")
        let (b, rb) = try proxied("198.51.100.2")
        #expect(try roundTrip(b, rb, "b\n") == "198.51.100.2:40000 b\n")
        // A second connection of the same proxied client is over its cap.
        let (again, rAgain) = try proxied("198.51.100.1")
        try again.sendAll(Array("x\n".utf8))
        #expect(try rAgain.readLine() == nil)
        // A denied client behind the proxy is refused by its own address.
        let (denied, rDenied) = try proxied("198.51.100.66")
        try denied.sendAll(Array("x\n".utf8))
        #expect(try rDenied.readLine() == nil)
        #expect(eventually { server.stats.rejected[.perClientLimit] == 1 && server.stats.rejected[.addressFilter] == 1 })
        #expect(lines.withLock { $0.contains { $0.hasPrefix("refused 198.51.100.1:40000: too many connections") } })
        #expect(lines.withLock { $0.contains { $0.hasPrefix("refused 198.51.100.66:40000") } })
        #expect(server.errors.withLock { $0.isEmpty })
        // Once the first ends, the same client may come back.
        a.close()
        #expect(eventually { server.stats.active == 1 })
        let (back, rBack) = try proxied("198.51.100.1")
        #expect(try roundTrip(back, rBack, "c\n") == "198.51.100.1:40000 c\n")
        for s in [b, back, again, denied] { s.close() }
    }
}

/// A sink that keeps each message line (what the text sink would print).
struct TextLogSinkCapture: LogSink {
    let lines: Locked<[String]>
    init(_ lines: Locked<[String]>) { self.lines = lines }
    func log(_ record: LogRecord) {
        if let m = record.message { lines.withLock { $0.append(m) } }
    }
}
