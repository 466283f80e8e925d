// The file-server's header parser (FileRequest, in SampleSupport), alone:
// the table of Samples/README.md, the fuzz corpus replayed, and seeded random lines
// through the fuzz target's check (FileRequestCheck).
import SampleSupport
import Testing

/// Fuzz/corpus/NAME, from this file's place in the package.
func fuzzCorpus(_ name: String) -> String {
    var path = "\(#filePath)"
    for _ in 0..<3 { path = String(path[..<path.utf8.lastIndex(of: UInt8(ascii: "/"))!]) }  // the package root
    return path + "/Fuzz/corpus/" + name
}

@Suite struct FileRequestTests {
    static let maxSize: UInt64 = 1 << 30

    func parse(_ line: String, maxSize: UInt64 = FileRequestTests.maxSize) -> Result<FileRequest, FileRequestError> {
        FileRequest.parse(Array(line.utf8), maxSize: maxSize)
    }

    @Test func requests() {
        #expect(parse("LIST\n") == .success(.list))
        #expect(parse("LIST") == .success(.list))
        #expect(parse("LIST\r\n") == .success(.list))
        #expect(parse("GET a.txt\n") == .success(.get(name: "a.txt")))
        #expect(parse("GET a~!#\r\n") == .success(.get(name: "a~!#")))
        #expect(parse("PUT data.bin 100000\n") == .success(.put(name: "data.bin", size: 100_000)))
        #expect(parse("PUT b 0\n") == .success(.put(name: "b", size: 0)))
        #expect(parse("PUT big 00000000000000000000000000000000000000000007\n") == .success(.put(name: "big", size: 7)))
        #expect(parse("PUT n 18446744073709551615", maxSize: .max) == .success(.put(name: "n", size: .max)))
        #expect(parse("PUT " + String(repeating: "n", count: 255) + " 1") == .success(.put(name: String(repeating: "n", count: 255), size: 1)))
        #expect(parse("GET " + String(repeating: "a", count: 1020) + "\n") == .failure(.invalidName))  // 1024 bytes: parsed
    }

    @Test(arguments: ["PUT x 12a", "PUT x", "PUT x -1", "PUT x 1 2x", "FETCH x", "LIST all", "list", "", "PUT",
                      "PUT ", "GET", "LIST ", " LIST", "PUT x ", "PUT x 1\u{0}", "PUT x ١", "GET\tx", "\r", "\u{FEFF}LIST",
                      "GET " + String(repeating: "a", count: 1021)])
    func badRequests(_ line: String) {
        #expect(parse(line + "\n") == .failure(.badRequest))
        #expect(FileRequestError.badRequest.closesConnection)
    }

    @Test(arguments: ["..", "../x", "/etc/passwd", "a/b", "a\\b", ".hidden", "a b", String(repeating: "n", count: 256),
                      "caf\u{E9}", "", "a\u{7F}", "a\u{1}", "\u{301}x"])
    func invalidNames(_ name: String) {
        #expect(parse("PUT \(name) 1\n") == .failure(.invalidName), "PUT \(name)")
        #expect(parse("GET \(name)\n") == .failure(.invalidName), "GET \(name)")
        #expect(!FileRequestError.invalidName.closesConnection)
    }

    @Test func invalidUTF8IsAnInvalidName() {
        #expect(FileRequest.parse(Array("GET ".utf8) + [0xFF, 0xFE, 0x0A], maxSize: 10) == .failure(.invalidName))
        #expect(FileRequest.parse(Array("PUT ".utf8) + [0xC3, 0x28] + Array(" 1\n".utf8), maxSize: 10) == .failure(.invalidName))
        #expect(FileRequest.parse(Array("PUT a ".utf8) + [0xC3, 0x28, 0x0A], maxSize: 10) == .failure(.badRequest))
    }

    @Test func sizes() {
        #expect(parse("PUT big 11", maxSize: 10) == .failure(.tooLarge))
        #expect(parse("PUT big 10", maxSize: 10) == .success(.put(name: "big", size: 10)))
        #expect(parse("PUT big 1", maxSize: 0) == .failure(.tooLarge))
        #expect(parse("PUT big " + String(repeating: "9", count: 400), maxSize: .max) == .failure(.tooLarge))
        #expect(parse("PUT big 18446744073709551616", maxSize: .max) == .failure(.tooLarge))
        // The order of the checks: SIZE's form, then NAME, then SIZE's value.
        #expect(parse("PUT .x 1x", maxSize: 0) == .failure(.badRequest))
        #expect(parse("PUT .x 99", maxSize: 0) == .failure(.invalidName))
        #expect(!FileRequestError.tooLarge.closesConnection)
    }

    @Test func reasons() {
        #expect(FileRequestError.allCases.map(\.reason) == ["bad request", "invalid name", "too large"])
    }

    @Test func writtenOutAgain() {
        for request in [FileRequest.list, .get(name: "a"), .put(name: "x.bin", size: 12345)] {
            #expect(FileRequest.parse(request.line, maxSize: .max) == .success(request))
        }
        #expect(FileRequest.put(name: "x", size: 3).line == Array("PUT x 3\n".utf8))
    }

    @Test func seedCorpus() throws {
        let files = FuzzCorpus.files([fuzzCorpus("file-request")])
        #expect(files.count >= 12)
        for file in files {
            let input = try #require(FuzzCorpus.read(file))
            #expect(throws: Never.self, "\(file)") { try FileRequestCheck.check(input) }
        }
    }

    /// Seeded random lines, made of the pieces that matter (commands,
    /// spaces, digits, `.`, `/`, CR, LF, non-ASCII), through the fuzz check.
    @Test func seededRandomLines() throws {
        let pieces: [[UInt8]] = ["PUT", "GET", "LIST", " ", " ", "0", "7", "9", "18446744073709551615", "a", "Z", ".", "/",
                                 "\\", "\r", "\n", "~", "\u{E9}", "\u{301}", "\u{0}", "\t"].map { Array($0.utf8) }
            + [[0xFF], [0xC3], [0x7F], [0x20, 0x20]]
        var random = SplitMix(seed: 20_240_601)
        for _ in 0..<5_000 {
            var line: [UInt8] = []
            let count = random.next(below: 12)
            for _ in 0..<count { line += pieces[random.next(below: pieces.count)] }
            if random.next(below: 50) == 0 { line += [UInt8](repeating: 0x61, count: 1000 + random.next(below: 60)) }
            if random.next(below: 2) == 0 { line += [0x0A] }
            do {
                try FileRequestCheck.check(line)
            } catch {
                Issue.record("\(error)")
                return
            }
        }
    }
}
