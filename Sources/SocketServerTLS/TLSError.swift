internal import COpenSSL
import SocketServer

/// An error of the TLS layer: a certificate or key that cannot be loaded,
/// a handshake that failed, a peer certificate that does not verify.
///
/// The connection's own failures stay ``/SocketServer/SocketError``s: a
/// time-out is ``/SocketServer/SocketError/timeout(operation:address:)``,
/// and a peer that went away (a reset, or a close without TLS's
/// `close_notify`) is a `SocketError` whose `isPeerGone` is true, so
/// servers report it in one quiet line as they do for plain TCP.
///
/// The ``reason`` keeps OpenSSL's own words (`tlsv1 alert protocol
/// version`, `wrong version number`, `certificate verify failed: unable
/// to get local issuer certificate`, `tlsv1 alert unknown ca`). Match
/// ``kind`` rather than the text: a peer's alert about our certificate
/// (`unknown ca`) is a ``Kind/certificate`` failure too.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Kind: Sendable, Equatable {
        /// A context could not be made: a certificate, key or CA file that
        /// cannot be read or does not match, an option OpenSSL refused.
        case configuration
        /// The handshake failed: the peer spoke plain text or an old
        /// protocol version, sent an alert, or had no cipher in common.
        case handshake
        /// The peer's certificate did not verify (untrusted, expired, for
        /// another name), or a required client certificate was missing.
        case certificate
        /// The TLS stream broke after the handshake (a bad record, an
        /// alert), or was used after it was closed.
        case session
    }

    /// What kind of failure this is.
    public let kind: Kind
    /// What was being done, as a phrase (`TLS handshake with 127.0.0.1:443`,
    /// `load certificate chain cert.pem`).
    public let operation: String
    /// Why it failed, in OpenSSL's words.
    public let reason: String

    /// An error of `kind` while doing `operation`.
    public init(_ kind: Kind, operation: String, reason: String) {
        self.kind = kind
        self.operation = operation
        self.reason = reason
    }

    /// Whether the peer's certificate was the problem.
    public var isCertificateError: Bool { kind == .certificate }

    /// `operation: reason`.
    public var description: String { "\(operation): \(reason)" }
}

/// OpenSSL's thread-local error queue, read and emptied.
enum OpenSSLErrors {
    /// One queued error: its packed code and its text.
    struct Entry {
        let code: UInt
        let text: String
        var reason: Int32 { cssl_err_get_reason(code) }
    }

    /// Empties the queue, so the next failure reads only its own errors.
    /// It is nearly always empty already: looking costs a few instructions,
    /// emptying it walks all of its slots (over a thousand instructions per
    /// echoed line when done before every call, seen with callgrind).
    @inline(__always)
    static func clear() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    /// Takes every queued error, oldest first.
    static func take() -> [Entry] {
        var entries: [Entry] = []
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            var text: String
            if cssl_err_is_system(code) != 0 {
                text = String(cString: strerror(cssl_err_get_reason(code)))
            } else if let r = ERR_reason_error_string(code) {
                text = String(cString: r)
            } else {
                text = "OpenSSL error \(String(code, radix: 16))"
            }
            if let data, flags & ERR_TXT_STRING != 0 {
                let detail = String(cString: data)
                if !detail.isEmpty { text += " (\(detail))" }
            }
            entries.append(Entry(code: code, text: text))
        }
        return entries
    }

    /// The queued errors as one reason (the distinct texts, joined), or
    /// `fallback` when the queue is empty.
    static func reason(_ entries: [Entry], fallback: String) -> String {
        var seen: [String] = []
        for e in entries where !seen.contains(e.text) { seen.append(e.text) }
        return seen.isEmpty ? fallback : seen.joined(separator: ": ")
    }

    /// Takes the queue and makes a configuration error of it.
    static func configurationError(_ operation: String, fallback: String = "failed") -> TLSError {
        TLSError(.configuration, operation: operation, reason: reason(take(), fallback: fallback))
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
