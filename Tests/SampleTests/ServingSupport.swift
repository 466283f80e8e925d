// Support for the serving-options tests: certificates made with the openssl
// CLI, other programs (python3, systemd-socket-activate), logfmt parsing,
// connections from a chosen source address.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#endif
import SocketServer
import Testing
import TestSupport

/// Runs a program (a sample by name, or one from PATH) to its end, at most
/// `timeout` seconds: its exit code, stdout and stderr.
func runProgram(_ name: String, _ arguments: [String], stdin: Proc.Input = .null, timeout: Double = 30) throws
    -> (code: Int32, stdout: String, stderr: String) {
    let executable = name.contains("/") || isSample(name) ? name : (programPath(name) ?? name)
    let p = try Proc(executable, arguments, stdin: stdin)
    let out = p.stdout(timeout: timeout)
    return (p.exitCode(), out, p.stderr)
}

private func isSample(_ name: String) -> Bool { access(binDirectory + "/" + name, X_OK) == 0 }

/// Certificates made once per run with the openssl CLI: a CA (`ca.pem`), a
/// server certificate it signed for localhost and 127.0.0.1 (`server.pem`,
/// `server.key`), and a file that is no certificate (`bad.pem`).
final class SampleCertificates: Sendable {
    let directory: String
    private let factory: CertificateFactory

    private static let shared: Result<SampleCertificates, TestFailure> = {
        do { return .success(try SampleCertificates()) } catch let e as TestFailure { return .failure(e) } catch {
            return .failure(TestFailure("\(error)"))
        }
    }()

    static func get() throws -> SampleCertificates { try shared.get() }

    private init() throws {
        factory = try CertificateFactory(prefix: "sample-certs")
        directory = factory.directory
        try factory.makeCA("ca", subject: "/CN=Sample Tests CA")
        try factory.issue("server", serial: 4001, subject: "/CN=localhost", extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1")
        try writeFile(factory.path("bad.pem"), "this is not a certificate\n")
    }

    func path(_ name: String) -> String { factory.path(name) }
    var ca: String { path("ca.pem") }
    /// `--tls-cert server.pem --tls-key server.key`.
    var serverOptions: [String] { ["--tls-cert", path("server.pem"), "--tls-key", path("server.key")] }
}

/// One logfmt line as key/value pairs (values unquoted and unescaped);
/// nil if it is not logfmt.
func parseLogfmt(_ line: String) -> [(key: String, value: String)]? {
    let b = Array(line.utf8)
    var i = 0
    var pairs: [(key: String, value: String)] = []
    while i < b.count {
        while i < b.count && b[i] == 0x20 { i += 1 }
        if i == b.count { break }
        let keyStart = i
        while i < b.count && b[i] != 0x3D && b[i] != 0x20 && b[i] != 0x22 { i += 1 }
        guard i < b.count, b[i] == 0x3D, i > keyStart else { return nil }
        let key = String(decoding: b[keyStart..<i], as: UTF8.self)
        i += 1
        var value: [UInt8] = []
        if i < b.count && b[i] == 0x22 {
            i += 1
            var closed = false
            while i < b.count {
                if b[i] == 0x5C {
                    guard i + 1 < b.count else { return nil }
                    switch b[i + 1] {
                    case UInt8(ascii: "n"): value.append(0x0A)
                    case UInt8(ascii: "r"): value.append(0x0D)
                    case UInt8(ascii: "t"): value.append(0x09)
                    default: value.append(b[i + 1])
                    }
                    i += 2
                } else if b[i] == 0x22 {
                    i += 1
                    closed = true
                    break
                } else {
                    value.append(b[i])
                    i += 1
                }
            }
            guard closed, i == b.count || b[i] == 0x20 else { return nil }
        } else {
            while i < b.count && b[i] != 0x20 {
                guard b[i] != 0x22 else { return nil }
                value.append(b[i])
                i += 1
            }
        }
        pairs.append((key, String(decoding: value, as: UTF8.self)))
    }
    return pairs.isEmpty ? nil : pairs
}

/// Whether `text` is an RFC 3339 time in UTC: `2026-12-02T10:00:00Z`,
/// with or without a fraction of a second.
func isRFC3339UTC(_ text: String) -> Bool {
    let b = Array(text.utf8)
    func digits(_ range: Range<Int>) -> Bool { range.allSatisfy { $0 < b.count && b[$0] >= 0x30 && b[$0] <= 0x39 } }
    guard b.count >= 20, digits(0..<4), b[4] == 0x2D, digits(5..<7), b[7] == 0x2D, digits(8..<10), b[10] == 0x54,
          digits(11..<13), b[13] == 0x3A, digits(14..<16), b[16] == 0x3A, digits(17..<19), b.last == 0x5A else { return false }
    if b.count == 20 { return true }
    return b[19] == 0x2E && b.count > 21 && digits(20..<(b.count - 1))
}

/// The lines of a log (stderr) that are `event=EVENT` records, as dictionaries.
func logRecords(_ log: String, event: String) -> [[String: String]] {
    log.split(separator: "\n").compactMap { parseLogfmt(String($0)) }.filter { pairs in
        pairs.contains { $0.key == "event" && $0.value == event }
    }.map { Dictionary($0.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }) }
}

/// A connection to 127.0.0.1:`port` from `source` (such as 127.0.0.2).
func connect(from source: String, port: Int) throws -> Client {
    let s = try Socket(family: .inet, type: .stream)
    try s.setTimeout(10)
    try s.bind(to: SocketAddress(ipv4: source, port: 0))
    try s.connect(to: SocketAddress(ipv4: "127.0.0.1", port: port))
    return Client(socket: s)
}

extension Client {
    /// Whether the server closes the connection without sending a byte
    /// (end of file, or a reset), within the socket's time-out.
    func closedWithNothingReceived() -> Bool {
        do {
            return try socket.recv(1).isEmpty
        } catch let e as SocketError where e.errno == .connectionReset {
            return true
        } catch {
            return false
        }
    }

    /// Whether something arrives to read within `seconds` (a bounded poll).
    func readable(within seconds: Double) -> Bool {
        var fds = pollfd(fd: socket.fileno, events: Int16(POLLIN), revents: 0)
        return poll(&fds, 1, Int32(seconds * 1000)) > 0
    }

    /// Closes with a reset (SO_LINGER 0) instead of a FIN.
    func reset() throws {
        try resetOnClose(socket)
        socket.close()
    }

    var localPort: Int { (try? socket.localAddress().port ?? -1) ?? -1 }
}

/// A python3 TLS client: connects to 127.0.0.1:PORT trusting CA, checks
/// the name `localhost` (after sending HEADER in the clear, if given),
/// sends LINE and prints the TLS version, then the reply line.
let pythonTLSClient = """
    import socket, ssl, sys
    ca, port, line = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        if len(sys.argv) > 4:
            raw.sendall(sys.argv[4].encode())  # a PROXY header before the ClientHello
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(line.encode() + b"\\n")
            data = b""
            while not data.endswith(b"\\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(s.version())
            sys.stdout.write(data.decode())
            s.unwrap()  # close_notify first: a bare close is a peer gone to the server
    """
