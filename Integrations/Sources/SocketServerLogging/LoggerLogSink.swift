import Logging
import SocketServer

/// A ``SocketServer/LogSink`` that writes a server's records to a swift-log
/// `Logger`: the record's fields become metadata (`peer`, `outcome`, ...),
/// with `event` and, for connection records, `connection_id`.
///
/// ```swift
/// server.logSink = LoggerLogSink(Logger(label: "echo"))
/// ```
///
/// Levels map one to one (`notice` to `.notice`); a peer that went away
/// and a health check arrive at `.debug`, real failures at `.warning` and
/// `.error`. swift-log's task-local metadata is not visible on the server's
/// handler threads, so per-connection metadata is passed explicitly.
public struct LoggerLogSink: LogSink {
    /// The logger records go to.
    public let logger: Logger

    /// A sink writing to `logger`.
    public init(_ logger: Logger) { self.logger = logger }

    public func log(_ record: LogRecord) {
        let level = Self.level(record.level)
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = ["event": .string(record.event)]
        if let id = record.connectionID { metadata["connection_id"] = .string(String(id)) }
        for field in record.fields { metadata[field.key] = .string(field.value) }
        logger.log(level: level, Logger.Message(stringLiteral: record.message ?? record.event), metadata: metadata)
    }

    /// The swift-log level of a server log level.
    public static func level(_ level: LogLevel) -> Logger.Level {
        switch level {
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        }
    }
}
