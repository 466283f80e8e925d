/// A server on a Unix stream socket (Python's `UnixStreamServer`).
///
/// ```swift
/// let server = try UnixStreamServer("/tmp/echo.sock", Echo.self)
/// ```
///
/// Before binding, a socket file left by a crashed earlier run is removed,
/// but only if it is a socket and nothing answers on it: a live server's
/// socket, or a path that is not a socket, is never removed (the bind then
/// fails with EADDRINUSE). When closed, the server removes the socket file it
/// created, if that file is still the same one.
open class UnixStreamServer: TCPServer {
    let socketFile = UnixSocketFile()

    /// A server bound to the Unix socket at `path` (a leading NUL byte
    /// makes it a Linux abstract address, with no file).
    public convenience init(_ path: String, _ handler: BaseRequestHandler.Type, bindAndActivate: Bool = true) throws {
        try self.init(SocketAddress(unixPath: path), handler, bindAndActivate: bindAndActivate)
    }

    override class var adoptsUnixOnly: Bool { true }

    /// Removes a stale socket file left at the path by a server that is
    /// gone (never a live one's, nor a file that is not a socket), binds,
    /// and remembers the file it created so ``BaseServer/serverClose()``
    /// removes it.
    open override func serverBind() throws {
        try socketFile.removeIfStale(serverAddress, type: socket.type)
        try super.serverBind()
        socketFile.created(serverAddress)
    }

    override func releaseListener() {
        super.releaseListener()
        socketFile.remove()
    }

    override func releaseInChild() {
        // Close our copy of the listener; the file belongs to the parent.
        socket.close()
    }
}

/// A server on a Unix datagram socket (Python's `UnixDatagramServer`).
/// Socket files are handled as by ``UnixStreamServer``. Replies reach only
/// clients that bound their own socket to a path.
open class UnixDatagramServer: UDPServer {
    let socketFile = UnixSocketFile()

    /// A server bound to the Unix datagram socket at `path`.
    public convenience init(_ path: String, _ handler: BaseRequestHandler.Type, bindAndActivate: Bool = true) throws {
        try self.init(SocketAddress(unixPath: path), handler, bindAndActivate: bindAndActivate)
    }

    override class var adoptsUnixOnly: Bool { true }

    /// Removes a stale socket file left at the path by a server that is
    /// gone (never a live one's, nor a file that is not a socket), binds,
    /// and remembers the file it created so ``BaseServer/serverClose()``
    /// removes it.
    open override func serverBind() throws {
        try socketFile.removeIfStale(serverAddress, type: socket.type)
        try super.serverBind()
        socketFile.created(serverAddress)
    }

    override func releaseListener() {
        super.releaseListener()
        socketFile.remove()
    }

    override func releaseInChild() {}
}

/// The socket file a Unix server created: which file it was (device and
/// inode), so that only that file is ever removed.
final class UnixSocketFile: Sendable {
    private struct Identity: Sendable { var path: String; var device: UInt64; var inode: UInt64 }
    private let identity = Locked<Identity?>(nil)

    /// Removes `address`'s file if it is a socket nobody answers on.
    func removeIfStale(_ address: SocketAddress, type: SocketType) throws {
        guard let path = address.path, !path.isEmpty, !path.hasPrefix("\0") else { return }
        guard let file = Sys.fileIdentity(path), file.isSocket else { return }
        let probe = try Socket(family: .unix, type: type)
        defer { probe.close() }
        let code = probe.connectEx(to: address)
        if Errno(code) == .connectionRefused {
            try? Sys.unlink(path)
        }
    }

    /// Records the file just bound.
    func created(_ address: SocketAddress) {
        guard let path = address.path, !path.isEmpty, !path.hasPrefix("\0") else { return }
        guard let file = Sys.fileIdentity(path) else { return }
        identity.withLock { $0 = Identity(path: path, device: file.device, inode: file.inode) }
    }

    /// Forgets the file: it is not removed (its socket was handed to
    /// another process, which serves on it now).
    func forget() {
        identity.withLock { $0 = nil }
    }

    /// Removes the recorded file if it is still the same one. Once.
    func remove() {
        guard let id = identity.withLock({ id -> Identity? in defer { id = nil }; return id }) else { return }
        guard let file = Sys.fileIdentity(id.path), file.device == id.device, file.inode == id.inode else { return }
        try? Sys.unlink(id.path)
    }
}
