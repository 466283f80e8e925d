import SocketServer

/// The key of the negotiated ``TLSSessionInfo`` in a connection's
/// ``/SocketServer/ConnectionContext``: `context[TLSSessionKey.self]`.
public enum TLSSessionKey: ConnectionContextKey {
    /// What the handshake negotiated.
    public typealias Value = TLSSessionInfo
}

/// The step that makes a stream server speak TLS: on each connection's own
/// thread (never in the accept loop), it makes the server's handshake
/// under one deadline, then hands the handler a ``TLSStream`` as its
/// `rfile`/`wfile` stream and the session in `context[TLSSessionKey.self]`.
///
/// ```swift
/// let server = try ThreadingTCPServer(("0.0.0.0", 8443), Echo.self)
/// let context = try TLSContext(certificateChainFile: "cert.pem",
///                              privateKeyFile: "key.pem")
/// let tls = server.enableTLS(context)
/// // later, on SIGHUP: new connections get the new certificate
/// try tls.reload()
/// ```
///
/// A client that does not complete its handshake in time, speaks plain
/// text or an old version is closed without reaching the handler, and
/// delays no other client; the failure goes to the server's `handleError`
/// (a time-out or a peer that went away quietly, as always).
///
/// Certificates are replaced atomically (``reload()``,
/// ``replace(_:serverNames:)``): handshakes that start afterwards use the
/// new contexts; sessions already open keep theirs. SNI: ``serverNames``
/// gives a context by requested name (`*.example.com` matches one label);
/// the others get ``context``.
public final class TLSStage: ConnectionStage {
    private struct Contexts {
        var context: TLSContext
        var serverNames: [String: TLSContext]
    }

    private let contexts: Locked<Contexts>

    /// A stage serving `context` (a server context), and `serverNames`
    /// for SNI (names in any case).
    public init(_ context: TLSContext, serverNames: [String: TLSContext] = [:]) {
        contexts = Locked(Contexts(context: context, serverNames: TLSStage.normalized(serverNames)))
    }

    /// The context for clients that ask for no name in ``serverNames``.
    public var context: TLSContext { contexts.withLock { $0.context } }

    /// The SNI contexts, by lower-case name.
    public var serverNames: [String: TLSContext] { contexts.withLock { $0.serverNames } }

    /// Swaps in new contexts for the handshakes that start from now on;
    /// `serverNames` nil keeps the current ones.
    public func replace(_ context: TLSContext, serverNames: [String: TLSContext]? = nil) {
        let names = serverNames.map(TLSStage.normalized)
        contexts.withLock { c in
            c.context = context
            if let names { c.serverNames = names }
        }
    }

    /// Reads every context's certificate and key files again (each
    /// context made anew from its configuration), then swaps them all in
    /// at once. If any fails (a missing file, a truncated key), throws its
    /// ``TLSError`` and keeps serving with the current ones.
    public func reload() throws {
        let current = contexts.withLock { $0 }
        let context = try current.context.reloaded()
        var names: [String: TLSContext] = [:]
        for (name, c) in current.serverNames { names[name] = try c.reloaded() }
        replace(context, serverNames: names)
    }

    /// Makes the handshake on `connection`, first reading the bytes a
    /// stage before buffered (a PROXY header's reader).
    public func prepare(_ connection: ConnectionContext, server: BaseServer) throws {
        let current = contexts.withLock { $0 }
        let buffered = connection.reader?.takeBuffered() ?? []
        connection.reader = nil
        let stream = try TLSStream.server(over: connection.socket, context: current.context, buffered: buffered,
                                          serverNames: current.serverNames)
        connection.stream = stream
        connection[TLSSessionKey.self] = stream.session
        connection.logFields.append(LogField("tls", stream.session.version))
    }

    /// The SNI context for `name`: an exact entry, else `*.` and the
    /// name without its first label.
    static func match(_ name: String, in names: [String: TLSContext]) -> TLSContext? {
        guard !names.isEmpty else { return nil }
        let lower = name.lowercased()
        if let exact = names[lower] { return exact }
        if let dot = lower.firstIndex(of: ".") { return names["*" + lower[dot...]] }
        return nil
    }

    private static func normalized(_ names: [String: TLSContext]) -> [String: TLSContext] {
        var result: [String: TLSContext] = [:]
        for (name, context) in names { result[name.lowercased()] = context }
        return result
    }
}

/// TLS for a stream server: ``enableTLS(_:serverNames:)``.
extension BaseServer {
    /// Makes this stream server speak TLS with `context` (and SNI
    /// contexts): appends a ``TLSStage`` to ``/SocketServer/BaseServer/connectionStages``
    /// and returns it, for reloads. Call before serving.
    @discardableResult
    public func enableTLS(_ context: TLSContext, serverNames: [String: TLSContext] = [:]) -> TLSStage {
        let stage = TLSStage(context, serverNames: serverNames)
        connectionStages.append(stage)
        return stage
    }
}

/// A handler's view of its connection's TLS session: ``tls`` and
/// ``tlsStream``.
extension StreamRequestHandler {
    /// What this connection's TLS handshake negotiated (version, cipher,
    /// ALPN, SNI name, the client's certificate); nil on a plain connection.
    public var tls: TLSSessionInfo? { context?[TLSSessionKey.self] }

    /// This connection's TLS session, for what `rfile`/`wfile` do not do
    /// (``TLSStream/unwrap()``, byte counts); nil on a plain connection.
    public var tlsStream: TLSStream? { context?.stream as? TLSStream }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
