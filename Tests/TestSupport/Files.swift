#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer

/// A fresh directory under /tmp, removed with everything in it by
/// ``cleanup()`` or when dropped.
public final class TempDir: Sendable {
    public let path: String

    /// A directory named `/tmp/PREFIX-XXXXXX`.
    public init(prefix: String = "ss-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(Errno(errno))") }
        path = String(cString: made)
    }

    deinit { cleanup() }

    /// The path of `name` in the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// The names in the directory (without `.` and `..`), sorted.
    public func entries() -> [String] { directoryEntries(path) }

    /// Removes the directory and what it holds (again: nothing).
    public func cleanup() { removeTree(path) }
}

/// The names in directory `path` (without `.` and `..`), sorted; empty if
/// it cannot be read.
public func directoryEntries(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Removes `path`: a file, or a directory with everything in it.
public func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for name in directoryEntries(path) { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// Whether something (a file, a socket, a dangling link) is at `path`.
public func fileExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

/// A whole file's bytes; nil if it cannot be opened.
public func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        result += buffer[..<n]
    }
    return result
}

/// A whole file as text (invalid UTF-8 repaired); nil if it cannot be opened.
public func readTextFile(_ path: String) -> String? { readFile(path)?.text }

/// Writes `bytes` to a new (or truncated) file at `path`.
public func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw TestFailure("cannot create \(path): \(Errno(errno))") }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw TestFailure("cannot write \(path): \(Errno(errno))") }
        offset += n
    }
}

/// Writes `text` to a new (or truncated) file at `path`.
public func writeFile(_ path: String, _ text: String) throws { try writeFile(path, Array(text.utf8)) }

extension Array where Element == UInt8 {
    /// The bytes as UTF-8 text (invalid sequences repaired).
    public var text: String { String(decoding: self, as: UTF8.self) }
}

/// The directory of the running test binary, where SwiftPM puts the
/// package's executables too (`.build/debug/`).
public let binDirectory: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let path = String(decoding: buffer[..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
}()

/// The targets of this process's descriptors, by number (`socket:[INODE]`,
/// a path, `pipe:[N]`), from /proc/self/fd.
public func openDescriptorLinks() -> [Int32: String] {
    var result: [Int32: String] = [:]
    for name in directoryEntries("/proc/self/fd") {
        guard let fd = Int32(name) else { continue }
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/" + name, &buffer, buffer.count - 1)
        guard n > 0 else { continue }
        result[fd] = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    return result
}
