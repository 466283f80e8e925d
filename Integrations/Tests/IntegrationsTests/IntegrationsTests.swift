#if canImport(Glibc)
import Glibc
#endif
import CoreMetrics
import Logging
import ServiceLifecycle
import SocketServer
import SocketServerLifecycle
import SocketServerLogging
import SocketServerMetrics
import Testing

final class Echo: StreamRequestHandler {
    override func handle() throws {
        while let line = try rfile.readLine() { try wfile.write(line) }
    }
}

/// Polls `condition` until it holds or `seconds` pass, without holding a
/// pool thread (a bounded wait).
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = Socket.monotonicNanos() + UInt64(seconds * 1e9)
    while Socket.monotonicNanos() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 2_000_000)  // deadline: a poll step
    }
    return condition()
}

func echo(_ address: SocketAddress, _ text: String) throws -> String? {
    let s = try Socket.createConnection(to: address, timeout: 10)
    defer { s.close() }
    try s.sendAll(Array(text.utf8))
    return try s.makeReader().readLine().map { String(decoding: $0, as: UTF8.self) }
}

// MARK: - swift-log

struct Captured: Sendable {
    var level: Logger.Level
    var message: String
    var metadata: [String: String]
}

/// A LogHandler that keeps what it is given.
struct CapturingHandler: LogHandler {
    let store: Locked<[Captured]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        var flat: [String: String] = [:]
        for (k, v) in (event.metadata ?? [:]) { flat[k] = "\(v)" }
        store.withLock { $0.append(Captured(level: event.level, message: "\(event.message)", metadata: flat)) }
    }
}

@Suite struct LoggingAdapterTests {
    @Test func oneClosedRecordPerConnectionWithPeerMetadata() async throws {
        let store = Locked<[Captured]>([])
        let logger = Logger(label: "test") { _ in CapturingHandler(store: store) }
        let server = try ThreadingTCPServer(("127.0.0.1", 0), Echo.self)
        server.logSink = LoggerLogSink(logger)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for i in 0..<3 { #expect(try echo(server.serverAddress, "hi \(i)\n") == "hi \(i)\n") }
        #expect(await eventually { store.withLock { $0.filter { $0.metadata["event"] == "connection.closed" }.count } == 3 })
        let closed = store.withLock { $0.filter { $0.metadata["event"] == "connection.closed" } }
        #expect(closed.allSatisfy { $0.metadata["peer"]?.hasPrefix("127.0.0.1:") == true && $0.metadata["connection_id"] != nil })
        #expect(Set(closed.compactMap { $0.metadata["connection_id"] }).count == 3)
        #expect(closed.allSatisfy { $0.level == .info && $0.metadata["outcome"] == "completed" })
        #expect(LoggerLogSink.level(.debug) == .debug && LoggerLogSink.level(.error) == .error)
    }
}

// MARK: - swift-service-lifecycle

/// A service that runs until graceful shutdown.
struct Idle: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}

@Suite(.serialized) struct LifecycleAdapterTests {
    @Test func serviceGroupStopsTheServerGracefully() async throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), Echo.self)
        let control = server.control
        let address = server.serverAddress
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: SocketServerService(control, gracePeriod: 5)), .init(service: Idle())],
            logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        #expect(await eventually { control.isServing })
        #expect(try echo(address, "ok\n") == "ok\n")
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(control.state == .stopped)
        withExtendedLifetime(server) {}
    }

    @Test func sigtermThroughAServiceGroup() async throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), Echo.self)
        let control = server.control
        let address = server.serverAddress
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: SocketServerService(control, gracePeriod: 5))],
            gracefulShutdownSignals: [.sigterm], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        #expect(await eventually { control.isServing })
        // A client in the middle of an exchange when SIGTERM comes.
        let c = try Socket.createConnection(to: address, timeout: 10)
        let reader = c.makeReader()
        try c.sendAll(Array("before\n".utf8))
        #expect(try reader.readLine() == Array("before\n".utf8))
        kill(getpid(), SIGTERM)
        #expect(await eventually { control.state == .draining || control.state == .stopped })
        try c.sendAll(Array("during\n".utf8))  // still served during the grace period
        #expect(try reader.readLine() == Array("during\n".utf8))
        c.close()
        try await running.value
        #expect(control.state == .stopped)
        withExtendedLifetime(server) {}
    }
}

// MARK: - swift-metrics

final class TestCounter: CounterHandler, Sendable {
    let value = Locked<Int64>(0)
    func increment(by amount: Int64) { value.withLock { $0 += amount } }
    func reset() { value.withLock { $0 = 0 } }
}
final class TestRecorder: RecorderHandler, MeterHandler, Sendable {
    let last = Locked<Double>(-1)
    func record(_ value: Int64) { last.withLock { $0 = Double(value) } }
    func record(_ value: Double) { last.withLock { $0 = value } }
    func set(_ value: Int64) { record(value) }
    func set(_ value: Double) { record(value) }
    func increment(by: Double) {}
    func decrement(by: Double) {}
}
final class TestTimer: TimerHandler, Sendable {
    let samples = Locked<[Int64]>([])
    func recordNanoseconds(_ duration: Int64) { samples.withLock { $0.append(duration) } }
}
final class TestFloatCounter: FloatingPointCounterHandler, Sendable {
    func increment(by: Double) {}
    func reset() {}
}

final class TestMetrics: MetricsFactory, Sendable {
    let counters = Locked<[String: TestCounter]>([:])
    let recorders = Locked<[String: TestRecorder]>([:])
    let timers = Locked<[String: TestTimer]>([:])
    static func key(_ label: String, _ dims: [(String, String)]) -> String {
        ([label] + dims.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
    }
    func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        counters.withLock { c in
            let h = TestCounter()
            c[Self.key(label, dimensions)] = h
            return h
        }
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> FloatingPointCounterHandler { TestFloatCounter() }
    func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        recorders.withLock { r in
            let h = TestRecorder()
            r[Self.key(label, dimensions)] = h
            return h
        }
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        recorders.withLock { r in
            let h = TestRecorder()
            r[Self.key(label, dimensions)] = h
            return h
        }
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        timers.withLock { t in
            let h = TestTimer()
            t[Self.key(label, dimensions)] = h
            return h
        }
    }
    func destroyCounter(_ handler: CounterHandler) {}
    func destroyMeter(_ handler: MeterHandler) {}
    func destroyFloatingPointCounter(_ handler: FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: RecorderHandler) {}
    func destroyTimer(_ handler: TimerHandler) {}
}

@Suite struct MetricsAdapterTests {
    @Test func connectionsCountedTimedAndGauged() async throws {
        let metrics = TestMetrics()
        let server = try ThreadingTCPServer(("127.0.0.1", 0), Echo.self)
        server.logSink = MetricsLogSink(control: server.control, label: "echo", forwardingTo: TextLogSink(minimumLevel: .error),
                                        factory: metrics)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for i in 0..<5 { #expect(try echo(server.serverAddress, "m \(i)\n") == "m \(i)\n") }
        let completed = "socketserver_connections_total,server=echo,outcome=completed"
        #expect(await eventually { metrics.counters.withLock { $0[completed]?.value.withLock { $0 } } == 5 })
        #expect(metrics.timers.withLock { $0["socketserver_connection_duration,server=echo"]?.samples.withLock { $0.count } } == 5)
        #expect(metrics.counters.withLock { $0["socketserver_bytes_in_total,server=echo"]?.value.withLock { $0 } } == 20)
        let gauge = metrics.recorders.withLock { $0.first { $0.key.hasPrefix("socketserver_active_connections") }?.value.last.withLock { $0 } }
        #expect(gauge == 0)
    }
}
