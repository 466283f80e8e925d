internal import COpenSSL
import SocketServer
import Synchronization

/// A TLS session over a connected socket (Python's `SSLSocket`): a
/// ``/SocketServer/ByteStream``, so ``/SocketServer/SocketReader`` and
/// ``/SocketServer/SocketWriter`` (a handler's `rfile` and `wfile`) work over
/// it unchanged: bounded lines, batching, time-outs and sticky errors.
///
/// Make one with ``server(over:context:buffered:serverNames:)`` (a
/// server's ``TLSStage`` does), ``client(over:context:serverName:)`` or
/// ``connect(host:port:context:serverName:timeout:)``; each returns after
/// a complete handshake, made under one deadline (the context's
/// `handshakeTimeout`) however slowly the peer sends.
///
/// - Receives and sends go through the library's socket calls: never
///   SIGPIPE; the socket's time-out applies as for plain TCP and throws
///   ``/SocketServer/SocketError/timeout(operation:address:)``, after which
///   the stream is still usable (nothing received is lost).
/// - End of file: after the peer's `close_notify`, a receive returns 0. A
///   peer that closes without it, or resets, throws a `SocketError` whose
///   `isPeerGone` is true (`ECONNRESET`), reported quietly by servers.
/// - One thread may receive while another sends (a chat server's reader
///   and writer): OpenSSL is only ever called under the stream's lock,
///   which is never held while waiting for the peer to send.
/// - Dropping the stream sends `close_notify` if it can do so at once;
///   ``close()`` sends it and closes the socket; ``unwrap()`` exchanges
///   `close_notify` both ways and gives the plain socket back.
///
/// Sendable: OpenSSL's session, the pipe and the session state are only
/// touched under `sslLock`; what is being sent, and the sticky write error,
/// only under `sendLock` (taken before `sslLock` when both are). The one
/// exception, documented on the internal `TLSPipe`: a receive fills the
/// pipe's free room without the lock, which is safe because only the
/// (single) reader writes that room and the pipe's bounds move only under
/// the lock.
public final class TLSStream: ByteStream, @unchecked Sendable {
    /// The socket beneath.
    public let socket: Socket
    /// The context the session was made from.
    public let context: TLSContext
    /// Whether this end is the server.
    public let isServer: Bool

    let ssl: OpaquePointer
    let pipe: TLSPipe
    let sslLock = TLSLock()
    let sendLock = TLSLock()
    /// The peer, for messages.
    let peer: String?

    // Under sslLock.
    var state = SessionState()
    // Under sendLock.
    var outgoing: [UInt8] = []
    var writeError: (any Error)?

    private let receivedCount = Atomic<Int>(0)
    private let sentCount = Atomic<Int>(0)

    /// The most plaintext passed to OpenSSL at once: four records, so the
    /// ciphertext collected before it is sent stays small.
    static let writeChunk = 64 * 1024
    /// The most output buffer kept between sends (idle connections stay small).
    static let keptOutputCapacity = 20 * 1024

    /// What the session knows, under `sslLock`.
    struct SessionState {
        var established = false
        /// A fatal error happened: OpenSSL must not be asked to shut down.
        var failed = false
        /// Our close_notify was written.
        var closeSent = false
        /// The stream was closed or unwrapped: no more reads or writes.
        var finished = false
        /// The last receive filled the pipe's room: offer more next time.
        var lastReceiveFilled = false
        var info: TLSSessionInfo?
        /// SNI: the contexts to choose from, and the one chosen.
        var serverNames: [String: TLSContext] = [:]
        var chosen: TLSContext?
        /// After unwrap: bytes received past the peer's close_notify.
        var leftover: [UInt8] = []
    }

    init(socket: Socket, context: TLSContext, server: Bool, buffered: [UInt8]) throws {
        OpenSSLErrors.clear()
        let pipe = TLSPipe(buffered: buffered)
        guard let ssl = SSL_new(context.ctx) else { throw OpenSSLErrors.configurationError("make TLS session") }
        guard let bio = pipe.makeBIO() else {
            SSL_free(ssl)
            throw OpenSSLErrors.configurationError("make TLS session")
        }
        SSL_set_bio(ssl, bio, bio)
        self.socket = socket
        self.context = context
        self.isServer = server
        self.ssl = ssl
        self.pipe = pipe
        self.peer = (try? socket.peerAddress())?.description
        _ = cssl_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
        if server { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    deinit {
        // Best effort: a close_notify now, if the socket takes it at once.
        let closing = sslLock.withLock { () -> Bool in
            guard state.established, !state.failed, !state.closeSent, !socket.isClosed else { return false }
            OpenSSLErrors.clear()
            _ = SSL_shutdown(ssl)
            state.closeSent = true
            return true
        }
        let output = closing ? pipe.output : []
        if !output.isEmpty {
            _ = try? output.withUnsafeBytes { try socket.send($0, flags: Int32(MSG_DONTWAIT)) }
        }
        OpenSSLErrors.clear()
        SSL_free(ssl)
    }

    /// What the handshake negotiated.
    public var session: TLSSessionInfo { sslLock.withLock { state.info! } }

    /// Plaintext bytes received so far (what the handler read, not the
    /// records around it).
    public var bytesReceived: Int { receivedCount.load(ordering: .relaxed) }

    /// Plaintext bytes sent so far.
    public var bytesSent: Int { sentCount.load(ordering: .relaxed) }

    // MARK: - ByteStream

    /// Receives up to `buffer.count` plaintext bytes (at most one record's
    /// worth), waiting as the socket's time-out and `deadline` allow; 0
    /// after the peer's `close_notify`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: inout UInt64) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        var receives = 0
        // Nothing buffered anywhere (the common case between requests): an
        // SSL_read now could only ask for input, so receive first.
        var mustReceive = sslLock.withLock {
            !state.finished && pipe.pendingInput == 0 && SSL_has_pending(ssl) == 0
        }
        while true {
            let outcome: ReadOutcome = mustReceive ? .needInput : try readOnce(buffer)
            mustReceive = false
            switch outcome {
            case .data(let n):
                receivedCount.add(n, ordering: .relaxed)
                return n
            case .endOfFile:
                return 0
            case .needInput:
                let room = sslLock.withLock { pipe.receiveRoom(grow: state.lastReceiveFilled) }
                if receives > 0 { socket.startDeadline(&deadline) }  // one deadline for the whole call
                receives += 1
                let n = try socket.receive(into: room, deadline: &deadline)
                sslLock.withLock {
                    pipe.received(n)
                    state.lastReceiveFilled = n == room.count
                }
            }
        }
    }

    /// Whether received ciphertext (or decrypted plaintext) waits in the
    /// session: the handler's `wfile` then holds a reply until the reader
    /// has taken it, so replies to a burst of requests, or the echo of a bulk
    /// transfer, go out in one send instead of one per record.
    public var hasBufferedInput: Bool {
        sslLock.withLock { !state.finished && (pipe.pendingInput > 0 || SSL_has_pending(ssl) != 0) }
    }

    /// Receives what can be decrypted now without waiting: the count (0
    /// after `close_notify`), or nil when a whole record is not there yet.
    public func receiveNow(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        guard buffer.count > 0 else { return 0 }
        while true {
            switch try readOnce(buffer) {
            case .data(let n):
                receivedCount.add(n, ordering: .relaxed)
                return n
            case .endOfFile:
                return 0
            case .needInput:
                let room = sslLock.withLock { pipe.receiveRoom(grow: false) }
                guard let n = try socket.receiveNow(into: room) else { return nil }
                sslLock.withLock { pipe.received(n) }
            }
        }
    }

    /// Sends every byte, encrypted, under one deadline for the whole call
    /// (the socket's time-out). An error is sticky: later sends throw it.
    public func sendAll(_ bytes: UnsafeRawBufferPointer, deadline: inout UInt64) throws {
        guard bytes.count > 0 else { return }
        try sendLock.withLock {
            if let writeError { throw writeError }
            var offset = 0
            while offset < bytes.count {
                let n = min(bytes.count - offset, TLSStream.writeChunk)
                let failure: (any Error)? = sslLock.withLock {
                    if state.finished { return SocketError.closed(operation: "TLS send") }
                    if state.closeSent {
                        return TLSError(.session, operation: "TLS send", reason: "the session was shut down (close_notify sent)")
                    }
                    OpenSSLErrors.clear()
                    var written = 0
                    let r = SSL_write_ex(ssl, bytes.baseAddress! + offset, n, &written)
                    swap(&pipe.output, &outgoing)
                    if r == 1 { return nil }
                    return sessionError(SSL_get_error(ssl, Int32(r)), operation: "TLS send")
                }
                if offset > 0 { socket.startDeadline(&deadline) }
                try sendOutgoing(deadline: &deadline)
                if let failure {
                    writeError = failure
                    throw failure
                }
                offset += n
            }
            sentCount.add(bytes.count, ordering: .relaxed)
        }
    }

    // MARK: - Internals

    enum ReadOutcome {
        case data(Int)
        case endOfFile
        case needInput
    }

    /// One `SSL_read` under the lock; sends what it wrote (a key update's
    /// answer), if anything.
    private func readOnce(_ buffer: UnsafeMutableRawBufferPointer) throws -> ReadOutcome {
        let (outcome, wrote): (Result<ReadOutcome, any Error>, Bool) = sslLock.withLock {
            if state.finished { return (.failure(SocketError.closed(operation: "TLS receive")), false) }
            OpenSSLErrors.clear()
            var n = 0
            let r = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n)
            let wrote = !pipe.output.isEmpty
            if r == 1 { return (.success(.data(n)), wrote) }
            let code = SSL_get_error(ssl, Int32(r))
            if code == SSL_ERROR_WANT_READ { return (.success(.needInput), wrote) }
            if code == SSL_ERROR_ZERO_RETURN { return (.success(.endOfFile), wrote) }
            return (.failure(sessionError(code, operation: "TLS receive")), wrote)
        }
        if wrote {
            var deadline: UInt64 = 0
            try? sendLock.withLock {
                sslLock.withLock { swap(&pipe.output, &outgoing) }
                try sendOutgoing(deadline: &deadline)
            }
        }
        return try outcome.get()
    }

    /// Sends `outgoing` (under `sendLock`) with the socket's time-out;
    /// a failure sticks.
    func sendOutgoing(deadline: inout UInt64) throws {
        // Taken out of the property for the send: no access to it spans a
        // call, so the optimizer can drop the run-time exclusivity checks
        // of its every access (one long access anywhere keeps them all).
        var bytes: [UInt8] = []
        swap(&bytes, &outgoing)
        defer {
            // Keep room for a record or two; give back what a bulk write grew.
            if bytes.capacity <= TLSStream.keptOutputCapacity {
                bytes.removeAll(keepingCapacity: true)
                swap(&bytes, &outgoing)
            }
        }
        guard !bytes.isEmpty else { return }
        if let writeError { throw writeError }
        do {
            try bytes.withUnsafeBytes { try socket.sendAll($0, deadline: &deadline) }
        } catch {
            writeError = error
            throw error
        }
    }

    /// The error of a failed `SSL_read`/`SSL_write` after the handshake
    /// (under `sslLock`); marks the session failed.
    func sessionError(_ code: Int32, operation: String) -> any Error {
        let entries = OpenSSLErrors.take()
        state.failed = true
        if code == SSL_ERROR_SYSCALL || entries.contains(where: { $0.reason == SSL_R_UNEXPECTED_EOF_WHILE_READING }) {
            return SocketError.system(.connectionReset, operation: "\(operation): peer closed without close_notify",
                                      address: nil)
        }
        let reason = OpenSSLErrors.reason(entries, fallback: "TLS error \(code)")
        // TLS 1.3 clients learn of a refused certificate at their first read
        // ("tlsv13 alert certificate required").
        return TLSError(reason.contains("certificate") ? .certificate : .session, operation: operation, reason: reason)
    }
}

/// What a TLS handshake negotiated (Python's `SSLSocket.version()`,
/// `cipher()`, `selected_alpn_protocol()`, `getpeercert(binary_form=True)`).
public struct TLSSessionInfo: Sendable, Equatable {
    /// The protocol version: `TLSv1.3` or `TLSv1.2`.
    public let version: String
    /// The cipher suite, in OpenSSL's name (`TLS_AES_256_GCM_SHA384`).
    public let cipher: String
    /// The ALPN protocol agreed on; nil when none was.
    public let alpnProtocol: String?
    /// The name the client asked for (SNI); nil when it sent none (it
    /// connected by IP address).
    public let serverName: String?
    /// The peer's certificate, DER; nil when it sent none (a client, unless
    /// the server asked for one).
    public let peerCertificate: [UInt8]?
    /// Whether the session was resumed from an earlier one.
    public let isResumed: Bool

    /// The version as a ``TLSVersion``.
    public var protocolVersion: TLSVersion? {
        switch version {
        case "TLSv1.3": return .v1_3
        case "TLSv1.2": return .v1_2
        default: return nil
        }
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
