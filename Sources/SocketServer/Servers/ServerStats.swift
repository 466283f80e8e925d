import Synchronization

/// A snapshot of what a server has done (``BaseServer/stats``): a value,
/// safe to send anywhere.
public struct ServerStats: Sendable, Equatable {
    /// Requests accepted (connections, or datagrams).
    public var accepted = 0
    /// Requests being served now.
    public var active = 0
    /// The most served at once so far.
    public var peakActive = 0
    /// Requests refused, by reason.
    public var rejected: [RejectReason: Int] = [:]
    /// Requests whose handler returned normally.
    public var completed = 0
    /// Requests that ended because the peer went away (reset, broken pipe).
    public var peerGone = 0
    /// Requests that ended on a time-out.
    public var timedOut = 0
    /// Requests whose handler failed with another error.
    public var failed = 0
    /// Failed accepts (descriptor exhaustion, say) the server survived.
    public var acceptErrors = 0
    /// Bytes received through handlers' `rfile` (after TLS and PROXY headers).
    public var bytesIn: UInt64 = 0
    /// Bytes sent through handlers' `wfile`.
    public var bytesOut: UInt64 = 0
    /// ``ConnectionLimits/maxConnections`` when capped; nil otherwise.
    public var capacity: Int?

    /// All requests refused.
    public var rejectedTotal: Int { rejected.values.reduce(0, +) }

    /// `active / capacity` (0...1) when capped; nil otherwise.
    public var saturation: Double? {
        guard let capacity, capacity > 0 else { return nil }
        return Double(active) / Double(capacity)
    }
}

/// The counters behind ``ServerStats``: relaxed atomics, one add per event
/// (bytes are added once per connection, at its end).
final class StatsCounters: Sendable {
    let accepted = Atomic<Int>(0)
    let active = Atomic<Int>(0)
    let peakActive = Atomic<Int>(0)
    /// Rejections are rare: a lock is cheap enough.
    let rejected = Locked<[RejectReason: Int]>([:])
    let completed = Atomic<Int>(0)
    let peerGone = Atomic<Int>(0)
    let timedOut = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let acceptErrors = Atomic<Int>(0)
    let bytesIn = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)

    func opened() {
        accepted.add(1, ordering: .relaxed)
        let now = active.add(1, ordering: .relaxed).newValue
        var peak = peakActive.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = peakActive.compareExchange(expected: peak, desired: now, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
    }

    func closed(_ summary: ConnectionSummary) {
        switch summary.outcome {
        case .completed: completed.add(1, ordering: .relaxed)
        case .peerGone: peerGone.add(1, ordering: .relaxed)
        case .timedOut: timedOut.add(1, ordering: .relaxed)
        case .refused(let reason):
            rejected.withLock { $0[reason, default: 0] += 1 }
        case .failed: failed.add(1, ordering: .relaxed)
        }
        if summary.bytesIn > 0 { bytesIn.add(summary.bytesIn, ordering: .relaxed) }
        if summary.bytesOut > 0 { bytesOut.add(summary.bytesOut, ordering: .relaxed) }
        active.subtract(1, ordering: .relaxed)
    }

    func snapshot(capacity: Int?) -> ServerStats {
        var s = ServerStats()
        s.accepted = accepted.load(ordering: .relaxed)
        s.active = active.load(ordering: .relaxed)
        s.peakActive = peakActive.load(ordering: .relaxed)
        s.rejected = rejected.withLock { $0 }
        s.completed = completed.load(ordering: .relaxed)
        s.peerGone = peerGone.load(ordering: .relaxed)
        s.timedOut = timedOut.load(ordering: .relaxed)
        s.failed = failed.load(ordering: .relaxed)
        s.acceptErrors = acceptErrors.load(ordering: .relaxed)
        s.bytesIn = bytesIn.load(ordering: .relaxed)
        s.bytesOut = bytesOut.load(ordering: .relaxed)
        s.capacity = capacity
        return s
    }
}
