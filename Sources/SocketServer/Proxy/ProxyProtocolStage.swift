/// Where a server accepts PROXY protocol headers from, and how long it
/// waits for one: ``BaseServer/proxyProtocol``.
///
/// ```swift
/// let server = try ThreadingTCPServer(("0.0.0.0", 8000), Echo.self)
/// server.proxyProtocol = try ProxyProtocolConfig(trusted: ["10.0.0.0/8", "127.0.0.1"])
/// ```
///
/// Only a connection whose peer is in ``trusted`` is read for a header,
/// and it must send one (v1 or v2) within ``headerTimeout``, or it is
/// closed without a handler. From any other peer nothing is ever taken as
/// a header: its bytes, `PROXY ...` or not, are the handler's data (the
/// spec forbids guessing; accepting a header from anyone lets any client
/// claim any address).
public struct ProxyProtocolConfig: Sendable, Hashable {
    /// The networks of the proxies whose headers are believed.
    public var trusted: [CIDR]
    /// Whether peers on a Unix socket (a proxy on the same machine) are
    /// trusted; they have no IP address to match. Off.
    public var trustsUnixPeers: Bool
    /// The seconds a trusted peer has to send its whole header: one
    /// deadline for all of it, lifted once it is read. 5 (the spec asks
    /// for at least 3).
    public var headerTimeout: Double
    /// The longest v2 header accepted (16 bytes plus its length field).
    public var maxHeaderLength: Int
    /// The versions accepted; a header of another one closes the connection.
    public var versions: Set<ProxyHeader.Version>

    /// Headers from `trusted` networks, within `headerTimeout` seconds.
    public init(trusted: [CIDR], trustsUnixPeers: Bool = false, headerTimeout: Double = 5,
                maxHeaderLength: Int = ProxyHeader.defaultMaxLength, versions: Set<ProxyHeader.Version> = [.v1, .v2]) {
        self.trusted = trusted
        self.trustsUnixPeers = trustsUnixPeers
        self.headerTimeout = headerTimeout
        self.maxHeaderLength = maxHeaderLength
        self.versions = versions
    }

    /// As ``init(trusted:trustsUnixPeers:headerTimeout:maxHeaderLength:versions:)``,
    /// with the networks written out (`"10.0.0.0/8"`, `"::1"`; see ``CIDR/init(_:)``).
    public init(trusted: [String], trustsUnixPeers: Bool = false, headerTimeout: Double = 5,
                maxHeaderLength: Int = ProxyHeader.defaultMaxLength, versions: Set<ProxyHeader.Version> = [.v1, .v2]) throws {
        self.init(trusted: try CIDR.list(trusted), trustsUnixPeers: trustsUnixPeers, headerTimeout: headerTimeout,
                  maxHeaderLength: maxHeaderLength, versions: versions)
    }

    /// Whether a connection from `peer` must start with a header.
    public func trusts(_ peer: SocketAddress) -> Bool {
        if peer.family == .unix { return trustsUnixPeers }
        return CIDR.any(trusted, contains: peer)
    }
}

/// The step that reads a PROXY protocol header, run first on every stream
/// connection of a server with ``BaseServer/proxyProtocol`` set (before
/// the ``BaseServer/connectionStages``: the header precedes a TLS
/// ClientHello). It may also be put in `connectionStages` by hand.
///
/// For a trusted peer it reads the header through the context's reader
/// (``ConnectionContext/makeReader(bufferSize:)``), so what the peer sent
/// after it stays buffered for the handler's `rfile` or for a later stage
/// (``SocketReader/takeBuffered()``); records it as
/// ``ConnectionContext/proxyHeader``; and for a PROXY command with
/// addresses sets ``ConnectionContext/clientAddress`` to the source it
/// names. LOCAL and UNKNOWN keep the real peer.
public struct ProxyProtocolStage: ConnectionStage {
    /// The trusted networks and limits.
    public let config: ProxyProtocolConfig

    /// A stage with `config`.
    public init(_ config: ProxyProtocolConfig) { self.config = config }

    /// Reads and applies the header of a trusted peer; does nothing for others.
    public func prepare(_ connection: ConnectionContext, server: BaseServer) throws {
        guard config.trusts(connection.peerAddress) else { return }
        let reader = connection.makeReader()
        let header = try ProxyHeader.read(from: reader, timeout: config.headerTimeout, maxLength: config.maxHeaderLength)
        guard config.versions.contains(header.version) else {
            throw ProxyProtocolError.invalid("version \(header.version == .v1 ? 1 : 2) is not accepted")
        }
        connection[ProxyHeaderKey.self] = header
        // The header is not the client's data: `in=` and the stats count
        // from the bytes after it (which stay buffered in this reader).
        reader.receivedCount = UInt64(reader.bufferedCount)
        if header.command == .proxy, header.family != .unspecified, let source = header.source {
            connection.clientAddress = source
        }
        connection.isHealthCheck = ProxyProtocolStage.looksLikeHealthCheck(header, connection)
    }

    /// LOCAL (v2 checks); or a v1 line naming the proxy's own connection
    /// (HAProxy's v1 checks: source = the checker's socket, destination = us).
    static func looksLikeHealthCheck(_ header: ProxyHeader, _ connection: ConnectionContext) -> Bool {
        if header.command == .local { return true }
        guard let source = header.source, source.unmappedIPv4 == connection.peerAddress.unmappedIPv4 else { return false }
        guard let local = try? connection.socket.localAddress(), let destination = header.destination else { return false }
        return destination.unmappedIPv4 == local.unmappedIPv4
    }
}

/// The key of the PROXY header a ``ProxyProtocolStage`` read.
public enum ProxyHeaderKey: ConnectionContextKey {
    /// The header.
    public typealias Value = ProxyHeader
}

/// The key of the health-check mark (``ConnectionContext/isHealthCheck``).
public enum HealthCheckKey: ConnectionContextKey {
    /// True for a proxy's health check.
    public typealias Value = Bool
}

extension ConnectionContext {
    /// The PROXY protocol header the connection started with; nil when
    /// none was read (no ``BaseServer/proxyProtocol``, or an untrusted peer).
    public var proxyHeader: ProxyHeader? { self[ProxyHeaderKey.self] }

    /// The proxy the connection came through: ``peerAddress`` when a
    /// header was read, else nil.
    public var proxyAddress: SocketAddress? {
        guard let header = proxyHeader, header.command == .proxy, clientAddress != peerAddress else { return nil }
        return peerAddress
    }

    /// Whether the connection is a proxy's health check: a LOCAL header
    /// (v2), or a v1 header that names the proxy's own connection (what
    /// HAProxy's v1 checks send). A health check that then closes is no
    /// error: the server reports nothing (see ``BaseServer/finishRequest(_:clientAddress:)``).
    public internal(set) var isHealthCheck: Bool {
        get { self[HealthCheckKey.self] ?? false }
        set { self[HealthCheckKey.self] = newValue }
    }
}

extension BaseRequestHandler {
    /// The PROXY protocol header of this connection; nil when none was read.
    public var proxyHeader: ProxyHeader? { context?.proxyHeader }
    /// The proxy this connection came through (the peer itself), when a
    /// PROXY header was read; ``clientAddress`` is then the client it named.
    public var proxyAddress: SocketAddress? { context?.proxyAddress }
    /// Whether this connection is a proxy's health check (see ``ConnectionContext/isHealthCheck``).
    public var isHealthCheck: Bool { context?.isHealthCheck ?? false }
}

extension ProxyHeader {
    /// Reads one header from `reader`, under one deadline of `timeout`
    /// seconds for the whole of it (nil: the socket's own time-out per
    /// receive). A header split across receives is fine; the bytes after
    /// it stay buffered in `reader`. The socket's time-out is restored
    /// afterwards.
    ///
    /// Throws ``ProxyProtocolError`` for anything but a valid header
    /// (``ProxyProtocolError/closedBeforeHeader`` when the peer closed
    /// without a byte), and `SocketError.timeout` when the deadline passes.
    public static func read(from reader: SocketReader, timeout: Double?, maxLength: Int = ProxyHeader.defaultMaxLength) throws -> ProxyHeader {
        let socket = reader.socket
        let saved = socket?.timeout
        let deadline = timeout.map { Socket.monotonicNanos() &+ UInt64(max(0, $0) * 1e9) }
        defer {
            if deadline != nil, let socket, !socket.isClosed { try? socket.setTimeout(saved) }
        }
        var taken: [UInt8] = []
        while true {
            if let deadline, let socket {
                let now = Socket.monotonicNanos()
                guard now < deadline else {
                    throw SocketError.timeout(operation: "read PROXY header from", address: (try? socket.peerAddress())?.description)
                }
                try socket.setTimeout(Double(deadline - now) / 1e9)
            }
            let buffered = try reader.peek()
            if buffered.isEmpty {
                throw taken.isEmpty ? ProxyProtocolError.closedBeforeHeader : ProxyProtocolError.truncated(received: taken.count)
            }
            switch try parse(taken + buffered, maxLength: maxLength) {
            case .complete(let header, let length):
                _ = try reader.read(length - taken.count)
                return header
            case .incomplete:
                taken += try reader.read(buffered.count)
            }
        }
    }
}
