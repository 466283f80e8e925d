// The name-service and address-conversion calls (getaddrinfo & co.): none
// of them fails with EINTR or waits on a descriptor, so they do not go
// through `Sys.io`; they are here so that the Socket layer calls no libc.

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

extension Sys {
    /// A failed `getaddrinfo`/`getnameinfo`: the `EAI_*` code, its message,
    /// and for `EAI_SYSTEM` the error number.
    struct ResolveFailure: Error {
        let code: Int32
        let message: String
        let errno: Errno?
        static let systemCode = EAI_SYSTEM
        static let noNameCode = EAI_NONAME

        init(_ code: Int32) {
            self.code = code
            self.errno = code == EAI_SYSTEM ? Errno(Glibc.errno, call: "getaddrinfo") : nil
            self.message = cString(gai_strerror(code))
        }

        /// The symbolic name of an `EAI_*` code (`EAI_NONAME`; `EAI_<n>` when unknown).
        static func name(of code: Int32) -> String {
            switch code {
            case EAI_AGAIN: return "EAI_AGAIN"
            case EAI_BADFLAGS: return "EAI_BADFLAGS"
            case EAI_FAIL: return "EAI_FAIL"
            case EAI_FAMILY: return "EAI_FAMILY"
            case EAI_MEMORY: return "EAI_MEMORY"
            case EAI_NONAME: return "EAI_NONAME"
            case EAI_SERVICE: return "EAI_SERVICE"
            case EAI_SOCKTYPE: return "EAI_SOCKTYPE"
            case EAI_SYSTEM: return "EAI_SYSTEM"
            case EAI_OVERFLOW: return "EAI_OVERFLOW"
            default: return "EAI_\(code)"
            }
        }
    }

    /// One result of `getaddrinfo`.
    struct AddrInfo {
        var family: Int32
        var type: Int32
        var proto: Int32
        var canonicalName: String?
        var storage: sockaddr_storage
        var length: socklen_t
    }

    static let canonicalNameFlag = Int32(AI_CANONNAME)
    static let passiveFlag = Int32(AI_PASSIVE)
    static let nameRequiredFlag = NI_NAMEREQD

    /// getaddrinfo(3), its list copied out and freed.
    static func getaddrinfo(_ host: String?, _ port: String?, family: Int32, type: Int32, proto: Int32,
                            flags: Int32) throws(ResolveFailure) -> [AddrInfo] {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = type
        hints.ai_protocol = proto
        hints.ai_flags = flags
        var result: UnsafeMutablePointer<addrinfo>?
        let code = Glibc.getaddrinfo(host, port, &hints, &result)
        guard code == 0 else { throw ResolveFailure(code) }
        defer { freeaddrinfo(result) }
        var infos: [AddrInfo] = []
        var p = result
        while let ai = p {
            if let sa = ai.pointee.ai_addr {
                var ss = sockaddr_storage()
                let length = min(Int(ai.pointee.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
                withUnsafeMutableBytes(of: &ss) { raw in
                    raw.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: length))
                }
                infos.append(AddrInfo(family: ai.pointee.ai_family, type: ai.pointee.ai_socktype,
                                      proto: ai.pointee.ai_protocol,
                                      canonicalName: ai.pointee.ai_canonname.map { cString($0) },
                                      storage: ss, length: socklen_t(length)))
            }
            p = ai.pointee.ai_next
        }
        return infos
    }

    /// getnameinfo(3): host and service names.
    static func getnameinfo(_ sa: UnsafePointer<sockaddr>, _ len: socklen_t, flags: Int32) throws(ResolveFailure) -> (String, String) {
        var host = [CChar](repeating: 0, count: 1025)
        var service = [CChar](repeating: 0, count: 32)
        let code = Glibc.getnameinfo(sa, len, &host, socklen_t(host.count), &service, socklen_t(service.count), flags)
        guard code == 0 else { throw ResolveFailure(code) }
        return (cString(host), cString(service))
    }

    /// gethostname(2).
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = gethostname(&buffer, buffer.count - 1)
        return cString(buffer)
    }

    /// getservbyname_r(3): the port, in host order; nil when unknown.
    static func serviceByName(_ name: String, _ proto: String?) -> Int? {
        var entry = servent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<servent>?
        _ = getservbyname_r(name, proto, &entry, &buffer, buffer.count, &result)
        guard let r = result else { return nil }
        return Int(UInt16(bigEndian: UInt16(truncatingIfNeeded: r.pointee.s_port)))
    }

    /// getservbyport_r(3): the service's name; nil when unknown.
    static func serviceByPort(_ port: UInt16, _ proto: String?) -> String? {
        var entry = servent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<servent>?
        _ = getservbyport_r(Int32(port.bigEndian), proto, &entry, &buffer, buffer.count, &result)
        guard let r = result, let n = r.pointee.s_name else { return nil }
        return cString(n)
    }

    /// getprotobyname_r(3): the protocol's number; nil when unknown.
    static func protocolByName(_ name: String) -> Int32? {
        var entry = protoent()
        var buffer = [CChar](repeating: 0, count: 4096)
        var result: UnsafeMutablePointer<protoent>?
        _ = getprotobyname_r(name, &entry, &buffer, buffer.count, &result)
        return result?.pointee.p_proto
    }

    /// inet_pton(3) into `destination` (4 bytes for AF_INET, 16 for AF_INET6).
    static func inetPton(_ family: Int32, _ text: String, _ destination: UnsafeMutableRawPointer) -> Bool {
        inet_pton(family, text, destination) == 1
    }

    /// inet_ntop(3) of the address at `source`.
    static func inetNtop(_ family: Int32, _ source: UnsafeRawPointer) -> String? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, source, &text, socklen_t(text.count)) != nil else { return nil }
        return cString(text)
    }

    /// inet_aton(3): 4 network-order bytes, nil for text it does not take.
    static func inetAton(_ text: String) -> [UInt8]? {
        var addr = in_addr()
        guard inet_aton(text, &addr) != 0 else { return nil }
        return withUnsafeBytes(of: &addr) { Array($0) }
    }

    /// if_nametoindex(3): 0 when there is no such interface.
    static func interfaceIndex(_ name: String) -> UInt32 {
        if_nametoindex(name)
    }
}
