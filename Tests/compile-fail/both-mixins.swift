// Must NOT compile: a server cannot adopt both concurrency mix-ins.
import SocketServer

final class Confused: TCPServer, ThreadingMixIn, ForkingMixIn {}
