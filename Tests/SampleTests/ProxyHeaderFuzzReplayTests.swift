// The PROXY protocol parser through its fuzz target's check
// (ProxyHeaderCheck, in SampleSupport): the seed corpus replayed, and
// seeded random mutations of it, so that `swift test` runs the same
// invariants as Fuzz/run.sh without libFuzzer.
import SampleSupport
import Testing

@Suite struct ProxyHeaderFuzzReplayTests {
    @Test func seedCorpus() throws {
        let files = FuzzCorpus.files([fuzzCorpus("proxy-header")])
        #expect(files.count >= 20)
        for file in files {
            let input = try #require(FuzzCorpus.read(file))
            #expect(throws: Never.self, "\(file)") { try ProxyHeaderCheck.check(input) }
        }
    }

    /// Each corpus file mutated at random: bytes flipped, cut, repeated.
    @Test func seededMutations() throws {
        var random = SplitMix(seed: 12_012)
        let seeds = FuzzCorpus.files([fuzzCorpus("proxy-header")]).compactMap(FuzzCorpus.read)
        for round in 0..<1500 {
            var input = seeds[random.next(below: seeds.count)]
            for _ in 0...random.next(below: 3) {
                guard !input.isEmpty else { break }
                let at = random.next(below: input.count)
                switch random.next(below: 4) {
                case 0: input[at] ^= UInt8(1 << random.next(below: 8))
                case 1: input.removeSubrange(at...)
                case 2: input.insert(UInt8(random.next(below: 256)), at: at)
                default: input[at] = [0x0D, 0x0A, 0x20, 0x00, 0x30][random.next(below: 5)]
                }
            }
            do {
                try ProxyHeaderCheck.check(input)
            } catch {
                Issue.record("round \(round), input \(input): \(error)")
                return
            }
        }
    }
}
