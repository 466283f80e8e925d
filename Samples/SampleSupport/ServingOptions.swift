#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SocketServer
import SocketServerTLS

/// The serving options every sample server takes on top of its own (see
/// Samples/README.md, "Serving options"): TLS, limits, address filters,
/// the PROXY protocol, systemd socket activation, the log format. Each is
/// off unless given.
///
/// ```swift
/// let args = Arguments(usage: usage, valued: ServingOptions.valued + ["--mode"], flags: ServingOptions.flags)
/// let serving = ServingOptions(args, transport: .tcp)
/// let server = serving.listen(on: hostPort(host, port)) { try ThreadingTCPServer((host, port), H.self) }
///                                 adopting: { try ThreadingTCPServer(socket: $0, H.self) }
/// serve(server)
/// ```
public struct ServingOptions: Sendable {
    /// The options that take a value.
    public static let valued = ["--tls-cert", "--tls-key", "--max-connections", "--max-per-client",
                                "--allow", "--deny", "--proxy-protocol", "--log-format"]
    /// The options without one.
    public static let flags = ["--systemd"]
    /// Their lines for a usage text.
    public static let usageLines = """
          --tls-cert FILE        serve TLS with this certificate chain (PEM; needs --tls-key)
          --tls-key FILE         the private key of --tls-cert (PEM)
          --max-connections N    serve at most N connections at once; the next ones wait
          --max-per-client N     at most N connections at once from one client address
          --allow CIDR,...       serve only clients inside these networks
          --deny CIDR,...        never serve clients inside these networks (deny wins)
          --proxy-protocol CIDR,...
                                 peers in these networks are proxies: read their PROXY
                                 protocol header (v1 or v2) and serve the client it names
          --systemd              take the listening socket from systemd (LISTEN_FDS)
          --log-format FORMAT    text (default) or logfmt (key=value lines on stderr)
    """

    /// What the server listens on.
    public enum Transport: Sendable { case tcp, udp, unix }

    public let tls: TLSContext?
    public let limits: ConnectionLimits
    public let filter: AddressFilter
    public let proxy: ProxyProtocolConfig?
    public let systemd: Bool
    public let logfmt: Bool

    /// Parses and checks the options: a usage error (exit 2) for a bad
    /// value, TLS or PROXY options with UDP or Unix, one TLS file without
    /// the other; a certificate that cannot be loaded exits 1.
    public init(_ args: Arguments, transport: Transport) {
        func positive(_ option: String) -> Int? {
            guard args.value(option) != nil else { return nil }
            let n = args.count(option, default: 0)
            if n < 1 { args.usageError("bad value \(n) for \(option) (expected at least 1)") }
            return n
        }
        func networks(_ option: String) -> [CIDR] {
            guard let text = args.value(option) else { return [] }
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
            do {
                return try parts.map { try CIDR($0.trimmingASCIISpaces()) }
            } catch {
                args.usageError("bad network in \(option): \(text)")
            }
        }
        let cert = args.value("--tls-cert"), key = args.value("--tls-key")
        if (cert == nil) != (key == nil) { args.usageError("--tls-cert and --tls-key go together") }
        if transport != .tcp {
            for option in ["--tls-cert", "--tls-key", "--proxy-protocol"] where args.value(option) != nil {
                args.usageError("\(option) needs TCP (not \(transport == .udp ? "--udp" : "--unix"))")
            }
        }
        limits = ConnectionLimits(maxConnections: positive("--max-connections"), policy: .wait,
                                  maxPerClient: positive("--max-per-client"))
        filter = AddressFilter(allow: networks("--allow"), deny: networks("--deny"))
        let proxied = networks("--proxy-protocol")
        proxy = proxied.isEmpty ? nil : ProxyProtocolConfig(trusted: proxied)
        systemd = args.flag("--systemd")
        logfmt = args.choice("--log-format", ["text", "logfmt"], default: "text") == "logfmt"
        if let cert, let key {
            do {
                tls = try TLSContext(certificateChainFile: cert, privateKeyFile: key)
            } catch {
                fail("cannot load TLS certificate: \(reason(error))")
            }
        } else {
            tls = nil
        }
        if logfmt { sampleLog.withLock { $0 = LogfmtLogSink() } }
    }

    /// Makes the server: from the socket systemd passed (`--systemd`) with
    /// `adopting`, else with `make`; then applies the options. Cannot
    /// listen: `error: cannot listen on WHERE: REASON`, exit 1.
    public func listen<S: TCPServer>(on whereText: String, _ make: () throws -> S,
                                     adopting: (Socket) throws -> S) -> S {
        let server: S
        if systemd {
            let passed: [ListenFD]
            do { passed = try Socket.listenFDs() } catch { fail("no socket passed by systemd (LISTEN_FDS): \(reason(error))") }
            guard let first = passed.first else { fail("no socket passed by systemd (LISTEN_FDS)") }
            server = listening(on: "the socket from systemd") { try adopting(first.socket) }
        } else {
            server = listening(on: whereText, make)
        }
        apply(to: server)
        return server
    }

    /// Sets the options on a server made some other way.
    public func apply(to server: BaseServer) {
        server.limits = limits
        server.addressFilter = filter
        server.proxyProtocol = proxy
        if let tls { server.enableTLS(tls) }
        server.logSink = logfmt ? LogfmtLogSink() : TextLogSink()
    }
}

/// Where the samples' own log lines go (``log(_:event:fields:)``): plain
/// lines, or logfmt with `--log-format logfmt`.
let sampleLog = Locked<any LogSink>(TextLogSink())

/// Logs one line on stderr, through the sample's log format: plain text,
/// or a logfmt record with `event` and `fields`.
public func log(_ message: String, event: String = "sample", fields: [LogField] = []) {
    sampleLog.withLock { $0 }.log(LogRecord(level: .info, event: event, message: message, fields: fields))
}

extension String {
    func trimmingASCIISpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
