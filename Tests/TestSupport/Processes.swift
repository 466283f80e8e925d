#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer
import Synchronization

/// Serializes making a child's descriptors with spawning it: a tiny spin
/// lock, held only for the few system calls of one spawn, so that no other
/// test's child inherits a pipe end before it is close-on-exec.
public let spawnLock = SpinLock()

/// A lock for a few system calls' time (see ``spawnLock``).
public final class SpinLock: Sendable {
    private let held = Atomic<Bool>(false)
    public init() {}
    public func lock() {
        while !held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
    }
    public func unlock() { held.store(false, ordering: .releasing) }
}

/// Starts `argv` (`program`, or `argv[0]` looked up in PATH with
/// `searchPath`) with `stdin`, `stdout` and `stderr` as its descriptors
/// 0, 1 and 2, every signal unblocked and the ones tests send at their
/// default action, in a process group of its own if asked (so that
/// killing the group kills what it started too). Returns its pid.
public func spawnProcess(_ argv: [String], program: String? = nil, searchPath: Bool = false,
                         stdin: Int32, stdout: Int32, stderr: Int32,
                         environment: [String]? = nil, ownProcessGroup: Bool = false) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for s in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGHUP, SIGUSR1] { sigaddset(&defaults, s) }
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
    if ownProcessGroup {
        posix_spawnattr_setpgroup(&attributes, 0)
        flags |= POSIX_SPAWN_SETPGROUP
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))
    let args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in args { free(p) } }
    let env: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
    defer { for p in env ?? [] { free(p) } }
    let path = program ?? argv[0]
    var pid: pid_t = 0
    let r = (env ?? []).withUnsafeBufferPointer { e in
        let envp = environment == nil ? environ : UnsafeMutablePointer(mutating: e.baseAddress)
        return searchPath ? posix_spawnp(&pid, path, &actions, &attributes, args, envp)
            : posix_spawn(&pid, path, &actions, &attributes, args, envp)
    }
    guard r == 0 else { throw TestFailure("cannot start \(path): \(Errno(r))") }
    return pid
}

/// A `waitpid` status as a shell reports it: the exit code, or 128 + N
/// for a process that signal N ended.
public func exitCode(fromWaitStatus raw: Int32) -> Int32 {
    (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
}

/// Reaps child `pid` if it has ended (`waitpid`, WNOHANG unless `block`):
/// its ``exitCode(fromWaitStatus:)``, or nil while it runs (or when it is
/// not our child).
public func reapChild(_ pid: pid_t, block: Bool = false) -> Int32? {
    var raw: Int32 = 0
    while true {
        let r = waitpid(pid, &raw, block ? 0 : WNOHANG)
        if r == pid { return exitCode(fromWaitStatus: raw) }
        if r < 0 && errno == EINTR { continue }
        return nil
    }
}

private let processCounter = Atomic<Int>(0)

/// A program run by a test (openssl, python3, haproxy,
/// systemd-socket-activate): stdin from a file (or /dev/null), stdout and
/// stderr in files; killed (with its process group, if it has its own)
/// and reaped when dropped.
public final class TestProcess: Sendable {
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String
    private let ownProcessGroup: Bool
    private let status = Locked<Int32?>(nil)

    /// Starts `argv` (looked up in PATH) with `input` as its stdin (nil:
    /// /dev/null), its output in `stdoutPath` and `stderrPath` (nil: the
    /// same file as stdout).
    public init(_ argv: [String], input: String? = nil, environment: [String]? = nil,
                stdoutPath: String, stderrPath: String? = nil, ownProcessGroup: Bool = false) throws {
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath ?? stdoutPath
        self.ownProcessGroup = ownProcessGroup
        var inPath = "/dev/null"
        if let input {
            inPath = stdoutPath + ".in"
            try writeFile(inPath, input)
        }
        spawnLock.lock()
        defer { spawnLock.unlock() }
        let inFD = open(inPath, O_RDONLY | O_CLOEXEC)
        let outFD = open(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let errFD = stderrPath.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? outFD
        defer {
            for fd in Set([inFD, outFD, errFD]) where fd >= 0 { close(fd) }
        }
        guard inFD >= 0, outFD >= 0, errFD >= 0 else { throw TestFailure("cannot open the files of \(argv[0]): \(Errno(errno))") }
        pid = try spawnProcess(argv, searchPath: true, stdin: inFD, stdout: outFD, stderr: errFD,
                               environment: environment, ownProcessGroup: ownProcessGroup)
    }

    /// Starts `argv` with its stdin, stdout and stderr in files of
    /// `directory` (`procN.in`, `procN.out`, `procN.err`).
    public convenience init(_ argv: [String], input: String? = nil, environment: [String]? = nil,
                            directory: String, ownProcessGroup: Bool = false) throws {
        let n = processCounter.add(1, ordering: .relaxed).newValue
        try self.init(argv, input: input, environment: environment, stdoutPath: "\(directory)/proc\(n).out",
                      stderrPath: "\(directory)/proc\(n).err", ownProcessGroup: ownProcessGroup)
    }

    deinit { kill() }

    /// What it wrote to stdout so far.
    public var stdout: String { readTextFile(stdoutPath) ?? "" }
    /// What it wrote to stderr so far.
    public var stderr: String { readTextFile(stderrPath) ?? "" }

    /// Its exit code once it has ended (reaped here), else nil.
    public func exitStatus() -> Int32? {
        status.withLock { s in
            if s == nil { s = reapChild(pid) }
            return s
        }
    }

    /// Whether it still runs.
    public var isRunning: Bool { exitStatus() == nil }

    /// Waits for the end (at most `seconds`; then kills it): the exit code, -1 if killed.
    @discardableResult
    public func wait(_ seconds: Double = 30) -> Int32 {
        if eventually(seconds, { exitStatus() != nil }) { return exitStatus()! }
        kill()
        return -1
    }

    /// Waits (at most `seconds`) until stdout contains `text`; false if it ends first.
    public func waitForOutput(_ text: String, _ seconds: Double = 20) -> Bool {
        eventually(seconds) { stdout.contains(text) || exitStatus() != nil } && stdout.contains(text)
    }

    /// Kills it (SIGKILL; its whole group if it has its own) and reaps it.
    public func kill() {
        guard exitStatus() == nil else { return }
        if ownProcessGroup { _ = Glibc.kill(-pid, SIGKILL) }
        _ = Glibc.kill(pid, SIGKILL)
        _ = eventually(10) { exitStatus() != nil }
    }
}

/// Runs `argv` (looked up in PATH) to its end, at most `timeout` seconds,
/// its files in `directory`: the exit code (-1 if it had to be killed),
/// stdout and stderr.
public func runToEnd(_ argv: [String], input: String? = nil, directory: String, timeout: Double = 30) throws
    -> (status: Int32, stdout: String, stderr: String) {
    let process = try TestProcess(argv, input: input, directory: directory)
    let status = process.wait(timeout)
    return (status, process.stdout, process.stderr)
}

/// The full path of `program`: on PATH, or in the sbin directories a
/// non-root PATH often lacks (haproxy is in /usr/sbin); nil if absent.
public func programPath(_ program: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? ""
    let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    return dirs.map { "\($0)/\(program)" }.first { access($0, X_OK) == 0 }
}

/// Whether `program` is installed (see ``programPath(_:)``).
public func haveProgram(_ program: String) -> Bool { programPath(program) != nil }

/// Whether all of `programs` are installed.
public func havePrograms(_ programs: String...) -> Bool { programs.allSatisfy(haveProgram) }

/// Whether this test binary runs under the thread sanitizer, which does
/// not support fork() in a process with threads (its children hang): the
/// forking cases are left out there and run in the plain `swift test`.
public let underThreadSanitizer: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

/// Whether this test binary runs under a sanitizer (thread or address):
/// resident memory then measures the sanitizer's shadow memory too.
public let underSanitizer: Bool = underThreadSanitizer || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
