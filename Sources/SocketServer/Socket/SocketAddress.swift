/// An address family (Python's `AF_*`).
public struct AddressFamily: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `AF_*` number.
    public let rawValue: Int32
    /// The family with this `AF_*` number.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// IPv4 (`AF_INET`).
    public static let inet = AddressFamily(rawValue: Sys.afInet)
    /// IPv6 (`AF_INET6`).
    public static let inet6 = AddressFamily(rawValue: Sys.afInet6)
    /// Unix domain sockets (`AF_UNIX`).
    public static let unix = AddressFamily(rawValue: Sys.afUnix)
    /// Any family (`AF_UNSPEC`), for address look-ups.
    public static let unspecified = AddressFamily(rawValue: Sys.afUnspec)

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
    /// The C form (Platform/Addresses.swift).
    let storage: Storage

    init(_ storage: Storage) { self.storage = storage }

    /// An IPv4 address from its numeric form (`"127.0.0.1"`; `""` means
    /// any address, `"<broadcast>"` the broadcast address, as in Python).
    public init(ipv4 host: String, port: Int) throws {
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        guard let storage = Storage.ipv4(host, port: UInt16(port)) else {
            throw SocketError.invalidArgument("\(host) is not a numeric IPv4 address")
        }
        self.storage = storage
    }

    /// An IPv6 address from its numeric form (`"::1"`, `"fe80::1%eth0"`; `""` means any).
    /// The flow information has 20 bits: a larger one is refused, as in Python.
    public init(ipv6 host: String, port: Int, flowInfo: UInt32 = 0, scopeID: UInt32 = 0) throws {
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        guard flowInfo <= 0xF_FFFF else { throw SocketError.invalidArgument("flow info \(flowInfo) is not in 0...1048575") }
        var text = host
        var scope = scopeID
        if let percent = host.firstIndex(of: "%") {
            text = String(host[..<percent])
            let zone = String(host[host.index(after: percent)...])
            let index = Sys.interfaceIndex(zone)
            if index != 0 { scope = index } else if let n = UInt32(zone) { scope = n } else {
                throw SocketError.invalidArgument("unknown IPv6 zone \(zone)")
            }
        }
        guard let storage = Storage.ipv6(text, port: UInt16(port), flowInfo: flowInfo, scopeID: scope) else {
            throw SocketError.invalidArgument("\(host) is not a numeric IPv6 address")
        }
        self.storage = storage
    }

    /// A Unix socket path. A path starting with `"\0"` is a Linux abstract
    /// address. A path takes at most 107 bytes (room for its NUL); an
    /// abstract name, which needs no NUL, 108, as in Python.
    public init(unixPath path: String) throws {
        let bytes = Array(path.utf8)
        let room = SocketAddress.unixPathCapacity
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
    public var host: String? { storage.host }

    /// The port; nil for a Unix address.
    public var port: Int? { storage.port }

    /// The IPv6 flow information; nil for other families.
    public var flowInfo: UInt32? { storage.flowInfo }

    /// The IPv6 scope id; nil for other families.
    public var scopeID: UInt32? { storage.scopeID }

    /// The Unix path (empty for an unnamed socket); nil for IP addresses.
    public var path: String? {
        if case .unix(let bytes) = storage { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    /// The same address with another port (IP families only).
    public func withPort(_ port: Int) -> SocketAddress { SocketAddress(storage.withPort(port)) }

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
    public static func == (a: SocketAddress, b: SocketAddress) -> Bool { Storage.same(a.storage, b.storage) }

    /// Hashes what ``==(_:_:)`` compares.
    public func hash(into hasher: inout Hasher) { storage.hash(into: &hasher) }

    /// An unnamed Unix address (what `recvfrom` reports for an unbound Unix peer).
    static let unnamedUnix = SocketAddress(.unix([]))
}
