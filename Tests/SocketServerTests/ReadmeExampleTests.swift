import SocketServer
import Testing

// The README's one-minute example, word for word but for `print`, which a
// test collects, and the port, which the test takes first: it must print
// one line, not crash (a top-level `try` that throws ends with a trap).
private final class Shout: StreamRequestHandler {
    override func handle() throws {
        while let line = try rfile.readTextLine() {        // nil at end of file
            try wfile.write(line.uppercased() + "\n")
        }
    }
}

private func oneMinuteExample(port: Int, print: (String) -> Void) {
    do {
        let server = try ThreadingTCPServer(("127.0.0.1", port), Shout.self)
        try server.shutdownOnSignals(gracePeriod: 2)   // Ctrl-C: stop, let clients finish
        try server.serveForever()
        server.serverClose()
    } catch {
        print("error: \(error)")   // error: bind to 127.0.0.1:21567: Address already in use (EADDRINUSE)
    }
}

@Suite struct ReadmeExampleTests {
    @Test func aTakenPortPrintsOneLine() throws {
        let taken = try Socket(family: .inet, type: .stream)
        defer { taken.close() }
        try taken.bind(to: SocketAddress(ipv4: "127.0.0.1", port: 0))
        try taken.listen()
        let port = try taken.localAddress().port!
        var printed: [String] = []
        oneMinuteExample(port: port) { printed.append($0) }
        #expect(printed == ["error: bind to 127.0.0.1:\(port): Address already in use (EADDRINUSE)"])
    }
}
