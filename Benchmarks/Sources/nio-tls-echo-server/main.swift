// SwiftNIO + NIOSSL TLS echo server, the event-loop comparison point of the
// benchmark's TLS rows.
//
// The plain nio-echo-server (ServerBootstrap + BackPressureHandler + a
// handler that writes back whatever it reads, flushing on
// channelReadComplete) with a NIOSSLServerHandler first in every child
// pipeline: NIOSSL's TLS on its vendored BoringSSL. TLS settings: NIOSSL's
// server defaults (TLS 1.3 and 1.2 cipher suites, BoringSSL's two TLS 1.3
// session tickets per handshake, no client certificates) with TLS 1.2 at
// least, as the other servers. A line echo is a byte echo, so no line framing
// is needed.
//
// CLI (the subset the benchmark servers share, plus the certificate):
//   nio-tls-echo-server --cert FILE --key FILE [--host 127.0.0.1] [--port 7007]
// Once listening, prints exactly one line `listening on HOST:PORT` (real port;
// `--port 0` lets the kernel choose) and flushes stdout. Exits 0 on
// SIGTERM/SIGINT.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import NIOSSL

private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

private func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

private func usage() -> Never {
    printError("usage: nio-tls-echo-server --cert FILE --key FILE [--host H] [--port P]")
    exit(2)
}

var host = "127.0.0.1"
var port = 7007
var certFile: String?
var keyFile: String?
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--host":
        guard let value = args.popFirst() else { usage() }
        host = value
    case "--port":
        guard let value = args.popFirst(), let p = Int(value), (0...65535).contains(p) else { usage() }
        port = p
    case "--cert":
        guard let value = args.popFirst() else { usage() }
        certFile = value
    case "--key":
        guard let value = args.popFirst() else { usage() }
        keyFile = value
    case "-h", "--help":
        usage()
    default:
        printError("nio-tls-echo-server: unknown argument \(arg)")
        usage()
    }
}
guard let certFile, let keyFile else { usage() }

signal(SIGTERM) { _ in _exit(0) }
signal(SIGINT) { _ in _exit(0) }
signal(SIGPIPE, SIG_IGN)

let sslContext: NIOSSLContext
do {
    let chain = try NIOSSLCertificate.fromPEMFile(certFile).map { NIOSSLCertificateSource.certificate($0) }
    let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
    var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
    configuration.minimumTLSVersion = .tlsv12
    sslContext = try NIOSSLContext(configuration: configuration)
} catch {
    printError("nio-tls-echo-server: cannot set up TLS with \(certFile) and \(keyFile): \(error)")
    exit(1)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            try channel.pipeline.syncOperations.addHandler(BackPressureHandler())
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())

let channel: Channel
do {
    channel = try bootstrap.bind(host: host, port: port).wait()
} catch {
    printError("nio-tls-echo-server: cannot listen on \(host):\(port): \(error)")
    exit(1)
}

let boundPort = channel.localAddress?.port ?? port
print("listening on \(host):\(boundPort)")
fflush(nil)  // flush stdout (nil: all streams; `stdout` is not concurrency-safe in Swift 6)

try channel.closeFuture.wait()
