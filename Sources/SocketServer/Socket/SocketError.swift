/// The one error type of the socket layer.
///
/// Every case carries what failed and where, so that its description reads
/// like `connect to 127.0.0.1:9: Connection refused (ECONNREFUSED)`.
/// Match a system error by its number with `catch Errno.connectionRefused`,
/// a time-out with `catch SocketError.timeout`, or inspect ``errno``.
public enum SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed. `operation` names it as a phrase ("connect to",
    /// "recv"); `address` is the peer or local address involved, if any.
    case system(Errno, operation: String, address: String?)
    /// A blocking call did not complete within the socket's time-out
    /// (Python's `socket.timeout` / `TimeoutError`).
    case timeout(operation: String, address: String?)
    /// Address resolution failed (Python's `socket.gaierror`): the
    /// resolver's `EAI_*` code and message.
    case addressResolution(code: Int32, message: String, host: String)
    /// A host look-up by name or address found nothing (Python's `socket.herror`).
    case hostNotFound(host: String, message: String)
    /// The socket was closed, or a stream was used after it was closed.
    case closed(operation: String)
    /// An argument was not valid for this call (Python's `ValueError`/`OSError(EINVAL)`).
    case invalidArgument(String)

    /// The error number, where the error has one (`.timedOut` for time-outs,
    /// `.badFileDescriptor` for a closed socket).
    public var errno: Errno? {
        switch self {
        case .system(let e, _, _): return e
        case .timeout: return .timedOut
        case .closed: return .badFileDescriptor
        case .invalidArgument: return .invalidArgument
        case .addressResolution, .hostNotFound: return nil
        }
    }

    /// True for a time-out (``timeout(operation:address:)``).
    public var isTimeout: Bool {
        if case .timeout = self { return true }
        return false
    }

    /// True when the peer went away or stopped answering: reset, broken pipe,
    /// time-out, not connected. Servers report these in one quiet line.
    public var isPeerGone: Bool {
        switch self {
        case .timeout: return true
        case .system(let e, _, _):
            return e == .connectionReset || e == .brokenPipe || e == .connectionAborted
                || e == .notConnected || e == .timedOut || e == Errno(ESHUTDOWN_VALUE)
        default: return false
        }
    }

    /// What failed, where and why: `connect to 127.0.0.1:9: Connection
    /// refused (ECONNREFUSED)`, `recv from 127.0.0.1:50124: timed out`.
    public var description: String {
        switch self {
        case .system(let e, let op, let addr):
            return "\(op)\(addr.map { " \($0)" } ?? ""): \(e.message) (\(e.name))"
        case .timeout(let op, let addr):
            return "\(op)\(addr.map { " \($0)" } ?? ""): timed out"
        case .addressResolution(let code, let message, let host):
            return "resolve \(host): \(message) (\(addrInfoErrorName(code)))"
        case .hostNotFound(let host, let message):
            return "look up \(host): \(message)"
        case .closed(let op):
            return "\(op): socket is closed (EBADF)"
        case .invalidArgument(let what):
            return "invalid argument: \(what)"
        }
    }

    /// The system's message alone, without the operation (`Connection refused`).
    public var reason: String {
        switch self {
        case .system(let e, _, _): return e.message
        case .timeout: return "timed out"
        case .addressResolution(_, let message, _): return message
        case .hostNotFound(_, let message): return message
        case .closed: return "socket is closed"
        case .invalidArgument(let what): return "invalid argument: \(what)"
        }
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

let ESHUTDOWN_VALUE: Int32 = ESHUTDOWN

func addrInfoErrorName(_ code: Int32) -> String {
    switch code {
    case EAI_AGAIN: return "EAI_AGAIN"
    case EAI_BADFLAGS: return "EAI_BADFLAGS"
    case EAI_FAIL: return "EAI_FAIL"
    case EAI_FAMILY: return "EAI_FAMILY"
    case EAI_MEMORY: return "EAI_MEMORY"
    case EAI_NONAME: return "EAI_NONAME"
    case EAI_SERVICE: return "EAI_SERVICE"
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE"
    case EAI_SYSTEM: return "EAI_SYSTEM"
    case EAI_OVERFLOW: return "EAI_OVERFLOW"
    default: return "EAI_\(code)"
    }
}

extension SocketError {
    /// Builds a `.system` error from the calling thread's `errno`.
    @inline(never)
    static func fromErrno(_ operation: String, _ address: SocketAddress? = nil) -> SocketError {
        .system(.current, operation: operation, address: address?.description)
    }
}
