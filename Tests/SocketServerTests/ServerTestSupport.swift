#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Testing

/// Echoes lines back (the classic socketserver test handler).
final class EchoStreamHandler: StreamRequestHandler {
    override func handle() throws {
        while let line = try rfile.readLine() { try wfile.write(line) }
    }
}

/// Echoes a datagram back.
final class EchoDatagramHandler: DatagramRequestHandler {
    override func handle() throws {
        try wfile.write(rfile.readAll())
    }
}

/// A fresh temporary directory, removed by `cleanup`.
struct TempDir {
    let path: String
    init() throws {
        var template = Array("/tmp/ss-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SocketError.fromErrno("mkdtemp") }
        path = String(cString: p)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanup() {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { unlink(file(name)) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

/// A client connected to `address` with a 10 s time-out on every call.
func client(_ address: SocketAddress, type: SocketType = .stream) throws -> Socket {
    try Socket.createConnection(to: address, timeout: 10, type: type)
}

/// Sends `text` and reads one line back.
func roundTrip(_ socket: Socket, _ reader: SocketReader, _ text: String) throws -> String? {
    try socket.sendAll(Array(text.utf8))
    return try reader.readLine().map { String(decoding: $0, as: UTF8.self) }
}

/// Polls `condition` until it holds or `seconds` pass (for states that
/// have no event to wait on, such as a thread count going down).
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Sys.monotonicNanos() + UInt64(seconds * 1e9)
    while Sys.monotonicNanos() < deadline {
        if condition() { return true }
        Sys.sleep(nanos: 2_000_000)  // deadline: polling step of a bounded wait
    }
    return condition()
}

/// Whether this test binary runs under the thread sanitizer, which does
/// not support fork() in a process with threads (its children hang): the
/// forking cases are left out there and run in the plain `swift test`.
let underThreadSanitizer: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

/// Is ::1 usable on this machine?
let ipv6Loopback: Bool = {
    guard Socket.hasIPv6, let s = try? Socket(family: .inet6, type: .stream) else { return false }
    defer { s.close() }
    return (try? s.bind(to: SocketAddress(ipv6: "::1", port: 0))) != nil
}()

/// The inode of a socket, to follow it in /proc/self/fd whatever its number.
func socketInode(_ socket: Socket) -> UInt64 {
    var st = stat()
    fstat(socket.fileno, &st)
    return UInt64(st.st_ino)
}

/// The inodes of every socket this process has open.
func openSocketInodes() -> Set<UInt64> {
    var result = Set<UInt64>()
    guard let dir = opendir("/proc/self/fd") else { return result }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/" + name, &buffer, buffer.count - 1)
        guard n > 0 else { continue }
        let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if link.hasPrefix("socket:["), let ino = UInt64(link.dropFirst(8).dropLast()) { result.insert(ino) }
    }
    return result
}

/// The ids of this process's live threads.
func liveThreadIDs() -> Set<Int32> {
    var result = Set<Int32>()
    guard let dir = opendir("/proc/self/task") else { return result }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if let id = Int32(name) { result.insert(id) }
    }
    return result
}

func currentThreadID() -> Int32 { Threads.currentID() }
