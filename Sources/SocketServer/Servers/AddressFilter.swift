/// An IP network: an address and a prefix length (`"10.0.0.0/8"`,
/// `"2001:db8::/32"`, `"127.0.0.1"` for one host).
///
/// ```swift
/// let loopback = try CIDR("127.0.0.0/8")
/// loopback.contains(try SocketAddress(ipv4: "127.0.0.2", port: 80))      // true
/// loopback.contains(try SocketAddress(ipv6: "::ffff:127.0.0.2", port: 80)) // true: IPv4-mapped
/// ```
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack IPv6
/// listener reports for an IPv4 client) are matched as the IPv4 address
/// they carry, both as the address tested and as the network: a network
/// written `::ffff:10.0.0.0/104` is `10.0.0.0/8`. So an IPv6 network such
/// as `::/0` holds no IPv4 client, mapped or not: list `0.0.0.0/0` as well
/// to take both. Unix addresses are in no network. A network written with host bits set (`10.0.0.1/8`) is
/// refused, as Python's `ip_network` does: it is almost always a typo.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The network's address bytes: 4 for IPv4, 16 for IPv6, host bits zero.
    public let addressBytes: [UInt8]
    /// The number of leading bits that must match: 0...32 or 0...128.
    public let prefixLength: Int

    /// The family of the network: `.inet` or `.inet6`.
    public var family: AddressFamily { addressBytes.count == 4 ? .inet : .inet6 }

    /// Parses `"ADDRESS/PREFIX"` or a bare `"ADDRESS"` (a single host: /32
    /// or /128). The prefix is decimal, without leading zeros; an IPv6
    /// address may be written in brackets (`"[::1]/128"`); zones (`%eth0`)
    /// are refused.
    public init(_ text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        var host = String(parts[0])
        if host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 {
            host = String(host.dropFirst().dropLast())
        }
        guard let bytes = CIDR.parseAddress(host) else {
            throw SocketError.invalidArgument("\(text) is not a network: \(host) is not a numeric IP address")
        }
        let maxBits = bytes.count * 8
        var prefix = maxBits
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  digits == "0" || !digits.hasPrefix("0"), let n = Int(digits), n <= maxBits else {
                throw SocketError.invalidArgument("\(text) is not a network: the prefix must be 0...\(maxBits)")
            }
            prefix = n
        }
        let network = CIDR.masked(bytes, prefix)
        guard network == bytes else {
            let suggestion = CIDR(normalizing: network, prefixLength: prefix)
            throw SocketError.invalidArgument("\(text) has host bits set (the network is \(suggestion))")
        }
        self.init(normalizing: bytes, prefixLength: prefix)
    }

    /// The network of `address` (an IPv4 or IPv6 address; its port is
    /// ignored) with the first `prefixLength` bits kept.
    public init(address: SocketAddress, prefixLength: Int) throws {
        guard let bytes = address.ipBytes else {
            throw SocketError.invalidArgument("\(address) is not an IP address")
        }
        guard (0...bytes.count * 8).contains(prefixLength) else {
            throw SocketError.invalidArgument("prefix \(prefixLength) is not in 0...\(bytes.count * 8)")
        }
        self.init(normalizing: CIDR.masked(bytes, prefixLength), prefixLength: prefixLength)
    }

    /// Stores the network, an IPv4-mapped one (prefix 96 or more) as IPv4.
    private init(normalizing bytes: [UInt8], prefixLength: Int) {
        if bytes.count == 16, prefixLength >= 96, CIDR.isV4Mapped(bytes) {
            addressBytes = Array(bytes[12...])
            self.prefixLength = prefixLength - 96
        } else {
            addressBytes = bytes
            self.prefixLength = prefixLength
        }
    }

    /// Parses each of `texts` (see ``init(_:)``).
    public static func list(_ texts: [String]) throws -> [CIDR] { try texts.map(CIDR.init) }

    /// 127.0.0.0/8 and ::1/128: a proxy on the same machine.
    public static let loopback: [CIDR] = [CIDR(normalizing: [127, 0, 0, 0], prefixLength: 8),
                                          CIDR(normalizing: Array(repeating: 0, count: 15) + [1], prefixLength: 128)]

    /// The private networks of RFC 1918 and RFC 4193 (10/8, 172.16/12,
    /// 192.168/16, fc00::/7), where load balancers usually sit.
    public static let privateNetworks: [CIDR] = [
        CIDR(normalizing: [10, 0, 0, 0], prefixLength: 8),
        CIDR(normalizing: [172, 16, 0, 0], prefixLength: 12),
        CIDR(normalizing: [192, 168, 0, 0], prefixLength: 16),
        CIDR(normalizing: [0xfc] + Array(repeating: 0, count: 15), prefixLength: 7),
    ]

    /// Whether `address` is in this network. An IPv4-mapped IPv6 address is
    /// tested as its IPv4 address; a Unix address is in no network.
    public func contains(_ address: SocketAddress) -> Bool {
        guard var bytes = address.ipBytes else { return false }
        if bytes.count == 16 && CIDR.isV4Mapped(bytes) { bytes = Array(bytes[12...]) }
        guard bytes.count == addressBytes.count else { return false }
        return CIDR.masked(bytes, prefixLength) == addressBytes
    }

    /// Whether any network of `networks` contains `address`.
    public static func any(_ networks: [CIDR], contains address: SocketAddress) -> Bool {
        networks.contains { $0.contains(address) }
    }

    /// `"10.0.0.0/8"`, `"2001:db8::/32"`.
    public var description: String {
        let host = (try? Sys.numericHost(addressBytes)) ?? ""
        return "\(host)/\(prefixLength)"
    }

    // MARK: - Bits

    static func isV4Mapped(_ bytes: [UInt8]) -> Bool {
        bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
    }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in out.indices {
            let keep = min(max(prefix - i * 8, 0), 8)
            out[i] &= keep == 8 ? 0xff : ~(0xff >> UInt8(keep))
        }
        return out
    }

    /// The bytes of a numeric IPv4 (dotted quad) or IPv6 address; nil if it is neither.
    static func parseAddress(_ host: String) -> [UInt8]? {
        guard !host.isEmpty, !host.contains("%") else { return nil }
        return host.contains(":") ? Sys.ipv6Bytes(host) : Sys.ipv4Bytes(host)
    }
}

extension SocketAddress {
    /// The address bytes in network order: 4 for IPv4, 16 for IPv6, nil for Unix.
    var ipBytes: [UInt8]? { storage.ipBytes }

    /// An IP address from its 4 or 16 bytes in network order, and a port.
    init?(ipBytes bytes: some Collection<UInt8>, port: UInt16) {
        guard let storage = Storage.ip(bytes: Array(bytes), port: port) else { return nil }
        self.init(storage)
    }

    /// The same address as IPv4 when it is an IPv4-mapped IPv6 one.
    var unmappedIPv4: SocketAddress {
        guard let bytes = ipBytes, CIDR.isV4Mapped(bytes), let port else { return self }
        return SocketAddress(ipBytes: bytes[12...], port: UInt16(port)) ?? self
    }
}

/// Which clients a server serves (``BaseServer/addressFilter``): Net::Server's
/// `cidr_allow`/`cidr_deny`. A client inside a ``deny`` network is never
/// served (deny wins); with a non-empty ``allow`` list, only clients inside
/// one of its networks are. An IPv4-mapped IPv6 address is matched as the
/// IPv4 address. Unix peers have no address: they are always allowed.
///
/// ```swift
/// server.addressFilter = try AddressFilter(allow: ["10.0.0.0/8"], deny: ["10.0.0.66"])
/// ```
///
/// The server applies it on the accepting thread, before any thread is
/// spent (for a connection from a trusted PROXY protocol peer: on the
/// connection's thread, to the client the header names). A
/// ``BaseServer/verifyRequest(_:clientAddress:)`` override may call
/// ``allows(_:)`` too.
public struct AddressFilter: Sendable, Hashable {
    /// The networks served; empty: every one not denied.
    public var allow: [CIDR]
    /// The networks never served.
    public var deny: [CIDR]

    /// A filter; both lists empty lets everyone in.
    public init(allow: [CIDR] = [], deny: [CIDR] = []) {
        self.allow = allow
        self.deny = deny
    }

    /// As ``init(allow:deny:)``, with the networks written out (`"127.0.0.0/8"`,
    /// `"::1"`; see ``CIDR/init(_:)``).
    public init(allow: [String] = [], deny: [String] = []) throws {
        self.init(allow: try CIDR.list(allow), deny: try CIDR.list(deny))
    }

    /// Whether a client at `address` may be served.
    public func allows(_ address: SocketAddress) -> Bool {
        guard address.family != .unix else { return true }
        if CIDR.any(deny, contains: address) { return false }
        return allow.isEmpty || CIDR.any(allow, contains: address)
    }

    /// Lets everyone in.
    public static let everyone = AddressFilter(allow: [CIDR](), deny: [CIDR]())
}
