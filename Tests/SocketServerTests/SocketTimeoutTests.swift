// Blocking modes and time-outs, Python's model: nil blocks, 0 never blocks,
// a positive number of seconds is a deadline for each call.

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

private func isNonBlocking(_ s: Socket) -> Bool { fcntl(s.fileno, F_GETFL) & O_NONBLOCK != 0 }

@Suite("Blocking and time-outs")
struct SocketTimeoutTests {
    @Test("setTimeout and setBlocking switch modes")
    func modes() throws {
        let s = try Socket()
        defer { s.close() }
        // (That new sockets block is checked in the serialized default-time-out suite.)
        try s.setTimeout(nil)
        #expect(s.timeout == nil)
        #expect(s.isBlocking)
        #expect(!isNonBlocking(s))
        #expect(try s.getOption(.receiveTimeout) == nil)

        try s.setTimeout(0)
        #expect(s.timeout == 0)
        #expect(!s.isBlocking)
        #expect(isNonBlocking(s))

        try s.setTimeout(2.5)
        #expect(s.timeout == 2.5)
        #expect(s.isBlocking)
        // The kernel keeps the time (SO_RCVTIMEO/SO_SNDTIMEO): the
        // descriptor stays blocking.
        #expect(!isNonBlocking(s))
        #expect(try s.getOption(.receiveTimeout) == 2.5)
        #expect(try s.getOption(.sendTimeout) == 2.5)

        try s.setTimeout(nil)
        #expect(s.timeout == nil)
        #expect(s.isBlocking)
        #expect(!isNonBlocking(s))

        try s.setBlocking(false)
        #expect(s.timeout == 0)
        #expect(!s.isBlocking)
        try s.setBlocking(true)
        #expect(s.timeout == nil)
        #expect(!isNonBlocking(s))

        try s.setTimeout(.infinity)
        #expect(try #require(s.timeout) > 1e9)
        #expect(s.isBlocking)
        try s.setTimeout(0.001)
        #expect(s.timeout == 0.001)
        SockKit.expectErrno([.invalidArgument]) { try s.setTimeout(-1) }
        SockKit.expectErrno([.invalidArgument]) { try s.setTimeout(-.infinity) }
        SockKit.expectErrno([.invalidArgument]) { try s.setTimeout(.nan) }
        #expect(s.timeout == 0.001)
    }

    @Test("non-blocking: recv, accept and recvFrom throw Errno.wouldBlock")
    func nonBlocking() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(0)
        let e = SockKit.expectErrno([.wouldBlock]) { _ = try b.recv(10) }
        #expect(e == .system(.wouldBlock, operation: "recv", address: nil))
        do {
            _ = try b.recv(1)
        } catch Errno.wouldBlock {
            // matched by error number
        }
        try a.sendAll(SockKit.bytes("now"))
        #expect(try b.recv(10) == SockKit.bytes("now"))

        let l = try Socket()
        defer { l.close() }
        try l.bind(to: SockKit.loopback(.inet))
        try l.listen()
        try l.setBlocking(false)
        SockKit.expectErrno([.wouldBlock]) { _ = try l.accept() }

        let u = try Socket(type: .datagram)
        defer { u.close() }
        try u.bind(to: SockKit.loopback(.inet))
        try u.setTimeout(0)
        SockKit.expectErrno([.wouldBlock]) { _ = try u.recvFrom(10) }

        // A full send buffer: send takes nothing more.
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0)
        let chunk = SockKit.pattern(count: 65536)
        var filled = false
        for _ in 0..<1000 {
            do { _ = try a.send(chunk) } catch Errno.wouldBlock { filled = true; break }
        }
        #expect(filled)
    }

    @Test("recv, recvFrom and accept time out with SocketError.timeout")
    func deadlines() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(0.05)
        let e = #expect(throws: SocketError.self) { _ = try b.recv(10) }
        #expect(e == .timeout(operation: "recv", address: nil))
        #expect(e?.errno == .timedOut)
        do {
            _ = try b.recv(10)
        } catch SocketError.timeout {
            // A `catch SocketError.timeout` pattern matches.
        }

        let u = try Socket(type: .datagram)
        defer { u.close() }
        try u.bind(to: SockKit.loopback(.inet))
        try u.setTimeout(0.05)
        let e2 = #expect(throws: SocketError.self) { _ = try u.recvFrom(10) }
        #expect(e2 == .timeout(operation: "recvfrom", address: nil))

        let l = try Socket()
        defer { l.close() }
        try l.bind(to: SockKit.loopback(.inet))
        try l.listen()
        try l.setTimeout(0.05)
        let e3 = #expect(throws: SocketError.self) { _ = try l.accept() }
        #expect(e3 == .timeout(operation: "accept", address: nil))
    }

    @Test("sendAll times out when the peer does not read")
    func sendAllTimeout() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0.1)
        let e = #expect(throws: SocketError.self) { try a.sendAll(SockKit.pattern(count: 8 << 20)) }
        #expect(e == .timeout(operation: "send", address: nil))
        #expect(e?.isPeerGone == true)
    }

    @Test("data that comes within the time-out is received")
    func withinDeadline() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(SockKit.ioTimeout)
        let sender = try TestThread(unblocking: SockKit.ordinarySignals) { try a.sendAll(SockKit.bytes("in time")) }
        #expect(try SockKit.recvExactly(b, 7) == SockKit.bytes("in time"))
        try sender.join()
    }

    @Test("connect times out when the listener's queue is full", arguments: SockKit.ipFamilies)
    func connectTimeout(family: AddressFamily) throws {
        let (l, address) = try SockKit.listener(family, backlog: 0)
        defer { l.close() }
        // Linux drops SYNs while the accept queue is full, so a connect
        // waits for the retransmission and the deadline passes first.
        var clients: [Socket] = []
        defer { for c in clients { c.close() } }
        var timeout: SocketError?
        for _ in 0..<8 where timeout == nil {
            let c = try Socket(family: family)
            clients.append(c)
            try c.setTimeout(0.3)
            do { try c.connect(to: address) } catch let e as SocketError {
                guard e.isTimeout else { Issue.record("\(e)"); break }
                timeout = e
            }
        }
        let e = try #require(timeout, "connects to a full queue never blocked")
        #expect(e == .timeout(operation: "connect to", address: address.description))

        // connectEx reports the time-out as ETIMEDOUT.
        let c = try Socket(family: family)
        clients.append(c)
        try c.setTimeout(0.3)
        #expect(c.connectEx(to: address) == ETIMEDOUT)
    }

    @Test("createConnection passes its time-out to connect")
    func createConnectionTimeout() throws {
        let (l, address) = try SockKit.listener(backlog: 0)
        defer { l.close() }
        var fillers: [Socket] = []
        defer { for f in fillers { f.close() } }
        var sawTimeout = false
        for _ in 0..<8 where !sawTimeout {
            do {
                fillers.append(try Socket.createConnection(host: "127.0.0.1", port: address.port!, timeout: 0.3))
            } catch SocketError.timeout {
                sawTimeout = true
            }
        }
        #expect(sawTimeout)
    }

    @Test("setTimeout on a closed socket throws SocketError.closed")
    func closedSocket() throws {
        let s = try Socket()
        let before = s.timeout
        s.close()
        SockKit.expectErrno([.badFileDescriptor]) { try s.setTimeout(1) }
        #expect(s.timeout == before)
    }
}

/// Touches the process-wide default: kept short and serialized, and only
/// a large value is used, so sockets other tests make meanwhile still
/// behave as blocking ones for any practical purpose (tests here that need
/// a truly blocking descriptor call `setTimeout(nil)` themselves).
@Suite("Socket.defaultTimeout", .serialized)
struct SocketDefaultTimeoutTests {
    @Test("applies to new, paired and accepted sockets; restored afterwards")
    func applies() throws {
        let saved = Socket.defaultTimeout
        #expect(saved == nil)
        defer { Socket.defaultTimeout = saved }

        // Unless set, new sockets block.
        let plain = try Socket()
        defer { plain.close() }
        #expect(plain.timeout == nil)
        #expect(plain.isBlocking)
        #expect(fcntl(plain.fileno, F_GETFL) & O_NONBLOCK == 0)
        let (p0, q0) = try Socket.pair()
        defer { p0.close(); q0.close() }
        #expect(p0.timeout == nil && q0.timeout == nil)

        let l = try Socket()
        defer { l.close() }
        try l.bind(to: SockKit.loopback(.inet))
        try l.listen()

        Socket.defaultTimeout = 123
        #expect(Socket.defaultTimeout == 123)
        let s = try Socket()
        defer { s.close() }
        #expect(s.timeout == 123)
        let (p, q) = try Socket.pair()
        defer { p.close(); q.close() }
        #expect(p.timeout == 123 && q.timeout == 123)
        let c = try Socket.createConnection(to: l.localAddress())
        defer { c.close() }
        #expect(c.timeout == 123)
        let (accepted, _) = try l.accept()
        defer { accepted.close() }
        #expect(accepted.timeout == 123)
        // An adopted descriptor keeps its own mode.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let adopted = try Socket(fileDescriptor: fd)
        defer { adopted.close() }
        #expect(adopted.timeout == nil)

        Socket.defaultTimeout = nil
        let t = try Socket()
        defer { t.close() }
        #expect(t.timeout == nil)
        #expect(s.timeout == 123)  // existing sockets keep theirs
    }
}
