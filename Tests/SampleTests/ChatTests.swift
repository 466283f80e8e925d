#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer
import Synchronization
import Testing
import TestSupport

/// A chat participant on the test side.
final class Chatter {
    let client: Client
    let name: String
    /// Its first name, `127.0.0.1:PORT`.
    let address: String

    /// Connects, reads the welcome, and takes `nick` if given.
    init(_ server: ServerProcess, nick: String? = nil) throws {
        client = try server.connect()
        let welcome = try client.line() ?? ""
        #expect(welcome.hasPrefix("* welcome, you are 127.0.0.1:"))
        address = String(welcome.dropFirst("* welcome, you are ".count))
        var name = address
        if let nick {
            try client.send("/nick \(nick)\n")
            #expect(try client.line() == "* you are now \(nick)")
            name = nick
        }
        self.name = name
    }

    func say(_ text: String) throws { try client.send(text + "\n") }
    func next() throws -> String? { try client.line() }

    /// Asserts that nothing was sent to this client before the reply to a
    /// `/help` sent now (everything before it would have come first).
    func expectNothingPending(sourceLocation: SourceLocation = #_sourceLocation) throws {
        try say("/help")
        #expect(try next() == "* commands: /nick NAME, /who, /quit, /help", sourceLocation: sourceLocation)
    }
}

@Suite struct ChatTests {
    @Test func joinSayAndLeave() throws {
        let server = try ServerProcess("chat-server")
        let a = try Chatter(server)
        let b = try Chatter(server)
        #expect(try a.next() == "* \(b.name) joined")
        try b.say("hello there")
        #expect(try a.next() == "\(b.name): hello there")
        try b.say("")  // an empty line: nothing to anyone
        try b.say("/who")
        let names = [a.name, b.name].sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        #expect(try b.next() == "* online: \(names.joined(separator: ", "))")  // not its own line, nor the empty one
        try a.expectNothingPending()
        b.client.socket.close()
        #expect(try a.next() == "* \(b.name) left")
    }

    @Test func nickCommands() throws {
        let server = try ServerProcess("chat-server")
        let a = try Chatter(server, nick: "alice")
        let b = try Chatter(server)
        #expect(try a.next() == "* \(b.name) joined")
        try b.say("/nick bob")
        #expect(try b.next() == "* you are now bob")
        #expect(try a.next() == "* \(b.name) is now bob")
        try b.say("/nick alice")
        #expect(try b.next() == "* error: name alice is taken")
        for bad in ["/nick", "/nick ", "/nick a b", "/nick caf\u{E9}", "/nick " + String(repeating: "n", count: 33), "/nick 1.2.3.4:5"] {
            try b.say(bad)
            #expect(try b.next() == "* error: invalid name", "\(bad)")
        }
        try b.say("/nick Valid_name-1.x")
        #expect(try b.next() == "* you are now Valid_name-1.x")
        #expect(try a.next() == "* bob is now Valid_name-1.x")
        try b.say("/who")
        #expect(try b.next() == "* online: Valid_name-1.x, alice")  // sorted by bytes: upper case first
        try a.expectNothingPending()
    }

    @Test func helpQuitAndUnknownCommands() throws {
        let server = try ServerProcess("chat-server")
        let a = try Chatter(server, nick: "a")
        let b = try Chatter(server, nick: "b")
        #expect(try a.next() == "* \(b.address) joined")
        #expect(try a.next() == "* \(b.address) is now b")
        try b.say("/help")
        #expect(try b.next() == "* commands: /nick NAME, /who, /quit, /help")
        try b.say("/frobnicate now")
        #expect(try b.next() == "* error: unknown command /frobnicate")
        try b.say("/quit")
        #expect(try b.next() == "* bye")
        #expect(b.client.isClosedByServer())
        #expect(try a.next() == "* b left")
        try a.expectNothingPending()
    }

    @Test func orderAndInvalidUTF8() throws {
        let server = try ServerProcess("chat-server")
        let a = try Chatter(server, nick: "a")
        let b = try Chatter(server)
        try b.client.send(Array("one\n".utf8) + [0x62, 0xFF, 0x63, 0x0D, 0x0A] + Array("three\n".utf8))
        b.client.socket.close()
        #expect(try a.next() == "* \(b.name) joined")
        #expect(try a.next() == "\(b.name): one")
        #expect(try a.next() == "\(b.name): b\u{FFFD}c")
        #expect(try a.next() == "\(b.name): three")
        #expect(try a.next() == "* \(b.name) left")
    }

    @Test func lineTooLong() throws {
        let server = try ServerProcess("chat-server")
        let a = try Chatter(server, nick: "a")
        let b = try Chatter(server, nick: "b")
        #expect(try a.client.line(count: 2).count == 2)  // joined, is now b
        try b.say(String(repeating: "x", count: 4096))
        #expect(try a.next() == "b: " + String(repeating: "x", count: 4096))
        try b.say(String(repeating: "y", count: 4097))
        #expect(try b.next() == "* error: line too long")
        #expect(b.client.isClosedByServer())
        #expect(try a.next() == "* b left")
    }

    @Test func serverFull() throws {
        let server = try ServerProcess("chat-server", ["--max-clients", "1"])
        let a = try Chatter(server, nick: "a")
        let c = try server.connect()
        #expect(try c.line() == "* error: server full")
        #expect(c.isClosedByServer())
        try a.expectNothingPending()  // nothing about the refused client
        a.client.socket.close()
        // The seat is free again once a is gone.
        #expect(eventually {
            guard let d = try? server.connect(), let line = try? d.line() else { return false }
            return line.hasPrefix("* welcome")
        })
    }

    /// A client that never reads is dropped once 1 MiB is queued for it;
    /// the others keep receiving everything, in order.
    @Test func slowReaderIsDropped() throws {
        let server = try ServerProcess("chat-server")
        let slow = try Chatter(server, nick: "slow")
        let good = try Chatter(server, nick: "good")
        let flood = try Chatter(server, nick: "flood")
        #expect(try good.client.line(count: 2).count == 2)  // flood joined, is now flood
        let lineCount = 2600  // ~2.6 MiB in all
        let received = Locked<[String]>([])
        let goodSocket = good.client.socket  // nothing is buffered in good's reader now
        let reading = try TestThread {
            let reader = Client(socket: goodSocket)
            for _ in 0..<(lineCount + 10) {
                guard let line = try? reader.line() else { return }
                received.withLock { $0.append(line) }
                if line == "flood: done" { return }
            }
        }
        let text = String(repeating: "z", count: 1000)
        for i in 0..<lineCount {
            try flood.say("\(i) \(text)")
            // Pace the flood by what good has read, so only the client that
            // never reads can fall 1 MiB behind, however loaded the machine.
            if i % 100 == 99 {
                #expect(eventually(30) { received.withLock { $0.count } >= i - 200 })
            }
        }
        try flood.say("done")
        #expect(reading.finished(within: 60))
        let lines = received.withLock { $0 }
        #expect(lines.contains("* slow left"))
        let floodLines = lines.filter { $0.hasPrefix("flood: ") }
        #expect(floodLines.count == lineCount + 1)
        #expect(floodLines.prefix(lineCount).enumerated().allSatisfy { $0.element == "flood: \($0.offset) \(text)" })
        #expect(slow.client.isClosedByServer())
    }

    @Test func clientWithPipedStdin() throws {
        let server = try ServerProcess("chat-server")
        let watcher = try Chatter(server, nick: "watcher")
        let p = try Proc("chat-client", ["--port", String(server.port), "--name", "piper"],
                         stdin: .bytes(Array("hello\n/who\nlast line".utf8)))
        let joined = try watcher.next() ?? ""
        #expect(joined.hasSuffix(" joined"))
        #expect(try watcher.next()?.hasSuffix(" is now piper") == true)
        #expect(try watcher.next() == "piper: hello")
        #expect(try watcher.next() == "piper: last line")
        #expect(try watcher.next() == "* piper left")  // EOF on stdin: /quit
        #expect(p.exitCode() == 0)
        let out = p.stdout().split(separator: "\n").map(String.init)
        #expect(out.first?.hasPrefix("* welcome, you are 127.0.0.1:") == true)
        #expect(out.contains("* you are now piper"))
        #expect(out.contains("* online: piper, watcher"))
        #expect(out.last == "* bye")
        #expect(p.stderr.isEmpty)
    }

    @Test func clientReportsDisconnect() throws {
        let (listener, port) = try testListener()
        defer { listener.close() }
        let p = try Proc("chat-client", ["--port", String(port)], stdin: .pipe)
        let (connection, _) = try listener.accept()
        try connection.sendAll(Array("* hello from a fake server\n".utf8))
        connection.close()
        #expect(p.exitCode() == 0)
        #expect(p.stdout() == "* hello from a fake server\n")
        #expect(p.stderr == "* disconnected\n")
    }
}

extension Client {
    /// The next `count` lines.
    func line(count: Int) throws -> [String] {
        var lines: [String] = []
        for _ in 0..<count { if let l = try line() { lines.append(l) } }
        return lines
    }
}
