#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

/// How many of this process's descriptors refer to the socket with `inode`.
private func descriptors(of inode: UInt64) -> Int {
    openDescriptorLinks().values.filter { $0 == "socket:[\(inode)]" }.count
}

private func isCloseOnExec(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) & FD_CLOEXEC != 0 }

@Suite("systemd socket activation and adopted sockets")
struct ActivationTests {
    /// Puts `sockets` at consecutive descriptors from `first` (dup2, not close-on-exec, as systemd passes them).
    private func place(_ sockets: [Socket], from first: Int32) {
        for (i, s) in sockets.enumerated() { _ = dup2(s.fileno, first + Int32(i)) }
    }

    @Test func listenFDsReadsTheEnvironment() throws {
        let (l1, _) = try SockKit.listener()
        let (l2, _) = try SockKit.listener(.inet)
        defer { l1.close(); l2.close() }
        let first: Int32 = 700
        place([l1, l2], from: first)
        #expect(!isCloseOnExec(first))
        let env = ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"]
        let passed = try Socket.listenFDs(environment: env, firstFD: first)
        #expect(passed.map(\.name) == ["web", "admin"])
        #expect(passed.map(\.socket.fileno) == [first, first + 1])
        #expect(passed.allSatisfy { $0.socket.family == .inet && $0.socket.type == .stream })
        #expect(isCloseOnExec(first) && isCloseOnExec(first + 1))
        #expect(try passed[0].socket.localAddress() == (try l1.localAddress()))
        for p in passed { p.socket.close() }
    }

    @Test func listenFDsIgnoresOtherProcessesAndRefusesNonsense() throws {
        let (l, _) = try SockKit.listener()
        defer { l.close() }
        let first: Int32 = 710
        place([l], from: first)
        defer { Glibc.close(first) }
        #expect(try Socket.listenFDs(environment: [:], firstFD: first).isEmpty)
        #expect(try Socket.listenFDs(environment: ["LISTEN_PID": "\(getpid() + 1)", "LISTEN_FDS": "1"], firstFD: first).isEmpty)
        #expect(throws: SocketError.self) { try Socket.listenFDs(environment: ["LISTEN_PID": "x", "LISTEN_FDS": "1"], firstFD: first) }
        #expect(throws: SocketError.self) { try Socket.listenFDs(environment: ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "-1"], firstFD: first) }
        #expect(throws: SocketError.self) {
            try Socket.listenFDs(environment: ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"], firstFD: first)
        }
        // A descriptor that is not a socket.
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        defer { Glibc.close(pipeFDs[0]); Glibc.close(pipeFDs[1]) }
        #expect(throws: SocketError.self) {
            try Socket.listenFDs(environment: ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "1"], firstFD: pipeFDs[0])
        }
    }

    @Test func listenFDsUnsetsTheProcessEnvironment() throws {
        setenv("LISTEN_PID", "\(getpid() + 1)", 1)  // not ours: nothing taken, but still unset
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_FDNAMES", "x", 1)
        #expect(try Socket.listenFDs().isEmpty)
        #expect(getenv("LISTEN_PID") == nil && getenv("LISTEN_FDS") == nil && getenv("LISTEN_FDNAMES") == nil)
    }

    @Test func serversAdoptBoundSockets() throws {
        // TCP, already listening: served as it is.
        let (l, address) = try SockKit.listener()
        let tcp = try ThreadingTCPServer(socket: l, EchoStreamHandler.self)
        #expect(tcp.serverAddress == address)
        try tcp.serveInBackground(pollInterval: 0.05)
        let c = try client(address)
        #expect(try roundTrip(c, c.makeReader(), "tcp\n") == "tcp\n")
        c.close()
        tcp.shutdown(); tcp.serverClose()
        // UDP.
        let u = try Socket(family: .inet, type: .datagram)
        try u.bind(to: SocketAddress(ipv4: "127.0.0.1", port: 0))
        let udp = try UDPServer(socket: u, EchoDatagramHandler.self)
        try udp.serveInBackground(pollInterval: 0.05)
        let uc = try Socket.createConnection(to: udp.serverAddress, timeout: 10, type: .datagram)
        try uc.sendAll(Array("udp".utf8))
        #expect(try uc.recv(100) == Array("udp".utf8))
        uc.close()
        udp.shutdown(); udp.serverClose()
        // Unix stream, bound but not listening yet: made to listen; its file stays.
        let dir = try TempDir()
        let path = dir.file("adopted.sock")
        let us = try Socket(family: .unix, type: .stream)
        try us.bind(to: SocketAddress(unixPath: path))
        let unix = try ThreadingUnixStreamServer(socket: us, EchoStreamHandler.self)
        try unix.serveInBackground(pollInterval: 0.05)
        let ucl = try client(SocketAddress(unixPath: path))
        #expect(try roundTrip(ucl, ucl.makeReader(), "unix\n") == "unix\n")
        ucl.close()
        unix.shutdown(); unix.serverClose()
        #expect(access(path, F_OK) == 0)  // never unlinked: its creator owns it
        // The wrong kind of socket is refused.
        #expect(throws: SocketError.self) { try UDPServer(socket: try Socket(family: .inet, type: .stream), EchoDatagramHandler.self) }
        #expect(throws: SocketError.self) { try UnixStreamServer(socket: try Socket(family: .inet, type: .stream), EchoStreamHandler.self) }
        #expect(throws: SocketError.self) { try TCPServer(socket: try Socket(family: .inet, type: .stream), EchoDatagramHandler.self) }
    }

    @Test(.enabled(if: haveProgram("systemd-socket-activate")))
    func servesUnderSystemdSocketActivate() throws {
        let dir = try TempDir()
        var lastError: (any Error)?
        for _ in 0..<3 {  // the free port may be taken between our check and its bind: try another
            let port = try freePort()
            let address = try SocketAddress(ipv4: "127.0.0.1", port: port)
            let child = try TestProcess([programPath("systemd-socket-activate")!, "-l", "127.0.0.1:\(port)", binDirectory + "/activation-echo"],
                                         stdoutPath: dir.file("activation.log"), ownProcessGroup: true)
            defer { child.kill() }
            do {
                let c = try connectWhenUp(address)
                defer { c.close() }
                #expect(try roundTrip(c, c.makeReader(), "through the passed socket\n") == "through the passed socket\n",
                        "\(child.stdout)")
                let second = try client(address)
                #expect(try roundTrip(second, second.makeReader(), "again\n") == "again\n")
                second.close()
                #expect(child.stdout.contains("serving 127.0.0.1:\(port)"))
                return
            } catch {
                lastError = error
            }
        }
        Issue.record("no run came up: \(lastError.map { "\($0)" } ?? "")")
    }
}

@Suite("Passing descriptors and handing listeners over")
struct HandoffTests {
    @Test func sendAndReceiveDescriptors() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        var p: [Int32] = [-1, -1]
        #expect(pipe(&p) == 0)
        defer { Glibc.close(p[0]); Glibc.close(p[1]) }
        let (l, address) = try SockKit.listener()
        defer { l.close() }
        try a.sendFDs(Array("two".utf8), fds: [p[0], l.fileno])
        let (bytes, fds) = try b.recvFDs(maxBytes: 16, maxFDs: 4)
        #expect(bytes == Array("two".utf8) && fds.count == 2)
        #expect(fds.allSatisfy(isCloseOnExec))
        // The received pipe end reads what is written to ours.
        _ = write(p[1], "x", 1)
        var byte: UInt8 = 0
        #expect(read(fds[0], &byte, 1) == 1 && byte == UInt8(ascii: "x"))
        let taken = try Socket(fileDescriptor: fds[1])
        #expect(try taken.localAddress() == address)
        Glibc.close(fds[0])
        taken.close()
    }

    @Test func truncationIsAnErrorAndLeaksNothing() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        let (l, _) = try SockKit.listener()
        defer { l.close() }
        try a.sendFDs([1], fds: [l.fileno, l.fileno, l.fileno])
        do {
            _ = try b.recvFDs(maxBytes: 8, maxFDs: 1)
            Issue.record("no truncation reported")
        } catch let e as SocketError {
            #expect(e.errno == Errno(EMSGSIZE))
        }
        #expect(descriptors(of: socketInode(l)) == 1)  // the one that arrived was closed
        #expect(throws: SocketError.self) { try a.sendFDs([], fds: [l.fileno]) }
    }

    @Test func aServerTakesTheListenerOfAnother() throws {
        let dir = try TempDir()
        let handoff = dir.file("handoff.sock")
        let unixPath = dir.file("served.sock")
        let old = try ThreadingUnixStreamServer(unixPath, EchoStreamHandler.self)
        try old.serveInBackground(pollInterval: 0.05)
        let taking = try TestThread<[Socket]>(unblocking: SockKit.ordinarySignals) { try ListenerHandoff.take(from: handoff, timeout: 10) }
        try ListenerHandoff.offer(old, at: handoff, timeout: 10)
        let sockets = try taking.join()
        #expect(sockets.count == 1)
        let new = try ThreadingUnixStreamServer(socket: sockets[0], EchoStreamHandler.self)
        try new.serveInBackground(pollInterval: 0.05)
        old.shutdown(); old.serverClose()
        #expect(access(unixPath, F_OK) == 0)  // the old server left the file to the new one
        let c = try client(SocketAddress(unixPath: unixPath))
        #expect(try roundTrip(c, c.makeReader(), "still here\n") == "still here\n")
        c.close()
        new.shutdown(); new.serverClose()
        #expect(access(handoff, F_OK) != 0)  // the handoff socket is gone
        unlink(unixPath)
    }

    @Test func aDatagramServerHandsOverItsSocket() throws {
        let dir = try TempDir()
        let handoff = dir.file("udp-handoff.sock")
        let old = try UDPServer(("127.0.0.1", 0), EchoDatagramHandler.self)
        try old.serveInBackground(pollInterval: 0.05)
        let taking = try TestThread<[Socket]>(unblocking: SockKit.ordinarySignals) { try ListenerHandoff.take(from: handoff, timeout: 10) }
        try ListenerHandoff.offer(old, at: handoff, timeout: 10)
        let new = try UDPServer(socket: try taking.join()[0], EchoDatagramHandler.self)
        #expect(new.serverAddress == old.serverAddress)
        try new.serveInBackground(pollInterval: 0.05)
        // Both serve the one socket for a while: each datagram is answered once, by one of them.
        let c = try Socket.createConnection(to: new.serverAddress, timeout: 10, type: .datagram)
        defer { c.close() }
        for i in 0..<20 {
            try c.sendAll(Array("d\(i)".utf8))
            #expect(try c.recv(100) == Array("d\(i)".utf8))
        }
        old.shutdown(); old.serverClose()
        try c.sendAll(Array("after".utf8))
        #expect(try c.recv(100) == Array("after".utf8))
        new.shutdown(); new.serverClose()
    }

    @Test func takeTimesOutWithoutAnOfferer() throws {
        let dir = try TempDir()
        #expect(throws: SocketError.self) { try ListenerHandoff.take(from: dir.file("nobody.sock"), timeout: 0.2) }
        #expect(throws: SocketError.self) { try ListenerHandoff.offer([try Socket()], at: dir.file("x.sock"), timeout: 0.2) }
    }
}
