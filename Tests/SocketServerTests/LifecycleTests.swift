#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Dispatch
import Synchronization
import Testing
import TestSupport

@Suite struct ServingLifecycleTests {
    @Test func closeWithAnIdleClientEndsAtTheBound() throws {
        final class Short: ThreadingTCPServer {
            override var closeTimeout: Double? { 0.3 }
        }
        let server = try Short(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        let idle = try client(server.serverAddress)
        #expect(try roundTrip(idle, idle.makeReader(), "hi\n") == "hi\n")
        server.shutdown()
        server.serverClose()  // returns: the idle connection is cut at the bound
        #expect(server.activeThreadCount == 0)
        #expect(try idle.makeReader().readLine() == nil)
        #expect(server.stats.active == 0)
    }

    @Test func stateGoesStartingServingStopped() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        #expect(server.control.state == .starting)
        try server.serveInBackground(pollInterval: 0.05)
        #expect(server.control.state == .serving)
        server.shutdown()
        #expect(server.control.state == .stopped)
        server.serverClose()
        #expect(server.control.state == .stopped)
    }

    @Test func drainKeepsServingThenCloses() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        let inFlight = try client(server.serverAddress)
        let reader = inFlight.makeReader()
        #expect(try roundTrip(inFlight, reader, "1\n") == "1\n")
        let control = server.control
        let hop = ThreadHop(server)
        let drained = Locked(false)
        try Threads.spawn(stackSize: 256 * 1024) {
            hop.value.drain(delay: 0.3, grace: 5)
            drained.update { $0 = true }
        }
        #expect(eventually { control.state == .draining })
        // During the delay the server still accepts and serves.
        let late = try client(server.serverAddress)
        #expect(try roundTrip(late, late.makeReader(), "late\n") == "late\n")
        late.close()
        // The in-flight connection keeps working through the grace period.
        #expect(try roundTrip(inFlight, reader, "2\n") == "2\n")
        inFlight.close()
        #expect(drained.wait(timeout: 10) { $0 })
        #expect(control.state == .stopped)
        // The listener is closed. (Not checked by connecting: with tests
        // running in parallel the freed port can be bound again, or a
        // client's ephemeral port can meet it in a self-connection.)
        #expect(server.fileno < 0)
    }

    @Test func asyncRunReturnsAfterShutdown() async throws { try await offThePool {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        let control = server.control
        let address = server.serverAddress
        let task = Task(executorPreference: ThreadExecutor.shared) { try await control.run(pollInterval: 0.05) }
        #expect(await eventuallyAsync { control.isServing })
        let c = try client(address)
        #expect(try roundTrip(c, c.makeReader(), "async\n") == "async\n")
        c.close()
        control.shutdown()
        try await task.value
        server.serverClose()
    } }

    @Test func cancellingRunStopsAndCutsConnections() async throws { try await offThePool {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        let control = server.control
        let address = server.serverAddress
        let task = Task(executorPreference: ThreadExecutor.shared) { try await control.run(pollInterval: 0.05) }
        #expect(await eventuallyAsync { control.isServing })
        let c = try client(address)
        let reader = c.makeReader()
        #expect(try roundTrip(c, reader, "x\n") == "x\n")
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(try reader.readLine() == nil)  // cut
        #expect(control.state == .stopped)
        withExtendedLifetime(server) {}
    } }

    @Test func asyncDrainWaitsForTheInFlightRequest() async throws { try await offThePool {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        let c = try client(server.serverAddress)
        #expect(try roundTrip(c, c.makeReader(), "x\n") == "x\n")
        let closer = ThreadHop(c)
        try Threads.spawn(stackSize: 256 * 1024) { closer.value.close() }
        await server.control.drain(timeout: 10)
        #expect(server.control.state == .stopped)
        #expect(server.stats.completed == 1)
    } }
}

/// Using a server the wrong way throws `ServerError` (its own kinds), not
/// a socket error.
@Suite struct ServerMisuseTests {
    @Test func serveForeverWhileServingThrowsAlreadyServing() throws {
        let server = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        try server.serveInBackground(pollInterval: 0.05)
        defer { server.shutdown(); server.serverClose() }
        let error = #expect(throws: ServerError.self) { try server.serveForever(pollInterval: 0.05) }
        #expect(error?.kind == .alreadyServing)
        #expect(error?.errno == nil)
        do { try server.serveForever() } catch ServerError.alreadyServing {} catch { Issue.record("\(error)") }
        #expect(server.control.isServing)  // the running loop goes on
        // In the background too: the second loop's error is the caller's.
        let background = #expect(throws: ServerError.self) { try server.serveInBackground(pollInterval: 0.05) }
        #expect(background?.kind == .alreadyServing)
        #expect(server.control.isServing)
        let c = try client(server.serverAddress)
        #expect(try roundTrip(c, c.makeReader(), "still\n") == "still\n")
    }

    @Test func servingAClosedServerThrowsClosed() throws {
        let server = try TCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        server.serverClose()
        let forever = #expect(throws: ServerError.self) { try server.serveForever(pollInterval: 0.05) }
        #expect(forever?.kind == .closed)
        let one = #expect(throws: ServerError.self) { try server.handleRequest() }
        #expect(one?.kind == .closed)
        // It carries EBADF, as the socket error it replaces did.
        do { try server.handleRequest() } catch Errno.badFileDescriptor {} catch { Issue.record("\(error)") }
        do { try server.serveForever() } catch ServerError.closed {} catch { Issue.record("\(error)") }
        let background = #expect(throws: ServerError.self) { try server.serveInBackground(pollInterval: 0.05) }
        #expect(background?.kind == .closed)
        #expect(!server.control.isServing)
    }

    @Test func runningADroppedServerThrowsClosed() async throws {
        var server: ThreadingTCPServer? = try ThreadingTCPServer(("127.0.0.1", 0), EchoStreamHandler.self)
        let control = server!.control
        server = nil
        await #expect { try await control.run(pollInterval: 0.05) } throws: { error in
            (error as? ServerError)?.kind == .closed
        }
    }
}
