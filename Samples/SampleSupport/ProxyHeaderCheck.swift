// The check behind the PROXY protocol fuzz target (Fuzz/proxy-header) and
// its replay test: ProxyHeader.parse and ProxyHeader.read on arbitrary bytes.
import SocketServer

/// Checks the PROXY protocol parser on one input (the bytes a connection
/// starts with):
///
/// - `parse` never traps, whatever the bytes, under the default limit and
///   a small one (64);
/// - a complete header is at most 107 bytes (v1) or the limit (v2), and
///   what follows it does not change the result;
/// - every proper prefix of a complete header is `incomplete`, asking for
///   more than it has and no more than the header's length;
/// - an input refused stays refused however it goes on (one byte more);
///   an `incomplete` one asks for more bytes than it has, within the limit;
/// - the header encoded again in its version parses to the same header
///   (a recomputed CRC32C aside);
/// - `read(from:)` over the same bytes agrees with `parse`, and leaves
///   exactly the bytes after the header unread.
public enum ProxyHeaderCheck {
    /// What went wrong, for the fuzzer's report.
    public struct Failure: Error, CustomStringConvertible {
        /// The invariant broken, with the input's size and the limit.
        public let description: String
    }

    /// The limits on a v2 header each input is parsed under.
    public static let limits = [ProxyHeader.defaultMaxLength, 64]

    /// Runs every invariant on `input` under each of ``limits``; throws the first broken one.
    public static func check(_ input: [UInt8]) throws(Failure) {
        for limit in limits { try check(input, limit: limit) }
    }

    private static func outcome(_ bytes: [UInt8], _ limit: Int) -> Result<ProxyParseResult, ProxyProtocolError> {
        do { return .success(try ProxyHeader.parse(bytes, maxLength: limit)) } catch let e as ProxyProtocolError {
            return .failure(e)
        } catch {
            return .failure(.invalid("unexpected error \(error)"))
        }
    }

    private static func check(_ input: [UInt8], limit: Int) throws(Failure) {
        func fail(_ what: String) -> Failure { Failure(description: "limit \(limit), input \(input.count) bytes: \(what)") }
        let result = outcome(input, limit)
        switch result {
        case .failure(let error):
            if case .invalid(let why) = error, why.hasPrefix("unexpected") { throw fail(why) }
            guard case .failure = outcome(input + [0x0A], limit) else { throw fail("refused (\(error)), accepted one byte on") }
        case .success(.incomplete(let need)):
            guard need > input.count else { throw fail("incomplete, but asks for \(need) bytes") }
            guard need <= max(limit, ProxyHeader.v1MaxLength) else { throw fail("asks for \(need) bytes, over the limit") }
        case .success(.complete(let header, let length)):
            guard length > 0, length <= input.count else { throw fail("length \(length)") }
            let cap = header.version == .v1 ? ProxyHeader.v1MaxLength : max(limit, 16)
            guard length <= cap else { throw fail("a \(header.version) header of \(length) bytes") }
            let exact = Array(input[..<length])
            guard outcome(exact, limit) == result else { throw fail("the header alone parses otherwise") }
            guard outcome(exact + [0x50, 0x0D, 0x0A], limit) == result else { throw fail("what follows changed the result") }
            let step = length > 256 ? length / 64 : 1
            for n in stride(from: 0, to: length, by: step) {
                guard case .success(.incomplete(let need)) = outcome(Array(exact[..<n]), limit), need > n, need <= length else {
                    throw fail("the prefix of \(n) bytes is not incomplete: \(outcome(Array(exact[..<n]), limit))")
                }
            }
            try reencoded(header, limit: limit, fail)
        }
        try read(input, limit: limit, expected: result, fail)
    }

    private static func reencoded(_ header: ProxyHeader, limit: Int, _ fail: (String) -> Failure) throws(Failure) {
        let bytes: [UInt8]
        do { bytes = try header.encode(header.version, checksum: header.hasChecksum) } catch {
            throw fail("cannot encode what was parsed: \(error)")
        }
        guard case .success(.complete(var again, let length)) = outcome(bytes, max(limit, bytes.count)), length == bytes.count else {
            throw fail("the header encoded again does not parse: \(outcome(bytes, max(limit, bytes.count)))")
        }
        var original = header
        if header.hasChecksum {  // its value is recomputed over the re-encoded bytes
            again.tlvs.removeAll { $0.type == ProxyTLV.crc32c }
            original.tlvs.removeAll { $0.type == ProxyTLV.crc32c }
        }
        if header.version == .v1 && header.family == .unspecified { return }  // UNKNOWN's ignored rest is not kept
        guard again == original else { throw fail("encoded again it parses to \(again), not \(original)") }
    }

    private static func read(_ input: [UInt8], limit: Int, expected: Result<ProxyParseResult, ProxyProtocolError>,
                             _ fail: (String) -> Failure) throws(Failure) {
        let reader = SocketReader(bytes: input)
        do {
            let header = try ProxyHeader.read(from: reader, timeout: nil, maxLength: limit)
            guard case .success(.complete(let parsed, let length)) = expected, parsed == header else {
                throw fail("read found \(header) where parse said \(expected)")
            }
            guard (try? reader.readAll()) == Array(input[length...]) else { throw fail("read left the wrong bytes unread") }
        } catch let failure as Failure {
            throw failure
        } catch let error as ProxyProtocolError {
            switch (expected, error) {
            case (.failure(let e), _) where e == error: break
            case (.success(.incomplete), .closedBeforeHeader) where input.isEmpty: break
            case (.success(.incomplete), .truncated(let n)) where n == input.count: break
            default: throw fail("read threw \(error) where parse said \(expected)")
            }
        } catch {
            throw fail("read threw \(error)")
        }
    }
}
