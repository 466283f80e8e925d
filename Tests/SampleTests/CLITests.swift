// The command-line conventions every sample shares (Samples/README.md).
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Testing
import TestSupport

let allSamples = ["timestamp-server", "timestamp-client", "chat-server", "chat-client",
                  "echo-server", "file-server", "file-client"]
let servers = ["timestamp-server", "chat-server", "echo-server", "file-server"]

@Suite struct CommandLineTests {
    @Test(arguments: allSamples)
    func helpGoesToStdout(_ sample: String) throws {
        for flag in ["-h", "--help"] {
            let p = try Proc(sample, [flag])
            #expect(p.exitCode() == 0)
            #expect(p.stdout().hasPrefix("usage: \(sample)"))
            #expect(p.stderr.isEmpty)
        }
    }

    @Test(arguments: allSamples)
    func badOptionsExit2WithUsageOnStderr(_ sample: String) throws {
        for args in [["--bogus"], ["--port", "65536"], ["--port", "abc"], ["--port", "-1"], ["--port"]] {
            let p = try Proc(sample, args + (sample == "file-client" ? ["list"] : []))
            #expect(p.exitCode() == 2, "\(sample) \(args)")
            #expect(p.stdout().isEmpty, "\(sample) \(args)")
            let lines = p.stderr.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.first?.hasPrefix("error: ") == true, "\(sample) \(args): \(p.stderr)")
            #expect(lines.dropFirst().first?.hasPrefix("usage: \(sample)") == true, "\(sample) \(args): \(p.stderr)")
        }
    }

    @Test func missingOrExtraOperandsExit2() throws {
        for args in [[], ["get"], ["put"], ["frob"], ["list", "extra"], ["get", "a", "b", "c"]] {
            let p = try Proc("file-client", args)
            #expect(p.exitCode() == 2, "\(args)")
            #expect(p.stdout().isEmpty)
            #expect(p.stderr.hasPrefix("error: "))
        }
        let p = try Proc("echo-server", ["stray"])
        #expect(p.exitCode() == 2)
        #expect(p.stderr.hasPrefix("error: unexpected argument stray"))
    }

    @Test func badModeAndLimitsExit2() throws {
        for (sample, args) in [("echo-server", ["--mode", "fast"]), ("timestamp-server", ["--mode="]),
                               ("chat-server", ["--max-clients", "x"]), ("file-server", ["--max-size", "-5"]),
                               ("timestamp-client", ["--timeout", "0"]), ("timestamp-client", ["--timeout", "soon"])] {
            let p = try Proc(sample, args)
            #expect(p.exitCode() == 2, "\(sample) \(args)")
            #expect(p.stdout().isEmpty)
        }
    }

    @Test(arguments: servers)
    func portTakenExits1(_ sample: String) throws {
        let dir = try TempDir()
        let (listener, port) = try testListener()
        defer { listener.close() }
        let p = try Proc(sample, ["--port", String(port)] + (sample == "file-server" ? ["--dir", dir.path] : []))
        #expect(p.exitCode() == 1)
        #expect(p.stdout().isEmpty)
        #expect(p.stderr == "error: cannot listen on 127.0.0.1:\(port): Address already in use\n")
    }

    @Test func optionsMayFollowOperands() throws {
        let (listener, port) = try refusedPort()
        defer { listener.close() }
        let p = try Proc("file-client", ["list", "--port", String(port), "--host=127.0.0.1"])
        #expect(p.exitCode() == 1)
        #expect(p.stderr == "error: cannot connect to 127.0.0.1:\(port): Connection refused\n")
    }

    @Test(arguments: ["timestamp-client", "chat-client", "file-client"])
    func clientConnectRefusedExits1(_ sample: String) throws {
        let (holder, port) = try refusedPort()
        defer { holder.close() }
        let p = try Proc(sample, ["--port", String(port)] + (sample == "file-client" ? ["list"] : []), stdin: .bytes(Array("hi\n".utf8)))
        #expect(p.exitCode() == 1)
        #expect(p.stdout().isEmpty)
        #expect(p.stderr == "error: cannot connect to 127.0.0.1:\(port): Connection refused\n")
    }

    @Test func badHostCannotListen() throws {
        let p = try Proc("echo-server", ["--host", "no-such-host.invalid", "--port", "0"])
        #expect(p.exitCode() == 1)
        #expect(p.stderr.hasPrefix("error: cannot listen on no-such-host.invalid:0: "))
    }

    @Test func fileServerNeedsADirectory() throws {
        let dir = try TempDir()
        let p = try Proc("file-server", ["--port", "0", "--dir", dir.file("missing")])
        #expect(p.exitCode() == 1)
        #expect(p.stderr == "error: not a directory: \(dir.file("missing"))\n")
    }

    @Test func ipv6ListeningLineHasBrackets() throws {
        // Skipped quietly where the machine has no IPv6 loopback.
        guard let server = try? ServerProcess("echo-server", ["--host", "::1", "--port", "0"]) else { return }
        #expect(server.listeningLine.hasPrefix("listening on [::1]:"))
        let c = try Client(port: server.port, host: "::1")
        try c.send("six\n")
        #expect(try c.line() == "six")
    }

    /// SIGTERM with a client connected: the client is still served, then the
    /// server closes it and exits 0 (Samples/README.md: within 3 seconds; the wait
    /// here allows slack for a loaded machine).
    @Test(arguments: servers)
    func sigtermWithClientConnected(_ sample: String) throws {
        let dir = try TempDir()
        let server = try ServerProcess(sample, sample == "file-server" ? ["--dir", dir.path] : [])
        let c = try server.connect()
        let (request, reply): (String, String) = switch sample {
        case "chat-server": ("/help\n", "* commands: /nick NAME, /who, /quit, /help")
        case "file-server": ("LIST\n", "OK 0")
        default: ("one\n", "one")
        }
        if sample == "chat-server" { _ = try c.line() }  // welcome
        try c.send(request)
        #expect(try c.line()?.hasSuffix(reply) == true)
        server.process.signal(SIGTERM)
        // Stops accepting at once...
        #expect(eventually { (try? Client(port: server.port)) == nil })
        // ...but the open connection is still served.
        try c.send(request)
        // (The chat client also hears of the probing connections joining and leaving.)
        #expect(try c.line(where: { $0.hasSuffix(reply) }) != nil)
        #expect(c.isClosedByServer())
        #expect(server.process.exitCode(timeout: 6) == 0)
        #expect(!server.stderr.contains("overran"))
    }

    @Test func sigintWithoutClientsExitsAtOnce() throws {
        let server = try ServerProcess("chat-server")
        server.process.signal(SIGINT)
        #expect(server.process.exitCode(timeout: 6) == 0)
    }
}
