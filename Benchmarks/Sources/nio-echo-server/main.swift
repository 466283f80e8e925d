// SwiftNIO echo server used as a comparison point by the benchmarks.
//
// This is the stock NIO echo (ServerBootstrap + BackPressureHandler + a handler
// that writes back whatever it reads, flushing on channelReadComplete), the
// same shape as NIO's own `NIOEchoServer` example. A line echo is a byte echo,
// so no line framing is needed.
//
// CLI (same subset as the other benchmark servers):
//   nio-echo-server [--host 127.0.0.1] [--port 7007]
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
    printError("usage: nio-echo-server [--host H] [--port P]")
    exit(2)
}

var host = "127.0.0.1"
var port = 7007
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--host":
        guard let value = args.popFirst() else { usage() }
        host = value
    case "--port":
        guard let value = args.popFirst(), let p = Int(value), (0...65535).contains(p) else { usage() }
        port = p
    case "-h", "--help":
        usage()
    default:
        printError("nio-echo-server: unknown argument \(arg)")
        usage()
    }
}

// Exit 0 on SIGTERM/SIGINT. The benchmark runner just needs the process gone;
// there is no state worth a graceful shutdown.
signal(SIGTERM) { _ in _exit(0) }
signal(SIGINT) { _ in _exit(0) }
signal(SIGPIPE, SIG_IGN)

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
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
    printError("nio-echo-server: cannot listen on \(host):\(port): \(error)")
    exit(1)
}

let boundPort = channel.localAddress?.port ?? port
print("listening on \(host):\(boundPort)")
fflush(nil)  // flush stdout (nil: all streams; `stdout` is not concurrency-safe in Swift 6)

try channel.closeFuture.wait()
