#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer
import Testing
import TestSupport

/// `[Mon Jun  4 15:34:12 2018] ` followed by `rest`.
func isStamped(_ line: String, _ rest: String) -> Bool {
    guard let m = line.wholeMatch(of: #/\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}\] (.*)/#) else {
        return false
    }
    return String(m.output.3) == rest
}

@Suite struct TimestampTests {
    @Test(arguments: serverModes)
    func stampsEveryLine(_ mode: String) throws {
        let server = try ServerProcess("timestamp-server", ["--mode", mode])
        #expect(server.listeningLine == "listening on 127.0.0.1:\(server.port)")
        let c = try server.connect()
        try c.send("hello\nwith CRLF\r\n\n")
        try c.send([0xFF, 0x41, 0x0A])
        try c.send("no LF at the end")
        try c.socket.shutdown(.write)
        let first = try c.line() ?? ""
        #expect(isStamped(first, "hello"), "\(first)")
        #expect(isStamped(try c.line() ?? "", "with CRLF"))
        #expect(isStamped(try c.line() ?? "", ""))
        let raw = try c.rawLine() ?? []
        #expect(Array(raw.suffix(3)) == [0xFF, 0x41, 0x0A])
        #expect(isStamped(try c.line() ?? "", "no LF at the end"))
        #expect(try c.line() == nil)
        #expect(eventually { server.stderr.contains("connected from 127.0.0.1:") })
        // Served one after another, the server still answers new connections.
        let d = try server.connect()
        try d.send("again\n")
        #expect(isStamped(try d.line() ?? "", "again"))
    }

    @Test(arguments: ["threading", "sync"])
    func lineTooLong(_ mode: String) throws {
        let server = try ServerProcess("timestamp-server", ["--mode", mode])
        let c = try server.connect()
        try c.send(String(repeating: "x", count: 65536) + "\n")
        #expect(try c.line()?.hasSuffix(String(repeating: "x", count: 65536)) == true)
        try c.send(String(repeating: "y", count: 70000) + "\n")
        #expect(try c.line() == "error: line too long")
        #expect(c.isClosedByServer())
    }

    @Test(arguments: serverModes)
    func udp(_ mode: String) throws {
        let server = try ServerProcess("timestamp-server", ["--udp", "--mode", mode])
        let s = try Socket(family: .inet, type: .datagram)
        try s.setTimeout(10)
        let address = try SocketAddress(ipv4: "127.0.0.1", port: server.port)
        for (payload, expected) in [("ping\n", "ping"), ("crlf\r\n", "crlf"), ("bare", "bare")] {
            try s.sendTo(Array(payload.utf8), address)
            let reply = try s.recv(70000)
            #expect(reply.last == 0x0A)
            #expect(isStamped(String(decoding: reply.dropLast(), as: UTF8.self), expected))
        }
    }

    @Test func clientWithPipedStdin() throws {
        let server = try ServerProcess("timestamp-server")
        let p = try Proc("timestamp-client", ["--port", String(server.port)], stdin: .bytes(Array("one\ntwo\nlast".utf8)))
        #expect(p.exitCode() == 0)
        let lines = p.stdout().split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(isStamped(lines.first ?? "", "one"))  // no `> ` prompt: stdin is not a terminal
        #expect(isStamped(lines.last ?? "", "last"))
        #expect(p.stderr.isEmpty)
    }

    @Test func clientStopsAtEmptyLine() throws {
        let server = try ServerProcess("timestamp-server")
        let p = try Proc("timestamp-client", ["--port", String(server.port)], stdin: .bytes(Array("one\n\ntwo\n".utf8)))
        #expect(p.exitCode() == 0)
        let lines = p.stdout().split(separator: "\n")
        #expect(lines.count == 1)
    }

    @Test func clientOverUDP() throws {
        let server = try ServerProcess("timestamp-server", ["--udp"])
        let p = try Proc("timestamp-client", ["--udp", "--port", String(server.port)], stdin: .bytes(Array("dgram\n".utf8)))
        #expect(p.exitCode() == 0)
        #expect(isStamped(p.stdout().split(separator: "\n").first.map(String.init) ?? "", "dgram"))
    }

    @Test func clientTimesOut() throws {
        let (listener, port) = try testListener()  // accepts (in the backlog), never replies
        defer { listener.close() }
        let p = try Proc("timestamp-client", ["--port", String(port), "--timeout", "1"], stdin: .bytes(Array("hello\n".utf8)))
        #expect(p.exitCode() == 1)
        #expect(p.stderr == "error: no reply within 1s\n")
        #expect(p.stdout().isEmpty)
    }

    @Test func clientSeesServerClose() throws {
        let (listener, port) = try testListener()
        defer { listener.close() }
        let p = try Proc("timestamp-client", ["--port", String(port)], stdin: .pipe)
        let (connection, _) = try listener.accept()
        p.writeStdin("hello\n")
        let c = Client(socket: connection)
        #expect(try c.line() == "hello")
        connection.close()
        #expect(p.exitCode() == 1)
        #expect(p.stderr == "error: connection closed by server\n")
    }
}
