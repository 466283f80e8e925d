// Large transfers, sendFile, writes to a peer that has gone (no SIGPIPE),
// and blocking calls interrupted by signals (EINTR).

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Synchronization
import Testing
import TestSupport

/// Whether SIGPIPE is pending for the calling thread (or the process).
private func sigpipePending() -> Bool {
    var pending = sigset_t()
    sigpending(&pending)
    return sigismember(&pending, SIGPIPE) == 1
}

/// Runs `body` on a thread that blocks SIGPIPE, and reports whether a
/// SIGPIPE was raised for it: blocked signals are never discarded on
/// Linux, so a raised one shows as pending whatever the disposition.
private func raisesSIGPIPE<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> (T, Bool) {
    let t = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> (Result<T, SocketError>, Bool) in
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        var old = sigset_t()
        pthread_sigmask(SIG_BLOCK, &set, &old)
        let before = sigpipePending()
        let r: Result<T, SocketError>
        do { r = .success(try body()) } catch let e as SocketError { r = .failure(e) } catch {
            r = .failure(.invalidArgument("\(error)"))
        }
        let raised = !before && sigpipePending()
        if raised {
            var zero = timespec()
            _ = sigtimedwait(&set, nil, &zero)
        }
        pthread_sigmask(SIG_SETMASK, &old, nil)
        return (r, raised)
    }
    let (r, raised) = try t.join()
    return (try r.get(), raised)
}

@Suite("Writes to a peer that has gone")
struct SocketPeerGoneTests {
    @Test("sendAll after the peer closed throws EPIPE or ECONNRESET, without SIGPIPE",
          arguments: SockKit.connectionKinds)
    func sendAllToClosedPeer(kind: String) throws {
        let (a, b) = kind == "unix" ? try SockKit.pair()
            : try SockKit.tcpPair(kind == "tcp4" ? .inet : .inet6)
        defer { a.close() }
        b.close()
        let (error, raised) = try raisesSIGPIPE { () -> SocketError? in
            let chunk = SockKit.pattern(count: 64 * 1024)
            // The first sends may still be taken (TCP learns of the close from the RST).
            for _ in 0..<1000 {
                do { try a.sendAll(chunk) } catch let e as SocketError { return e }
            }
            return nil
        }
        let e = try #require(error)
        #expect(Errno.brokenPipe ~= e || Errno.connectionReset ~= e, "\(e)")
        #expect(e.isPeerGone)
        #expect(!raised, "send raised SIGPIPE")
    }

    @Test("send and sendTo on a broken socketpair throw EPIPE, without SIGPIPE")
    func sendToClosedPeer() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close() }
        b.close()
        let (errors, raised) = try raisesSIGPIPE { () -> [SocketError] in
            var errors: [SocketError] = []
            do { _ = try a.send(SockKit.bytes("x")) } catch let e as SocketError { errors.append(e) }
            do { try a.sendAll(SockKit.bytes("x")) } catch let e as SocketError { errors.append(e) }
            return errors
        }
        #expect(errors.count == 2)
        for e in errors {
            #expect(e == .system(.brokenPipe, operation: "send", address: nil))
        }
        #expect(!raised)
    }

    @Test("sendFile to a closed peer throws and never kills the process", arguments: ["unix", "tcp4"])
    func sendFileToClosedPeer(kind: String) throws {
        let dir = try TempDir()
        let fd = try SockKit.makeFile(dir.file("data"), SockKit.pattern(count: 1 << 20))
        defer { close(fd) }
        let (a, b) = kind == "unix" ? try SockKit.pair() : try SockKit.tcpPair()
        defer { a.close() }
        b.close()
        // SIGPIPE stays unblocked here: sendFile must swallow the one
        // sendfile(2) raises (a default disposition would end the process).
        let t = try TestThread(unblocking: SockKit.ordinarySignals) { () -> (SocketError?, Bool) in
            for _ in 0..<200 {
                do { try a.sendFile(fd, offset: 0, count: 1 << 20) } catch let e as SocketError {
                    return (e, sigpipePending())
                } catch { return (nil, sigpipePending()) }
            }
            return (nil, sigpipePending())
        }
        let (error, pending) = try t.join()
        let e = try #require(error)
        #expect(Errno.brokenPipe ~= e || Errno.connectionReset ~= e, "\(e)")
        #expect(!pending, "a SIGPIPE was left pending")
    }
}

@Suite("Large transfers and sendFile")
struct SocketTransferTests {
    @Test("a 64 MiB sendAll through a socketpair arrives byte-exactly")
    func sendAll64MiB() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        let total = 64 << 20
        // Blocking writer; the kernel's send time-out keeps it from hanging.
        try a.setTimeout(nil)
        try a.setOption(.sendTimeout, 60)
        try b.setTimeout(60)
        let writer = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Void in
            let data = SockKit.pattern(count: total)
            try a.sendAll(data)
            try a.shutdown(.write)
        }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var received = 0
        var intact = true
        while true {
            let n = try buffer.withUnsafeMutableBytes { try b.recv(into: $0) }
            if n == 0 { break }
            if intact {
                intact = buffer.withUnsafeBytes {
                    SockKit.matchesPattern(UnsafeRawBufferPointer(rebasing: $0[0..<n]), offset: received)
                }
                if !intact { Issue.record("mismatch in the \(n) bytes at offset \(received)") }
            }
            received += n
            if received > total { break }
        }
        try writer.join(timeout: 120)
        #expect(received == total)
        #expect(intact)
    }

    @Test("sendFile sends a file over TCP, with offset and count respected", arguments: ["tcp4", "unix"])
    func sendFile(kind: String) throws {
        let dir = try TempDir()
        let size = 3 << 20 + 12345
        let fd = try SockKit.makeFile(dir.file("payload"), SockKit.pattern(count: size))
        defer { close(fd) }
        let (a, b) = kind == "unix" ? try SockKit.pair() : try SockKit.tcpPair()
        defer { a.close(); b.close() }

        let whole = try TestThread(unblocking: SockKit.ordinarySignals) { try a.sendFile(fd, count: size) }
        let got = try SockKit.recvExactly(b, size)
        #expect(try whole.join() == size)
        #expect(got.withUnsafeBytes { SockKit.matchesPattern($0, offset: 0) })

        #expect(try a.sendFile(fd, offset: 1000, count: 5000) == 5000)
        #expect(try SockKit.recvExactly(b, 5000) == SockKit.pattern(offset: 1000, count: 5000))

        // Past the end of the file: only what is there.
        #expect(try a.sendFile(fd, offset: size - 10, count: 100) == 10)
        #expect(try SockKit.recvExactly(b, 10) == SockKit.pattern(offset: size - 10, count: 10))
        #expect(try a.sendFile(fd, offset: size, count: 100) == 0)
        // A count of 0 sends nothing (Python raises ValueError: its None
        // means "to the end"); an empty file is not an error here.
        #expect(try a.sendFile(fd, offset: 0, count: 0) == 0)
        #expect(try a.sendFile(fd, offset: size, count: 100) == 0)

        // As in Python, the file's offset is left after the last byte sent.
        #expect(lseek(fd, 0, SEEK_CUR) == off_t(size))

        SockKit.expectErrno([.invalidArgument]) { try a.sendFile(fd, offset: -1, count: 1) }
        SockKit.expectErrno([.invalidArgument]) { try a.sendFile(fd, offset: 0, count: -1) }
        SockKit.expectErrno([.badFileDescriptor]) { try a.sendFile(-1, offset: 0, count: 1) }

        // Nothing else was sent.
        try a.shutdown(.write)
        #expect(try b.recv(10) == [])
    }

    @Test("sendFile obeys the socket's time-out when the peer does not read")
    func sendFileTimeout() throws {
        let dir = try TempDir()
        let size = 8 << 20
        let fd = try SockKit.makeFile(dir.file("big"), SockKit.pattern(count: size))
        defer { close(fd) }
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.setOption(.sendBufferSize, 4096)
        try a.setTimeout(0.1)
        let e = #expect(throws: SocketError.self) { try a.sendFile(fd, count: size) }
        #expect(e == .timeout(operation: "sendfile", address: nil))
        // Non-blocking: refused up front, as Python's sendfile does.
        try a.setTimeout(0)
        SockKit.expectErrno([.invalidArgument]) { try a.sendFile(fd, count: size) }
    }
}

// MARK: - EINTR

private let signalCount = Atomic<Int>(0)

/// Installs a counting SIGUSR1 handler without SA_RESTART (so blocking
/// calls fail with EINTR), runs `body`, and restores the old handler.
private func withInterruptingSIGUSR1<R>(_ body: () throws -> R) rethrows -> R {
    _ = signalCount.load(ordering: .relaxed)  // initialized before the handler can run
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in signalCount.add(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    var old = sigaction()
    sigaction(SIGUSR1, &action, &old)
    defer { sigaction(SIGUSR1, &old, nil) }
    return try body()
}

/// Sends SIGUSR1 to `thread` `times` times, each time once it sleeps in one
/// of `syscalls` and only after the previous signal was handled. Returns
/// how many were delivered while it was blocked.
private func interrupt<T>(_ thread: TestThread<T>, times: Int, in syscalls: Set<Int>) -> Int {
    let tid = thread.tid
    var delivered = 0
    for _ in 0..<times {
        guard SockKit.waitUntilBlocked(tid: tid, in: syscalls) else {
            Issue.record("the thread did not block in \(syscalls)")
            return delivered
        }
        let before = signalCount.load(ordering: .relaxed)
        pthread_kill(thread.pthread, SIGUSR1)
        guard eventually(SockKit.ioTimeout, { signalCount.load(ordering: .relaxed) > before }) else {
            Issue.record("the signal was not handled")
            return delivered
        }
        delivered += 1
    }
    return delivered
}

@Suite("Blocking calls survive EINTR", .serialized)
struct SocketEINTRTests {
    @Test("recv, blocking and under a time-out", arguments: [false, true])
    func recv(withTimeout: Bool) throws {
        try withInterruptingSIGUSR1 {
            let (a, b) = try Socket.pair()
            defer { a.close(); b.close() }
            if withTimeout { try b.setTimeout(30) } else { try b.setTimeout(nil); try b.setOption(.receiveTimeout, 30) }
            let message = SockKit.bytes("all of it, once")
            let reader = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> [UInt8] in
                var got: [UInt8] = []
                while got.count < message.count {
                    let chunk = try b.recv(100)
                    if chunk.isEmpty { break }
                    got += chunk
                }
                return got
            }
            // Under a time-out the descriptor stays blocking (the kernel keeps the
            // time), so the thread sleeps in the call itself; once a signal has
            // started the deadline, the retry waits in poll(2) for what is left.
            let syscalls = withTimeout ? SockKit.sysRecv.union(SockKit.sysPoll) : SockKit.sysRecv
            #expect(interrupt(reader, times: 5, in: syscalls) == 5)
            try a.sendAll(message)
            #expect(try reader.join() == message)
            // Nothing duplicated: no more bytes queued.
            try b.setTimeout(0)
            SockKit.expectErrno([.wouldBlock]) { _ = try b.recv(10) }
        }
    }

    @Test("accept, blocking and under a time-out", arguments: [false, true])
    func accept(withTimeout: Bool) throws {
        try withInterruptingSIGUSR1 {
            let l = try Socket()
            defer { l.close() }
            try l.bind(to: SockKit.loopback(.inet))
            try l.listen()
            if withTimeout { try l.setTimeout(30) } else { try l.setTimeout(nil); try l.setOption(.receiveTimeout, 30) }
            let address = try l.localAddress()
            let acceptor = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> SocketAddress in
                let (c, peer) = try l.accept()
                c.close()
                return peer
            }
            // Under a time-out the descriptor stays blocking (the kernel keeps the
            // time), so the thread sleeps in the call itself; once a signal has
            // started the deadline, the retry waits in poll(2) for what is left.
            let syscalls = withTimeout ? SockKit.sysAccept.union(SockKit.sysPoll) : SockKit.sysAccept
            #expect(interrupt(acceptor, times: 5, in: syscalls) == 5)
            let c = try Socket.createConnection(to: address, timeout: SockKit.ioTimeout)
            defer { c.close() }
            #expect(try acceptor.join() == c.localAddress())
        }
    }

    @Test("sendAll, blocking and under a time-out: every byte once, in order", arguments: [false, true])
    func sendAll(withTimeout: Bool) throws {
        try withInterruptingSIGUSR1 {
            let (a, b) = try Socket.pair()
            defer { a.close(); b.close() }
            try a.setOption(.sendBufferSize, 4096)
            if withTimeout { try a.setTimeout(30) } else { try a.setTimeout(nil); try a.setOption(.sendTimeout, 30) }
            try b.setTimeout(30)
            let total = 2 << 20
            let writer = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Void in
                try a.sendAll(SockKit.pattern(count: total))
                try a.shutdown(.write)
            }
            // Under a time-out the descriptor stays blocking (the kernel keeps the
            // time), so the thread sleeps in the call itself; once a signal has
            // started the deadline, the retry waits in poll(2) for what is left.
            let syscalls = withTimeout ? SockKit.sysSend.union(SockKit.sysPoll) : SockKit.sysSend
            #expect(interrupt(writer, times: 5, in: syscalls) == 5)
            let got = try SockKit.recvToEOF(b)
            try writer.join()
            #expect(got.count == total)
            #expect(got.withUnsafeBytes { SockKit.matchesPattern($0, offset: 0) })
        }
    }

    @Test("connect interrupted while the listener's queue is full completes later")
    func connect() throws {
        try withInterruptingSIGUSR1 {
            let (l, address) = try SockKit.listener(backlog: 0)
            defer { l.close() }
            // Fill the accept queue; further SYNs are dropped until it drains.
            var fillers: [Socket] = []
            defer { for f in fillers { f.close() } }
            var blocked = false
            for _ in 0..<4 where !blocked {
                let f = try Socket()
                try f.setTimeout(0.5)
                do { try f.connect(to: address); fillers.append(f) } catch SocketError.timeout { blocked = true; f.close() }
            }
            try #require(blocked, "connects to a full backlog did not block")
            let client = try Socket()
            defer { client.close() }
            try client.setTimeout(nil)
            let connector = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> SocketAddress in
                try client.connect(to: address)
                return try client.peerAddress()
            }
            #expect(interrupt(connector, times: 3, in: SockKit.sysConnect.union(SockKit.sysPoll)) == 3)
            // Drain the queue: the client's retransmitted SYN gets in.
            var accepted: [Socket] = []
            defer { for s in accepted { s.close() } }
            let deadline = now() + 30
            while !connector.isFinished && now() < deadline {
                do { accepted.append(try l.accept().0) } catch SocketError.timeout { continue }
            }
            #expect(try connector.join() == address)
        }
    }
}
