#if canImport(Glibc)
import Glibc
#endif
@testable import SocketServer
import Synchronization
import Testing

/// What a handler behind a proxy saw.
struct SeenConnection: Sendable {
    var client: SocketAddress
    var proxy: SocketAddress?
    var header: ProxyHeader?
    var healthCheck: Bool
}

/// A threading server that records its connections and errors.
final class ProxyRecordingServer: ThreadingTCPServer {
    let seen = Locked<[SeenConnection]>([])
    let errors = Locked<[any Error]>([])
    /// `CLIENT: ERROR` for each error, for failure messages.
    let errorLines = Locked<[String]>([])
    override func handleError(_ error: any Error, request: Request?, clientAddress: SocketAddress?) {
        errors.withLock { $0.append(error) }
        errorLines.withLock { $0.append("\(clientAddress.map { "\($0)" } ?? "-"): \(error)") }
    }
}

/// Answers each line with `CLIENT LINE`: the client address the handler sees.
final class ClientEchoHandler: StreamRequestHandler {
    override func handle() throws {
        let server = server as! ProxyRecordingServer
        server.seen.withLock {
            $0.append(SeenConnection(client: clientAddress, proxy: proxyAddress, header: proxyHeader, healthCheck: isHealthCheck))
        }
        while let line = try rfile.readLine() {
            try wfile.write(Array("\(clientAddress) ".utf8) + line)
        }
    }
}
