// The test harness: starts the built sample executables and talks to them.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif
import Dispatch
import SocketServer
import Synchronization
import Testing

/// Where the executables are: next to the test binary (`.build/debug/`).
let binDirectory: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    precondition(n > 0, "cannot read /proc/self/exe")
    let path = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return String(path[..<path.lastIndex(of: "/")!])
}()

func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func pause(_ seconds: Double) {
    var ts = timespec(tv_sec: 0, tv_nsec: Int(seconds * 1e9))
    nanosleep(&ts, nil)
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fresh directory under /tmp, removed with everything in it when dropped.
final class TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/sample-tests-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        path = String(cString: made)
    }

    deinit { TempDir.remove(path) }

    func file(_ name: String) -> String { path + "/" + name }

    /// The names in the directory (without `.` and `..`).
    func entries() -> [String] { TempDir.entries(path) }

    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in entries(path) { remove(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HarnessError("cannot create \(path)") }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        guard n > 0 else { throw HarnessError("cannot write \(path)") }
        offset += n
    }
}

func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        result += buffer[..<n]
    }
    return result
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// Serializes pipe creation with spawning (see ``Proc``): a tiny spin lock,
/// held only for the few system calls of one spawn.
let spawnLock = SpinLock()

final class SpinLock: Sendable {
    private let held = Atomic<Bool>(false)
    func lock() {
        while !held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
    }
    func unlock() { held.store(false, ordering: .releasing) }
}

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
        guard makePipe(&out) else { throw HarnessError("pipe failed") }
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
            guard makePipe(&fds) else { throw HarnessError("pipe failed") }
            inFD = fds[0]
            inWrite = fds[1]
        }
        defer { close(inFD); close(errFD); close(out[1]) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inFD, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)

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
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = argumentList.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let r = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard r == 0 else {
            close(out[0])
            if inWrite >= 0 { close(inWrite) }
            throw HarnessError("cannot start \(executable): \(String(cString: strerror(r)))")
        }
        self.pid = pid
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
        let deadline = monotonic() + timeout
        while true {
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                let code = (raw & 0x7F) == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
                status = code
                _ = Glibc.kill(-pid, SIGKILL)  // children a forking server may have left
                return code
            }
            if r < 0 && errno != EINTR { return nil }
            if monotonic() >= deadline { return nil }
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
        let deadline = monotonic() + timeout
        while true {
            if let i = stdoutBuffer.firstIndex(of: 0x0A) {
                let line = Array(stdoutBuffer[..<i])
                stdoutBuffer.removeSubrange(...i)
                return line.text
            }
            if stdoutEOF || monotonic() >= deadline { return nil }
            drainStdout(untilMillis: 50)
        }
    }

    /// Everything written to stdout, once the process has ended (waits for it).
    func stdout(timeout: Double = 10) -> String {
        _ = exitCode(timeout: timeout)
        let deadline = monotonic() + 5
        while !stdoutEOF && monotonic() < deadline { drainStdout(untilMillis: 50) }
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
            throw HarnessError("\(name) did not announce itself; stderr: \(process.stderr)")
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

/// Starts a detached thread; the returned semaphore is signalled when it ends.
@discardableResult
func thread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    final class Box: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    let box = Unmanaged.passRetained(Box { body(); done.signal() })
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    var t = pthread_t()
    let r = pthread_create(&t, &attr, { Unmanaged<Box>.fromOpaque($0!).takeRetainedValue().run(); return nil }, box.toOpaque())
    pthread_attr_destroy(&attr)
    precondition(r == 0, "pthread_create failed")
    return done
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

/// Waits until `condition` holds (polled), at most `timeout` seconds.
func eventually(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = monotonic() + timeout
    while true {
        if try condition() { return true }
        if monotonic() >= deadline { return false }
        pause(0.02)
    }
}

/// Whether this test binary runs under the thread sanitizer, which does
/// not support fork() in a process with threads (its children hang): the
/// forking cases are left out there and run in the plain `swift test`.
let underThreadSanitizer: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

/// Whether this test binary runs under a sanitizer (thread or address):
/// resident memory then measures the sanitizer's shadow memory too.
let underSanitizer: Bool = underThreadSanitizer || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

/// The `--mode` values to test: all three, less forking under the thread sanitizer.
let serverModes = underThreadSanitizer ? ["threading", "sync"] : ["threading", "forking", "sync"]
