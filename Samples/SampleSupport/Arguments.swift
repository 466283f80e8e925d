#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The command line of a sample, parsed the way Samples/README.md says:
///
/// - `--name VALUE` or `--name=VALUE` for options that take a value, `--flag`
///   for the others; options may come before or after operands; `--` ends
///   the options.
/// - `-h`/`--help`: the usage on stdout, exit 0.
/// - An unknown option, a missing or bad value, a missing or extra operand:
///   one `error: ...` line and the usage on stderr, exit 2 (``usageError(_:)``).
///
/// ```swift
/// let args = Arguments(usage: usage, valued: ["--host", "--port"], flags: ["--udp"])
/// let port = args.port(default: 21567)
/// ```
public struct Arguments: Sendable {
    public let usage: String
    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    /// The operands, in order.
    public private(set) var operands: [String] = []

    /// Parses `arguments` (the process's, without the program name, by
    /// default). `valued` are the options that take a value, `flags` those
    /// that do not; `--host` and `--port` are always accepted.
    public init(usage: String, valued: [String] = [], flags: [String] = [],
                arguments: [String] = Array(CommandLine.arguments.dropFirst())) {
        self.usage = usage
        let valued = Set(valued + ["--host", "--port"])
        let known = Set(flags)
        var i = 0
        var optionsEnded = false
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            if optionsEnded || arg == "-" || !arg.hasPrefix("-") {
                operands.append(arg)
                continue
            }
            if arg == "--" { optionsEnded = true; continue }
            if arg == "-h" || arg == "--help" {
                print(usage, terminator: usage.hasSuffix("\n") ? "" : "\n")
                exit(0)
            }
            var name = arg
            var inlineValue: String?
            if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--") {
                name = String(arg[..<eq])
                inlineValue = String(arg[arg.index(after: eq)...])
            }
            if valued.contains(name) {
                if let inlineValue {
                    values[name] = inlineValue
                } else if i < arguments.count {
                    values[name] = arguments[i]
                    i += 1
                } else {
                    usageError("option \(name) needs a value")
                }
            } else if known.contains(name) {
                if inlineValue != nil { usageError("option \(name) takes no value") }
                self.flags.insert(name)
            } else {
                usageError("unknown option \(arg)")
            }
        }
    }

    /// Prints `error: MESSAGE` and the usage on stderr, exits 2.
    public func usageError(_ message: String) -> Never {
        SampleSupport.usageError(message, usage: usage)
    }

    /// The value given for an option, if any.
    public func value(_ option: String) -> String? { values[option] }

    /// Whether a flag was given.
    public func flag(_ option: String) -> Bool { flags.contains(option) }

    /// `--host`, by default `127.0.0.1`. An IPv6 address may be given in
    /// brackets, as the samples print it (`[::1]`): the brackets are taken
    /// off; an opening bracket without its closing one is a usage error.
    public var host: String {
        guard let text = values["--host"] else { return "127.0.0.1" }
        if text.hasPrefix("[") || text.hasSuffix("]") {
            guard text.count > 2, text.hasPrefix("["), text.hasSuffix("]") else {
                usageError("bad host \(text) (an IPv6 address in brackets: [::1])")
            }
            return String(text.dropFirst().dropLast())
        }
        return text
    }

    /// `--port`: 0 to 65535 (0 lets the kernel choose); anything else is a
    /// usage error.
    public func port(default defaultPort: Int) -> Int {
        guard let text = values["--port"] else { return defaultPort }
        guard let port = Int(text), (0...65535).contains(port), text.allSatisfy(\.isASCII) else {
            usageError("bad port \(text) (expected 0-65535)")
        }
        return port
    }

    /// An option's value as a non-negative integer (digits only).
    public func count(_ option: String, default defaultValue: Int) -> Int {
        guard let text = values[option] else { return defaultValue }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text) else {
            usageError("bad value \(text) for \(option) (expected a whole number)")
        }
        return n
    }

    /// An option's value as one of `choices`.
    public func choice(_ option: String, _ choices: [String], default defaultValue: String) -> String {
        guard let text = values[option] else { return defaultValue }
        guard choices.contains(text) else {
            usageError("bad value \(text) for \(option) (expected \(choices.joined(separator: ", ")))")
        }
        return text
    }

    /// Exits with a usage error unless there are between `min` and `max` operands.
    public func expectOperands(_ range: ClosedRange<Int>) {
        if operands.count < range.lowerBound {
            usageError(range.lowerBound == 1 && operands.isEmpty ? "missing operand" : "missing operands")
        }
        if operands.count > range.upperBound {
            usageError("unexpected argument \(operands[range.upperBound])")
        }
    }
}

/// Prints `error: MESSAGE` and `usage` on stderr, exits 2.
public func usageError(_ message: String, usage: String) -> Never {
    printError("error: \(message)\n\(usage)\(usage.hasSuffix("\n") ? "" : "\n")")
    exit(2)
}

/// Prints `error: MESSAGE` on stderr, exits 1.
public func fail(_ message: String) -> Never {
    printError("error: \(message)\n")
    exit(1)
}

/// Writes `text` to stderr in one `write(2)` where it fits, so lines from
/// several threads do not interleave.
public func printError(_ text: String) {
    writeAll(2, Array(text.utf8))
}

/// Writes every byte to a file descriptor, retrying partial writes; gives up
/// silently on an error (a closed stdout or stderr).
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets.
public func hostPort(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}
