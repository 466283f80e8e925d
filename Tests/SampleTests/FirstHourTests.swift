// What a new user met in the samples' first hour (issue 13), each fixed
// and pinned here: bracketed IPv6 hosts, error messages that name what the
// user asked for, a progress bar that fits the terminal, options that
// cannot apply, line ends, blank chat lines.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SampleSupport
import SocketServer
import Testing
import TestSupport

@Suite struct FirstHourTests {
    /// `--host '[::1]'`, as the samples print IPv6 addresses, is accepted by
    /// servers and clients alike.
    @Test func bracketedIPv6Host() throws {
        guard Socket.hasIPv6 else { return }  // no IPv6 on this machine
        let server = try ServerProcess("timestamp-server", ["--host", "[::1]"])
        #expect(server.listeningLine == "listening on [::1]:\(server.port)")
        let socket = try Socket.createConnection(host: "::1", port: server.port, timeout: 10)
        defer { socket.close() }
        try socket.sendAll(Array("six\n".utf8))
        #expect(isStamped(try socket.makeReader().readTextLine() ?? "", "six"))

        let client = try Proc("timestamp-client", ["--host", "[::1]", "--port", String(server.port)],
                              stdin: .bytes(Array("hi\n".utf8)))
        #expect(client.exitCode() == 0, "\(client.stderr)")
        #expect(isStamped(client.stdout().split(separator: "\n").first.map(String.init) ?? "", "hi"))
    }

    @Test func unbalancedBracketsAreAUsageError() throws {
        for host in ["[::1", "::1]", "[]"] {
            let p = try Proc("echo-server", ["--host", host, "--port", "0"])
            #expect(p.exitCode() == 2, "\(host)")
            #expect(p.stdout().isEmpty)
            #expect(p.stderr.hasPrefix("error: bad host \(host)"), "\(p.stderr)")
        }
    }

    /// A cannot-listen error names the host once bracketed, not `[[::1]]`.
    @Test func cannotListenNamesTheHostOnce() throws {
        guard Socket.hasIPv6 else { return }
        let first = try ServerProcess("echo-server", ["--host", "[::1]"])
        let second = try Proc("echo-server", ["--host", "[::1]", "--port", String(first.port)])
        #expect(second.exitCode() == 1)
        #expect(second.stderr.hasPrefix("error: cannot listen on [::1]:\(first.port): "), "\(second.stderr)")
    }

    /// `get` into a folder that does not exist names DEST, not the hidden
    /// temporary file it would have written first, and leaves nothing.
    @Test func getIntoAMissingFolderNamesTheDestination() throws {
        let f = try FileServerFixture()
        try writeFile(f.dir.file("remote"), Array("data".utf8))
        let local = try TempDir()
        let destination = local.file("no-such-folder/dest")
        let get = try Proc("file-client", ["--port", String(f.server.port), "get", "remote", destination])
        #expect(get.exitCode() == 1)
        #expect(get.stderr == "error: cannot write \(destination): No such file or directory\n")
        #expect(!get.stderr.contains(".part"))
        #expect(local.entries() == [])
    }

    /// The progress line fits every width without wrapping: it never
    /// reaches the last column, and drops the rate, then the sizes, then
    /// the bar as the terminal narrows.
    @Test func progressLineFitsTheTerminal() {
        let cases = [(0, 0), (0, 1 << 30), (12_900_000, 28_311_552), (1 << 30, 1 << 30), (5, 3)]
        for columns in 0...200 {
            for (done, total) in cases {
                let line = progressLine(done: done, total: total, bytesPerSecond: 5_347_737, columns: columns)
                #expect(line.count <= max(0, columns - 1), "\(columns) columns: \(line)")
                #expect(!line.contains("\n") && !line.contains("\r"))
                if columns >= 8 { #expect(line.contains("%"), "\(columns) columns: \(line)") }
            }
        }
        let wide = progressLine(done: 12_900_000, total: 28_311_552, bytesPerSecond: 5_347_737, columns: 80)
        #expect(wide == "[" + String(repeating: "#", count: 18) + String(repeating: " ", count: 22)
                    + "]  45%  12.3 MiB / 27.0 MiB  5.1 MiB/s")
        let narrow = progressLine(done: 12_900_000, total: 28_311_552, bytesPerSecond: 5_347_737, columns: 40)
        #expect(narrow == "[#####      ]  45%  12.3 MiB / 27.0 MiB")
        #expect(progressLine(done: 1, total: 2, bytesPerSecond: 0, columns: 10) == " 50%")
    }

    /// `--port` or `--host` with `--unix` cannot apply: a usage error, not
    /// silently ignored.
    @Test func echoServerUnixRefusesPortAndHost() throws {
        let dir = try TempDir()
        for extra in [["--port", "5"], ["--host", "127.0.0.1"]] {
            let p = try Proc("echo-server", ["--unix", dir.file("echo.sock")] + extra)
            #expect(p.exitCode() == 2, "\(extra)")
            #expect(p.stdout().isEmpty)
            let lines = p.stderr.split(separator: "\n")
            #expect(lines.first == "error: \(extra[0]) cannot be used with --unix", "\(p.stderr)")
            #expect(lines.dropFirst().first?.hasPrefix("usage: echo-server") == true)
            #expect(dir.entries() == [])
        }
    }

    /// Only a trailing LF or CRLF is taken off a datagram: a lone CR is payload.
    @Test func timestampUDPKeepsALoneTrailingCR() throws {
        let server = try ServerProcess("timestamp-server", ["--udp"])
        let s = try Socket(family: .inet, type: .datagram)
        defer { s.close() }
        try s.setTimeout(10)
        let address = try SocketAddress(ipv4: "127.0.0.1", port: server.port)
        for (payload, expected) in [("cr\r", "cr\r"), ("crlf\r\n", "crlf"), ("lf\n", "lf"), ("two\r\r\n", "two\r")] {
            try s.sendTo(Array(payload.utf8), address)
            let reply = try s.recv(70000)
            // `[` + 24 characters of ctime + `] ` + PAYLOAD + LF, compared as bytes
            // (a Regex `.` does not match a CR).
            #expect(reply.count == 27 + expected.utf8.count + 1 && reply.first == UInt8(ascii: "["), "\(reply)")
            #expect(Array(reply.suffix(expected.utf8.count + 3)) == Array("] \(expected)\n".utf8), "\(payload.debugDescription)")
        }
    }

    /// Over TCP too: a last line `abc\r` without LF keeps its CR.
    @Test func timestampTCPKeepsALoneCRAtEndOfFile() throws {
        let server = try ServerProcess("timestamp-server")
        let c = try server.connect()
        try c.send("abc\r")
        try c.socket.shutdown(.write)
        let raw = try c.rawLine() ?? []
        #expect(Array(raw.suffix(5)) == Array("abc\r\n".utf8))
    }

    /// A chat line of nothing but spaces and tabs goes to nobody, like an
    /// empty one; a line with text keeps its spaces.
    @Test func blankChatLinesGoToNobody() throws {
        let server = try ServerProcess("chat-server")
        let alice = try Chatter(server, nick: "alice")
        let bob = try Chatter(server, nick: "bob")
        #expect(try alice.next()?.hasSuffix(" joined") == true)
        #expect(try alice.next()?.hasSuffix(" is now bob") == true)
        try alice.say("   ")
        try alice.say("\t \t")
        try alice.say("  hi  ")
        #expect(try bob.next() == "alice:   hi  ")
        try alice.expectNothingPending()
    }
}
