// Behaviours checked against what Python's `socket` module does: each test
// here failed before its fix (see the commit that added it).

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Synchronization
import Testing
import TestSupport

// MARK: - A signal every 0.1 s

private let parityPings = Atomic<Int>(0)

/// A no-op SIGUSR2 handler without SA_RESTART, installed once and never
/// removed (another suite restores SIGUSR1's old handler when it is done;
/// this signal is ours alone, so no test can leave it at its default, fatal
/// action while a ping is on its way).
private let parityHandlerInstalled: Bool = {
    _ = parityPings.load(ordering: .relaxed)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in parityPings.add(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    return sigaction(SIGUSR2, &action, nil) == 0
}()

/// Runs `body` on a thread that takes SIGUSR2, and sends it SIGUSR2 every
/// 0.1 s until the body returns (at most 100 times, 10 s). Returns the
/// body's result and how long it took, in seconds.
private func underSignals<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> (Result<T, any Error>, Double) {
    try #require(parityHandlerInstalled)
    let worker = try TestThread(unblocking: SockKit.ordinarySignals) { () -> (Result<T, any Error>, Double) in
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR2)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let started = now()
        let r = Result { try body() }
        return (r, now() - started)
    }
    _ = worker.tid  // running
    for _ in 0..<100 where !worker.isFinished {
        pthread_kill(worker.pthread, SIGUSR2)
        // deadline: the signal period is this test's input, not a wait for a condition.
        var ts = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        nanosleep(&ts, nil)
    }
    return try worker.join()
}

/// The call timed out (SocketError.timeout) within 3 s of a 1 s time-out.
private func expectTimedOut<T>(_ outcome: (Result<T, any Error>, Double), _ what: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    let (result, elapsed) = outcome
    switch result {
    case .success: Issue.record("\(what) returned instead of timing out", sourceLocation: sourceLocation)
    case .failure(let error):
        let timedOut = (error as? SocketError)?.isTimeout ?? false
        #expect(timedOut, "\(what): \(error)", sourceLocation: sourceLocation)
    }
    #expect(elapsed < 3, "\(what) took \(elapsed) s under a 1 s time-out", sourceLocation: sourceLocation)
}

@Suite("Python parity: a time-out is not restarted by signals", .serialized)
struct ParityTimeoutUnderSignalsTests {
    @Test("recv and recv(into:) time out under a signal every 0.1 s")
    func recv() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(1)
        expectTimedOut(try underSignals { try b.recv(10) }, "recv")
        expectTimedOut(try underSignals { () throws -> Int in
            var buffer = [UInt8](repeating: 0, count: 10)
            return try b.recv(into: &buffer)
        }, "recv(into:)")
    }

    @Test("recvFrom and recvFrom(into:) time out under a signal every 0.1 s")
    func recvFrom() throws {
        let u = try Socket(family: .inet, type: .datagram)
        defer { u.close() }
        try u.bind(to: SockKit.loopback(.inet))
        try u.setTimeout(1)
        expectTimedOut(try underSignals { try u.recvFrom(10).0 }, "recvFrom")
        expectTimedOut(try underSignals { () throws -> Int in
            var buffer = [UInt8](repeating: 0, count: 10)
            return try u.recvFrom(into: &buffer).0
        }, "recvFrom(into:)")
    }

    @Test("send times out under a signal every 0.1 s")
    func send() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0)
        let chunk = [UInt8](repeating: 7, count: 4096)
        var full = false
        for _ in 0..<100_000 where !full {
            do { _ = try a.send(chunk) } catch Errno.wouldBlock { full = true }
        }
        try #require(full)
        try a.setTimeout(1)
        expectTimedOut(try underSignals { try a.send(chunk) }, "send")
    }

    @Test("sendTo times out under a signal every 0.1 s")
    func sendTo() throws {
        let name = "\0socketserver-parity-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let receiver = try Socket(family: .unix, type: .datagram)
        defer { receiver.close() }
        let address = try SocketAddress(unixPath: name)
        try receiver.bind(to: address)
        let sender = try Socket(family: .unix, type: .datagram)
        defer { sender.close() }
        try sender.setTimeout(0)
        let datagram = [UInt8](repeating: 1, count: 512)
        var full = false
        for _ in 0..<100_000 where !full {
            do { _ = try sender.sendTo(datagram, address) } catch Errno.wouldBlock { full = true }
        }
        try #require(full)
        try sender.setTimeout(1)
        expectTimedOut(try underSignals { try sender.sendTo(datagram, address) }, "sendTo")
    }
}

// MARK: - Time-outs and modes

@Suite("Python parity: sockets")
struct ParitySocketTests {
    @Test("an accepted socket does not inherit the listener's time-out")
    func acceptedSocketHasNoTimeout() throws {
        let (l, address) = try SockKit.listener()
        defer { l.close() }
        try l.setTimeout(5)
        let c = try Socket.createConnection(to: address, timeout: SockKit.ioTimeout)
        defer { c.close() }
        let (s, _) = try l.accept()
        defer { s.close() }
        #expect(s.timeout == nil)
        // Linux copies SO_RCVTIMEO/SO_SNDTIMEO to the accepted socket.
        #expect(try s.getOption(.receiveTimeout) == nil)
        #expect(try s.getOption(.sendTimeout) == nil)
    }

    @Test("SOCK_NONBLOCK and SOCK_CLOEXEC in the type: type without flags, time-out 0")
    func typeFlags() throws {
        let nonBlocking = SocketType(rawValue: SocketType.stream.rawValue | Int32(SOCK_NONBLOCK.rawValue))
        let s = try Socket(family: .inet, type: nonBlocking)
        defer { s.close() }
        #expect(s.type == .stream)
        #expect(s.timeout == 0)
        #expect(!s.isBlocking)
        try s.setBlocking(true)
        #expect(fcntl(s.fileno, F_GETFL) & O_NONBLOCK == 0)

        let cloexec = SocketType(rawValue: SocketType.datagram.rawValue | Int32(SOCK_CLOEXEC.rawValue))
        let d = try Socket(family: .inet, type: cloexec)
        defer { d.close() }
        #expect(d.type == .datagram)
        #expect(d.timeout == nil)

        let (a, b) = try Socket.pair(type: nonBlocking)
        defer { a.close(); b.close() }
        #expect(a.type == .stream && b.type == .stream)
        #expect(a.timeout == 0 && b.timeout == 0)
    }

    @Test("fqdn of 127.0.0.1 is the address's name, as Python's getfqdn")
    func fqdnOfAddress() throws {
        // Python: getfqdn('127.0.0.1') == gethostbyaddr('127.0.0.1')[0] when
        // no alias has a dot; 'localhost' with this machine's /etc/hosts.
        let name = try Resolver.hostByAddress("127.0.0.1").name
        #expect(Resolver.fqdn("127.0.0.1") == name)
        #expect(Resolver.fqdn("127.0.0.1") != "127.0.0.1")
    }

    @Test("makeReader(bufferSize: 0) reads no byte past the line")
    func unbufferedReaderDoesNotOverRead() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(SockKit.ioTimeout)
        try a.sendAll(SockKit.bytes("the first line\nsecond\nthree"))
        let first = b.makeReader(bufferSize: 0)
        #expect(try first.readLine() == SockKit.bytes("the first line\n"))
        #expect(first.bufferedCount == 0)
        #expect(try first.read(2) == SockKit.bytes("se"))
        #expect(first.bufferedCount == 0)
        let second = b.makeReader()
        #expect(try second.readLine() == SockKit.bytes("cond\n"))
        try a.shutdown(.write)
        #expect(try second.readAll() == SockKit.bytes("three"))
    }

    @Test("an abstract Unix name may use all 108 bytes")
    func abstractNameOf108Bytes() throws {
        let name = "\0" + String(repeating: "a", count: 99) + eightDigits(getpid())
        #expect(name.utf8.count == 108)
        let address = try SocketAddress(unixPath: name)
        let s = try Socket(family: .unix, type: .stream)
        defer { s.close() }
        try s.bind(to: address)
        #expect(try s.localAddress() == address)
        SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(unixPath: name + "b") }
        // A path (not abstract) needs room for its NUL: 107 bytes at most.
        SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(unixPath: "/" + String(repeating: "p", count: 107)) }
    }

    @Test("sendFile leaves the file offset after the bytes sent")
    func sendFileMovesTheOffset() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let fd = try SockKit.makeFile(dir.file("f"), SockKit.pattern(count: 1000))
        defer { close(fd) }
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(SockKit.ioTimeout)
        #expect(try a.sendFile(fd, offset: 100, count: 300) == 300)
        #expect(lseek(fd, 0, SEEK_CUR) == 400)
        #expect(try SockKit.recvExactly(b, 300) == SockKit.pattern(offset: 100, count: 300))
        // Stopped early by the end of the file: after the last byte.
        #expect(try a.sendFile(fd, offset: 900, count: 500) == 100)
        #expect(lseek(fd, 0, SEEK_CUR) == 1000)
    }

    @Test("sendFile on a non-blocking socket is refused before sending anything")
    func sendFileNonBlocking() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let fd = try SockKit.makeFile(dir.file("f"), SockKit.pattern(count: 1000))
        defer { close(fd) }
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.setTimeout(0)
        SockKit.expectErrno([.invalidArgument]) { try a.sendFile(fd, count: 1000) }
        try b.setTimeout(0)
        SockKit.expectErrno([.wouldBlock]) { _ = try b.recv(10) }
    }

    @Test("values Python rejects are rejected")
    func rejectedValues() throws {
        let u = try Socket(family: .inet, type: .datagram)
        defer { u.close() }
        try u.setTimeout(0)
        var buffer = [UInt8](repeating: 0, count: 4)
        SockKit.expectErrno([.invalidArgument]) { _ = try u.recvFrom(into: &buffer, count: 5) }
        SockKit.expectErrno([.invalidArgument]) { _ = try u.recv(into: &buffer, count: 5) }
        SockKit.expectErrno([.invalidArgument]) { _ = try u.recvFrom(into: &buffer, count: -1) }

        let l = try Socket()
        defer { l.close() }
        try l.bind(to: SockKit.loopback(.inet))
        SockKit.expectErrno([.invalidArgument]) { try l.listen(backlog: Int(Int32.max) + 1) }
        try l.listen(backlog: -1)  // Python takes a negative backlog as 0
        #expect(try l.getOption(.acceptConnections))

        SockKit.expectErrno([.invalidArgument]) { _ = try SocketAddress(ipv6: "::1", port: 0, flowInfo: 0x10_0000) }
        #expect(try SocketAddress(ipv6: "::1", port: 0, flowInfo: 0xF_FFFF).flowInfo == 0xF_FFFF)

        let dir = try TempDir()
        defer { dir.cleanup() }
        let fd = try SockKit.makeFile(dir.file("f"), SockKit.pattern(count: 10))
        defer { close(fd) }
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        // Unlike Python (ValueError), a count of 0 sends nothing: the sample
        // file server serves empty files with it.
        #expect(try a.sendFile(fd, count: 0) == 0)
        SockKit.expectErrno([.invalidArgument]) { try a.sendFile(fd, count: -1) }
    }
}

@Suite("Python parity: streams, errors, defaults")
struct ParityStreamAndErrorTests {
    @Test("an unbuffered writer on a non-blocking socket: the count sent, and no sticky error")
    func unbufferedWriterNonBlocking() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0)
        let w = a.makeWriter(bufferSize: 0)
        let total = 4 << 20
        let e = SockKit.expectErrno([.wouldBlock]) { try w.write(SockKit.pattern(count: total)) }
        let sent = try #require(e?.bytesSent)
        #expect(sent > 0 && sent < total)
        // The peer reads what went out; then the rest can be written.
        try b.setTimeout(SockKit.ioTimeout)
        let got = try SockKit.recvExactly(b, sent)
        #expect(got == SockKit.pattern(count: sent))
        try a.setTimeout(SockKit.ioTimeout)
        let rest = try TestThread(unblocking: SockKit.ordinarySignals) { try SockKit.recvExactly(b, 1000) }
        try w.write(SockKit.pattern(offset: sent, count: 1000))
        #expect(try rest.join() == SockKit.pattern(offset: sent, count: 1000))
    }

    @Test("a buffered writer on a non-blocking socket keeps what it could not send")
    func bufferedWriterNonBlocking() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0)
        let w = a.makeWriter(bufferSize: 1 << 20)
        let total = 1 << 20 - 1
        try w.write(SockKit.pattern(count: total))
        let e = SockKit.expectErrno([.wouldBlock]) { try w.flush() }
        let sent = try #require(e?.bytesSent)
        #expect(w.pendingCount == total - sent)
        try a.setTimeout(SockKit.ioTimeout)
        try b.setTimeout(SockKit.ioTimeout)
        let reader = try TestThread(unblocking: SockKit.ordinarySignals) { try SockKit.recvExactly(b, total) }
        try w.flush()
        let got = try reader.join()
        #expect(got.count == total)
        #expect(got.withUnsafeBytes { SockKit.matchesPattern($0, offset: 0) })
    }

    @Test("close() with a reader open: the reader's buffered bytes stay readable, then SocketError.closed")
    func closeWhileReaderOpen() throws {
        let (a, b) = try Socket.pair()
        defer { a.close() }
        try b.setTimeout(SockKit.ioTimeout)
        try a.sendAll(SockKit.bytes("one\ntwo\n"))
        let r = b.makeReader()
        #expect(try r.readLine() == SockKit.bytes("one\n"))
        b.close()
        #expect(b.fileno == -1)
        #expect(try r.readLine() == SockKit.bytes("two\n"))  // already buffered
        do {
            _ = try r.readLine()
            Issue.record("a read after close did not throw")
        } catch SocketError.closed {
            // Documented: the descriptor is closed at once (Python keeps it
            // open until the makefile objects are closed too).
        }
    }

    @Test("setDefaultTimeout(-1) throws, as Python's setdefaulttimeout raises ValueError")
    func defaultTimeoutNegative() throws {
        let before = Socket.defaultTimeout
        SockKit.expectErrno([.invalidArgument]) { try Socket.setDefaultTimeout(-1) }
        SockKit.expectErrno([.invalidArgument]) { try Socket.setDefaultTimeout(.nan) }
        #expect(Socket.defaultTimeout == before)
    }
}

@Suite("The error types")
struct ErrorTypeTests {
    @Test("SocketError is a struct: kinds, patterns, fields")
    func socketErrorStruct() throws {
        let t = SocketError.timeout(operation: "recv", address: "127.0.0.1:1")
        #expect(t.kind == .timeout && t.isTimeout && t.errno == .timedOut)
        #expect(SocketError.Kind.timeout ~= t)
        #expect(!(SocketError.Kind.closed ~= t))
        do { throw t } catch SocketError.timeout {} catch { Issue.record("\(error)") }
        do { throw SocketError.closed(operation: "recv") } catch SocketError.closed {} catch { Issue.record("\(error)") }
        let reset = SocketError.system(.connectionReset, operation: "recv", address: nil)
        do { throw reset } catch Errno.connectionReset {} catch { Issue.record("\(error)") }
        #expect(reset.kind == .system && reset.operation == "recv" && reset.isPeerGone)
        #expect(SocketError.invalidArgument("x").detail == "x")
        let r = SocketError.addressResolution(code: EAI_NONAME, message: "m", host: "h")
        #expect(r.resolverCode == EAI_NONAME && r.address == "h" && r.reason == "m")
        // The library's own errors keep the SocketAddress.
        let l = try Socket()
        defer { l.close() }
        let refused = try SockKit.refusedPort()
        let address = try SocketAddress(ipv4: "127.0.0.1", port: refused)
        do { try l.connect(to: address) } catch let e as SocketError {
            #expect(e.errno == .connectionRefused)
            #expect(e.socketAddress == address)
            #expect(e.address == address.description)
            #expect(e == .system(.connectionRefused, operation: "connect to", address: address.description))
        }
    }

    @Test("Errno: one name per number, the call's name, equal by number")
    func errno() throws {
        let e = Errno(ECONNRESET, call: "recv")
        #expect(e == .connectionReset)
        #expect(e.call == "recv")
        #expect(e.description == "recv: \(Errno.connectionReset.message) (ECONNRESET)")
        #expect(Errno.connectionReset.description == "\(Errno.connectionReset.message) (ECONNRESET)")
        #expect(Errno.wouldBlock.name == "EAGAIN")
    }

    @Test("ServerError: its kinds match, and its error number does")
    func serverError() throws {
        let e = ServerError.threadStart(.wouldBlock)
        do { throw e } catch ServerError.threadStart {} catch { Issue.record("\(error)") }
        do { throw e } catch Errno.wouldBlock {} catch { Issue.record("\(error)") }
        let a = ServerError.alreadyServing()
        #expect(a.kind == .alreadyServing && a.errno == nil)
        #expect(a.description == "serve forever: serveForever is already running")
        let f = ServerError.processStart(.wouldBlock)
        do { throw f } catch ServerError.processStart {} catch { Issue.record("\(error)") }
        #expect(f.description == "fork: \(Errno.wouldBlock.message) (EAGAIN)")
    }
}

/// `n` as 8 decimal digits.
private func eightDigits(_ n: Int32) -> String {
    let digits = "\(n)"
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
