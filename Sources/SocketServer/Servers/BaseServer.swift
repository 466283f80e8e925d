import Synchronization

/// The request loop and its hooks: Python's `socketserver.BaseServer`.
///
/// Methods for the caller:
///
/// - `init(serverAddress:handler:)`
/// - ``serveForever(pollInterval:)``, ``serveInBackground(pollInterval:)``
/// - ``shutdown()``
/// - ``handleRequest()``  (when not using `serveForever`)
/// - ``serverClose()``, ``closing(_:)`` (Python's `with` block),
///   ``closeGracefully(timeout:)``, ``drain(delay:grace:)``
/// - ``stats``, ``control`` (its ``ServerControl/state``), ``fileno``
///
/// Methods that may be overridden:
///
/// - ``serverBind()``, ``serverActivate()``
/// - ``getRequest()``
/// - ``verifyRequest(_:clientAddress:)``
/// - ``processRequest(_:clientAddress:)``, ``finishRequest(_:clientAddress:)``
/// - ``shutdownRequest(_:)``, ``closeRequest(_:)``
/// - ``rejectRequest(_:clientAddress:reason:)``
/// - ``connectionOpened(_:)``, ``connectionClosed(_:)``
/// - ``handleError(_:request:clientAddress:)``, ``handleTimeout()``
/// - ``serviceActions()``
/// - ``serverClose()``
///
/// Settings (override the property in a subclass, as Python sets class
/// attributes): ``timeout`` (an instance property), ``requestQueueSize``,
/// ``allowReuseAddress``, ``allowReusePort``, ``closeTimeout``, and for the
/// mix-ins ``daemonThreads``, ``blockOnClose``, ``threadStackSize``,
/// ``maxChildren``. Set on an instance before serving: ``limits``,
/// ``logSink``, ``connectionStages``.
///
/// A request goes: the socket is readable → ``getRequest()`` →
/// ``connectionOpened(_:)`` → the ``limits`` (a slot, or
/// ``rejectRequest(_:clientAddress:reason:)``) → ``verifyRequest(_:clientAddress:)``
/// → ``processRequest(_:clientAddress:)`` (run here, in a thread, or in a
/// child, as the mix-in decides) → ``finishRequest(_:clientAddress:)`` (the
/// ``connectionStages``, then the handler's setup, handle, finish) →
/// ``shutdownRequest(_:)`` → ``connectionClosed(_:)``, exactly once.
/// Whatever is thrown on that way reaches
/// ``handleError(_:request:clientAddress:)``, and the server goes on.
///
/// Threads: the server's own state (its address, time-out, lifecycle,
/// workers, counters) is behind locks and atomics, so its methods may be
/// called from handler threads and ``shutdown()`` from anywhere. A
/// subclass that adds state shared by handler threads must guard it
/// (``Locked``), as in Python. `BaseServer` is not declared `Sendable`: an
/// open class can only be `@unchecked Sendable`, and that would make every
/// one-line subclass restate it. To control a server from another thread,
/// use its ``control``, which is `Sendable`, or ``serveInBackground(pollInterval:)``.
open class BaseServer: ServerClosing {
    enum Model { case sync, threads, processes }

    /// The handler class instantiated for each request (Python's `RequestHandlerClass`).
    public let handlerType: BaseRequestHandler.Type
    let model: Model
    let dispatch: any RequestDispatch
    private let addressStorage: Locked<SocketAddress>
    private let timeoutStorage = Locked<Double?>(nil)
    private let settings = Locked(Settings())
    let acceptBackoffNanos = Atomic<UInt64>(0)
    let admission = Locked(Admission())
    let counters = StatsCounters()
    let nextID = Atomic<UInt64>(0)
    /// The record of the request being admitted, for the default
    /// ``processRequest(_:clientAddress:)``: touched by the serving thread only.
    var admitted: ConnectionRecord?
    /// In a forked child: serve without events (the parent reports them).
    var isChild = false
    /// The serving loop's state, shareable with other threads.
    public let control: ServerControl

    struct Settings: Sendable {
        var stages: [any ConnectionStage] = []
        var limits = ConnectionLimits.none
        var filter = AddressFilter.everyone
        var proxy: ProxyProtocolConfig?
        var logSink: any LogSink = TextLogSink()
    }

    /// A server that has no socket of its own (Python's `BaseServer`);
    /// subclasses such as ``TCPServer`` add one.
    public init(serverAddress: SocketAddress, handler: BaseRequestHandler.Type) throws {
        self.handlerType = handler
        self.addressStorage = Locked(serverAddress)
        self.control = try ServerControl()
        let me: AnyClass = Self.self
        if me is any ThreadingMixIn.Type {
            (model, dispatch) = (.threads, ThreadDispatch())
        } else if me is any ForkingMixIn.Type {
            (model, dispatch) = (.processes, ForkDispatch())
        } else {
            (model, dispatch) = (.sync, InlineDispatch())
        }
        control.owner.withLock { $0.server = self }
    }

    deinit {
        if !control.lifecycle.withLock({ $0.closed }) { serverClose() }
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
        get { settings.withLock { $0.stages } }
        set { settings.withLock { $0.stages = newValue } }
    }

    /// Caps on concurrent requests and per-client connections: none by
    /// default (Python's behaviour). Set before serving.
    public var limits: ConnectionLimits {
        get { settings.withLock { $0.limits } }
        set { settings.withLock { $0.limits = newValue } }
    }

    /// Which clients are served (CIDR allow and deny lists): everyone by
    /// default. Applied before any thread or child is spent on a request;
    /// a refused one is closed at once and logged (`refused HOST:PORT`).
    /// Set before serving.
    public var addressFilter: AddressFilter {
        get { settings.withLock { $0.filter } }
        set { settings.withLock { $0.filter = newValue } }
    }

    /// Reading PROXY protocol headers (HAProxy's v1 and v2) from trusted
    /// proxies: see ``ProxyProtocolConfig``. Nil (off) by default; set
    /// before serving. Its ``ProxyProtocolStage`` runs on the connection's
    /// thread before the ``connectionStages``; the ``addressFilter`` and
    /// the per-client cap of ``limits`` then apply to the client the
    /// header names.
    public var proxyProtocol: ProxyProtocolConfig? {
        get { settings.withLock { $0.proxy } }
        set { settings.withLock { $0.proxy = newValue } }
    }

    /// Where the server's log records go: plain lines on standard error by
    /// default (``TextLogSink``); ``LogfmtLogSink`` for `key=value` lines.
    public var logSink: any LogSink {
        get { settings.withLock { $0.logSink } }
        set { settings.withLock { $0.logSink = newValue } }
    }

    /// What the server has done so far: a snapshot, safe to send anywhere.
    public var stats: ServerStats { counters.snapshot(capacity: capacity) }

    /// The most requests served at once: ``ConnectionLimits/maxConnections``
    /// (for a forking server, at most ``maxChildren`` too); nil: no cap.
    var capacity: Int? {
        let cap = limits.maxConnections
        if model == .processes { return min(cap ?? maxChildren, maxChildren) }
        return cap
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

    /// How long ``serverClose()`` waits for handlers with ``blockOnClose``
    /// (seconds; nil: for ever, as Python). 30 by default: then the
    /// connections still open are shut down (a forking server's children
    /// get SIGTERM) and the close waits one more second, so that one idle
    /// client cannot hang the thread that closes or drops the server.
    open var closeTimeout: Double? { 30 }

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
    /// for it (the loop is woken at once). While ``limits`` are full (policy
    /// `.wait`), the loop accepts nothing until a request ends.
    ///
    /// Throws ``ServerError`` for a misuse: ``ServerError/Kind/alreadyServing``
    /// when the loop already runs (on any thread), ``ServerError/Kind/closed``
    /// once the server is closed.
    public func serveForever(pollInterval: Double? = 0.5) throws {
        try serve(pollInterval: pollInterval, whenStarted: {})
    }

    /// ``serveForever(pollInterval:)``, calling `whenStarted` once the loop
    /// is running; throws only if it cannot start (closed, already serving).
    private func serve(pollInterval: Double?, whenStarted: () -> Void) throws {
        try control.apply(.startServing(Sys.currentThread())) { _ in () }
        defer { control.apply(.stoppedServing) }
        whenStarted()
        let millis: Int32 = pollInterval.map { Int32(clamping: Int64(($0 * 1000).rounded(.up))) } ?? -1
        let interval: UInt64? = millis < 0 ? nil : UInt64(millis) * 1_000_000  // negative: no limit, as poll(2) takes it
        while !control.stopFlag.load(ordering: .acquiring) {
            let ready = waitForRequest(timeoutNanos: interval)
            if control.stopFlag.load(ordering: .acquiring) { break }
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
    /// it is serving. Stop it with `control.shutdown()` (or ``shutdown()``).
    /// Throws what `serveForever` would: ``ServerError/Kind/closed`` for a
    /// closed server, ``ServerError/Kind/alreadyServing`` when its loop
    /// already runs; and ``ServerError/Kind/threadStart`` when the thread
    /// cannot be started.
    @discardableResult
    public func serveInBackground(pollInterval: Double? = 0.5) throws -> ServerControl {
        let hop = ThreadHop(self)
        let started = Locked<Result<Void, any Error>?>(nil)
        try Threads.spawn(stackSize: 1 << 20) {
            do {
                try hop.value.serve(pollInterval: pollInterval, whenStarted: { started.update { $0 = .success(()) } })
            } catch {
                started.update { $0 = .failure(error) }
            }
        }
        _ = started.wait(deadline: nil) { $0 != nil }
        if case .failure(let error) = started.withLock({ $0 }) { throw error }
        return control
    }

    /// Handles one request, waiting for it at most ``timeout`` seconds;
    /// calls ``handleTimeout()`` if none came. Throws ``ServerError/Kind/closed``
    /// for a closed server (or one without a socket).
    public func handleRequest() throws {
        var deadline = timeout.map { Deadline.after(nanos: nanos(fromSeconds: $0)) } ?? .none
        let fd = fileno
        guard fd >= 0 else { throw ServerError.closed(operation: "handle request") }
        let outcome: SysOutcome<Int16>
        do { outcome = try Sys.poll(fd, Sys.pollIn, deadline: &deadline) } catch { throw SocketError(error, operation: "poll") }
        if case .done = outcome { handleRequestNoBlock() } else { handleTimeout() }
    }

    /// Waits until the socket is readable or `shutdown` wakes us. While the
    /// limits are full (policy `.wait`), waits on the wake-up alone: a
    /// request that ends wakes it.
    /// `timeoutNanos` nil waits with no limit. A failed poll counts as no
    /// request (the loop goes round again), as it always has.
    private func waitForRequest(timeoutNanos: UInt64?) -> Bool {
        let full = admission.withLock { a in
            guard let capacity, limits.policy == .wait, a.active >= capacity else { return false }
            a.loopWaiting = true
            return true
        }
        let listener = full ? -1 : fileno
        var deadline = timeoutNanos.map { Deadline.after(nanos: $0) } ?? .none
        guard let (woken, readable) = try? Sys.waitReadable(control.wakeup.readFD, listener, deadline: &deadline) else {
            return false
        }
        if woken { control.wakeup.drain() }
        return readable
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
        let record = admitted ?? ConnectionRecord(id: nextID.add(1, ordering: .relaxed).newValue, clientAddress: clientAddress,
                                                  acceptedAt: Sys.monotonicNanos(), clientKey: nil, socket: nil)
        admitted = nil
        try dispatch.process(request, record: record, server: self)
    }

    /// Runs the handler: the ``connectionStages`` first, for a stream
    /// connection (on this, the connection's thread), then the handler's
    /// setup, handle and finish. The handler sees the context's client
    /// address (a PROXY header's source) and streams. A ``ConnectionContext``
    /// is made only when something runs before the handler (stages, or a
    /// trusted PROXY peer); otherwise the handler's `context` is nil.
    ///
    /// With ``proxyProtocol``, a trusted peer's header is read first; a
    /// proxy's health check that closes before or right after its header
    /// is not an error (nothing reaches ``handleError(_:request:clientAddress:)``).
    open func finishRequest(_ request: Request, clientAddress: SocketAddress) throws {
        let slot = CurrentConnection.slot
        var context: ConnectionContext?
        if case .stream = request {
            let proxy = proxyProtocol.flatMap { $0.trusts(clientAddress) ? $0 : nil }
            let stages = connectionStages
            if proxy != nil || !stages.isEmpty {
                let made = ConnectionContext(socket: request.socket, peerAddress: clientAddress)
                made.id = slot?.pointee.id ?? 0
                slot?.pointee.context = made
                context = made
                if let proxy {
                    do {
                        try ProxyProtocolStage(proxy).prepare(made, server: self)
                    } catch let error as ProxyProtocolError where error.isHealthCheck {
                        made.isHealthCheck = true
                        return
                    }
                    if !made.isHealthCheck { try admitProxied(made) }
                }
                for stage in stages { try stage.prepare(made, server: self) }
            }
        }
        let handler = handlerType.init(request: request, clientAddress: context?.clientAddress ?? clientAddress, server: self)
        handler.context = context
        defer {
            if let slot {
                let traffic = handler.traffic
                slot.pointee.bytesIn = traffic.received
                slot.pointee.bytesOut = traffic.sent
            }
        }
        try handler.run()
    }

    /// Ends a request: for streams, shuts down the write side (so the peer
    /// sees end of file at once), then ``closeRequest(_:)``.
    open func shutdownRequest(_ request: Request) { closeRequest(request) }

    /// Releases a request's resources. Base: nothing.
    open func closeRequest(_ request: Request) {}

    /// Refuses a request on the accepting thread, before any thread or
    /// process is spent on it: over the ``limits``, or not verified. Base:
    /// closes it (``shutdownRequest(_:)``). An override may first send one
    /// short line (under a short send time-out, so that a client that does
    /// not read cannot hold up the loop), and should then call `super`.
    open func rejectRequest(_ request: Request, clientAddress: SocketAddress, reason: RejectReason) {
        shutdownRequest(request)
    }

    /// Called once for each accepted request, on the accepting thread,
    /// before anything else is done with it. Base: nothing.
    open func connectionOpened(_ connection: ConnectionInfo) {}

    /// Called once for each accepted request when it has ended (on the
    /// thread that served it; for a refused one, the accepting thread; for
    /// a forking server, the parent, when the child is reaped). Base: logs
    /// an `event=connection.closed` record (no line in the text format).
    open func connectionClosed(_ summary: ConnectionSummary) {
        logSink.log(closedRecord(summary))
    }

    /// Reports an error raised while serving a request (or accepting one,
    /// when `request` is nil) and lets the server go on. Default: one line
    /// on the ``logSink``; a peer that simply went away (reset, broken
    /// pipe, time-out) is reported quietly, at debug level.
    open func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        let who = clientAddress.map(describePeer) ?? "server"
        var fields: [LogField] = clientAddress.map { [LogField("peer", describePeer($0))] } ?? []
        fields.append(LogField("error", "\(error)"))
        if case .peerGone = ConnectionOutcome(error) {
            logSink.log(LogRecord(level: .debug, event: "request.peer_gone", message: "\(who): connection closed: \(error)", fields: fields))
        } else if case .timedOut = ConnectionOutcome(error) {
            logSink.log(LogRecord(level: .debug, event: "request.timed_out", message: "\(who): connection closed: \(error)", fields: fields))
        } else if request == nil {
            logSink.log(LogRecord(level: .error, event: "accept.error", message: "error: \(who): \(error)", fields: fields))
        } else {
            logSink.log(LogRecord(level: .error, event: "request.error", message: "error: request from \(who) failed: \(error)", fields: fields))
        }
    }

    /// Called by ``handleRequest()`` when no request came within ``timeout``.
    /// Base: reaps finished children of a forking server.
    open func handleTimeout() { dispatch.serviceActions(self) }

    /// Called once per turn of the serving loop. Base: reaps finished
    /// children of a forking server. Overrides should call `super`.
    open func serviceActions() { dispatch.serviceActions(self) }

    /// Cleans up: stops a running loop, then (mix-ins, with
    /// ``blockOnClose``) waits for handler threads or child processes, at
    /// most ``closeTimeout`` seconds: then the connections still open are
    /// shut down (children get SIGTERM) and it waits one more second.
    /// ``TCPServer`` also closes its socket. Safe to call more than once;
    /// called when the server is dropped.
    open func serverClose() { closeServer() }

    /// Releases the listening socket (``TCPServer``; Unix servers also
    /// remove their socket file). Base: nothing.
    func releaseListener() {}

    /// In the child: what of the parent's it should not keep (the listening
    /// socket of a stream server).
    func releaseInChild() {}

    // MARK: - Workers

    /// How many handler threads are running now.
    public var activeThreadCount: Int { (dispatch as? ThreadDispatch)?.activeCount ?? 0 }

    /// The child processes serving requests now.
    public var activeChildren: Set<Int32> {
        guard let fork = dispatch as? ForkDispatch else { return [] }
        return Set(fork.children.withLock { $0.keys })
    }

    /// Reaps finished children; with more than ``maxChildren`` running,
    /// first waits until one ends. `blocking` waits for all of them.
    public func collectChildren(blocking: Bool = false) {
        (dispatch as? ForkDispatch)?.collect(self, blocking: blocking)
    }
}

/// How a peer is named in log lines: its address, or `unix peer` for an
/// unnamed Unix socket.
func describePeer(_ address: SocketAddress) -> String {
    if address.family == .unix && (address.path ?? "").isEmpty { return "unix peer" }
    return address.description
}
