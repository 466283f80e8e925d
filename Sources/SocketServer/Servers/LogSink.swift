/// How much a log record matters.
public enum LogLevel: Int, Sendable, Comparable, CustomStringConvertible {
    /// Details for whoever debugs: a peer that went away, a health check.
    case debug
    /// What happened in the ordinary course: a connection closed.
    case info
    /// Worth a look: something refused.
    case notice
    /// A request failed.
    case warning
    /// The server could not do what it should (an accept failed).
    case error

    /// Orders levels by how much they matter.
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    /// `debug`, `info`, `notice`, `warning` or `error`.
    public var description: String {
        switch self {
        case .debug: return "debug"
        case .info: return "info"
        case .notice: return "notice"
        case .warning: return "warning"
        case .error: return "error"
        }
    }
}

/// One `key=value` fact of a log record.
public struct LogField: Sendable, Equatable {
    /// The key (`peer`).
    public var key: String
    /// The value (`127.0.0.1:50124`), quoted by a logfmt sink where needed.
    public var value: String
    /// A field `key=value`.
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// One thing a server reports: what happened (``event``, such as
/// `connection.closed`), how much it matters, a line for people (nil
/// when the event is for machines only), and structured fields.
public struct LogRecord: Sendable {
    /// How much it matters.
    public var level: LogLevel
    /// A dotted name: `connection.closed`, `connection.refused`,
    /// `request.error`, `request.peer_gone`, `accept.error`.
    public var event: String
    /// The line the text sink prints; nil: the text sink prints nothing.
    public var message: String?
    /// Structured facts (`peer`, `duration_ms`, `outcome`, ...).
    public var fields: [LogField]
    /// The connection's id, when the record is about one.
    public var connectionID: UInt64?
    /// For `connection.closed`: the summary itself, typed (for adapters
    /// such as metrics).
    public var summary: ConnectionSummary?

    /// A record; see the properties.
    public init(level: LogLevel, event: String, message: String?, fields: [LogField] = [], connectionID: UInt64? = nil,
                summary: ConnectionSummary? = nil) {
        self.level = level
        self.event = event
        self.message = message
        self.fields = fields
        self.connectionID = connectionID
        self.summary = summary
    }
}

/// Where a server writes its log records (``BaseServer/logSink``). The
/// default, ``TextLogSink``, writes the plain lines a server always wrote
/// to standard error; ``LogfmtLogSink`` writes `key=value` lines. Adapters
/// (swift-log) live in the `Integrations` package.
public protocol LogSink: Sendable {
    /// Records one event. Called from any thread.
    func log(_ record: LogRecord)
}

/// Writes each record's ``LogRecord/message`` as one line on standard
/// error; records without a message (`connection.closed`) print nothing.
public struct TextLogSink: LogSink {
    /// Records below this level print nothing.
    public var minimumLevel: LogLevel
    /// A sink printing records of `minimumLevel` and above.
    public init(minimumLevel: LogLevel = .debug) { self.minimumLevel = minimumLevel }

    public func log(_ record: LogRecord) {
        guard record.level >= minimumLevel, let message = record.message else { return }
        writeStderr(message.hasSuffix("\n") ? message : message + "\n")
    }
}

/// Writes every record as one logfmt line on standard error:
/// `ts=2026-12-02T10:00:00.123Z level=info event=connection.closed peer=127.0.0.1:50124 ...`.
/// Values with spaces, `=` or `"` are quoted, with `"` and `\` escaped.
public struct LogfmtLogSink: LogSink {
    /// Records below this level print nothing.
    public var minimumLevel: LogLevel
    /// Where lines go; standard error by default.
    let write: @Sendable (String) -> Void

    /// A sink writing records of `minimumLevel` and above to standard error.
    public init(minimumLevel: LogLevel = .debug) {
        self.minimumLevel = minimumLevel
        self.write = { writeStderr($0) }
    }

    /// A sink that hands each line (with its LF) to `write`: for tests.
    public init(minimumLevel: LogLevel = .debug, write: @escaping @Sendable (String) -> Void) {
        self.minimumLevel = minimumLevel
        self.write = write
    }

    public func log(_ record: LogRecord) {
        guard record.level >= minimumLevel else { return }
        write(LogfmtLogSink.line(record))
    }

    /// The line for `record`, with its LF.
    public static func line(_ record: LogRecord, timestamp: String = rfc3339Now()) -> String {
        var out = "ts=\(timestamp) level=\(record.level) event=\(quote(record.event))"
        for f in record.fields { out += " \(f.key)=\(quote(f.value))" }
        if let m = record.message { out += " msg=\(quote(m.hasSuffix("\n") ? String(m.dropLast()) : m))" }
        return out + "\n"
    }

    /// A value as logfmt writes it: bare when it can be, else quoted.
    public static func quote(_ value: String) -> String {
        let bare = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 != 0x22 && $0 != 0x3D && $0 != 0x5C && $0 != 0x7F }
        if bare { return value }
        var out = "\""
        for ch in value.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }

    /// Now in UTC as RFC 3339 with milliseconds (`2026-12-02T10:00:00.123Z`).
    public static func rfc3339Now() -> String {
        let t = Sys.utcNow()
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(t.year, 4))-\(pad(t.month, 2))-\(pad(t.day, 2))T"
            + "\(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2)).\(pad(t.millisecond, 3))Z"
    }
}
