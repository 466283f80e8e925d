#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer
import Synchronization
import Testing
import TestSupport

/// A file-server over a fresh directory.
final class FileServerFixture {
    let dir: TempDir
    let server: ServerProcess

    init(_ options: [String] = []) throws {
        dir = try TempDir()
        server = try ServerProcess("file-server", ["--dir", dir.path] + options)
    }

    func connect() throws -> Client { try server.connect() }

    /// PUT over `c`; the final reply.
    func put(_ c: Client, _ name: String, _ body: [UInt8]) throws -> String? {
        try c.send("PUT \(name) \(body.count)\n")
        let ready = try c.line()
        guard ready == "READY" else { return ready }
        try c.send(body)
        return try c.line()
    }
}

@Suite struct FileServerTests {
    @Test func putGetList() throws {
        let f = try FileServerFixture()
        let c = try f.connect()
        try c.send("LIST\n")
        #expect(try c.line() == "OK 0")
        let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(try f.put(c, "data.bin", body) == "OK 100000")
        #expect(try f.put(c, "b", []) == "OK 0")
        #expect(try f.put(c, "a~!#", Array("x".utf8)) == "OK 1")
        try c.send("GET data.bin\n")
        #expect(try c.line() == "OK 100000")
        #expect(try c.read(100_000) == body)
        // An empty file: the reply and nothing after it, and the
        // connection goes on.
        try c.send("GET b\n")
        #expect(try c.line() == "OK 0")
        try c.send("LIST\n")
        #expect(try c.line(count: 4) == ["OK 3", "a~!# 1", "b 0", "data.bin 100000"])
        #expect(readFile(f.dir.file("data.bin")) == body)
        #expect(f.dir.entries() == ["a~!#", "b", "data.bin"])  // no temporary file left
    }

    @Test func refusals() throws {
        let f = try FileServerFixture(["--max-size", "10"])
        let c = try f.connect()
        #expect(try f.put(c, "x", Array("12345".utf8)) == "OK 5")
        #expect(try f.put(c, "x", Array("other".utf8)) == "ERR exists")
        try c.send("GET nothing\n")
        #expect(try c.line() == "ERR not found")
        try c.send("PUT big 11\n")
        #expect(try c.line() == "ERR too large")
        try c.send("PUT big " + String(repeating: "9", count: 400) + "\n")
        #expect(try c.line() == "ERR too large")
        try c.send("PUT big 00000000000000000000000000000000000000000007\n")
        #expect(try c.line() == "READY")
        try c.send("1234567")
        #expect(try c.line() == "OK 7")
        let badNames = ["..", "../x", "/etc/passwd", "a/b", "a\\b", ".hidden", "a b", String(repeating: "n", count: 256), "caf\u{E9}"]
        for name in badNames {
            try c.send("PUT \(name) 1\n")
            #expect(try c.line() == "ERR invalid name", "PUT \(name)")
            try c.send("GET \(name)\n")
            #expect(try c.line() == "ERR invalid name", "GET \(name)")
        }
        try c.send("GET \n")
        #expect(try c.line() == "ERR invalid name")
        #expect(try f.put(c, String(repeating: "n", count: 255), []) == "OK 0")
        // The connection is still usable after all that.
        try c.send("GET x\n")
        #expect(try c.line() == "OK 5")
        #expect(try c.read(5) == Array("12345".utf8))
    }

    @Test(arguments: ["PUT x 12a", "PUT x", "PUT x -1", "PUT x 1 2x", "FETCH x", "LIST all", "list", "", "PUT"])
    func badRequestCloses(_ request: String) throws {
        let f = try FileServerFixture()
        let c = try f.connect()
        try c.send(request + "\n")
        #expect(try c.line() == "ERR bad request")
        #expect(c.isClosedByServer())
    }

    @Test func headerTooLong() throws {
        let f = try FileServerFixture()
        let c = try f.connect()
        try c.send("GET " + String(repeating: "a", count: 1020) + "\n")  // 1024 bytes: fine
        #expect(try c.line() == "ERR invalid name")
        try c.send("GET " + String(repeating: "a", count: 1021) + "\n")
        #expect(try c.line() == "ERR bad request")
        #expect(c.isClosedByServer())
    }

    @Test func symlinksAndDirectoriesAreNotFiles() throws {
        let f = try FileServerFixture()
        let outside = try TempDir()
        try writeFile(outside.file("secret"), Array("secret".utf8))
        symlink(outside.file("secret"), f.dir.file("link"))
        mkdir(f.dir.file("subdir"), 0o755)
        try writeFile(f.dir.file(".dotfile"), Array("hidden".utf8))
        try writeFile(f.dir.file("real"), Array("real".utf8))
        let c = try f.connect()
        try c.send("GET link\n")
        #expect(try c.line() == "ERR not found")
        try c.send("GET subdir\n")
        #expect(try c.line() == "ERR not found")
        try c.send("LIST\n")
        #expect(try c.line(count: 2) == ["OK 1", "real 4"])
        #expect(try f.put(c, "link", Array("overwrite".utf8)) == "ERR exists")
        #expect(readFile(outside.file("secret")) == Array("secret".utf8))
    }

    @Test func lyingSizeLeavesNothing() throws {
        let f = try FileServerFixture()
        let c = try f.connect()
        try c.send("PUT partial 100\n")
        #expect(try c.line() == "READY")
        try c.send(Array(repeating: 0x41, count: 10))
        c.socket.close()
        #expect(eventually { f.dir.entries().isEmpty }, "left: \(f.dir.entries())")
        let d = try f.connect()
        try d.send("GET partial\n")
        #expect(try d.line() == "ERR not found")
    }

    @Test func racingPutsExactlyOneWins() throws {
        let f = try FileServerFixture()
        for round in 0..<5 {
            let name = "race\(round)"
            let c1 = try f.connect(), c2 = try f.connect()
            try c1.send("PUT \(name) 5\n")
            try c2.send("PUT \(name) 5\n")
            #expect(try c1.line() == "READY")
            #expect(try c2.line() == "READY")
            try c1.send("11111")
            try c2.send("22222")
            let replies = [try c1.line(), try c2.line()]
            #expect(replies.filter { $0 == "OK 5" }.count == 1, "\(replies)")
            #expect(replies.filter { $0 == "ERR exists" }.count == 1, "\(replies)")
        }
        #expect(eventually { f.dir.entries() == (0..<5).map { "race\($0)" } })
    }

    @Test func pipelinedRequests() throws {
        let f = try FileServerFixture()
        let c = try f.connect()
        try c.send("PUT p 3\nabcGET p\nLIST\n")
        #expect(try c.line(count: 4) == ["READY", "OK 3", "OK 3", "abcOK 1"])
        #expect(try c.line() == "p 3")
    }
}

@Suite struct FileClientTests {
    @Test func roundTrip() throws {
        let f = try FileServerFixture()
        let local = try TempDir()
        let body = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        try writeFile(local.file("source.bin"), body)
        let port = String(f.server.port)

        let put = try Proc("file-client", ["--port", port, "put", local.file("source.bin")])
        #expect(put.exitCode() == 0)
        #expect(put.stderr.isEmpty)
        let putAs = try Proc("file-client", ["put", local.file("source.bin"), "copy.bin", "--port", port])
        #expect(putAs.exitCode() == 0)

        let list = try Proc("file-client", ["--port", port, "list"])
        #expect(list.exitCode() == 0)
        #expect(list.stdout() == "copy.bin 300000\nsource.bin 300000\n")

        let get = try Proc("file-client", ["--port", port, "get", "copy.bin", local.file("back.bin")])
        #expect(get.exitCode() == 0)
        #expect(readFile(local.file("back.bin")) == body)

        // The default DEST is ./NAME.
        let getHere = try Proc("file-client", ["--port", port, "get", "copy.bin"], directory: local.path)
        #expect(getHere.exitCode() == 0, "\(getHere.stderr)")
        #expect(local.entries() == ["back.bin", "copy.bin", "source.bin"])
        #expect(readFile(local.file("copy.bin")) == body)

        let again = try Proc("file-client", ["--port", port, "put", local.file("source.bin")])
        #expect(again.exitCode() == 1)
        #expect(again.stderr == "error: exists\n")
    }

    @Test func getRefusesToOverwrite() throws {
        let f = try FileServerFixture()
        try writeFile(f.dir.file("remote"), Array("new".utf8))
        let local = try TempDir()
        try writeFile(local.file("dest"), Array("old".utf8))
        let port = String(f.server.port)

        let get = try Proc("file-client", ["--port", port, "get", "remote", local.file("dest")])
        #expect(get.exitCode() == 1)
        #expect(get.stderr == "error: \(local.file("dest")) exists (use --force)\n")
        #expect(readFile(local.file("dest")) == Array("old".utf8))

        let forced = try Proc("file-client", ["--port", port, "--force", "get", "remote", local.file("dest")])
        #expect(forced.exitCode() == 0)
        #expect(readFile(local.file("dest")) == Array("new".utf8))
        #expect(local.entries() == ["dest"])

        let missing = try Proc("file-client", ["--port", port, "get", "absent", local.file("other")])
        #expect(missing.exitCode() == 1)
        #expect(missing.stderr == "error: not found\n")
        #expect(local.entries() == ["dest"])
    }

    @Test func shortDownloadLeavesNoPartialFile() throws {
        let (listener, port) = try testListener()
        defer { listener.close() }
        let local = try TempDir()
        let p = try Proc("file-client", ["--port", String(port), "get", "f", local.file("dest")])
        let (connection, _) = try listener.accept()
        let c = Client(socket: connection)
        #expect(try c.line() == "GET f")
        try c.send("OK 100000\n" + String(repeating: "x", count: 5000))
        connection.close()
        #expect(p.exitCode() == 1)
        #expect(p.stderr.hasPrefix("error: download ended short"))
        #expect(local.entries().isEmpty)
    }

    @Test func interruptedDownloadLeavesNoPartialFile() throws {
        let (listener, port) = try testListener()
        defer { listener.close() }
        let local = try TempDir()
        let p = try Proc("file-client", ["--port", String(port), "get", "f", local.file("dest")])
        let (connection, _) = try listener.accept()
        let c = Client(socket: connection)
        #expect(try c.line() == "GET f")
        try c.send("OK 100000\n" + String(repeating: "x", count: 5000))
        #expect(eventually { local.entries().count == 1 })  // the partial download exists...
        p.signal(SIGINT)
        #expect(p.exitCode() != 0)
        #expect(local.entries().isEmpty)  // ...and is gone
    }

    @Test func serverErrorReply() throws {
        let (listener, port) = try testListener()
        defer { listener.close() }
        let local = try TempDir()
        try writeFile(local.file("up"), Array("data".utf8))
        let p = try Proc("file-client", ["--port", String(port), "put", local.file("up")])
        let (connection, _) = try listener.accept()
        let c = Client(socket: connection)
        #expect(try c.line() == "PUT up 4")
        try c.send("ERR disk on fire\n")
        #expect(p.exitCode() == 1)
        #expect(p.stderr == "error: disk on fire\n")
    }
}
