#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import SocketServer
import SocketServerTLS
import Synchronization
import Testing
import TestSupport

@Suite("TLS: deadlines, time-outs, SIGPIPE, reload, SNI, verification", .serialized)
struct TLSBehaviourTests {
    let certs: Certificates
    init() throws { certs = try Certificates.get() }

    @Test func stalledAndTricklingHandshakesEndAtTheDeadlineWithoutDelayingOthers() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext { $0.handshakeTimeout = 1 })
        defer { server.stop() }
        // 20 clients that connect and send nothing.
        let silent = try (0..<20).map { _ in try Socket.createConnection(host: "127.0.0.1", port: server.port, timeout: 15) }
        defer { for s in silent { s.close() } }
        // One that trickles a record header and a body one byte every 0.2 s:
        // each byte arrives well within any per-receive time-out.
        let trickler = try Socket.createConnection(host: "127.0.0.1", port: server.port, timeout: 15)
        defer { trickler.close() }
        let record: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00] + [UInt8](repeating: 0x01, count: 512)
        let sentAll = Locked<Bool>(false)
        let trickled = try TestThread {
            for byte in record {
                guard (try? trickler.sendAll([byte])) != nil else { return }
                var one = [UInt8](repeating: 0, count: 1)
                let closed = one.withUnsafeMutableBytes { (try? trickler.receiveNow(into: $0)) != nil }
                if closed { return }  // the server closed it (or reset it)
                usleep(200_000)  // deadline: the trickle's pace is what is tested
            }
            sentAll.withLock { $0 = true }
        }
        // A real client meanwhile is served at once.
        let client = try TestClient(port: server.port, context: certs.clientContext())
        #expect(try client.ask("hello") == "hello")
        // The silent ones are closed by the server (end of file, not our 15 s time-out).
        for s in silent { #expect(try s.recv(16).isEmpty) }
        #expect(trickled.finished(within: 30))
        #expect(!sentAll.withLock { $0 }, "the trickled handshake was not cut at its deadline")
        #expect(eventually { server.errors.withLock { $0.count } == 21 })
        let timeouts = server.errors.withLock { $0.filter { ($0 as? SocketError)?.isTimeout == true }.count }
        #expect(timeouts == 21, "\(server.errorTexts)")
    }

    /// Completes the handshake, waits until told the client is gone, then
    /// writes 1 MiB twice.
    final class LateWriter: StreamRequestHandler {
        nonisolated(unsafe) static var clientGone = DispatchSemaphore(value: 0)
        nonisolated(unsafe) static var outcome = Locked<[String]>([])
        override func handle() throws {
            _ = LateWriter.clientGone.wait(timeout: .now() + 20)
            let big = [UInt8](repeating: 0x61, count: 1 << 20)
            for _ in 0..<2 {
                do {
                    try wfile.write(big)
                    try wfile.flush()
                    LateWriter.outcome.withLock { $0.append("wrote") }
                } catch let e as SocketError where e.isPeerGone {
                    LateWriter.outcome.withLock { $0.append("peer gone") }
                }
            }
        }
    }

    @Test func writingToAPeerThatClosedNeverRaisesSIGPIPE() throws {
        // SIGPIPE's default action kills the process: exactly what a write
        // through OpenSSL's own socket BIO (write(2)) would trigger here.
        let previous = signal(SIGPIPE, SIG_DFL)
        defer { signal(SIGPIPE, previous) }
        let (server, _) = try TLSTestServer.start(certs.serverContext(), handler: LateWriter.self)
        defer { server.stop() }
        let c = try TestClient(port: server.port, context: certs.clientContext())
        c.stream.socket.close()  // no close_notify: just gone
        LateWriter.clientGone.signal()
        #expect(eventually { LateWriter.outcome.withLock { $0.count } == 2 })
        #expect(LateWriter.outcome.withLock { $0 }.last == "peer gone")
    }

    /// Times out once on purpose, says so, then reads the late line.
    final class PatientHandler: StreamRequestHandler {
        override var timeout: Double? { 0.3 }
        override func handle() throws {
            do {
                _ = try rfile.readTextLine()
                try wfile.write("no time-out\n")
            } catch SocketError.timeout {
                try wfile.write("timed out\n")
            }
            try wfile.flush()
            // The time-out lost nothing and the stream still works.
            if let line = try rfile.readTextLine() { try wfile.write("got \(line)\n") }
        }
    }

    @Test func aTimeOutIsTheLibrarysAndALaterReadWorks() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext(), handler: PatientHandler.self)
        defer { server.stop() }
        let c = try TestClient(port: server.port, context: certs.clientContext())
        // Half a line before the time-out: its bytes must not be lost.
        try c.writer.write("la")
        try c.writer.flush()
        #expect(try c.reader.readTextLine() == "timed out")
        #expect(try c.ask("te") == "got late")
    }

    @Test func reloadSwapsCertificatesForNewConnectionsOnly() throws {
        let dir = certs.directory
        // The server's files, which a reload reads again.
        let cert = "\(dir)/live.pem", key = "\(dir)/live.key"
        try writeFile(cert, readFile(certs.path("server.pem")) ?? [])
        try writeFile(key, readFile(certs.path("server.key")) ?? [])
        let context = try TLSContext(certificateChainFile: cert, privateKeyFile: key)
        let (server, stage) = try TLSTestServer.start(context)
        defer { server.stop() }
        let clientContext = try certs.clientContext()
        let first = try TestClient(port: server.port, context: clientContext)
        #expect(first.stream.session.peerCertificate == certs.der("server"))

        try writeFile(cert, readFile(certs.path("server2.pem")) ?? [])
        try writeFile(key, readFile(certs.path("server2.key")) ?? [])
        try stage.reload()
        let second = try TestClient(port: server.port, context: clientContext)
        #expect(second.stream.session.peerCertificate == certs.der("server2"))
        #expect(try first.ask("still here") == "still here")

        // A truncated key: the reload throws and the server keeps the last good one.
        let keyText = readTextFile(certs.path("server.key")) ?? ""
        try writeFile(cert, readFile(certs.path("server.pem")) ?? [])
        try writeFile(key, String(keyText.prefix(keyText.count / 2)))
        #expect { try stage.reload() } throws: { error in
            (error as? TLSError)?.kind == .configuration && (error as? TLSError)?.operation.contains("live.key") == true
        }
        let third = try TestClient(port: server.port, context: clientContext)
        #expect(third.stream.session.peerCertificate == certs.der("server2"))
        #expect(try second.ask("and here") == "and here")
    }

    @Test func ipv6LoopbackIsVerifiedByAddress() throws {
        let probe = try? Socket(family: .inet6, type: .stream)
        guard let probe, (try? probe.bind(to: ("::1", 0))) != nil else { return }  // no ::1 here
        probe.close()
        let (server, _) = try TLSTestServer.start(certs.serverContext(), host: "::1")
        defer { server.stop() }
        let c = try TestClient(port: server.port, context: certs.clientContext(), host: "::1", serverName: "::1")
        #expect(try c.ask("info")?.hasPrefix("version=TLSv1.3") == true)
        #expect(c.stream.session.protocolVersion == .v1_3)
    }

    @Test func aCertificateThatCannotBeLoadedSaysWhy() throws {
        #expect {
            _ = try TLSContext(certificateChainFile: certs.path("missing.pem"), privateKeyFile: certs.path("server.key"))
        } throws: { error in
            let e = error as? TLSError
            return e?.kind == .configuration && "\(error)".contains("missing.pem") && "\(error)".contains("No such file")
        }
        #expect {
            _ = try TLSContext(certificateChainFile: certs.path("server.pem"), privateKeyFile: certs.path("server2.key"))
        } throws: { error in
            (error as? TLSError)?.kind == .configuration && "\(error)".contains("key values mismatch")
        }
    }

    @Test func sniPicksTheContextByName() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext(), serverNames: ["B.test": certs.serverContext("btest")])
        defer { server.stop() }
        let b = try TestClient(port: server.port, context: certs.clientContext(), serverName: "b.test")
        #expect(b.stream.session.peerCertificate == certs.der("btest"))
        #expect(try b.ask("info")?.contains("sni=b.test") == true)
        let a = try TestClient(port: server.port, context: certs.clientContext(), serverName: "localhost")
        #expect(a.stream.session.peerCertificate == certs.der("server"))
        // By IP address: no SNI sent; the default context; the IP is checked.
        let ip = try TestClient(port: server.port, context: certs.clientContext(), serverName: "127.0.0.1")
        #expect(try ip.ask("info")?.contains("sni=-") == true)
        // And with openssl s_client as the peer.
        let (_, out, _) = try runToEnd(["openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", "-servername", "b.test",
                                   "-CAfile", certs.path("ca.pem"), "-verify_return_error", "-ign_eof"],
                                  input: "info\nquit\n", directory: certs.directory)
        #expect(out.contains("CN = b.test") || out.contains("CN=b.test"), "\(out)")
        #expect(out.contains("sni=b.test"), "\(out)")
    }

    @Test func clientVerificationFailuresSayCertificate() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext())
        defer { server.stop() }
        let cases: [(TLSContext, String, String)] = [
            (try certs.clientContext(ca: "otherca.pem"), "localhost", "unable to get local issuer certificate"),
            (try certs.clientContext(), "wrong.test", "hostname mismatch"),
            (try TLSContext(client: .init(trust: .system)), "localhost", "certificate"),
        ]
        for (context, name, why) in cases {
            #expect {
                _ = try TestClient(port: server.port, context: context, serverName: name)
            } throws: { error in
                "\(error)".contains("certificate") && "\(error)".contains(why) && (error as? TLSError)?.isCertificateError == true
            }
        }
        // Without verification (tests only) it connects.
        let insecure = try TestClient(port: server.port, context: TLSContext(client: .init(trust: .insecureNoVerification)),
                                      serverName: "wrong.test")
        #expect(try insecure.ask("x") == "x")
    }

    @Test func clientCertificatesAreAskedForAndShown() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext { $0.clientCertificates = .required(caFile: certs.path("ca.pem")) })
        defer { server.stop() }
        let withCert = try TestClient(port: server.port, context: certs.clientContext {
            $0.certificateChainFile = certs.path("client.pem")
            $0.privateKeyFile = certs.path("client.key")
        })
        #expect(try withCert.ask("info")?.contains("peercert=\(certs.der("client").count)") == true)
        // Without one: refused (in TLS 1.3 the client learns it at its first read).
        #expect {
            let c = try TestClient(port: server.port, context: certs.clientContext())
            _ = try c.ask("info")
        } throws: { error in
            (error as? TLSError)?.isCertificateError == true && "\(error)".contains("certificate")
        }
    }

    @Test func oneThreadReadsWhileAnotherWrites() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext())
        defer { server.stop() }
        let c = try TestClient(port: server.port, context: certs.clientContext())
        let line = String(repeating: "x", count: 1000) + "\n"
        let lines = 4000  // 4 MB each way, more than the socket buffers hold
        let stream = c.stream
        let failed = Locked<Bool>(false)
        let writing = try TestThread {
            let writer = SocketWriter(stream: stream)
            do { for _ in 0..<lines { try writer.write(line) }; try writer.flush() } catch { failed.withLock { $0 = true } }
        }
        var count = 0
        while count < lines, let got = try c.reader.readLine() {
            #expect(got.count == line.utf8.count)
            count += 1
        }
        #expect(writing.finished(within: 30))
        #expect(count == lines)
        #expect(!failed.withLock { $0 })
        #expect(c.stream.bytesReceived == lines * line.utf8.count)
    }

    @Test func bytesAlreadyBufferedAreReadFirst() throws {
        // A middle-man takes the ClientHello's first bytes, as a PROXY
        // header's reader would, and hands them to the server's session.
        let (clientSide, serverSide) = try SockKit.pair()
        let clientContext = try certs.clientContext()
        let result = Locked<String>("")
        let client = try TestThread {
            do {
                let c = try TLSStream.client(over: clientSide, context: clientContext, serverName: "localhost")
                let (r, w) = c.makeStreams()
                try w.write("ping\n")
                try w.flush()
                result.withLock { $0 = (try? r.readTextLine()) ?? "nil" }
            } catch { result.withLock { $0 = "\(error)" } }
        }
        let head = try serverSide.recv(7)
        #expect(head.count > 0)
        let s = try TLSStream.server(over: serverSide, context: certs.serverContext(), buffered: head)
        let (r, w) = s.makeStreams()
        let line = try r.readTextLine()
        try w.write("pong \(line ?? "")\n")
        try w.flush()
        #expect(client.finished(within: 20))
        #expect(result.withLock { $0 } == "pong ping")
    }

    @Test func repliesWaitWhileWholeRecordsAreStillBuffered() throws {
        // Two requests in two records, both received at once: the reader
        // takes one record at a time, so the writer must look beneath it
        // (hasBufferedInput) to hold the first reply for the second.
        let (clientSide, serverSide) = try SockKit.pair()
        let clientContext = try certs.clientContext()
        let sent = Locked<Bool>(false)
        let ready = Locked<Bool>(false)
        let replies = Locked<[String]>([])
        let client = try TestThread {
            do {
                let c = try TLSStream.client(over: clientSide, context: clientContext, serverName: "localhost")
                // Send only once the server's handshake is over, so that its
                // last receive cannot take the first record without the second.
                guard ready.wait(timeout: 20, until: { $0 }) else { throw SocketError.timeout(operation: "ready", address: nil) }
                var deadline: UInt64 = 0
                try SockKit.bytes("r1\n").withUnsafeBytes { try c.sendAll($0, deadline: &deadline) }
                try SockKit.bytes("r2\n").withUnsafeBytes { try c.sendAll($0, deadline: &deadline) }
                sent.update { $0 = true }  // update, not withLock: it wakes the waiter
                let r = SocketReader(stream: c)
                for _ in 0..<2 { let line = try r.readTextLine() ?? "nil"; replies.withLock { $0.append(line) } }
            } catch { replies.withLock { $0.append("\(error)") } }
        }
        let s = try TLSStream.server(over: serverSide, context: certs.serverContext())
        ready.update { $0 = true }
        // A socketpair's send lands in the peer's queue before it returns.
        #expect(sent.wait(timeout: 20) { $0 })
        let (r, w) = s.makeStreams()
        #expect(try r.readTextLine() == "r1")
        #expect(r.bufferedCount == 0 && s.hasBufferedInput)
        try w.write("e1\n")
        #expect(w.pendingCount == 3, "held: the second request is buffered in the session")
        #expect(try r.readTextLine() == "r2")
        #expect(!s.hasBufferedInput)
        try w.write("e2\n")
        #expect(w.pendingCount == 0, "sent: nothing more to read without waiting")
        #expect(client.finished(within: 20))
        #expect(replies.withLock { $0 } == ["e1", "e2"])
    }

    @Test func unwrapGivesThePlainSocketBack() throws {
        // Python's server: one line over TLS, then unwrap, then plain text.
        let script = """
            import socket, ssl, sys
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(sys.argv[1], sys.argv[2])
            listener = socket.create_server(('127.0.0.1', 0))
            print('port', listener.getsockname()[1], flush=True)
            conn, _ = listener.accept()
            conn.settimeout(10)
            t = ctx.wrap_socket(conn, server_side=True)
            data = b''
            while not data.endswith(b'\\n'):
                data += t.recv(100)
            t.sendall(b'tls ' + data)
            plain = t.unwrap()
            plain.sendall(b'plain text\\n')
            print('done', flush=True)
            """
        let server = try TestProcess(["python3", "-c", script, certs.path("server.pem"), certs.path("server.key")],
                              directory: certs.directory)
        defer { server.kill() }
        #expect(server.waitForOutput("port "), "\(server.stderr)")
        let port = Int(server.stdout.split(separator: " ")[1].split(separator: "\n")[0])!
        let c = try TestClient(port: port, context: certs.clientContext())
        #expect(try c.ask("hi") == "tls hi")
        let plain = try c.stream.unwrap()
        var got = c.stream.leftover
        while !got.contains(0x0A), let more = try? plain.recv(100), !more.isEmpty { got += more }
        #expect(String(decoding: got, as: UTF8.self) == "plain text\n")
        #expect(server.wait(20) == 0, "\(server.stderr)")
        plain.close()
    }

    /// Sends a file over whatever stream the connection has.
    final class FileHandler: StreamRequestHandler {
        nonisolated(unsafe) static var path = ""
        override func handle() throws {
            _ = try rfile.readLine()
            let fd = open(FileHandler.path, O_RDONLY)
            defer { close(fd) }
            var st = stat()
            fstat(fd, &st)
            try wfile.flush()
            try context!.stream.sendFile(fd, offset: 0, count: Int(st.st_size))
        }
    }

    @Test func sendFileOverTLSFallsBackToReadAndWrite() throws {
        let path = "\(certs.directory)/payload"
        let payload = (0..<300_000).map { String($0 % 10) }.joined()
        try writeFile(path, payload)
        FileHandler.path = path
        let (server, _) = try TLSTestServer.start(certs.serverContext(), handler: FileHandler.self)
        defer { server.stop() }
        let c = try TestClient(port: server.port, context: certs.clientContext())
        try c.writer.write("send\n")
        try c.writer.flush()
        let got = try c.reader.readAll()  // ends at the server's close_notify
        #expect(got.count == payload.utf8.count)
        #expect(got == Array(payload.utf8))
    }
}
