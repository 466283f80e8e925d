#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import SocketServerTLS
import Synchronization
import Testing

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Now, in seconds on the monotonic clock.
func now() -> Double { Double(Socket.monotonicNanos()) / 1e9 }

/// Polls `condition` until it holds or `seconds` pass (for states with no
/// event to wait on: a child's exit, a line in a peer's output file).
func eventually(_ seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = now() + seconds
    while now() < deadline {
        if condition() { return true }
        usleep(5_000)  // deadline: polling step of a bounded wait
    }
    return condition()
}

func readFile(_ path: String) -> String {
    guard let f = fopen(path, "r") else { return "" }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func readBytes(_ path: String) -> [UInt8] { Array(readFile(path).utf8) }

func writeFile(_ path: String, _ text: String) {
    let f = fopen(path, "w")!
    _ = text.withCString { fputs($0, f) }
    fclose(f)
}

func readBinary(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

private let spawnCounter = Atomic<Int>(0)

/// A program run by a test (openssl, python3), its stdout and stderr in
/// files of `directory`.
final class Peer: Sendable {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private let status = Locked<Int32?>(nil)

    /// Starts `argv` (looked up in PATH) with `input` as its stdin.
    init(_ argv: [String], input: String = "", directory: String) throws {
        let n = spawnCounter.add(1, ordering: .relaxed).newValue
        let inPath = "\(directory)/peer\(n).in"
        stdoutPath = "\(directory)/peer\(n).out"
        stderrPath = "\(directory)/peer\(n).err"
        writeFile(inPath, input)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let r = posix_spawnp(&pid, argv[0], &actions, &attributes, cargs, environ)
        guard r == 0 else { throw TestFailure("cannot start \(argv[0]): \(String(cString: strerror(r)))") }
        self.pid = pid
    }

    var stdout: String { readFile(stdoutPath) }
    var stderr: String { readFile(stderrPath) }

    /// The exit status once it has ended (reaped here), else nil.
    func exitStatus() -> Int32? {
        status.withLock { s in
            if let s { return s }
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                s = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            }
            return s
        }
    }

    /// Waits for the end (at most `seconds`; then kills it): the exit status.
    @discardableResult
    func wait(_ seconds: Double = 30) -> Int32 {
        if eventually(seconds, { exitStatus() != nil }) { return exitStatus()! }
        kill()
        return -1
    }

    /// Waits until stdout contains `text`.
    func waitForOutput(_ text: String, _ seconds: Double = 20) -> Bool {
        eventually(seconds) { stdout.contains(text) || exitStatus() != nil } && stdout.contains(text)
    }

    func kill() {
        if exitStatus() == nil {
            Glibc.kill(pid, SIGKILL)
            _ = eventually(10) { exitStatus() != nil }
        }
    }

    deinit { kill() }
}

/// Runs `argv` to its end (at most `seconds`).
func run(_ argv: [String], input: String = "", directory: String, _ seconds: Double = 30) throws -> (Int32, String, String) {
    let peer = try Peer(argv, input: input, directory: directory)
    let status = peer.wait(seconds)
    return (status, peer.stdout, peer.stderr)
}

/// Certificates made once per test run by the openssl CLI, in a temp dir:
/// a CA; two server certificates for localhost, 127.0.0.1 and ::1 (A and
/// B, for reloads); one for `b.test` (SNI); a client certificate; another
/// CA that signed none of them.
final class Certificates: Sendable {
    let directory: String

    static let shared: Result<Certificates, TestFailure> = {
        do { return .success(try Certificates()) } catch let e as TestFailure { return .failure(e) } catch {
            return .failure(TestFailure("\(error)"))
        }
    }()

    static func get() throws -> Certificates { try shared.get() }

    private init() throws {
        var template = Array("/tmp/ss-tls-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        directory = String(cString: p)
        let d = directory
        certificateDirectory.withLock { $0 = d }
        atexit { removeCertificateDirectory() }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem", "-days", "2",
                                             "-subj", "/CN=SocketServer Test CA"])
        try openssl(["req", "-x509"] + ec + ["-keyout", "\(d)/otherca.key", "-out", "\(d)/otherca.pem", "-days", "2",
                                             "-subj", "/CN=Some Other CA"])
        let localhost = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
        try issue("server", serial: 1001, subject: "/CN=localhost", extensions: localhost)
        try issue("server2", serial: 1002, subject: "/CN=localhost", extensions: localhost)
        try issue("btest", serial: 1003, subject: "/CN=b.test", extensions: "subjectAltName=DNS:b.test")
        try issue("client", serial: 1004, subject: "/CN=test client", extensions: "extendedKeyUsage=clientAuth")
    }

    private func issue(_ name: String, serial: Int, subject: String, extensions: String) throws {
        let d = directory
        writeFile("\(d)/\(name).ext", extensions + "\nbasicConstraints=CA:FALSE\n")
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", "\(d)/\(name).key", "-out", "\(d)/\(name).csr", "-subj", subject])
        try openssl(["x509", "-req", "-in", "\(d)/\(name).csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key",
                     "-set_serial", "\(serial)", "-days", "2", "-extfile", "\(d)/\(name).ext", "-out", "\(d)/\(name).pem"])
        try openssl(["x509", "-in", "\(d)/\(name).pem", "-outform", "DER", "-out", "\(d)/\(name).der"])
    }

    private func openssl(_ args: [String]) throws {
        let (status, _, err) = try run(["openssl"] + args, directory: directory)
        if status != 0 { throw TestFailure("openssl \(args.joined(separator: " ")) failed: \(err)") }
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }
    func der(_ name: String) -> [UInt8] { readBinary(path("\(name).der")) }

    /// A server context for `name` (server, server2, btest).
    func serverContext(_ name: String = "server", configure: (inout TLSServerConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var configuration = TLSServerConfiguration(certificateChainFile: path("\(name).pem"), privateKeyFile: path("\(name).key"))
        configure(&configuration)
        return try TLSContext(server: configuration)
    }

    /// A client context trusting the test CA (or `ca`).
    func clientContext(ca: String = "ca.pem", configure: (inout TLSClientConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var configuration = TLSClientConfiguration(trust: .caFile(path(ca)))
        configure(&configuration)
        return try TLSContext(client: configuration)
    }
}

/// The certificates' directory, removed when the test process exits.
private let certificateDirectory = Locked<String?>(nil)

private func removeCertificateDirectory() {
    guard let path = certificateDirectory.withLock({ $0 }), let dir = opendir(path) else { return }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { unlink("\(path)/\(name)") }
    }
    closedir(dir)
    rmdir(path)
}

/// Answers each line: `info` with what TLS negotiated, `quit` by closing,
/// anything else echoed. Records how each connection ended.
final class InfoHandler: StreamRequestHandler {
    override func handle() throws {
        while let text = try rfile.readTextLine() {
            let line = text
            if text == "info" {
                let t = tls
                let cert = t?.peerCertificate.map { "\($0.count)" } ?? "none"
                try wfile.write("version=\(t?.version ?? "-") cipher=\(t?.cipher ?? "-") alpn=\(t?.alpnProtocol ?? "-") "
                                + "sni=\(t?.serverName ?? "-") peercert=\(cert)\n")
            } else if text == "quit" {
                return
            } else {
                try wfile.write(line + "\n")
            }
        }
        (server as? TLSTestServer)?.events.withLock { $0.append("clean end of file") }
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// A threading TCP server on 127.0.0.1 that records the errors it is told of.
class TLSTestServer: ThreadingTCPServer {
    let errors = Locked<[any Error]>([])
    let events = Locked<[String]>([])

    override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        errors.withLock { $0.append(error) }
    }

    var errorTexts: [String] { errors.withLock { $0.map { "\($0)" } } }

    /// Starts serving `context` with `handler` on a free port.
    static func start(_ context: TLSContext, handler: BaseRequestHandler.Type = InfoHandler.self,
                      serverNames: [String: TLSContext] = [:], host: String = "127.0.0.1") throws -> (TLSTestServer, TLSStage) {
        let server = try TLSTestServer((host, 0), handler)
        let stage = server.enableTLS(context, serverNames: serverNames)
        try server.serveInBackground(pollInterval: 0.05)
        return (server, stage)
    }

    var port: Int { serverAddress.port! }

    func stop() {
        shutdown()
        serverClose()
    }
}

/// A TLS client of the test server: connected, handshaken, with streams.
struct TestClient {
    let stream: TLSStream
    let reader: SocketReader
    let writer: SocketWriter

    init(port: Int, context: TLSContext, host: String = "127.0.0.1", serverName: String? = "localhost") throws {
        stream = try TLSStream.connect(host: host, port: port, context: context, serverName: serverName, timeout: 10)
        (reader, writer) = stream.makeStreams()
    }

    /// Sends a line, returns the line answered (without its LF).
    func ask(_ line: String) throws -> String? {
        try writer.write(line + "\n")
        try writer.flush()
        return try reader.readTextLine()?.trimmingCharacters()
    }
}

/// Whether a program is on PATH.
func have(_ program: String) -> Bool {
    guard let path = getenv("PATH") else { return false }
    return String(cString: path).split(separator: ":").contains { access("\($0)/\(program)", X_OK) == 0 }
}
