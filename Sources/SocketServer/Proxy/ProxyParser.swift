/// What `ProxyHeader.parse(_:maxLength:)` made of the bytes so far.
public enum ProxyParseResult: Sendable, Hashable {
    /// Valid so far, but not complete: at least this many bytes in all are
    /// needed before the parse can go on.
    case incomplete(needAtLeast: Int)
    /// A whole, valid header, `length` bytes long; the bytes after it are
    /// the connection's data.
    case complete(ProxyHeader, length: Int)
}

extension ProxyHeader {
    /// The 12 bytes that start every version 2 header.
    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// The longest version 1 header, CR LF included.
    public static let v1MaxLength = 107
    /// The default limit on a version 2 header (16 + its length field):
    /// ample for addresses and the usual fields (the format allows 65551).
    public static let defaultMaxLength = 4096

    /// Parses the header at the start of `bytes`, either version, strictly:
    /// nothing is guessed, and anything the spec does not allow throws a
    /// ``ProxyProtocolError``. Returns ``ProxyParseResult/incomplete(needAtLeast:)``
    /// while the bytes are a valid beginning of a header; an error is
    /// thrown as soon as they cannot be one.
    ///
    /// v1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN...\r\n`,
    /// at most 107 bytes; addresses in numeric form (IPv4 without leading
    /// zeros), ports 0–65535 without leading zeros, single spaces, no CR
    /// or LF but the final pair. v2: the signature, version 2, LOCAL or
    /// PROXY, a known family and transport, addresses that fit the length,
    /// well-formed TLVs, and a matching CRC32C when one is present. A v2
    /// header longer than `maxLength` throws ``ProxyProtocolError/tooLong(limit:)``.
    public static func parse(_ bytes: [UInt8], maxLength: Int = ProxyHeader.defaultMaxLength) throws -> ProxyParseResult {
        try parse(bytes[...], maxLength: maxLength)
    }

    /// Parses the header at the start of a slice: as the `[UInt8]` form.
    public static func parse(_ bytes: ArraySlice<UInt8>, maxLength: Int = ProxyHeader.defaultMaxLength) throws -> ProxyParseResult {
        let b = Array(bytes)
        if b.isEmpty { return .incomplete(needAtLeast: 1) }
        let v1Prefix = Array("PROXY ".utf8)
        if b[0] == v1Prefix[0] {
            let n = min(b.count, v1Prefix.count)
            guard b[..<n].elementsEqual(v1Prefix[..<n]) else { throw ProxyProtocolError.notAHeader }
            return try parseV1(b)
        }
        if b[0] == v2Signature[0] {
            let n = min(b.count, v2Signature.count)
            guard b[..<n].elementsEqual(v2Signature[..<n]) else { throw ProxyProtocolError.notAHeader }
            return try parseV2(b, maxLength: maxLength)
        }
        throw ProxyProtocolError.notAHeader
    }

    // MARK: - Version 1

    private static func parseV1(_ b: [UInt8]) throws -> ProxyParseResult {
        let window = b.prefix(v1MaxLength)
        guard let lf = window.firstIndex(of: 0x0A) else {
            if let cr = window.firstIndex(of: 0x0D), cr != window.count - 1 {
                throw ProxyProtocolError.invalid("CR not followed by LF")
            }
            if b.count >= v1MaxLength { throw ProxyProtocolError.tooLong(limit: v1MaxLength) }
            return .incomplete(needAtLeast: b.count + 1)
        }
        guard lf > 0, b[lf - 1] == 0x0D else { throw ProxyProtocolError.invalid("LF without CR") }
        let body = b[6..<(lf - 1)]
        guard !body.contains(0x0D) else { throw ProxyProtocolError.invalid("CR inside the line") }
        let fields = body.split(separator: 0x20, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        var header = ProxyHeader(command: .proxy, source: nil, destination: nil)
        header.version = .v1
        header.transport = .stream
        switch fields.first {
        case "UNKNOWN":
            // "the receiver must ignore anything presented before the CRLF"
            return .complete(header, length: lf + 1)
        case "TCP4", "TCP6":
            let v6 = fields[0] == "TCP6"
            guard fields.count == 5 else { throw ProxyProtocolError.invalid("\(fields[0]) needs 4 fields after it") }
            guard let src = v6 ? ipv6Bytes(fields[1]) : ipv4Bytes(fields[1]),
                  let dst = v6 ? ipv6Bytes(fields[2]) : ipv4Bytes(fields[2]) else {
                throw ProxyProtocolError.invalid("not an \(v6 ? "IPv6" : "IPv4") address")
            }
            guard let sport = port(fields[3]), let dport = port(fields[4]) else {
                throw ProxyProtocolError.invalid("not a port")
            }
            header.family = v6 ? .inet6 : .inet
            header.source = SocketAddress(ipBytes: src, port: sport)
            header.destination = SocketAddress(ipBytes: dst, port: dport)
            return .complete(header, length: lf + 1)
        default:
            throw ProxyProtocolError.invalid("unknown protocol \(fields.first ?? "")")
        }
    }

    /// Four decimal numbers 0–255, no leading zeros, single dots.
    static func ipv4Bytes(_ s: String) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard (1...3).contains(p.count), p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  p == "0" || p.first != "0", let n = UInt8(p) else { return nil }
            out.append(n)
        }
        return out
    }

    /// Hex groups and colons (one `::` at most), an IPv4 tail allowed; no zone.
    static func ipv6Bytes(_ s: String) -> [UInt8]? {
        guard s.contains(":"), s.utf8.count <= 45,
              s.utf8.allSatisfy({ $0 == 0x3A || $0 == 0x2E || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) })
        else { return nil }
        return Sys.ipv6Bytes(s)
    }

    /// A decimal port 0–65535 without leading zeros.
    static func port(_ s: String) -> UInt16? {
        guard (1...5).contains(s.count), s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              s == "0" || s.first != "0" else { return nil }
        return UInt16(s)
    }

    // MARK: - Version 2

    private static func parseV2(_ b: [UInt8], maxLength: Int) throws -> ProxyParseResult {
        guard b.count >= 16 else { return .incomplete(needAtLeast: 16) }
        guard b[12] >> 4 == 2 else { throw ProxyProtocolError.invalid("version \(b[12] >> 4), not 2") }
        let length = 16 + (Int(b[14]) << 8 | Int(b[15]))
        guard length <= max(maxLength, 16) else { throw ProxyProtocolError.tooLong(limit: max(maxLength, 16)) }
        var header = ProxyHeader(command: .proxy, source: nil, destination: nil)
        switch b[12] & 0x0F {
        case 0: header.command = .local
        case 1: header.command = .proxy
        default: throw ProxyProtocolError.invalid("command \(b[12] & 0x0F)")
        }
        if header.command == .local {
            // "must use the real connection endpoints and discard the
            // protocol block including the family" (AWS NLB sends addresses).
            guard b.count >= length else { return .incomplete(needAtLeast: length) }
            var local = ProxyHeader.local
            local.version = .v2
            return .complete(local, length: length)
        }
        guard let family = Family(rawValue: b[13] >> 4) else { throw ProxyProtocolError.invalid("family \(b[13] >> 4)") }
        guard let transport = Transport(rawValue: b[13] & 0x0F) else {
            throw ProxyProtocolError.invalid("transport \(b[13] & 0x0F)")
        }
        guard b.count >= length else { return .incomplete(needAtLeast: length) }
        let block = Array(b[16..<length])
        header.transport = transport
        let addressLength: Int
        switch family {
        case .unspecified: addressLength = block.count  // nothing known to read: skip it all
        case .inet: addressLength = 12
        case .inet6: addressLength = 36
        case .unix: addressLength = 216
        }
        guard block.count >= addressLength else {
            throw ProxyProtocolError.invalid("length \(block.count) too short for the addresses (\(addressLength))")
        }
        header.family = family
        switch family {
        case .unspecified: break
        case .inet, .inet6:
            let n = family == .inet ? 4 : 16
            let sport = UInt16(block[2 * n]) << 8 | UInt16(block[2 * n + 1])
            let dport = UInt16(block[2 * n + 2]) << 8 | UInt16(block[2 * n + 3])
            header.source = SocketAddress(ipBytes: block[0..<n], port: sport)
            header.destination = SocketAddress(ipBytes: block[n..<(2 * n)], port: dport)
        case .unix:
            header.source = unixAddress(block[0..<108])
            header.destination = unixAddress(block[108..<216])
        }
        header.tlvs = try ProxyWire.tlvs(block[addressLength...])
        if let crc = header.tlvs.first(where: { $0.type == ProxyTLV.crc32c }) {
            guard crc.value.count == 4 else { throw ProxyProtocolError.invalid("CRC32C field of \(crc.value.count) bytes") }
            var zeroed = Array(b[0..<length])
            // The field's offset: walk again to find where its value sits.
            var offset = 16 + addressLength
            while offset + 3 <= length {
                let type = zeroed[offset], len = Int(zeroed[offset + 1]) << 8 | Int(zeroed[offset + 2])
                if type == ProxyTLV.crc32c { for i in 0..<4 { zeroed[offset + 3 + i] = 0 }; break }
                offset += 3 + len
            }
            let expected = UInt32(crc.value[0]) << 24 | UInt32(crc.value[1]) << 16 | UInt32(crc.value[2]) << 8 | UInt32(crc.value[3])
            guard CRC32C.checksum(zeroed) == expected else { throw ProxyProtocolError.checksumMismatch }
        }
        if let ssl = header.tlv(ProxyTLV.ssl) { _ = try ProxySSL(parsing: ssl) }
        if let id = header.uniqueID, id.count > 128 { throw ProxyProtocolError.invalid("UNIQUE_ID over 128 bytes") }
        return .complete(header, length: length)
    }

    /// A 108-byte, NUL-padded `sun_path`; a leading NUL is an abstract name.
    private static func unixAddress(_ raw: ArraySlice<UInt8>) -> SocketAddress {
        var bytes = Array(raw)
        if bytes.first == 0 {
            while bytes.count > 1 && bytes.last == 0 { bytes.removeLast() }
            if bytes == [0] { bytes = [] }
        } else if let nul = bytes.firstIndex(of: 0) {
            bytes.removeSubrange(nul...)
        }
        return SocketAddress(.unix(bytes))
    }
}

/// The byte-level pieces shared by parsing and encoding.
enum ProxyWire {
    /// Walks type-length-value fields that must fill `bytes` exactly.
    static func tlvs(_ bytes: ArraySlice<UInt8>) throws -> [ProxyTLV] {
        var out: [ProxyTLV] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            guard bytes.endIndex - i >= 3 else { throw ProxyProtocolError.invalid("TLV header cut short") }
            let type = bytes[i], len = Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard bytes.endIndex - (i + 3) >= len else { throw ProxyProtocolError.invalid("TLV 0x\(String(type, radix: 16)) overruns the header") }
            out.append(ProxyTLV(type: type, value: Array(bytes[(i + 3)..<(i + 3 + len)])))
            i += 3 + len
        }
        return out
    }
}

/// CRC-32C (Castagnoli), as the PROXY protocol's CRC32C field uses it.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The checksum of `bytes` (`"123456789"` → 0xE3069283).
    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
