// activation-echo: a test-only echo server (not a product) for the socket
// activation and restart tests (Tests/SocketServerTests/ActivationTests.swift).
//
//   activation-echo                    serve on the socket passed by systemd (LISTEN_FDS)
//   activation-echo --take-from PATH   serve on the socket an old process hands over at PATH
//   ... --offer-at PATH                also offer the socket at PATH; once taken, stop
//                                      accepting, finish the connections in progress, exit 0
//
// Prints `serving ADDRESS` once it serves.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer
import Synchronization

final class Echo: StreamRequestHandler {
    override func handle() throws {
        while let line = try rfile.readLine() { try wfile.write(line) }
    }
}

final class EchoServer: ThreadingTCPServer {}

let handedOver = Atomic<Bool>(false)
nonisolated(unsafe) var offerPath: String?  // set before the offering thread starts, read by it only

/// One line on standard output, at once.
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    fputs("activation-echo: \(message)\n", stderr)
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var takePath: String?
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard !arguments.isEmpty else { fail("\(flag) needs a value") }
    switch flag {
    case "--take-from": takePath = arguments.removeFirst()
    case "--offer-at": offerPath = arguments.removeFirst()
    default: fail("unknown option \(flag)")
    }
}

let socket: Socket
do {
    if let takePath {
        socket = try ListenerHandoff.take(from: takePath)[0]
    } else {
        guard let passed = try Socket.listenFDs().first else { fail("no socket passed (LISTEN_FDS)") }
        socket = passed.socket
    }
} catch {
    fail("\(error)")
}
let server: EchoServer
do { server = try EchoServer(socket: socket, Echo.self) } catch { fail("\(error)") }
server.timeout = 0.05
say("serving \(server.serverAddress)")

if offerPath != nil {
    var thread = pthread_t()
    let r = pthread_create(&thread, nil, { _ in
        do {
            try ListenerHandoff.offer([server.socket], at: offerPath!)
            handedOver.store(true, ordering: .releasing)
        } catch {
            fail("offer: \(error)")
        }
        return nil
    }, nil)
    if r != 0 { fail("pthread_create: \(r)") }
}

// Our own loop rather than serveForever + shutdown(): a connection this
// process has accepted is always served, never closed because a shutdown
// came between poll and accept.
while !handedOver.load(ordering: .acquiring) {
    do { try server.handleRequest() } catch { fail("\(error)") }
}
server.serverClose()  // closes our descriptor of the listener; waits for the handlers
say("handed over")
exit(0)
