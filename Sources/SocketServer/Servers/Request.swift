/// What a server hands its handler: a connected stream socket, or one
/// datagram with the socket it came on (Python's `request`).
public enum Request: Sendable {
    /// A connection a stream server accepted: the handler's socket.
    case stream(Socket)
    /// One datagram, and the server's socket it came on (replies go out on it).
    case datagram(packet: [UInt8], socket: Socket)

    /// The connected socket, or the server's datagram socket.
    public var socket: Socket {
        switch self {
        case .stream(let s): return s
        case .datagram(_, let s): return s
        }
    }

    /// The datagram's bytes; nil for a stream request.
    public var packet: [UInt8]? {
        if case .datagram(let p, _) = self { return p }
        return nil
    }
}
