import CoreMetrics
import SocketServer

/// A ``SocketServer/LogSink`` that turns a server's connection events into
/// swift-metrics metrics, and passes every record on to another sink:
///
/// - `socketserver_connections_total` (counter, dimension `outcome`:
///   `completed`, `peer_gone`, `timed_out`, `refused`, `failed`);
/// - `socketserver_connection_duration` (timer, nanoseconds);
/// - `socketserver_bytes_in_total` and `socketserver_bytes_out_total` (counters);
/// - `socketserver_active_connections` (gauge, from the server's stats at
///   each close).
///
/// ```swift
/// server.logSink = MetricsLogSink(control: server.control, forwardingTo: TextLogSink())
/// ```
public struct MetricsLogSink: LogSink {
    private let control: ServerControl
    private let next: any LogSink
    private let outcomes: [String: Counter]
    private let duration: Timer
    private let bytesIn: Counter
    private let bytesOut: Counter
    private let active: Gauge

    /// Metrics for the server of `control`, labelled with `label` as the
    /// `server` dimension; records go on to `next`.
    /// `factory`: the metrics backend (the one bootstrapped by default).
    public init(control: ServerControl, label: String = "socketserver", forwardingTo next: any LogSink = TextLogSink(),
                factory: any MetricsFactory = MetricsSystem.factory) {
        self.control = control
        self.next = next
        let server = [("server", label)]
        var outcomes: [String: Counter] = [:]
        for name in ["completed", "peer_gone", "timed_out", "refused", "failed"] {
            outcomes[name] = Counter(label: "socketserver_connections_total", dimensions: server + [("outcome", name)], factory: factory)
        }
        self.outcomes = outcomes
        duration = Timer(label: "socketserver_connection_duration", dimensions: server, factory: factory)
        bytesIn = Counter(label: "socketserver_bytes_in_total", dimensions: server, factory: factory)
        bytesOut = Counter(label: "socketserver_bytes_out_total", dimensions: server, factory: factory)
        active = Gauge(label: "socketserver_active_connections", dimensions: server, factory: factory)
    }

    public func log(_ record: LogRecord) {
        if let s = record.summary {
            outcomes[s.outcome.name]?.increment()
            duration.recordNanoseconds(Int64(s.duration * 1e9))
            if s.bytesIn > 0 { bytesIn.increment(by: s.bytesIn) }
            if s.bytesOut > 0 { bytesOut.increment(by: s.bytesOut) }
            if let stats = control.stats { active.record(stats.active) }
        }
        next.log(record)
    }
}
