/// The tag types that tell the mix-ins apart (see ``ConcurrencyMixIn``).
public enum ThreadPerRequest {}
/// The tag types that tell the mix-ins apart (see ``ConcurrencyMixIn``).
public enum ProcessPerRequest {}

/// What the concurrency mix-ins have in common. A server adopts at most
/// one: each fixes ``ConcurrencyModel`` to its own tag type, so a class that
/// adopts both does not compile, as no type can be both tags.
///
/// Swift has no way to attach a message of our own to that refusal. The
/// compiler says "type 'S' does not conform to protocol 'ConcurrencyMixIn'",
/// offers to "add stubs for conformance" (do not: a stub cannot satisfy
/// both), and points at the line of ``ConcurrencyModel`` below, whose
/// comment it shows, and which says what to do: keep one mix-in. A
/// `typealias ConcurrencyModel` in the class does not help either; the
/// compiler then says the two tag types would have to be equivalent.
/// `Tests/compile-fail` checks all of it.
public protocol ConcurrencyMixIn: BaseServer {
    /// ``ThreadPerRequest`` or ``ProcessPerRequest``: which mix-in this is.
    associatedtype ConcurrencyModel // Both ThreadingMixIn and ForkingMixIn adopted? Keep one: no stub can satisfy both.
}

/// Handle each request in a new thread (Python's `ThreadingMixIn`):
///
/// ```swift
/// final class EchoServer: TCPServer, ThreadingMixIn {}
/// ```
///
/// Settings, overridable in the server class: ``BaseServer/daemonThreads``,
/// ``BaseServer/blockOnClose``, ``BaseServer/threadStackSize``.
/// ``BaseServer/serverClose()`` waits for the handler threads unless they
/// are daemon threads or `blockOnClose` is off. A thread that cannot be
/// started closes that one request and reports it through
/// ``BaseServer/handleError(_:request:clientAddress:)``.
public protocol ThreadingMixIn: ConcurrencyMixIn where ConcurrencyModel == ThreadPerRequest {}

/// Handle each request in a forked child process (Python's `ForkingMixIn`):
///
/// ```swift
/// final class EchoServer: TCPServer, ForkingMixIn {}
/// ```
///
/// At most ``BaseServer/maxChildren`` children run at once; finished ones
/// are reaped in ``BaseServer/serviceActions()`` and
/// ``BaseServer/handleTimeout()``. The child runs the handler, closes the
/// request and ends with `_exit`, never returning into the serving loop.
/// ``BaseServer/serverClose()`` waits for the children when
/// ``BaseServer/blockOnClose`` is on.
public protocol ForkingMixIn: ConcurrencyMixIn where ConcurrencyModel == ProcessPerRequest {}

// The named combinations, as Python's module has them.

/// A TCP server with a thread per connection.
open class ThreadingTCPServer: TCPServer, ThreadingMixIn {}
/// A UDP server with a thread per datagram.
open class ThreadingUDPServer: UDPServer, ThreadingMixIn {}
/// A TCP server with a process per connection.
open class ForkingTCPServer: TCPServer, ForkingMixIn {}
/// A UDP server with a process per datagram.
open class ForkingUDPServer: UDPServer, ForkingMixIn {}
/// A Unix stream server with a thread per connection.
open class ThreadingUnixStreamServer: UnixStreamServer, ThreadingMixIn {}
/// A Unix datagram server with a thread per datagram.
open class ThreadingUnixDatagramServer: UnixDatagramServer, ThreadingMixIn {}
/// A Unix stream server with a process per connection.
open class ForkingUnixStreamServer: UnixStreamServer, ForkingMixIn {}
/// A Unix datagram server with a process per datagram.
open class ForkingUnixDatagramServer: UnixDatagramServer, ForkingMixIn {}
