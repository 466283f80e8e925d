// The way of one request through the server: accept, admission, dispatch,
// the handler, and the end that every accepted request reaches once.
extension BaseServer {
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
        let id = nextID.add(1, ordering: .relaxed).newValue
        let now = Sys.monotonicNanos()
        let streamSocket: Socket? = if case .stream(let s) = request { s } else { nil }
        if !isChild { connectionOpened(ConnectionInfo(id: id, clientAddress: client, acceptedAt: now)) }
        counters.opened()
        // An accepted connection is served even if shutdown() came meanwhile
        // (as Python's): a listener handed to another process loses nothing.
        var limits = self.limits
        let capacity = self.capacity
        if streamSocket != nil, let proxy = proxyProtocol, proxy.trusts(client) {
            // The filter and the per-client cap apply to the client its
            // header names, on the connection's thread (admitProxied).
            limits.maxPerClient = nil
        } else if !addressFilter.allows(client) {
            refuse(request, ConnectionRecord(id: id, clientAddress: client, acceptedAt: now, clientKey: nil, socket: streamSocket),
                   reason: .addressFilter)
            return
        }
        var verdict = admission.withLock { $0.admit(client, limits: limits, capacity: capacity) }
        if case .full = verdict {
            // Only handleRequest() gets here (serveForever waits for a slot
            // before accepting): wait for one.
            admission.wait(deadline: nil) { a in capacity.map { a.active < $0 } ?? true }
            verdict = admission.withLock { $0.admit(client, limits: limits, capacity: capacity) }
        }
        guard case .admitted(let key) = verdict else {
            let reason: RejectReason = if case .rejected(let r) = verdict { r } else { .capacity }
            refuse(request, ConnectionRecord(id: id, clientAddress: client, acceptedAt: now, clientKey: nil, socket: streamSocket),
                   reason: reason)
            return
        }
        let record = ConnectionRecord(id: id, clientAddress: client, acceptedAt: now, clientKey: key, socket: streamSocket)
        do {
            if try verifyRequest(request, clientAddress: client) {
                admitted = record
                try processRequest(request, clientAddress: client)
            } else {
                shutdownRequest(request)
                endRequest(record, outcome: .refused(.verifyRequest))
            }
        } catch {
            // It never started (a thread or child could not be made).
            admitted = nil
            handleError(error, request: request, clientAddress: client)
            shutdownRequest(request)
            endRequest(record, outcome: ConnectionOutcome(error))
        }
    }

    /// A request refused before it holds a slot.
    private func refuse(_ request: Request, _ record: ConnectionRecord, reason: RejectReason) {
        logRefusal(record.clientAddress, reason: reason, id: record.id)
        rejectRequest(request, clientAddress: record.clientAddress, reason: reason)
        finishEvents(record, outcome: .refused(reason))
    }

    /// `refused HOST:PORT` (address filter) or `refused HOST:PORT: REASON`.
    func logRefusal(_ client: SocketAddress, reason: RejectReason, id: UInt64) {
        let peer = describePeer(client)
        let message = reason == .addressFilter ? "refused \(peer)" : "refused \(peer): \(reason)"
        logSink.log(LogRecord(level: .info, event: "connection.refused", message: message,
                              fields: [LogField("peer", peer), LogField("reason", reason.rawValue)], connectionID: id))
    }

    /// The second check of a connection that came through a trusted proxy:
    /// the ``addressFilter`` and the per-client cap, for the client its
    /// PROXY header names. Throws a ``Refusal`` to refuse it.
    func admitProxied(_ context: ConnectionContext) throws {
        let client = context.clientAddress
        guard context.proxyHeader != nil, client != context.peerAddress else { return }
        if !addressFilter.allows(client) { throw Refusal(reason: .addressFilter) }
        let limits = self.limits
        guard let cap = limits.maxPerClient, let key = ClientKey(client, ipv6PrefixLength: limits.ipv6PrefixLength) else { return }
        let admitted = admission.withLock { a -> Bool in
            if a.perClient[key, default: 0] >= cap { return false }
            a.perClient[key, default: 0] += 1
            return true
        }
        guard admitted else { throw Refusal(reason: .perClientLimit) }
        context.clientKey = key
    }

    /// The accept errors a long-running server meets and survives: reported,
    /// then retried after a short pause that grows while they last (5 ms up
    /// to 1 s), so descriptor exhaustion neither spins nor stops the server.
    private func acceptFailed(_ error: any Error) {
        if let e = error as? SocketError {
            if e.errno == .badFileDescriptor && !(fileno >= 0) { return }  // closed under us
            if e.errno == .wouldBlock { return }  // another thread or process took it
        }
        counters.acceptErrors.add(1, ordering: .relaxed)
        handleError(error, request: nil, clientAddress: nil)
        if let e = error as? SocketError, e.errno == .connectionAborted { return }  // that one connection only
        let previous = acceptBackoffNanos.load(ordering: .relaxed)
        let pause = min(max(previous * 2, 5_000_000), 1_000_000_000)
        acceptBackoffNanos.store(pause, ordering: .relaxed)
        // Sleep on the wake-up descriptor, so shutdown() still ends it at once.
        var deadline = Deadline.after(nanos: pause)
        _ = try? Sys.poll(control.wakeup.readFD, Sys.pollIn, deadline: &deadline)
    }

    /// Serves an admitted request on the calling thread: the handler, the
    /// error report, ``shutdownRequest(_:)``, and the request's end. Returns
    /// whether it completed without an error.
    @discardableResult
    func runRequest(_ request: Request, record: ConnectionRecord) -> Bool {
        var slot = ConnectionSlot(id: record.id)
        var outcome = ConnectionOutcome.completed
        do {
            try CurrentConnection.with(&slot) {
                try finishRequest(request, clientAddress: record.clientAddress)
            }
        } catch {
            outcome = ConnectionOutcome(error)
            let client = slot.context?.clientAddress ?? record.clientAddress
            if let refusal = error as? Refusal {
                logRefusal(client, reason: refusal.reason, id: record.id)
            } else if !((slot.context?.isHealthCheck ?? false) && outcome.isQuiet) {
                // A health check that closes right after its header is not news.
                handleError(error, request: request, clientAddress: client)
            }
        }
        if let context = slot.context, context.stream !== context.socket { context.stream.finishStream() }
        shutdownRequest(request)
        endRequest(record, outcome: outcome, slot: slot)
        if case .completed = outcome { return true }
        return false
    }

    /// The body of a handler thread (Python's `process_request_thread`).
    func processRequestThread(_ request: Request, record: ConnectionRecord) {
        runRequest(request, record: record)
    }

    /// Ends an admitted request: its counters, its slot back, its event.
    func endRequest(_ record: ConnectionRecord, outcome: ConnectionOutcome, slot: ConnectionSlot? = nil) {
        if isChild { return }  // the parent ends it when it reaps the child
        let summary = self.summary(record, outcome: outcome, slot: slot)
        let context = slot?.context
        counters.closed(summary)
        let wake = admission.withLock { a -> Bool in
            if let proxied = context?.clientKey { a.releasePerClient(proxied) }
            return a.release(record.clientKey)
        }
        if wake { control.wakeup.signal() }
        connectionClosed(summary)
    }

    /// Ends a request that never held a slot (refused).
    private func finishEvents(_ record: ConnectionRecord, outcome: ConnectionOutcome) {
        guard !isChild else { return }
        let summary = self.summary(record, outcome: outcome, slot: nil)
        counters.closed(summary)
        connectionClosed(summary)
    }

    private func summary(_ record: ConnectionRecord, outcome: ConnectionOutcome, slot: ConnectionSlot?) -> ConnectionSummary {
        let context = slot?.context
        return ConnectionSummary(
            id: record.id, clientAddress: context?.clientAddress ?? record.clientAddress,
            proxyAddress: context?.proxyAddress, duration: Double(Sys.monotonicNanos() &- record.acceptedAt) / 1e9,
            bytesIn: slot?.bytesIn ?? 0, bytesOut: slot?.bytesOut ?? 0, outcome: outcome,
            isHealthCheck: context?.isHealthCheck ?? false, fields: context?.logFields ?? [])
    }

    /// The `connection.closed` record of a summary.
    func closedRecord(_ s: ConnectionSummary) -> LogRecord {
        var fields = [LogField("peer", describePeer(s.clientAddress))]
        if let via = s.proxyAddress { fields.append(LogField("via", describePeer(via))) }
        fields.append(LogField("duration_ms", String(Int((s.duration * 1000).rounded()))))
        fields.append(LogField("in", String(s.bytesIn)))
        fields.append(LogField("out", String(s.bytesOut)))
        fields.append(LogField("outcome", s.outcome.name))
        if case .refused(let reason) = s.outcome { fields.append(LogField("reason", reason.rawValue)) }
        if case .failed(let error) = s.outcome { fields.append(LogField("error", "\(error)")) }
        fields += s.fields
        let level: LogLevel
        switch s.outcome {
        case _ where s.isHealthCheck: level = .debug
        case .peerGone: level = .debug
        case .failed: level = .warning
        default: level = .info
        }
        return LogRecord(level: level, event: "connection.closed", message: nil, fields: fields, connectionID: s.id, summary: s)
    }
}

extension ConnectionOutcome {
    /// A peer that went away or went silent: reported at debug level.
    var isQuiet: Bool {
        switch self {
        case .peerGone, .timedOut, .completed: return true
        default: return false
        }
    }
}
