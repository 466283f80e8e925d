// Resolver: getaddrinfo/getnameinfo and the other name-service and
// address-conversion functions. Only local sources are used (numeric
// addresses, "localhost" from the hosts file, /etc/services, /etc/protocols).

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

private func fileExists(_ path: String) -> Bool { access(path, R_OK) == 0 }

@Suite("Resolver")
struct SocketResolverTests {
    @Test("addressInfo: typed results for a numeric host")
    func numeric() throws {
        let infos = try Resolver.addressInfo(host: "127.0.0.1", port: "80", type: .stream)
        #expect(infos.count == 1)
        let info = try #require(infos.first)
        #expect(info.family == .inet)
        #expect(info.type == .stream)
        #expect(info.proto == Int32(IPPROTO_TCP))
        #expect(info.address == (try SocketAddress(ipv4: "127.0.0.1", port: 80)))
        #expect(info.canonicalName == nil)
        #expect(info.description == "AF_INET SOCK_STREAM proto=6 127.0.0.1:80")

        let udp = try Resolver.addressInfo(host: "::1", port: "53", family: .inet6, type: .datagram)
        #expect(udp.map(\.address) == [try SocketAddress(ipv6: "::1", port: 53)])
        #expect(udp.first?.proto == Int32(IPPROTO_UDP))
        #expect(udp.first?.type == .datagram)

        // No type: one result per socket type.
        let all = try Resolver.addressInfo(host: "127.0.0.1", port: "7")
        #expect(Set(all.map(\.type)).isSuperset(of: [.stream, .datagram]))
        #expect(Set(all.map(\.address)) == [try SocketAddress(ipv4: "127.0.0.1", port: 7)])
    }

    @Test("addressInfo: passive wildcard, canonical name, named service")
    func flags() throws {
        let passive = try Resolver.addressInfo(host: nil, port: "0", family: .inet, type: .stream, flags: AI_PASSIVE)
        #expect(passive.map(\.address) == [try SocketAddress(ipv4: "0.0.0.0", port: 0)])
        let active = try Resolver.addressInfo(host: nil, port: "1", family: .inet, type: .stream)
        #expect(active.map(\.address) == [try SocketAddress(ipv4: "127.0.0.1", port: 1)])

        let named = try Resolver.addressInfo(host: "localhost", port: nil, family: .inet, type: .stream,
                                             flags: AI_CANONNAME)
        #expect(named.first?.canonicalName == "localhost")
        #expect(named.contains { $0.address.host == "127.0.0.1" })
    }

    @Test("addressInfo: a named service", .enabled(if: fileExists("/etc/services"), "no /etc/services"))
    func service() throws {
        let infos = try Resolver.addressInfo(host: "127.0.0.1", port: "http", type: .stream)
        #expect(infos.first?.address.port == 80)
    }

    @Test("resolution errors carry the EAI code (no network needed)")
    func errors() throws {
        do {
            _ = try Resolver.addressInfo(host: "not-a-number", port: "80", flags: AI_NUMERICHOST)
            Issue.record("no error")
        } catch let e as SocketError {
            let message = String(cString: gai_strerror(EAI_NONAME))
            #expect(e == .addressResolution(code: EAI_NONAME, message: message, host: "not-a-number"))
            #expect(e.resolverCode == EAI_NONAME)
            #expect(e.errno == nil)
            #expect(!(Errno.connectionRefused ~= e))
        }
        do {
            _ = try Resolver.addressInfo(host: "127.0.0.1", port: "no-such-service-name", type: .stream)
            Issue.record("no error")
        } catch let e as SocketError {
            guard e.kind == .addressResolution, let code = e.resolverCode else { Issue.record("\(e)"); return }
            #expect(code == EAI_SERVICE || code == EAI_NONAME)
        }
        // A family getaddrinfo does not know.
        do {
            _ = try Resolver.addressInfo(host: "127.0.0.1", port: "1", family: AddressFamily(rawValue: 12345))
            Issue.record("no error")
        } catch let e as SocketError {
            #expect(e == .addressResolution(code: EAI_FAMILY, message: String(cString: gai_strerror(EAI_FAMILY)),
                                            host: "127.0.0.1"))
        }
        // Both missing.
        #expect(throws: SocketError.self) { _ = try Resolver.addressInfo(host: nil, port: nil) }
    }

    @Test("nameInfo: numeric and by name")
    func nameInfo() throws {
        let a = try SocketAddress(ipv4: "127.0.0.1", port: 80)
        let numeric = try Resolver.nameInfo(a, flags: NI_NUMERICHOST | NI_NUMERICSERV)
        #expect(numeric.host == "127.0.0.1")
        #expect(numeric.service == "80")
        let v6 = try Resolver.nameInfo(SocketAddress(ipv6: "::1", port: 8080), flags: NI_NUMERICHOST | NI_NUMERICSERV)
        #expect(v6.host == "::1")
        #expect(v6.service == "8080")
        let named = try Resolver.nameInfo(a, flags: NI_NAMEREQD)
        #expect(!named.host.isEmpty)
        #expect(try Resolver.hostByName(named.host) == "127.0.0.1")
        if fileExists("/etc/services") { #expect(named.service == "http") }
    }

    @Test("hostname, fqdn")
    func hostname() throws {
        let name = Resolver.hostname()
        #expect(!name.isEmpty)
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        #expect(name == buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        // Python's getfqdn: the name gethostbyaddr finds, else the name itself.
        let fqdn = Resolver.fqdn()
        #expect(fqdn == ((try? Resolver.hostByAddress(name).name) ?? name))
        #expect(Resolver.fqdn("localhost") == "localhost" || Resolver.fqdn("localhost").contains("."))
        #expect(Resolver.fqdn("  localhost ") == Resolver.fqdn("localhost"))
    }

    @Test("hostByName, hostByNameEx, hostByAddress")
    func hostBy() throws {
        #expect(try Resolver.hostByName("localhost") == "127.0.0.1")
        #expect(try Resolver.hostByName("127.0.0.1") == "127.0.0.1")
        let ex = try Resolver.hostByNameEx("localhost")
        #expect(ex.name == "localhost")
        #expect(ex.aliases == [])
        #expect(ex.addresses.contains("127.0.0.1"))
        #expect(Set(ex.addresses).count == ex.addresses.count)

        let byAddress = try Resolver.hostByAddress("127.0.0.1")
        #expect(!byAddress.name.isEmpty)
        #expect(byAddress.addresses == ["127.0.0.1"])
        // The name found leads back to the address.
        #expect(try Resolver.hostByName(byAddress.name) == "127.0.0.1")

    }

    @Test("serviceByName and serviceByPort", .enabled(if: fileExists("/etc/services"), "no /etc/services"))
    func services() throws {
        #expect(try Resolver.serviceByName("http", protocol: "tcp") == 80)
        #expect(try Resolver.serviceByName("ssh") == 22)
        #expect(try Resolver.serviceByName("domain", protocol: "udp") == 53)
        #expect(try Resolver.serviceByPort(80, protocol: "tcp") == "http")
        #expect(try Resolver.serviceByPort(22) == "ssh")
        let e = #expect(throws: SocketError.self) { _ = try Resolver.serviceByName("no-such-service") }
        #expect(e == .hostNotFound(host: "no-such-service", message: "service/proto not found"))
        #expect(throws: SocketError.self) { _ = try Resolver.serviceByName("http", protocol: "no-such-proto") }
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.serviceByPort(70000) }
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.serviceByPort(-1) }
    }

    @Test("protocolByName", .enabled(if: fileExists("/etc/protocols"), "no /etc/protocols"))
    func protocols() throws {
        #expect(try Resolver.protocolByName("tcp") == 6)
        #expect(try Resolver.protocolByName("udp") == 17)
        #expect(try Resolver.protocolByName("icmp") == 1)
        #expect(throws: SocketError.self) { _ = try Resolver.protocolByName("no-such-protocol") }
    }

    @Test("inetPton and inetNtop")
    func pton() throws {
        #expect(try Resolver.inetPton(.inet, "127.0.0.1") == [127, 0, 0, 1])
        #expect(try Resolver.inetPton(.inet, "255.254.253.252") == [255, 254, 253, 252])
        #expect(try Resolver.inetPton(.inet6, "::1") == [UInt8](repeating: 0, count: 15) + [1])
        #expect(try Resolver.inetPton(.inet6, "2001:db8::ff00:42:8329")
                == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29])
        #expect(try Resolver.inetNtop(.inet, [10, 0, 0, 1]) == "10.0.0.1")
        #expect(try Resolver.inetNtop(.inet6, [UInt8](repeating: 0, count: 15) + [1]) == "::1")
        #expect(try Resolver.inetNtop(.inet6, Resolver.inetPton(.inet6, "2001:DB8:0:0:0:0:0:1")) == "2001:db8::1")
        for bad in ["127.1", "1.2.3.256", "x", ""] {
            SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetPton(.inet, bad) }
        }
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetPton(.inet6, ":::") }
        SockKit.expectErrno([.addressFamilyNotSupported]) { _ = try Resolver.inetPton(.unix, "x") }
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetNtop(.inet, [1, 2, 3]) }
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetNtop(.inet6, [1, 2, 3, 4]) }
        SockKit.expectErrno([.addressFamilyNotSupported]) { _ = try Resolver.inetNtop(.unix, [1, 2, 3, 4]) }
    }

    @Test("inetAton and inetNtoa")
    func aton() throws {
        #expect(try Resolver.inetAton("127.0.0.1") == [127, 0, 0, 1])
        #expect(try Resolver.inetAton("127.1") == [127, 0, 0, 1])
        #expect(try Resolver.inetAton("0x7f.1") == [127, 0, 0, 1])
        #expect(try Resolver.inetAton("10.0.258") == [10, 0, 1, 2])
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetAton("a.b") }
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetAton("1.2.3.4.5") }
        #expect(try Resolver.inetNtoa([192, 168, 0, 1]) == "192.168.0.1")
        SockKit.expectErrno([.invalidArgument]) { _ = try Resolver.inetNtoa([1, 2, 3, 4, 5]) }
    }
}
