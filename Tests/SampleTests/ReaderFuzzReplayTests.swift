// SocketReader through the line-reader fuzz target's check (ReaderCheck, in
// SampleSupport): the seed corpus replayed, and seeded random inputs, so
// that `swift test` runs the same invariants as Fuzz/run.sh without libFuzzer.
import SampleSupport
import Testing

@Suite struct ReaderFuzzReplayTests {
    @Test func seedCorpus() throws {
        let files = FuzzCorpus.files([fuzzCorpus("readline")])
        #expect(files.count >= 12)
        for file in files {
            let input = try #require(FuzzCorpus.read(file))
            #expect(throws: Never.self, "\(file)") { try ReaderCheck.check(input) }
        }
    }

    /// Seeded random inputs: random parameters, data made mostly of lines
    /// around the limit, CRs and invalid UTF-8.
    @Test func seededRandomInputs() throws {
        var random = SplitMix(seed: 7_007)
        let pieces: [[UInt8]] = [[0x0A], [0x0D, 0x0A], [0x0D], [0xFF], [0xE2, 0x82], [0x00], Array("abc".utf8), Array("é".utf8)]
        for round in 0..<400 {
            let maxLength = random.next(below: 301)
            let size = random.next(below: 4000)
            var data: [UInt8] = []
            while data.count < size {
                if random.next(below: 3) == 0 {
                    // A run near the limit: a line just under, at or over it.
                    data += [UInt8](repeating: 0x61, count: max(0, maxLength - 1 + random.next(below: 4)))
                } else {
                    data += pieces[random.next(below: pieces.count)]
                }
            }
            let input = ReaderCheck.Parameters.input(maxLength: maxLength, bufferSizeIndex: random.next(below: ReaderCheck.bufferSizes.count),
                                                     chunkSeed: UInt8(random.next(below: 256)),
                                                     scriptSeed: UInt8(random.next(below: 256)), data: data)
            do {
                try ReaderCheck.check(input)
            } catch {
                Issue.record("round \(round): \(error)")
                return
            }
        }
    }

    @Test func parametersRoundTrip() {
        let input = ReaderCheck.Parameters.input(maxLength: 300, bufferSizeIndex: 9, chunkSeed: 4, scriptSeed: 5, data: [1, 2])
        let p = ReaderCheck.Parameters(input)
        #expect(p.maxLength == 300 && p.bufferSize == 16 * 1024 && p.chunkSeed == 4 && p.scriptSeed == 5 && p.data == [1, 2])
    }
}
