// file-client: `put`, `get` and `list` against file-server.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SampleSupport
import SocketServer
import Synchronization

let usage = """
    usage: file-client [--host HOST] [--port 9998] put FILE [NAME]
           file-client [--host HOST] [--port 9998] [--force] get NAME [DEST]
           file-client [--host HOST] [--port 9998] list

    put    uploads FILE as NAME (default: FILE's base name)
    get    downloads NAME to DEST (default: ./NAME); an existing DEST is
           only replaced with --force. A download that fails or is
           interrupted leaves no partial DEST behind.
    list   prints the server's files, one `NAME SIZE` per line

    options:
      --host HOST   server address (default 127.0.0.1)
      --port N      server port (default 9998)
      --force       let get replace an existing DEST
    \(ClientTLSOptions.usageLines)
      -h, --help    show this help
    """

let args = Arguments(usage: usage, valued: ClientTLSOptions.valued, flags: ["--force"] + ClientTLSOptions.flags)
let (host, port) = (args.host, args.port(default: 9998))
guard let command = args.operands.first else { args.usageError("missing command (put, get or list)") }

/// The temporary file of a download in progress: removed if we are interrupted.
let partial = Locked<String?>(nil)

// Ctrl-C (SIGINT) or SIGTERM: remove a partial download, exit at once.
var blocked = sigset_t()
sigemptyset(&blocked)
sigaddset(&blocked, SIGINT)
sigaddset(&blocked, SIGTERM)
pthread_sigmask(SIG_BLOCK, &blocked, nil)  // before any thread starts: all inherit it
try? Threads.start(stackSize: 256 * 1024) {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    var signo: Int32 = 0
    while sigwait(&signals, &signo) != 0 {}
    if let path = partial.withLock({ $0 }) { unlink(path) }
    printError("\n")
    _exit(128 + signo)
}

/// The connection, its reader, and the server's reply lines.
struct Connection {
    /// The connection: the socket, or a TLS session over it (`--tls`).
    let stream: any ByteStream
    let reader: SocketReader

    init() {
        stream = connectingStream(args, host: host, port: port)
        try? stream.socket.setTimeout(300)
        reader = SocketReader(stream: stream, bufferSize: 64 * 1024)
    }

    func send(_ line: String) {
        do { try stream.sendAll(Array((line + "\n").utf8)) } catch { fail("cannot send: \(reason(error))") }
    }

    /// The next reply line; `ERR REASON` ends the program with `error: REASON`.
    func replyLine() -> String {
        let line: [UInt8]?
        do { line = try reader.readLine(maxLength: 4096) } catch { fail("\(reason(error))") }
        guard let line, line.last == 0x0A else { fail("connection closed by server") }
        let text = String(decoding: lineContent(line), as: UTF8.self)
        if text.hasPrefix("ERR ") { fail(String(text.dropFirst(4))) }
        return text
    }

    /// Expects `OK NUMBER`; returns the number.
    func okCount() -> Int {
        let text = replyLine()
        guard text.hasPrefix("OK "), let n = Int(text.dropFirst(3)), n >= 0 else { fail("unexpected reply: \(text)") }
        return n
    }
}

func put(_ path: String, as name: String) {
    let file = open(path, O_RDONLY | O_CLOEXEC)
    guard file >= 0 else { fail("cannot read \(path): \(Errno(errno).message)") }
    var st = stat()
    guard fstat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { fail("not a regular file: \(path)") }
    let size = Int(st.st_size)

    let connection = Connection()
    connection.send("PUT \(name) \(size)")
    guard connection.replyLine() == "READY" else { fail("unexpected reply") }
    let progress = Progress(total: size)
    do {
        while progress.done < size {
            let sent = try connection.stream.sendFile(file, offset: progress.done, count: min(size - progress.done, 1 << 20))
            if sent == 0 { progress.finish(); fail("\(path) shrank while being sent") }
            progress.advance(by: sent)
        }
    } catch {
        progress.finish()
        // The server may have refused on its way (e.g. a disk error): show its reason if it gave one.
        _ = connection.replyLine()
        fail("upload failed: \(reason(error))")
    }
    progress.finish()
    _ = connection.okCount()
    print("stored \(name) (\(size) bytes)")
}

func get(_ name: String, to destination: String, force: Bool) {
    var st = stat()
    if lstat(destination, &st) == 0 && !force { fail("\(destination) exists (use --force)") }

    let connection = Connection()
    connection.send("GET \(name)")
    let size = connection.okCount()

    // Download next to DEST under a hidden name, then move it into place.
    let slash = destination.lastIndex(of: "/")
    let directory = slash.map { String(destination[...$0]) } ?? ""
    let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
    let temporary = "\(directory).\(base).part-\(UInt32.random(in: 0...UInt32.max))"
    let file = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    // Errors name DEST, what the user asked for, never the hidden temporary.
    guard file >= 0 else { fail("cannot write \(destination): \(Errno(errno).message)") }
    partial.withLock { $0 = temporary }
    func abandon(_ message: String) -> Never {
        unlink(temporary)
        fail(message)
    }

    let progress = Progress(total: size)
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while progress.done < size {
        let want = min(buffer.count, size - progress.done)
        let n: Int
        do {
            n = try buffer.withUnsafeMutableBytes { try connection.reader.readSome(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want])) }
        } catch {
            progress.finish()
            abandon("download failed: \(reason(error))")
        }
        if n == 0 { progress.finish(); abandon("download ended short: got \(progress.done) of \(size) bytes") }
        let written = buffer.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < n {
                let w = write(file, raw.baseAddress! + offset, n - offset)
                if w < 0 { if errno == EINTR { continue }; return false }
                offset += w
            }
            return true
        }
        if !written { progress.finish(); abandon("cannot write \(destination): \(Errno(errno).message)") }
        progress.advance(by: n)
    }
    progress.finish()
    if fsync(file) != 0 || close(file) != 0 { abandon("cannot write \(destination): \(Errno(errno).message)") }
    if force {
        if rename(temporary, destination) != 0 { abandon("cannot write \(destination): \(Errno(errno).message)") }
    } else {
        // link(2) refuses to replace a DEST that appeared meanwhile.
        if link(temporary, destination) != 0 {
            abandon(errno == EEXIST ? "\(destination) exists (use --force)" : "cannot write \(destination): \(Errno(errno).message)")
        }
        unlink(temporary)
    }
    partial.withLock { $0 = nil }
    print("saved \(destination) (\(size) bytes)")
}

func list() {
    let connection = Connection()
    connection.send("LIST")
    let count = connection.okCount()
    for _ in 0..<count { print(connection.replyLine()) }
}

switch command {
case "put":
    args.expectOperands(2...3)
    let path = args.operands[1]
    let name = args.operands.count > 2 ? args.operands[2] : String(path.split(separator: "/").last ?? "")
    put(path, as: name)
case "get":
    args.expectOperands(2...3)
    let name = args.operands[1]
    get(name, to: args.operands.count > 2 ? args.operands[2] : name, force: args.flag("--force"))
case "list":
    args.expectOperands(1...1)
    list()
default:
    args.usageError("unknown command \(command) (expected put, get or list)")
}
