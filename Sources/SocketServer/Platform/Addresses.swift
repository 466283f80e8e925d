// Socket addresses in C: the sockaddr structures a `SocketAddress` holds,
// their fields, the views the system calls take and the ones the kernel
// writes, and the numeric text of IP addresses (inet_pton/inet_ntop).
// Above this file, addresses are `SocketAddress` values and byte arrays.

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// The C socket address, for signatures outside Platform.
typealias SockAddr = sockaddr
/// The C socket address length.
typealias SockLen = socklen_t

extension Sys {
    static let afInet = AF_INET
    static let afInet6 = AF_INET6
    static let afUnix = AF_UNIX
    static let afUnspec = AF_UNSPEC

    /// The bytes of a numeric IPv4 address (dotted quad, inet_pton(3)); nil if it is not one.
    static func ipv4Bytes(_ text: String) -> [UInt8]? {
        var a = in_addr()
        guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
        return withUnsafeBytes(of: &a) { Array($0) }
    }

    /// The bytes of a numeric IPv6 address (inet_pton(3), no zone); nil if it is not one.
    static func ipv6Bytes(_ text: String) -> [UInt8]? {
        var a = in6_addr()
        guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
        return withUnsafeBytes(of: &a) { Array($0) }
    }

    /// The numeric text of 4 (IPv4) or 16 (IPv6) address bytes (inet_ntop(3)).
    static func numericHost(_ bytes: [UInt8]) throws(Errno) -> String {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let text = bytes.withUnsafeBytes { inetNtop(family, $0.baseAddress!) }
        guard let text else { throw Errno(Glibc.errno, call: "inet_ntop") }
        return text
    }
}

extension SocketAddress {
    /// The C form of an address.
    enum Storage: Sendable {
        case v4(sockaddr_in)
        case v6(sockaddr_in6)
        /// Path bytes without the trailing NUL; an abstract (Linux) address
        /// starts with a NUL byte. Empty for an unnamed socket.
        case unix([UInt8])
    }

    /// How many bytes a Unix path may take (`sun_path`, its NUL included).
    static let unixPathCapacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
}

extension SocketAddress.Storage {
    /// An IPv4 address: `""` and `"0.0.0.0"` the wildcard, `"<broadcast>"`
    /// the broadcast address, otherwise a dotted quad; nil for other text.
    static func ipv4(_ host: String, port: UInt16) -> Self? {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        switch host {
        case "", "0.0.0.0": sin.sin_addr.s_addr = INADDR_ANY
        case "<broadcast>": sin.sin_addr.s_addr = INADDR_BROADCAST
        default:
            guard Sys.inetPton(AF_INET, host, &sin.sin_addr) else { return nil }
        }
        return .v4(sin)
    }

    /// An IPv6 address from numeric text without a zone (`""` and `"::"`:
    /// the wildcard); nil for other text.
    static func ipv6(_ host: String, port: UInt16, flowInfo: UInt32, scopeID: UInt32) -> Self? {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        sin6.sin6_flowinfo = flowInfo.bigEndian
        sin6.sin6_scope_id = scopeID
        if !host.isEmpty && host != "::" {
            guard Sys.inetPton(AF_INET6, host, &sin6.sin6_addr) else { return nil }
        }
        return .v6(sin6)
    }

    /// An IP address from its 4 or 16 bytes in network order; nil for another count.
    static func ip(bytes: [UInt8], port: UInt16) -> Self? {
        switch bytes.count {
        case 4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            return .v4(sin)
        case 16:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            return .v6(sin6)
        default:
            return nil
        }
    }

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6, nil for Unix.
    var ipBytes: [UInt8]? {
        switch self {
        case .v4(var sin): return withUnsafeBytes(of: &sin.sin_addr) { Array($0) }
        case .v6(var sin6): return withUnsafeBytes(of: &sin6.sin6_addr) { Array($0) }
        case .unix: return nil
        }
    }

    /// The numeric host; nil for a Unix address.
    var host: String? {
        switch self {
        case .v4(var sin): return Sys.inetNtop(AF_INET, &sin.sin_addr) ?? ""
        case .v6(var sin6): return Sys.inetNtop(AF_INET6, &sin6.sin6_addr) ?? ""
        case .unix: return nil
        }
    }

    /// The port; nil for a Unix address.
    var port: Int? {
        switch self {
        case .v4(let sin): return Int(UInt16(bigEndian: sin.sin_port))
        case .v6(let sin6): return Int(UInt16(bigEndian: sin6.sin6_port))
        case .unix: return nil
        }
    }

    /// The IPv6 flow information; nil for other families.
    var flowInfo: UInt32? {
        if case .v6(let sin6) = self { return UInt32(bigEndian: sin6.sin6_flowinfo) }
        return nil
    }

    /// The IPv6 scope id; nil for other families.
    var scopeID: UInt32? {
        if case .v6(let sin6) = self { return sin6.sin6_scope_id }
        return nil
    }

    /// The same address with another port (IP families only).
    func withPort(_ port: Int) -> Self {
        switch self {
        case .v4(var sin): sin.sin_port = UInt16(truncatingIfNeeded: port).bigEndian; return .v4(sin)
        case .v6(var sin6): sin6.sin6_port = UInt16(truncatingIfNeeded: port).bigEndian; return .v6(sin6)
        case .unix: return self
        }
    }

    /// Family, address and port (for IPv6 also flow information and
    /// scope), or the same Unix path.
    static func same(_ a: Self, _ b: Self) -> Bool {
        switch (a, b) {
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

    /// Hashes what ``same(_:_:)`` compares.
    func hash(into hasher: inout Hasher) {
        switch self {
        case .v4(let x):
            hasher.combine(4); hasher.combine(x.sin_port); hasher.combine(x.sin_addr.s_addr)
        case .v6(var x):
            hasher.combine(6); hasher.combine(x.sin6_port); hasher.combine(x.sin6_scope_id)
            withUnsafeBytes(of: &x.sin6_addr) { hasher.combine(bytes: $0) }
        case .unix(let bytes):
            hasher.combine(1); hasher.combine(bytes)
        }
    }
}

extension SocketAddress {
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
            self.init(.v4(UnsafeRawPointer(ss).load(as: sockaddr_in.self)))
        case AF_INET6:
            self.init(.v6(UnsafeRawPointer(ss).load(as: sockaddr_in6.self)))
        case AF_UNIX:
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let count = max(0, Int(length) - pathOffset)
            let raw = UnsafeRawPointer(ss) + pathOffset
            var bytes = Array(UnsafeRawBufferPointer(start: raw, count: count))
            if bytes.first != 0, let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
            self.init(.unix(bytes))
        default:
            return nil
        }
    }

    /// The address of one `getaddrinfo` result; nil for a family this type does not know.
    init?(_ info: Sys.AddrInfo) {
        var storage = info.storage
        self.init(storage: &storage, length: info.length)
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
}
