/// An error of a server's lifecycle, not of its sockets: a server used
/// the wrong way (``Kind/alreadyServing``: `serveForever` while it runs;
/// ``Kind/closed``: `serveForever`, `handleRequest` or `control.run()` on a
/// closed server), or a thread or process that could not be started
/// (``Kind/threadStart``, with the system's error number: a handler
/// thread, `serveInBackground`, ``Threads/start(stackSize:_:)``;
/// ``Kind/processStart``: a forking server's `fork`).
///
/// ```swift
/// do { try server.serveInBackground() }
/// catch ServerError.alreadyServing { ... }
/// catch let e as ServerError where e.kind == .threadStart { ... }
/// catch Errno.wouldBlock { ... }   // the same error: EAGAIN, out of threads
/// ```
///
/// A closed server's error carries `EBADF`, so `catch Errno.badFileDescriptor`
/// matches it too.
public struct ServerError: Error, Sendable, Equatable, CustomStringConvertible, CarriesErrno {
    /// What went wrong. New kinds may be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// `serveForever` was called while it is already running.
        public static let alreadyServing = Kind(name: "alreadyServing")
        /// The server is closed (or has no socket) and cannot serve again.
        public static let closed = Kind(name: "closed")
        /// A thread could not be started (`pthread_create` failed).
        public static let threadStart = Kind(name: "threadStart")
        /// A child process could not be started (`fork` failed: EAGAIN at
        /// the process limit, ENOMEM).
        public static let processStart = Kind(name: "processStart")

        /// The kind's name (`threadStart`).
        public var description: String { name }
    }

    /// What went wrong.
    public let kind: Kind
    /// The system's error number, where there is one (thread or process start).
    public let errno: Errno?
    /// What was being done, as a phrase: `"serve forever"`, `"start thread"`.
    public let operation: String

    /// An error of `kind` while doing `operation`.
    public init(kind: Kind, errno: Errno? = nil, operation: String) {
        self.kind = kind
        self.errno = errno
        self.operation = operation
    }

    /// `serveForever` is already running (on another thread).
    public static func alreadyServing(operation: String = "serve forever") -> ServerError {
        ServerError(kind: .alreadyServing, operation: operation)
    }

    /// The server is closed.
    public static func closed(operation: String) -> ServerError {
        ServerError(kind: .closed, errno: .badFileDescriptor, operation: operation)
    }

    /// A thread could not be started.
    public static func threadStart(_ errno: Errno, operation: String = "start thread") -> ServerError {
        ServerError(kind: .threadStart, errno: errno, operation: operation)
    }

    /// A child process could not be forked.
    public static func processStart(_ errno: Errno, operation: String = "fork") -> ServerError {
        ServerError(kind: .processStart, errno: errno, operation: operation)
    }

    /// For `catch ServerError.alreadyServing`.
    public static var alreadyServing: Kind { .alreadyServing }
    /// For `catch ServerError.threadStart`.
    public static var threadStart: Kind { .threadStart }
    /// For `catch ServerError.processStart`.
    public static var processStart: Kind { .processStart }
    /// For `catch ServerError.closed`.
    public static var closed: Kind { .closed }

    /// What failed, and why, as one line.
    public var description: String {
        switch kind {
        case .alreadyServing: return "\(operation): serveForever is already running"
        case .closed: return "\(operation): the server is closed"
        default:
            guard let errno else { return "\(operation): \(kind)" }
            return "\(operation): \(errno.message) (\(errno.name))"
        }
    }
}

extension ServerError.Kind {
    /// Lets `catch ServerError.alreadyServing` (and the other kinds) match.
    public static func ~= (pattern: ServerError.Kind, error: any Error) -> Bool {
        (error as? ServerError)?.kind == pattern
    }
}
