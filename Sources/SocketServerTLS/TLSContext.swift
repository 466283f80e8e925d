internal import COpenSSL
import SocketServer

/// A TLS protocol version.
public enum TLSVersion: Int, Sendable, Comparable, CustomStringConvertible {
    /// TLS 1.2 (RFC 5246).
    case v1_2 = 0x0303
    /// TLS 1.3 (RFC 8446).
    case v1_3 = 0x0304

    /// OpenSSL's name: `TLSv1.2`, `TLSv1.3`.
    public var description: String { self == .v1_2 ? "TLSv1.2" : "TLSv1.3" }

    /// Orders by protocol number.
    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.rawValue < b.rawValue }
}

/// Which certificates a server asks its clients for.
public enum TLSClientCertificates: Sendable, Equatable {
    /// None (the default).
    case none
    /// Asks for one, verified against the CA certificates in `caFile`; a
    /// client without one is still served.
    case optional(caFile: String)
    /// Requires one, verified against the CA certificates in `caFile`.
    case required(caFile: String)
}

/// Whom a client trusts.
public enum TLSTrust: Sendable, Equatable {
    /// The system's trusted certificates (OpenSSL's default paths).
    case system
    /// The certificates in a PEM file (a private CA, a self-signed server).
    case caFile(String)
    /// No one and everyone: no verification at all. For tests only.
    case insecureNoVerification
}

/// How a server speaks TLS: its certificate and what it accepts.
public struct TLSServerConfiguration: Sendable, Equatable {
    /// The certificate chain, PEM: the server's certificate first, then
    /// the intermediates.
    public var certificateChainFile: String
    /// The private key, PEM, unencrypted.
    public var privateKeyFile: String
    /// The oldest version accepted: TLS 1.2 by default.
    public var minimumVersion: TLSVersion = .v1_2
    /// The newest version offered; nil: the newest OpenSSL has.
    public var maximumVersion: TLSVersion? = nil
    /// The ALPN protocols offered, in order of preference (`h2`,
    /// `http/1.1`); empty: no ALPN. A client offering none of them is
    /// served without one.
    public var alpnProtocols: [String] = []
    /// Seconds for a whole handshake, however the peer sends it (one
    /// deadline, not a time-out per receive): 10 by default.
    public var handshakeTimeout: Double = 10
    /// Client certificates: none asked for by default.
    public var clientCertificates: TLSClientCertificates = .none

    /// A configuration with a certificate chain and its key, and defaults.
    public init(certificateChainFile: String, privateKeyFile: String, minimumVersion: TLSVersion = .v1_2,
                maximumVersion: TLSVersion? = nil, alpnProtocols: [String] = [], handshakeTimeout: Double = 10,
                clientCertificates: TLSClientCertificates = .none) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.alpnProtocols = alpnProtocols
        self.handshakeTimeout = handshakeTimeout
        self.clientCertificates = clientCertificates
    }
}

/// How a client speaks TLS: whom it trusts and what it checks.
public struct TLSClientConfiguration: Sendable, Equatable {
    /// Whom to trust: the system's certificates by default.
    public var trust: TLSTrust = .system
    /// Whether the server's certificate must be for the server name asked
    /// for (a DNS name or an IP address): on by default.
    public var checkHostName: Bool = true
    /// The oldest version accepted: TLS 1.2 by default.
    public var minimumVersion: TLSVersion = .v1_2
    /// The newest version offered; nil: the newest OpenSSL has.
    public var maximumVersion: TLSVersion? = nil
    /// The ALPN protocols offered, in order of preference; empty: none.
    public var alpnProtocols: [String] = []
    /// Seconds for the whole handshake: 10 by default.
    public var handshakeTimeout: Double = 10
    /// A client certificate chain to present (PEM), with its key.
    public var certificateChainFile: String? = nil
    /// The key of ``certificateChainFile`` (PEM); nil: the key is in the
    /// chain file itself.
    public var privateKeyFile: String? = nil

    /// A configuration with the defaults: system trust, host names checked.
    public init(trust: TLSTrust = .system, checkHostName: Bool = true, minimumVersion: TLSVersion = .v1_2,
                maximumVersion: TLSVersion? = nil, alpnProtocols: [String] = [], handshakeTimeout: Double = 10,
                certificateChainFile: String? = nil, privateKeyFile: String? = nil) {
        self.trust = trust
        self.checkHostName = checkHostName
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.alpnProtocols = alpnProtocols
        self.handshakeTimeout = handshakeTimeout
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }
}

/// A TLS context (Python's `ssl.SSLContext`): the certificates, keys and
/// settings that every session made from it shares.
///
/// Made once, from a configuration, and never changed afterwards; OpenSSL
/// does not support changing a context that sessions use. To change
/// certificates, make a new context and hand it to the server
/// (``TLSStage/replace(_:serverNames:)`` or ``TLSStage/reload()``):
/// sessions already open keep the old one.
///
/// ```swift
/// let tls = try TLSContext(server: .init(certificateChainFile: "cert.pem",
///                                        privateKeyFile: "key.pem"))
/// server.enableTLS(tls)
/// ```
///
/// Sendable: the `SSL_CTX` is only read after `init` (OpenSSL makes sessions
/// from a shared context safely; its own counters and caches are locked
/// inside OpenSSL), and every stored property is a `let`.
public final class TLSContext: @unchecked Sendable {
    /// The OpenSSL context.
    let ctx: OpaquePointer
    /// The server configuration, for a server context.
    public let serverConfiguration: TLSServerConfiguration?
    /// The client configuration, for a client context.
    public let clientConfiguration: TLSClientConfiguration?
    /// The ALPN protocols in wire format (length-prefixed), ended by a zero
    /// byte, kept for the server's selection callback, which gets a pointer
    /// to them. Freed with the context, which every session retains.
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>

    /// Whether this is a server context.
    public var isServer: Bool { serverConfiguration != nil }

    /// Seconds a handshake may take, from the configuration.
    public var handshakeTimeout: Double {
        serverConfiguration?.handshakeTimeout ?? clientConfiguration?.handshakeTimeout ?? 10
    }

    /// A server context: loads the certificate chain and key (and the CA of
    /// client certificates). Throws ``TLSError`` (kind `.configuration`) if
    /// a file cannot be read, is not PEM, or the key does not match.
    public init(server configuration: TLSServerConfiguration) throws {
        guard configuration.handshakeTimeout > 0 else {
            throw TLSError(.configuration, operation: "make TLS context", reason: "handshake time-out must be positive")
        }
        let wire = try TLSContext.alpnWireFormat(configuration.alpnProtocols)
        OpenSSLErrors.clear()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw OpenSSLErrors.configurationError("make TLS context") }
        self.ctx = ctx
        self.serverConfiguration = configuration
        self.clientConfiguration = nil
        self.alpnWire = TLSContext.terminated(wire)
        try configureCommon(server: true, minimum: configuration.minimumVersion, maximum: configuration.maximumVersion)
        let chain = configuration.certificateChainFile, key = configuration.privateKeyFile
        guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
            throw OpenSSLErrors.configurationError("load certificate chain \(chain)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
            throw OpenSSLErrors.configurationError("load private key \(key)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw OpenSSLErrors.configurationError("check private key \(key) against \(chain)")
        }
        switch configuration.clientCertificates {
        case .none:
            break
        case .optional(let ca), .required(let ca):
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                throw OpenSSLErrors.configurationError("load CA file \(ca)")
            }
            if let names = SSL_load_client_CA_file(ca) { SSL_CTX_set_client_CA_list(ctx, names) }
            var mode = SSL_VERIFY_PEER
            if case .required = configuration.clientCertificates { mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
            SSL_CTX_set_verify(ctx, mode, nil)
        }
        // Sessions resumed with client certificates need an id context.
        let sid = Array("SocketServerTLS".utf8)
        _ = sid.withUnsafeBufferPointer { SSL_CTX_set_session_id_context(ctx, $0.baseAddress, UInt32($0.count)) }
        if !wire.isEmpty {
            SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, UnsafeMutableRawPointer(alpnWire.baseAddress))
        }
        _ = cssl_ctx_set_servername_callback(ctx, serverNameCallback)
    }

    /// A client context: the trust store, host-name checking, ALPN.
    /// Throws ``TLSError`` (kind `.configuration`) if the CA file cannot be
    /// loaded.
    public init(client configuration: TLSClientConfiguration = TLSClientConfiguration()) throws {
        guard configuration.handshakeTimeout > 0 else {
            throw TLSError(.configuration, operation: "make TLS context", reason: "handshake time-out must be positive")
        }
        let wire = try TLSContext.alpnWireFormat(configuration.alpnProtocols)
        OpenSSLErrors.clear()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw OpenSSLErrors.configurationError("make TLS context") }
        self.ctx = ctx
        self.serverConfiguration = nil
        self.clientConfiguration = configuration
        self.alpnWire = TLSContext.terminated(wire)
        try configureCommon(server: false, minimum: configuration.minimumVersion, maximum: configuration.maximumVersion)
        switch configuration.trust {
        case .system:
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw OpenSSLErrors.configurationError("load the system's trusted certificates")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .caFile(let ca):
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                throw OpenSSLErrors.configurationError("load CA file \(ca)")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .insecureNoVerification:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if let chain = configuration.certificateChainFile {
            let key = configuration.privateKeyFile ?? chain
            guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
                throw OpenSSLErrors.configurationError("load certificate chain \(chain)")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1,
                  SSL_CTX_check_private_key(ctx) == 1 else {
                throw OpenSSLErrors.configurationError("load private key \(key)")
            }
        }
        if !wire.isEmpty {
            // Inverted convention: 0 is success.
            guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else {
                throw OpenSSLErrors.configurationError("set ALPN protocols")
            }
        }
    }

    /// A server context from a certificate chain and key, with defaults.
    public convenience init(certificateChainFile: String, privateKeyFile: String) throws {
        try self.init(server: TLSServerConfiguration(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile))
    }

    /// A new context made from the same configuration, the files read
    /// again: what a certificate reload swaps in. Throws as `init` does,
    /// leaving this one as it was.
    public func reloaded() throws -> TLSContext {
        if let serverConfiguration { return try TLSContext(server: serverConfiguration) }
        return try TLSContext(client: clientConfiguration!)
    }

    deinit {
        SSL_CTX_free(ctx)
        alpnWire.deallocate()
    }

    private func configureCommon(server: Bool, minimum: TLSVersion, maximum: TLSVersion?) throws {
        _ = SSL_CTX_set_options(ctx, cssl_default_options(server ? 1 : 0))
        guard cssl_ctx_set_min_proto_version(ctx, Int32(minimum.rawValue)) == 1,
              cssl_ctx_set_max_proto_version(ctx, Int32(maximum?.rawValue ?? 0)) == 1 else {
            throw OpenSSLErrors.configurationError("set TLS versions")
        }
        if let maximum, maximum < minimum {
            throw TLSError(.configuration, operation: "set TLS versions",
                           reason: "maximum \(maximum) is older than minimum \(minimum)")
        }
    }

    /// `wire` and a zero byte after it, in memory the callback may keep.
    static func terminated(_ wire: [UInt8]) -> UnsafeMutableBufferPointer<UInt8> {
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: wire.count + 1)
        _ = buffer.initialize(from: wire + [0])
        return buffer
    }

    /// ALPN names in wire format: each a length byte and 1 to 255 bytes.
    static func alpnWireFormat(_ protocols: [String]) throws -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError(.configuration, operation: "set ALPN protocols",
                               reason: "protocol name \"\(name)\" must be 1 to 255 bytes")
            }
            wire.append(UInt8(bytes.count))
            wire += bytes
        }
        return wire
    }
}

/// The server's ALPN choice: the first of its own protocols the client
/// offered; none (no ALPN in the reply) when they share none.
private func alpnSelect(_ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                        _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?,
                        _ offeredLength: UInt32, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard let arg, let offered, let out, let outLength else { return SSL_TLSEXT_ERR_NOACK }
    let ours = arg.assumingMemoryBound(to: UInt8.self)
    // Walk our list in order; return the first one the client offered.
    var i = 0
    let total = alpnTotalLength(ours)
    while i < total {
        let n = Int(ours[i])
        var j = 0
        while j < Int(offeredLength) {
            let m = Int(offered[j])
            if m == n && memcmp(ours + i + 1, offered + j + 1, n) == 0 {
                out.pointee = offered + j + 1
                outLength.pointee = UInt8(m)
                return SSL_TLSEXT_ERR_OK
            }
            j += 1 + m
        }
        i += 1 + n
    }
    return SSL_TLSEXT_ERR_NOACK
}

/// The length of a wire-format list ended by a zero byte (names are never
/// empty, so no length byte is 0): see `TLSContext.terminated(_:)`.
private func alpnTotalLength(_ list: UnsafePointer<UInt8>) -> Int {
    var i = 0
    while list[i] != 0 { i += 1 + Int(list[i]) }
    return i
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
