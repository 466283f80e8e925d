// The file-server's request header, parsed: a pure function of the line's
// bytes, so that it can be unit-tested and fuzzed (Fuzz/file-request) apart
// from the server.

/// One file-server request (Samples/README.md, "file-server / file-client").
public enum FileRequest: Equatable, Sendable, CustomStringConvertible {
    /// `PUT NAME SIZE`: upload SIZE bytes as NAME.
    case put(name: String, size: UInt64)
    /// `GET NAME`: download NAME.
    case get(name: String)
    /// `LIST`: the stored files.
    case list

    /// The longest header, not counting its LF.
    public static let maxHeaderLength = 1024

    /// Parses one header line: its bytes as read, with or without the LF (the
    /// LF and one CR right before it are dropped, as everywhere in the samples).
    ///
    /// The line is split at its first space into the command and the rest;
    /// for `PUT` the rest is split at its last space into NAME and SIZE; for
    /// `GET` the rest is NAME; `LIST` has no rest. The checks come in this
    /// order, and the first that fails is the error:
    ///
    /// 1. an unknown command, `PUT`/`GET` without a space, `LIST` with one,
    ///    `PUT` whose rest has no space, a SIZE that is not one or more ASCII
    ///    digits, a header over ``maxHeaderLength``: ``FileRequestError/badRequest``;
    /// 2. a NAME that is not valid (``isValidName(_:)``): ``FileRequestError/invalidName``;
    /// 3. a SIZE over `maxSize` (or too large for any integer): ``FileRequestError/tooLarge``.
    public static func parse<Line: Collection<UInt8>>(_ line: Line, maxSize: UInt64) -> Result<FileRequest, FileRequestError> {
        let header = content(Array(line))
        guard header.count <= maxHeaderLength else { return .failure(.badRequest) }
        let space = header.firstIndex(of: 0x20)
        let command = header[..<(space ?? header.endIndex)]
        let rest = space.map { header[($0 + 1)...] }
        switch (command.elementsEqual("PUT".utf8), command.elementsEqual("GET".utf8), command.elementsEqual("LIST".utf8)) {
        case (true, _, _):
            guard let rest, let last = rest.lastIndex(of: 0x20) else { return .failure(.badRequest) }
            let sizeText = rest[(last + 1)...]
            guard !sizeText.isEmpty, sizeText.allSatisfy(isDigit) else { return .failure(.badRequest) }
            let name = rest[..<last]
            guard isValidName(name) else { return .failure(.invalidName) }
            guard let size = decimal(sizeText), size <= maxSize else { return .failure(.tooLarge) }
            return .success(.put(name: String(decoding: name, as: UTF8.self), size: size))
        case (_, true, _):
            guard let rest else { return .failure(.badRequest) }
            guard isValidName(rest) else { return .failure(.invalidName) }
            return .success(.get(name: String(decoding: rest, as: UTF8.self)))
        case (_, _, true):
            guard rest == nil else { return .failure(.badRequest) }
            return .success(.list)
        default:
            return .failure(.badRequest)
        }
    }

    /// Whether NAME is acceptable: 1 to 255 bytes of printable ASCII, none of
    /// them a space, `/` or `\`, and not starting with `.`.
    public static func isValidName<Name: Collection<UInt8>>(_ name: Name) -> Bool {
        (1...255).contains(name.count) && name.first != UInt8(ascii: ".")
            && name.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "\\") }
    }

    /// The header line that makes this request, without its LF.
    public var description: String {
        switch self {
        case .put(let name, let size): return "PUT \(name) \(size)"
        case .get(let name): return "GET \(name)"
        case .list: return "LIST"
        }
    }

    /// The header line that makes this request, LF included.
    public var line: [UInt8] { Array(description.utf8) + [0x0A] }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// The value of ASCII digits; nil when too large for a UInt64 (over any maximum).
    private static func decimal(_ digits: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit - 0x30))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// A line without its LF and one CR right before it.
    private static func content(_ line: [UInt8]) -> ArraySlice<UInt8> {
        var end = line.count
        if end > 0 && line[end - 1] == 0x0A { end -= 1 }
        if end > 0 && line[end - 1] == 0x0D { end -= 1 }
        return line[..<end]
    }
}

/// Why a header is refused: the server replies `ERR REASON`.
public enum FileRequestError: Error, Equatable, Sendable, CaseIterable, CustomStringConvertible {
    /// `ERR bad request`; the server then closes the connection.
    case badRequest
    /// `ERR invalid name`; the connection stays usable.
    case invalidName
    /// `ERR too large`; the connection stays usable.
    case tooLarge

    /// The REASON of the `ERR REASON` reply.
    public var reason: String {
        switch self {
        case .badRequest: return "bad request"
        case .invalidName: return "invalid name"
        case .tooLarge: return "too large"
        }
    }

    public var description: String { reason }

    /// Whether the server closes the connection after this refusal.
    public var closesConnection: Bool { self == .badRequest }
}
