/// A server on a stream socket: TCP over IPv4 or IPv6 (Python's `TCPServer`),
/// and the base of every socket server.
///
/// ```swift
/// let server = try TCPServer(("127.0.0.1", 8000), MyHandler.self)
/// try server.serveForever()
/// ```
///
/// The address family follows the address: `("::1", 8000)` gives an IPv6
/// server without a subclass (Python needs `address_family = AF_INET6`).
/// Pass `bindAndActivate: false` to change the socket before
/// ``serverBind()`` and ``serverActivate()`` are called by hand. A bind that
/// fails closes the socket before the error is thrown.
open class TCPServer: BaseServer {
    /// The type of socket this server class makes.
    open class var socketType: SocketType { .stream }

    /// The listening (or datagram) socket.
    public let socket: Socket

    /// A server bound to `serverAddress`, listening unless `bindAndActivate` is false.
    public init(_ serverAddress: SocketAddress, _ handler: BaseRequestHandler.Type, bindAndActivate: Bool = true) throws {
        try Self.checkHandler(handler)
        let type = Self.socketType
        let socket = try Socket(family: serverAddress.family, type: type)
        self.socket = socket
        do {
            try super.init(serverAddress: serverAddress, handler: handler)
        } catch {
            socket.close()
            throw error
        }
        if bindAndActivate {
            do {
                try serverBind()
                try serverActivate()
            } catch {
                serverClose()
                throw error
            }
        }
    }

    /// A server on a socket that is already bound: one a service manager
    /// passed (``Socket/listenFDs(unsetEnvironment:environment:firstFD:)``)
    /// or an old process handed over (``ListenerHandoff``). It is not bound
    /// again; a stream socket that is not listening yet is made to listen.
    /// ``BaseServer/serverAddress`` is its address (`getsockname`). The
    /// server owns the socket and closes it; a Unix server never removes
    /// the socket file of a socket it adopted (its creator owns the file).
    public init(socket: Socket, _ handler: BaseRequestHandler.Type) throws {
        try Self.checkHandler(handler)
        guard socket.type == Self.socketType else {
            throw SocketError.invalidArgument("\(Self.self) serves \(Self.socketType) sockets, not \(socket.type)")
        }
        if Self.adoptsUnixOnly && socket.family != .unix {
            throw SocketError.invalidArgument("\(Self.self) serves Unix sockets, not \(socket.family)")
        }
        self.socket = socket
        try super.init(serverAddress: try socket.localAddress(), handler: handler)
        if socket.type == .stream, try !socket.getOption(.acceptConnections) { try serverActivate() }
    }

    class var adoptsUnixOnly: Bool { false }

    private static func checkHandler(_ handler: BaseRequestHandler.Type) throws {
        if socketType == .stream && handler is DatagramRequestHandler.Type {
            throw SocketError.invalidArgument("\(handler) is a datagram handler; \(Self.self) serves streams")
        }
        if socketType == .datagram && handler is StreamRequestHandler.Type {
            throw SocketError.invalidArgument("\(handler) is a stream handler; \(Self.self) serves datagrams")
        }
    }

    /// A server on `(host, port)`: a numeric IPv4 or IPv6 address, `""` for
    /// every IPv4 interface, or a name, resolved preferring IPv4 (as
    /// Python's `TCPServer` does).
    public convenience init(_ serverAddress: (String, Int), _ handler: BaseRequestHandler.Type, bindAndActivate: Bool = true) throws {
        let (host, port) = serverAddress
        let address: SocketAddress
        if let v4 = try? SocketAddress.resolve(host: host, port: port, family: .inet, type: Self.socketType, passive: true) {
            address = v4
        } else {
            address = try SocketAddress.resolve(host: host, port: port, family: .inet6, type: Self.socketType, passive: true)
        }
        try self.init(address, handler, bindAndActivate: bindAndActivate)
    }

    /// The address family, taken from the server address.
    public var addressFamily: AddressFamily { socket.family }

    /// The socket type (Python's `socket_type`).
    public var socketType: SocketType { socket.type }

    /// The listening socket's descriptor (Python's `fileno()`), for `poll`.
    open override var fileno: Int32 { socket.fileno }

    /// Sets the reuse options, binds, and records the real address.
    open override func serverBind() throws {
        if socket.family == .inet || socket.family == .inet6 {
            if allowReuseAddress { try socket.setOption(.reuseAddress, true) }
            if allowReusePort { try socket.setOption(.reusePort, true) }
        }
        try socket.bind(to: serverAddress)
        serverAddress = try socket.localAddress()
    }

    /// Listens with a backlog of ``BaseServer/requestQueueSize``.
    open override func serverActivate() throws {
        try socket.listen(backlog: requestQueueSize)
    }

    /// Closes the socket, then as ``BaseServer/serverClose()``.
    open override func serverClose() {
        releaseListener()
        super.serverClose()
    }

    override func releaseListener() {
        socket.close()
    }

    override func releaseInChild() {
        if socket.type == .stream { socket.close() }
    }

    /// Accepts a connection.
    open override func getRequest() throws -> (Request, SocketAddress) {
        let (connection, address) = try socket.accept()
        return (.stream(connection), address)
    }

    /// Shuts down the connection's write side, then closes it.
    open override func shutdownRequest(_ request: Request) {
        try? request.socket.shutdown(.write)
        closeRequest(request)
    }

    /// Closes the connection.
    open override func closeRequest(_ request: Request) {
        request.socket.close()
    }
}

/// A server on a datagram socket: UDP over IPv4 or IPv6 (Python's
/// `UDPServer`). Each datagram is one request, with a
/// ``DatagramRequestHandler``.
open class UDPServer: TCPServer {
    open override class var socketType: SocketType { .datagram }

    /// Off: on Linux, SO_REUSEADDR would let two UDP servers bind one port
    /// and split its traffic.
    open override var allowReuseAddress: Bool { false }

    /// The largest datagram read. 65536 (Python: 8192, which silently cuts
    /// longer datagrams).
    open var maxPacketSize: Int { 65536 }

    /// Datagram sockets do not listen.
    open override func serverActivate() throws {}

    /// Receives one datagram.
    open override func getRequest() throws -> (Request, SocketAddress) {
        let (packet, address) = try socket.recvFrom(maxPacketSize)
        return (.datagram(packet: packet, socket: socket), address)
    }

    /// Nothing to shut down: the socket is the server's.
    open override func shutdownRequest(_ request: Request) { closeRequest(request) }

    /// Nothing to close: the socket is the server's.
    open override func closeRequest(_ request: Request) {}
}
