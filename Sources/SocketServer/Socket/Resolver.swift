#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One result of ``Resolver/addressInfo(host:port:family:type:proto:flags:)``
/// (one tuple of Python's `getaddrinfo`).
public struct AddressInfo: Sendable, Hashable, CustomStringConvertible {
    public var family: AddressFamily
    public var type: SocketType
    public var proto: Int32
    /// Set for the first result when `AI_CANONNAME` was asked for.
    public var canonicalName: String?
    public var address: SocketAddress

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
        var hints = addrinfo()
        hints.ai_family = family.rawValue
        hints.ai_socktype = type?.rawValue ?? 0
        hints.ai_protocol = proto
        hints.ai_flags = flags
        var result: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, port, &hints, &result)
        guard code == 0 else { throw resolutionError(code, host ?? port ?? "") }
        defer { freeaddrinfo(result) }
        var infos: [AddressInfo] = []
        var p = result
        while let ai = p {
            if let sa = ai.pointee.ai_addr {
                var ss = sockaddr_storage()
                withUnsafeMutableBytes(of: &ss) { raw in
                    raw.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: min(Int(ai.pointee.ai_addrlen), raw.count)))
                }
                if let address = SocketAddress(storage: &ss, length: ai.pointee.ai_addrlen) {
                    infos.append(AddressInfo(family: AddressFamily(rawValue: ai.pointee.ai_family),
                                             type: SocketType(rawValue: ai.pointee.ai_socktype),
                                             proto: ai.pointee.ai_protocol,
                                             canonicalName: ai.pointee.ai_canonname.map { cString($0) },
                                             address: address))
                }
            }
            p = ai.pointee.ai_next
        }
        return infos
    }

    /// Turns an address back into a host and service name (`getnameinfo(3)`).
    public static func nameInfo(_ address: SocketAddress, flags: Int32 = 0) throws -> (host: String, service: String) {
        var host = [CChar](repeating: 0, count: 1025)
        var service = [CChar](repeating: 0, count: 32)
        let code = address.withSockAddr { sa, len in
            getnameinfo(sa, len, &host, socklen_t(host.count), &service, socklen_t(service.count), flags)
        }
        guard code == 0 else { throw resolutionError(code, address.description) }
        return (cString(host), cString(service))
    }

    /// This machine's host name (`gethostname(2)`).
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return cString(buffer)
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
        let infos = try addressInfo(host: name, port: nil, family: .inet, type: .stream, flags: Int32(AI_CANONNAME))
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
            let (name, _) = try nameInfo(address, flags: NI_NAMEREQD)
            return (name, [], [address.host ?? ip])
        } catch let error as SocketError where error.kind == .addressResolution {
            throw SocketError.hostNotFound(host: ip, message: error.detail ?? "")
        }
    }

    /// A fully qualified name for `name` (this host when empty), as Python's
    /// `getfqdn`: the canonical name if it has a dot, else `name` itself.
    public static func fqdn(_ name: String = "") -> String {
        let n = name.trimmingSpaces
        let host = (n.isEmpty || n == "0.0.0.0" || n == "::") ? hostname() : n
        if let infos = try? addressInfo(host: host, port: nil, type: .stream, flags: Int32(AI_CANONNAME)),
           let canonical = infos.first?.canonicalName, canonical.contains(".") {
            return canonical
        }
        if let (byAddress, _, _) = try? hostByAddress(host), byAddress.contains(".") { return byAddress }
        return host
    }

    /// The port of a service (`getservbyname_r`), e.g. `("http", "tcp")` → 80.
    public static func serviceByName(_ name: String, protocol proto: String? = nil) throws -> Int {
        var entry = servent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<servent>?
        getservbyname_r(name, proto, &entry, &buffer, buffer.count, &result)
        guard let r = result else { throw SocketError.hostNotFound(host: name, message: "service/proto not found") }
        return Int(UInt16(bigEndian: UInt16(truncatingIfNeeded: r.pointee.s_port)))
    }

    /// The name of the service at a port (`getservbyport_r`), e.g. 22 → `ssh`.
    public static func serviceByPort(_ port: Int, protocol proto: String? = nil) throws -> String {
        guard (0...65535).contains(port) else { throw SocketError.invalidArgument("port \(port) is not in 0...65535") }
        var entry = servent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<servent>?
        getservbyport_r(Int32(UInt16(port).bigEndian), proto, &entry, &buffer, buffer.count, &result)
        guard let r = result, let n = r.pointee.s_name else {
            throw SocketError.hostNotFound(host: String(port), message: "port/proto not found")
        }
        return cString(n)
    }

    /// The number of a protocol (`getprotobyname_r`), e.g. `tcp` → 6.
    public static func protocolByName(_ name: String) throws -> Int32 {
        var entry = protoent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<protoent>?
        getprotobyname_r(name, &entry, &buffer, buffer.count, &result)
        guard let r = result else { throw SocketError.hostNotFound(host: name, message: "protocol not found") }
        return r.pointee.p_proto
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
        guard inet_pton(family.rawValue, text, &bytes) == 1 else {
            throw SocketError.invalidArgument("illegal IP address string passed to inet_pton: \(text)")
        }
        return bytes
    }

    /// Network-order bytes to numeric text (`inet_ntop(3)`).
    public static func inetNtop(_ family: AddressFamily, _ bytes: [UInt8]) throws -> String {
        let expected = family == .inet ? 4 : family == .inet6 ? 16 : -1
        guard expected > 0 else { throw SocketError.system(.addressFamilyNotSupported, operation: "inet_ntop", address: nil) }
        guard bytes.count == expected else { throw SocketError.invalidArgument("invalid length of packed IP address string") }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family.rawValue, bytes, &text, socklen_t(text.count)) != nil else {
            throw SocketError.fromErrno("inet_ntop")
        }
        return cString(text)
    }

    /// Dotted IPv4 text, in any of the forms `inet_aton(3)` takes
    /// (`127.1`, `0x7f.1`), to 4 network-order bytes.
    public static func inetAton(_ text: String) throws -> [UInt8] {
        var addr = in_addr()
        guard inet_aton(text, &addr) != 0 else {
            throw SocketError.invalidArgument("illegal IP address string passed to inet_aton: \(text)")
        }
        return withUnsafeBytes(of: &addr) { Array($0) }
    }

    /// 4 network-order bytes to dotted IPv4 text (`inet_ntoa`).
    public static func inetNtoa(_ bytes: [UInt8]) throws -> String {
        try inetNtop(.inet, bytes)
    }

    static func resolutionError(_ code: Int32, _ host: String) -> SocketError {
        if code == EAI_SYSTEM {
            return .system(.current, operation: "resolve", address: host)
        }
        return .addressResolution(code: code, message: cString(gai_strerror(code)), host: host)
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
