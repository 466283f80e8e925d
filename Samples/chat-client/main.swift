// chat-client: one thread prints what the server sends, the main thread sends
// what is typed (or piped) on stdin.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import SampleSupport
import SocketServer
import Synchronization

let usage = """
    usage: chat-client [--host HOST] [--port 9999] [--name NAME] [--tls] [--ca FILE] [--server-name NAME]

    Joins chat-server: prints every line the server sends, sends every line
    of stdin. Commands (sent as typed): /nick NAME, /who, /quit, /help.
    End of input (Ctrl-D) sends /quit and exits.

    options:
      --host HOST   server address (default 127.0.0.1)
      --port N      server port (default 9999)
      --name NAME   the name to take on joining (sends /nick NAME)
    \(ClientTLSOptions.usageLines)
      -h, --help    show this help
    """

let args = Arguments(usage: usage, valued: ["--name"] + ClientTLSOptions.valued, flags: ClientTLSOptions.flags)
args.expectOperands(0...0)
let stream = connectingStream(args, host: args.host, port: args.port(default: 9999))

/// Set once we sent /quit: the server closing is then what we asked for.
let quitting = Atomic<Bool>(false)
let serverClosed = DispatchSemaphore(value: 0)

// The reader: the server's lines go to stdout as they arrive, unchanged.
do {
    try Threads.start(stackSize: 256 * 1024) {
        while let bytes = try? stream.receiveSome(65536), !bytes.isEmpty {
            printBytes(bytes)
        }
        if !quitting.load(ordering: .acquiring) {
            printError("* disconnected\n")
            _exit(0)
        }
        serverClosed.signal()
    }
} catch {
    fail("cannot start a thread: \(reason(error))")
}

// The writer: stdin's lines go to the server.
func send(_ line: [UInt8]) -> Bool {
    (try? stream.sendAll(line.last == 0x0A ? line : line + [0x0A])) != nil
}
var connected = true
if let name = args.value("--name") { connected = send(Array("/nick \(name)".utf8)) }
let input = InputLines()
while connected, let line = input.next() {
    connected = send(line)
}
if connected {
    // End of input: say goodbye, give the server up to 2 seconds to close.
    quitting.store(true, ordering: .releasing)
    _ = send(Array("/quit".utf8))
}
// (Not connected: the reader is about to report `* disconnected` and exit.)
_ = serverClosed.wait(timeout: .now() + 2)
exit(0)
