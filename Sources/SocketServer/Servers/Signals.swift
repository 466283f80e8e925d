import Synchronization

/// Turns signals into a call on an ordinary thread: the signal handler only
/// writes the signal number to a pipe (async-signal-safe); a watcher thread
/// reads it and runs the registered actions.
enum SignalWatcher {
    private static let pipeWrite = Atomic<Int32>(-1)
    private static let actions = Locked<[Int32: [@Sendable (Int32) -> Void]]>([:])
    private static let started = Locked<Bool>(false)
    /// The signals we handle, as a bit mask: read lock-free in a forked child.
    private static let installed = Atomic<UInt64>(0)

    /// In a forked child: give the watched signals back their default
    /// action, so that SIGTERM ends the child instead of being passed to a
    /// watcher thread that does not exist there. Async-signal-safe.
    static func resetInChild() {
        let mask = installed.load(ordering: .relaxed)
        guard mask != 0 else { return }
        for signo in 1..<64 where mask & (1 << UInt64(signo)) != 0 {
            Sys.defaultSignal(Int32(signo))
        }
    }

    static func on(_ signals: [Int32], _ action: @escaping @Sendable (Int32) -> Void) throws {
        try start()
        actions.withLock { table in
            for signo in signals { table[signo, default: []].append(action) }
        }
        for signo in signals {
            // The handler only writes the number to the pipe (async-signal-safe).
            try Sys.onSignal(signo) { signo in
                Sys.writeFromSignalHandler(SignalWatcher.pipeWrite.load(ordering: .relaxed), UInt8(truncatingIfNeeded: signo))
            }
            if signo > 0 && signo < 64 { installed.bitwiseOr(1 << UInt64(signo), ordering: .relaxed) }
        }
    }

    private static func start() throws {
        try started.withLock { started in
            if started { return }
            let fds = try Sys.pipe(nonBlockingWrite: true)
            let readFD = fds.read
            pipeWrite.store(fds.write, ordering: .relaxed)
            try Threads.spawn(stackSize: 256 * 1024) {
                var byte: UInt8 = 0
                while true {
                    let n = try? withUnsafeMutableBytes(of: &byte) { (raw) throws(Errno) in try Sys.read(readFD, raw) }
                    guard let n, n > 0 else { return }
                    let signo = Int32(byte)
                    for action in actions.withLock({ $0[signo] ?? [] }) { action(signo) }
                }
            }
            started = true
        }
    }
}

extension BaseServer {
    /// Makes these signals (SIGINT and SIGTERM by default) stop the server.
    ///
    /// Without a grace period, a signal stops ``serveForever(pollInterval:)``
    /// as ``shutdown()`` would, and the thread that called it goes on (to
    /// close the server). With `gracePeriod`, a signal runs
    /// ``closeGracefully(timeout:)``: accepting stops and the listening socket
    /// closes at once, the requests in progress have up to `gracePeriod`
    /// seconds (the close ends as soon as the last one does), the rest are
    /// cut; `serveForever` returns meanwhile, and a ``serverClose()`` called
    /// then waits for that close to finish. That is how a service stops:
    ///
    /// ```swift
    /// try server.shutdownOnSignals(gracePeriod: 2)
    /// try server.serveForever()
    /// server.serverClose()   // returns once the graceful close is done
    /// ```
    ///
    /// `then` runs afterwards, on the watcher thread. Signals after the
    /// first change nothing. A forked child gets the default action back.
    public func shutdownOnSignals(_ signals: [Int32] = DefaultSignals.stop, gracePeriod: Double? = nil,
                                  then: (@Sendable (Int32) -> Void)? = nil) throws {
        let control = self.control
        let hop = ThreadHop(self)
        let fired = Atomic<Bool>(false)
        try SignalWatcher.on(signals) { [fired] signo in
            guard !fired.exchange(true, ordering: .relaxed) else { return }
            if let gracePeriod {
                hop.value.closeGracefully(timeout: gracePeriod)
            } else {
                control.shutdown()
            }
            then?(signo)
        }
    }
}
