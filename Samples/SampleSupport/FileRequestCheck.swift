// The check behind the file-request fuzz target (Fuzz/file-request) and the
// parser's tests: FileRequest.parse on arbitrary bytes, against the rules of
// Samples/README.md and a second, independently written parser.

/// Checks ``FileRequest/parse(_:maxSize:)`` on one input: the whole input is
/// the header line, parsed under each of ``maxSizes``.
///
/// - it never traps, whatever the bytes;
/// - it agrees with ``reference(_:maxSize:)``, a plain reading of Samples/README.md
///   written apart from it;
/// - a parsed NAME obeys the rules (1 to 255 bytes of printable ASCII, no
///   space, `/` or `\`, not starting with `.`), a parsed SIZE is at most the
///   maximum;
/// - a smaller maximum changes only the answer to a `PUT` whose SIZE is over
///   it, to `too large`;
/// - the request written out again (``FileRequest/line``) parses to itself;
/// - the line terminator does not matter: for an input ending in neither LF
///   nor CR, the input, the input with LF and with CR LF parse alike;
/// - a header over 1024 bytes is a bad request.
public enum FileRequestCheck {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The maximum sizes each input is parsed under: the server's default
    /// first, the largest last.
    public static let maxSizes: [UInt64] = [1 << 30, 0, 1, 10, 99_999, UInt64.max - 1, UInt64.max]

    public static func check(_ input: [UInt8]) throws(Failure) {
        func fail(_ what: String) -> Failure {
            Failure(description: "\(what), for the line \(describe(input))")
        }
        let unbounded = FileRequest.parse(input, maxSize: .max)
        for maxSize in maxSizes {
            let result = FileRequest.parse(input, maxSize: maxSize)
            let expected = reference(input, maxSize: maxSize)
            guard result == expected else {
                throw fail("maxSize \(maxSize): parse gave \(result), the reference \(expected)")
            }
            switch result {
            case .success(.put(let name, let size)):
                guard isValid(Array(name.utf8)), size <= maxSize else {
                    throw fail("maxSize \(maxSize): PUT of a bad name or size \(name.utf8.count) bytes, \(size)")
                }
            case .success(.get(let name)):
                guard isValid(Array(name.utf8)) else { throw fail("GET of a bad name") }
            case .success(.list), .failure:
                break
            }
            // Only the size limit differs from the unbounded parse.
            if result != unbounded {
                guard case .failure(.tooLarge) = result, case .success(.put(_, let size)) = unbounded, size > maxSize else {
                    throw fail("maxSize \(maxSize) gave \(result), unbounded \(unbounded)")
                }
            }
            if case .success(let request) = result {
                for line in [request.line, Array(request.description.utf8), Array(request.description.utf8) + [0x0D, 0x0A]] {
                    let again = FileRequest.parse(line, maxSize: maxSize)
                    guard again == result else {
                        throw fail("\(request) written as \(describe(line)) parses to \(again)")
                    }
                }
            }
        }
        if let last = input.last, last != 0x0A, last != 0x0D {
            for terminated in [input + [0x0A], input + [0x0D, 0x0A]] {
                let again = FileRequest.parse(terminated, maxSize: .max)
                guard again == unbounded else { throw fail("with a terminator it parses to \(again), without to \(unbounded)") }
            }
        }
        if headerLength(input) > FileRequest.maxHeaderLength && unbounded != .failure(.badRequest) {
            throw fail("a header of \(headerLength(input)) bytes is not a bad request")
        }
    }

    /// Samples/README.md read plainly, by other means than FileRequest.parse.
    public static func reference(_ line: [UInt8], maxSize: UInt64) -> Result<FileRequest, FileRequestError> {
        var header = line
        if header.last == 0x0A { header.removeLast() }
        if header.last == 0x0D { header.removeLast() }
        if header.count > 1024 { return .failure(.badRequest) }
        let parts = header.split(separator: 0x20, maxSplits: 1, omittingEmptySubsequences: false)
        let command = String(decoding: parts[0], as: UTF8.self)
        let rest = parts.count == 2 ? Array(parts[1]) : nil
        switch (command.utf8.count == parts[0].count ? command : "", rest) {
        case ("LIST", nil):
            return .success(.list)
        case ("GET", let name?):
            return isValid(name) ? .success(.get(name: String(decoding: name, as: UTF8.self))) : .failure(.invalidName)
        case ("PUT", let rest?):
            let words = rest.split(separator: 0x20, omittingEmptySubsequences: false)
            guard words.count >= 2, let digits = words.last, !digits.isEmpty,
                  digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return .failure(.badRequest) }
            let name = Array(rest.dropLast(digits.count + 1))
            guard isValid(name) else { return .failure(.invalidName) }
            let significant = digits.drop { $0 == 0x30 }
            guard significant.count <= 20, let size = UInt64(String(decoding: significant.isEmpty ? [0x30] : Array(significant), as: UTF8.self)),
                  size <= maxSize else { return .failure(.tooLarge) }
            return .success(.put(name: String(decoding: name, as: UTF8.self), size: size))
        default:
            return .failure(.badRequest)
        }
    }

    /// NAME's rules, byte by byte.
    static func isValid(_ name: [UInt8]) -> Bool {
        let forbidden: Set<UInt8> = [0x20, 0x2F, 0x5C]  // space, /, \
        guard !name.isEmpty, name.count <= 255, name[0] != 0x2E else { return false }
        for byte in name where byte < 0x20 || byte > 0x7E || forbidden.contains(byte) { return false }
        return true
    }

    static func headerLength(_ line: [UInt8]) -> Int {
        var n = line.count
        if n > 0 && line[n - 1] == 0x0A { n -= 1 }
        if n > 0 && line[n - 1] == 0x0D { n -= 1 }
        return n
    }

    /// The line for a message: printable ASCII as it is, other bytes as \xNN, cut at 200 bytes.
    public static func describe(_ line: [UInt8]) -> String {
        var text = "\""
        for byte in line.prefix(200) {
            switch byte {
            case 0x22, 0x5C: text += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7F: text += String(UnicodeScalar(byte))
            default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text + (line.count > 200 ? "\"… (\(line.count) bytes)" : "\"")
    }
}
