#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import SocketServerTLS
import Testing
import TestSupport

/// A Python `ssl` client: `python3 -c CLIENT CA PORT MODE`. Sends `hello`
/// and `info`, prints the two answers, then ends as MODE says: `unwrap`
/// (close_notify both ways), `abrupt` (closes without close_notify),
/// `quit` (asks the server to close, and prints whether its close_notify
/// came: `eof b''`, or `ragged ...` if the server just closed).
let pythonClient = """
    import socket, ssl, sys
    ca, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(['myproto/1', 'http/1.1'])
    t = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10),
                        server_hostname='localhost', suppress_ragged_eofs=False)
    print('client', t.version(), t.selected_alpn_protocol(), flush=True)
    t.sendall(b'hello\\ninfo\\n')
    data = b''
    while data.count(b'\\n') < 2:
        more = t.recv(4096)
        if not more: break
        data += more
    sys.stdout.write(data.decode())
    if mode == 'unwrap':
        t.unwrap().close()
        print('unwrapped')
    elif mode == 'abrupt':
        t.close()
    elif mode == 'quit':
        t.sendall(b'quit\\n')
        try:
            print('eof', repr(t.recv(10)))
        except ssl.SSLEOFError as e:
            print('ragged', e)
    sys.stdout.flush()
    """

@Suite("TLS with real peers: Python ssl and openssl s_client", .serialized)
struct TLSPeerTests {
    let certs: Certificates
    init() throws { certs = try Certificates.get() }

    func serve(alpn: [String] = ["myproto/1"]) throws -> (TLSTestServer, TLSStage) {
        try TLSTestServer.start(certs.serverContext { $0.alpnProtocols = alpn })
    }

    @Test func pythonClientGetsTLS13WithALPNAndSNI() throws {
        let (server, _) = try serve()
        defer { server.stop() }
        let (status, out, err) = try runToEnd(["python3", "-c", pythonClient, certs.path("ca.pem"), "\(server.port)", "quit"],
                                         directory: certs.directory)
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("client TLSv1.3 myproto/1"), "\(out)")
        #expect(out.contains("hello\n"))
        #expect(out.contains("version=TLSv1.3 cipher=TLS_"), "\(out)")
        #expect(out.contains("alpn=myproto/1 sni=localhost peercert=none"), "\(out)")
        // The server closed with close_notify: a clean end of file, not a ragged one.
        #expect(out.contains("eof b''"), "\(out)")
    }

    @Test func pythonUnwrapIsACleanEndOfFile() throws {
        let (server, _) = try serve()
        defer { server.stop() }
        let (status, out, err) = try runToEnd(["python3", "-c", pythonClient, certs.path("ca.pem"), "\(server.port)", "unwrap"],
                                         directory: certs.directory)
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("unwrapped"), "\(out)")
        #expect(eventually { server.events.withLock { $0 } == ["clean end of file"] })
        #expect(server.errorTexts.isEmpty)
    }

    @Test func abruptCloseIsAQuietPeerGone() throws {
        let (server, _) = try serve()
        defer { server.stop() }
        let (status, _, err) = try runToEnd(["python3", "-c", pythonClient, certs.path("ca.pem"), "\(server.port)", "abrupt"],
                                       directory: certs.directory)
        #expect(status == 0, "stderr: \(err)")
        #expect(eventually { server.errors.withLock { $0.count } == 1 })
        let error = server.errors.withLock { $0.first }
        #expect((error as? SocketError)?.isPeerGone == true, "\(String(describing: error))")
        #expect(server.events.withLock { $0 }.isEmpty)
    }

    @Test(arguments: [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
    func opensslClientNegotiates(_ flag: String, _ version: String) throws {
        let (server, _) = try serve()
        defer { server.stop() }
        let (status, out, err) = try runToEnd(["openssl", "s_client", "-connect", "127.0.0.1:\(server.port)",
                                          "-servername", "localhost", "-CAfile", certs.path("ca.pem"),
                                          "-verify_return_error", "-alpn", "myproto/1", flag, "-ign_eof"],
                                         input: "info\nquit\n", directory: certs.directory)
        #expect(status == 0, "stderr: \(err)")
        #expect(out.contains("version=\(version) "), "\(out)")
        #expect(out.contains("alpn=myproto/1 sni=localhost"), "\(out)")
        #expect(out.contains("Verify return code: 0 (ok)"), "\(out)")
    }

    @Test func tls11IsRefused() throws {
        let (server, _) = try serve()
        defer { server.stop() }
        let (status, out, _) = try runToEnd(["openssl", "s_client", "-connect", "127.0.0.1:\(server.port)",
                                        "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-ign_eof"],
                                       input: "info\n", directory: certs.directory)
        #expect(status != 0)
        #expect(!out.contains("version="))
        #expect(eventually { server.errors.withLock { $0.count } == 1 })
        let error = server.errors.withLock { $0.first }
        #expect((error as? TLSError)?.kind == .handshake, "\(String(describing: error))")
        // TLSError has no code finer than its kind: OpenSSL's reason says which handshake failure.
        #expect((error as? TLSError)?.reason.contains("protocol") == true, "\(String(describing: error))")
    }

    @Test func minimumVersion13RefusesTLS12() throws {
        let (server, _) = try TLSTestServer.start(certs.serverContext { $0.minimumVersion = .v1_3 })
        defer { server.stop() }
        let (status, out, _) = try runToEnd(["openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_2", "-ign_eof"],
                                       input: "info\n", directory: certs.directory)
        #expect(status != 0)
        #expect(!out.contains("version="))
        // TLS 1.3 still works.
        let c = try TestClient(port: server.port, context: certs.clientContext())
        #expect(try c.ask("info")?.hasPrefix("version=TLSv1.3") == true)
    }

    @Test func plainTextClientIsClosedWhileOthersAreServed() throws {
        let (server, _) = try serve()
        defer { server.stop() }
        let plain = try Socket.createConnection(host: "127.0.0.1", port: server.port, timeout: 10)
        defer { plain.close() }
        let tls = try TestClient(port: server.port, context: certs.clientContext())  // served meanwhile
        try plain.sendAll(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        // The server closes it (an alert, then end of file), without a reply.
        var received: [UInt8] = []
        while let bytes = try? plain.recv(4096), !bytes.isEmpty { received += bytes }
        #expect(!String(decoding: received, as: UTF8.self).contains("HTTP"))
        #expect(try tls.ask("hello") == "hello")
        #expect(eventually { server.errors.withLock { $0.count } == 1 })
        let error = server.errors.withLock { $0.first }
        #expect((error as? TLSError)?.kind == .handshake, "\(String(describing: error))")
        // One that connects and closes at once (a port scan, a health check): a quiet peer-gone.
        try Socket.createConnection(host: "127.0.0.1", port: server.port, timeout: 10).close()
        #expect(eventually { server.errors.withLock { $0.count } == 2 })
        let gone = server.errors.withLock { $0.last }
        #expect((gone as? SocketError)?.isPeerGone == true, "\(String(describing: gone))")
    }

    @Test func opensslServerIsVerifiedByOurClient() throws {
        // A real server: openssl s_server -www answers `GET /` with a status page.
        let port = try freePort()
        let server = try TestProcess(["openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certs.path("server.pem"),
                               "-key", certs.path("server.key"), "-www", "-naccept", "2"], directory: certs.directory)
        defer { server.kill() }
        #expect(server.waitForOutput("ACCEPT"), "\(server.stderr)")
        let good = try TestClient(port: port, context: certs.clientContext())
        try good.writer.write("GET / HTTP/1.0\r\n\r\n")
        try good.writer.flush()
        let page = String(decoding: try good.reader.readAll(), as: UTF8.self)
        #expect(page.contains("HTTP/1.0 200 ok"), "\(page)")
        #expect(good.stream.session.peerCertificate == certs.der("server"))
        good.stream.close()  // s_server serves one connection at a time
        // Trusting another CA: a clear error, naming the certificate.
        #expect {
            _ = try TestClient(port: port, context: certs.clientContext(ca: "otherca.pem"))
        } throws: { error in
            // The kind, then OpenSSL's verify result (TLSError has no finer code).
            guard let e = error as? TLSError, e.isCertificateError else { return false }
            return e.reason.contains("unable to get local issuer certificate")
        }
    }
}
