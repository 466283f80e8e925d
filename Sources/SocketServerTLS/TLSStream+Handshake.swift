internal import COpenSSL
import SocketServer

extension TLSStream {
    // MARK: - Making sessions

    /// The server's side of a connection accepted on `socket`: makes the
    /// handshake (on the calling thread, under one deadline of the
    /// context's `handshakeTimeout`) and returns the session.
    ///
    /// - `buffered`: bytes already taken from the socket (a PROXY header's
    ///   reader, ``/SocketServer/SocketReader/takeBuffered()``), read first.
    /// - `serverNames`: SNI, the context to use for a requested name
    ///   (lower case; `*.example.com` matches one label); `context` for
    ///   the others. Its certificate is used; the protocol settings are
    ///   `context`'s.
    ///
    /// Throws `SocketError.timeout` when the handshake did not complete in
    /// time, a `SocketError` with `isPeerGone` when the peer went away, and
    /// ``TLSError`` when it failed (plain text, an old version, an alert).
    public static func server(over socket: Socket, context: TLSContext, buffered: [UInt8] = [],
                              serverNames: [String: TLSContext] = [:]) throws -> TLSStream {
        guard context.isServer else { throw SocketError.invalidArgument("a client TLS context used to serve") }
        let stream = try TLSStream(socket: socket, context: context, server: true, buffered: buffered)
        stream.sslLock.withLock { stream.state.serverNames = serverNames }
        try stream.handshake()
        return stream
    }

    /// The client's side of a connected `socket` (STARTTLS, or a socket
    /// made some other way): sends `serverName` (SNI, unless it is an IP
    /// address), makes the handshake under one deadline, and checks the
    /// server's certificate against the context's trust and, unless the
    /// context says not to, against `serverName`.
    ///
    /// A certificate that does not verify throws ``TLSError`` of kind
    /// `.certificate`, whose reason says why (`certificate verify failed:
    /// unable to get local issuer certificate`, `... hostname mismatch`).
    public static func client(over socket: Socket, context: TLSContext, serverName: String?) throws -> TLSStream {
        guard let configuration = context.clientConfiguration else {
            throw SocketError.invalidArgument("a server TLS context used to connect")
        }
        let checking = configuration.checkHostName && configuration.trust != .insecureNoVerification
        let name = serverName.flatMap { $0.isEmpty ? nil : $0 }
        if checking && name == nil {
            throw SocketError.invalidArgument("checking the host name needs a server name")
        }
        let stream = try TLSStream(socket: socket, context: context, server: false, buffered: [])
        if let name {
            let isAddress = SocketAddress.isIPAddress(name)
            OpenSSLErrors.clear()
            if !isAddress && cssl_set_tlsext_host_name(stream.ssl, name) != 1 {
                throw OpenSSLErrors.configurationError("set server name \(name)")
            }
            if checking {
                let ok = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream.ssl), name)
                                   : SSL_set1_host(stream.ssl, name)
                if ok != 1 { throw OpenSSLErrors.configurationError("check host name \(name)") }
            }
        }
        try stream.handshake()
        return stream
    }

    /// Connects to `host`:`port` over TCP
    /// (``/SocketServer/Socket/createConnection(host:port:timeout:sourceAddress:)``,
    /// `timeout` set on the socket) and makes the client's handshake;
    /// `serverName` (SNI and the name checked) is `host` unless given.
    /// The socket is closed if the handshake fails.
    ///
    /// ```swift
    /// let context = try TLSContext(client: .init(trust: .caFile("ca.pem")))
    /// let tls = try TLSStream.connect(host: "localhost", port: 8443,
    ///                                 context: context)
    /// let (rfile, wfile) = tls.makeStreams()
    /// ```
    public static func connect(host: String, port: Int, context: TLSContext, serverName: String? = nil,
                               timeout: Double? = Socket.defaultTimeout) throws -> TLSStream {
        let socket = try Socket.createConnection(host: host, port: port, timeout: timeout)
        do {
            return try client(over: socket, context: context, serverName: serverName ?? host)
        } catch {
            socket.close()
            throw error
        }
    }

    // MARK: - Closing

    /// The server's end of a session: ``shutdown()`` (close_notify), its
    /// errors ignored (a peer that is gone needs no goodbye).
    public func finishStream() { try? shutdown() }

    /// Sends `close_notify` (once; later calls do nothing), within the
    /// context's handshake time-out, without waiting for the peer's. The
    /// socket stays open; the stream reads on (the peer's last bytes, then
    /// its `close_notify`) but sends no more.
    public func shutdown() throws {
        let deadline = Socket.monotonicNanos() &+ nanos(context.handshakeTimeout)
        try sendLock.withLock {
            // Into a local, not `outgoing`: no access to a property spans the send.
            var bytes: [UInt8] = []
            let wrote = sslLock.withLock { () -> Bool in
                guard state.established, !state.failed, !state.closeSent, !state.finished else { return false }
                OpenSSLErrors.clear()
                _ = SSL_shutdown(ssl)
                state.closeSent = true
                swap(&bytes, &pipe.output)
                return true
            }
            guard wrote else { return }
            try bytes.withUnsafeBytes { try send($0, before: deadline, operation: "TLS shutdown") }
        }
    }

    /// Sends `close_notify` if the session is still good, then closes the
    /// socket. Never throws: the connection is gone either way.
    public func close() {
        try? shutdown()
        sslLock.withLock { state.finished = true }
        socket.close()
    }

    /// Ends TLS on the connection and gives back the plain socket (Python's
    /// `unwrap()`, for STARTTLS-style protocols): sends `close_notify`,
    /// reads until the peer's (discarding any data before it), all within
    /// the context's handshake time-out. The stream is finished afterwards;
    /// bytes the peer sent after its `close_notify` are in ``leftover``.
    public func unwrap() throws -> Socket {
        try shutdown()
        let deadline = Socket.monotonicNanos() &+ nanos(context.handshakeTimeout)
        var scratch = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let code: Int32 = sslLock.withLock {
                OpenSSLErrors.clear()
                var n = 0
                let r = scratch.withUnsafeMutableBytes { SSL_read_ex(ssl, $0.baseAddress, $0.count, &n) }
                return r == 1 ? 0 : SSL_get_error(ssl, Int32(r))
            }
            if code == SSL_ERROR_ZERO_RETURN { break }
            if code == SSL_ERROR_WANT_READ {
                try fill(before: deadline, operation: "TLS unwrap")
                continue
            }
            if code != 0 {
                throw sslLock.withLock { sessionError(code, operation: "TLS unwrap") }
            }
        }
        sslLock.withLock {
            state.finished = true
            let unread = pipe.pendingInput
            state.leftover = Array(UnsafeRawBufferPointer(start: pipe.input + pipe.inputStart, count: unread))
        }
        return socket
    }

    /// After ``unwrap()``: bytes the peer sent after its `close_notify`
    /// that were already received (the plain protocol's first bytes).
    public var leftover: [UInt8] { sslLock.withLock { state.leftover } }

    // MARK: - The handshake

    /// Makes the handshake under one deadline; records what it negotiated.
    func handshake() throws {
        let operation = "TLS handshake" + (peer.map { " with \($0)" } ?? "")
        let deadline = Socket.monotonicNanos() &+ nanos(context.handshakeTimeout)
        while true {
            let (r, code, entries) = sslLock.withLock { () -> (Int32, Int32, [OpenSSLErrors.Entry]) in
                OpenSSLErrors.clear()
                let r = SSL_do_handshake(ssl)
                if r == 1 { return (1, 0, []) }
                return (r, SSL_get_error(ssl, r), OpenSSLErrors.take())
            }
            // What OpenSSL wrote (our flight, or the alert of a failure).
            var output: [UInt8] = []
            sslLock.withLock { swap(&output, &pipe.output) }
            if r != 1 && code != SSL_ERROR_WANT_READ {
                try? output.withUnsafeBytes { try send($0, before: deadline, operation: operation) }
                sslLock.withLock { state.failed = true }
                throw handshakeError(code, entries, operation: operation)
            }
            try output.withUnsafeBytes { try send($0, before: deadline, operation: operation) }
            if r == 1 { break }
            try fill(before: deadline, operation: operation)
        }
        sslLock.withLock {
            state.established = true
            state.info = negotiated()
        }
    }

    private func handshakeError(_ code: Int32, _ entries: [OpenSSLErrors.Entry], operation: String) -> any Error {
        if code == SSL_ERROR_SYSCALL || code == SSL_ERROR_ZERO_RETURN
            || entries.contains(where: { $0.reason == SSL_R_UNEXPECTED_EOF_WHILE_READING }) {
            return SocketError.system(.connectionReset, operation: "\(operation): peer closed the connection", address: nil)
        }
        if entries.contains(where: { $0.reason == SSL_R_CERTIFICATE_VERIFY_FAILED }) {
            let result = sslLock.withLock { SSL_get_verify_result(ssl) }
            let why = String(cString: X509_verify_cert_error_string(result))
            return TLSError(.certificate, operation: operation, reason: "certificate verify failed: \(why)")
        }
        let reason = OpenSSLErrors.reason(entries, fallback: "handshake failed (\(code))")
        let aboutCertificates = reason.contains("certificate") || reason.contains("unknown ca")
        return TLSError(aboutCertificates ? .certificate : .handshake, operation: operation, reason: reason)
    }

    /// What the finished handshake agreed on (under `sslLock`).
    private func negotiated() -> TLSSessionInfo {
        let version = String(cString: SSL_get_version(ssl))
        let cipher = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? ""
        var alpnPointer: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpnPointer, &alpnLength)
        let alpn = alpnPointer.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        let name = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) }
        var der: [UInt8]?
        if let certificate = SSL_get1_peer_certificate(ssl) {
            let length = i2d_X509(certificate, nil)
            if length > 0 {
                var bytes = [UInt8](repeating: 0, count: Int(length))
                bytes.withUnsafeMutableBufferPointer { buffer in
                    var out: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
                    _ = i2d_X509(certificate, &out)
                }
                der = bytes
            }
            X509_free(certificate)
        }
        return TLSSessionInfo(version: version, cipher: cipher, alpnProtocol: alpn, serverName: name,
                              peerCertificate: der, isResumed: SSL_session_reused(ssl) == 1)
    }

    /// SNI (under `sslLock`, from OpenSSL's callback): switches the session
    /// to the context for `name`, if one is configured.
    func chooseContext(for name: String) {
        // Read into a local first: an access to `state` spanning the call
        // would make every access to it checked at run time.
        let names = state.serverNames
        guard let chosen = TLSStage.match(name, in: names) else { return }
        state.chosen = chosen  // retained: the SSL now uses its SSL_CTX
        _ = SSL_set_SSL_CTX(ssl, chosen.ctx)
    }

    // MARK: - Waiting under a hard deadline

    /// Receives once into the pipe, waiting at most until `deadline`.
    func fill(before deadline: UInt64, operation: String) throws {
        let room = sslLock.withLock { pipe.receiveRoom(grow: false) }
        while true {
            try wait(for: Int16(POLLIN), before: deadline, operation: operation)
            if let n = try socket.receiveNow(into: room) {
                sslLock.withLock { pipe.received(n) }
                return
            }
        }
    }

    /// Sends every byte, waiting at most until `deadline`.
    func send(_ bytes: UnsafeRawBufferPointer, before deadline: UInt64, operation: String) throws {
        var offset = 0
        while offset < bytes.count {
            do {
                offset += try socket.send(UnsafeRawBufferPointer(rebasing: bytes[offset...]), flags: Int32(MSG_DONTWAIT))
            } catch let e as SocketError where e.isTimeout || e.errno == .wouldBlock {
                try wait(for: Int16(POLLOUT), before: deadline, operation: operation)
            }
        }
    }

    /// Waits until the socket is ready for `events` or `deadline` passes
    /// (then throws `SocketError.timeout`).
    private func wait(for events: Int16, before deadline: UInt64, operation: String) throws {
        while true {
            let fd = socket.fileno
            guard fd >= 0 else { throw SocketError.closed(operation: operation) }
            let now = Socket.monotonicNanos()
            guard now < deadline else { throw SocketError.timeout(operation: operation, address: nil) }
            let ms = Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&entry, 1, ms)
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw SocketError.system(Errno(errno), operation: operation, address: nil) }
        }
    }
}

/// OpenSSL's SNI callback, set on every server context: hands the name to
/// the session (found through the SSL's app data) to choose a context.
func serverNameCallback(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard let ssl, let data = cssl_get_app_data(ssl),
          let name = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)) else { return SSL_TLSEXT_ERR_OK }
    Unmanaged<TLSStream>.fromOpaque(data).takeUnretainedValue().chooseContext(for: String(cString: name))
    return SSL_TLSEXT_ERR_OK
}

/// Seconds as nanoseconds, for deadlines.
func nanos(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }

extension SocketAddress {
    /// Whether `text` is a numeric IPv4 or IPv6 address.
    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
