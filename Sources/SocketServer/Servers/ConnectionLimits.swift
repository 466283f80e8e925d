/// Caps on what a server serves at once (``BaseServer/limits``). Off by
/// default, as in Python: every accepted connection gets its thread.
///
/// ```swift
/// server.limits = ConnectionLimits(maxConnections: 64, policy: .wait, maxPerClient: 8)
/// ```
public struct ConnectionLimits: Sendable, Equatable {
    /// What happens to a connection while ``maxConnections`` are served.
    public enum Policy: Sendable, Equatable {
        /// The loop stops accepting until one ends; the kernel's backlog
        /// holds the rest (backpressure: nothing is refused).
        case wait
        /// Accept, and hand the connection to
        /// ``BaseServer/rejectRequest(_:clientAddress:reason:)`` on the
        /// accepting thread; no thread or child is started for it.
        case reject
    }

    /// The most requests served at once; nil: no cap.
    public var maxConnections: Int?
    /// What to do when ``maxConnections`` are being served.
    public var policy: Policy
    /// The most connections at once from one client address; nil: no cap.
    /// Over it, a connection is rejected (whatever ``policy`` is).
    public var maxPerClient: Int?
    /// IPv6 clients are counted by this prefix length (a /64 is usually
    /// one host or one site). IPv4 addresses, and IPv4-mapped IPv6 ones,
    /// are counted whole.
    public var ipv6PrefixLength: Int

    /// Caps; each nil is no cap.
    public init(maxConnections: Int? = nil, policy: Policy = .wait, maxPerClient: Int? = nil, ipv6PrefixLength: Int = 64) {
        self.maxConnections = maxConnections.map { max(1, $0) }
        self.policy = policy
        self.maxPerClient = maxPerClient.map { max(1, $0) }
        self.ipv6PrefixLength = min(128, max(0, ipv6PrefixLength))
    }

    /// No caps.
    public static let none = ConnectionLimits()
}

/// Why a connection was refused.
public enum RejectReason: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// ``ConnectionLimits/maxConnections`` were being served (policy `.reject`).
    case capacity = "server full"
    /// ``ConnectionLimits/maxPerClient`` from this address were open.
    case perClientLimit = "too many connections"
    /// The server's address filter does not allow the address.
    case addressFilter = "address not allowed"
    /// ``BaseServer/verifyRequest(_:clientAddress:)`` returned false.
    case verifyRequest = "not verified"
    /// A peer that must send a PROXY protocol header sent none, or a bad one.
    case proxyHeader = "bad proxy header"


    /// The reason as log lines write it (`too many connections`).
    public var description: String { rawValue }
}

/// The key a client is counted under for ``ConnectionLimits/maxPerClient``.
struct ClientKey: Hashable, Sendable {
    let isIPv6: Bool
    let high: UInt64
    let low: UInt64

    /// nil for an address that is not IP (a Unix peer): not counted.
    init?(_ address: SocketAddress, ipv6PrefixLength: Int) {
        guard let bytes = address.ipBytes else { return nil }
        func number(_ b: ArraySlice<UInt8>) -> UInt64 { b.reduce(0) { $0 << 8 | UInt64($1) } }
        // IPv4, and IPv4-mapped IPv6 (::ffff:a.b.c.d), count as the IPv4 address.
        if bytes.count == 4 || (bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff) {
            isIPv6 = false
            high = 0
            low = number(bytes.suffix(4))
            return
        }
        var h = number(bytes[0..<8])
        var l = number(bytes[8..<16])
        let n = ipv6PrefixLength
        if n < 64 {
            h = n == 0 ? 0 : h & ~(UInt64.max >> UInt64(n))
            l = 0
        } else if n < 128 {
            l = n == 64 ? 0 : l & ~(UInt64.max >> UInt64(n - 64))
        }
        isIPv6 = true
        high = h
        low = l
    }
}

/// The slots of ``ConnectionLimits``: taken before a thread or child
/// starts, given back when the request ends or could not start.
struct Admission: Sendable {
    var active = 0
    var perClient: [ClientKey: Int] = [:]
    /// The loop is waiting for a slot (policy `.wait`): a release wakes it.
    var loopWaiting = false

    enum Verdict { case admitted(ClientKey?), full, rejected(RejectReason) }

    mutating func admit(_ client: SocketAddress, limits: ConnectionLimits, capacity: Int?) -> Verdict {
        var key: ClientKey?
        if let perClient = limits.maxPerClient, let k = ClientKey(client, ipv6PrefixLength: limits.ipv6PrefixLength) {
            if self.perClient[k, default: 0] >= perClient { return .rejected(.perClientLimit) }
            key = k
        }
        if let capacity, active >= capacity {
            return limits.policy == .reject ? .rejected(.capacity) : .full
        }
        active += 1
        if let key { perClient[key, default: 0] += 1 }
        return .admitted(key)
    }

    /// Gives a slot back; returns whether the loop waits for one (and must be woken).
    mutating func release(_ key: ClientKey?) -> Bool {
        active -= 1
        if let key { releasePerClient(key) }
        let wake = loopWaiting
        loopWaiting = false
        return wake
    }

    mutating func releasePerClient(_ key: ClientKey) {
        let n = perClient[key, default: 1] - 1
        perClient[key] = n > 0 ? n : nil
    }
}
