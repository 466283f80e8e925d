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

/// The offer made on a thread of its own while the server serves.
final class Offer: Sendable {
    let socket: Socket
    let path: String
    let done = Atomic<Bool>(false)
    init(socket: Socket, path: String) { self.socket = socket; self.path = path }
}

/// Starts offering on a new thread (a plain function: nothing of the main
/// actor's, which the top-level code here belongs to, is touched there).
func startOffer(_ offer: Offer) {
    var thread = pthread_t()
    let r = pthread_create(&thread, nil, { raw in
        let offer = Unmanaged<Offer>.fromOpaque(raw!).takeRetainedValue()
        do {
            try ListenerHandoff.offer([offer.socket], at: offer.path)
            offer.done.store(true, ordering: .releasing)
        } catch {
            fail("offer: \(error)")
        }
        return nil
    }, Unmanaged.passRetained(offer).toOpaque())
    if r != 0 { fail("pthread_create: \(r)") }
}

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
var offerPath: String?
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

let offer = offerPath.map { Offer(socket: server.socket, path: $0) }
if let offer { startOffer(offer) }

// Our own loop rather than serveForever + shutdown(): a connection this
// process has accepted is always served, never closed because a shutdown
// came between poll and accept.
while offer?.done.load(ordering: .acquiring) != true {
    do { try server.handleRequest() } catch { fail("\(error)") }
}
server.serverClose()  // closes our descriptor of the listener; waits for the handlers
say("handed over")
exit(0)
