/// The one error type of the socket layer.
///
/// A struct, so that new kinds of failure are not source-breaking: it
/// carries its ``kind``, the ``errno`` where there is one, the ``operation``
/// that failed and the ``address`` involved, so that its description reads
/// like `connect to 127.0.0.1:9: Connection refused (ECONNREFUSED)`.
///
/// Match it as before:
///
/// ```swift
/// do { try socket.connect(to: address) }
/// catch Errno.connectionRefused { print("nobody listens there") }
/// catch SocketError.timeout { print("no answer in time") }
/// ```
///
/// or inspect ``errno``, ``isTimeout``, ``isPeerGone``, ``kind``.
public struct SocketError: Error, Sendable, Equatable, CustomStringConvertible, CarriesErrno {
    /// What kind of failure this is. New kinds may be added: match the
    /// ones you handle and let the rest go by.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A system call failed (``SocketError/errno`` says why).
        public static let system = Kind(name: "system")
        /// A blocking call did not complete within the socket's time-out
        /// (Python's `socket.timeout` / `TimeoutError`).
        public static let timeout = Kind(name: "timeout")
        /// Address resolution failed (Python's `socket.gaierror`).
        public static let addressResolution = Kind(name: "addressResolution")
        /// A host look-up found nothing (Python's `socket.herror`).
        public static let hostNotFound = Kind(name: "hostNotFound")
        /// The socket was closed, or a stream was used after it was closed.
        public static let closed = Kind(name: "closed")
        /// An argument was not valid for this call (Python's `ValueError`).
        public static let invalidArgument = Kind(name: "invalidArgument")

        /// The kind's name (`invalidArgument`).
        public var description: String { name }
    }

    /// What kind of failure this is.
    public let kind: Kind
    /// The error number: the system's for ``Kind/system``; `.timedOut` for a
    /// time-out, `.badFileDescriptor` for a closed socket, `.invalidArgument`
    /// for an invalid argument; nil for resolver errors.
    public let errno: Errno?
    /// What failed, as a phrase: `"connect to"`, `"recv"`, `"resolve"`.
    public let operation: String
    /// The address involved, as text (`127.0.0.1:9`, a path, a host name), if any.
    public let address: String?
    /// The address involved, when the library had it as a ``SocketAddress``.
    public let socketAddress: SocketAddress?
    /// The message of a resolver error, or what was invalid about an argument.
    public let detail: String?
    /// For ``Kind/addressResolution``: the resolver's `EAI_*` code.
    public let resolverCode: Int32?
    /// For a send that failed part-way (a non-blocking ``Socket/sendAll(_:flags:)-(UnsafeRawBufferPointer,_)``
    /// or unbuffered writer that met a full buffer): how many bytes had been
    /// sent. Python's `BlockingIOError.characters_written`.
    public let bytesSent: Int?

    /// Any error, field by field; prefer the static functions below.
    public init(kind: Kind, errno: Errno?, operation: String, address: String? = nil,
                socketAddress: SocketAddress? = nil, detail: String? = nil,
                resolverCode: Int32? = nil, bytesSent: Int? = nil) {
        self.kind = kind
        self.errno = errno
        self.operation = operation
        self.address = address ?? socketAddress?.description
        self.socketAddress = socketAddress
        self.detail = detail
        self.resolverCode = resolverCode
        self.bytesSent = bytesSent
    }

    /// Equal when they say the same failure: kind, error number, operation,
    /// address (as text: an error made with ``system(_:operation:address:)``
    /// from a string equals the library's own, which also keeps the
    /// ``SocketAddress``), detail and resolver code. ``bytesSent`` is not
    /// compared: it tells how far a send got, not what failed.
    public static func == (a: SocketError, b: SocketError) -> Bool {
        a.kind == b.kind && a.errno == b.errno && a.operation == b.operation && a.address == b.address
            && a.detail == b.detail && a.resolverCode == b.resolverCode
    }

    // MARK: - Making one

    /// A system call failed. `operation` names it as a phrase ("connect to",
    /// "recv"); `address` is the peer or local address involved, if any.
    public static func system(_ errno: Errno, operation: String, address: String?) -> SocketError {
        SocketError(kind: .system, errno: errno, operation: operation, address: address)
    }

    /// A blocking call did not complete within the socket's time-out.
    public static func timeout(operation: String, address: String?) -> SocketError {
        SocketError(kind: .timeout, errno: .timedOut, operation: operation, address: address)
    }

    /// Address resolution failed: the resolver's `EAI_*` code and message.
    public static func addressResolution(code: Int32, message: String, host: String) -> SocketError {
        SocketError(kind: .addressResolution, errno: nil, operation: "resolve", address: host,
                    detail: message, resolverCode: code)
    }

    /// A host look-up by name or address found nothing.
    public static func hostNotFound(host: String, message: String) -> SocketError {
        SocketError(kind: .hostNotFound, errno: nil, operation: "look up", address: host, detail: message)
    }

    /// The socket was closed, or a stream was used after it was closed.
    public static func closed(operation: String) -> SocketError {
        SocketError(kind: .closed, errno: .badFileDescriptor, operation: operation)
    }

    /// An argument was not valid for this call.
    public static func invalidArgument(_ what: String) -> SocketError {
        SocketError(kind: .invalidArgument, errno: .invalidArgument, operation: "", detail: what)
    }

    // MARK: - Patterns: `catch SocketError.timeout`

    /// For `catch SocketError.timeout`.
    public static var timeout: Kind { .timeout }
    /// For `catch SocketError.closed`.
    public static var closed: Kind { .closed }
    /// For `catch SocketError.invalidArgument`.
    public static var invalidArgument: Kind { .invalidArgument }
    /// For `catch SocketError.addressResolution`.
    public static var addressResolution: Kind { .addressResolution }
    /// For `catch SocketError.hostNotFound`.
    public static var hostNotFound: Kind { .hostNotFound }
    /// For `catch SocketError.system`.
    public static var system: Kind { .system }

    // MARK: - Reading one

    /// True for a time-out.
    public var isTimeout: Bool { kind == .timeout }

    /// True when the peer went away or stopped answering: reset, broken pipe,
    /// time-out, not connected. Servers report these in one quiet line.
    public var isPeerGone: Bool {
        if kind == .timeout { return true }
        guard kind == .system, let e = errno else { return false }
        return e == .connectionReset || e == .brokenPipe || e == .connectionAborted
            || e == .notConnected || e == .timedOut || e == .endpointShutDown
    }

    /// What failed, where and why: `connect to 127.0.0.1:9: Connection
    /// refused (ECONNREFUSED)`, `recv from 127.0.0.1:50124: timed out`.
    public var description: String {
        let at = address.map { " \($0)" } ?? ""
        switch kind {
        case .timeout: return "\(operation)\(at): timed out"
        case .addressResolution:
            return "resolve \(address ?? ""): \(detail ?? "") (\(Sys.ResolveFailure.name(of: resolverCode ?? 0)))"
        case .hostNotFound: return "look up \(address ?? ""): \(detail ?? "")"
        case .closed: return "\(operation): socket is closed (EBADF)"
        case .invalidArgument: return "invalid argument: \(detail ?? "")"
        default:
            let e = errno ?? Errno(0)
            return "\(operation)\(at): \(e.message) (\(e.name))"
        }
    }

    /// The system's message alone, without the operation (`Connection refused`).
    public var reason: String {
        switch kind {
        case .timeout: return "timed out"
        case .addressResolution, .hostNotFound: return detail ?? ""
        case .closed: return "socket is closed"
        case .invalidArgument: return "invalid argument: \(detail ?? "")"
        default: return (errno ?? Errno(0)).message
        }
    }
}

extension SocketError.Kind {
    /// Lets `catch SocketError.timeout` (and the other kinds) match.
    public static func ~= (pattern: SocketError.Kind, error: any Error) -> Bool {
        (error as? SocketError)?.kind == pattern
    }
}

extension SocketError {
    /// Wraps an error of the platform layer.
    init(_ errno: Errno, operation: String, address: SocketAddress? = nil) {
        self.init(kind: .system, errno: errno, operation: operation, socketAddress: address)
    }

    /// A time-out of `operation`.
    init(timeoutOf operation: String, address: SocketAddress?) {
        self.init(kind: .timeout, errno: .timedOut, operation: operation, socketAddress: address)
    }

    /// The same error, with the count of bytes sent before it.
    func sent(_ count: Int) -> SocketError {
        SocketError(kind: kind, errno: errno, operation: operation, address: address, socketAddress: socketAddress,
                    detail: detail, resolverCode: resolverCode, bytesSent: count)
    }
}
