#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// What a server hands its handler: a connected stream socket, or one
/// datagram with the socket it came on (Python's `request`).
public enum Request: Sendable {
    case stream(Socket)
    case datagram(packet: [UInt8], socket: Socket)

    /// The connected socket, or the server's datagram socket.
    public var socket: Socket {
        switch self {
        case .stream(let s): return s
        case .datagram(_, let s): return s
        }
    }

    /// The datagram's bytes; nil for a stream request.
    public var packet: [UInt8]? {
        if case .datagram(let p, _) = self { return p }
        return nil
    }
}

/// The request loop and its hooks: Python's `socketserver.BaseServer`.
///
/// Methods for the caller:
///
/// - `init(serverAddress:handler:)`
/// - ``serveForever(pollInterval:)``
/// - ``shutdown()``
/// - ``handleRequest()``  (when not using `serveForever`)
/// - ``serverClose()``, ``closing(_:)`` (Python's `with` block), ``closeGracefully(timeout:)``
/// - ``fileno``
///
/// Methods that may be overridden:
///
/// - ``serverBind()``, ``serverActivate()``
/// - ``getRequest()``
/// - ``verifyRequest(_:clientAddress:)``
/// - ``processRequest(_:clientAddress:)``, ``finishRequest(_:clientAddress:)``
/// - ``shutdownRequest(_:)``, ``closeRequest(_:)``
/// - ``handleError(_:request:clientAddress:)``, ``handleTimeout()``
/// - ``serviceActions()``
/// - ``serverClose()``
///
/// Settings (override the property in a subclass, as Python sets class
/// attributes): ``timeout`` (an instance property), ``requestQueueSize``,
/// ``allowReuseAddress``, ``allowReusePort``, and for the mix-ins
/// ``daemonThreads``, ``blockOnClose``, ``threadStackSize``, ``maxChildren``.
///
/// A request goes: the socket is readable → ``getRequest()`` →
/// ``verifyRequest(_:clientAddress:)`` → ``processRequest(_:clientAddress:)``
/// (run here, in a thread, or in a child, as the mix-in decides) →
/// ``finishRequest(_:clientAddress:)`` (the handler's setup, handle, finish)
/// → ``shutdownRequest(_:)``. Whatever is thrown on that way reaches
/// ``handleError(_:request:clientAddress:)``, and the server goes on.
///
/// Threads: the server's own state (its address, time-out, lifecycle,
/// workers) is behind locks and atomics, so its methods may be called from
/// handler threads and ``shutdown()`` from anywhere. A subclass that adds
/// state shared by handler threads must guard it (``Locked``), as in
/// Python. `BaseServer` is not declared `Sendable`: an open class can only
/// be `@unchecked Sendable`, and that would make every one-line subclass
/// restate it. To control a server from another thread, use its
/// ``control``, which is `Sendable`, or ``serveInBackground(pollInterval:)``.
open class BaseServer: ServerClosing {
    enum Model { case sync, threads, processes }

    struct Workers {
        /// Requests served on the serving thread (synchronous servers): 0 or 1.
        var inline = 0
        var threads = 0
        var tracked = 0
        var children = Set<pid_t>()
        var connections: [ObjectIdentifier: Socket] = [:]
    }

    /// The handler class instantiated for each request (Python's `RequestHandlerClass`).
    public let handlerType: BaseRequestHandler.Type
    let model: Model
    private let addressStorage: Locked<SocketAddress>
    private let timeoutStorage = Locked<Double?>(nil)
    private let stagesStorage = Locked<[any ConnectionStage]>([])
    private let proxyStorage = Locked<ProxyProtocolConfig?>(nil)
    private let acceptBackoffNanos = Atomic<UInt64>(0)
    let workers = Locked(Workers())
    /// The serving loop's state, shareable with other threads.
    public let control: ServerControl
    private var lifecycle: Locked<ServerControl.Lifecycle> { control.lifecycle }
    private var wakeup: Wakeup { control.wakeup }

    /// A server that has no socket of its own (Python's `BaseServer`);
    /// subclasses such as ``TCPServer`` add one.
    public init(serverAddress: SocketAddress, handler: BaseRequestHandler.Type) throws {
        self.handlerType = handler
        self.addressStorage = Locked(serverAddress)
        self.control = try ServerControl()
        let me: AnyClass = Self.self
        if me is any ThreadingMixIn.Type {
            model = .threads
        } else if me is any ForkingMixIn.Type {
            model = .processes
        } else {
            model = .sync
        }
    }

    deinit {
        if !lifecycle.withLock({ $0.closed }) { serverClose() }
    }

    // MARK: - Settings

    /// The address the server is bound to: after binding, the real one
    /// (port 0 resolved to the port the kernel chose).
    public var serverAddress: SocketAddress {
        get { addressStorage.withLock { $0 } }
        set { addressStorage.withLock { $0 = newValue } }
    }

    /// The time-out in seconds for ``handleRequest()``; nil waits forever.
    public var timeout: Double? {
        get { timeoutStorage.withLock { $0 } }
        set { timeoutStorage.withLock { $0 = newValue } }
    }

    /// The steps run on each stream connection's thread before its handler
    /// (a TLS handshake, say): see ``ConnectionStage``. Empty by default;
    /// set before serving.
    public var connectionStages: [any ConnectionStage] {
        get { stagesStorage.withLock { $0 } }
        set { stagesStorage.withLock { $0 = newValue } }
    }

    /// Reading PROXY protocol headers (HAProxy's v1 and v2) from trusted
    /// proxies: see ``ProxyProtocolConfig``. Nil (off) by default; set
    /// before serving. Its ``ProxyProtocolStage`` runs before the
    /// ``connectionStages``.
    public var proxyProtocol: ProxyProtocolConfig? {
        get { proxyStorage.withLock { $0 } }
        set { proxyStorage.withLock { $0 = newValue } }
    }

    /// The listen backlog. Python's 5 drops connections under a burst; the
    /// default asks for 4096, which the kernel caps at `net.core.somaxconn`.
    open var requestQueueSize: Int { 4096 }

    /// SO_REUSEADDR before binding, so a restarted server does not fail on
    /// connections in TIME_WAIT. On for stream servers, off for datagram ones.
    open var allowReuseAddress: Bool { true }

    /// SO_REUSEPORT before binding: several servers share one port. Off.
    open var allowReusePort: Bool { false }

    /// ``ThreadingMixIn``: handler threads are not waited for at close. Off.
    open var daemonThreads: Bool { false }

    /// ``ThreadingMixIn``/``ForkingMixIn``: ``serverClose()`` waits for the
    /// handler threads (not daemon ones) or child processes. On.
    open var blockOnClose: Bool { true }

    /// ``ThreadingMixIn``: the stack size of a handler thread. 512 KiB:
    /// ample for ordinary handler code, and since only the pages a thread
    /// touches are resident, ten thousand idle connections cost far less.
    open var threadStackSize: Int { 512 * 1024 }

    /// ``ForkingMixIn``: the most child processes at once; a new request
    /// waits for one to end. 40, as Python.
    open var maxChildren: Int { 40 }

    /// The descriptor the loop waits on; -1 for a server without a socket.
    open var fileno: Int32 { -1 }

    // MARK: - Serving

    /// Handles requests until ``shutdown()`` is called. `pollInterval` is
    /// how often ``serviceActions()`` runs when idle; shutdown does not wait
    /// for it (the loop is woken at once).
    public func serveForever(pollInterval: Double? = 0.5) throws {
        try lifecycle.update { s in
            if s.closed { throw SocketError.closed(operation: "serve forever") }
            if s.serving { throw SocketError.invalidArgument("serveForever is already running") }
            s.serving = true
            s.servingThread = pthread_self()
            if s.shutdownRequested { control.shutdownFlag.store(true, ordering: .releasing) }
        }
        defer {
            lifecycle.update { s in
                s.serving = false
                s.servingThread = nil
                s.shutdownRequested = false
                control.shutdownFlag.store(false, ordering: .releasing)
            }
        }
        let interval: Int32 = pollInterval.map { Int32(clamping: Int64(($0 * 1000).rounded(.up))) } ?? -1
        while !control.shutdownFlag.load(ordering: .acquiring) {
            let ready = waitForRequest(timeoutMillis: interval)
            if control.shutdownFlag.load(ordering: .acquiring) { break }
            if ready { handleRequestNoBlock() }
            serviceActions()
        }
    }

    /// Stops ``serveForever(pollInterval:)`` and returns once it has
    /// stopped; it does not wait out a poll interval. Called from the
    /// serving thread itself (a handler of a synchronous server), or when
    /// the loop is not running, it only asks and returns at once: the next
    /// `serveForever` then returns immediately, as in Python.
    public func shutdown() { control.shutdown() }

    /// Runs ``serveForever(pollInterval:)`` on a new thread and returns once
    /// it is serving. Stop it with `control.shutdown()` (or ``shutdown()``);
    /// an error that ends the loop is reported on standard error.
    @discardableResult
    public func serveInBackground(pollInterval: Double? = 0.5) throws -> ServerControl {
        let hop = ThreadHop(self)
        let control = self.control
        try Threads.spawn(stackSize: 1 << 20) {
            do { try hop.value.serveForever(pollInterval: pollInterval) } catch {
                writeStderr("error: serveForever: \(error)\n")
                control.lifecycle.update { $0.failed = true }
            }
        }
        lifecycle.wait(deadline: nil) { $0.serving || $0.failed || $0.closed }
        return control
    }

    /// Handles one request, waiting for it at most ``timeout`` seconds;
    /// calls ``handleTimeout()`` if none came.
    public func handleRequest() throws {
        let deadline = timeout.map { Sys.monotonicNanos() &+ nanos(fromSeconds: $0) }
        let fd = fileno
        guard fd >= 0 else { throw SocketError.closed(operation: "handle request") }
        while true {
            let ms = deadline.map { pollMillis(until: $0) } ?? -1
            let r = Sys.poll(fd, Int16(POLLIN), ms)
            if r > 0 { handleRequestNoBlock(); return }
            if r == 0 {
                if let deadline, Sys.monotonicNanos() >= deadline { handleTimeout(); return }
                continue
            }
            if Sys.errno != EINTR { throw SocketError.fromErrno("poll") }
        }
    }

    /// Waits until the socket is readable or `shutdown` wakes us.
    private func waitForRequest(timeoutMillis: Int32) -> Bool {
        var fds = [pollfd(fd: wakeup.readFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: fileno, events: Int16(POLLIN), revents: 0)]
        let r = Glibc_or_Darwin_poll(&fds, fds[1].fd >= 0 ? 2 : 1, timeoutMillis)
        if r <= 0 { return false }
        if fds[0].revents != 0 { wakeup.drain() }
        return fds[1].fd >= 0 && fds[1].revents != 0
    }

    /// Accepts one request and dispatches it; never throws.
    func handleRequestNoBlock() {
        let request: Request
        let client: SocketAddress
        do {
            (request, client) = try getRequest()
        } catch {
            acceptFailed(error)
            return
        }
        acceptBackoffNanos.store(0, ordering: .relaxed)
        if control.shutdownFlag.load(ordering: .acquiring) {
            shutdownRequest(request)
            return
        }
        do {
            if try verifyRequest(request, clientAddress: client) {
                try processRequest(request, clientAddress: client)
            } else {
                shutdownRequest(request)
            }
        } catch {
            handleError(error, request: request, clientAddress: client)
            shutdownRequest(request)
        }
    }

    /// The accept errors a long-running server meets and survives: reported,
    /// then retried after a short pause that grows while they last (5 ms up
    /// to 1 s), so descriptor exhaustion neither spins nor stops the server.
    private func acceptFailed(_ error: any Error) {
        if case SocketError.closed = error { return }
        if let e = error as? SocketError, let code = e.errno {
            if code == .wouldBlock { return }  // another thread or process took it
            handleError(error, request: nil, clientAddress: nil)
            if code == .connectionAborted { return }  // that one connection only
        } else {
            handleError(error, request: nil, clientAddress: nil)
        }
        let previous = acceptBackoffNanos.load(ordering: .relaxed)
        let pause = min(max(previous * 2, 5_000_000), 1_000_000_000)
        acceptBackoffNanos.store(pause, ordering: .relaxed)
        // Sleep on the wake-up descriptor, so shutdown() still ends it at once.
        _ = Sys.poll(wakeup.readFD, Int16(POLLIN), Int32(pause / 1_000_000))
    }

    // MARK: - Hooks

    /// Binds the socket (``TCPServer`` and subclasses). Base: nothing.
    open func serverBind() throws {}

    /// Starts listening (``TCPServer``). Base: nothing.
    open func serverActivate() throws {}

    /// Takes the next request from the socket: accept for streams,
    /// recvfrom for datagrams.
    open func getRequest() throws -> (Request, SocketAddress) {
        throw SocketError.invalidArgument("\(Self.self) has no socket to take requests from")
    }

    /// Decides whether to serve a request; runs before any thread or
    /// process is spent on it. Refused requests are closed with
    /// ``shutdownRequest(_:)``. Base: accept all.
    open func verifyRequest(_ request: Request, clientAddress: SocketAddress) throws -> Bool { true }

    /// Serves a request: here, in a new thread (``ThreadingMixIn``), or in a
    /// child process (``ForkingMixIn``).
    open func processRequest(_ request: Request, clientAddress: SocketAddress) throws {
        switch model {
        case .sync:
            let key = track(request)
            defer { untrack(key) }
            try finishRequest(request, clientAddress: clientAddress)
            shutdownRequest(request)
        case .threads:
            try startThread(request, clientAddress: clientAddress)
        case .processes:
            try forkChild(request, clientAddress: clientAddress)
        }
    }

    /// Runs the handler: creates it, then its setup, handle and finish.
    ///
    /// For a stream connection of a server with ``connectionStages``, it
    /// first makes the connection's ``ConnectionContext`` and runs the
    /// stages (on this, the connection's thread); the handler then sees the
    /// context's client address and streams.
    ///
    /// A proxy's health check (``ConnectionContext/isHealthCheck``) that
    /// closes before or right after its header is not an error: nothing
    /// reaches ``handleError(_:request:clientAddress:)``.
    open func finishRequest(_ request: Request, clientAddress: SocketAddress) throws {
        let context: ConnectionContext?
        do {
            context = try prepareConnection(request, clientAddress: clientAddress)
        } catch let error as ProxyProtocolError where error.isHealthCheck {
            return
        }
        let handler = handlerType.init(request: request, clientAddress: context?.clientAddress ?? clientAddress, server: self)
        handler.context = context
        do {
            try handler.run()
        } catch let error as SocketError where error.isPeerGone && context?.isHealthCheck == true {
            return
        }
    }

    /// Makes the context of a stream connection and runs the stages over
    /// it; nil when there is nothing to prepare (no stages, or a datagram).
    func prepareConnection(_ request: Request, clientAddress: SocketAddress) throws -> ConnectionContext? {
        guard case .stream(let socket) = request else { return nil }
        let stages = connectionStages
        let proxy = proxyProtocol
        guard !stages.isEmpty || proxy != nil else { return nil }
        let context = ConnectionContext(socket: socket, peerAddress: clientAddress)
        if let proxy { try ProxyProtocolStage(proxy).prepare(context, server: self) }
        for stage in stages { try stage.prepare(context, server: self) }
        return context
    }

    /// Ends a request: for streams, shuts down the write side (so the peer
    /// sees end of file at once), then ``closeRequest(_:)``.
    open func shutdownRequest(_ request: Request) { closeRequest(request) }

    /// Releases a request's resources. Base: nothing.
    open func closeRequest(_ request: Request) {}

    /// Reports an error raised while serving a request (or accepting one,
    /// when `request` is nil) and lets the server go on. Default: one line
    /// on standard error; a peer that simply went away (reset, broken pipe,
    /// time-out) is reported quietly.
    open func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        let who = clientAddress.map(describePeer) ?? "server"
        if let e = error as? SocketError, e.isPeerGone {
            writeStderr("\(who): connection closed: \(e)\n")
        } else if request == nil {
            writeStderr("error: \(who): \(error)\n")
        } else {
            writeStderr("error: request from \(who) failed: \(error)\n")
        }
    }

    /// Called by ``handleRequest()`` when no request came within ``timeout``.
    /// Base: reaps finished children of a forking server.
    open func handleTimeout() {
        if model == .processes { collectChildren() }
    }

    /// Called once per turn of the serving loop. Base: reaps finished
    /// children of a forking server. Overrides should call `super`.
    open func serviceActions() {
        if model == .processes { collectChildren() }
    }

    /// Cleans up: stops a running loop, then (mix-ins, with
    /// ``blockOnClose``) waits for handler threads or child processes.
    /// ``TCPServer`` also closes its socket. Safe to call more than once;
    /// called when the server is dropped.
    open func serverClose() {
        let me = pthread_self()
        let graceful = lifecycle.withLock { s in s.gracefulThread.map { pthread_equal($0, me) == 0 } ?? false }
        if graceful {
            // Another thread is closing gracefully (a signal): wait for it.
            lifecycle.wait(deadline: nil) { $0.gracefulThread == nil }
            return
        }
        let deadline: UInt64? = lifecycle.update { s in
            s.closed = true
            if s.serving {
                s.shutdownRequested = true
                control.shutdownFlag.store(true, ordering: .releasing)
            }
            return s.workerDeadline
        }
        wakeup.signal()
        guard blockOnClose else { return }
        switch model {
        case .sync: break
        case .threads: workers.wait(deadline: deadline) { $0.tracked == 0 }
        case .processes:
            if let deadline { _ = reapChildren(until: deadline) } else { collectChildren(blocking: true) }
        }
    }

    /// Releases the listening socket (``TCPServer``; Unix servers also
    /// remove their socket file). Base: nothing.
    func releaseListener() {}

    /// Closes the server the way a service stops on SIGTERM: stops
    /// accepting and closes the listening socket at once, lets the requests
    /// in progress go on for up to `timeout` seconds (returning as soon as
    /// the last one ends), then shuts down the connections still open (a
    /// forking server sends its children SIGTERM), gives them a moment to
    /// end, and finishes with ``serverClose()``.
    public func closeGracefully(timeout: Double) {
        let started: Bool = lifecycle.update { s in
            if s.gracefulThread != nil || s.gracefulDone { return false }
            s.gracefulThread = pthread_self()
            s.shutdownRequested = true
            control.shutdownFlag.store(true, ordering: .releasing)
            return true
        }
        guard started else {
            // Already done, or under way in another thread: wait for it.
            lifecycle.wait(deadline: nil) { $0.gracefulThread == nil }
            return
        }
        wakeup.signal()
        releaseListener()
        let deadline = Sys.monotonicNanos() &+ nanos(fromSeconds: timeout)
        var done = true
        switch model {
        case .sync, .threads:
            done = workers.wait(deadline: deadline) { $0.threads == 0 && $0.inline == 0 }
            if !done {
                let open = workers.withLock { Array($0.connections.values) }
                for s in open { try? s.shutdown(.both) }
            }
        case .processes:
            done = reapChildren(until: deadline)
            if !done {
                for pid in workers.withLock({ $0.children }) { kill(pid, SIGTERM) }
            }
        }
        lifecycle.update { s in
            s.workerDeadline = Sys.monotonicNanos() &+ (done ? 0 : 500_000_000)
        }
        serverClose()
        if model == .processes {
            for pid in workers.withLock({ $0.children }) { kill(pid, SIGKILL) }
            _ = reapChildren(until: Sys.monotonicNanos() &+ 200_000_000)
        }
        lifecycle.update { s in
            s.gracefulThread = nil
            s.gracefulDone = true
        }
    }

    /// Records a request served on the serving thread, so that
    /// ``closeGracefully(timeout:)`` can wait for it and cut it.
    private func track(_ request: Request) -> ObjectIdentifier? {
        guard case .stream(let s) = request else { return nil }
        let key = ObjectIdentifier(s)
        workers.update { w in
            w.inline += 1
            w.connections[key] = s
        }
        return key
    }

    private func untrack(_ key: ObjectIdentifier?) {
        guard let key else { return }
        workers.update { w in
            w.inline -= 1
            w.connections[key] = nil
        }
    }

    // MARK: - Threads

    /// How many handler threads are running now.
    public var activeThreadCount: Int { workers.withLock { $0.threads } }

    private func startThread(_ request: Request, clientAddress: SocketAddress) throws {
        let tracked = !daemonThreads && blockOnClose
        let key: ObjectIdentifier? = if case .stream(let s) = request { ObjectIdentifier(s) } else { nil }
        workers.withLock { w in
            w.threads += 1
            if tracked { w.tracked += 1 }
            if let key { w.connections[key] = request.socket }
        }
        let done: @Sendable () -> Void = { [workers, key] in
            workers.update { w in
                w.threads -= 1
                if tracked { w.tracked -= 1 }
                if let key { w.connections[key] = nil }
            }
        }
        do {
            let hop = ThreadHop(self)
            try Threads.spawn(stackSize: threadStackSize) {
                hop.value.processRequestThread(request, clientAddress: clientAddress)
                done()
            }
        } catch {
            done()
            throw error
        }
    }

    /// The body of a handler thread (Python's `process_request_thread`).
    func processRequestThread(_ request: Request, clientAddress: SocketAddress) {
        do {
            try finishRequest(request, clientAddress: clientAddress)
        } catch {
            handleError(error, request: request, clientAddress: clientAddress)
        }
        shutdownRequest(request)
    }

    // MARK: - Processes

    /// The child processes serving requests now.
    public var activeChildren: Set<pid_t> { workers.withLock { $0.children } }

    /// In the child: what of the parent's it should not keep (the listening
    /// socket of a stream server).
    func releaseInChild() {}

    private func forkChild(_ request: Request, clientAddress: SocketAddress) throws {
        collectChildren()
        fflush(nil)
        let pid = fork()
        if pid < 0 { throw SocketError.fromErrno("fork") }
        if pid == 0 {
            // The child: serve this one request, then _exit. It never returns
            // into the parent's loop, and runs no atexit handlers.
            SignalWatcher.resetInChild()
            releaseInChild()
            var status: Int32 = 0
            do {
                try finishRequest(request, clientAddress: clientAddress)
            } catch {
                status = 1
                handleError(error, request: request, clientAddress: clientAddress)
            }
            shutdownRequest(request)
            fflush(nil)
            _exit(status)
        }
        workers.update { _ = $0.children.insert(pid) }
        closeRequest(request)
    }

    /// Reaps finished children; with more than ``maxChildren`` running,
    /// first waits until one ends. `blocking` waits for all of them.
    public func collectChildren(blocking: Bool = false) {
        while workers.withLock({ $0.children.count }) >= maxChildren {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid > 0 {
                workers.update { _ = $0.children.remove(pid) }
            } else if Sys.errno == ECHILD {
                workers.update { $0.children.removeAll() }
            } else if Sys.errno != EINTR {
                break
            }
        }
        for pid in workers.withLock({ $0.children }) {
            var status: Int32 = 0
            var r: pid_t
            repeat { r = waitpid(pid, &status, blocking ? 0 : WNOHANG) } while r < 0 && Sys.errno == EINTR
            if r == pid || (r < 0 && Sys.errno == ECHILD) {
                workers.update { _ = $0.children.remove(pid) }
            }
        }
    }

    /// Reaps children until none is left or the deadline passes; returns
    /// whether none is left.
    private func reapChildren(until deadline: UInt64) -> Bool {
        while true {
            collectChildren()
            if workers.withLock({ $0.children.isEmpty }) { return true }
            if Sys.monotonicNanos() >= deadline { return false }
            Sys.sleep(nanos: 5_000_000)
        }
    }
}

/// Python's `with server:` block: ``closing(_:)`` closes the server however
/// the block ends.
public protocol ServerClosing: AnyObject {
    func serverClose()
}

extension ServerClosing {
    /// Runs `body` with the server, then closes it, whether `body` returns
    /// or throws (Python's `with server: ...`).
    ///
    /// ```swift
    /// try ThreadingTCPServer(("127.0.0.1", 0), Echo.self).closing { server in
    ///     try server.serveForever()
    /// }
    /// ```
    public func closing<R>(_ body: (Self) throws -> R) rethrows -> R {
        defer { serverClose() }
        return try body(self)
    }
}

/// How a peer is named in log lines: its address, or `unix peer` for an
/// unnamed Unix socket.
func describePeer(_ address: SocketAddress) -> String {
    if address.family == .unix && (address.path ?? "").isEmpty { return "unix peer" }
    return address.description
}

/// The part of a server that other threads may hold: its serving loop's
/// state. `shutdown()` from any thread, a signal watcher, or a test.
public final class ServerControl: Sendable {
    struct Lifecycle: Sendable {
        var serving = false
        var servingThread: pthread_t?
        var shutdownRequested = false
        var closed = false
        var failed = false
        /// For ``BaseServer/closeGracefully(timeout:)``: how long
        /// ``BaseServer/serverClose()`` may still wait for handlers
        /// (monotonic nanoseconds).
        var workerDeadline: UInt64?
        /// The thread running ``BaseServer/closeGracefully(timeout:)``.
        var gracefulThread: pthread_t?
        var gracefulDone = false
    }

    let lifecycle = Locked(Lifecycle())
    let shutdownFlag = Atomic<Bool>(false)
    let wakeup: Wakeup

    init() throws { wakeup = try Wakeup() }

    /// Whether ``BaseServer/serveForever(pollInterval:)`` is running.
    public var isServing: Bool { lifecycle.withLock { $0.serving } }

    /// Stops ``BaseServer/serveForever(pollInterval:)`` and returns once it
    /// has stopped; see ``BaseServer/shutdown()``.
    public func shutdown() {
        let mustWait: Bool = lifecycle.update { s in
            s.shutdownRequested = true
            guard s.serving else { return false }
            shutdownFlag.store(true, ordering: .releasing)
            if let t = s.servingThread, pthread_equal(t, pthread_self()) != 0 { return false }
            return true
        }
        wakeup.signal()
        if mustWait { lifecycle.wait(deadline: nil) { !$0.serving } }
    }
}

/// Carries a server to the thread that serves one of its requests. The
/// server's own state is guarded (see ``BaseServer``); handing it to
/// handler threads is the contract of the threading mix-in, as in Python.
struct ThreadHop<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
