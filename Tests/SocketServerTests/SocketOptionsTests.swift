// Socket options: the typed ones and the raw integer/bytes escape hatch.

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

@Suite("Socket options")
struct SocketOptionsTests {
    @Test("boolean options set and read back",
          arguments: [("reuseAddress", SocketOption<Bool>.reuseAddress), ("reusePort", .reusePort),
                      ("keepAlive", .keepAlive), ("noDelay", .noDelay), ("broadcast", .broadcast)])
    func booleans(name: String, option: SocketOption<Bool>) throws {
        let s = try Socket(family: .inet, type: name == "broadcast" ? .datagram : .stream)
        defer { s.close() }
        #expect(try s.getOption(option) == false, "\(name)")
        try s.setOption(option, true)
        #expect(try s.getOption(option) == true, "\(name)")
        // Through the raw escape hatch too.
        #expect(try s.getOption(level: option.level, name: option.name) != 0, "\(name)")
        try s.setOption(option, false)
        #expect(try s.getOption(option) == false, "\(name)")
        #expect(try s.getOption(level: option.level, name: option.name) == 0, "\(name)")
    }

    @Test("noDelay and keepAlive on a connected TCP socket", arguments: SockKit.ipFamilies)
    func tcpOptions(family: AddressFamily) throws {
        let (c, s) = try SockKit.tcpPair(family)
        defer { c.close(); s.close() }
        try c.setOption(.noDelay, true)
        try c.setOption(.keepAlive, true)
        #expect(try c.getOption(.noDelay))
        #expect(try c.getOption(.keepAlive))
        #expect(try c.getOption(level: Int32(IPPROTO_TCP), name: TCP_NODELAY) == 1)
    }

    @Test("reusePort lets two sockets bind the same port")
    func reusePortBinds() throws {
        let a = try Socket(type: .datagram)
        let b = try Socket(type: .datagram)
        defer { a.close(); b.close() }
        try a.setOption(.reusePort, true)
        try b.setOption(.reusePort, true)
        try a.bind(to: SockKit.loopback(.inet))
        try b.bind(to: a.localAddress())
        #expect(try a.localAddress() == b.localAddress())
    }

    @Test("broadcast: sendTo the broadcast address is refused without it")
    func broadcastRefused() throws {
        let s = try Socket(type: .datagram)
        defer { s.close() }
        // Fails locally before any packet leaves the machine.
        SockKit.expectErrno([.permissionDenied]) {
            try s.sendTo(SockKit.bytes("x"), SocketAddress(ipv4: "<broadcast>", port: 9))
        }
    }

    @Test("buffer sizes: set, read back (Linux doubles what was set)")
    func bufferSizes() throws {
        let s = try Socket()
        defer { s.close() }
        try s.setOption(.receiveBufferSize, 65536)
        try s.setOption(.sendBufferSize, 32768)
        let r = try s.getOption(.receiveBufferSize)
        let w = try s.getOption(.sendBufferSize)
        #expect(r >= 65536)
        #expect(w >= 32768)
        try s.setOption(.receiveBufferSize, 8192)
        #expect(try s.getOption(.receiveBufferSize) < r)
        #expect(try s.getOption(level: SOL_SOCKET, name: SO_RCVBUF) == Int32(try s.getOption(.receiveBufferSize)))
    }

    @Test("type and acceptConnections are read from the socket")
    func readOnly() throws {
        for type in [SocketType.stream, .datagram] {
            let s = try Socket(type: type)
            defer { s.close() }
            #expect(try s.getOption(.type) == type)
            #expect(try s.getOption(.acceptConnections) == false)
        }
        let (l, _) = try SockKit.listener()
        defer { l.close() }
        #expect(try l.getOption(.acceptConnections))
        // SO_TYPE cannot be set.
        SockKit.expectErrno([Errno(ENOPROTOOPT), .invalidArgument]) { try l.setOption(.type, .datagram) }
    }

    @Test("error: 0 normally")
    func errorOption() throws {
        let (c, s) = try SockKit.tcpPair()
        defer { c.close(); s.close() }
        #expect(try c.getOption(.error) == 0)
    }

    @Test("receiveTimeout and sendTimeout: set, read back, clear")
    func timevals() throws {
        let s = try Socket()
        defer { s.close() }
        #expect(try s.getOption(.receiveTimeout) == nil)
        #expect(try s.getOption(.sendTimeout) == nil)
        try s.setOption(.receiveTimeout, 1.5)
        try s.setOption(.sendTimeout, 2.25)
        // The kernel keeps these in clock ticks: compare to within a tick.
        #expect(abs(try #require(try s.getOption(.receiveTimeout)) - 1.5) < 0.011)
        #expect(abs(try #require(try s.getOption(.sendTimeout)) - 2.25) < 0.011)
        try s.setOption(.receiveTimeout, nil)
        #expect(try s.getOption(.receiveTimeout) == nil)
        #expect(try s.getOption(.sendTimeout) != nil)
        try s.setOption(.sendTimeout, 0)
        #expect(try s.getOption(.sendTimeout) == nil)
        SockKit.expectErrno([.invalidArgument]) { try s.setOption(.receiveTimeout, -1) }
        SockKit.expectErrno([.invalidArgument]) { try s.setOption(.receiveTimeout, .nan) }
        // Infinity and huge values mean "practically forever", without trapping.
        for forever in [Double.infinity, 1e300] {
            try s.setOption(.receiveTimeout, forever)
            let back = try s.getOption(.receiveTimeout)
            #expect(back == nil || back! > 1e9)
        }
        // The raw bytes are a struct timeval.
        try s.setOption(.receiveTimeout, 3)
        let raw = try s.getOption(level: SOL_SOCKET, name: SO_RCVTIMEO, length: MemoryLayout<timeval>.size)
        #expect(raw.count == MemoryLayout<timeval>.size)
        let tv = raw.withUnsafeBytes { $0.loadUnaligned(as: timeval.self) }
        #expect(tv.tv_sec == 3 && tv.tv_usec == 0)
    }

    @Test("a blocking recv that runs out of SO_RCVTIMEO throws SocketError.timeout")
    func receiveTimeoutFires() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(nil)  // blocking: only SO_RCVTIMEO ends the wait
        try b.setOption(.receiveTimeout, 0.05)
        let e = #expect(throws: SocketError.self) { _ = try b.recv(10) }
        #expect(e == .timeout(operation: "recv", address: nil))
        // Still usable.
        try a.sendAll(SockKit.bytes("late"))
        #expect(try b.recv(10) == SockKit.bytes("late"))
    }

    @Test("the raw escape hatch: integers and bytes")
    func raw() throws {
        let s = try Socket()
        defer { s.close() }
        try s.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
        #expect(try s.getOption(level: SOL_SOCKET, name: SO_REUSEADDR) == 1)
        #expect(try s.getOption(.reuseAddress))
        #expect(try s.getOption(level: SOL_SOCKET, name: SO_REUSEADDR, length: 4).count == 4)

        // SO_LINGER as a C struct.
        var linger = Glibc.linger(l_onoff: 1, l_linger: 7)
        try withUnsafeBytes(of: &linger) { try s.setOption(level: SOL_SOCKET, name: SO_LINGER, bytes: $0) }
        let bytes = try s.getOption(level: SOL_SOCKET, name: SO_LINGER, length: MemoryLayout<Glibc.linger>.size)
        let back = bytes.withUnsafeBytes { $0.loadUnaligned(as: Glibc.linger.self) }
        #expect(back.l_onoff != 0)
        #expect(back.l_linger == 7)

        // IP-level option.
        try s.setOption(level: Int32(IPPROTO_IP), name: IP_TTL, value: 42)
        #expect(try s.getOption(level: Int32(IPPROTO_IP), name: IP_TTL) == 42)
    }

    @Test("unknown options and closed sockets throw")
    func errors() throws {
        let s = try Socket()
        let e = SockKit.expectErrno([Errno(ENOPROTOOPT)]) { _ = try s.getOption(level: SOL_SOCKET, name: 9999) }
        #expect(e?.operation == "getsockopt(\(SOL_SOCKET), 9999)")
        SockKit.expectErrno([Errno(ENOPROTOOPT)]) { try s.setOption(level: SOL_SOCKET, name: 9999, value: 1) }
        // TCP options on a Unix socket.
        let u = try Socket(family: .unix)
        defer { u.close() }
        SockKit.expectErrno([.operationNotSupported, Errno(ENOPROTOOPT)]) { try u.setOption(.noDelay, true) }
        s.close()
        SockKit.expectErrno([.badFileDescriptor]) { _ = try s.getOption(.keepAlive) }
        SockKit.expectErrno([.badFileDescriptor]) { try s.setOption(.keepAlive, true) }
    }
}
