#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SampleSupport

/// A progress bar on stderr, drawn only when stderr is a terminal, and only
/// for transfers that last long enough to need one, as wide as the terminal
/// allows and never wrapped (``progressLine(done:total:bytesPerSecond:columns:)``):
///
///     [#############                 ]  45%  12.3 MiB / 27.0 MiB  5.1 MiB/s
final class Progress {
    let total: Int
    private(set) var done = 0
    private let enabled = isTerminal(2)
    private let started = Progress.now()
    private var lastDrawn = 0.0
    private var drawn = false

    init(total: Int) { self.total = total }

    func advance(by count: Int) {
        done += count
        guard enabled else { return }
        let t = Progress.now()
        if t - started < 0.3 || t - lastDrawn < 0.1 { return }
        lastDrawn = t
        draw(elapsed: t - started)
    }

    /// Clears the bar.
    func finish() {
        if drawn { printError("\r\u{1B}[K") }
    }

    private func draw(elapsed: Double) {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        // Measured at each draw: the terminal may be resized meanwhile.
        let line = progressLine(done: done, total: total, bytesPerSecond: rate, columns: terminalColumns(2))
        printError("\r\(line)\u{1B}[K")
        drawn = true
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
