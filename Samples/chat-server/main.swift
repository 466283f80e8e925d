// chat-server: group chat over a line protocol; a line from one client goes
// to all the others. The showcase of the threading model.
//
// How it is built:
//
// - One `ThreadingMixIn` server; its handler thread per client is that
//   client's *reader*: it reads lines (at most 4096 bytes) and acts on them.
// - All shared state (who is online, under which name, and each client's
//   outbox) is one `Room` behind one `Locked` (the library's lock). Every event (a join, a line,
//   a nick change, a departure) is handled entirely under that lock, and
//   "handled" means *queued* to the outboxes of those who must hear of it,
//   never sent. So the lock is held only for memory work, and everyone sees
//   events in one order: a client's `joined` before its lines, its `left`
//   after them.
// - Each client has an `Outbox`: a queue of bytes, bounded to 1 MiB, with
//   its own *writer* thread that waits for bytes and sends them. A client
//   that stops reading blocks only its own writer; when its queue would pass
//   1 MiB it is dropped on the spot (others receive `* NAME left`) and its
//   socket shut down, which wakes its reader and writer.
// - Every way out goes through `depart`: EOF, `/quit`, a socket error, a
//   line too long, a queue overflow, the server shutting down (which shuts
//   connections down: the reader sees EOF). The reader leaves the room
//   (once: a client already dropped is not announced twice), lets its
//   writer send what is left (at most 2 seconds, then cuts it off), waits
//   for the writer to end, and only then returns, so the library closes a
//   socket no thread still uses.
// - No idle time-out: chat clients are meant to sit idle for hours.
//   TCP keep-alive finds peers that vanished; `--max-clients` bounds the
//   threads and memory (two threads and at most ~1 MiB per client).
import Dispatch
import SampleSupport
import SocketServer
import Synchronization

let usage = """
    usage: chat-server [--host HOST] [--port 9999] [--max-clients 1024]

    Group chat: every line a client sends goes to all the others, prefixed
    with its name. Commands: /nick NAME, /who, /quit, /help. Lines are at most
    4096 bytes; an empty line, or one of only spaces and tabs, goes to
    nobody. At most 1 MiB is queued for any one client; a client that
    stops reading is disconnected then. Clients may stay idle indefinitely
    (TCP keep-alive detects vanished peers).

    options:
      --host HOST         address to listen on (default 127.0.0.1)
      --port N            port (default 9999; 0: any free port)
      --max-clients N     most clients online at once (default 1024)
    \(ServingOptions.usageLines)
      -h, --help          show this help
    """

let maxLineLength = 4096
let maxQueuedBytes = 1 << 20

// MARK: - A client's outbound side

/// The bytes waiting to be sent to one client, and the thread that sends them.
final class Outbox: Sendable {
    private struct State {
        var pending: [UInt8] = []
        /// Bytes queued and not yet sent (pending and in the writer's hands).
        var queued = 0
        /// No more bytes will come: send what is queued, then stop.
        var closing = false
        /// Stop at once (dropped, or the connection failed).
        var aborted = false
        /// Bytes the writer has sent (for the connection's `out=` count).
        var sent = 0
    }

    /// The connection's stream (a TLS session, or the socket itself).
    let stream: any ByteStream
    private let state = Locked(State())
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(stream: any ByteStream) { self.stream = stream }

    /// Queues a line (its LF added); false if the queue would grow past 1 MiB.
    func enqueue(_ line: String) -> Bool {
        let bytes = Array(line.utf8) + [0x0A]
        let accepted: Bool = state.withLock { s in
            if s.closing || s.aborted { return true }  // on its way out: nothing more to send
            if s.queued + bytes.count > maxQueuedBytes { return false }
            s.pending += bytes
            s.queued += bytes.count
            return true
        }
        wakeup.signal()
        return accepted
    }

    /// Stops the writer at once and shuts the connection down, waking a
    /// reader blocked in `recv` and a writer blocked in `send`.
    func abort() {
        state.withLock { $0.aborted = true }
        try? stream.socket.shutdown(.both)
        wakeup.signal()
    }

    /// How many bytes the writer has sent.
    var sentCount: Int { state.withLock { $0.sent } }

    /// Lets the writer send what is queued, then waits for it to end: at
    /// most `grace` seconds, after which the connection is cut.
    func closeAndWait(grace: Double) {
        state.withLock { $0.closing = true }
        wakeup.signal()
        if finished.wait(timeout: .now() + grace) == .timedOut {
            abort()
            finished.wait()
        }
    }

    /// The writer thread: sends whatever is queued, in order, until closed.
    func runWriter() {
        defer { finished.signal() }
        while true {
            wakeup.wait()
            let (batch, done) = state.withLock { s -> ([UInt8], Bool) in
                if s.aborted { return ([], true) }
                let batch = s.pending
                s.pending = []
                return (batch, s.closing && batch.isEmpty)
            }
            if done { return }
            if batch.isEmpty { continue }
            do {
                var deadline: UInt64 = 0
                try batch.withUnsafeBytes { try stream.sendAll($0, deadline: &deadline) }
            } catch {
                state.withLock { $0.sent += (error as? SocketError)?.bytesSent ?? 0 }
                abort()  // the peer is gone: wake the reader too
                return
            }
            state.withLock { s in
                s.queued -= batch.count
                s.sent += batch.count
            }
        }
    }
}

// MARK: - The room

/// Who is online: the state every handler thread shares, behind one lock.
struct Room {
    struct Member {
        var name: String
        let outbox: Outbox
    }

    var capacity: Int
    var members: [Int: Member] = [:]
    private var nextID = 0

    init(capacity: Int) { self.capacity = capacity }

    /// Adds a client, welcomes it and announces it; nil when the room is full.
    mutating func join(name: String, outbox: Outbox) -> Int? {
        guard members.count < capacity else { return nil }
        nextID += 1
        members[nextID] = Member(name: name, outbox: outbox)
        send("* welcome, you are \(name)", to: nextID)
        broadcast("* \(name) joined", from: nextID)
        return nextID
    }

    func name(_ id: Int) -> String? { members[id]?.name }

    /// Removes a client and announces it; false if it was already gone.
    @discardableResult
    mutating func leave(_ id: Int) -> Bool {
        guard let member = members.removeValue(forKey: id) else { return false }
        broadcast("* \(member.name) left", from: id)
        return true
    }

    mutating func rename(_ id: Int, to newName: String) {
        guard let old = members[id]?.name else { return }
        if members.values.contains(where: { $0.name == newName }) {
            send("* error: name \(newName) is taken", to: id)
            return
        }
        members[id]!.name = newName
        send("* you are now \(newName)", to: id)
        broadcast("* \(old) is now \(newName)", from: id)
    }

    /// All names, sorted by their bytes.
    var names: [String] {
        members.values.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Queues a line for one client.
    mutating func send(_ line: String, to id: Int) {
        deliver(line, to: [id])
    }

    /// Queues a line for everyone but `sender`.
    mutating func broadcast(_ line: String, from sender: Int) {
        deliver(line, to: members.keys.filter { $0 != sender })
    }

    /// Queues `line` for `ids`. A client whose queue would overflow is
    /// dropped, which is itself announced (and may drop others in turn).
    private mutating func deliver(_ line: String, to ids: [Int]) {
        var overflowing: [Int] = []
        for id in ids {
            if let member = members[id], !member.outbox.enqueue(line) { overflowing.append(id) }
        }
        for id in overflowing {
            guard let member = members[id] else { continue }
            member.outbox.abort()
            leave(id)
        }
    }
}

final class ChatServer: TCPServer, ThreadingMixIn {
    let room = Locked(Room(capacity: 1024))
}

// MARK: - One client

/// `* error: invalid name` unless 1 to 32 of `A-Z a-z 0-9 _ - .`.
func isValidName(_ name: Substring) -> Bool {
    (1...32).contains(name.utf8.count) && name.utf8.allSatisfy { c in
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            || c == 0x5F || c == 0x2D || c == 0x2E
    }
}

final class ChatHandler: StreamRequestHandler {
    var chat: ChatServer { server as! ChatServer }

    override func handle() throws {
        try? connection.setOption(.keepAlive, true)
        // A fixed, modest kernel send buffer: what a client does not read
        // piles up in its outbox, where the 1 MiB bound applies, rather than
        // in the kernel's (auto-tuned up to megabytes) buffer.
        try? connection.setOption(.sendBufferSize, 64 * 1024)
        let outbox = Outbox(stream: stream)
        guard let me = chat.room.withLock({ $0.join(name: clientAddress.description, outbox: outbox) }) else {
            try? wfile.write("* error: server full\n")
            try? wfile.flush()
            lingeringClose(connection)
            return
        }
        do {
            try Threads.start(stackSize: 256 * 1024) { outbox.runWriter() }
        } catch {
            chat.room.withLock { _ = $0.leave(me) }
            throw error
        }
        defer {
            // Every way out: leave (announced once), let the writer finish, close politely.
            chat.room.withLock { _ = $0.leave(me) }
            outbox.closeAndWait(grace: 2)
            countTraffic(sent: outbox.sentCount)  // what went around wfile
            lingeringClose(connection)
        }
        do {
            while let line = try rfile.readTextLine(maxLength: maxLineLength) {
                if !act(on: line, from: me) { return }
            }
        } catch StreamError.lineTooLong {
            chat.room.withLock { $0.send("* error: line too long", to: me) }
        } catch let error as SocketError where error.isPeerGone || error.errno == .badFileDescriptor {
            // The peer went away, or we dropped it: leaving is all there is to do.
        }
    }

    /// Acts on one line; false when the client is done.
    func act(on line: String, from me: Int) -> Bool {
        guard line.hasPrefix("/") else {
            // A blank line (nothing, or only spaces and tabs) says nothing:
            // like an empty one, it goes to nobody.
            if !line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                chat.room.withLock { room in
                    if let name = room.name(me) { room.broadcast("\(name): \(line)", from: me) }
                }
            }
            return true
        }
        let command = line.prefix { $0 != " " }
        let argument = line.dropFirst(command.count + 1)
        switch command {
        case "/nick":
            guard isValidName(argument) else {
                chat.room.withLock { $0.send("* error: invalid name", to: me) }
                break
            }
            chat.room.withLock { $0.rename(me, to: String(argument)) }
        case "/who":
            chat.room.withLock { room in
                let names = room.names.joined(separator: ", ")
                room.send("* online: \(names)", to: me)
            }
        case "/help":
            chat.room.withLock { $0.send("* commands: /nick NAME, /who, /quit, /help", to: me) }
        case "/quit":
            chat.room.withLock { $0.send("* bye", to: me) }
            return false
        default:
            chat.room.withLock { $0.send("* error: unknown command \(command)", to: me) }
        }
        return chat.room.withLock { $0.name(me) != nil }  // false once dropped
    }
}

let args = Arguments(usage: usage, valued: ["--max-clients"] + ServingOptions.valued, flags: ServingOptions.flags)
args.expectOperands(0...0)
let (host, port) = (args.host, args.port(default: 9999))
let maxClients = args.count("--max-clients", default: 1024)

let serving = ServingOptions(args, transport: .tcp)
let server = serving.listen(on: hostPort(host, port), { try ChatServer((host, port), ChatHandler.self) },
                            adopting: { try ChatServer(socket: $0, ChatHandler.self) })
server.room.withLock { $0.capacity = maxClients }
serve(server)
