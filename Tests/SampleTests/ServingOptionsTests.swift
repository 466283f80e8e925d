// The serving options every sample server shares (TLS, limits, address
// filters, the PROXY protocol, systemd socket activation, logfmt) and the
// clients' TLS options, end to end: the built executables, real peers.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif
import SocketServer
import Testing
import TestSupport

let tcpServers = ["timestamp-server", "chat-server", "echo-server", "file-server"]
let proxyV1 = "PROXY TCP4 203.0.113.7 127.0.0.1 40000 21567\r\n"

/// Stops a server with SIGTERM and waits for its exit: its stderr is then complete.
func stopped(_ server: ServerProcess) -> String {
    server.process.signal(SIGTERM)
    #expect(server.process.exitCode() == 0)
    return server.stderr
}

@Suite("Serving options: usage and certificate errors")
struct ServingOptionsUsageTests {
    static let usageCases: [(String, [String])] = {
        var cases: [(String, [String])] = [
            ("echo-server", ["--tls-cert", "/nonexistent/cert.pem"]),
            ("echo-server", ["--tls-key", "/nonexistent/key.pem"]),
            ("timestamp-server", ["--udp", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"]),
            ("timestamp-server", ["--udp", "--proxy-protocol", "127.0.0.1"]),
            ("echo-server", ["--unix", "/tmp/sample-tests-never.sock", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"]),
            ("echo-server", ["--unix", "/tmp/sample-tests-never.sock", "--proxy-protocol", "127.0.0.1"]),
            ("echo-server", ["--allow", "127.0.0.300/8"]),
            ("echo-server", ["--deny", "10.0.0.0/33"]),
            ("echo-server", ["--allow", "127.0.0.0/8,"]),
            ("echo-server", ["--proxy-protocol", "not-a-network"]),
            ("echo-server", ["--max-per-client", "0"]),
            ("echo-server", ["--max-connections", "-1"]),
            ("echo-server", ["--log-format"]),
        ]
        for server in tcpServers {
            cases.append((server, ["--max-connections", "0"]))
            cases.append((server, ["--log-format", "json"]))
            cases.append((server, ["--tls-cert", "/nonexistent/cert.pem"]))
            cases.append((server, ["--allow", "1.2.3.4/99"]))
        }
        return cases
    }()

    @Test(arguments: usageCases.indices)
    func usageError(_ index: Int) throws {
        let (server, options) = Self.usageCases[index]
        let (code, out, err) = try runProgram(server, ["--port", "0"] + options)
        #expect(code == 2, "\(server) \(options): \(err)")
        #expect(out.isEmpty, "\(server) \(options)")
        #expect(err.hasPrefix("error: ") && err.contains("usage: \(server)"), "\(server) \(options): \(err)")
        #expect(!fileExists("/tmp/sample-tests-never.sock"))
    }

    @Test(.enabled(if: havePrograms("openssl")), arguments: tcpServers)
    func certificateThatCannotBeLoaded(_ server: String) throws {
        let certs = try SampleCertificates.get()
        for (cert, key) in [(certs.path("bad.pem"), certs.path("server.key")),
                            (certs.path("server.pem"), certs.path("bad.pem")),
                            (certs.path("missing.pem"), certs.path("server.key")),
                            (certs.path("server.pem"), certs.path("ca.key"))] {  // a key of another certificate
            let (code, out, err) = try runProgram(server, ["--port", "0", "--tls-cert", cert, "--tls-key", key])
            #expect(code == 1, "\(server) \(cert) \(key): \(err)")
            #expect(out.isEmpty, "\(server): printed \(out)")
            let lines = err.split(separator: "\n")
            #expect(lines.count == 1 && err.hasPrefix("error: cannot load TLS certificate: ") && err.count > 40, "\(server): \(err)")
        }
    }

    @Test func systemdWithoutASocket() throws {
        for server in tcpServers {
            let (code, out, err) = try runProgram(server, ["--systemd"])
            #expect(code == 1, "\(server): \(err)")
            #expect(out.isEmpty)
            #expect(err == "error: no socket passed by systemd (LISTEN_FDS)\n", "\(server)")
        }
    }
}

@Suite("Serving options: TLS")
struct ServingOptionsTLSTests {
    @Test(.enabled(if: havePrograms("openssl", "python3")))
    func echoOverTLSWithPython() throws {
        let certs = try SampleCertificates.get()
        let server = try ServerProcess("echo-server", certs.serverOptions + ["--log-format", "logfmt"])
        #expect(server.listeningLine == "listening on 127.0.0.1:\(server.port)")
        let (code, out, err) = try runProgram("python3", ["-c", pythonTLSClient, certs.ca, "\(server.port)", "hello over tls"])
        #expect(code == 0, "\(err)")
        #expect(out == "TLSv1.3\nhello over tls\n", "\(err)")
        #expect(eventually { !logRecords(server.stderr, event: "connection.closed").isEmpty })
        let records = logRecords(stopped(server), event: "connection.closed")
        #expect(records.count == 1)
        if let r = records.first {
            #expect(r["tls"] == "TLSv1.3")
            #expect(r["in"] == "15" && r["out"] == "15", "\(r)")
            #expect(r["outcome"] == "completed", "\(r)")
        }
    }

    /// A PROXY header comes before the TLS ClientHello.
    @Test(.enabled(if: havePrograms("openssl", "python3")))
    func tlsBehindAProxy() throws {
        let certs = try SampleCertificates.get()
        let server = try ServerProcess("echo-server", certs.serverOptions + ["--proxy-protocol", "127.0.0.1", "--log-format", "logfmt"])
        let (code, out, err) = try runProgram("python3", ["-c", pythonTLSClient, certs.ca, "\(server.port)", "proxied", proxyV1])
        #expect(code == 0 && out == "TLSv1.3\nproxied\n", "\(err)")
        #expect(eventually { !logRecords(server.stderr, event: "connection.closed").isEmpty })
        let log = stopped(server)
        let r = logRecords(log, event: "connection.closed").first ?? [:]
        #expect(r["peer"] == "203.0.113.7:40000" && r["via"]?.hasPrefix("127.0.0.1:") == true && r["tls"] == "TLSv1.3"
                && r["out"] == "8" && r["outcome"] == "completed", "\(log)")
        #expect(r["in"] == "8", "\(log)")  // over TLS the header is not counted (the TLS stream has its own reader)
    }

    @Test(.enabled(if: havePrograms("openssl")), arguments: serverModes)
    func timestampClientWithCA(_ mode: String) throws {
        let certs = try SampleCertificates.get()
        let server = try ServerProcess("timestamp-server", certs.serverOptions + ["--mode", mode])
        #expect(server.listeningLine == "listening on 127.0.0.1:\(server.port)")
        for extra in [[], ["--server-name", "localhost"], ["--host", "localhost"]] {
            let (code, out, err) = try runProgram("timestamp-client", ["--port", "\(server.port)", "--ca", certs.ca] + extra,
                                                  stdin: .bytes(Array("hello\nagain\n".utf8)))
            #expect(code == 0, "\(extra): \(err)")
            let lines = out.split(separator: "\n")
            #expect(lines.count == 2 && lines[0].hasPrefix("[") && lines[0].hasSuffix("] hello") && lines[1].hasSuffix("] again"),
                    "\(extra): \(out)")
        }
        #expect(eventually { server.stderr.split(separator: "\n").filter { $0.hasPrefix("connected from 127.0.0.1:") }.count == 3 }, "\(server.stderr)")
    }

    @Test(.enabled(if: havePrograms("openssl")))
    func clientWithoutTheCAFails() throws {
        let certs = try SampleCertificates.get()
        let timestamp = try ServerProcess("timestamp-server", certs.serverOptions)
        let chat = try ServerProcess("chat-server", certs.serverOptions)
        let file = try ServerProcess("file-server", certs.serverOptions + ["--dir", "/tmp"])
        let runs: [(String, ServerProcess, [String])] = [
            ("timestamp-client", timestamp, ["--tls"]),
            ("timestamp-client", timestamp, ["--ca", certs.path("server.pem")]),  // not the issuer
            ("timestamp-client", timestamp, ["--ca", certs.ca, "--server-name", "other.test"]),  // wrong name
            ("chat-client", chat, ["--tls"]),
            ("file-client", file, ["--tls", "list"]),
        ]
        for (client, server, options) in runs {
            let (code, out, err) = try runProgram(client, ["--port", "\(server.port)"] + options, stdin: .bytes(Array("hello\n".utf8)))
            #expect(code == 1, "\(client) \(options): \(err)")
            #expect(out.isEmpty, "\(client) \(options): \(out)")
            #expect(err.hasPrefix("error: cannot connect to 127.0.0.1:\(server.port): ") && err.contains("certificate")
                    && err.split(separator: "\n").count == 1, "\(client) \(options): \(err)")
        }
        // Nothing was served: no handler ran.
        #expect(!stopped(timestamp).contains("connected from"))
        #expect(!stopped(chat).contains("joined"))
    }

    @Test(.enabled(if: havePrograms("openssl", "python3")))
    func plainTextClientsAreClosedAndDelayNobody() throws {
        let certs = try SampleCertificates.get()
        let server = try ServerProcess("echo-server", certs.serverOptions + ["--mode", "threading"])
        // One that says nothing at all: closed after the 10-second handshake limit.
        let silent = try server.connect()
        try silent.socket.setTimeout(30)
        // One that speaks plain text: closed, its line never echoed.
        let plain = try server.connect()
        try plain.send("hello in plain text\n")
        #expect(plain.closedWithNothingReceived())
        // Neither delays a TLS client, served while the silent one is still open.
        let (code, out, err) = try runProgram("python3", ["-c", pythonTLSClient, certs.ca, "\(server.port)", "meanwhile"])
        #expect(code == 0 && out == "TLSv1.3\nmeanwhile\n", "\(err)")
        #expect(silent.closedWithNothingReceived())
        // An old protocol version is refused: a TLS 1.1 ClientHello gets no session.
        let old = """
            import socket, ssl, sys
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ssl.TLSVersion.TLSv1; ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            try:
                ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)).sendall(b"x\\n")
                print("connected")
            except (ssl.SSLError, OSError) as e:
                print("refused", e)
            """
        let (_, oldOut, oldErr) = try runProgram("python3", ["-c", old, "\(server.port)"])
        #expect(oldOut.hasPrefix("refused"), "\(oldOut) \(oldErr)")
        let (code2, out2, _) = try runProgram("python3", ["-c", pythonTLSClient, certs.ca, "\(server.port)", "after"])
        #expect(code2 == 0 && out2 == "TLSv1.3\nafter\n")
    }

    @Test(.enabled(if: havePrograms("openssl")))
    func fileServerOverTLS() throws {
        let certs = try SampleCertificates.get()
        let store = try TempDir(), local = try TempDir()
        let server = try ServerProcess("file-server", certs.serverOptions + ["--dir", store.path])
        var bytes = [UInt8](repeating: 0, count: 700_001)
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in bytes.indices {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: seed >> 33)
        }
        try writeFile(local.file("data.bin"), bytes)
        let tls = ["--port", "\(server.port)", "--ca", certs.ca]
        let put = try runProgram("file-client", tls + ["put", local.file("data.bin"), "blob"])
        #expect(put.code == 0, "\(put.stderr)")
        #expect(readFile(store.file("blob")) == bytes)
        let list = try runProgram("file-client", tls + ["list"])
        #expect(list.code == 0 && list.stdout == "blob 700001\n", "\(list)")
        let get = try runProgram("file-client", tls + ["get", "blob", local.file("back.bin")])
        #expect(get.code == 0, "\(get.stderr)")
        #expect(readFile(local.file("back.bin")) == bytes)
        let missing = try runProgram("file-client", tls + ["get", "nothing", local.file("nothing")])
        #expect(missing.code == 1 && missing.stderr == "error: not found\n")
    }

    @Test(.enabled(if: havePrograms("openssl")))
    func chatClientWithCA() throws {
        let certs = try SampleCertificates.get()
        let server = try ServerProcess("chat-server", certs.serverOptions)
        let watcher = try Proc("chat-client", ["--port", "\(server.port)", "--ca", certs.ca, "--name", "watcher"], stdin: .pipe)
        #expect(watcher.readLine()?.hasPrefix("* welcome, you are 127.0.0.1:") == true)
        #expect(watcher.readLine() == "* you are now watcher")
        let alice = try Proc("chat-client", ["--port", "\(server.port)", "--ca", certs.ca, "--name", "alice"], stdin: .pipe)
        #expect(alice.readLine()?.hasPrefix("* welcome, you are 127.0.0.1:") == true)
        #expect(alice.readLine() == "* you are now alice")
        alice.writeStdin("hello over tls\n")
        #expect(watcher.readLine(where: { $0.hasPrefix("alice") }) == "alice: hello over tls")
        alice.closeStdin()
        #expect(alice.exitCode() == 0)
        #expect(watcher.readLine(where: { $0.hasSuffix("left") }) == "* alice left")
        watcher.closeStdin()
        #expect(watcher.exitCode() == 0)
    }
}

extension Proc {
    /// The first of the next stdout lines that satisfies `predicate` (within 10 s each).
    func readLine(where predicate: (String) -> Bool) -> String? {
        for _ in 0..<100 {
            guard let line = readLine() else { return nil }
            if predicate(line) { return line }
        }
        return nil
    }
}

@Suite("Serving options: limits and address filters")
struct ServingOptionsLimitTests {
    @Test func maxConnectionsWaitsAndLosesNothing() throws {
        let server = try ServerProcess("echo-server", ["--max-connections", "2"])
        let a = try server.connect(), b = try server.connect()
        for (c, text) in [(a, "a"), (b, "b")] {
            try c.send(text + "\n")
            #expect(try c.line() == text)
        }
        let c = try server.connect()  // the kernel's backlog holds it
        try c.send("c\n")
        #expect(!c.readable(within: 1))  // deadline: a bounded poll that must time out while two are open
        a.socket.close()
        #expect(try c.line() == "c")  // served once one closed
        try b.send("b again\n")
        #expect(try b.line() == "b again")
        #expect(!stopped(server).contains("refused"))
    }

    @Test func maxPerClient() throws {
        let server = try ServerProcess("echo-server", ["--max-per-client", "1"])
        let first = try server.connect()
        try first.send("one\n")
        #expect(try first.line() == "one")
        let second = try server.connect()
        let secondPort = second.localPort
        #expect(second.closedWithNothingReceived())
        #expect(eventually { server.stderr.contains("refused 127.0.0.1:\(secondPort): too many connections\n") }, "\(server.stderr)")
        let other = try connect(from: "127.0.0.2", port: server.port)
        try other.send("from two\n")
        #expect(try other.line() == "from two")
        first.socket.close()
        // Once the first has ended, 127.0.0.1 may connect again.
        #expect(eventually {
            guard let again = try? server.connect(), (try? again.send("again\n")) != nil else { return false }
            return (try? again.line()) == "again"
        })
    }

    @Test func allowAndDeny() throws {
        let allow = try ServerProcess("echo-server", ["--allow", "127.0.0.2/32"])
        let refused = try allow.connect()
        let refusedPort = refused.localPort
        #expect(refused.closedWithNothingReceived())
        #expect(eventually { allow.stderr.contains("refused 127.0.0.1:\(refusedPort)\n") }, "\(allow.stderr)")
        let allowed = try connect(from: "127.0.0.2", port: allow.port)
        try allowed.send("allowed\n")
        #expect(try allowed.line() == "allowed")

        // Deny wins over allow; a bare address is one host.
        let deny = try ServerProcess("echo-server", ["--allow", "127.0.0.0/8", "--deny", "10.0.0.0/8,127.0.0.2"])
        let denied = try connect(from: "127.0.0.2", port: deny.port)
        let deniedPort = denied.localPort
        try denied.send("denied\n")
        #expect(denied.closedWithNothingReceived())
        #expect(eventually { deny.stderr.contains("refused 127.0.0.2:\(deniedPort)\n") }, "\(deny.stderr)")
        let served = try deny.connect()
        try served.send("served\n")
        #expect(try served.line() == "served")
    }

    /// A server on `::` sees IPv4 clients as `::ffff:a.b.c.d`, matched as IPv4.
    @Test func ipv4MappedClientsMatchIPv4Networks() throws {
        let server: ServerProcess
        do { server = try ServerProcess("echo-server", ["--host", "::", "--allow", "127.0.0.2/32"]) } catch {
            Issue.record("cannot listen on [::] here: \(error)")
            return
        }
        #expect(server.listeningLine == "listening on [::]:\(server.port)")
        let allowed = try connect(from: "127.0.0.2", port: server.port)
        try allowed.send("mapped\n")
        #expect(try allowed.line() == "mapped")
        let refused = try server.connect()
        #expect(refused.closedWithNothingReceived())
        #expect(eventually { server.stderr.contains("refused ") }, "\(server.stderr)")
    }

    @Test func chatMaxClientsStillRefusesWithMaxConnections() throws {
        let server = try ServerProcess("chat-server", ["--max-clients", "1", "--max-connections", "5"])
        let one = try server.connect()
        #expect(try one.line()?.hasPrefix("* welcome") == true)
        let two = try server.connect()
        #expect(try two.line() == "* error: server full")
        #expect(two.isClosedByServer())
    }
}

@Suite("Serving options: PROXY protocol")
struct ServingOptionsProxyTests {
    @Test func v1HeaderNamesTheClientInConnectedFrom() throws {
        let server = try ServerProcess("timestamp-server", ["--proxy-protocol", "127.0.0.1"])
        let c = try server.connect()
        try c.send(proxyV1 + "through a proxy\n")
        #expect(try c.line()?.hasSuffix("] through a proxy") == true)
        #expect(eventually { server.stderr.contains("connected from 203.0.113.7:40000\n") }, "\(server.stderr)")
    }

    @Test func v2HeaderNamesTheClientInChat() throws {
        let server = try ServerProcess("chat-server", ["--proxy-protocol", "127.0.0.0/8"])
        let header = ProxyHeader(source: try SocketAddress(ipv4: "203.0.113.8", port: 40001),
                                 destination: try SocketAddress(ipv4: "127.0.0.1", port: server.port))
        let v1 = try server.connect()
        try v1.send(proxyV1)
        #expect(try v1.line() == "* welcome, you are 203.0.113.7:40000")
        let v2 = try server.connect()
        try v2.send(try header.encode(.v2))
        #expect(try v2.line() == "* welcome, you are 203.0.113.8:40001")
        #expect(try v1.line() == "* 203.0.113.8:40001 joined")
        try v2.send("from behind the proxy\n")
        #expect(try v1.line() == "203.0.113.8:40001: from behind the proxy")
        try v1.send("/who\n")
        #expect(try v1.line() == "* online: 203.0.113.7:40000, 203.0.113.8:40001")
    }

    /// A v2 LOCAL header (a health check) then close: nothing in the text
    /// log; in logfmt, its one `connection.closed` line, at debug level.
    @Test(arguments: ["timestamp-server", "echo-server", "chat-server", "file-server"], [false, true])
    func healthCheckLogsNothing(_ name: String, logfmt: Bool) throws {
        let dir = try TempDir()
        let server = try ServerProcess(name, ["--proxy-protocol", "127.0.0.1"] + (logfmt ? ["--log-format", "logfmt"] : [])
                                       + (name == "file-server" ? ["--dir", dir.path] : []))
        let check = try server.connect()
        let checkPeer = "127.0.0.1:\(check.localPort)"
        try check.send(ProxyHeader.local.encode(.v2))
        check.socket.close()
        // A proxied connection after it: accepted after the check (one
        // accepting thread, the backlog in order), so the check is not lost
        // in the backlog when the server stops.
        let marker = try server.connect()
        try marker.send("PROXY TCP4 203.0.113.9 127.0.0.1 1234 80\r\n")
        switch name {
        case "chat-server": #expect(try marker.line() == "* welcome, you are 203.0.113.9:1234")
        case "file-server":
            try marker.send("LIST\n")
            #expect(try marker.line() == "OK 0")
        default:
            try marker.send("marker\n")
            #expect(try marker.line()?.hasSuffix("marker") == true)
        }
        marker.socket.close()
        let log = stopped(server)  // the graceful stop lets the check finish first
        let lines = log.split(separator: "\n")
        if logfmt {
            let closed = logRecords(log, event: "connection.closed")
            #expect(closed.count == 2, "\(name): \(log)")
            let checks = closed.filter { $0["peer"] == checkPeer }
            #expect(checks.count == 1 && checks.first?["level"] == "debug", "\(name): \(log)")
            // A LOCAL connection has no proxy in front of another client,
            // and its header is not counted as data.
            #expect(checks.first?["via"] == nil && checks.first?["in"] == "0", "\(name): \(log)")
            #expect(lines.filter { $0.contains(checkPeer) }.count == 1, "\(name): \(log)")
        } else {
            #expect(lines.allSatisfy { $0.contains("203.0.113.9:1234") }, "\(name): \(log)")
        }
    }

    /// A LOCAL connection that goes on is served with its real address.
    @Test func healthCheckThatGoesOnIsServed() throws {
        let server = try ServerProcess("timestamp-server", ["--proxy-protocol", "127.0.0.1"])
        let c = try server.connect()
        try c.send(ProxyHeader.local.encode(.v2) + Array("local\n".utf8))
        #expect(try c.line()?.hasSuffix("] local") == true)
        #expect(eventually { server.stderr.contains("connected from 127.0.0.1:\(c.localPort)\n") }, "\(server.stderr)")
    }

    @Test func trustedPeerWithGarbageIsNotServed() throws {
        let server = try ServerProcess("timestamp-server", ["--proxy-protocol", "127.0.0.1"])
        for garbage in ["hello\n", "PROXY TCP4 nonsense\r\n", "PROXY TCP4 203.0.113.7 127.0.0.1 99999 1\r\n"] {
            let c = try server.connect()
            try c.send(garbage)
            #expect(c.closedWithNothingReceived(), "\(garbage)")
        }
        let log = stopped(server)
        #expect(!log.contains("connected from"), "\(log)")
    }

    @Test func untrustedPeerSendsOrdinaryData() throws {
        let server = try ServerProcess("echo-server", ["--proxy-protocol", "10.0.0.0/8"])
        let c = try server.connect()
        try c.send(proxyV1)
        #expect(try c.rawLine() == Array(proxyV1.utf8))
        let ts = try ServerProcess("timestamp-server", ["--proxy-protocol", "10.0.0.0/8"])
        let d = try ts.connect()
        try d.send(proxyV1)
        #expect(try d.line()?.hasSuffix("] " + proxyV1.dropLast()) == true)  // "\r\n" is one Character
        #expect(eventually { ts.stderr.contains("connected from 127.0.0.1:\(d.localPort)\n") }, "\(ts.stderr)")
    }

    /// The address filter and the per-client cap apply to the client a header names.
    @Test func filtersApplyToTheProxiedClient() throws {
        let server = try ServerProcess("echo-server", ["--proxy-protocol", "127.0.0.1", "--deny", "203.0.113.0/24",
                                                       "--max-per-client", "1"])
        let denied = try server.connect()
        try denied.send(proxyV1 + "x\n")
        #expect(denied.closedWithNothingReceived())
        #expect(eventually { server.stderr.contains("refused 203.0.113.7:40000") }, "\(server.stderr)")
        let one = try server.connect(), two = try server.connect()
        try one.send("PROXY TCP4 198.51.100.1 127.0.0.1 5000 7007\r\nfirst\n")
        #expect(try one.line() == "first")
        try two.send("PROXY TCP4 198.51.100.1 127.0.0.1 5001 7007\r\nsecond\n")
        #expect(two.closedWithNothingReceived())
        #expect(eventually { server.stderr.contains("refused 198.51.100.1:5001: too many connections") }, "\(server.stderr)")
    }
}

@Suite("Serving options: systemd and logfmt")
struct ServingOptionsLogTests {
    @Test(.enabled(if: havePrograms("systemd-socket-activate")))
    func echoServerUnderSystemdSocketActivate() throws {
        var lastError = ""
        for _ in 0..<3 {  // the free port may be taken between our check and its bind: try another
            let port = try freePort()
            let activator = try Proc(programPath("systemd-socket-activate")!,
                                     ["-l", "127.0.0.1:\(port)", binDirectory + "/echo-server", "--systemd", "--port", "1"])
            // It says `Listening on 127.0.0.1:PORT as 3.` on stderr, then
            // starts the server at the first connection.
            guard eventually(10, { activator.stderr.contains("Listening on") || activator.wait(timeout: 0) != nil }),
                  let c = try? Client(port: port) else {
                lastError = "cannot connect: \(activator.stderr)"
                continue
            }
            try c.send("activated\n")
            #expect(try c.line() == "activated")
            #expect(activator.readLine() == "listening on 127.0.0.1:\(port)", "\(activator.stderr)")
            let again = try Client(port: port)
            try again.send("again\n")
            #expect(try again.line() == "again")
            return
        }
        Issue.record("no run came up: \(lastError)")
    }

    @Test func everyLineIsLogfmtAndEachConnectionEndsOnce() throws {
        let server = try ServerProcess("echo-server", ["--log-format", "logfmt"])
        let a = try server.connect()
        let aPort = a.localPort
        try a.send("hello\n")
        #expect(try a.line() == "hello")
        try a.send("bye\r\n")
        #expect(try a.line() == "bye\r")
        a.socket.close()
        let b = try server.connect()
        let bPort = b.localPort
        try b.send("abc")  // no LF: the server is still reading when the reset comes
        #expect(!b.readable(within: 0.3))  // deadline: a bounded poll that must time out (nothing to echo yet)
        try b.reset()
        let c = try server.connect()
        try c.send("no newline at the end")
        try c.socket.shutdown(.write)
        #expect(try c.rawLine() == Array("no newline at the end".utf8))
        #expect(eventually { logRecords(server.stderr, event: "connection.closed").count == 3 }, "\(server.stderr)")
        let log = stopped(server)
        for line in log.split(separator: "\n") {
            guard let pairs = parseLogfmt(String(line)) else {
                Issue.record("not logfmt: \(line)")
                continue
            }
            #expect(pairs.count >= 3 && pairs[0].key == "ts" && pairs[1].key == "level" && pairs[2].key == "event", "\(line)")
            #expect(isRFC3339UTC(pairs[0].value), "\(line)")
        }
        let closed = logRecords(log, event: "connection.closed")
        #expect(closed.count == 3, "\(log)")
        let byPeer = Dictionary(closed.map { ($0["peer"] ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let ra = byPeer["127.0.0.1:\(aPort)"], rb = byPeer["127.0.0.1:\(bPort)"], rc = byPeer["127.0.0.1:\(c.localPort)"]
        #expect(ra?["in"] == "11" && ra?["out"] == "11" && ra?["outcome"] == "completed", "\(log)")
        #expect(rb?["in"] == "3" && rb?["out"] == "0" && rb?["outcome"] == "peer_gone", "\(log)")
        #expect(rc?["in"] == "21" && rc?["out"] == "21" && rc?["outcome"] == "completed", "\(log)")
        for r in closed {
            #expect(r["duration_ms"].flatMap { Int($0) } != nil && r["via"] == nil && r["tls"] == nil, "\(r)")
        }
    }

    @Test func logfmtOfAProxiedConnection() throws {
        let server = try ServerProcess("timestamp-server", ["--proxy-protocol", "127.0.0.1", "--log-format", "logfmt"])
        let c = try server.connect()
        try c.send(proxyV1 + "ping\n")
        let reply = try c.rawLine() ?? []
        #expect(reply.text.hasSuffix("] ping\n"))
        let proxyPeer = "127.0.0.1:\(c.localPort)"
        c.socket.close()
        #expect(eventually { !logRecords(server.stderr, event: "connection.closed").isEmpty })
        let log = stopped(server)
        let closed = logRecords(log, event: "connection.closed")
        #expect(closed.count == 1)
        let r = closed.first ?? [:]
        #expect(r["peer"] == "203.0.113.7:40000" && r["via"] == proxyPeer, "\(log)")
        #expect(r["out"] == "\(reply.count)" && r["outcome"] == "completed", "\(log)")
        // The PROXY header is not counted in `in=`.
        #expect(r["in"] == "5", "\(log)")
        // The sample's own line is logfmt too, with the proxied client.
        let opened = log.split(separator: "\n").first.map(String.init) ?? ""
        #expect(parseLogfmt(opened) != nil && opened.contains("peer=203.0.113.7:40000"), "\(log)")
        for line in log.split(separator: "\n") {
            #expect(parseLogfmt(String(line)).map { $0.first?.key == "ts" && isRFC3339UTC($0[0].value) } == true, "\(line)")
        }
    }

    @Test func logfmtOfARefusal() throws {
        let server = try ServerProcess("echo-server", ["--allow", "10.0.0.0/8", "--log-format", "logfmt"])
        let c = try server.connect()
        #expect(c.closedWithNothingReceived())
        #expect(eventually { !logRecords(server.stderr, event: "connection.closed").isEmpty })
        let log = stopped(server)
        let closed = logRecords(log, event: "connection.closed")
        #expect(closed.count == 1 && closed.first?["outcome"] == "refused" && closed.first?["peer"] == "127.0.0.1:\(c.localPort)",
                "\(log)")
        for line in log.split(separator: "\n") {
            #expect(parseLogfmt(String(line)) != nil, "\(line)")
        }
    }
}

@Suite("Serving options: logfmt byte counts of chat and file transfers")
struct ServingOptionsByteCountTests {
    /// chat-server sends through its own writer thread (not `wfile`), and
    /// file-server sends downloads with sendfile(2): the library counts
    /// only `wfile` in `out=` and offers no way to count the rest.
    @Test func outCountsWhatWasSent() throws {
        let chat = try ServerProcess("chat-server", ["--log-format", "logfmt"])
        let c = try chat.connect()
        let welcome = try c.rawLine() ?? []
        #expect(welcome.text.hasPrefix("* welcome"))
        try c.send("/quit\n")
        let bye = try c.rawLine() ?? []
        #expect(bye.text == "* bye\n")
        #expect(c.isClosedByServer())
        #expect(eventually { !logRecords(chat.stderr, event: "connection.closed").isEmpty })
        let chatClosed = logRecords(stopped(chat), event: "connection.closed").first ?? [:]
        #expect(chatClosed["in"] == "6")
        #expect(chatClosed["out"] == "\(welcome.count + bye.count)", "\(chatClosed)")

        let dir = try TempDir()
        try writeFile(dir.file("ten"), Array("0123456789".utf8))
        let files = try ServerProcess("file-server", ["--dir", dir.path, "--log-format", "logfmt"])
        let f = try files.connect()
        try f.send("GET ten\n")
        #expect(try f.line() == "OK 10")
        #expect(try f.read(10) == Array("0123456789".utf8))
        f.socket.close()
        #expect(eventually { !logRecords(files.stderr, event: "connection.closed").isEmpty })
        let fileClosed = logRecords(stopped(files), event: "connection.closed").first ?? [:]
        #expect(fileClosed["in"] == "8" && fileClosed["outcome"] == "completed", "\(fileClosed)")
        #expect(fileClosed["out"] == "16", "\(fileClosed)")
    }
}
