#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The width of the terminal on `fd`, in columns: the kernel's
/// (`TIOCGWINSZ`), else `$COLUMNS`, else 80.
public func terminalColumns(_ fd: Int32) -> Int {
    var size = winsize()
    if ioctl(fd, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 { return Int(size.ws_col) }
    if let text = getenv("COLUMNS").map({ String(cString: $0) }), let n = Int(text), n > 0 { return n }
    return 80
}

/// A byte count for people: `512 B`, `12.3 MiB`.
public func humanSize(_ bytes: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = bytes
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(Int(value)) B" }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}

/// One line of a progress bar that fits a terminal `columns` wide without
/// wrapping: it never reaches the last column (where some terminals wrap).
///
///     [#############                 ]  45%  12.3 MiB / 27.0 MiB  5.1 MiB/s
///
/// The bar takes the room the text leaves (10 to 50 characters); on a
/// narrower terminal the rate goes first, then the sizes, then the bar,
/// down to the percentage alone, cut to fit.
public func progressLine(done: Int, total: Int, bytesPerSecond: Double, columns: Int) -> String {
    let room = max(0, columns - 1)
    let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
    let digits = String(Int(fraction * 100))
    let percent = String(repeating: " ", count: max(0, 3 - digits.count)) + digits + "%"
    let sizes = "\(humanSize(Double(done))) / \(humanSize(Double(total)))"
    let rate = "\(humanSize(bytesPerSecond))/s"
    for parts in [[percent, sizes, rate], [percent, sizes], [percent]] {
        let text = parts.joined(separator: "  ")
        let barWidth = min(50, room - text.count - 3)  // "[", "] ", the bar
        if barWidth >= 10 {
            let filled = min(barWidth, Int(fraction * Double(barWidth)))
            return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: barWidth - filled) + "] " + text
        }
    }
    for text in [percent + "  " + sizes, percent] where text.count <= room { return text }
    return String(percent.suffix(room))
}
