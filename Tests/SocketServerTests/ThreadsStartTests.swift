import SocketServer
import Testing

/// `Threads.start`: Python's `threading.Thread(target=...).start()`.
@Suite struct ThreadsStartTests {
    @Test func runsTheBodyOnAThreadOfItsOwn() throws {
        let done = Locked<[Int]>([])
        for (i, stack) in [64 * 1024, 256 * 1024, 0, 8 * 1024 * 1024].enumerated() {
            try Threads.start(stackSize: stack) { done.update { $0.append(i) } }
        }
        try Threads.start { done.update { $0.append(4) } }  // the servers' default stack
        #expect(done.wait(timeout: 10) { $0.count == 5 })
        #expect(done.withLock { Set($0) } == [0, 1, 2, 3, 4])
    }

    /// The thread may block (it is not one of Swift concurrency's pool):
    /// here in a socket read, until the peer writes.
    @Test func mayBlock() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(10)
        let got = Locked<[UInt8]?>(nil)
        try Threads.start(stackSize: 256 * 1024) {
            let bytes = (try? b.recv(16)) ?? []
            got.update { $0 = bytes }
        }
        try a.sendAll(Array("x".utf8))
        #expect(got.wait(timeout: 10) { $0 != nil })
        #expect(got.withLock { $0 } == Array("x".utf8))
    }

    /// A thread that cannot be started is a ServerError (with the
    /// pthread_create error), not a crash.
    @Test func aThreadThatCannotStartThrowsThreadStart() {
        let error = #expect(throws: ServerError.self) {
            try Threads.start(stackSize: 1 << 46) {}  // 64 TiB: pthread_create fails
        }
        #expect(error?.kind == .threadStart)
        #expect(error?.errno != nil)
    }
}
