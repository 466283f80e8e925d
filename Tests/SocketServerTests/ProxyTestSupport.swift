#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing

/// What a handler behind a proxy saw.
struct SeenConnection: Sendable {
    var client: SocketAddress
    var proxy: SocketAddress?
    var header: ProxyHeader?
    var healthCheck: Bool
}

/// A threading server that records its connections and errors.
final class ProxyRecordingServer: ThreadingTCPServer {
    let seen = Locked<[SeenConnection]>([])
    let errors = Locked<[String]>([])
    override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        errors.withLock { $0.append("\(clientAddress.map { "\($0)" } ?? "-"): \(error)") }
    }
}

/// Answers each line with `CLIENT LINE`: the client address the handler sees.
final class ClientEchoHandler: StreamRequestHandler {
    override func handle() throws {
        let server = server as! ProxyRecordingServer
        server.seen.withLock {
            $0.append(SeenConnection(client: clientAddress, proxy: proxyAddress, header: proxyHeader, healthCheck: isHealthCheck))
        }
        while let line = try rfile.readLine() {
            try wfile.write(Array("\(clientAddress) ".utf8) + line)
        }
    }
}

/// A program started for a test (haproxy, systemd-socket-activate): its
/// own process group, output in a file, killed and reaped by `stop()`.
final class ChildProcess {
    let pid: pid_t
    let outputPath: String
    private var status: Int32?

    init(_ argv: [String], environment: [String]? = nil, outputPath: String) throws {
        self.outputPath = outputPath
        let out = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(out); close(null) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, null, 0)
        posix_spawn_file_actions_adddup2(&actions, out, 1)
        posix_spawn_file_actions_adddup2(&actions, out, 2)
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
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let args: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in args { free(p) } }
        let env: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer { for p in env ?? [] { free(p) } }
        var pid: pid_t = 0
        let r = env.map { e in posix_spawnp(&pid, argv[0], &actions, &attributes, args, e) }
            ?? posix_spawnp(&pid, argv[0], &actions, &attributes, args, environ)
        guard r == 0 else { throw SocketError.system(Errno(r), operation: "spawn \(argv[0])", address: nil) }
        self.pid = pid
    }

    deinit { stop() }

    /// Whether the process still runs.
    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid { status = raw; return false }
        return true
    }

    /// Kills the process group and reaps the process.
    func stop() {
        guard status == nil else { return }
        _ = kill(-pid, SIGKILL)
        _ = kill(pid, SIGKILL)
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        status = raw
    }

    /// What it wrote so far.
    var output: String { SockKit.readFile(outputPath) ?? "" }
}

/// The full path of `program`: on PATH, or in the sbin directories a
/// non-root PATH often lacks (haproxy is in /usr/sbin); nil if absent.
func programPath(_ program: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? ""
    let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    return dirs.map { "\($0)/\(program)" }.first { access($0, X_OK) == 0 }
}

/// Whether `program` is installed (see ``programPath(_:)``).
func haveProgram(_ program: String) -> Bool { programPath(program) != nil }

/// A free loopback TCP port (bound, then closed: another process may take
/// it in between, so callers retry on EADDRINUSE where they can).
func freePort(_ family: AddressFamily = .inet) throws -> Int { try SockKit.refusedPort(family) }

/// Connects until something answers on `address`, for at most `seconds`.
func connectWhenUp(_ address: SocketAddress, seconds: Double = 10) throws -> Socket {
    let deadline = SockKit.now() + seconds
    while true {
        do { return try Socket.createConnection(to: address, timeout: 10) } catch {
            if SockKit.now() >= deadline { throw error }
            Sys.sleep(nanos: 20_000_000)  // deadline: polling step of a bounded wait for a child to listen
        }
    }
}

/// SO_LINGER 0: `close` sends a reset (as HAProxy's checks do).
func resetOnClose(_ socket: Socket) {
    var l = linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(socket.fileno, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
}
