// echo-server: echoes every line back. The benchmark target: it reads through
// the handler's `rfile` and writes through its `wfile`, the framework's own path.
import SampleSupport
import SocketServer

let usage = """
    usage: echo-server [--host HOST] [--port 7007] [--unix PATH] [--mode threading|forking|sync]

    Echoes every line back unchanged. Lines are at most 65536 bytes; a longer
    one is answered with `error: line too long` and the connection closed.
    A connection silent for 300 seconds is closed.

    options:
      --host HOST   address to listen on (default 127.0.0.1)
      --port N      TCP port (default 7007; 0: any free port)
      --unix PATH   serve a Unix stream socket at PATH instead of TCP
                    (then --host and --port do not apply: a usage error)
      --mode MODE   threading (a thread per connection, default), forking
                    (a process per connection) or sync (one at a time)
    \(ServingOptions.usageLines)
      -h, --help    show this help
    """

final class EchoHandler: StreamRequestHandler {
    override var timeout: Double? { 300 }
    // Replies are already batched by wfile; don't let Nagle hold them back.
    override var disableNagleAlgorithm: Bool { true }

    override func handle() throws {
        try answeringLongLines {
            while let line = try rfile.readLine(maxLength: 65536) {
                try wfile.write(line)
            }
        }
    }
}

let args = Arguments(usage: usage, valued: ["--unix", "--mode"] + ServingOptions.valued, flags: ServingOptions.flags)
args.expectOperands(0...0)
let (host, port, mode) = (args.host, args.port(default: 7007), args.mode)
if args.value("--unix") != nil {
    // A Unix socket has no host or port: silently ignoring them would hide a mistake.
    for option in ["--host", "--port"] where args.value(option) != nil {
        args.usageError("\(option) cannot be used with --unix")
    }
}

let serving = ServingOptions(args, transport: args.value("--unix") != nil ? .unix : .tcp)
let server: TCPServer
if let path = args.value("--unix") {
    server = serving.listen(on: "unix:\(path)", {
        switch mode {
        case .threading: try ThreadingUnixStreamServer(path, EchoHandler.self)
        case .forking: try ForkingUnixStreamServer(path, EchoHandler.self)
        case .sync: try UnixStreamServer(path, EchoHandler.self)
        }
    }, adopting: { socket in
        switch mode {
        case .threading: try ThreadingUnixStreamServer(socket: socket, EchoHandler.self)
        case .forking: try ForkingUnixStreamServer(socket: socket, EchoHandler.self)
        case .sync: try UnixStreamServer(socket: socket, EchoHandler.self)
        }
    })
} else {
    server = serving.listen(on: hostPort(host, port), {
        switch mode {
        case .threading: try ThreadingTCPServer((host, port), EchoHandler.self)
        case .forking: try ForkingTCPServer((host, port), EchoHandler.self)
        case .sync: try TCPServer((host, port), EchoHandler.self)
        }
    }, adopting: { socket in
        switch mode {
        case .threading: try ThreadingTCPServer(socket: socket, EchoHandler.self)
        case .forking: try ForkingTCPServer(socket: socket, EchoHandler.self)
        case .sync: try TCPServer(socket: socket, EchoHandler.self)
        }
    })
}
serve(server)
