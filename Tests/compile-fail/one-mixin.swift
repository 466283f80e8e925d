// Must compile: Python's one-line form, with either mix-in.
import SocketServer

final class ThreadedUDP: UDPServer, ThreadingMixIn {}
final class ForkedUnix: UnixStreamServer, ForkingMixIn {}
final class Tuned: ThreadingTCPServer { override var daemonThreads: Bool { true } }
