#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SampleSupport

/// A progress bar on stderr, drawn only when stderr is a terminal, and only
/// for transfers that last long enough to need one:
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
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = min(width, Int(fraction * Double(width)))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let percent = String(Int(fraction * 100)).leftPadded(to: 3)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        printError("\r[\(bar)] \(percent)%  \(Progress.size(Double(done))) / \(Progress.size(Double(total)))  \(Progress.size(rate))/s\u{1B}[K")
        drawn = true
    }

    static func size(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(Int(value)) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: " ", count: max(0, width - count)) + self
    }
}
