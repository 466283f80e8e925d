/// A typed socket option: its level, its name and the Swift type of its
/// value. Use the named ones (`.reuseAddress`, `.noDelay`, ...) with
/// ``Socket/setOption(_:_:)`` and ``Socket/getOption(_:)``, or the raw
/// integer forms for any other.
public struct SocketOption<Value>: Sendable {
    enum Kind: Sendable { case bool, int, timeval, type }
    /// The option's level, as `setsockopt(2)` takes it (`SOL_SOCKET`, `IPPROTO_TCP`).
    public let level: Int32
    /// The option's name, as `setsockopt(2)` takes it (`SO_REUSEADDR`, `TCP_NODELAY`).
    public let name: Int32
    let kind: Kind

    init(_ level: Int32, _ name: Int32, _ kind: Kind) {
        self.level = level
        self.name = name
        self.kind = kind
    }
}

extension SocketOption where Value == Bool {
    /// `SO_REUSEADDR`: bind a port whose old connections are in TIME_WAIT.
    public static var reuseAddress: Self { .init(Sys.solSocket, Sys.soReuseAddr, .bool) }
    /// `SO_REUSEPORT`: let several sockets bind the same port.
    public static var reusePort: Self { .init(Sys.solSocket, Sys.soReusePort, .bool) }
    /// `SO_BROADCAST`: allow sending to broadcast addresses.
    public static var broadcast: Self { .init(Sys.solSocket, Sys.soBroadcast, .bool) }
    /// `SO_KEEPALIVE`: send TCP keep-alive probes.
    public static var keepAlive: Self { .init(Sys.solSocket, Sys.soKeepAlive, .bool) }
    /// `TCP_NODELAY`: turn off Nagle's algorithm.
    public static var noDelay: Self { .init(Sys.ipprotoTCP, Sys.tcpNoDelay, .bool) }
    /// `SO_ACCEPTCONN` (read-only): whether the socket is listening.
    public static var acceptConnections: Self { .init(Sys.solSocket, Sys.soAcceptConn, .bool) }
}

extension SocketOption where Value == Int {
    /// `SO_RCVBUF`: the receive buffer size (Linux reports double what was set).
    public static var receiveBufferSize: Self { .init(Sys.solSocket, Sys.soRcvBuf, .int) }
    /// `SO_SNDBUF`: the send buffer size (Linux reports double what was set).
    public static var sendBufferSize: Self { .init(Sys.solSocket, Sys.soSndBuf, .int) }
    /// `SO_ERROR` (read-only, clears it): the pending error number, 0 for none.
    public static var error: Self { .init(Sys.solSocket, Sys.soError, .int) }
}

extension SocketOption where Value == Double? {
    /// `SO_RCVTIMEO` in seconds (nil: none). Prefer ``Socket/setTimeout(_:)``,
    /// which covers every call; a blocking call that runs out of this one
    /// throws ``SocketError/timeout(operation:address:)`` too.
    public static var receiveTimeout: Self { .init(Sys.solSocket, Sys.soRcvTimeo, .timeval) }
    /// `SO_SNDTIMEO` in seconds (nil: none).
    public static var sendTimeout: Self { .init(Sys.solSocket, Sys.soSndTimeo, .timeval) }
}

extension SocketOption where Value == SocketType {
    /// `SO_TYPE` (read-only): the socket's type.
    public static var type: Self { .init(Sys.solSocket, Sys.soType, .type) }
}

extension Socket {
    /// Sets a typed option (`setsockopt(2)`).
    public func setOption<Value>(_ option: SocketOption<Value>, _ value: Value) throws {
        switch option.kind {
        case .bool: try setOption(level: option.level, name: option.name, value: (value as! Bool) ? 1 : 0)
        case .int: try setOption(level: option.level, name: option.name, value: Int32(clamping: value as! Int))
        case .type: try setOption(level: option.level, name: option.name, value: (value as! SocketType).rawValue)
        case .timeval:
            let seconds = (value as! Double?) ?? 0
            guard seconds >= 0 else { throw SocketError.invalidArgument("time-out \(seconds) is negative") }
            let fd = try fd("setsockopt")
            do { try Sys.setTimeval(fd, option.name, seconds: seconds) } catch {
                throw SocketError(error, operation: "setsockopt(\(option.level), \(option.name))")
            }
        }
    }

    /// Reads a typed option (`getsockopt(2)`).
    public func getOption<Value>(_ option: SocketOption<Value>) throws -> Value {
        switch option.kind {
        case .bool: return (try getOption(level: option.level, name: option.name) != 0) as! Value
        case .int: return Int(try getOption(level: option.level, name: option.name)) as! Value
        case .type: return SocketType(rawValue: try getOption(level: option.level, name: option.name)) as! Value
        case .timeval:
            let fd = try fd("getsockopt")
            let seconds: Double
            do { seconds = try Sys.getTimeval(fd, option.name) } catch {
                throw SocketError(error, operation: "getsockopt(\(option.level), \(option.name))")
            }
            return (seconds == 0 ? nil : seconds) as! Value
        }
    }

    /// Sets an integer option by level and name: the escape hatch for any
    /// option without a typed name.
    public func setOption(level: Int32, name: Int32, value: Int32) throws {
        var v = value
        try withUnsafeBytes(of: &v) { try setOption(level: level, name: name, bytes: $0) }
    }

    /// Reads an integer option by level and name.
    public func getOption(level: Int32, name: Int32) throws -> Int32 {
        let bytes = try getOption(level: level, name: name, length: MemoryLayout<Int32>.size)
        var v: Int32 = 0
        withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: bytes.prefix($0.count)) }
        return v
    }

    /// Sets an option from raw bytes (a C struct's bytes).
    public func setOption(level: Int32, name: Int32, bytes: UnsafeRawBufferPointer) throws {
        let fd = try fd("setsockopt")
        do { try Sys.setsockopt(fd, level, name, bytes) } catch {
            throw SocketError(error, operation: "setsockopt(\(level), \(name))")
        }
    }

    /// Reads an option as raw bytes, at most `length` of them.
    public func getOption(level: Int32, name: Int32, length: Int) throws -> [UInt8] {
        let fd = try fd("getsockopt")
        var bytes = [UInt8](repeating: 0, count: length)
        let written: Int
        do { written = try bytes.withUnsafeMutableBytes { (raw) throws(Errno) -> Int in try Sys.getsockopt(fd, level, name, raw) } } catch let error as Errno {
            throw SocketError(error, operation: "getsockopt(\(level), \(name))")
        }
        bytes.removeSubrange(min(written, length)...)
        return bytes
    }
}
