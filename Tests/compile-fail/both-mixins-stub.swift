// Must NOT compile either: the "add stubs for conformance" fix-it, followed.
import SocketServer

final class Stubbed: TCPServer, ThreadingMixIn, ForkingMixIn {
    typealias ConcurrencyModel = ThreadPerRequest
}
