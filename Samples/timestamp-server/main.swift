// timestamp-server: the classic `tsTservSS` server. Every line a client sends
// comes back stamped with the local time: `[Mon Jun  4 15:34:12 2018] LINE`.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SampleSupport
import SocketServer

let usage = """
    usage: timestamp-server [--host HOST] [--port 21567] [--udp] [--mode threading|forking|sync]

    Replies to every line with `[TIMESTAMP] LINE`, TIMESTAMP being the local
    time in ctime form. Lines are at most 65536 bytes; a longer one is
    answered with `error: line too long` and the connection closed. A
    connection silent for 300 seconds is closed.

    options:
      --host HOST   address to listen on (default 127.0.0.1)
      --port N      port (default 21567; 0: any free port)
      --udp         serve UDP: each datagram is one line, answered by one datagram
      --mode MODE   threading (a thread per request, default), forking
                    (a process per request) or sync (one at a time)
    \(ServingOptions.usageLines)
      -h, --help    show this help
    """

/// `[Mon Jun  4 15:34:12 2018] ` + the line + LF, as one reply.
func stamped(_ line: ArraySlice<UInt8>) -> [UInt8] {
    var now = time(nil)
    var local = tm()
    localtime_r(&now, &local)
    var text = [CChar](repeating: 0, count: 64)
    let n = strftime(&text, text.count, "[%a %b %e %H:%M:%S %Y] ", &local)
    return text[..<n].map { UInt8(bitPattern: $0) } + line + [0x0A]
}

/// TCP: one reply per line until the client closes.
final class TimestampHandler: StreamRequestHandler {
    override var timeout: Double? { 300 }

    override func handle() throws {
        // A proxy's health check (a PROXY LOCAL header) that closes right
        // after it is not news: it is announced only once it sends a line.
        var announced = false
        func announce() {
            if announced { return }
            announced = true
            log("connected from \(clientAddress)", event: "connection.opened", fields: [LogField("peer", "\(clientAddress)")])
        }
        if !isHealthCheck { announce() }
        try answeringLongLines {
            while let line = try rfile.readLine(maxLength: 65536) {
                announce()
                try wfile.write(stamped(lineContent(line)))
            }
        }
    }
}

/// UDP: one reply datagram per datagram.
final class TimestampDatagramHandler: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write(stamped(lineContent(packet)))
    }
}

let args = Arguments(usage: usage, valued: ["--mode"] + ServingOptions.valued, flags: ["--udp"] + ServingOptions.flags)
args.expectOperands(0...0)
let (host, port, mode) = (args.host, args.port(default: 21567), args.mode)

let udp = args.flag("--udp")
let serving = ServingOptions(args, transport: udp ? .udp : .tcp)
let server: TCPServer = serving.listen(on: hostPort(host, port), {
    if udp {
        switch mode {
        case .threading: try ThreadingUDPServer((host, port), TimestampDatagramHandler.self)
        case .forking: try ForkingUDPServer((host, port), TimestampDatagramHandler.self)
        case .sync: try UDPServer((host, port), TimestampDatagramHandler.self)
        }
    } else {
        switch mode {
        case .threading: try ThreadingTCPServer((host, port), TimestampHandler.self)
        case .forking: try ForkingTCPServer((host, port), TimestampHandler.self)
        case .sync: try TCPServer((host, port), TimestampHandler.self)
        }
    }
}, adopting: { socket in
    if udp {
        switch mode {
        case .threading: try ThreadingUDPServer(socket: socket, TimestampDatagramHandler.self)
        case .forking: try ForkingUDPServer(socket: socket, TimestampDatagramHandler.self)
        case .sync: try UDPServer(socket: socket, TimestampDatagramHandler.self)
        }
    } else {
        switch mode {
        case .threading: try ThreadingTCPServer(socket: socket, TimestampHandler.self)
        case .forking: try ForkingTCPServer(socket: socket, TimestampHandler.self)
        case .sync: try TCPServer(socket: socket, TimestampHandler.self)
        }
    }
})
serve(server)
