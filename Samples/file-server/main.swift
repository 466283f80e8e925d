// file-server: stores and serves files in one directory.
//
//   PUT NAME SIZE  ->  READY, SIZE bytes from the client, OK SIZE
//   GET NAME       ->  OK SIZE and the file's bytes
//   LIST           ->  OK COUNT and COUNT lines `NAME SIZE`
//
// Memory stays flat whatever the file size: downloads go out with
// sendfile(2), uploads come in through a 64 KiB buffer. Uploads land
// atomically: they are written to a hidden temporary file in DIR, synced,
// then hard-linked under NAME, which fails if NAME exists, so a file is
// never overwritten and of two racing uploads exactly one wins. Every file
// is opened relative to DIR, without following symlinks, and must be a
// regular file: nothing outside DIR is ever read or written.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SampleSupport
import SocketServer

let usage = """
    usage: file-server [--host HOST] [--port 9998] [--dir DIR] [--max-size BYTES]

    Stores and serves the files of DIR. Requests, one per line:
      PUT NAME SIZE   upload SIZE bytes as NAME (never overwrites)
      GET NAME        download NAME
      LIST            list the files
    Request lines are at most 1024 bytes. A connection silent for 300 seconds
    is closed.

    options:
      --host HOST        address to listen on (default 127.0.0.1)
      --port N           port (default 9998; 0: any free port)
      --dir DIR          the directory served (default: the current one)
      --max-size BYTES   largest upload accepted (default 1073741824, 1 GiB)
    \(ServingOptions.usageLines)
      -h, --help         show this help
    """

/// A reply that ends the request (`ERR REASON`).
struct Refusal: Error {
    let reason: String
    /// After `bad request` the connection is closed.
    var closes: Bool { reason == "bad request" }
    static let badRequest = Refusal(reason: "bad request")
}

extension Refusal {
    /// The reply to a header FileRequest.parse refused.
    init(_ error: FileRequestError) { self.init(reason: error.reason) }
}

/// The served directory, opened once; every file operation is relative to it.
struct Store: Sendable {
    let fd: Int32
    let maxSize: UInt64

    /// Whether anything at all is called NAME.
    func exists(_ name: String) -> Bool {
        var st = stat()
        return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// The size of a regular file NAME; nil if there is none (or it is
    /// something else: a directory, a symlink, a device).
    func size(of name: String) -> UInt64? {
        var st = stat()
        guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(st.st_size)
    }

    /// Opens a regular file NAME for reading: its descriptor and size.
    func open(_ name: String) -> (Int32, Int)? {
        let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard file >= 0 else { return nil }
        var st = stat()
        guard fstat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { close(file); return nil }
        return (file, Int(st.st_size))
    }

    /// The files to list: regular files with valid names, sorted by name.
    func list() -> [(String, UInt64)] {
        // A descriptor of our own: a dup would share its position with other threads' listings.
        let own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard own >= 0, let dir = fdopendir(own) else { return [] }
        defer { closedir(dir) }
        var files: [(String, UInt64)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if FileRequest.isValidName(name.utf8), let size = size(of: name) { files.append((name, size)) }
        }
        return files.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
    }

    /// A new hidden temporary file for an upload: its name and descriptor.
    func makeTemporary() throws -> (String, Int32) {
        for _ in 0..<100 {
            let name = ".upload-\(UInt64.random(in: 0...UInt64.max))"
            let file = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if file >= 0 { return (name, file) }
            if errno != EEXIST { throw Errno(errno) }
        }
        throw Errno(EEXIST)
    }
}

final class FileHandler: StreamRequestHandler {
    override var timeout: Double? { 300 }

    override func handle() throws {
        while true {
            let header: [UInt8]
            do {
                guard let line = try rfile.readLine(maxLength: FileRequest.maxHeaderLength) else { return }
                header = line
            } catch StreamError.lineTooLong {
                try reply("ERR bad request")
                return lingeringClose(connection)
            }
            do {
                try respond(to: FileRequest.parse(header, maxSize: store.maxSize).mapError(Refusal.init).get())
            } catch let refusal as Refusal {
                try reply("ERR \(refusal.reason)")
                if refusal.closes { return lingeringClose(connection) }
            }
        }
    }

    func reply(_ line: String) throws {
        try wfile.write(line + "\n")
        try wfile.flush()
    }

    /// Serves one request, parsed and checked (FileRequest, in SampleSupport).
    func respond(to request: FileRequest) throws {
        switch request {
        case .put(let name, let size):
            try put(name: name, size: size)
        case .get(let name):
            try get(name: name)
        case .list:
            let files = store.list()
            try wfile.write("OK \(files.count)\n")
            for (name, size) in files { try wfile.write("\(name) \(size)\n") }
            try wfile.flush()
        }
    }

    /// NAME is valid and SIZE within the maximum (FileRequest.parse).
    func put(name: String, size: UInt64) throws {
        if store.exists(name) { throw Refusal(reason: "exists") }
        let (temporary, file) = try store.makeTemporary()
        defer { unlinkat(store.fd, temporary, 0) }  // linked under NAME, or abandoned
        var writeError: Int32 = 0
        do {
            defer { close(file) }
            try reply("READY")
            try receiveBody(size: Int(size)) { chunk in
                if writeError == 0 && !writeFully(file, chunk) { writeError = errno }
            }
            if writeError == 0 && fsync(file) != 0 { writeError = errno }
        }
        if writeError != 0 {
            throw Refusal(reason: "cannot store: \(Errno(writeError).message)")
        }
        if linkat(store.fd, temporary, store.fd, name, 0) != 0 {
            if errno == EEXIST { throw Refusal(reason: "exists") }
            throw Refusal(reason: "cannot store: \(Errno(errno).message)")
        }
        fsync(store.fd)
        try reply("OK \(size)")
    }

    /// Reads exactly `size` bytes of body, handing them on in chunks; throws
    /// if the connection ends first.
    func receiveBody(size: Int, _ consume: (UnsafeRawBufferPointer) -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var remaining = size
        try buffer.withUnsafeMutableBytes { raw in
            while remaining > 0 {
                let n = try rfile.readSome(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<min(raw.count, remaining)]))
                if n == 0 { throw CutShort(done: size - remaining, expected: size) }
                consume(UnsafeRawBufferPointer(rebasing: raw[..<n]))
                remaining -= n
            }
        }
    }

    /// NAME is valid (FileRequest.parse).
    func get(name: String) throws {
        guard let (file, size) = store.open(name) else { throw Refusal(reason: "not found") }
        defer { close(file) }
        try wfile.write("OK \(size)\n")
        let sent = try wfile.sendFile(file, offset: 0, count: size)  // the reply line first
        if sent < size {
            // The file shrank while being sent: the reply can no longer be framed.
            throw SocketError.closed(operation: "file shrank while being sent")
        }
    }
}

/// The connection ended in the middle of an upload.
struct CutShort: Error, CustomStringConvertible {
    let done: Int, expected: Int
    var description: String { "connection closed after \(done) of \(expected) bytes of an upload" }
}

/// Writes all of `bytes` to a file; false on an error (in `errno`).
func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 { if errno == EINTR { continue }; return false }
        offset += n
    }
    return true
}


let args = Arguments(usage: usage, valued: ["--dir", "--max-size"] + ServingOptions.valued, flags: ServingOptions.flags)
args.expectOperands(0...0)
let (host, port) = (args.host, args.port(default: 9998))
let maxSize = args.value("--max-size") == nil ? 1 << 30 : args.count("--max-size", default: 0)
let dir = args.value("--dir") ?? "."
let dirFD = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
guard dirFD >= 0 else { fail("not a directory: \(dir)") }

let store = Store(fd: dirFD, maxSize: UInt64(maxSize))

let serving = ServingOptions(args, transport: .tcp)
let server = serving.listen(on: hostPort(host, port), { try ThreadingTCPServer((host, port), FileHandler.self) },
                            adopting: { try ThreadingTCPServer(socket: $0, FileHandler.self) })
serve(server)
