@testable import SocketServer
import Testing
import TestSupport

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func complete(_ b: [UInt8], maxLength: Int = ProxyHeader.defaultMaxLength) throws -> (ProxyHeader, Int) {
    guard case .complete(let h, let n) = try ProxyHeader.parse(b, maxLength: maxLength) else {
        throw SocketError.invalidArgument("incomplete")
    }
    return (h, n)
}

private func refuses(_ b: [UInt8], _ expected: ProxyProtocolError? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let r = try ProxyHeader.parse(b)
        Issue.record("accepted: \(r)", sourceLocation: sourceLocation)
    } catch let e as ProxyProtocolError {
        if let expected { #expect(e == expected, sourceLocation: sourceLocation) }
    } catch {
        Issue.record("other error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("PROXY protocol: parser and encoder")
struct ProxyParserTests {
    @Test func v1TCP4() throws {
        let line = bytes("PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET /")
        let (h, n) = try complete(line)
        #expect(n == line.count - 5)
        #expect(h.version == .v1 && h.command == .proxy && h.family == .inet)
        #expect(h.source == (try SocketAddress(ipv4: "192.0.2.7", port: 56324)))
        #expect(h.destination == (try SocketAddress(ipv4: "10.0.0.1", port: 443)))
        #expect(try h.encode(.v1) == Array(line.prefix(n)))
    }

    @Test(arguments: ["::1", "2001:db8::1", "::", "::ffff:192.0.2.1", "2001:DB8:0:0:8:800:200C:417A", "fe80::"])
    func v1TCP6Forms(_ address: String) throws {
        let (h, _) = try complete(bytes("PROXY TCP6 \(address) ::1 1 65535\r\n"))
        #expect(h.family == .inet6)
        #expect(h.source == (try SocketAddress(ipv6: address, port: 1)))
        #expect(h.destination?.port == 65535)
    }

    @Test func v1Unknown() throws {
        let (h, n) = try complete(bytes("PROXY UNKNOWN\r\n"))
        #expect(n == 15 && h.family == .unspecified && h.source == nil && h.command == .proxy)
        let (h2, _) = try complete(bytes("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 65535 65535\r\n"))
        #expect(h2.family == .unspecified)
    }

    @Test func v1Limit107() throws {
        // The longest TCP6 line the spec allows is 104; UNKNOWN may pad to 107.
        let at107 = bytes("PROXY UNKNOWN " + String(repeating: "x", count: 107 - 16) + "\r\n")
        #expect(at107.count == 107)
        _ = try complete(at107)
        let at108 = bytes("PROXY UNKNOWN " + String(repeating: "x", count: 108 - 16) + "\r\n")
        refuses(at108, .tooLong(limit: 107))
        // No LF within 107 bytes: refused without waiting for more.
        refuses(bytes("PROXY UNKNOWN " + String(repeating: "x", count: 200)), .tooLong(limit: 107))
        // Shorter and no LF yet: wants more.
        #expect(try ProxyHeader.parse(bytes("PROXY TCP4 1.2.3.4")) == .incomplete(needAtLeast: 19))
    }

    @Test(arguments: [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",            // lone LF
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",        // CR inside
        "PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n",        // lone CR
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",         // leading zero in an octet
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",         // leading zero in a port
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",      // port too big
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",        // octet too big
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",            // three octets
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",         // two spaces
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",         // trailing space
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",            // a field missing
        "PROXY TCP4 ::1 ::1 1 2\r\n",                  // IPv6 under TCP4
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",          // IPv4 under TCP6
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",         // a zone
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",              // two ::
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",         // a sign
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",          // unknown protocol
        "PROXY \r\n",
        "PROXY UNKNOWNX\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",          // lower case: not a header
        "GET / HTTP/1.1\r\n",
    ])
    func v1Refused(_ line: String) {
        refuses(bytes(line))
    }

    @Test func v2TCP4WithTLVs() throws {
        let src = try SocketAddress(ipv4: "198.51.100.9", port: 40000)
        let dst = try SocketAddress(ipv4: "127.0.0.1", port: 8443)
        var h = ProxyHeader(source: src, destination: dst, tlvs: [
            ProxyTLV(type: ProxyTLV.alpn, value: bytes("h2")),
            ProxyTLV(type: ProxyTLV.authority, value: bytes("example.com")),
            ProxyTLV(type: ProxyTLV.uniqueID, value: [1, 2, 3]),
            ProxyTLV(type: ProxyTLV.noop, value: []),
            ProxyTLV(type: 0xE0, value: bytes("custom")),
        ])
        h = h.withSSL(ProxySSL(client: 0x01, verify: 0, tlvs: [ProxyTLV(type: 0x21, value: bytes("TLSv1.3")),
                                                                ProxyTLV(type: 0x23, value: bytes("TLS_AES_128_GCM_SHA256"))]))
        let wire = try h.encode(.v2) + bytes("data")
        #expect(Array(wire.prefix(16)) == ProxyHeader.v2Signature + [0x21, 0x11, UInt8((wire.count - 20) >> 8), UInt8((wire.count - 20) & 0xff)])
        let (p, n) = try complete(wire)
        #expect(n == wire.count - 4)
        #expect(p == h)
        #expect(p.alpnProtocol == "h2" && p.authority == "example.com" && p.uniqueID == [1, 2, 3])
        #expect(p.ssl?.usedTLS == true && p.ssl?.tlsVersion == "TLSv1.3" && p.ssl?.cipher == "TLS_AES_128_GCM_SHA256")
        #expect(p.tlv(0xE0) == bytes("custom") && !p.hasChecksum)
    }

    @Test func v2TCP6AndUnix() throws {
        let h6 = ProxyHeader(source: try SocketAddress(ipv6: "2001:db8::5", port: 1), destination: try SocketAddress(ipv6: "::1", port: 2))
        let w6 = try h6.encode(.v2)
        #expect(w6.count == 16 + 36 && w6[13] == 0x21)
        #expect(try complete(w6).0 == h6)
        let hu = ProxyHeader(source: try SocketAddress(unixPath: "/run/a.sock"), destination: try SocketAddress(unixPath: "/run/b.sock"))
        let wu = try hu.encode(.v2)
        #expect(wu.count == 16 + 216 && wu[13] == 0x31)
        #expect(try complete(wu).0 == hu)
        #expect(try hu.encode(.v1) == bytes("PROXY UNKNOWN\r\n"))
    }

    @Test func v2Local() throws {
        let w = try ProxyHeader.local.encode(.v2)
        #expect(w == ProxyHeader.v2Signature + [0x20, 0x00, 0x00, 0x00])  // what HAProxy's checks send
        #expect(try complete(w).0.command == .local)
        // LOCAL with a non-zero length (AWS NLB: dummy TCP4 addresses): skipped whole.
        var padded = ProxyHeader.v2Signature + [0x20, 0x11, 0x00, 0x0C] + [UInt8](repeating: 7, count: 12)
        let (h, n) = try complete(padded + bytes("x"))
        #expect(h.command == .local && h.source == nil && n == 28)
        padded[13] = 0xFF  // family ignored for LOCAL
        #expect(try complete(padded).0.command == .local)
        #expect(try ProxyHeader.local.encode(.v1) == bytes("PROXY UNKNOWN\r\n"))
    }

    @Test func v2Refused() throws {
        let base = try ProxyHeader(source: SocketAddress(ipv4: "1.2.3.4", port: 5), destination: SocketAddress(ipv4: "5.6.7.8", port: 9)).encode(.v2)
        var bad = base; bad[12] = 0x11; refuses(bad)                 // version 1 in a v2 block
        bad = base; bad[12] = 0x22; refuses(bad)                     // command 2
        bad = base; bad[13] = 0x41; refuses(bad)                     // family 4
        bad = base; bad[13] = 0x13; refuses(bad)                     // transport 3
        bad = base; bad[15] = 11; refuses(Array(bad.prefix(27)))     // length too short for TCP4
        bad = base; bad[11] = 0x0B; refuses(bad, .notAHeader)        // signature
        // TLVs that overrun, or a TLV header cut short.
        refuses(base.prefix(14) + [0x00, 0x0F] + base[16...] + [0x01, 0x00, 0x05])
        refuses(base.prefix(14) + [0x00, 0x0E] + base[16...] + [0x01, 0x00])
        // An oversized length: refused at once, without waiting for the bytes.
        refuses(base.prefix(14) + [0xFF, 0xFF], .tooLong(limit: ProxyHeader.defaultMaxLength))
        // A UNIQUE_ID over 128 bytes; an SSL field under 5 bytes.
        let tooLongID = ProxyHeader(source: try SocketAddress(ipv4: "1.2.3.4", port: 5), destination: try SocketAddress(ipv4: "5.6.7.8", port: 9),
                                    tlvs: [ProxyTLV(type: ProxyTLV.uniqueID, value: [UInt8](repeating: 1, count: 129))])
        refuses(try tooLongID.encode(.v2))
        let badSSL = ProxyHeader(source: try SocketAddress(ipv4: "1.2.3.4", port: 5), destination: try SocketAddress(ipv4: "5.6.7.8", port: 9),
                                 tlvs: [ProxyTLV(type: ProxyTLV.ssl, value: [1, 0])])
        refuses(try badSSL.encode(.v2))
    }

    @Test func crc32c() throws {
        #expect(CRC32C.checksum(bytes("123456789")) == 0xE306_9283)
        let h = ProxyHeader(source: try SocketAddress(ipv4: "1.2.3.4", port: 5), destination: try SocketAddress(ipv4: "5.6.7.8", port: 9),
                            tlvs: [ProxyTLV(type: ProxyTLV.authority, value: bytes("a.test"))])
        let w = try h.encode(.v2, checksum: true)
        let (p, _) = try complete(w)
        #expect(p.hasChecksum && p.authority == "a.test")
        for i in [16, 20, 26, 33, w.count - 1] {  // an address, a port, the authority, the checksum itself
            var bad = w
            bad[i] ^= 0x01
            refuses(bad, .checksumMismatch)
        }
    }

    @Test func incrementalParse() throws {
        // Fed one byte at a time, each version is incomplete until its last byte.
        let v2 = try ProxyHeader(source: SocketAddress(ipv6: "::1", port: 1), destination: SocketAddress(ipv6: "::2", port: 2),
                                 tlvs: [ProxyTLV(type: ProxyTLV.alpn, value: bytes("x"))]).encode(.v2, checksum: true)
        for wire in [bytes("PROXY TCP6 ::1 ::2 1 2\r\n"), v2, bytes("PROXY UNKNOWN\r\n")] {
            for n in 0..<wire.count {
                guard case .incomplete(let need) = try ProxyHeader.parse(Array(wire.prefix(n))) else {
                    Issue.record("complete at \(n) of \(wire.count)"); break
                }
                #expect(need > n && need <= wire.count)
            }
            #expect(try complete(wire).1 == wire.count)
        }
    }

    @Test func readFromReaderOneByteAtATime() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.setTimeout(10); try b.setTimeout(10)
        let wire = try ProxyHeader(source: SocketAddress(ipv4: "203.0.113.1", port: 7), destination: SocketAddress(ipv4: "127.0.0.1", port: 8)).encode(.v2)
        let writer = try TestThread<Int>(unblocking: SockKit.ordinarySignals) {
            for byte in wire + bytes("PING\n") { try a.sendAll([byte]); pause(0.001) }
            return 0
        }
        let reader = SocketReader(b)
        let h = try ProxyHeader.read(from: reader, timeout: 10)
        #expect(h.source == (try SocketAddress(ipv4: "203.0.113.1", port: 7)))
        #expect(try reader.readLine() == bytes("PING\n"))
        #expect(b.timeout == 10)  // restored
        _ = try writer.join()
    }

    @Test func readKeepsBytesAfterTheHeaderAndReportsEOF() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.sendAll(bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhello\nrest"))
        a.close()
        let reader = SocketReader(b)
        _ = try ProxyHeader.read(from: reader, timeout: 5)
        #expect(try reader.readAll() == bytes("hello\nrest"))
        let (c, d) = try Socket.pair()
        defer { d.close() }
        c.close()
        #expect(throws: ProxyProtocolError.closedBeforeHeader) { try ProxyHeader.read(from: SocketReader(d), timeout: 5) }
        let (e, f) = try Socket.pair()
        defer { f.close() }
        try e.sendAll(bytes("PROXY TCP4 1.2"))
        e.close()
        #expect(throws: ProxyProtocolError.truncated(received: 14)) { try ProxyHeader.read(from: SocketReader(f), timeout: 5) }
    }

    @Test func readTimesOutUnderOneDeadline() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.sendAll(bytes("PROXY TCP4 "))  // then nothing
        let start = now()
        #expect(throws: SocketError.self) { try ProxyHeader.read(from: SocketReader(b), timeout: 0.3) }
        #expect(now() - start < 5)
        #expect(b.timeout == nil)  // restored to blocking
    }
}

@Suite("CIDR")
struct CIDRTests {
    private func v4(_ s: String) -> SocketAddress { try! SocketAddress(ipv4: s, port: 1) }
    private func v6(_ s: String) -> SocketAddress { try! SocketAddress(ipv6: s, port: 1) }

    @Test func ipv4() throws {
        let net = try CIDR("10.0.0.0/8")
        #expect(net.contains(v4("10.255.1.2")) && !net.contains(v4("11.0.0.1")))
        #expect(net.description == "10.0.0.0/8" && net.family == .inet)
        let host = try CIDR("192.0.2.7")
        #expect(host.prefixLength == 32 && host.contains(v4("192.0.2.7")) && !host.contains(v4("192.0.2.8")))
        let all = try CIDR("0.0.0.0/0")
        #expect(all.contains(v4("255.255.255.255")) && !all.contains(v6("::1")))
        let odd = try CIDR("172.16.0.0/12")
        #expect(odd.contains(v4("172.31.255.255")) && !odd.contains(v4("172.32.0.0")))
    }

    @Test func ipv6() throws {
        let net = try CIDR("2001:db8::/32")
        #expect(net.contains(v6("2001:db8:ffff::1")) && !net.contains(v6("2001:db9::1")))
        #expect(!net.contains(v4("32.1.13.184")))
        #expect(try CIDR("::1/128").contains(v6("::1")))
        #expect(try CIDR("[::1]").prefixLength == 128)
        #expect(try CIDR("fe80::/10").contains(v6("febf::1")))
        #expect(try CIDR("2001:db8::/32").description == "2001:db8::/32")
    }

    @Test func ipv4Mapped() throws {
        let net = try CIDR("127.0.0.0/8")
        #expect(net.contains(v6("::ffff:127.0.0.1")))
        #expect(!net.contains(v6("::ffff:128.0.0.1")))
        let mapped = try CIDR("::ffff:10.0.0.0/104")
        #expect(mapped.family == .inet && mapped.prefixLength == 8 && mapped.description == "10.0.0.0/8")
        #expect(mapped.contains(v4("10.1.2.3")) && mapped.contains(v6("::ffff:10.1.2.3")))
        #expect(CIDR.any(CIDR.loopback, contains: v6("::ffff:127.9.9.9")))
        #expect(!CIDR.any(CIDR.loopback, contains: try SocketAddress(unixPath: "/tmp/x")))
    }

    @Test(arguments: ["10.0.0.1/8", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "example.com",
                      "", "/8", "fe80::1%eth0/128", "10.0.0/8", "01.0.0.0/8", "::1/1a"])
    func refused(_ text: String) {
        #expect(throws: SocketError.self) { try CIDR(text) }
    }

    @Test func fromAddress() throws {
        let net = try CIDR(address: v6("2001:db8:1:2::9"), prefixLength: 64)
        #expect(net.description == "2001:db8:1:2::/64")
        #expect(throws: SocketError.self) { try CIDR(address: v4("1.2.3.4"), prefixLength: 33) }
        #expect(try CIDR("10.0.0.0/8") == (try CIDR(address: v4("10.9.9.9"), prefixLength: 8)))
    }
}
