#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

/// The twelve server classes of Python's test_socketserver, each echoing
/// over its own kind of socket.
enum ServerKind: String, CaseIterable, Sendable {
    case tcp, threadingTCP, forkingTCP
    case unixStream, threadingUnixStream, forkingUnixStream
    case udp, threadingUDP, forkingUDP
    case unixDatagram, threadingUnixDatagram, forkingUnixDatagram

    var isDatagram: Bool { [.udp, .threadingUDP, .forkingUDP, .unixDatagram, .threadingUnixDatagram, .forkingUnixDatagram].contains(self) }
    var isUnix: Bool { rawValue.lowercased().contains("unix") }

    func make(_ dir: TempDir) throws -> TCPServer {
        let ip: (String, Int) = ("127.0.0.1", 0)
        let path = dir.file("server.sock")
        switch self {
        case .tcp: return try TCPServer(ip, EchoStreamHandler.self)
        case .threadingTCP: return try ThreadingTCPServer(ip, EchoStreamHandler.self)
        case .forkingTCP: return try ForkingTCPServer(ip, EchoStreamHandler.self)
        case .unixStream: return try UnixStreamServer(path, EchoStreamHandler.self)
        case .threadingUnixStream: return try ThreadingUnixStreamServer(path, EchoStreamHandler.self)
        case .forkingUnixStream: return try ForkingUnixStreamServer(path, EchoStreamHandler.self)
        case .udp: return try UDPServer(ip, EchoDatagramHandler.self)
        case .threadingUDP: return try ThreadingUDPServer(ip, EchoDatagramHandler.self)
        case .forkingUDP: return try ForkingUDPServer(ip, EchoDatagramHandler.self)
        case .unixDatagram: return try UnixDatagramServer(path, EchoDatagramHandler.self)
        case .threadingUnixDatagram: return try ThreadingUnixDatagramServer(path, EchoDatagramHandler.self)
        case .forkingUnixDatagram: return try ForkingUnixDatagramServer(path, EchoDatagramHandler.self)
        }
    }
}

@Suite("Servers echo over their own socket type")
struct ServerClassTests {
    @Test(arguments: ServerKind.allCases.filter { !underThreadSanitizer || !$0.rawValue.hasPrefix("forking") })
    func echoes(_ kind: ServerKind) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let server = try kind.make(dir)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        #expect(server.control.isServing)
        for i in 0..<3 {
            let message = Array("line \(i) of \(kind)\n".utf8)
            if kind.isDatagram {
                let c = try Socket(family: server.addressFamily, type: .datagram)
                defer { c.close() }
                try c.setTimeout(10)
                if kind.isUnix { try c.bind(to: SocketAddress(unixPath: dir.file("client\(i).sock"))) }
                try c.sendTo(message, server.serverAddress)
                let (reply, from) = try c.recvFrom(65536)
                #expect(reply == message)
                #expect(from == server.serverAddress)
            } else {
                let c = try client(server.serverAddress)
                defer { c.close() }
                try c.sendAll(message)
                // Half-close: a forked child holds a copy of every descriptor
                // this process had, our end included, so only a shutdown (not
                // a close) reaches its handler as end of file.
                try c.shutdown(.write)
                #expect(try c.makeReader().readLine() == message)
            }
        }
        server.shutdown()
        #expect(!server.control.isServing)
        server.serverClose()
        #expect(server.socket.fileno == -1)
        if kind.isUnix { #expect(access(dir.file("server.sock"), F_OK) != 0) }
    }

    @Test func ipv6ServerNeedsNoSubclass() throws {
        try #require(ipv6Loopback, "::1 is not usable here")
        let server = try ThreadingTCPServer(("::1", 0), EchoStreamHandler.self)
        try server.serveInBackground()
        defer { server.shutdown(); server.serverClose() }
        #expect(server.addressFamily == .inet6)
        #expect(server.serverAddress.description.hasPrefix("[::1]:"))
        let c = try client(server.serverAddress)
        #expect(try roundTrip(c, c.makeReader(), "six\n") == "six\n")
    }

    @Test func oneLineMixInCombinations() throws {
        final class ThreadedUDP: UDPServer, ThreadingMixIn {}
        final class ForkedUnix: UnixStreamServer, ForkingMixIn {}
        #expect(try ThreadedUDP(("127.0.0.1", 0), EchoDatagramHandler.self).model == .threads)
        let dir = try TempDir()
        defer { dir.cleanup() }
        let forked = try ForkedUnix(dir.file("s"), EchoStreamHandler.self)
        #expect(forked.model == .processes)
        #expect(try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self).model == .sync)
        forked.serverClose()
    }

    @Test func handlerOfTheWrongKindIsRefused() {
        #expect(throws: SocketError.self) { try UDPServer(("127.0.0.1", 0), EchoStreamHandler.self) }
        #expect(throws: SocketError.self) { try TCPServer(("127.0.0.1", 0), EchoDatagramHandler.self) }
    }

    @Test func serverAddressIsTheRealOneAfterBinding() throws {
        let server = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        defer { server.serverClose() }
        #expect(server.serverAddress.port != 0)
        #expect(server.serverAddress == (try server.socket.localAddress()))
        #expect(server.fileno == server.socket.fileno)
    }

    @Test func bindAndActivateFalseLetsTheCallerBindLater() throws {
        let server = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self, bindAndActivate: false)
        defer { server.serverClose() }
        #expect(server.serverAddress.port == 0)
        try server.socket.setOption(.keepAlive, true)
        try server.serverBind()
        try server.serverActivate()
        #expect(server.serverAddress.port != 0)
        #expect(try server.socket.getOption(.acceptConnections))
        #expect(try server.socket.getOption(.reuseAddress))
    }
}

@Suite("Lifecycle: shutdown, close, scoped form")
struct LifecycleTests {
    final class CountingServer: ThreadingTCPServer {
        let turns = Atomic<Int>(0)
        override func serviceActions() {
            super.serviceActions()
            turns.add(1, ordering: .relaxed)
        }
    }

    @Test func shutdownDoesNotWaitOutThePollInterval() throws {
        let server = try CountingServer(("127.0.0.1", 0), EchoStreamHandler.self)
        defer { server.serverClose() }
        try server.serveInBackground(pollInterval: 3600)
        server.shutdown()
        // The loop ended on the wake-up, not on a poll time-out: no turn of
        // the loop ran (a time-out would have run serviceActions once).
        #expect(!server.control.isServing)
        #expect(server.turns.load(ordering: .relaxed) == 0)
    }

    @Test func shutdownOfManyServers() throws {
        let servers = try (0..<4).map { _ in try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self) }
        for s in servers { try s.serveInBackground(pollInterval: 0.05) }
        for s in servers { s.shutdown() }
        for s in servers {
            #expect(!s.control.isServing)
            s.serverClose()
        }
    }

    @Test func shutdownWhenNotServingDoesNotHangAndIsRemembered() throws {
        let server = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        defer { server.serverClose() }
        server.shutdown()  // returns at once
        try server.serveForever(pollInterval: 3600)  // returns at once: the request was kept
        #expect(!server.control.isServing)
    }

    final class ShutdownHandler: StreamRequestHandler {
        override func handle() throws {
            server.shutdown()  // from the serving thread of a sync server
            try wfile.write("bye\n")
        }
    }

    @Test func shutdownFromAHandlerOfASyncServer() throws {
        let server = try TCPServer(("127.0.0.1", 0), ShutdownHandler.self)
        defer { server.serverClose() }
        let control = try server.serveInBackground(pollInterval: 3600)
        let c = try client(server.serverAddress)
        #expect(try c.makeReader().readLine() == Array("bye\n".utf8))
        #expect(eventually { !control.isServing })
    }

    @Test func closeImmediatelyAndTwice() throws {
        for kind in ServerKind.allCases {
            let dir = try TempDir()
            let server = try kind.make(dir)
            server.serverClose()
            server.serverClose()
            #expect(server.socket.fileno == -1)
            dir.cleanup()
        }
    }

    @Test func serveAfterCloseThrows() throws {
        let server = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.serverClose()
        let e = #expect(throws: ServerError.self) { try server.serveForever() }
        #expect(e?.kind == .closed)
    }

    @Test func failedBindLeaksNoDescriptor() throws {
        let taken = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        defer { taken.serverClose() }
        let before = openSocketInodes().count
        for _ in 0..<200 {
            #expect(throws: SocketError.self) { try TCPServer(taken.serverAddress, EchoStreamHandler.self) }
        }
        // Other tests run alongside: a leak would add 200 sockets.
        #expect(openSocketInodes().count - before < 100)
        do {
            _ = try TCPServer(taken.serverAddress, EchoStreamHandler.self)
        } catch {
            #expect("\(error)" == "bind to \(taken.serverAddress): Address already in use (EADDRINUSE)")
            #expect(Errno.addressInUse ~= error)
        }
    }

    @Test func scopedFormClosesOnEveryWayOut() throws {
        let a = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        let fd = a.closing { $0.fileno }
        #expect(fd >= 0)
        #expect(a.socket.fileno == -1)

        struct Boom: Error {}
        let b = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        #expect(throws: Boom.self) { try b.closing { _ in throw Boom() } }
        #expect(b.socket.fileno == -1)
    }

    @Test func droppedServerClosesItsSocket() throws {
        var inode: UInt64 = 0
        do {
            let server = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
            inode = socketInode(server.socket)
            #expect(openSocketInodes().contains(inode))
        }
        #expect(!openSocketInodes().contains(inode))
    }

    @Test func noRequestIsAcceptedAfterShutdown() throws {
        final class Counting: StreamRequestHandler {
            override func handle() throws { try wfile.write("served\n") }
        }
        let server = try TCPServer(("127.0.0.1", 0), Counting.self)
        try server.serveInBackground(pollInterval: 0.05)
        server.shutdown()
        let c = try client(server.serverAddress)  // sits in the backlog
        server.serverClose()
        // Never served: the connection is dropped when the listener closes.
        let bytes: [UInt8]
        do { bytes = try c.recv(100) } catch Errno.connectionReset { bytes = [] }
        #expect(bytes.isEmpty)
    }
}
