/// A socket a service manager passed to the process (systemd's socket
/// activation, ``Socket/listenFDs(unsetEnvironment:environment:firstFD:)``).
public struct ListenFD: Sendable {
    /// The socket, owned by the caller from now on (usually already
    /// listening: give it to ``TCPServer/init(socket:_:)``).
    public let socket: Socket
    /// Its name from `LISTEN_FDNAMES` (a unit's `FileDescriptorName=`,
    /// `systemd-socket-activate --fdname=`); nil when none were given.
    public let name: String?
}

extension Socket {
    /// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
    public static let listenFDsStart: Int32 = 3

    /// The sockets systemd (or any launcher following its protocol) passed
    /// to this process, as `sd_listen_fds_with_names` reads them:
    /// `LISTEN_FDS` descriptors from fd 3 on, named by `LISTEN_FDNAMES`
    /// (colon-separated), meant for this process only if `LISTEN_PID` is
    /// its pid. Each gets close-on-exec, so children do not inherit it.
    ///
    /// ```swift
    /// if let passed = try Socket.listenFDs().first {
    ///     server = try ThreadingTCPServer(socket: passed.socket, Echo.self)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - unsetEnvironment: removes the three variables from the process
    ///     environment (children must not take the sockets for theirs).
    ///     Only with the real environment.
    ///   - environment: the variables to read instead of the process's
    ///     (tests); nil reads the process environment.
    ///   - firstFD: the first descriptor (3).
    /// - Returns: empty when the variables are absent or meant for another
    ///   process (`LISTEN_PID` differs).
    /// - Throws: `SocketError.invalidArgument` for malformed variables or a
    ///   name count that does not match; the system error for a descriptor
    ///   that is not open or not a socket.
    public static func listenFDs(unsetEnvironment: Bool = true, environment: [String: String]? = nil,
                                 firstFD: Int32 = Socket.listenFDsStart) throws -> [ListenFD] {
        func value(_ key: String) -> String? {
            if let environment { return environment[key] }
            return Sys.environment(key)
        }
        let pidText = value("LISTEN_PID"), countText = value("LISTEN_FDS"), namesText = value("LISTEN_FDNAMES")
        if unsetEnvironment && environment == nil {
            for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { Sys.unsetEnvironment(key) }
        }
        guard let pidText, let countText else { return [] }
        guard let pid = Int32(pidText), pid > 0 else { throw SocketError.invalidArgument("LISTEN_PID=\(pidText) is not a pid") }
        guard pid == Sys.processID else { return [] }
        guard let count = Int(countText), count >= 0, count <= 65536 else {
            throw SocketError.invalidArgument("LISTEN_FDS=\(countText) is not a descriptor count")
        }
        var names: [String]?
        if let namesText {
            let split = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard split.count == count else {
                throw SocketError.invalidArgument("LISTEN_FDNAMES has \(split.count) names for \(count) descriptors")
            }
            names = split
        }
        var result: [ListenFD] = []
        for i in 0..<count {
            let fd = firstFD + Int32(i)
            do { try Sys.setCloseOnExec(fd) } catch { throw SocketError(error, operation: "passed descriptor \(fd)") }
            result.append(ListenFD(socket: try Socket(fileDescriptor: fd), name: names?[i]))
        }
        return result
    }
}
