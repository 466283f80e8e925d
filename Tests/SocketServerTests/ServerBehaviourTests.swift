#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing
import TestSupport

/// Appends a line to a log file: works from handler threads and forked
/// children alike (Python's ErrorHandlerTest does the same).
func appendLog(_ path: String, _ line: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var text = line + "\n"
    _ = text.withUTF8 { write(fd, $0.baseAddress, $0.count) }
}

func readLog(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

struct TestError: Error {}

/// Python's BadHandler: logs, then fails.
final class FailingHandler: StreamRequestHandler {
    override func handle() throws {
        let log = (server as! LoggingServerProtocol).logPath
        appendLog(log, "Handler called")
        throw TestError()
    }
}

protocol LoggingServerProtocol { var logPath: String { get } }

/// A threading server that keeps the errors it is told of, in order.
class ErrorRecordingServer: ThreadingTCPServer {
    let errors = Locked<[any Error]>([])
    override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        errors.withLock { $0.append(error) }
    }

    /// The errors as text, for failure messages.
    var errorTexts: [String] { errors.withLock { $0.map { "\($0)" } } }
}

@Suite("Errors are handled and the server goes on")
struct ErrorHandlingTests {
    final class SyncLogging: TCPServer, LoggingServerProtocol {
        var logPath = ""
        override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
            appendLog(logPath, error is TestError ? "Error handled" : "Other error: \(error)")
        }
    }
    final class ThreadingLogging: TCPServer, ThreadingMixIn, LoggingServerProtocol {
        var logPath = ""
        override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
            appendLog(logPath, error is TestError ? "Error handled" : "Other error: \(error)")
        }
    }
    final class ForkingLogging: TCPServer, ForkingMixIn, LoggingServerProtocol {
        var logPath = ""
        override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
            appendLog(logPath, error is TestError ? "Error handled" : "Other error: \(error)")
        }
    }

    @Test(arguments: underThreadSanitizer ? ["sync", "threading"] : ["sync", "threading", "forking"])
    func handlerErrorReachesHandleError(_ mode: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let log = dir.file("log")
        let server: TCPServer
        switch mode {
        case "sync": let s = try SyncLogging(("127.0.0.1", 0), FailingHandler.self); s.logPath = log; server = s
        case "threading": let s = try ThreadingLogging(("127.0.0.1", 0), FailingHandler.self); s.logPath = log; server = s
        default: let s = try ForkingLogging(("127.0.0.1", 0), FailingHandler.self); s.logPath = log; server = s
        }
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for round in 1...2 {  // the server goes on after an error
            let c = try client(server.serverAddress)
            // The server closes the connection once the handler has failed.
            #expect(try c.recv(10).isEmpty)
            c.close()
            let expected = String(repeating: "Handler called\nError handled\n", count: round)
            #expect(eventually { readLog(log) == expected }, "log: \(readLog(log))")
        }
    }

    @Test func peerGoneErrorsAreRecognised() {
        #expect(SocketError.system(.connectionReset, operation: "recv", address: nil).isPeerGone)
        #expect(SocketError.system(.brokenPipe, operation: "send", address: nil).isPeerGone)
        #expect(SocketError.timeout(operation: "recv", address: nil).isPeerGone)
        #expect(!SocketError.system(.tooManyOpenFiles, operation: "accept", address: nil).isPeerGone)
    }

    final class LinesHandler: StreamRequestHandler {
        override func handle() throws {
            while let line = try rfile.readLine(maxLength: 16) { try wfile.write(line) }
        }
    }

    @Test func finishRunsWhenHandleThrowsAndFlushAddsNoSecondReport() throws {
        let server = try ErrorRecordingServer(("127.0.0.1", 0), LinesHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        try c.sendAll(Array("short\n".utf8) + [UInt8](repeating: 0x41, count: 100) + [0x0A])
        let r = c.makeReader()
        #expect(try r.readLine() == Array("short\n".utf8))  // flushed by finish
        #expect(try r.readLine() == nil)
        #expect(eventually { server.errors.withLock { $0.count } == 1 })
        #expect(server.errors.withLock { $0.map { $0 as? StreamError } } == [.lineTooLong(maxLength: 16)], "\(server.errorTexts)")
    }
}

@Suite("Requests: verify, shutdown, threads, children")
struct RequestFlowTests {
    final class VerifyingServer: TCPServer, ThreadingMixIn {
        let events = Locked<[String]>([])
        let servingThread = Atomic<Int32>(0)
        let verifyThread = Atomic<Int32>(0)
        override func serviceActions() {
            servingThread.store(currentThreadID(), ordering: .relaxed)
            super.serviceActions()
        }
        override func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool {
            verifyThread.store(currentThreadID(), ordering: .relaxed)
            events.withLock { $0.append("verify") }
            return false
        }
        override func shutdownRequest(_ request: Request) {
            events.withLock { $0.append("shutdownRequest") }
            super.shutdownRequest(request)
        }
        override func processRequest(_ request: Request, clientAddress: SocketAddress) throws {
            events.withLock { $0.append("process") }
            try super.processRequest(request, clientAddress: clientAddress)
        }
    }

    @Test func refusedRequestIsShutDownWithoutAThread() throws {
        let server = try VerifyingServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.01)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        #expect(try c.recv(10).isEmpty)  // closed without being served
        #expect(eventually { server.events.withLock { $0 } == ["verify", "shutdownRequest"] })
        #expect(eventually { server.servingThread.load(ordering: .relaxed) != 0 })
        // verifyRequest ran on the serving thread, before any thread was spent.
        #expect(server.verifyThread.load(ordering: .relaxed) == server.servingThread.load(ordering: .relaxed))
        #expect(server.activeThreadCount == 0)
    }

    @Test func threadsAreReapedAndNotKept() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for i in 0..<10 {
            let c = try client(server.serverAddress)
            #expect(try roundTrip(c, c.makeReader(), "\(i)\n") == "\(i)\n")
            c.close()
        }
        #expect(eventually { server.activeThreadCount == 0 })
        #expect(eventually { server.stats.active == 0 })
        #expect((server.dispatch as? ThreadDispatch)?.counts.withLock { $0.tracked == 0 } == true)
    }

    @Test func twoHundredConcurrentClients() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let clients = try (0..<200).map { _ in try client(server.serverAddress) }
        for (i, c) in clients.enumerated() { try c.sendAll(Array("client \(i)\n".utf8)) }
        // All 200 are served at once: each has its own thread.
        #expect(eventually { server.activeThreadCount == 200 })
        for (i, c) in clients.enumerated() {
            #expect(try c.makeReader().readLine() == Array("client \(i)\n".utf8))
            c.close()
        }
        #expect(eventually { server.activeThreadCount == 0 })
    }

    final class BoundedForking: ForkingTCPServer {
        override var maxChildren: Int { 3 }
        let maxSeen = Atomic<Int>(0)
        override func processRequest(_ request: Request, clientAddress: SocketAddress) throws {
            try super.processRequest(request, clientAddress: clientAddress)
            let n = activeChildren.count
            if n > maxSeen.load(ordering: .relaxed) { maxSeen.store(n, ordering: .relaxed) }
        }
    }

    @Test(.disabled(if: underThreadSanitizer, "fork() under the thread sanitizer hangs the child"))
    func maxChildrenHoldsUnderABurst() throws {
        let server = try BoundedForking(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.01)
        defer { server.shutdown(); server.serverClose() }
        // A burst of 10 connections, all waiting in the backlog at once.
        let clients = try (0..<10).map { _ in try client(server.serverAddress) }
        for (i, c) in clients.enumerated() {
            try c.sendAll(Array("burst \(i)\n".utf8))
            try c.shutdown(.write)  // the child then ends after its echo
        }
        for (i, c) in clients.enumerated() {
            #expect(try c.makeReader().readAll() == Array("burst \(i)\n".utf8))
        }
        #expect(server.maxSeen.load(ordering: .relaxed) <= 3)
        #expect(server.maxSeen.load(ordering: .relaxed) >= 1)
    }

    final class TracingHandler: StreamRequestHandler {
        override func handle() throws {
            let tracer = server as! TracingServer
            tracer.inodes.withLock { _ = $0.insert(socketInode(connection)) }
            tracer.threads.withLock { _ = $0.insert(currentThreadID()) }
            while let line = try rfile.readLine() { try wfile.write(line) }
        }
    }

    final class TracingServer: ThreadingTCPServer {
        let inodes = Locked<Set<UInt64>>([])
        let threads = Locked<Set<Int32>>([])
    }

    @Test func thousandConnectionsLeaveNoDescriptorOrThread() throws {
        let server = try TracingServer(("127.0.0.1", 0), TracingHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for batch in 0..<50 {
            let clients = try (0..<20).map { _ in try client(server.serverAddress) }
            for (i, c) in clients.enumerated() {
                #expect(try roundTrip(c, c.makeReader(), "\(batch).\(i)\n") == "\(batch).\(i)\n")
                if i % 2 == 0 { try c.shutdown(.write) }  // half end politely, half just close
                c.close()
            }
        }
        #expect(server.inodes.withLock { $0.count } == 1000)
        #expect(eventually { server.activeThreadCount == 0 })
        let open = openSocketInodes()
        let leaked = server.inodes.withLock { $0.intersection(open) }
        #expect(leaked.isEmpty)
        let live = liveThreadIDs()
        #expect(eventually { server.threads.withLock { $0.isDisjoint(with: liveThreadIDs()) } }, "\(live.count) live")
    }

    final class HugeStackServer: ErrorRecordingServer {
        override var threadStackSize: Int { 1 << 46 }  // 64 TiB: pthread_create fails
    }

    @Test func aThreadThatCannotStartClosesThatRequestOnly() throws {
        let server = try HugeStackServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        for _ in 0..<2 {
            let c = try client(server.serverAddress)
            #expect(try c.recv(10).isEmpty)  // closed, not left hanging
        }
        #expect(eventually { server.errors.withLock { $0.count } == 2 })
        #expect(server.errors.withLock { $0.allSatisfy { ($0 as? ServerError)?.kind == .threadStart } }, "\(server.errorTexts)")
        #expect(server.control.isServing)
        #expect(server.activeThreadCount == 0)
    }
}

@Suite("The serving loop survives accept failures")
struct AcceptFailureTests {
    /// Fails `getRequest` with the given errors first, then accepts.
    final class FlakyServer: ThreadingTCPServer {
        let failures = Locked<[Errno]>([])
        let reported = Locked<[String]>([])
        override func getRequest() throws -> (Request, SocketAddress) {
            if let e = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                throw SocketError.system(e, operation: "accept", address: nil)
            }
            return try super.getRequest()
        }
        override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
            reported.withLock { $0.append("\(request == nil ? "accept" : "request"): \(error)") }
        }
    }

    @Test func survivableErrorsAreReportedAndRetried() throws {
        let server = try FlakyServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.failures.withLock { $0 = [.tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory, .connectionAborted] }
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)  // waits in the backlog through the failures
        #expect(try roundTrip(c, c.makeReader(), "still here\n") == "still here\n")
        let reported = server.reported.withLock { $0 }
        #expect(reported.count == 5)
        #expect(reported.first == "accept: accept: Too many open files (EMFILE)")
        #expect(reported.allSatisfy { $0.hasPrefix("accept: ") })
        #expect(server.socket.fileno >= 0)  // the listener stayed open
    }

    @Test func backoffGrowsAndShutdownStillReturns() throws {
        let server = try FlakyServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.failures.withLock { $0 = Array(repeating: .tooManyOpenFiles, count: 1000) }
        try server.serveInBackground(pollInterval: 0.05)
        let c = try client(server.serverAddress)
        #expect(eventually { server.reported.withLock { $0.count } >= 3 })
        server.shutdown()  // not held up by the pause
        server.serverClose()
        c.close()
        // Growing pauses (5, 10, 20 ms, ...): far fewer reports than a busy loop.
        #expect(server.reported.withLock { $0.count } < 100)
    }
}

@Suite("Unix socket files")
struct UnixSocketFileTests {
    @Test func staleSocketFileIsReplaced() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("stale.sock")
        // A socket file nobody answers on, as a crashed server leaves.
        let crashed = try Socket(family: .unix, type: .stream)
        try crashed.bind(to: SocketAddress(unixPath: path))
        _ = crashed.detach()  // keep the descriptor; only the file matters
        var st = stat()
        #expect(lstat(path, &st) == 0)
        let server = try UnixStreamServer(path, EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        #expect(try roundTrip(c, c.makeReader(), "fresh\n") == "fresh\n")
    }

    @Test func liveServersSocketIsNeverRemoved() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("live.sock")
        let first = try ThreadingUnixStreamServer(path, EchoStreamHandler.self)
        try first.serveInBackground(pollInterval: 0.05)
        defer { first.shutdown(); first.serverClose() }
        #expect(throws: SocketError.system(.addressInUse, operation: "bind to", address: path)) {
            try UnixStreamServer(path, EchoStreamHandler.self)
        }
        let c = try client(first.serverAddress)
        #expect(try roundTrip(c, c.makeReader(), "first\n") == "first\n")
    }

    @Test func aPathThatIsNotASocketIsNeverRemoved() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("data.txt")
        appendLog(path, "precious")
        #expect(throws: SocketError.self) { try UnixStreamServer(path, EchoStreamHandler.self) }
        #expect(readLog(path) == "precious\n")
    }

    @Test func onlyTheSameFileIsRemovedAtClose() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("moved.sock")
        let server = try UnixDatagramServer(path, EchoDatagramHandler.self)
        unlink(path)
        appendLog(path, "someone else's")  // the path now names another file
        server.serverClose()
        #expect(readLog(path) == "someone else's\n")
        let other = try UnixStreamServer(dir.file("mine.sock"), EchoStreamHandler.self)
        #expect(access(dir.file("mine.sock"), F_OK) == 0)
        other.serverClose()
        #expect(access(dir.file("mine.sock"), F_OK) != 0)
    }
}

@Suite("Handlers without a server")
struct HandlerHarnessTests {
    @Test func streamHandlerOverASocketpair() throws {
        let connection = try HandlerHarness.stream(EchoStreamHandler.self)
        try connection.peer.setTimeout(10)
        try connection.peer.sendAll(Array("one\ntwo\nno newline".utf8))
        try connection.peer.shutdown(.write)
        #expect(try connection.peer.makeReader().readAll() == Array("one\ntwo\nno newline".utf8))
        try connection.wait()
        #expect(connection.isFinished)
    }

    final class Failing: StreamRequestHandler {
        override func handle() throws { throw TestError() }
    }

    @Test func handlerErrorsAreRethrownByWait() throws {
        let connection = try HandlerHarness.stream(Failing.self)
        #expect(throws: TestError.self) { try connection.wait() }
    }

    @Test func datagramHandler() throws {
        #expect(try HandlerHarness.datagram(EchoDatagramHandler.self, packet: Array("ping".utf8)) == Array("ping".utf8))
        final class Silent: DatagramRequestHandler {}
        #expect(try HandlerHarness.datagram(Silent.self, packet: [1, 2, 3]) == nil)
    }

    final class Unbuffered: StreamRequestHandler {
        override var wbufsize: Int { 0 }
        override func handle() throws {
            try wfile.write("hello\n")  // goes out at once, before the handler reads
            _ = try rfile.readLine()
            try wfile.write("bye\n")
        }
    }

    @Test func unbufferedWriterSendsEachWriteAtOnce() throws {
        let connection = try HandlerHarness.stream(Unbuffered.self)
        try connection.peer.setTimeout(10)
        let reader = connection.peer.makeReader()
        #expect(try reader.readLine() == Array("hello\n".utf8))
        try connection.peer.sendAll(Array("go\n".utf8))
        #expect(try reader.readLine() == Array("bye\n".utf8))
        try connection.wait()
    }

    final class Streaming: StreamRequestHandler {
        override func handle() throws {
            var block = [UInt8](repeating: 0, count: 64 * 1024)
            for i in 0..<256 {  // 16 MiB, written while the peer reads slowly
                block[0] = UInt8(truncatingIfNeeded: i)
                try wfile.write(block)
            }
        }
    }

    @Test func largeWritesThroughTheHandlerArriveWhole() throws {
        let connection = try HandlerHarness.stream(Streaming.self)
        try connection.peer.setTimeout(10)
        var total = 0
        var firsts: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try connection.peer.recv(into: &buffer)
            if n == 0 { break }
            for k in 0..<n where (total + k) % (64 * 1024) == 0 { firsts.append(buffer[k]) }
            total += n
        }
        #expect(total == 16 << 20)
        #expect(firsts == (0..<256).map { UInt8($0) })
        try connection.wait()
    }
}

@Suite("Hostile clients")
struct HostileClientTests {
    final class TimedEcho: StreamRequestHandler {
        override var timeout: Double? { 0.3 }
        override func handle() throws {
            while let line = try rfile.readLine() { try wfile.write(line) }
        }
    }

    /// Sends one byte at a time, each after waiting up to `step` for the
    /// server to close; returns how many bytes went out before it did.
    func trickle(_ c: Socket, step: Int32, limit: Int) throws -> Int {
        for sent in 0..<limit {
            var wait = Deadline.after(nanos: UInt64(step) * 1_000_000)
            if case .done = try Sys.poll(c.fileno, Sys.pollIn, deadline: &wait) { return sent }
            do { try c.sendAll([0x61]) } catch { return sent }
        }
        return limit
    }

    @Test func silentClientIsClosedAtTheDeadline() throws {
        let server = try ErrorRecordingServer(("127.0.0.1", 0), TimedEcho.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        #expect(try c.recv(10).isEmpty)  // closed by the server, not by our 10 s time-out
        #expect(eventually { server.activeThreadCount == 0 })
        #expect(server.errors.withLock { $0.map { $0 as? SocketError } } == [.timeout(operation: "recv", address: nil)], "\(server.errorTexts)")
    }

    @Test func tricklingClientIsClosedAtTheDeadline() throws {
        let server = try ErrorRecordingServer(("127.0.0.1", 0), TimedEcho.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        // A byte every 50 ms never lets a per-recv 0.3 s time-out fire; the
        // per-line deadline does. 400 steps is 20 s: far past the deadline.
        let sent = try trickle(c, step: 50, limit: 400)
        #expect(sent < 400)
        #expect(eventually { server.activeThreadCount == 0 })
        #expect(server.errors.withLock { $0.map { $0 as? SocketError } } == [.timeout(operation: "recv", address: nil)], "\(server.errorTexts)")
    }

    @Test func aClientThatKeepsSendingLinesIsNotCut() throws {
        let server = try ErrorRecordingServer(("127.0.0.1", 0), TimedEcho.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let c = try client(server.serverAddress)
        let r = c.makeReader()
        for i in 0..<20 {  // each line well within the time-out
            #expect(try roundTrip(c, r, "line \(i)\n") == "line \(i)\n")
        }
    }
}

@Suite("Closing waits for handlers as configured")
struct CloseWaitTests {
    final class Gate: StreamRequestHandler {
        override func handle() throws {
            let s = server as! GatedServer
            s.log.update { $0.append("handler started") }
            s.gate.wait(timeout: 30) { $0 }
            s.log.update { $0.append("handler ended") }
        }
    }

    class GatedServer: ThreadingTCPServer {
        let gate = Locked(false)
        let log = Locked<[String]>([])
    }

    final class DaemonGatedServer: GatedServer {
        override var daemonThreads: Bool { true }
    }

    /// Closes `server` on another thread, logging "closed" when it returns.
    func closeInBackground(_ server: GatedServer) throws {
        let hop = ThreadHop(server)
        try Threads.spawn(stackSize: 1 << 20) {
            hop.value.serverClose()
            hop.value.log.update { $0.append("closed") }
        }
    }

    @Test func blockOnCloseWaitsForHandlerThreads() throws {
        let server = try GatedServer(("127.0.0.1", 0), Gate.self)
        try server.serveInBackground(pollInterval: 0.05)
        let c = try client(server.serverAddress)
        defer { c.close() }
        #expect(server.log.wait(timeout: 10) { $0.contains("handler started") })
        server.shutdown()
        try closeInBackground(server)
        server.gate.update { $0 = true }
        #expect(server.log.wait(timeout: 10) { $0.contains("closed") })
        // serverClose returned only after the handler thread ended.
        #expect(server.log.withLock { $0 } == ["handler started", "handler ended", "closed"])
    }

    @Test func daemonThreadsAreNotWaitedFor() throws {
        let server = try DaemonGatedServer(("127.0.0.1", 0), Gate.self)
        try server.serveInBackground(pollInterval: 0.05)
        let c = try client(server.serverAddress)
        defer { c.close() }
        #expect(server.log.wait(timeout: 10) { $0.contains("handler started") })
        server.shutdown()
        try closeInBackground(server)
        // The handler is still held at the gate, and serverClose returns.
        #expect(server.log.wait(timeout: 10) { $0.contains("closed") })
        #expect(server.log.withLock { $0 } == ["handler started", "closed"])
        server.gate.update { $0 = true }
        #expect(server.log.wait(timeout: 10) { $0.contains("handler ended") })
    }

    final class TimingOutServer: TCPServer {
        let timeouts = Locked(0)
        override func handleTimeout() { timeouts.update { $0 += 1 } }
    }

    @Test func handleRequestServesOneOrTimesOut() throws {
        let server = try TimingOutServer(("127.0.0.1", 0), EchoStreamHandler.self)
        defer { server.serverClose() }
        server.timeout = 0.05
        try server.handleRequest()  // nobody connects
        #expect(server.timeouts.withLock { $0 } == 1)
        let c = try client(server.serverAddress)
        try c.sendAll(Array("one request\n".utf8))
        try c.shutdown(.write)
        try server.handleRequest()  // serves it (sync), then returns
        #expect(try c.makeReader().readAll() == Array("one request\n".utf8))
        #expect(server.timeouts.withLock { $0 } == 1)
    }
}
