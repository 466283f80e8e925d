/// A PROXY protocol header (HAProxy's `doc/proxy-protocol.txt`, versions 1
/// and 2): what a proxy in front of the server says about the connection it
/// relays — the client's address (``source``), the address the client
/// connected to (``destination``), and in version 2 extra fields
/// (``tlvs``: ALPN, authority, unique id, TLS details).
///
/// Parse one with `parse(_:maxLength:)` (bytes in memory) or
/// ``read(from:timeout:maxLength:)`` (a connection); make one with
/// ``encode(_:checksum:)``, for a client or a test standing in for a proxy:
///
/// ```swift
/// let header = ProxyHeader(source: try SocketAddress(ipv4: "203.0.113.7", port: 51000),
///                          destination: try SocketAddress(ipv4: "10.0.0.1", port: 443))
/// try connection.sendAll(try header.encode(.v2))
/// ```
public struct ProxyHeader: Sendable, Hashable {
    /// The protocol version: 1 is a text line, 2 a binary block.
    public enum Version: Sendable, Hashable {
        /// Version 1: one text line (`PROXY TCP4 ...`).
        case v1
        /// Version 2: a binary block after a 12-byte signature.
        case v2
    }
    /// What the proxy says about the connection.
    public enum Command: Sendable, Hashable {
        /// Made by the proxy itself (a health check): the real endpoints
        /// apply, and no client is named.
        case local
        /// Relayed for a client: ``source`` and ``destination`` name it
        /// (unless the family is unspecified, v1's `UNKNOWN`).
        case proxy
    }
    /// The address family of the relayed connection.
    public enum Family: UInt8, Sendable, Hashable {
        /// Not given (v1 `UNKNOWN`, v2 `AF_UNSPEC`): the real endpoints apply.
        case unspecified = 0
        /// IPv4 (v1 `TCP4`).
        case inet = 1
        /// IPv6 (v1 `TCP6`).
        case inet6 = 2
        /// Unix sockets (v2 only).
        case unix = 3
    }
    /// The transport of the relayed connection (v2; v1 is always stream).
    public enum Transport: UInt8, Sendable, Hashable {
        /// Not given.
        case unspecified = 0
        /// A stream (TCP, Unix stream).
        case stream = 1
        /// Datagrams (UDP, Unix datagram).
        case datagram = 2
    }

    /// The version the header was read in (for one made in code: `.v2`;
    /// ``encode(_:checksum:)`` writes either).
    public var version: Version
    /// LOCAL (health check) or PROXY.
    public var command: Command
    /// The family of ``source`` and ``destination``.
    public var family: Family
    /// The relayed transport.
    public var transport: Transport
    /// The client's address, as the proxy saw it; nil for LOCAL and for an
    /// unspecified family.
    public var source: SocketAddress?
    /// The address the client connected to (the proxy's frontend); nil
    /// when ``source`` is.
    public var destination: SocketAddress?
    /// The version 2 type-length-value fields, in the order sent (empty
    /// for v1 and for LOCAL).
    public var tlvs: [ProxyTLV]

    /// A header for a relayed connection from `source` to `destination`
    /// (both IPv4, both IPv6, or both Unix); nil addresses make one with an
    /// unspecified family (v1 `UNKNOWN`).
    public init(command: Command = .proxy, source: SocketAddress?, destination: SocketAddress?,
                transport: Transport = .stream, tlvs: [ProxyTLV] = []) {
        self.version = .v2
        self.command = command
        self.source = source
        self.destination = destination
        self.transport = transport
        self.tlvs = tlvs
        switch source?.family {
        case .some(.inet): family = .inet
        case .some(.inet6): family = .inet6
        case .some(.unix): family = .unix
        default: family = .unspecified
        }
    }

    /// A LOCAL header: what a proxy's health check sends.
    public static let local = ProxyHeader(command: .local, source: nil, destination: nil, transport: .unspecified)

    /// The first value of type `type`, if any.
    public func tlv(_ type: UInt8) -> [UInt8]? { tlvs.first { $0.type == type }?.value }

    /// The application protocol the client negotiated (ALPN, type 0x01), as bytes.
    public var alpn: [UInt8]? { tlv(ProxyTLV.alpn) }
    /// The application protocol as text (`"h2"`).
    public var alpnProtocol: String? { alpn.map { String(decoding: $0, as: UTF8.self) } }
    /// The host name the client asked for (AUTHORITY, type 0x02: TLS SNI or the like).
    public var authority: String? { tlv(ProxyTLV.authority).map { String(decoding: $0, as: UTF8.self) } }
    /// The proxy's opaque id for the connection (UNIQUE_ID, type 0x05, up to 128 bytes).
    public var uniqueID: [UInt8]? { tlv(ProxyTLV.uniqueID) }
    /// Whether a CRC32C field (type 0x03) was present; a header whose
    /// checksum does not match is never returned.
    public var hasChecksum: Bool { tlv(ProxyTLV.crc32c) != nil }
    /// The network namespace the proxy accepted the connection in (NETNS, type 0x30).
    public var networkNamespace: String? { tlv(ProxyTLV.netns).map { String(decoding: $0, as: UTF8.self) } }
    /// The TLS details of the client's connection to the proxy (SSL, type
    /// 0x20); nil when absent or malformed (a malformed one fails the parse).
    public var ssl: ProxySSL? { tlv(ProxyTLV.ssl).flatMap { try? ProxySSL(parsing: $0) } }
}

/// One type-length-value field of a version 2 header.
public struct ProxyTLV: Sendable, Hashable {
    /// The type (see the constants: ``alpn``, ``authority``, ...; 0xE0–0xEF are for private use).
    public var type: UInt8
    /// The value, at most 65535 bytes.
    public var value: [UInt8]

    /// A field of `type` holding `value`.
    public init(type: UInt8, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// PP2_TYPE_ALPN: the negotiated application protocol.
    public static let alpn: UInt8 = 0x01
    /// PP2_TYPE_AUTHORITY: the host name (SNI).
    public static let authority: UInt8 = 0x02
    /// PP2_TYPE_CRC32C: a CRC32C of the whole header, checked when present.
    public static let crc32c: UInt8 = 0x03
    /// PP2_TYPE_NOOP: padding, ignored.
    public static let noop: UInt8 = 0x04
    /// PP2_TYPE_UNIQUE_ID: an opaque connection id.
    public static let uniqueID: UInt8 = 0x05
    /// PP2_TYPE_SSL: TLS details, with sub-fields (``ProxySSL``).
    public static let ssl: UInt8 = 0x20
    /// PP2_TYPE_NETNS: a network namespace name.
    public static let netns: UInt8 = 0x30
}

/// The TLS details a proxy that terminated TLS passes on (the SSL field,
/// type 0x20, of a version 2 header).
public struct ProxySSL: Sendable, Hashable {
    /// PP2_CLIENT_* flags: 0x01 the client used TLS, 0x02 it sent a
    /// certificate on this connection, 0x04 on this session.
    public var client: UInt8
    /// 0 when the client's certificate was verified (or none was sent).
    public var verify: UInt32
    /// The sub-fields (types 0x21–0x28: version, CN, cipher, signature
    /// algorithm, key algorithm, group, signature scheme, client certificate).
    public var tlvs: [ProxyTLV]

    /// TLS details with the given flags, verify result and sub-fields.
    public init(client: UInt8, verify: UInt32, tlvs: [ProxyTLV] = []) {
        self.client = client
        self.verify = verify
        self.tlvs = tlvs
    }

    /// Whether the client's connection to the proxy used TLS.
    public var usedTLS: Bool { client & 0x01 != 0 }
    /// Whether the client presented a certificate (on this connection or session).
    public var presentedCertificate: Bool { client & 0x06 != 0 }
    /// The TLS version (`"TLSv1.3"`), PP2_SUBTYPE_SSL_VERSION.
    public var tlsVersion: String? { text(0x21) }
    /// The client certificate's common name, PP2_SUBTYPE_SSL_CN.
    public var commonName: String? { text(0x22) }
    /// The cipher (`"TLS_AES_256_GCM_SHA384"`), PP2_SUBTYPE_SSL_CIPHER.
    public var cipher: String? { text(0x23) }
    /// The certificate's signature algorithm, PP2_SUBTYPE_SSL_SIG_ALG.
    public var signatureAlgorithm: String? { text(0x24) }
    /// The certificate's key algorithm, PP2_SUBTYPE_SSL_KEY_ALG.
    public var keyAlgorithm: String? { text(0x25) }

    private func text(_ type: UInt8) -> String? {
        tlvs.first { $0.type == type }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// Parses the value of an SSL field: flags, verify, then sub-fields.
    init(parsing value: [UInt8]) throws {
        guard value.count >= 5 else { throw ProxyProtocolError.invalid("SSL field shorter than 5 bytes") }
        client = value[0]
        verify = UInt32(value[1]) << 24 | UInt32(value[2]) << 16 | UInt32(value[3]) << 8 | UInt32(value[4])
        tlvs = try ProxyWire.tlvs(value[5...])
    }

    /// The value of an SSL field.
    var encoded: [UInt8] {
        var out: [UInt8] = [client, UInt8(verify >> 24), UInt8(verify >> 16 & 0xff), UInt8(verify >> 8 & 0xff), UInt8(verify & 0xff)]
        for t in tlvs { out += [t.type, UInt8(t.value.count >> 8), UInt8(t.value.count & 0xff)] + t.value }
        return out
    }
}

/// Why a PROXY protocol header was refused. The connection is then closed
/// without its handler running: the spec forbids using a connection whose
/// header is not valid.
public enum ProxyProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first bytes are neither `PROXY ` (v1) nor the v2 signature.
    case notAHeader
    /// A header, but not a valid one (the reason says where).
    case invalid(String)
    /// Longer than allowed: 107 bytes for v1, the configured limit for v2.
    case tooLong(limit: Int)
    /// The peer ended the connection in the middle of the header.
    case truncated(received: Int)
    /// The peer closed without sending a byte: a proxy's plain connect
    /// check. Not an error: the server drops it silently.
    case closedBeforeHeader
    /// The CRC32C field does not match the header.
    case checksumMismatch

    /// True for what a proxy's health check does: connect, then close
    /// before sending anything (``closedBeforeHeader``).
    public var isHealthCheck: Bool { self == .closedBeforeHeader }

    /// What went wrong, as one line (`PROXY protocol: invalid header: LF without CR`).
    public var description: String {
        switch self {
        case .notAHeader: return "PROXY protocol: no header (the connection does not start with one)"
        case .invalid(let why): return "PROXY protocol: invalid header: \(why)"
        case .tooLong(let limit): return "PROXY protocol: header longer than \(limit) bytes"
        case .truncated(let n): return "PROXY protocol: connection closed after \(n) bytes of the header"
        case .closedBeforeHeader: return "PROXY protocol: connection closed before the header"
        case .checksumMismatch: return "PROXY protocol: CRC32C checksum mismatch"
        }
    }
}
