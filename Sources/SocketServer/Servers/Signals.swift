#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Turns signals into a call on an ordinary thread: the signal handler only
/// writes the signal number to a pipe (async-signal-safe); a watcher thread
/// reads it and runs the registered actions.
enum SignalWatcher {
    private static let pipeWrite = Atomic<Int32>(-1)
    private static let actions = Mutex<[Int32: [@Sendable (Int32) -> Void]]>([:])
    private static let started = Mutex<Bool>(false)

    static func on(_ signals: [Int32], _ action: @escaping @Sendable (Int32) -> Void) throws {
        try start()
        actions.withLock { table in
            for signo in signals { table[signo, default: []].append(action) }
        }
        for signo in signals {
            var sa = sigaction()
            #if os(Linux)
            sa.__sigaction_handler.sa_handler = { signo in
                var byte = UInt8(truncatingIfNeeded: signo)
                _ = write(SignalWatcher.pipeWrite.load(ordering: .relaxed), &byte, 1)
            }
            #else
            sa.__sigaction_u.__sa_handler = { signo in
                var byte = UInt8(truncatingIfNeeded: signo)
                _ = write(SignalWatcher.pipeWrite.load(ordering: .relaxed), &byte, 1)
            }
            #endif
            sa.sa_flags = Int32(SA_RESTART)
            sigemptyset(&sa.sa_mask)
            if sigaction(signo, &sa, nil) != 0 { throw SocketError.fromErrno("sigaction(\(signo))") }
        }
    }

    private static func start() throws {
        try started.withLock { started in
            if started { return }
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw SocketError.fromErrno("pipe") }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
            let readFD = fds[0]
            pipeWrite.store(fds[1], ordering: .relaxed)
            try Threads.spawn(stackSize: 256 * 1024) {
                var byte: UInt8 = 0
                while true {
                    let n = read(readFD, &byte, 1)
                    if n < 0 && Sys.errno == EINTR { continue }
                    if n <= 0 { return }
                    let signo = Int32(byte)
                    for action in actions.withLock({ $0[signo] ?? [] }) { action(signo) }
                }
            }
            started = true
        }
    }
}

extension BaseServer {
    /// Makes these signals (SIGINT and SIGTERM by default) stop
    /// ``serveForever(pollInterval:)``, as ``shutdown()`` would: the loop
    /// returns in the thread that called it, which then closes the server
    /// (``closeGracefully(timeout:)`` for a service). `then` runs after the
    /// loop stopped, on a watcher thread.
    public func shutdownOnSignals(_ signals: [Int32] = [SIGINT, SIGTERM],
                                  then: (@Sendable (Int32) -> Void)? = nil) throws {
        let control = self.control
        try SignalWatcher.on(signals) { signo in
            control.shutdown()
            then?(signo)
        }
    }
}
