// The test harness: starts the built sample executables and talks to them.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif
import SocketServer
import Synchronization
import Testing
import TestSupport

func makePipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return true
}

/// A sample executable running: its own process group (killed with all its
/// children when dropped), stdout on a pipe, stderr in a file.
final class Proc {
    let name: String
    let pid: pid_t
    private let stdoutFD: Int32
    /// Stdin's write end, when started with `stdin: .pipe`.
    private(set) var stdinFD: Int32 = -1
    private let stderrPath: String
    private var stdoutBuffer: [UInt8] = []
    private var stdoutEOF = false
    private var status: Int32?
    private let scratch: TempDir

    enum Input {
        case null
        case bytes([UInt8])
        case pipe
    }

    init(_ name: String, _ arguments: [String], stdin: Input = .null, directory: String? = nil) throws {
        self.name = name
        scratch = try TempDir()
        stderrPath = scratch.file("stderr")
        // A sample by name, or any program by its absolute path (openssl, python3).
        let executable = name.hasPrefix("/") ? name : binDirectory + "/" + name
        // In another directory: through the shell, `cd DIR && exec SAMPLE ARGS`.
        let (program, argumentList) = directory.map {
            ("/bin/sh", ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments)
        } ?? (executable, [executable] + arguments)

        // Pipes are made and the child spawned under one lock, so no other
        // test's child inherits our pipe ends before they are close-on-exec.
        spawnLock.lock()
        defer { spawnLock.unlock() }
        var out: [Int32] = [-1, -1]
        guard makePipe(&out) else { throw TestFailure("pipe failed") }
        let errFD = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        var inFD: Int32
        var inWrite: Int32 = -1
        switch stdin {
        case .null:
            inFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        case .bytes(let bytes):
            let path = scratch.file("stdin")
            try writeFile(path, bytes)
            inFD = open(path, O_RDONLY | O_CLOEXEC)
        case .pipe:
            var fds: [Int32] = [-1, -1]
            guard makePipe(&fds) else { throw TestFailure("pipe failed") }
            inFD = fds[0]
            inWrite = fds[1]
        }
        defer { close(inFD); close(errFD); close(out[1]) }

        do {
            pid = try spawnProcess(argumentList, program: program, stdin: inFD, stdout: out[1],
                                   stderr: errFD, ownProcessGroup: true)
        } catch {
            close(out[0])
            if inWrite >= 0 { close(inWrite) }
            throw error
        }
        self.stdoutFD = out[0]
        self.stdinFD = inWrite
    }

    deinit {
        kill()
        close(stdoutFD)
        if stdinFD >= 0 { close(stdinFD) }
    }

    /// Kills the process and its children (its process group), then reaps it.
    func kill() {
        guard status == nil else { return }
        _ = Glibc.kill(-pid, SIGKILL)
        _ = Glibc.kill(pid, SIGKILL)
        _ = wait(timeout: 10)
    }

    func signal(_ signo: Int32) { _ = Glibc.kill(pid, signo) }

    /// Writes to the process's stdin (started with `stdin: .pipe`).
    func writeStdin(_ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { _ = write(stdinFD, $0.baseAddress, $0.count) }
    }

    func closeStdin() {
        if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
    }

    /// Waits for the process to end, at most `timeout` seconds: its exit
    /// code (128 + N if killed by signal N), or nil if it is still running.
    func wait(timeout: Double) -> Int32? {
        if let status { return status }
        let deadline = now() + timeout
        while true {
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                let code = TestSupport.exitCode(fromWaitStatus: raw)
                status = code
                _ = Glibc.kill(-pid, SIGKILL)  // children a forking server may have left
                return code
            }
            if r < 0 && errno != EINTR { return nil }
            if now() >= deadline { return nil }
            drainStdout(untilMillis: 10)
        }
    }

    /// Waits for the exit (10 s at most, then kills it); its exit code.
    func exitCode(timeout: Double = 10) -> Int32 {
        if let code = wait(timeout: timeout) { return code }
        kill()
        Issue.record("\(name) did not exit within \(timeout)s")
        return -1
    }

    /// Reads what is available on stdout, waiting at most `ms` for it.
    private func drainStdout(untilMillis ms: Int32) {
        guard !stdoutEOF else { return }
        var fds = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
        guard poll(&fds, 1, ms) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = read(stdoutFD, &buffer, buffer.count)
        if n > 0 { stdoutBuffer += buffer[..<n] } else if n == 0 { stdoutEOF = true }
    }

    /// The next line of stdout (without its LF), waiting at most `timeout` seconds.
    func readLine(timeout: Double = 10) -> String? {
        let deadline = now() + timeout
        while true {
            if let i = stdoutBuffer.firstIndex(of: 0x0A) {
                let line = Array(stdoutBuffer[..<i])
                stdoutBuffer.removeSubrange(...i)
                return line.text
            }
            if stdoutEOF || now() >= deadline { return nil }
            drainStdout(untilMillis: 50)
        }
    }

    /// Everything written to stdout, once the process has ended (waits for it).
    func stdout(timeout: Double = 10) -> String {
        _ = exitCode(timeout: timeout)
        let deadline = now() + 5
        while !stdoutEOF && now() < deadline { drainStdout(untilMillis: 50) }
        return stdoutBuffer.text
    }

    /// What it wrote to stderr so far.
    var stderr: String { readFile(stderrPath)?.text ?? "" }
}

/// A sample server started with `--port 0` (unless given other options),
/// and the address it announced.
final class ServerProcess {
    let process: Proc
    let listeningLine: String
    let port: Int

    init(_ name: String, _ arguments: [String] = [], directory: String? = nil) throws {
        let args = arguments.contains("--port") || arguments.contains("--unix") ? arguments : ["--port", "0"] + arguments
        process = try Proc(name, args, directory: directory)
        guard let line = process.readLine(timeout: 20) else {
            throw TestFailure("\(name) did not announce itself; stderr: \(process.stderr)")
        }
        listeningLine = line
        port = Int(line.split(separator: ":").last ?? "") ?? -1
    }

    /// A TCP connection to it, with a 10-second time-out on every call.
    func connect() throws -> Client { try Client(port: port) }

    var stderr: String { process.stderr }
}

/// A test-side connection: lines in and out, every wait bounded.
final class Client {
    let socket: Socket
    let reader: SocketReader

    init(port: Int, host: String = "127.0.0.1") throws {
        socket = try Socket.createConnection(host: host, port: port, timeout: 10)
        reader = socket.makeReader()
    }

    init(socket: Socket) {
        self.socket = socket
        reader = socket.makeReader()
    }

    func send(_ text: String) throws { try socket.sendAll(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) throws { try socket.sendAll(bytes) }

    /// The next line without its LF; nil at end of file.
    func line() throws -> String? {
        guard let line = try reader.readLine(maxLength: 1 << 22) else { return nil }
        return String(decoding: line.last == 0x0A ? line.dropLast() : line[...], as: UTF8.self)
    }

    /// The first of the next 1000 lines that satisfies `predicate`; nil if none does.
    func line(where predicate: (String) -> Bool) throws -> String? {
        for _ in 0..<1000 {
            guard let line = try line() else { return nil }
            if predicate(line) { return line }
        }
        return nil
    }

    /// The next line's raw bytes, LF included; nil at end of file.
    func rawLine() throws -> [UInt8]? { try reader.readLine(maxLength: 1 << 22) }

    func read(_ count: Int) throws -> [UInt8] { try reader.read(count) }

    /// Whether the server closed the connection (end of file, or a reset).
    func isClosedByServer() -> Bool {
        do {
            while let _ = try reader.readLine(maxLength: 1 << 22) {}
            return true
        } catch let e as SocketError where e.errno == .connectionReset {
            return true
        } catch {
            return false
        }
    }

    deinit { socket.close() }
}

/// A TCP listener on 127.0.0.1 port 0 for fake servers; `port` is the port.
func testListener() throws -> (Socket, Int) {
    let s = try Socket(family: .inet, type: .stream)
    try s.bind(to: SocketAddress(ipv4: "127.0.0.1", port: 0))
    try s.listen(backlog: 16)
    try s.setTimeout(10)
    return (s, try s.localAddress().port!)
}

/// A port nothing listens on (bound, not listening, so nobody else takes it
/// while the socket lives): connecting to it is refused.
func refusedPort() throws -> (Socket, Int) {
    let s = try Socket(family: .inet, type: .stream)
    try s.bind(to: SocketAddress(ipv4: "127.0.0.1", port: 0))
    return (s, try s.localAddress().port!)
}

/// The `--mode` values to test: all three, less forking under the thread sanitizer.
let serverModes = underThreadSanitizer ? ["threading", "sync"] : ["threading", "forking", "sync"]
