// Socket: creation, server and client calls, data, datagrams, ending.

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

@Suite("Socket creation")
struct SocketCreationTests {
    @Test("family, type, proto and fileno of new sockets",
          arguments: [(AddressFamily.inet, SocketType.stream), (.inet, .datagram),
                      (.unix, .stream), (.unix, .datagram), (.unix, .seqpacket)])
    func create(family: AddressFamily, type: SocketType) throws {
        let s = try Socket(family: family, type: type)
        defer { s.close() }
        #expect(s.family == family)
        #expect(s.type == type)
        #expect(s.proto == 0)
        #expect(s.fileno >= 0)
        #expect(!s.isClosed)
        #expect(try s.getOption(.type) == type)
        // Close-on-exec is set on every descriptor the library makes.
        #expect(fcntl(s.fileno, F_GETFD) & FD_CLOEXEC != 0)
        #expect(s.description.contains("fd=\(s.fileno)"))
        #expect(s.description.contains(family.description))
    }

    @Test("IPv6 sockets", .enabled(if: Socket.hasIPv6, "this machine cannot make IPv6 sockets"),
          arguments: [SocketType.stream, .datagram])
    func createIPv6(type: SocketType) throws {
        let s = try Socket(family: .inet6, type: type)
        defer { s.close() }
        #expect(s.family == .inet6)
        #expect(s.type == type)
        #expect(try s.getOption(.type) == type)
    }

    @Test("an explicit protocol number is kept")
    func explicitProto() throws {
        let s = try Socket(family: .inet, type: .stream, proto: Int32(IPPROTO_TCP))
        defer { s.close() }
        #expect(s.proto == Int32(IPPROTO_TCP))
    }

    @Test("an unsupported combination throws the system error")
    func unsupported() throws {
        // Stream sockets have no UDP.
        SockKit.expectErrno([Errno.protocolNotSupported, Errno(ESOCKTNOSUPPORT)]) {
            _ = try Socket(family: .inet, type: .stream, proto: Int32(IPPROTO_UDP))
        }
    }

    @Test("Socket(fileDescriptor:) adopts a descriptor and reads its family and type")
    func adopt() throws {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let other = try Socket(fileDescriptor: fds[1])
        try other.setTimeout(SockKit.ioTimeout)
        let s = try Socket(fileDescriptor: fds[0])
        #expect(s.fileno == fds[0])
        #expect(s.family == .unix)
        #expect(s.type == .stream)
        #expect(s.timeout == nil)
        try s.sendAll(SockKit.bytes("adopted"))
        #expect(try SockKit.recvExactly(other, 7) == SockKit.bytes("adopted"))
        // The Socket owns it: closing the Socket closes the descriptor.
        s.close()
        #expect(try other.recv(10) == [])
    }

    @Test("adopting a TCP descriptor reports its protocol")
    func adoptTCP() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        let s = try Socket(fileDescriptor: fd)
        defer { s.close() }
        #expect(s.family == .inet)
        #expect(s.type == .stream)
        #expect(s.proto == Int32(IPPROTO_TCP))
    }

    @Test("adopting a non-blocking descriptor keeps it non-blocking")
    func adoptNonBlocking() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        #expect(fd >= 0)
        let s = try Socket(fileDescriptor: fd)
        defer { s.close() }
        #expect(s.type == .datagram)
        #expect(s.timeout == 0)
        #expect(!s.isBlocking)
        SockKit.expectErrno([.wouldBlock]) { _ = try s.recv(10) }
    }

    @Test("adopting something that is not a socket throws")
    func adoptBad() throws {
        SockKit.expectErrno([.badFileDescriptor]) { _ = try Socket(fileDescriptor: -1) }
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        SockKit.expectErrno([.notSocket]) { _ = try Socket(fileDescriptor: fds[0]) }
        // The descriptor is still the caller's, and open.
        #expect(fcntl(fds[0], F_GETFD) >= 0)
    }

    @Test("fromfd duplicates: the copy and the original are independent descriptors")
    func fromfd() throws {
        let (a, b) = try SockKit.pair()
        let copy = try Socket.fromfd(a.fileno)
        #expect(copy.fileno >= 0)
        #expect(copy.fileno != a.fileno)
        #expect(copy.family == .unix)
        #expect(copy.type == .stream)
        #expect(fcntl(copy.fileno, F_GETFD) & FD_CLOEXEC != 0)
        try copy.sendAll(SockKit.bytes("via copy"))
        #expect(try SockKit.recvExactly(b, 8) == SockKit.bytes("via copy"))
        // Closing the copy leaves the original working, and the peer sees no EOF.
        copy.close()
        try a.sendAll(SockKit.bytes("original"))
        #expect(try SockKit.recvExactly(b, 8) == SockKit.bytes("original"))
        a.close()
        #expect(try b.recv(10) == [])
        SockKit.expectErrno([.badFileDescriptor]) { _ = try Socket.fromfd(-1) }
    }
}

@Suite("Socket server and client calls")
struct SocketConnectTests {
    @Test("bind, listen, accept and connect over TCP", arguments: SockKit.ipFamilies)
    func tcp(family: AddressFamily) throws {
        let listener = try Socket(family: family, type: .stream)
        defer { listener.close() }
        try listener.setTimeout(SockKit.ioTimeout)
        try listener.setOption(.reuseAddress, true)
        try listener.bind(to: SockKit.loopback(family))
        #expect(try listener.getOption(.acceptConnections) == false)
        try listener.listen(backlog: 5)
        #expect(try listener.getOption(.acceptConnections) == true)
        let address = try listener.localAddress()
        #expect(address.family == family)
        #expect(address.host == (family == .inet ? "127.0.0.1" : "::1"))
        #expect(address.port != 0)

        let client = try Socket(family: family, type: .stream)
        defer { client.close() }
        try client.setTimeout(SockKit.ioTimeout)
        try client.connect(to: address)
        let (server, peer) = try listener.accept()
        defer { server.close() }
        try server.setTimeout(SockKit.ioTimeout)
        #expect(server.family == family)
        #expect(server.type == .stream)
        #expect(peer == (try client.localAddress()))
        #expect(try server.peerAddress() == client.localAddress())
        #expect(try server.localAddress() == address)
        #expect(try client.peerAddress() == address)

        try client.sendAll(SockKit.bytes("ping"))
        #expect(try SockKit.recvExactly(server, 4) == SockKit.bytes("ping"))
        try server.sendAll(SockKit.bytes("pong"))
        #expect(try SockKit.recvExactly(client, 4) == SockKit.bytes("pong"))
    }

    @Test("bind and connect take a (host, port) pair")
    func hostPort() throws {
        let listener = try Socket()
        defer { listener.close() }
        try listener.setTimeout(SockKit.ioTimeout)
        try listener.bind(to: (host: "127.0.0.1", port: 0))
        try listener.listen()
        let port = try listener.localAddress().port!
        let client = try Socket()
        defer { client.close() }
        try client.setTimeout(SockKit.ioTimeout)
        try client.connect(to: (host: "localhost", port: port))
        let (server, _) = try listener.accept()
        defer { server.close() }
        #expect(try server.localAddress().port == port)
    }

    @Test("Unix stream sockets: bound paths, unnamed peers, a named client")
    func unixStream() throws {
        let dir = try TempDir()
        let path = dir.file("server.sock")
        let listener = try Socket(family: .unix, type: .stream)
        defer { listener.close() }
        try listener.setTimeout(SockKit.ioTimeout)
        try listener.bind(to: SocketAddress(unixPath: path))
        try listener.listen()
        #expect(try listener.localAddress() == SocketAddress(unixPath: path))
        #expect(try listener.localAddress().path == path)

        let anonymous = try Socket.createConnection(to: SocketAddress(unixPath: path), timeout: SockKit.ioTimeout)
        defer { anonymous.close() }
        let (c1, peer1) = try listener.accept()
        defer { c1.close() }
        #expect(peer1.family == .unix)
        #expect(peer1.path == "")
        #expect(try c1.localAddress().path == path)
        #expect(try anonymous.peerAddress().path == path)

        let named = try Socket(family: .unix, type: .stream)
        defer { named.close() }
        try named.setTimeout(SockKit.ioTimeout)
        let clientPath = dir.file("client.sock")
        try named.bind(to: SocketAddress(unixPath: clientPath))
        try named.connect(to: SocketAddress(unixPath: path))
        let (c2, peer2) = try listener.accept()
        defer { c2.close() }
        #expect(peer2 == (try SocketAddress(unixPath: clientPath)))
        try named.sendAll(SockKit.bytes("over unix"))
        try c2.setTimeout(SockKit.ioTimeout)
        #expect(try SockKit.recvExactly(c2, 9) == SockKit.bytes("over unix"))
    }

    @Test("Unix abstract addresses (Linux)")
    func abstractAddress() throws {
        let name = "\0socktest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let address = try SocketAddress(unixPath: name)
        let listener = try Socket(family: .unix)
        defer { listener.close() }
        try listener.setTimeout(SockKit.ioTimeout)
        try listener.bind(to: address)
        try listener.listen()
        #expect(try listener.localAddress() == address)
        #expect(try listener.localAddress().description == "@" + String(name.dropFirst()))
        let c = try Socket.createConnection(to: address, timeout: SockKit.ioTimeout)
        defer { c.close() }
        let (s, _) = try listener.accept()
        s.close()
        #expect(try c.recv(1) == [])
    }

    @Test("binding Unix sockets to the empty path autobinds a unique abstract name")
    func unixAutobind() throws {
        let a = try Socket(family: .unix, type: .datagram)
        let b = try Socket(family: .unix, type: .datagram)
        defer { a.close(); b.close() }
        try b.setTimeout(SockKit.ioTimeout)
        try a.bind(to: SocketAddress(unixPath: ""))
        try b.bind(to: SocketAddress(unixPath: ""))
        let la = try a.localAddress(), lb = try b.localAddress()
        #expect(la.description.hasPrefix("@"))
        #expect(la.description.count > 1)
        #expect(la != lb)
        // The autobound name works as a return address.
        #expect(try a.sendTo(SockKit.bytes("hi"), lb) == 2)
        let (data, sender) = try b.recvFrom(10)
        #expect(data == SockKit.bytes("hi"))
        #expect(sender == la)
    }

    @Test("SOCK_SEQPACKET keeps message boundaries")
    func seqpacket() throws {
        let dir = try TempDir()
        let address = try SocketAddress(unixPath: dir.file("seq.sock"))
        let listener = try Socket(family: .unix, type: .seqpacket)
        defer { listener.close() }
        try listener.setTimeout(SockKit.ioTimeout)
        try listener.bind(to: address)
        try listener.listen()
        let c = try Socket.createConnection(to: address, timeout: SockKit.ioTimeout, type: .seqpacket)
        defer { c.close() }
        let (s, _) = try listener.accept()
        defer { s.close() }
        try s.setTimeout(SockKit.ioTimeout)
        #expect(s.type == .seqpacket)
        try c.sendAll(SockKit.bytes("ab"))
        try c.sendAll(SockKit.bytes("cde"))
        #expect(try s.recv(100) == SockKit.bytes("ab"))
        #expect(try s.recv(100) == SockKit.bytes("cde"))
    }

    @Test("binding a port in use throws EADDRINUSE with the address")
    func addressInUse() throws {
        let (l, address) = try SockKit.listener()
        defer { l.close() }
        let s = try Socket()
        defer { s.close() }
        let e = SockKit.expectErrno([.addressInUse]) { try s.bind(to: address) }
        #expect(e == .system(.addressInUse, operation: "bind to", address: address.description))
    }

    @Test("connectEx returns 0, or the error number instead of throwing", arguments: SockKit.ipFamilies)
    func connectEx(family: AddressFamily) throws {
        let (l, address) = try SockKit.listener(family)
        defer { l.close() }
        // Blocking: connected, then already connected.
        let good = try Socket(family: family)
        defer { good.close() }
        try good.setTimeout(nil)
        try good.setOption(.sendTimeout, SockKit.ioTimeout)
        #expect(good.connectEx(to: address) == 0)
        #expect(good.connectEx(to: address) == EISCONN)
        // Under a time-out.
        let timed = try Socket(family: family)
        defer { timed.close() }
        try timed.setTimeout(SockKit.ioTimeout)
        #expect(timed.connectEx(to: address) == 0)
        #expect(try timed.peerAddress() == address)

        let refused = try Socket(family: family)
        defer { refused.close() }
        try refused.setTimeout(SockKit.ioTimeout)
        let refusedAddress = try SockKit.loopback(family, port: SockKit.refusedPort(family))
        #expect(refused.connectEx(to: refusedAddress) == ECONNREFUSED)

        // Non-blocking: the connection is in progress (Python's connect_ex too).
        let nb = try Socket(family: family)
        defer { nb.close() }
        try nb.setTimeout(0)
        let code = nb.connectEx(to: address)
        #expect(code == EINPROGRESS || code == 0)

        let closed = try Socket(family: family)
        closed.close()
        #expect(closed.connectEx(to: address) == EBADF)
    }

    @Test("a non-blocking connect reports a refusal through SO_ERROR")
    func nonBlockingConnectError() throws {
        let s = try Socket()
        defer { s.close() }
        try s.setTimeout(0)
        let target = try SockKit.loopback(.inet, port: SockKit.refusedPort())
        let code = s.connectEx(to: target)
        if code == EINPROGRESS {
            var p = pollfd(fd: s.fileno, events: Int16(POLLOUT), revents: 0)
            #expect(poll(&p, 1, 10_000) == 1)
            #expect(try s.getOption(.error) == Int(ECONNREFUSED))
        } else {
            #expect(code == ECONNREFUSED)
        }
        // Reading SO_ERROR clears it.
        #expect(try s.getOption(.error) == 0)
    }
}

@Suite("Socket data calls")
struct SocketDataTests {
    @Test("recv, recv(into:) and send over TCP and socketpairs", arguments: SockKit.connectionKinds)
    func recvSend(kind: String) throws {
        let (a, b) = kind == "unix" ? try SockKit.pair()
            : try SockKit.tcpPair(kind == "tcp4" ? .inet : .inet6)
        defer { a.close(); b.close() }

        #expect(try a.send(SockKit.bytes("hello")) == 5)
        #expect(try SockKit.recvExactly(b, 5) == SockKit.bytes("hello"))

        try a.sendAll(SockKit.bytes("0123456789"))
        var buffer = [UInt8](repeating: 0, count: 4)
        var got: [UInt8] = []
        while got.count < 10 {
            let n = try b.recv(into: &buffer)
            #expect(n > 0 && n <= 4)
            got += buffer[0..<n]
        }
        #expect(got == SockKit.bytes("0123456789"))

        // `count` limits a receive into a larger array.
        try a.sendAll(SockKit.bytes("abcdef"))
        var big = [UInt8](repeating: 0, count: 64)
        var n = try b.recv(into: &big, count: 2)
        #expect(n == 2)
        #expect(Array(big[0..<2]) == SockKit.bytes("ab"))
        got = []
        while got.count < 4 {
            n = try big.withUnsafeMutableBytes { try b.recv(into: $0) }
            got += big[0..<n]
        }
        #expect(got == SockKit.bytes("cdef"))

        // MSG_PEEK leaves the bytes queued.
        try a.sendAll(SockKit.bytes("peek"))
        var peeked: [UInt8] = []
        #expect(eventually { peeked = (try? b.recv(16, flags: Int32(MSG_PEEK))) ?? []; return peeked.count == 4 })
        #expect(peeked == SockKit.bytes("peek"))
        #expect(try SockKit.recvExactly(b, 4) == SockKit.bytes("peek"))

        // Byte sequences other than arrays.
        try a.sendAll("utf8 view".utf8)
        try a.sendAll(SockKit.bytes("[slice]")[1..<6])
        #expect(try SockKit.recvExactly(b, 14) == SockKit.bytes("utf8 viewslice"))

        #expect(try b.recv(0) == [])
        SockKit.expectErrno([.invalidArgument]) { _ = try b.recv(-1) }

        // End of file.
        try a.shutdown(.write)
        #expect(try b.recv(10) == [])
    }

    @Test("send may be partial and returns the count")
    func partialSend() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0)
        let data = SockKit.pattern(count: 1 << 20)
        let n = try a.send(data)
        #expect(n > 0)
        #expect(n < data.count)
        // The kernel took exactly the first n bytes.
        let got = try SockKit.recvExactly(b, n)
        #expect(got == Array(data[0..<n]))
        // Nothing more is queued.
        try b.setTimeout(0)
        SockKit.expectErrno([.wouldBlock]) { _ = try b.recv(10) }
    }

    @Test("UDP: sendTo and recvFrom, with the sender's address", arguments: SockKit.ipFamilies)
    func udp(family: AddressFamily) throws {
        let server = try Socket(family: family, type: .datagram)
        let client = try Socket(family: family, type: .datagram)
        defer { server.close(); client.close() }
        try server.setTimeout(SockKit.ioTimeout)
        try client.setTimeout(SockKit.ioTimeout)
        try server.bind(to: SockKit.loopback(family))
        try client.bind(to: SockKit.loopback(family))
        let serverAddress = try server.localAddress()
        let clientAddress = try client.localAddress()

        #expect(try client.sendTo(SockKit.bytes("datagram one"), serverAddress) == 12)
        let (data, sender) = try server.recvFrom(100)
        #expect(data == SockKit.bytes("datagram one"))
        #expect(sender == clientAddress)

        // recvFrom(into:) with a raw buffer.
        #expect(try server.sendTo(SockKit.bytes("reply"), sender) == 5)
        var buffer = [UInt8](repeating: 0, count: 32)
        let (n, from) = try buffer.withUnsafeMutableBytes { try client.recvFrom(into: $0) }
        #expect(n == 5)
        #expect(Array(buffer[0..<5]) == SockKit.bytes("reply"))
        #expect(from == serverAddress)

        // recvFrom(into:count:) truncates a datagram to the buffer.
        try client.sendTo(SockKit.bytes("0123456789"), serverAddress)
        let (m, from2) = try server.recvFrom(into: &buffer, count: 4)
        #expect(m == 4)
        #expect(Array(buffer[0..<4]) == SockKit.bytes("0123"))
        #expect(from2 == clientAddress)

        // Boundaries are kept.
        try client.sendTo(SockKit.bytes("a"), serverAddress)
        try client.sendTo(SockKit.bytes("bc"), serverAddress)
        #expect(try server.recvFrom(100).0 == SockKit.bytes("a"))
        #expect(try server.recvFrom(100).0 == SockKit.bytes("bc"))

        // A connected datagram socket uses send and recv.
        try client.connect(to: serverAddress)
        #expect(try client.send(SockKit.bytes("connected")) == 9)
        #expect(try server.recvFrom(100).0 == SockKit.bytes("connected"))
        try server.sendTo(SockKit.bytes("back"), clientAddress)
        #expect(try client.recv(100) == SockKit.bytes("back"))
        #expect(try client.peerAddress() == serverAddress)
    }

    @Test("Unix datagrams between bound paths, and from an unbound sender")
    func unixDatagram() throws {
        let dir = try TempDir()
        let serverAddress = try SocketAddress(unixPath: dir.file("server.dgram"))
        let clientAddress = try SocketAddress(unixPath: dir.file("client.dgram"))
        let server = try Socket(family: .unix, type: .datagram)
        let client = try Socket(family: .unix, type: .datagram)
        let unbound = try Socket(family: .unix, type: .datagram)
        defer { server.close(); client.close(); unbound.close() }
        for s in [server, client, unbound] { try s.setTimeout(SockKit.ioTimeout) }
        try server.bind(to: serverAddress)
        try client.bind(to: clientAddress)

        try client.sendTo(SockKit.bytes("from client"), serverAddress)
        let (data, sender) = try server.recvFrom(100)
        #expect(data == SockKit.bytes("from client"))
        #expect(sender == clientAddress)
        #expect(sender.path == dir.path + "/client.dgram")
        try server.sendTo(SockKit.bytes("answer"), sender)
        let (answer, from) = try client.recvFrom(100)
        #expect(answer == SockKit.bytes("answer"))
        #expect(from == serverAddress)

        try unbound.sendTo(SockKit.bytes("anonymous"), serverAddress)
        let (data2, sender2) = try server.recvFrom(100)
        #expect(data2 == SockKit.bytes("anonymous"))
        #expect(sender2.family == .unix)
        #expect(sender2.path == "")

        // Sending to a path nobody bound.
        SockKit.expectErrno([.noSuchFile, .connectionRefused]) {
            try client.sendTo(SockKit.bytes("x"), SocketAddress(unixPath: dir.file("nobody")))
        }
    }
}

@Suite("Socket ending")
struct SocketEndingTests {
    @Test("shutdown(.write): the peer reads EOF, the other direction still works",
          arguments: ["tcp", "unix"])
    func shutdownWrite(kind: String) throws {
        let (a, b) = kind == "tcp" ? try SockKit.tcpPair() : try SockKit.pair()
        defer { a.close(); b.close() }
        try a.sendAll(SockKit.bytes("last"))
        try a.shutdown(.write)
        #expect(try SockKit.recvExactly(b, 4) == SockKit.bytes("last"))
        #expect(try b.recv(10) == [])
        try b.sendAll(SockKit.bytes("still"))
        #expect(try SockKit.recvExactly(a, 5) == SockKit.bytes("still"))
        SockKit.expectErrno([.brokenPipe]) { try a.sendAll(SockKit.bytes("no")) }
    }

    @Test("shutdown(.read) wakes a thread blocked in recv")
    func shutdownReadWakes() throws {
        let (a, b) = try SockKit.tcpPair()
        defer { a.close(); b.close() }
        let reader = try TestThread(unblocking: SockKit.ordinarySignals) { try b.recv(10) }
        // Whether the thread is already blocked or not, it must see end of file.
        _ = SockKit.waitUntilBlocked(tid: reader.tid, in: SockKit.sysPoll.union(SockKit.sysRecv), seconds: 2)
        try b.shutdown(.read)
        #expect(try reader.join() == [])
    }

    @Test("shutdown(.both) ends both directions")
    func shutdownBoth() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.shutdown(.both)
        #expect(try b.recv(10) == [])
        #expect(try a.recv(10) == [])
        SockKit.expectErrno([.brokenPipe]) { try a.sendAll(SockKit.bytes("x")) }
    }

    @Test("shutdown of an unconnected TCP socket throws ENOTCONN")
    func shutdownUnconnected() throws {
        let s = try Socket()
        defer { s.close() }
        let e = SockKit.expectErrno([.notConnected]) { try s.shutdown(.both) }
        #expect(e == .system(.notConnected, operation: "shutdown", address: nil))
    }

    @Test("close is idempotent; every call afterwards throws SocketError.closed")
    func closeIdempotent() throws {
        let (a, b) = try SockKit.pair()
        defer { b.close() }
        let fd = a.fileno
        #expect(fd >= 0)
        a.close()
        a.close()
        #expect(a.fileno == -1)
        #expect(a.isClosed)
        #expect(try b.recv(10) == [])
        let address = try SockKit.loopback(.inet, port: 9)
        let calls: [(String, () throws -> Void)] = [
            ("recv", { _ = try a.recv(10) }),
            ("send", { _ = try a.send(SockKit.bytes("x")) }),
            ("sendAll", { try a.sendAll(SockKit.bytes("x")) }),
            ("recvFrom", { _ = try a.recvFrom(10) }),
            ("sendTo", { try a.sendTo(SockKit.bytes("x"), address) }),
            ("accept", { _ = try a.accept() }),
            ("bind", { try a.bind(to: address) }),
            ("listen", { try a.listen() }),
            ("connect", { try a.connect(to: address) }),
            ("localAddress", { _ = try a.localAddress() }),
            ("peerAddress", { _ = try a.peerAddress() }),
            ("shutdown", { try a.shutdown(.both) }),
            ("setTimeout", { try a.setTimeout(1) }),
            ("setBlocking", { try a.setBlocking(false) }),
            ("getOption", { _ = try a.getOption(.reuseAddress) }),
            ("setOption", { try a.setOption(.reuseAddress, true) }),
        ]
        for (name, call) in calls {
            do {
                try call()
                Issue.record("\(name) on a closed socket did not throw")
            } catch let e as SocketError {
                guard e.kind == .closed else { Issue.record("\(name): \(e)"); continue }
                #expect(e.errno == .badFileDescriptor, "\(name)")
                #expect(Errno.badFileDescriptor ~= e, "\(name)")
            }
        }
        do {
            _ = try a.recv(1)
        } catch Errno.badFileDescriptor {
            // A catch pattern on the error number matches.
        }
        #expect(a.description.contains("fd=-1"))
    }

    @Test("detach gives the descriptor away: it stays open, the socket acts closed")
    func detach() throws {
        let (a, b) = try SockKit.pair()
        defer { b.close() }
        let fd = a.detach()
        #expect(fd >= 0)
        #expect(a.fileno == -1)
        #expect(a.isClosed)
        #expect(a.detach() == -1)
        SockKit.expectErrno([.badFileDescriptor]) { _ = try a.recv(1) }
        a.close()  // does not close the detached descriptor
        let again = try Socket(fileDescriptor: fd)
        try again.sendAll(SockKit.bytes("alive"))
        #expect(try SockKit.recvExactly(b, 5) == SockKit.bytes("alive"))
        again.close()
        #expect(try b.recv(10) == [])
    }

    @Test("a dropped socket closes its descriptor: the peer reads EOF", arguments: ["unix", "tcp"])
    func deinitCloses(kind: String) throws {
        var a: Socket?
        let b: Socket
        if kind == "unix" { (a, b) = try SockKit.pair() } else { (a, b) = try SockKit.tcpPair() }
        defer { b.close() }
        try a!.sendAll(SockKit.bytes("bye"))
        a = nil
        #expect(try SockKit.recvExactly(b, 3) == SockKit.bytes("bye"))
        #expect(try b.recv(10) == [])
    }

    @Test("dropped accepted, adopted and duplicated sockets close their descriptors")
    func deinitClosesOthers() throws {
        // Accepted.
        let (l, address) = try SockKit.listener()
        defer { l.close() }
        let c = try Socket.createConnection(to: address, timeout: SockKit.ioTimeout)
        defer { c.close() }
        do { _ = try l.accept() }
        #expect(try c.recv(10) == [])

        // Adopted and duplicated.
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let peer = try Socket(fileDescriptor: fds[1])
        defer { peer.close() }
        try peer.setTimeout(SockKit.ioTimeout)
        var adopted: Socket? = try Socket(fileDescriptor: fds[0])
        var copy: Socket? = try Socket.fromfd(fds[0])
        adopted = nil
        // The copy still holds the connection open.
        try copy!.sendAll(SockKit.bytes("copy"))
        #expect(try SockKit.recvExactly(peer, 4) == SockKit.bytes("copy"))
        copy = nil
        #expect(try peer.recv(10) == [])
        _ = adopted
        _ = copy
    }
}

@Suite("Socket module functions")
struct SocketModuleFunctionTests {
    @Test("Socket.pair of each type", arguments: [SocketType.stream, .datagram, .seqpacket])
    func pair(type: SocketType) throws {
        let (a, b) = try Socket.pair(type: type)
        defer { a.close(); b.close() }
        try a.setTimeout(SockKit.ioTimeout)
        try b.setTimeout(SockKit.ioTimeout)
        #expect(a.family == .unix && b.family == .unix)
        #expect(a.type == type && b.type == type)
        #expect(try a.getOption(.type) == type)
        try a.sendAll(SockKit.bytes("one"))
        try a.sendAll(SockKit.bytes("two"))
        if type == .stream {
            #expect(try SockKit.recvExactly(b, 6) == SockKit.bytes("onetwo"))
        } else {
            #expect(try b.recv(100) == SockKit.bytes("one"))
            #expect(try b.recv(100) == SockKit.bytes("two"))
        }
        try b.sendAll(SockKit.bytes("back"))
        #expect(try SockKit.recvExactly(a, 4) == SockKit.bytes("back"))
    }

    @Test("Socket.pair of a family without socketpair support throws")
    func pairUnsupported() {
        SockKit.expectErrno([.operationNotSupported, .addressFamilyNotSupported]) { _ = try Socket.pair(family: .inet) }
    }

    @Test("createConnection connects, sets the time-out and binds the source address")
    func createConnection() throws {
        let (l, address) = try SockKit.listener()
        defer { l.close() }
        let c = try Socket.createConnection(host: "127.0.0.1", port: address.port!, timeout: 5)
        defer { c.close() }
        #expect(c.timeout == 5)
        #expect(c.family == .inet)
        #expect(try c.peerAddress() == address)
        let (s1, _) = try l.accept()
        s1.close()

        let c2 = try Socket.createConnection(host: "localhost", port: address.port!, timeout: SockKit.ioTimeout,
                                             sourceAddress: SocketAddress(ipv4: "127.0.0.1", port: 0))
        defer { c2.close() }
        let (s2, peer) = try l.accept()
        defer { s2.close() }
        #expect(peer == (try c2.localAddress()))
        #expect(peer.host == "127.0.0.1")

        // A source address that is in use makes it fail with the bind error.
        SockKit.expectErrno([.addressInUse]) {
            _ = try Socket.createConnection(host: "127.0.0.1", port: address.port!, timeout: SockKit.ioTimeout,
                                            sourceAddress: c2.localAddress())
        }
    }

    @Test("createConnection to a refused port throws the connect error",
          arguments: SockKit.ipFamilies)
    func createConnectionRefused(family: AddressFamily) throws {
        let port = try SockKit.refusedPort(family)
        let host = family == .inet ? "127.0.0.1" : "::1"
        let e = SockKit.expectErrno([.connectionRefused]) {
            _ = try Socket.createConnection(host: host, port: port, timeout: SockKit.ioTimeout)
        }
        let shown = family == .inet ? "127.0.0.1:\(port)" : "[::1]:\(port)"
        #expect(e == .system(.connectionRefused, operation: "connect to", address: shown))
    }

    /// A name that resolves to both ::1 and 127.0.0.1 locally, if the hosts file has one.
    static let dualStackName: String? = {
        guard ipv6Loopback else { return nil }
        for name in ["localhost", "ip6-localhost", "localhost6"] {
            guard let infos = try? Resolver.addressInfo(host: name, port: "1", type: .stream) else { continue }
            let hosts = Set(infos.compactMap { $0.address.host })
            if hosts.contains("::1") && hosts.contains("127.0.0.1") { return name }
        }
        return nil
    }()

    @Test("createConnection tries each address in turn and reports the last error",
          .enabled(if: dualStackName != nil,
                   "no local name resolves to both ::1 and 127.0.0.1 (the hosts file has no such entry)"))
    func createConnectionTriesEach() throws {
        let name = try #require(Self.dualStackName)
        let infos = try Resolver.addressInfo(host: name, port: "1", type: .stream)
        for family in [AddressFamily.inet, .inet6] {
            // Listen on one family only, on a port that is free on the other.
            let (l, address) = try SockKit.listener(family)
            defer { l.close() }
            let c = try Socket.createConnection(host: name, port: address.port!, timeout: SockKit.ioTimeout)
            defer { c.close() }
            #expect(c.family == family)
            #expect(try c.peerAddress() == address)
        }
        // Nobody listens: the error is the last address's.
        let port = try SockKit.refusedPort(infos.last!.family)
        let e = SockKit.expectErrno([.connectionRefused]) {
            _ = try Socket.createConnection(host: name, port: port, timeout: SockKit.ioTimeout)
        }
        #expect(e == .system(.connectionRefused, operation: "connect to", address: infos.last!.address.withPort(port).description))
    }

    @Test("createConnection(to:) for a Unix path, and for a path nobody listens on")
    func createConnectionUnix() throws {
        let dir = try TempDir()
        let address = try SocketAddress(unixPath: dir.file("s.sock"))
        let l = try Socket(family: .unix)
        defer { l.close() }
        try l.setTimeout(SockKit.ioTimeout)
        try l.bind(to: address)
        try l.listen()
        let c = try Socket.createConnection(to: address, timeout: SockKit.ioTimeout)
        defer { c.close() }
        #expect(c.family == .unix)
        #expect(c.timeout == SockKit.ioTimeout)
        #expect(try c.peerAddress() == address)
        let e = SockKit.expectErrno([.noSuchFile]) {
            _ = try Socket.createConnection(to: SocketAddress(unixPath: dir.file("missing.sock")), timeout: 1)
        }
        #expect(e == .system(.noSuchFile, operation: "connect to", address: dir.file("missing.sock")))
    }

    @Test("Socket.hasIPv6 agrees with socket(AF_INET6)")
    func hasIPv6() {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        if fd >= 0 { close(fd) }
        #expect(Socket.hasIPv6 == (fd >= 0))
    }
}

@Suite("Socket errors")
struct SocketErrorTests {
    @Test("a refused connect: message, errno and catch patterns")
    func refusedMessage() throws {
        let port = try SockKit.refusedPort()
        let target = try SocketAddress(ipv4: "127.0.0.1", port: port)
        // (Each attempt gets a fresh socket: after a failed connect, Linux
        // reports ECONNABORTED for the next one on the same socket.)
        var caught = false
        do {
            let s = try Socket()
            defer { s.close() }
            try s.setTimeout(SockKit.ioTimeout)
            try s.connect(to: target)
        } catch Errno.connectionRefused {
            caught = true
        }
        #expect(caught)
        do {
            let s = try Socket()
            defer { s.close() }
            try s.setTimeout(SockKit.ioTimeout)
            try s.connect(to: target)
            Issue.record("connect did not throw")
        } catch let e as SocketError {
            #expect(e == .system(.connectionRefused, operation: "connect to", address: "127.0.0.1:\(port)"))
            #expect(e.errno == .connectionRefused)
            #expect(!e.isPeerGone)
            #expect(!(Errno.connectionReset ~= e))
        }
        // The same for a blocking socket.
        let b = try Socket()
        defer { b.close() }
        try b.setTimeout(nil)
        SockKit.expectErrno([.connectionRefused]) { try b.connect(to: target) }
    }

    @Test("Errno names and messages")
    func errnoText() {
        #expect(Errno.connectionRefused.name == "ECONNREFUSED")
        #expect(Errno.connectionRefused.message == "Connection refused")
        #expect(Errno.connectionRefused.description == "Connection refused (ECONNREFUSED)")
        #expect(Errno.brokenPipe.description == "Broken pipe (EPIPE)")
        #expect(Errno(ECONNRESET) == .connectionReset)
        #expect(Errno(9999).name == "E9999")
        #expect(Errno.wouldBlock == Errno(EAGAIN))
        #expect(Errno.connectionReset ~= Errno.connectionReset)
        #expect(!(Errno.connectionReset ~= Errno.brokenPipe))
        #expect(!(Errno.connectionReset ~= StreamError.lineTooLong(maxLength: 1)))
    }

    @Test("SocketError cases: errno, description, isPeerGone")
    func socketErrorCases() {
        let timeout = SocketError.timeout(operation: "recv", address: nil)
        #expect(timeout.description == "recv: timed out")
        #expect(timeout.errno == .timedOut)
        #expect(timeout.isPeerGone)
        #expect(SocketError.timeout(operation: "connect to", address: "127.0.0.1:1").description
                == "connect to 127.0.0.1:1: timed out")
        #expect(SocketError.closed(operation: "recv").errno == .badFileDescriptor)
        #expect(SocketError.invalidArgument("x").errno == .invalidArgument)
        #expect(SocketError.invalidArgument("x").description == "invalid argument: x")
        #expect(SocketError.addressResolution(code: EAI_NONAME, message: "m", host: "h").errno == nil)
        #expect(SocketError.addressResolution(code: EAI_NONAME, message: "m", host: "h").description
                == "resolve h: m (EAI_NONAME)")
        #expect(SocketError.hostNotFound(host: "h", message: "m").description == "look up h: m")
        for e in [Errno.connectionReset, .brokenPipe, .connectionAborted, .notConnected, .timedOut] {
            #expect(SocketError.system(e, operation: "x", address: nil).isPeerGone, "\(e)")
        }
        #expect(!SocketError.system(.connectionRefused, operation: "x", address: nil).isPeerGone)
    }
}
