/// A connection (or datagram) the server accepted, as
/// ``BaseServer/connectionOpened(_:)`` sees it.
public struct ConnectionInfo: Sendable {
    /// A number unique within this server, from 1.
    public let id: UInt64
    /// The client's address (after a PROXY header: still the peer's; the
    /// summary has the proxied one).
    public let clientAddress: SocketAddress
    /// When it was accepted (monotonic nanoseconds, ``Socket/monotonicNanos()``).
    public let acceptedAt: UInt64
}

/// How a request ended.
public enum ConnectionOutcome: Sendable, CustomStringConvertible {
    /// The handler returned normally.
    case completed
    /// The peer went away: reset, broken pipe, end of file mid-request.
    case peerGone
    /// A time-out ended it (the handler's, a header's or a handshake's).
    case timedOut
    /// It was refused before a handler ran.
    case refused(RejectReason)
    /// The handler (or a stage before it) failed with this error.
    case failed(any Error)

    /// The outcome of an error thrown while serving.
    public init(_ error: any Error) {
        if let r = error as? Refusal { self = .refused(r.reason); return }
        if let e = error as? ProxyProtocolError, !e.isPeerGoneError { self = .refused(.proxyHeader); return }
        if let e = error as? any PeerGoneClassifiable {
            if e.isTimeoutError { self = .timedOut; return }
            if e.isPeerGoneError { self = .peerGone; return }
        }
        self = .failed(error)
    }

    /// `completed`, `peer_gone`, `timed_out`, `refused`, `failed` (the logfmt `outcome=`).
    public var name: String {
        switch self {
        case .completed: return "completed"
        case .peerGone: return "peer_gone"
        case .timedOut: return "timed_out"
        case .refused: return "refused"
        case .failed: return "failed"
        }
    }

    /// The outcome's name, with the reason or the error.
    public var description: String {
        switch self {
        case .refused(let r): return "refused (\(r))"
        case .failed(let e): return "failed: \(e)"
        default: return name
        }
    }
}

/// An error that can say it means "the peer went away" or "time-out",
/// rather than a real failure: ``SocketError`` does, and so can the errors
/// of other transports (TLS). Such errors are logged quietly.
public protocol PeerGoneClassifiable: Error {
    /// The peer went away (reset, broken pipe, closed mid-request).
    var isPeerGoneError: Bool { get }
    /// A time-out.
    var isTimeoutError: Bool { get }
}

extension SocketError: PeerGoneClassifiable {
    public var isPeerGoneError: Bool { isPeerGone }
    public var isTimeoutError: Bool { isTimeout }
}

/// A finished request, as ``BaseServer/connectionClosed(_:)`` sees it.
public struct ConnectionSummary: Sendable {
    /// The id ``ConnectionInfo`` had.
    public let id: UInt64
    /// The client: the proxied source behind a trusted proxy.
    public var clientAddress: SocketAddress
    /// The proxy it came through, if a PROXY header named another client.
    public var proxyAddress: SocketAddress?
    /// Seconds from accept to close.
    public var duration: Double
    /// Bytes received through the handler's `rfile` (after TLS and PROXY headers).
    public var bytesIn: UInt64
    /// Bytes sent through the handler's `wfile`.
    public var bytesOut: UInt64
    /// How it ended.
    public var outcome: ConnectionOutcome
    /// A health check (a PROXY protocol LOCAL connection): logged at debug.
    public var isHealthCheck: Bool
    /// More `key=value` facts stages recorded (`tls=TLSv1.3`).
    public var fields: [LogField]
}

/// A connection refused on its own thread, after a PROXY header named its
/// client: the client is not allowed, or over its cap.
struct Refusal: Error, Sendable, CustomStringConvertible {
    let reason: RejectReason
    var description: String { "refused: \(reason)" }
}

extension ProxyProtocolError: PeerGoneClassifiable {
    /// A proxy (or a check) that closed before or during its header.
    public var isPeerGoneError: Bool {
        switch self {
        case .closedBeforeHeader, .truncated: return true
        default: return false
        }
    }
    /// Never: a header that does not come in time is a ``SocketError`` time-out.
    public var isTimeoutError: Bool { false }
}
