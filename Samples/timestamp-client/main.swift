// timestamp-client: sends each line typed (or piped) to timestamp-server and
// prints the stamped reply.
import SampleSupport
import SocketServer

let usage = """
    usage: timestamp-client [--host HOST] [--port 21567] [--udp] [--timeout SECONDS]
                            [--tls] [--ca FILE] [--server-name NAME]

    Sends each line of stdin to timestamp-server and prints its reply. An
    empty line or end of input ends it.

    options:
      --host HOST      server address (default 127.0.0.1)
      --port N         server port (default 21567)
      --udp            talk UDP
      --timeout SECS   how long to wait for each reply (default 5)
    \(ClientTLSOptions.usageLines)
      -h, --help       show this help
    """

let args = Arguments(usage: usage, valued: ["--timeout"] + ClientTLSOptions.valued, flags: ["--udp"] + ClientTLSOptions.flags)
args.expectOperands(0...0)
let (host, port, udp) = (args.host, args.port(default: 21567), args.flag("--udp"))
let timeoutText = args.value("--timeout") ?? "5"
guard let timeout = Double(timeoutText), timeout > 0, timeout.isFinite else {
    args.usageError("bad value \(timeoutText) for --timeout (expected seconds > 0)")
}

if udp && ClientTLSOptions.wanted(args) { args.usageError("--tls, --ca and --server-name need TCP (not --udp)") }
let stream: any ByteStream = udp ? connecting(host: host, port: port, type: .datagram) : connectingStream(args, host: host, port: port)
let socket = stream.socket
try? socket.setTimeout(timeout)
let replies = SocketReader(stream: stream)
let input = InputLines()
let prompt = isTerminal(0)

while true {
    if prompt { printBytes("> ".utf8) }
    guard let line = input.next() else {
        if prompt { printBytes("\n".utf8) }  // Ctrl-D: end the prompt's line
        break
    }
    if lineContent(line).isEmpty { break }
    do {
        let reply: [UInt8]?
        if udp {
            try socket.sendAll(lineContent(line) + [0x0A])
            reply = try socket.recv(65536 + 64)
        } else {
            try stream.sendAll(line.last == 0x0A ? line : line + [0x0A])
            reply = try replies.readLine(maxLength: 1 << 20)
        }
        guard let reply, !reply.isEmpty else { fail("connection closed by server") }
        printBytes(reply)
    } catch SocketError.timeout {
        fail("no reply within \(timeoutText)s")
    } catch Errno.connectionRefused where udp {
        fail("cannot connect to \(hostPort(host, port)): \(Errno.connectionRefused.message)")
    } catch Errno.connectionReset, Errno.brokenPipe {
        fail("connection closed by server")
    } catch {
        fail("\(error)")
    }
}
