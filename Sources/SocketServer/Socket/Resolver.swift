/// One result of ``Resolver/addressInfo(host:port:family:type:proto:flags:)``
/// (one tuple of Python's `getaddrinfo`).
public struct AddressInfo: Sendable, Hashable, CustomStringConvertible {
    /// The address family (`.inet`, `.inet6`).
    public var family: AddressFamily
    /// The socket type the address is for (`.stream`, `.datagram`).
    public var type: SocketType
    /// The protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`), for ``Socket/init(family:type:proto:)``.
    public var proto: Int32
    /// Set for the first result when `AI_CANONNAME` was asked for.
    public var canonicalName: String?
    /// The address to bind or connect to.
    public var address: SocketAddress

    /// The fields on one line: `inet stream proto=6 127.0.0.1:80`.
    public var description: String { "\(family) \(type) proto=\(proto) \(address)" }
}

/// Python's name-service and address-conversion functions: `getaddrinfo`,
/// `getnameinfo`, `gethostname`, `gethostbyname[_ex]`, `gethostbyaddr`,
/// `getfqdn`, `getservbyname`, `getservbyport`, `getprotobyname`,
/// `inet_pton`/`inet_ntop`, `inet_aton`/`inet_ntoa`.
///
/// Every call is thread-safe (the re-entrant forms of the C calls are used).
public enum Resolver {
    /// Resolves a host and service to socket addresses (`getaddrinfo(3)`).
    /// `host` nil with `AI_PASSIVE` gives the wildcard address. Throws
    /// ``SocketError/addressResolution(code:message:host:)`` on failure.
    public static func addressInfo(host: String?, port: String?, family: AddressFamily = .unspecified,
                                   type: SocketType? = nil, proto: Int32 = 0, flags: Int32 = 0) throws -> [AddressInfo] {
        let found: [Sys.AddrInfo]
        do {
            found = try Sys.getaddrinfo(host, port, family: family.rawValue, type: type?.rawValue ?? 0,
                                        proto: proto, flags: flags)
        } catch {
            throw resolutionError(error, host ?? port ?? "")
        }
        var infos: [AddressInfo] = []
        for info in found {
            if let address = SocketAddress(info) {
                infos.append(AddressInfo(family: AddressFamily(rawValue: info.family), type: SocketType(rawValue: info.type),
                                         proto: info.proto, canonicalName: info.canonicalName, address: address))
            }
        }
        return infos
    }

    /// Turns an address back into a host and service name (`getnameinfo(3)`).
    public static func nameInfo(_ address: SocketAddress, flags: Int32 = 0) throws -> (host: String, service: String) {
        do {
            return try address.withSockAddr { sa, len in try Sys.getnameinfo(sa, len, flags: flags) }
        } catch let error as Sys.ResolveFailure {
            throw resolutionError(error, address.description)
        }
    }

    /// This machine's host name (`gethostname(2)`).
    public static func hostname() -> String {
        Sys.hostname()
    }

    /// The first IPv4 address of `name`, as text (`gethostbyname`).
    public static func hostByName(_ name: String) throws -> String {
        let infos = try addressInfo(host: name, port: nil, family: .inet, type: .stream)
        guard let host = infos.first?.address.host else {
            throw SocketError.hostNotFound(host: name, message: "no IPv4 address")
        }
        return host
    }

    /// The canonical name, aliases and IPv4 addresses of `name`
    /// (`gethostbyname_ex`). Aliases are not reported by `getaddrinfo`, so the
    /// list is always empty.
    public static func hostByNameEx(_ name: String) throws -> (name: String, aliases: [String], addresses: [String]) {
        let infos = try addressInfo(host: name, port: nil, family: .inet, type: .stream, flags: Sys.canonicalNameFlag)
        var addresses: [String] = []
        for info in infos { if let h = info.address.host, !addresses.contains(h) { addresses.append(h) } }
        return (infos.first?.canonicalName ?? name, [], addresses)
    }

    /// The name of the host at a numeric address (`gethostbyaddr`):
    /// its name, aliases (always empty) and the address itself.
    /// Throws ``SocketError/hostNotFound(host:message:)`` when it has no name.
    public static func hostByAddress(_ ip: String) throws -> (name: String, aliases: [String], addresses: [String]) {
        let address: SocketAddress
        if let a = try? SocketAddress(ipv4: ip, port: 0) { address = a }
        else if let a = try? SocketAddress(ipv6: ip, port: 0) { address = a }
        else { address = try SocketAddress.resolve(host: ip, port: 0) }
        do {
            let (name, _) = try nameInfo(address, flags: Sys.nameRequiredFlag)
            return (name, [], [address.host ?? ip])
        } catch let error as SocketError where error.kind == .addressResolution {
            throw SocketError.hostNotFound(host: ip, message: error.detail ?? "")
        }
    }

    /// A fully qualified name for `name` (this host when empty), as Python's
    /// `getfqdn`: the name ``hostByAddress(_:)`` finds for it (for an
    /// address, its name: `fqdn("127.0.0.1")` is `localhost` where the
    /// hosts file says so), or `name` itself when it finds none.
    public static func fqdn(_ name: String = "") -> String {
        let n = name.trimmingSpaces
        let host = (n.isEmpty || n == "0.0.0.0" || n == "::") ? hostname() : n
        // Python looks for a dotted name among the name and its aliases, and
        // takes the name when none has a dot; `getnameinfo` gives no aliases.
        if let (byAddress, _, _) = try? hostByAddress(host) { return byAddress }
        return host
    }

    /// The port of a service (`getservbyname_r`), e.g. `("http", "tcp")` → 80.
    public static func serviceByName(_ name: String, protocol proto: String? = nil) throws -> Int {
        guard let port = Sys.serviceByName(name, proto) else {
            throw SocketError.hostNotFound(host: name, message: "service/proto not found")
        }
        return port
    }

    /// The name of the service at a port (`getservbyport_r`), e.g. 22 → `ssh`.
    public static func serviceByPort(_ port: Int, protocol proto: String? = nil) throws -> String {
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        guard let service = Sys.serviceByPort(UInt16(port), proto) else {
            throw SocketError.hostNotFound(host: String(port), message: "port/proto not found")
        }
        return service
    }

    /// The number of a protocol (`getprotobyname_r`), e.g. `tcp` → 6.
    public static func protocolByName(_ name: String) throws -> Int32 {
        guard let number = Sys.protocolByName(name) else {
            throw SocketError.hostNotFound(host: name, message: "protocol not found")
        }
        return number
    }

    /// Numeric text to network-order bytes (`inet_pton(3)`): 4 bytes for
    /// `.inet`, 16 for `.inet6`.
    public static func inetPton(_ family: AddressFamily, _ text: String) throws -> [UInt8] {
        let size: Int
        switch family {
        case .inet: size = 4
        case .inet6: size = 16
        default: throw SocketError.system(.addressFamilyNotSupported, operation: "inet_pton", address: nil)
        }
        var bytes = [UInt8](repeating: 0, count: size)
        guard bytes.withUnsafeMutableBytes({ Sys.inetPton(family.rawValue, text, $0.baseAddress!) }) else {
            throw SocketError.invalidArgument("illegal IP address string passed to inet_pton: \(text)")
        }
        return bytes
    }

    /// Network-order bytes to numeric text (`inet_ntop(3)`).
    public static func inetNtop(_ family: AddressFamily, _ bytes: [UInt8]) throws -> String {
        let expected = family == .inet ? 4 : family == .inet6 ? 16 : -1
        guard expected > 0 else { throw SocketError.system(.addressFamilyNotSupported, operation: "inet_ntop", address: nil) }
        guard bytes.count == expected else { throw SocketError.invalidArgument("invalid length of packed IP address string") }
        do { return try Sys.numericHost(bytes) } catch { throw SocketError(error, operation: "inet_ntop") }
    }

    /// Dotted IPv4 text, in any of the forms `inet_aton(3)` takes
    /// (`127.1`, `0x7f.1`), to 4 network-order bytes.
    public static func inetAton(_ text: String) throws -> [UInt8] {
        guard let bytes = Sys.inetAton(text) else {
            throw SocketError.invalidArgument("illegal IP address string passed to inet_aton: \(text)")
        }
        return bytes
    }

    /// 4 network-order bytes to dotted IPv4 text (`inet_ntoa`).
    public static func inetNtoa(_ bytes: [UInt8]) throws -> String {
        try inetNtop(.inet, bytes)
    }

    static func resolutionError(_ failure: Sys.ResolveFailure, _ host: String) -> SocketError {
        if let errno = failure.errno {
            return .system(errno, operation: "resolve", address: host)
        }
        return .addressResolution(code: failure.code, message: failure.message, host: host)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
