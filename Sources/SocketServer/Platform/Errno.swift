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
    public let rawValue: Int32
    /// A static string, so that making an `Errno` never allocates.
    private let callName: StaticString?
    public init(rawValue: Int32) { self.rawValue = rawValue; self.callName = nil }
    public init(_ rawValue: Int32) { self.rawValue = rawValue; self.callName = nil }
    /// The error number a call failed with.
    public init(_ rawValue: Int32, call: StaticString) { self.rawValue = rawValue; self.callName = call }

    /// The system call that failed, when this error came from one (`"poll"`).
    public var call: String? { callName.map { "\($0)" } }

    public static func == (a: Errno, b: Errno) -> Bool { a.rawValue == b.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

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

    /// `Connection refused (ECONNREFUSED)`, after `poll: ` for one thrown by a call.
    public var description: String { "\(call.map { "\($0): " } ?? "")\(message) (\(name))" }

    public static let permissionDenied = Errno(EACCES)
    public static let notPermitted = Errno(EPERM)
    public static let noSuchFile = Errno(ENOENT)
    public static let interrupted = Errno(EINTR)
    public static let badFileDescriptor = Errno(EBADF)
    /// EAGAIN (the same number as EWOULDBLOCK on Linux): a non-blocking call
    /// found nothing to do now.
    public static let wouldBlock = Errno(EAGAIN)
    public static let inProgress = Errno(EINPROGRESS)
    public static let alreadyInProgress = Errno(EALREADY)
    public static let invalidArgument = Errno(EINVAL)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let tooManyOpenFilesInSystem = Errno(ENFILE)
    public static let noBufferSpace = Errno(ENOBUFS)
    public static let noMemory = Errno(ENOMEM)
    public static let brokenPipe = Errno(EPIPE)
    public static let addressInUse = Errno(EADDRINUSE)
    public static let addressNotAvailable = Errno(EADDRNOTAVAIL)
    public static let addressFamilyNotSupported = Errno(EAFNOSUPPORT)
    public static let connectionAborted = Errno(ECONNABORTED)
    public static let connectionReset = Errno(ECONNRESET)
    public static let connectionRefused = Errno(ECONNREFUSED)
    public static let notConnected = Errno(ENOTCONN)
    public static let isConnected = Errno(EISCONN)
    public static let timedOut = Errno(ETIMEDOUT)
    public static let hostUnreachable = Errno(EHOSTUNREACH)
    public static let networkUnreachable = Errno(ENETUNREACH)
    public static let networkDown = Errno(ENETDOWN)
    public static let notSocket = Errno(ENOTSOCK)
    public static let messageTooLong = Errno(EMSGSIZE)
    public static let destinationAddressRequired = Errno(EDESTADDRREQ)
    public static let protocolNotSupported = Errno(EPROTONOSUPPORT)
    public static let operationNotSupported = Errno(EOPNOTSUPP)
    public static let fileExists = Errno(EEXIST)
    public static let notDirectory = Errno(ENOTDIR)
    public static let isDirectory = Errno(EISDIR)
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
