// The check behind the line-reader fuzz target (Fuzz/readline) and its
// corpus-replay tests: one input drives a script of reads on a SocketReader
// over the same bytes, once in memory and once through a socket pair fed in
// chunks by another thread, and every result is compared with a reference
// model (a byte array and a position).
import Dispatch
import SocketServer

/// Checks ``SocketReader`` against a reference model, driven by arbitrary bytes.
///
/// The input's first bytes choose the parameters, the rest is the data read:
///
/// | byte | meaning |
/// |---|---|
/// | 0, 1 | `maxLength` for the line reads: their little-endian value modulo 301 (0...300) |
/// | 2 | the reader's buffer size, one of ``bufferSizes`` |
/// | 3 | the seed of the chunks the writer sends the data in |
/// | 4 | the seed of the script of reads |
/// | 5... | the data (at most ``maxData`` bytes; the rest is ignored) |
///
/// The script mixes `readLine`, `readTextLine`, `withNextLine`, `forEachLine`
/// (with `maxLength` or a smaller limit), `read(n)`, `readSome(n)`,
/// `readSome(into:)` and `peek(n)`, and ends with reads at end of file.
/// What is checked after each read:
///
/// - a line is exactly the reference's next line (LF included; a last line
///   without LF as it is); `nil` only when the data is used up;
/// - `lineTooLong` is thrown exactly when the reference has no LF within
///   `limit + 1` bytes and more than `limit` bytes remain, and then nothing is
///   consumed (the next reads return those bytes);
/// - `readTextLine` is the line without LF and one CR before it (a CR with
///   no LF after it stays), invalid UTF-8 replaced (it never traps);
/// - `read(n)` returns exactly `min(n, remaining)` bytes; `readSome(n)`,
///   `readSome(into:)` and `peek(n)` return a non-empty prefix of the
///   remaining bytes of at most `n` (empty only at end of file or for 0), and
///   `peek` consumes nothing;
/// - `bufferedCount` never exceeds the bytes not yet read, nor, over a
///   socket, `maxLength + 1 + bufferSize`;
/// - at the end `isAtEOF` is true and every later read returns nothing.
public enum ReaderCheck {
    /// A failed check: what was done, what was expected, what came.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// How many bytes of an input are data; more are ignored (so that the
    /// writer thread never has much to send).
    public static let maxData = 64 * 1024
    /// The buffer sizes byte 2 chooses from (over 2 KiB, the reader's first
    /// buffer, they take data beyond 2 KiB to reach: the buffer grows).
    public static let bufferSizes = [1, 2, 3, 5, 8, 16, 64, 100, 1024, 16 * 1024, 2048, 4096, 64 * 1024]
    /// How long a read on the socket may wait before the check fails (a
    /// reader waiting for bytes the writer has already sent and closed).
    public static let socketTimeout = 10.0

    /// The parameters an input chooses.
    public struct Parameters: Sendable, CustomStringConvertible {
        public var maxLength: Int
        public var bufferSize: Int
        public var chunkSeed: UInt8
        public var scriptSeed: UInt8
        public var data: [UInt8]

        public init(_ input: [UInt8]) {
            func byte(_ i: Int) -> UInt8 { i < input.count ? input[i] : 0 }
            maxLength = (Int(byte(0)) | Int(byte(1)) << 8) % 301
            bufferSize = ReaderCheck.bufferSizes[Int(byte(2)) % ReaderCheck.bufferSizes.count]
            chunkSeed = byte(3)
            scriptSeed = byte(4)
            data = Array(input.dropFirst(5).prefix(ReaderCheck.maxData))
        }

        /// The input that chooses these parameters (the inverse of `init`,
        /// for writing corpus files).
        public static func input(maxLength: Int, bufferSizeIndex: Int, chunkSeed: UInt8, scriptSeed: UInt8,
                                 data: [UInt8]) -> [UInt8] {
            [UInt8(maxLength & 0xFF), UInt8(maxLength >> 8), UInt8(bufferSizeIndex), chunkSeed, scriptSeed] + data
        }

        public var description: String {
            "maxLength \(maxLength), bufferSize \(bufferSize), chunk seed \(chunkSeed), script seed \(scriptSeed), \(data.count) data bytes"
        }
    }

    /// Runs every check on one input; throws the first ``Failure``.
    public static func check(_ input: [UInt8]) throws(Failure) {
        let p = Parameters(input)
        do {
            try run(p, on: SocketReader(bytes: p.data), overSocket: false)
        } catch {
            throw Failure(description: "in memory (\(p)): \(error)")
        }
        try checkOverSocket(p)
    }

    /// The same script on a reader over one end of a socket pair; another
    /// thread sends the data into the other end in chunks, then closes it.
    static func checkOverSocket(_ p: Parameters) throws(Failure) {
        let ends: (Socket, Socket)
        do {
            ends = try Socket.pair()
            try ends.0.setTimeout(socketTimeout)
        } catch {
            throw Failure(description: "socket pair: \(error)")
        }
        let (readEnd, writeEnd) = ends
        let chunks = chunked(p.data, seed: p.chunkSeed)
        let written = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for chunk in chunks {
                do { try writeEnd.sendAll(chunk) } catch { break }  // the reader gave up
            }
            writeEnd.close()
            written.signal()
        }
        defer {
            readEnd.close()  // a writer still sending (the check failed early) gets an error
            written.wait()
        }
        do {
            try run(p, on: SocketReader(readEnd, bufferSize: p.bufferSize), overSocket: true)
        } catch {
            throw Failure(description: "over a socket, \(chunks.count) chunks (\(p)): \(error)")
        }
    }

    /// The data cut into chunks whose sizes the seed chooses.
    static func chunked(_ data: [UInt8], seed: UInt8) -> [[UInt8]] {
        var random = SplitMix(seed: UInt64(seed) &+ 0x5EED)
        // The seed's low bits choose the largest chunk: byte by byte up to one send.
        let largest = [1, 2, 7, 64, 1000, 100_000][Int(seed) % 6]
        var chunks: [[UInt8]] = []
        var offset = 0
        while offset < data.count {
            let n = min(1 + random.next(below: largest), data.count - offset)
            chunks.append(Array(data[offset..<(offset + n)]))
            offset += n
        }
        return chunks
    }

    /// The reference: the data and how much of it has been read.
    struct Model {
        let data: [UInt8]
        var position = 0
        var remaining: Int { data.count - position }

        /// The next line under `limit` (LF included), `.tooLong`, or `.end`.
        func nextLine(limit: Int) -> LineResult {
            if position == data.count { return .end }
            let window = data[position..<min(data.count, position + limit + 1)]
            if let lf = window.firstIndex(of: 0x0A) { return .line(Array(data[position...lf])) }
            if remaining > limit { return .tooLong }
            return .line(Array(data[position...]))
        }
    }

    enum LineResult: Equatable {
        case line([UInt8])
        case tooLong
        case end
    }

    /// One script on one reader.
    static func run(_ p: Parameters, on reader: SocketReader, overSocket: Bool) throws {
        var model = Model(data: p.data)
        var random = SplitMix(seed: UInt64(p.scriptSeed) &* 0x9E37_79B9 &+ UInt64(p.data.count))
        let bound = p.maxLength + 1 + p.bufferSize
        var mustConsume = false
        var step = 0
        let maxSteps = 4 * p.data.count + 32

        func fail(_ what: String, expected: Any, got: Any) -> Failure {
            Failure(description: "step \(step), \(what) at position \(model.position): expected \(show(expected)), got \(show(got))")
        }
        func checkBuffer(_ what: String) throws {
            let buffered = reader.bufferedCount
            if overSocket ? buffered > min(bound, model.remaining) : buffered != model.remaining {
                throw fail("bufferedCount after \(what) (bound \(bound))",
                           expected: overSocket ? "at most \(min(bound, model.remaining))" : "\(model.remaining)",
                           got: buffered)
            }
        }
        /// A line read under `limit`, compared with the model's.
        func checkLine(_ what: String, limit: Int, _ read: () throws -> [UInt8]?) throws {
            let expected = model.nextLine(limit: limit)
            let got: LineResult
            do {
                got = try read().map(LineResult.line) ?? .end
            } catch StreamError.lineTooLong(let n) where n == limit {
                got = .tooLong
            }
            guard got == expected else { throw fail(what, expected: expected, got: got) }
            if case .line(let line) = got { model.position += line.count }
            if got == .tooLong { mustConsume = true }
        }
        /// A prefix of the remaining bytes, at most `n`, non-empty unless at the end or `n` is 0.
        func checkPrefix(_ what: String, _ bytes: [UInt8], atMost n: Int, consumes: Bool) throws {
            let rest = model.data[model.position...]
            guard bytes.count <= n, rest.starts(with: bytes), !(bytes.isEmpty && n > 0 && !rest.isEmpty) else {
                throw fail(what, expected: "a non-empty prefix of at most \(n) of \(Array(rest.prefix(n + 1)))", got: bytes)
            }
            if consumes { model.position += bytes.count }
        }

        while step < maxSteps && !(model.remaining == 0 && random.next(below: 4) == 0) {
            step += 1
            let r = mustConsume ? 11 + random.next(below: 3) : random.next(below: 17)
            mustConsume = false
            // Line reads use maxLength, sometimes a smaller limit.
            let limit = random.next(below: 8) == 0 ? random.next(below: p.maxLength + 1) : p.maxLength
            switch r {
            case 0...6:
                try checkLine("readLine(maxLength: \(limit))", limit: limit) { try reader.readLine(maxLength: limit) }
            case 7, 8:
                let expected = model.nextLine(limit: limit)
                try checkLine("readTextLine(maxLength: \(limit))", limit: limit) {
                    guard let text = try reader.readTextLine(maxLength: limit) else { return nil }
                    guard case .line(let line) = expected,
                          Array(text.utf8) == Array(String(decoding: content(line), as: UTF8.self).utf8) else {
                        throw fail("readTextLine(maxLength: \(limit))", expected: expected, got: text)
                    }
                    return line  // compared with the model as a line
                }
            case 9:
                try checkLine("withNextLine(maxLength: \(limit))", limit: limit) {
                    try reader.withNextLine(maxLength: limit) { Array($0) }
                }
            case 10:
                // forEachLine: lines until the end or a line too long.
                var lines = 0
                do {
                    try reader.forEachLine(maxLength: limit) { line in
                        lines += 1
                        let expected = model.nextLine(limit: limit)
                        guard expected == .line(line) else {
                            throw fail("forEachLine(maxLength: \(limit)), line \(lines)", expected: expected, got: line)
                        }
                        model.position += line.count
                    }
                    let expected = model.nextLine(limit: limit)
                    guard expected == .end else {
                        throw fail("forEachLine(maxLength: \(limit)) ended", expected: expected, got: LineResult.end)
                    }
                } catch StreamError.lineTooLong(let n) where n == limit {
                    let expected = model.nextLine(limit: limit)
                    guard expected == .tooLong else {
                        throw fail("forEachLine(maxLength: \(limit)) threw", expected: expected, got: LineResult.tooLong)
                    }
                    mustConsume = true
                }
            case 11:
                let n = random.next(below: 2 * p.maxLength + 3)
                let bytes = try reader.read(n)
                let expected = Array(model.data[model.position...].prefix(n))
                guard bytes == expected else { throw fail("read(\(n))", expected: expected, got: bytes) }
                model.position += bytes.count
            case 12:
                let n = random.next(below: p.maxLength + 3)
                try checkPrefix("readSome(\(n))", try reader.readSome(n), atMost: n, consumes: true)
            case 13:
                let n = random.next(below: p.maxLength + p.bufferSize + 2)
                var buffer = [UInt8](repeating: 0xEE, count: n)
                let count = try buffer.withUnsafeMutableBytes { try reader.readSome(into: $0) }
                guard (0...n).contains(count) else { throw fail("readSome(into: \(n) bytes)", expected: "0...\(n)", got: count) }
                try checkPrefix("readSome(into: \(n) bytes)", Array(buffer[..<count]), atMost: n, consumes: true)
            default:
                let n = random.next(below: p.maxLength + 3)
                try checkPrefix("peek(\(n))", try reader.peek(n), atMost: n, consumes: false)
            }
            try checkBuffer("step \(step)")
        }
        if model.remaining > 0 {
            // Out of steps (peeks and empty reads): the rest in one read.
            let bytes = try reader.read(model.remaining)
            guard bytes == Array(model.data[model.position...]) else {
                throw fail("final read(\(model.remaining))", expected: Array(model.data[model.position...]), got: bytes)
            }
            model.position = model.data.count
        }
        // At the end of file every read returns nothing, again and again.
        for round in 0..<2 {
            let line = try reader.readLine(maxLength: p.maxLength)
            let text = try reader.readTextLine(maxLength: 0)
            let bytes = try reader.read(10)
            let some = try reader.readSome(10)
            let peeked = try reader.peek()
            guard line == nil, text == nil, bytes.isEmpty, some.isEmpty, peeked.isEmpty, reader.isAtEOF,
                  reader.bufferedCount == 0 else {
                throw fail("reads at end of file (round \(round))", expected: "nothing",
                           got: "\(String(describing: line)) \(String(describing: text)) \(bytes) \(some) \(peeked) isAtEOF \(reader.isAtEOF) buffered \(reader.bufferedCount)")
            }
        }
    }

    /// A line without its LF and one CR right before it; a CR that no LF
    /// follows (the last bytes before end of file) stays.
    static func content(_ line: [UInt8]) -> ArraySlice<UInt8> {
        var end = line.count
        guard end > 0 && line[end - 1] == 0x0A else { return line[...] }
        end -= 1
        if end > 0 && line[end - 1] == 0x0D { end -= 1 }
        return line[..<end]
    }

    /// A value for a failure message, long byte arrays cut short.
    static func show(_ value: Any) -> String {
        let text: String
        switch value {
        case let bytes as [UInt8]: text = "\(bytes.count) bytes \(bytes.prefix(64))"
        case let result as LineResult:
            if case .line(let bytes) = result { text = "line of \(bytes.count) bytes \(bytes.prefix(64))" } else { text = "\(result)" }
        default: text = "\(value)"
        }
        return text.count > 400 ? String(text.prefix(400)) + "…" : text
    }
}

/// A small deterministic generator (SplitMix64): the same seed, the same
/// sequence, so a seeded fuzz script or test can be replayed.
public struct SplitMix: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (0 when bound is 0 or less).
    public mutating func next(below bound: Int) -> Int {
        bound <= 0 ? 0 : Int(next() % UInt64(bound))
    }

    /// `count` random bytes, none of them in `excluded`.
    public mutating func bytes(_ count: Int, excluding excluded: Set<UInt8> = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = next()
            for _ in 0..<8 where out.count < count {
                let b = UInt8(truncatingIfNeeded: word)
                word >>= 8
                if !excluded.contains(b) { out.append(b) }
            }
        }
        return out
    }
}
