extension ProxyHeader {
    /// The header's bytes, as a proxy sends them before the client's data.
    ///
    /// - `.v1`: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n`; a LOCAL header,
    ///   an unspecified family or Unix addresses give `PROXY UNKNOWN\r\n`
    ///   (v1 has no LOCAL and no Unix). TLVs are not sent.
    /// - `.v2`: the binary block with ``tlvs``; with `checksum`, a CRC32C
    ///   field is added (or an existing one filled in) so the receiver can
    ///   check it.
    ///
    /// Throws `SocketError.invalidArgument` when ``source`` and
    /// ``destination`` are not of the same family, or a field is longer
    /// than the format allows.
    public func encode(_ version: Version, checksum: Bool = false) throws -> [UInt8] {
        switch version {
        case .v1: return try encodeV1()
        case .v2: return try encodeV2(checksum: checksum)
        }
    }

    private func addresses() throws -> (SocketAddress, SocketAddress)? {
        guard command == .proxy, let source, let destination else { return nil }
        guard source.family == destination.family else {
            throw SocketError.invalidArgument("PROXY header: source \(source) and destination \(destination) differ in family")
        }
        return (source, destination)
    }

    private func encodeV1() throws -> [UInt8] {
        guard let (src, dst) = try addresses(), src.family != .unix else { return Array("PROXY UNKNOWN\r\n".utf8) }
        let proto = src.family == .inet ? "TCP4" : "TCP6"
        return Array("PROXY \(proto) \(src.host!) \(dst.host!) \(src.port!) \(dst.port!)\r\n".utf8)
    }

    private func encodeV2(checksum: Bool) throws -> [UInt8] {
        var out = ProxyHeader.v2Signature
        let pair = try addresses()
        out.append(0x20 | (command == .local ? 0 : 1))
        var block: [UInt8] = []
        var fam: Family = .unspecified
        if let (src, dst) = pair {
            switch src.family {
            case .inet, .inet6:
                fam = src.family == .inet ? .inet : .inet6
                block += src.ipBytes! + dst.ipBytes!
                for port in [src.port!, dst.port!] { block += [UInt8(port >> 8), UInt8(port & 0xff)] }
            default:
                fam = .unix
                for a in [src, dst] {
                    guard case .unix(let path) = a.storage else { continue }
                    guard path.count <= 108 else { throw SocketError.invalidArgument("PROXY header: Unix path over 108 bytes") }
                    block += path + Array(repeating: 0, count: 108 - path.count)
                }
            }
        }
        out.append(fam.rawValue << 4 | (pair == nil && command == .local ? 0 : transport.rawValue))
        var fields = command == .proxy ? tlvs : []
        if checksum && !fields.contains(where: { $0.type == ProxyTLV.crc32c }) {
            fields.append(ProxyTLV(type: ProxyTLV.crc32c, value: [0, 0, 0, 0]))
        }
        var crcOffset: Int?
        for field in fields {
            guard field.value.count <= 0xFFFF else { throw SocketError.invalidArgument("PROXY header: TLV over 65535 bytes") }
            if field.type == ProxyTLV.crc32c && crcOffset == nil { crcOffset = 16 + block.count + 3 }
            let value = field.type == ProxyTLV.crc32c && checksum ? [0, 0, 0, 0] : field.value
            block += [field.type, UInt8(value.count >> 8), UInt8(value.count & 0xff)] + value
        }
        guard block.count <= 0xFFFF else { throw SocketError.invalidArgument("PROXY header: over 65535 bytes") }
        out += [UInt8(block.count >> 8), UInt8(block.count & 0xff)] + block
        if checksum, let at = crcOffset {
            let crc = CRC32C.checksum(out)
            out[at] = UInt8(crc >> 24); out[at + 1] = UInt8(crc >> 16 & 0xff)
            out[at + 2] = UInt8(crc >> 8 & 0xff); out[at + 3] = UInt8(crc & 0xff)
        }
        return out
    }

    /// A header naming `ssl` as the SSL field, added to (or replacing it in) ``tlvs``.
    public func withSSL(_ ssl: ProxySSL) -> ProxyHeader {
        var copy = self
        copy.tlvs.removeAll { $0.type == ProxyTLV.ssl }
        copy.tlvs.append(ProxyTLV(type: ProxyTLV.ssl, value: ssl.encoded))
        return copy
    }
}
