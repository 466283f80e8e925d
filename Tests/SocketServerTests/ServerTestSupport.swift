#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Testing
import TestSupport

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

/// A client connected to `address` with a 10 s time-out on every call.
func client(_ address: SocketAddress, type: SocketType = .stream) throws -> Socket {
    try Socket.createConnection(to: address, timeout: 10, type: type)
}

/// Sends `text` and reads one line back.
func roundTrip(_ socket: Socket, _ reader: SocketReader, _ text: String) throws -> String? {
    try socket.sendAll(Array(text.utf8))
    return try reader.readLine().map { String(decoding: $0, as: UTF8.self) }
}

/// The inode of a socket, to follow it in /proc/self/fd whatever its number.
func socketInode(_ socket: Socket) -> UInt64 {
    var st = stat()
    fstat(socket.fileno, &st)
    return UInt64(st.st_ino)
}

/// The inodes of every socket this process has open.
func openSocketInodes() -> Set<UInt64> {
    Set(openDescriptorLinks().values.compactMap { link in
        link.hasPrefix("socket:[") ? UInt64(link.dropFirst(8).dropLast()) : nil
    })
}

func currentThreadID() -> Int32 { Threads.currentID() }
