#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// A system error number, with its symbolic name and the system's message.
///
/// Match it in a `catch` clause against any error the library throws:
///
/// ```swift
/// do { try socket.connect(to: address) }
/// catch Errno.connectionRefused { print("nobody listens there") }
/// ```
///
/// An `Errno` thrown by the library's platform layer names the system call
/// that failed (``call``); two `Errno`s are equal when their numbers are,
/// whatever the call.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The error number, as `errno` holds it.
    public let rawValue: Int32
    /// The error with this number.
    public init(rawValue: Int32) { self.rawValue = rawValue; self.callName = nil }
    /// The error with this number: `Errno(ECONNRESET)`.
    public init(_ rawValue: Int32) { self.rawValue = rawValue; self.callName = nil }
    /// The error number a call failed with.
    public init(_ rawValue: Int32, call: StaticString) { self.rawValue = rawValue; self.callName = call }
    /// A static string, so that making an `Errno` never allocates.
    private let callName: StaticString?

    /// The system call that failed, when this error came from one (`"poll"`).
    public var call: String? { callName.map { "\($0)" } }

    /// Equal when the numbers are: the call a value names does not count.
    public static func == (a: Errno, b: Errno) -> Bool { a.rawValue == b.rawValue }
    /// Hashes the number alone, as ``==(_:_:)`` compares.
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// `ESHUTDOWN`: the endpoint was shut down (a peer gone, for ``SocketError/isPeerGone``).
    static let endpointShutDown = Errno(ESHUTDOWN)

    /// The error number the last failed call of this thread left.
    static var current: Errno { Errno(Sys.errno) }

    /// The system's message, e.g. `Connection refused` (`strerror(3)`).
    public var message: String {
        var buffer = [CChar](repeating: 0, count: 256)
        // The XSI strerror_r: thread-safe, writes into our buffer.
        if strerror_r(rawValue, &buffer, buffer.count) != 0 { return "Unknown error \(rawValue)" }
        return cString(buffer)
    }

    /// The symbolic name, e.g. `ECONNREFUSED`, or `E<number>` when unknown.
    public var name: String { Errno.names[rawValue] ?? "E\(rawValue)" }

    /// `Connection refused (ECONNREFUSED)`
    public var description: String { "\(call.map { "\($0): " } ?? "")\(message) (\(name))" }

    /// `EACCES`: permission denied.
    public static let permissionDenied = Errno(EACCES)
    /// `EPERM`: operation not permitted.
    public static let notPermitted = Errno(EPERM)
    /// `ENOENT`: no such file or directory.
    public static let noSuchFile = Errno(ENOENT)
    /// `EINTR`: interrupted by a signal (the library retries these itself).
    public static let interrupted = Errno(EINTR)
    /// `EBADF`: not an open file descriptor.
    public static let badFileDescriptor = Errno(EBADF)
    /// `EAGAIN`/`EWOULDBLOCK` (one number on Linux): a non-blocking call would
    /// block, or a resource is temporarily unavailable (out of threads, say).
    public static let wouldBlock = Errno(EAGAIN)
    /// `EINPROGRESS`: a non-blocking connect is under way.
    public static let inProgress = Errno(EINPROGRESS)
    /// `EALREADY`: an earlier non-blocking connect is still under way.
    public static let alreadyInProgress = Errno(EALREADY)
    /// `EINVAL`: an invalid argument.
    public static let invalidArgument = Errno(EINVAL)
    /// `EMFILE`: the process has no file descriptor left (`ulimit -n`).
    public static let tooManyOpenFiles = Errno(EMFILE)
    /// `ENFILE`: the system has no file descriptor left.
    public static let tooManyOpenFilesInSystem = Errno(ENFILE)
    /// `ENOBUFS`: no buffer space left in the kernel.
    public static let noBufferSpace = Errno(ENOBUFS)
    /// `ENOMEM`: out of memory.
    public static let noMemory = Errno(ENOMEM)
    /// `EPIPE`: the peer is gone (a write after its close; never a SIGPIPE here).
    public static let brokenPipe = Errno(EPIPE)
    /// `EADDRINUSE`: the address is in use (another socket listens on the port).
    public static let addressInUse = Errno(EADDRINUSE)
    /// `EADDRNOTAVAIL`: the address is not one of this machine's.
    public static let addressNotAvailable = Errno(EADDRNOTAVAIL)
    /// `EAFNOSUPPORT`: the address family is not supported (IPv6 on a machine without it).
    public static let addressFamilyNotSupported = Errno(EAFNOSUPPORT)
    /// `ECONNABORTED`: a connection was aborted before `accept` took it.
    public static let connectionAborted = Errno(ECONNABORTED)
    /// `ECONNRESET`: the peer reset the connection.
    public static let connectionReset = Errno(ECONNRESET)
    /// `ECONNREFUSED`: nobody listens at the address.
    public static let connectionRefused = Errno(ECONNREFUSED)
    /// `ENOTCONN`: the socket is not connected.
    public static let notConnected = Errno(ENOTCONN)
    /// `EISCONN`: the socket is already connected.
    public static let isConnected = Errno(EISCONN)
    /// `ETIMEDOUT`: the connection timed out; also the ``SocketError/errno`` of the library's own time-outs.
    public static let timedOut = Errno(ETIMEDOUT)
    /// `EHOSTUNREACH`: no route to the host.
    public static let hostUnreachable = Errno(EHOSTUNREACH)
    /// `ENETUNREACH`: the network is unreachable.
    public static let networkUnreachable = Errno(ENETUNREACH)
    /// `ENETDOWN`: the network is down.
    public static let networkDown = Errno(ENETDOWN)
    /// `ENOTSOCK`: the descriptor is not a socket.
    public static let notSocket = Errno(ENOTSOCK)
    /// `EMSGSIZE`: the datagram is too long to send in one piece.
    public static let messageTooLong = Errno(EMSGSIZE)
    /// `EDESTADDRREQ`: a datagram socket with no peer was sent to without an address.
    public static let destinationAddressRequired = Errno(EDESTADDRREQ)
    /// `EPROTONOSUPPORT`: the protocol is not supported.
    public static let protocolNotSupported = Errno(EPROTONOSUPPORT)
    /// `EOPNOTSUPP`: the operation is not supported on this socket.
    public static let operationNotSupported = Errno(EOPNOTSUPP)
    /// `EEXIST`: the file exists.
    public static let fileExists = Errno(EEXIST)
    /// `ENOTDIR`: not a directory.
    public static let notDirectory = Errno(ENOTDIR)
    /// `EISDIR`: is a directory.
    public static let isDirectory = Errno(EISDIR)
    /// `ECHILD`: no child process to wait for.
    public static let noChildProcesses = Errno(ECHILD)

    /// Lets `catch Errno.connectionReset` match any error of this library
    /// that carries that error number.
    public static func ~= (pattern: Errno, error: any Error) -> Bool {
        if let e = error as? Errno { return e == pattern }
        if let e = error as? any CarriesErrno { return e.errno == pattern }
        return false
    }

    private static let names: [Int32: String] = {
        var n: [Int32: String] = [:]
        let list: [(Int32, String)] = [
            (EPERM, "EPERM"), (ENOENT, "ENOENT"), (ESRCH, "ESRCH"), (EINTR, "EINTR"), (EIO, "EIO"),
            (ENXIO, "ENXIO"), (E2BIG, "E2BIG"), (ENOEXEC, "ENOEXEC"), (EBADF, "EBADF"),
            (ECHILD, "ECHILD"), (EAGAIN, "EAGAIN"), (ENOMEM, "ENOMEM"), (EACCES, "EACCES"),
            (EFAULT, "EFAULT"), (EBUSY, "EBUSY"), (EEXIST, "EEXIST"), (EXDEV, "EXDEV"),
            (ENODEV, "ENODEV"), (ENOTDIR, "ENOTDIR"), (EISDIR, "EISDIR"), (EINVAL, "EINVAL"),
            (ENFILE, "ENFILE"), (EMFILE, "EMFILE"), (ENOTTY, "ENOTTY"), (EFBIG, "EFBIG"),
            (ENOSPC, "ENOSPC"), (ESPIPE, "ESPIPE"), (EROFS, "EROFS"), (EMLINK, "EMLINK"),
            (EPIPE, "EPIPE"), (EDOM, "EDOM"), (ERANGE, "ERANGE"), (EDEADLK, "EDEADLK"),
            (ENAMETOOLONG, "ENAMETOOLONG"), (ENOLCK, "ENOLCK"), (ENOSYS, "ENOSYS"),
            (ENOTEMPTY, "ENOTEMPTY"), (ELOOP, "ELOOP"), (ENOTSOCK, "ENOTSOCK"),
            (EDESTADDRREQ, "EDESTADDRREQ"), (EMSGSIZE, "EMSGSIZE"), (EPROTOTYPE, "EPROTOTYPE"),
            (ENOPROTOOPT, "ENOPROTOOPT"), (EPROTONOSUPPORT, "EPROTONOSUPPORT"),
            (ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"), (EOPNOTSUPP, "EOPNOTSUPP"),
            (EPFNOSUPPORT, "EPFNOSUPPORT"), (EAFNOSUPPORT, "EAFNOSUPPORT"),
            (EADDRINUSE, "EADDRINUSE"), (EADDRNOTAVAIL, "EADDRNOTAVAIL"), (ENETDOWN, "ENETDOWN"),
            (ENETUNREACH, "ENETUNREACH"), (ENETRESET, "ENETRESET"), (ECONNABORTED, "ECONNABORTED"),
            (ECONNRESET, "ECONNRESET"), (ENOBUFS, "ENOBUFS"), (EISCONN, "EISCONN"),
            (ENOTCONN, "ENOTCONN"), (ESHUTDOWN, "ESHUTDOWN"), (ETIMEDOUT, "ETIMEDOUT"),
            (ECONNREFUSED, "ECONNREFUSED"), (EHOSTDOWN, "EHOSTDOWN"), (EHOSTUNREACH, "EHOSTUNREACH"),
            (EALREADY, "EALREADY"), (EINPROGRESS, "EINPROGRESS"), (ESTALE, "ESTALE"),
            (EDQUOT, "EDQUOT"), (ECANCELED, "ECANCELED"), (EOVERFLOW, "EOVERFLOW"),
            (EILSEQ, "EILSEQ"), (ENOTSUP, "ENOTSUP"),
        ]
        for (code, name) in list where n[code] == nil { n[code] = name }
        return n
    }()
}

extension Errno: Error {}

/// An error of a higher layer that carries an error number
/// (``SocketError``, ``ServerError``): what `catch Errno.x` looks into.
protocol CarriesErrno: Error {
    var errno: Errno? { get }
}
