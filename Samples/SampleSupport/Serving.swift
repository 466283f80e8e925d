#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SocketServer
import SocketServerTLS

/// `--mode`: how a server runs its requests.
public enum ServerMode: String, Sendable, CaseIterable {
    /// One thread per connection (``ThreadingTCPServer``).
    case threading
    /// One process per connection (``ForkingTCPServer``).
    case forking
    /// One connection at a time, on the serving thread (``TCPServer``).
    case sync
}

extension Arguments {
    /// `--mode threading|forking|sync`, `threading` by default.
    public var mode: ServerMode {
        ServerMode(rawValue: choice("--mode", ServerMode.allCases.map(\.rawValue), default: "threading"))!
    }
}

/// Makes the server; if it cannot listen, prints
/// `error: cannot listen on WHERE: REASON` and exits 1.
public func listening<S: TCPServer>(on whereText: String, _ make: () throws -> S) -> S {
    do {
        return try make()
    } catch {
        fail("cannot listen on \(whereText): \(reason(error))")
    }
}

/// The system's message for an error (`Connection refused`), without the
/// operation the library's own description starts with.
public func reason(_ error: any Error) -> String {
    if let e = error as? SocketError { return e.reason }
    if let e = error as? TLSError { return e.reason }
    if let e = error as? Errno { return e.message }
    return "\(error)"
}

/// How a server is named in the `listening on` line: `127.0.0.1:PORT`,
/// `[::1]:PORT`, `unix:PATH`.
public func displayAddress(_ address: SocketAddress) -> String {
    if address.family == .unix { return "unix:\(address.path ?? "")" }
    return address.description
}

/// How long open connections may go on after SIGINT or SIGTERM.
public let shutdownGrace = 2.0

/// Runs a server the way every sample server runs:
///
/// 1. prints `listening on ADDRESS` as the first line of stdout, flushed;
/// 2. serves until SIGINT or SIGTERM;
/// 3. on the signal, closes gracefully (``BaseServer/shutdownOnSignals(_:gracePeriod:then:)``):
///    stops accepting at once, lets open connections go on for up to 2
///    seconds, cuts the rest, removes a Unix socket file;
/// 4. exits 0.
public func serve(_ server: TCPServer) -> Never {
    do {
        try server.shutdownOnSignals(gracePeriod: shutdownGrace)
    } catch {
        fail("cannot handle signals: \(reason(error))")
    }
    print("listening on \(displayAddress(server.serverAddress))")
    fflush(stdout)
    do {
        try server.serveForever()
    } catch {
        printError("error: \(error)\n")
    }
    server.serverClose()  // waits for the graceful close the signal started
    fflush(nil)
    exit(0)
}

/// Sleeps, resuming after signals.
public func sleepSeconds(_ seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

extension StreamRequestHandler {
    /// Runs `body`, the handler's line loop; if it meets a line longer than
    /// its limit (``StreamError/lineTooLong(maxLength:)``), sends `reply` and
    /// ends the connection politely (``lingeringClose(_:)``).
    public func answeringLongLines(with reply: String = "error: line too long\n", _ body: () throws -> Void) throws {
        do {
            try body()
        } catch StreamError.lineTooLong {
            try wfile.write(reply)
            try wfile.flush()
            lingeringClose(connection)
        }
    }
}

/// Ends a connection whose peer may still be sending: shuts down our side
/// (the peer reads end of file after our last reply), then reads and
/// discards what still comes, for at most a second and 1 MiB, so that the
/// close does not reset the connection and destroy that last reply before
/// the peer has read it.
public func lingeringClose(_ socket: Socket) {
    try? socket.shutdown(.write)
    try? socket.setTimeout(1)
    var discarded = 0
    var buffer = [UInt8](repeating: 0, count: 16384)
    while discarded < 1 << 20 {
        guard let n = try? socket.recv(into: &buffer), n > 0 else { break }
        discarded += n
    }
}

/// A line's content: its bytes without the LF and one CR right before it.
/// A CR without an LF after it (a datagram `ping\r`, the last bytes before
/// end of file) is content, and stays.
public func lineContent(_ line: [UInt8]) -> ArraySlice<UInt8> {
    var end = line.count
    guard end > 0 && line[end - 1] == 0x0A else { return line[...] }
    end -= 1
    if end > 0 && line[end - 1] == 0x0D { end -= 1 }
    return line[..<end]
}


