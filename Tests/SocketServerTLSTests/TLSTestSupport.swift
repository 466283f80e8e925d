#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import SocketServerTLS
import Synchronization
import Testing
import TestSupport

/// Certificates made once per test run by the openssl CLI, in a temp dir:
/// a CA; two server certificates for localhost, 127.0.0.1 and ::1 (A and
/// B, for reloads); one for `b.test` (SNI); a client certificate; another
/// CA that signed none of them.
final class Certificates: Sendable {
    let directory: String

    static let shared: Result<Certificates, TestFailure> = {
        do { return .success(try Certificates()) } catch let e as TestFailure { return .failure(e) } catch {
            return .failure(TestFailure("\(error)"))
        }
    }()

    static func get() throws -> Certificates { try shared.get() }

    private let factory: CertificateFactory

    private init() throws {
        factory = try CertificateFactory(prefix: "ss-tls")
        directory = factory.directory
        try factory.makeCA("ca", subject: "/CN=SocketServer Test CA")
        try factory.makeCA("otherca", subject: "/CN=Some Other CA")
        let localhost = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
        try factory.issue("server", serial: 1001, subject: "/CN=localhost", extensions: localhost, der: true)
        try factory.issue("server2", serial: 1002, subject: "/CN=localhost", extensions: localhost, der: true)
        try factory.issue("btest", serial: 1003, subject: "/CN=b.test", extensions: "subjectAltName=DNS:b.test", der: true)
        try factory.issue("client", serial: 1004, subject: "/CN=test client", extensions: "extendedKeyUsage=clientAuth",
                          der: true)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }
    func der(_ name: String) -> [UInt8] { readFile(path("\(name).der")) ?? [] }

    /// A server context for `name` (server, server2, btest).
    func serverContext(_ name: String = "server", configure: (inout TLSServerConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var configuration = TLSServerConfiguration(certificateChainFile: path("\(name).pem"), privateKeyFile: path("\(name).key"))
        configure(&configuration)
        return try TLSContext(server: configuration)
    }

    /// A client context trusting the test CA (or `ca`).
    func clientContext(ca: String = "ca.pem", configure: (inout TLSClientConfiguration) -> Void = { _ in }) throws -> TLSContext {
        var configuration = TLSClientConfiguration(trust: .caFile(path(ca)))
        configure(&configuration)
        return try TLSContext(client: configuration)
    }
}

/// Answers each line: `info` with what TLS negotiated, `quit` by closing,
/// anything else echoed. Records how each connection ended.
final class InfoHandler: StreamRequestHandler {
    override func handle() throws {
        while let text = try rfile.readTextLine() {
            let line = text
            if text == "info" {
                let t = tls
                let cert = t?.peerCertificate.map { "\($0.count)" } ?? "none"
                try wfile.write("version=\(t?.version ?? "-") cipher=\(t?.cipher ?? "-") alpn=\(t?.alpnProtocol ?? "-") "
                                + "sni=\(t?.serverName ?? "-") peercert=\(cert)\n")
            } else if text == "quit" {
                return
            } else {
                try wfile.write(line + "\n")
            }
        }
        (server as? TLSTestServer)?.events.withLock { $0.append("clean end of file") }
    }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// A threading TCP server on 127.0.0.1 that records the errors it is told of.
class TLSTestServer: ThreadingTCPServer {
    let errors = Locked<[any Error]>([])
    let events = Locked<[String]>([])

    override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        errors.withLock { $0.append(error) }
    }

    var errorTexts: [String] { errors.withLock { $0.map { "\($0)" } } }

    /// Starts serving `context` with `handler` on a free port.
    static func start(_ context: TLSContext, handler: BaseRequestHandler.Type = InfoHandler.self,
                      serverNames: [String: TLSContext] = [:], host: String = "127.0.0.1") throws -> (TLSTestServer, TLSStage) {
        let server = try TLSTestServer((host, 0), handler)
        let stage = server.enableTLS(context, serverNames: serverNames)
        try server.serveInBackground(pollInterval: 0.05)
        return (server, stage)
    }

    var port: Int { serverAddress.port! }

    func stop() {
        shutdown()
        serverClose()
    }
}

/// A TLS client of the test server: connected, handshaken, with streams.
struct TestClient {
    let stream: TLSStream
    let reader: SocketReader
    let writer: SocketWriter

    init(port: Int, context: TLSContext, host: String = "127.0.0.1", serverName: String? = "localhost") throws {
        stream = try TLSStream.connect(host: host, port: port, context: context, serverName: serverName, timeout: 10)
        (reader, writer) = stream.makeStreams()
    }

    /// Sends a line, returns the line answered (without its LF).
    func ask(_ line: String) throws -> String? {
        try writer.write(line + "\n")
        try writer.flush()
        return try reader.readTextLine()?.trimmingCharacters()
    }
}
