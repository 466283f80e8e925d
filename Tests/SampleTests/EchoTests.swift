#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer
import Testing
import TestSupport

@Suite struct EchoTests {
    @Test(arguments: serverModes)
    func echoesLinesUnchanged(_ mode: String) throws {
        let server = try ServerProcess("echo-server", ["--mode", mode])
        #expect(server.listeningLine == "listening on 127.0.0.1:\(server.port)")
        let c = try server.connect()
        let sent: [UInt8] = Array("one\ntwo\r\n\n".utf8) + [0xC3, 0x28, 0x0A] + Array("tail".utf8)
        try c.send(sent)
        try c.socket.shutdown(.write)
        var got: [UInt8] = []
        while let line = try c.rawLine() { got += line }
        #expect(got == sent)
        // The next connection is served too (one at a time for sync).
        let d = try server.connect()
        try d.send("again\n")
        #expect(try d.line() == "again")
    }

    @Test(arguments: serverModes)
    func lineTooLong(_ mode: String) throws {
        let server = try ServerProcess("echo-server", ["--mode", mode])
        let c = try server.connect()
        let longest = String(repeating: "a", count: 65536)
        try c.send(longest + "\n")
        #expect(try c.line() == longest)
        try c.send(String(repeating: "b", count: 65537) + "\n")
        #expect(try c.line() == "error: line too long")
        #expect(c.isClosedByServer())
    }

    @Test(arguments: serverModes)
    func unixSocket(_ mode: String) throws {
        let dir = try TempDir()
        let path = dir.file("echo.sock")
        let server = try ServerProcess("echo-server", ["--unix", path, "--mode", mode])
        #expect(server.listeningLine == "listening on unix:\(path)")
        let s = try Socket.createConnection(to: SocketAddress(unixPath: path), timeout: 10)
        let c = Client(socket: s)
        try c.send("over unix\n")
        #expect(try c.line() == "over unix")
        server.process.signal(SIGTERM)
        try c.send("still here\n")
        #expect(try c.line() == "still here")
        s.close()
        #expect(server.process.exitCode() == 0)
        #expect(!fileExists(path))
    }

    @Test func unixSocketPathTaken() throws {
        let dir = try TempDir()
        let path = dir.file("taken")
        try writeFile(path, [])
        let p = try Proc("echo-server", ["--unix", path])
        #expect(p.exitCode() == 1)
        #expect(p.stderr == "error: cannot listen on unix:\(path): Address already in use\n")
        #expect(fileExists(path))
    }

    @Test(arguments: serverModes)
    func sigtermServesThenCloses(_ mode: String) throws {
        let server = try ServerProcess("echo-server", ["--mode", mode])
        let c = try server.connect()
        try c.send("before\n")
        #expect(try c.line() == "before")
        server.process.signal(SIGTERM)
        try c.send("during\n")
        #expect(try c.line() == "during")
        #expect(c.isClosedByServer())
        #expect(server.process.exitCode(timeout: 6) == 0)
    }

    @Test func exitsOnceTheLastClientLeaves() throws {
        let server = try ServerProcess("echo-server")
        let c = try server.connect()
        try c.send("x\n")
        #expect(try c.line() == "x")
        server.process.signal(SIGINT)
        #expect(eventually { (try? Client(port: server.port)) == nil })
        c.socket.close()
        #expect(server.process.exitCode(timeout: 6) == 0)
    }
}
