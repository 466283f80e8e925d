// Processes, signals and files: the libc calls of the servers (forking,
// reaping, signal handling, Unix socket files), for the Servers layer to
// call instead of libc.

#if canImport(Glibc)
@preconcurrency import Glibc
internal import CSocketServer
#endif

/// A process id (`pid_t`).
typealias ProcessID = pid_t

/// The signals a public API names in its default arguments (which may
/// only use what is usable from inline code).
@usableFromInline enum DefaultSignals {
    /// SIGINT (Ctrl-C) and SIGTERM (a service manager's stop).
    @usableFromInline static let stop: [Int32] = [SIGINT, SIGTERM]
}

extension Sys {
    // MARK: - Processes

    /// fork(2): 0 in the child, the child's id in the parent. Standard I/O
    /// buffers are flushed first, so that the child does not write the
    /// parent's pending output again.
    static func fork() throws(Errno) -> ProcessID {
        fflush(nil)
        return try call("fork") { Glibc.fork() }
    }

    /// Ends the calling (child) process at once: no atexit handlers, no
    /// unwinding into the parent's code. Standard I/O is flushed first.
    static func exitChild(_ status: Int32) -> Never {
        fflush(nil)
        _exit(status)
    }

    /// What ``reap(_:block:)`` found.
    enum Reaped: Equatable {
        /// That child (or, for any child, this one) has ended, with its
        /// waitpid status (0: exited with status 0).
        case ended(ProcessID, status: Int32)
        /// Still running (only without `block`).
        case running
        /// No such child: already reaped, or never ours (ECHILD).
        case noChild
    }

    /// waitpid(2) for `pid` (-1: any child), retrying EINTR.
    static func reap(_ pid: ProcessID, block: Bool) throws(Errno) -> Reaped {
        var status: Int32 = 0
        do {
            let r = try call("waitpid") { waitpid(pid, &status, block ? 0 : WNOHANG) }
            return r == 0 ? .running : .ended(r, status: status)
        } catch where error.rawValue == ECHILD {
            return .noChild
        }
    }

    /// Sends `signal` to process `pid` (kill(2)); a process already gone
    /// (ESRCH) is not an error.
    static func kill(_ pid: ProcessID, _ signal: Int32) throws(Errno) {
        do {
            _ = try call("kill") { Glibc.kill(pid, signal) }
        } catch where error.rawValue == ESRCH {}
    }

    /// The id of the calling process.
    static var processID: ProcessID { getpid() }

    // MARK: - Signals

    /// `SIGTERM`: a service manager's stop.
    static let signalTerminate = SIGTERM
    /// `SIGKILL`.
    static let signalKill = SIGKILL

    /// A C signal handler.
    typealias SignalHandler = @convention(c) (Int32) -> Void

    /// Installs `handler` for `signal` (sigaction(2), SA_RESTART, nothing
    /// else blocked while it runs).
    static func onSignal(_ signal: Int32, _ handler: SignalHandler) throws(Errno) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = handler
        sa.sa_flags = Int32(SA_RESTART)
        sigemptyset(&sa.sa_mask)
        _ = try call("sigaction") { sigaction(signal, &sa, nil) }
    }

    /// Writes one byte to `fd` from a signal handler: one write(2), nothing
    /// that allocates or locks, and the interrupted code's `errno` put back.
    static func writeFromSignalHandler(_ fd: Int32, _ byte: UInt8) {
        let saved = Glibc.errno
        var b = byte
        _ = Glibc.write(fd, &b, 1)
        Glibc.errno = saved
    }

    /// Gives `signal` back its default action. Async-signal-safe (for a
    /// forked child before it does anything else).
    static func defaultSignal(_ signal: Int32) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = SIG_DFL
        sigemptyset(&sa.sa_mask)
        _ = sigaction(signal, &sa, nil)
    }

    /// A pipe, both ends close-on-exec; the write end non-blocking when asked.
    static func pipe(nonBlockingWrite: Bool = false) throws(Errno) -> (read: Int32, write: Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(Errno) -> Int32 in
            let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try call("pipe2") { csocketserver_pipe2(p, O_CLOEXEC) }
        }
        if nonBlockingWrite {
            do { try setNonBlocking(fds.1, true) } catch { close(fds.0); close(fds.1); throw error }
        }
        return fds
    }

    // MARK: - Files

    /// A file's identity (device and inode) and whether it is a socket, as
    /// lstat(2) sees it; nil when there is no such file.
    static func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64, isSocket: Bool)? {
        var st = stat()
        guard (try? call("lstat", { lstat(path, &st) })) != nil else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino), (st.st_mode & S_IFMT) == S_IFSOCK)
    }

    /// Removes a file (unlink(2)).
    static func unlink(_ path: String) throws(Errno) {
        _ = try call("unlink") { Glibc.unlink(path) }
    }
}
