#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// An address family (Python's `AF_*`).
public struct AddressFamily: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `AF_*` number.
    public let rawValue: Int32
    /// The family with this `AF_*` number.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// IPv4 (`AF_INET`).
    public static let inet = AddressFamily(rawValue: AF_INET)
    /// IPv6 (`AF_INET6`).
    public static let inet6 = AddressFamily(rawValue: AF_INET6)
    /// Unix domain sockets (`AF_UNIX`).
    public static let unix = AddressFamily(rawValue: AF_UNIX)
    /// Any family (`AF_UNSPEC`), for address look-ups.
    public static let unspecified = AddressFamily(rawValue: AF_UNSPEC)

    /// The C name: `AF_INET`, `AF_INET6`, `AF_UNIX`, `AF_UNSPEC` (`AF_<number>` for others).
    public var description: String {
        switch self {
        case .inet: return "AF_INET"
        case .inet6: return "AF_INET6"
        case .unix: return "AF_UNIX"
        case .unspecified: return "AF_UNSPEC"
        default: return "AF_\(rawValue)"
        }
    }
}

/// A socket type (Python's `SOCK_*`).
public struct SocketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `SOCK_*` number.
    public let rawValue: Int32
    /// The type with this `SOCK_*` number.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// A reliable byte stream (`SOCK_STREAM`): TCP, Unix stream.
    public static let stream = SocketType(rawValue: Sys.sockStream)
    /// Datagrams (`SOCK_DGRAM`): UDP, Unix datagram.
    public static let datagram = SocketType(rawValue: Sys.sockDgram)
    /// Reliable, ordered datagrams (`SOCK_SEQPACKET`), Unix sockets only on Linux.
    public static let seqpacket = SocketType(rawValue: Sys.sockSeqpacket)
    /// Raw packets (`SOCK_RAW`); needs privileges.
    public static let raw = SocketType(rawValue: Sys.sockRaw)

    /// The C name: `SOCK_STREAM`, `SOCK_DGRAM`, ... (`SOCK_<number>` for others).
    public var description: String {
        switch self {
        case .stream: return "SOCK_STREAM"
        case .datagram: return "SOCK_DGRAM"
        case .seqpacket: return "SOCK_SEQPACKET"
        case .raw: return "SOCK_RAW"
        default: return "SOCK_\(rawValue)"
        }
    }
}

/// The address of a socket: IPv4 (host, port), IPv6 (host, port, flow info,
/// scope id) or a Unix path (Python's address tuples and path strings).
///
/// Printed as `127.0.0.1:8080`, `[::1]:8080`, or the path.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    enum Storage: Sendable {
        case v4(sockaddr_in)
        case v6(sockaddr_in6)
        /// Path bytes without the trailing NUL; an abstract (Linux) address
        /// starts with a NUL byte. Empty for an unnamed socket.
        case unix([UInt8])
    }

    let storage: Storage

    init(_ storage: Storage) { self.storage = storage }

    /// An IPv4 address from its numeric form (`"127.0.0.1"`; `""` means
    /// any address, `"<broadcast>"` the broadcast address, as in Python).
    public init(ipv4 host: String, port: Int) throws {
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = UInt16(port).bigEndian
        switch host {
        case "", "0.0.0.0": sin.sin_addr.s_addr = INADDR_ANY
        case "<broadcast>": sin.sin_addr.s_addr = INADDR_BROADCAST
        default:
            guard Sys.inetPton(AF_INET, host, &sin.sin_addr) else {
                throw SocketError.invalidArgument("\(host) is not a numeric IPv4 address")
            }
        }
        storage = .v4(sin)
    }

    /// An IPv6 address from its numeric form (`"::1"`, `"fe80::1%eth0"`; `""` means any).
    /// The flow information has 20 bits: a larger one is refused, as in Python.
    public init(ipv6 host: String, port: Int, flowInfo: UInt32 = 0, scopeID: UInt32 = 0) throws {
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        guard flowInfo <= 0xF_FFFF else { throw SocketError.invalidArgument("flow info \(flowInfo) is not in 0...1048575") }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = UInt16(port).bigEndian
        sin6.sin6_flowinfo = flowInfo.bigEndian
        sin6.sin6_scope_id = scopeID
        var text = host
        if let percent = host.firstIndex(of: "%") {
            text = String(host[..<percent])
            let zone = String(host[host.index(after: percent)...])
            let index = Sys.interfaceIndex(zone)
            if index != 0 { sin6.sin6_scope_id = index } else if let n = UInt32(zone) { sin6.sin6_scope_id = n } else {
                throw SocketError.invalidArgument("unknown IPv6 zone \(zone)")
            }
        }
        if !text.isEmpty && text != "::" {
            guard Sys.inetPton(AF_INET6, text, &sin6.sin6_addr) else {
                throw SocketError.invalidArgument("\(host) is not a numeric IPv6 address")
            }
        }
        storage = .v6(sin6)
    }

    /// A Unix socket path. A path starting with `"\0"` is a Linux abstract
    /// address. A path takes at most 107 bytes (room for its NUL); an
    /// abstract name, which needs no NUL, 108, as in Python.
    public init(unixPath path: String) throws {
        let bytes = Array(path.utf8)
        let room = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        let abstract = bytes.first == 0
        guard abstract ? bytes.count <= room : bytes.count < room else {
            throw SocketError.invalidArgument("unix socket path is too long (\(bytes.count) bytes)")
        }
        storage = .unix(bytes)
    }

    /// Resolves `host` (a name or a numeric address) with `getaddrinfo` and
    /// returns the first address found; `""` is the wildcard address.
    public static func resolve(host: String, port: Int, family: AddressFamily = .unspecified,
                               type: SocketType = .stream, passive: Bool = false) throws -> SocketAddress {
        if host.isEmpty || host == "<broadcast>" {
            return family == .inet6 ? try SocketAddress(ipv6: "", port: port) : try SocketAddress(ipv4: host, port: port)
        }
        if family != .inet6, let a = try? SocketAddress(ipv4: host, port: port) { return a }
        if family != .inet, let a = try? SocketAddress(ipv6: host, port: port) { return a }
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        let infos = try Resolver.addressInfo(host: host, port: String(port), family: family, type: type,
                                             flags: passive ? Sys.passiveFlag : 0)
        guard let first = infos.first else {
            throw SocketError.addressResolution(code: Sys.ResolveFailure.noNameCode, message: "no address found", host: host)
        }
        return first.address
    }

    /// The family: `.inet`, `.inet6` or `.unix`.
    public var family: AddressFamily {
        switch storage {
        case .v4: return .inet
        case .v6: return .inet6
        case .unix: return .unix
        }
    }

    /// The numeric host (`"127.0.0.1"`, `"::1"`); nil for a Unix address.
    public var host: String? {
        switch storage {
        case .v4(var sin):
            return Sys.inetNtop(AF_INET, &sin.sin_addr) ?? ""
        case .v6(var sin6):
            return Sys.inetNtop(AF_INET6, &sin6.sin6_addr) ?? ""
        case .unix:
            return nil
        }
    }

    /// The port; nil for a Unix address.
    public var port: Int? {
        switch storage {
        case .v4(let sin): return Int(UInt16(bigEndian: sin.sin_port))
        case .v6(let sin6): return Int(UInt16(bigEndian: sin6.sin6_port))
        case .unix: return nil
        }
    }

    /// The IPv6 flow information; nil for other families.
    public var flowInfo: UInt32? {
        if case .v6(let sin6) = storage { return UInt32(bigEndian: sin6.sin6_flowinfo) }
        return nil
    }

    /// The IPv6 scope id; nil for other families.
    public var scopeID: UInt32? {
        if case .v6(let sin6) = storage { return sin6.sin6_scope_id }
        return nil
    }

    /// The Unix path (empty for an unnamed socket); nil for IP addresses.
    public var path: String? {
        if case .unix(let bytes) = storage { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    /// The same address with another port (IP families only).
    public func withPort(_ port: Int) -> SocketAddress {
        switch storage {
        case .v4(var sin): sin.sin_port = UInt16(truncatingIfNeeded: port).bigEndian; return SocketAddress(.v4(sin))
        case .v6(var sin6): sin6.sin6_port = UInt16(truncatingIfNeeded: port).bigEndian; return SocketAddress(.v6(sin6))
        case .unix: return self
        }
    }

    /// As Python prints addresses, and as the servers log them: `127.0.0.1:80`,
    /// `[::1]:80`, a Unix path as it is, an abstract one as `@name`.
    public var description: String {
        switch storage {
        case .v4: return "\(host!):\(port!)"
        case .v6: return "[\(host!)]:\(port!)"
        case .unix(let bytes):
            if bytes.first == 0 { return "@" + String(decoding: bytes.dropFirst(), as: UTF8.self) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Whether two addresses are the same: family, address and port (for
    /// IPv6 also flow information and scope), or the same Unix path.
    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        switch (a.storage, b.storage) {
        case (.v4(let x), .v4(let y)):
            return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr
        case (.v6(let x), .v6(let y)):
            return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id
                && x.sin6_flowinfo == y.sin6_flowinfo
                && withUnsafeBytes(of: x.sin6_addr) { a in withUnsafeBytes(of: y.sin6_addr) { b in a.elementsEqual(b) } }
        case (.unix(let x), .unix(let y)):
            return x == y
        default:
            return false
        }
    }

    /// Hashes what ``==(_:_:)`` compares.
    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .v4(let x):
            hasher.combine(4); hasher.combine(x.sin_port); hasher.combine(x.sin_addr.s_addr)
        case .v6(var x):
            hasher.combine(6); hasher.combine(x.sin6_port); hasher.combine(x.sin6_scope_id)
            withUnsafeBytes(of: &x.sin6_addr) { hasher.combine(bytes: $0) }
        case .unix(let bytes):
            hasher.combine(1); hasher.combine(bytes)
        }
    }

    /// Calls `body` with a C view of the address.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch storage {
        case .v4(var sin):
            return try withUnsafePointer(to: &sin) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(var sin6):
            return try withUnsafePointer(to: &sin6) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        case .unix(let bytes):
            var sun = sockaddr_un()
            sun.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &sun.sun_path) { raw in
                raw.copyBytes(from: bytes)
            }
            // Abstract addresses have an exact length; paths include their NUL;
            // the empty path is the family alone, which makes `bind` pick a
            // unique abstract name on Linux (Python's `bind('')`).
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let length = pathOffset + bytes.count + (bytes.isEmpty || bytes.first == 0 ? 0 : 1)
            return try withUnsafePointer(to: &sun) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(length))
                }
            }
        }
    }

    /// Reads an address the kernel wrote; nil for a family this type does not know.
    init?(storage ss: UnsafePointer<sockaddr_storage>, length: socklen_t) {
        switch Int32(ss.pointee.ss_family) {
        case AF_INET:
            storage = .v4(UnsafeRawPointer(ss).load(as: sockaddr_in.self))
        case AF_INET6:
            storage = .v6(UnsafeRawPointer(ss).load(as: sockaddr_in6.self))
        case AF_UNIX:
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let count = max(0, Int(length) - pathOffset)
            let raw = UnsafeRawPointer(ss) + pathOffset
            var bytes = Array(UnsafeRawBufferPointer(start: raw, count: count))
            if bytes.first != 0, let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
            storage = .unix(bytes)
        default:
            return nil
        }
    }

    /// Room for any address (`sizeof(sockaddr_storage)`), for calls that
    /// write one: reset the length to it before each attempt.
    static let storageSize = socklen_t(MemoryLayout<sockaddr_storage>.size)

    /// Runs `call` with room for an address the kernel writes (accept,
    /// recvfrom, getsockname), then reads that address: nil for a family
    /// this type does not know. `call` sets the length (``storageSize``)
    /// before each system call it makes.
    static func receiving<R>(_ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) throws -> R)
        rethrows -> (R, SocketAddress?) {
        var ss = sockaddr_storage()
        var len = storageSize
        let result = try withUnsafeMutablePointer(to: &ss) { ssp in
            try ssp.withMemoryRebound(to: sockaddr.self, capacity: 1) { try call($0, &len) }
        }
        return (result, withUnsafePointer(to: &ss) { SocketAddress(storage: $0, length: len) })
    }

    /// An unnamed Unix address (what `recvfrom` reports for an unbound Unix peer).
    static let unnamedUnix = SocketAddress(.unix([]))
}
