// SocketAddress: IPv4, IPv6 and Unix addresses, printing, equality, errors.

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

@Suite("SocketAddress")
struct SocketAddressTests {
    @Test("IPv4: host, port, family, printing")
    func ipv4() throws {
        let a = try SocketAddress(ipv4: "127.0.0.1", port: 8080)
        #expect(a.family == .inet)
        #expect(a.host == "127.0.0.1")
        #expect(a.port == 8080)
        #expect(a.description == "127.0.0.1:8080")
        #expect(a.flowInfo == nil)
        #expect(a.scopeID == nil)
        #expect(a.path == nil)
        #expect(try SocketAddress(ipv4: "", port: 1).host == "0.0.0.0")
        #expect(try SocketAddress(ipv4: "0.0.0.0", port: 0).description == "0.0.0.0:0")
        #expect(try SocketAddress(ipv4: "<broadcast>", port: 9).description == "255.255.255.255:9")
        #expect(try SocketAddress(ipv4: "10.1.2.3", port: 65535).description == "10.1.2.3:65535")
        #expect(a.withPort(99).description == "127.0.0.1:99")
    }

    @Test("IPv6: host, port, flow info, scope id, printing")
    func ipv6() throws {
        let a = try SocketAddress(ipv6: "::1", port: 8080)
        #expect(a.family == .inet6)
        #expect(a.host == "::1")
        #expect(a.port == 8080)
        #expect(a.flowInfo == 0)
        #expect(a.scopeID == 0)
        #expect(a.path == nil)
        #expect(a.description == "[::1]:8080")
        let b = try SocketAddress(ipv6: "2001:DB8:0:0::7", port: 443, flowInfo: 5, scopeID: 3)
        #expect(b.host == "2001:db8::7")
        #expect(b.flowInfo == 5)
        #expect(b.scopeID == 3)
        #expect(b.description == "[2001:db8::7]:443")
        #expect(try SocketAddress(ipv6: "", port: 1).host == "::")
        #expect(try SocketAddress(ipv6: "::", port: 1).description == "[::]:1")
        #expect(try SocketAddress(ipv6: "::ffff:127.0.0.1", port: 1).host == "::ffff:127.0.0.1")
        // A zone by number or by interface name.
        #expect(try SocketAddress(ipv6: "fe80::1%7", port: 1).scopeID == 7)
        let lo = if_nametoindex("lo")
        if lo != 0 {
            let z = try SocketAddress(ipv6: "fe80::1%lo", port: 1)
            #expect(z.scopeID == lo)
            #expect(z.host == "fe80::1")
        }
        #expect(b.withPort(1).port == 1)
        #expect(b.withPort(1).flowInfo == 5)
    }

    @Test("Unix paths and abstract names")
    func unix() throws {
        let a = try SocketAddress(unixPath: "/tmp/some.sock")
        #expect(a.family == .unix)
        #expect(a.path == "/tmp/some.sock")
        #expect(a.description == "/tmp/some.sock")
        #expect(a.host == nil)
        #expect(a.port == nil)
        #expect(a.flowInfo == nil)
        #expect(a.withPort(5) == a)
        let abstract = try SocketAddress(unixPath: "\0name")
        #expect(abstract.description == "@name")
        #expect(abstract.path == "\0name")
        #expect(abstract != (try SocketAddress(unixPath: "name")))
    }

    @Test("equality and hashing")
    func equality() throws {
        let a = try SocketAddress(ipv4: "127.0.0.1", port: 80)
        #expect(a == (try SocketAddress(ipv4: "127.0.0.1", port: 80)))
        #expect(a.hashValue == (try SocketAddress(ipv4: "127.0.0.1", port: 80)).hashValue)
        #expect(a != (try SocketAddress(ipv4: "127.0.0.1", port: 81)))
        #expect(a != (try SocketAddress(ipv4: "127.0.0.2", port: 80)))
        #expect(a != (try SocketAddress(ipv6: "::ffff:127.0.0.1", port: 80)))
        let b = try SocketAddress(ipv6: "::1", port: 80)
        #expect(b == (try SocketAddress(ipv6: "0:0:0:0:0:0:0:1", port: 80)))
        #expect(b != (try SocketAddress(ipv6: "::1", port: 80, flowInfo: 1)))
        #expect(b != (try SocketAddress(ipv6: "::1", port: 80, scopeID: 1)))
        #expect(b != (try SocketAddress(ipv6: "::2", port: 80)))
        let u = try SocketAddress(unixPath: "/x")
        #expect(u == (try SocketAddress(unixPath: "/x")))
        #expect(u != (try SocketAddress(unixPath: "/y")))
        let set: Set<SocketAddress> = [a, try SocketAddress(ipv4: "127.0.0.1", port: 80), b,
                                       try SocketAddress(ipv6: "::1", port: 80), u, try SocketAddress(unixPath: "/x")]
        #expect(set.count == 3)
        let dict = [a: "v4", b: "v6", u: "unix"]
        #expect(dict[try SocketAddress(ipv6: "::1", port: 80)] == "v6")
    }

    @Test("bad IP text is rejected", arguments: ["256.1.1.1", "abc", "1.2.3", "1.2.3.4.5", "127.0.0.1 ", "::1"])
    func badIPv4(text: String) {
        let e = SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(ipv4: text, port: 1) }
        #expect(e?.kind == .invalidArgument, "\(String(describing: e))")
    }

    @Test("bad IPv6 text is rejected", arguments: ["::g", "1:2:3:4:5:6:7:8:9", "127.0.0.1", "[::1]", "fe80::1%no-such-if0"])
    func badIPv6(text: String) {
        SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(ipv6: text, port: 1) }
    }

    @Test("ports out of range are rejected", arguments: [-1, 65536, Int.max, Int.min])
    func badPort(port: Int) {
        let e = SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(ipv4: "127.0.0.1", port: port) }
        #expect(e == .invalidArgument("port \(port) is not in 0...65535"))
        SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(ipv6: "::1", port: port) }
        SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress.resolve(host: "localhost", port: port) }
    }

    @Test("a Unix path must fit sun_path with its NUL")
    func longPath() throws {
        let limit = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        let fits = "/" + String(repeating: "a", count: limit - 2)
        #expect(try SocketAddress(unixPath: fits).path == fits)
        let tooLong = "/" + String(repeating: "a", count: limit - 1)
        let e = SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(unixPath: tooLong) }
        #expect(e?.kind == .invalidArgument)
    }

    @Test("the longest Unix path binds and reads back unchanged")
    func longestPathRoundTrip() throws {
        let dir = try TempDir()
        let limit = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        let name = String(repeating: "p", count: limit - 2 - dir.path.count)
        let path = dir.file(name)
        #expect(path.utf8.count == limit - 1)
        let s = try Socket(family: .unix)
        defer { s.close() }
        try s.bind(to: SocketAddress(unixPath: path))
        #expect(try s.localAddress().path == path)
    }

    @Test("resolve: numeric hosts, names, the wildcard")
    func resolve() throws {
        #expect(try SocketAddress.resolve(host: "127.0.0.1", port: 5) == SocketAddress(ipv4: "127.0.0.1", port: 5))
        #expect(try SocketAddress.resolve(host: "::1", port: 5) == SocketAddress(ipv6: "::1", port: 5))
        #expect(try SocketAddress.resolve(host: "", port: 5) == SocketAddress(ipv4: "", port: 5))
        #expect(try SocketAddress.resolve(host: "", port: 5, family: .inet6) == SocketAddress(ipv6: "", port: 5))
        let local = try SocketAddress.resolve(host: "localhost", port: 7, family: .inet)
        #expect(local == (try SocketAddress(ipv4: "127.0.0.1", port: 7)))
        // A numeric address of the wrong family for the socket is not taken.
        let e = #expect(throws: SocketError.self) { _ = try SocketAddress.resolve(host: "127.0.0.1", port: 5, family: .inet6) }
        if e?.kind != .addressResolution { Issue.record("expected a resolution error, got \(String(describing: e))") }
    }

    @Test("addresses the kernel reports equal the ones built", arguments: SockKit.ipFamilies)
    func kernelRoundTrip(family: AddressFamily) throws {
        let s = try Socket(family: family, type: .datagram)
        defer { s.close() }
        try s.bind(to: SockKit.loopback(family))
        let local = try s.localAddress()
        #expect(local == (try SockKit.loopback(family, port: local.port!)))
        #expect(local.description == (family == .inet ? "127.0.0.1:\(local.port!)" : "[::1]:\(local.port!)"))
    }
}
