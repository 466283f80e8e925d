// SocketReader and SocketWriter (makefile streams), and makeStreams pairing.

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing
import TestSupport

/// The reference line splitter: what `readLine(maxLength:)` must return
/// for `data`, read to its end. `tooLongAt` is the offset where a line over
/// the limit stops reading (its bytes stay unread), or nil.
private func referenceLines(_ data: [UInt8], maxLength: Int) -> (lines: [[UInt8]], tooLongAt: Int?) {
    var lines: [[UInt8]] = []
    var start = 0
    let limit = maxLength + 1
    while start < data.count {
        let window = data[start..<min(data.count, start + limit)]
        if let lf = window.firstIndex(of: 0x0A) {
            lines.append(Array(data[start...lf]))
            start = lf + 1
        } else if data.count - start >= limit {
            return (lines, start)
        } else {
            lines.append(Array(data[start...]))
            start = data.count
        }
    }
    return (lines, nil)
}

/// Random bytes with line ends: short and long lines, CRs, NULs, high bytes.
private func randomLines(_ g: inout SockKitRandom, count: Int) -> [UInt8] {
    var data: [UInt8] = []
    data.reserveCapacity(count)
    while data.count < count {
        switch UInt8.random(in: 0..<16, using: &g) {
        case 0..<3: data.append(0x0A)
        case 3: data += [0x0D, 0x0A]
        case 4: data.append(0x0D)
        case 5: data.append(0)
        case 6: data.append(UInt8.random(in: 0x80...0xFF, using: &g))
        default: data.append(UInt8.random(in: 0x20..<0x7F, using: &g))
        }
    }
    return Array(data.prefix(count))
}

/// Sends `data` in random-sized chunks, then shuts down the write side.
private func sendInChunks(_ socket: Socket, _ data: [UInt8], _ g: inout SockKitRandom, maxChunk: Int) throws {
    var offset = 0
    while offset < data.count {
        let n = min(data.count - offset, Int.random(in: 1...maxChunk, using: &g))
        try socket.sendAll(data[offset..<(offset + n)])
        offset += n
    }
    try socket.shutdown(.write)
}

/// Reads lines as the reference does; checks the error and what stays unread.
private func checkLines(_ reader: SocketReader, _ data: [UInt8], maxLength: Int, case number: Int) throws {
    let (expected, tooLongAt) = referenceLines(data, maxLength: maxLength)
    var got: [[UInt8]] = []
    do {
        while let line = try reader.readLine(maxLength: maxLength) { got.append(line) }
        #expect(tooLongAt == nil, "case \(number): no lineTooLong")
        // End of file stays end of file.
        #expect(try reader.readLine(maxLength: maxLength) == nil, "case \(number)")
        #expect(reader.isAtEOF, "case \(number)")
    } catch StreamError.lineTooLong(let n) {
        #expect(n == maxLength, "case \(number)")
        #expect(tooLongAt != nil, "case \(number): unexpected lineTooLong after \(got.count) lines")
        #expect(reader.bufferedCount <= maxLength + 1 + reader.bufferSize, "case \(number)")
        if let at = tooLongAt {
            // The long line's bytes are still there.
            #expect(try reader.readAll() == Array(data[at...]), "case \(number): rest after lineTooLong")
        }
    }
    #expect(got == expected, "case \(number): seed data \(data.count) bytes, maxLength \(maxLength)")
}

@Suite("SocketReader lines")
struct SocketReaderLineTests {
    @Test("readLine across random chunk boundaries matches a reference splitter (2,000 cases)")
    func randomSplits() throws {
        var g = SockKitRandom(seed: 20_240_601)
        for number in 0..<2000 {
            let data = randomLines(&g, count: Int.random(in: 0...400, using: &g))
            let maxLength = Bool.random(using: &g) ? 1 << 16 : Int.random(in: 0...80, using: &g)
            let bufferSize = Int.random(in: 1...64, using: &g)
            let (a, b) = try SockKit.pair()
            defer { a.close(); b.close() }
            // A few hundred bytes fit the socket buffer: write all, then read.
            try sendInChunks(a, data, &g, maxChunk: 48)
            try checkLines(SocketReader(b, bufferSize: bufferSize), data, maxLength: maxLength, case: number)
            // The same over bytes in memory.
            try checkLines(SocketReader(bytes: data), data, maxLength: maxLength, case: number)
        }
    }

    @Test("readLine while a writer thread sends random chunks (seeded)")
    func concurrentWriter() throws {
        var g = SockKitRandom(seed: 77)
        let data = randomLines(&g, count: 300_000)
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        let writer = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Void in
            var wg = SockKitRandom(seed: 78)
            try sendInChunks(a, data, &wg, maxChunk: 700)
        }
        let reader = SocketReader(b, bufferSize: 97)
        var got: [[UInt8]] = []
        while let line = try reader.readLine(maxLength: 1 << 20) { got.append(line) }
        try writer.join()
        #expect(got == referenceLines(data, maxLength: 1 << 20).lines)
        #expect(got.reduce(0) { $0 + $1.count } == data.count)
    }

    @Test("a line over the limit throws lineTooLong; memory stays bounded", arguments: [1, 100, 5000])
    func tooLong(maxLength: Int) throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        let bufferSize = 1024
        // The peer sends far more than the limit without a line end.
        let writer = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Void in
            try a.sendAll([UInt8](repeating: 0x41, count: 1 << 20))
            try a.sendAll(SockKit.bytes("\nnext\n"))
            try a.shutdown(.write)
        }
        let reader = SocketReader(b, bufferSize: bufferSize)
        for _ in 0..<3 {
            let e = #expect(throws: StreamError.self) { _ = try reader.readLine(maxLength: maxLength) }
            #expect(e == .lineTooLong(maxLength: maxLength))
            #expect(reader.bufferedCount <= maxLength + 1 + bufferSize)
        }
        // The bytes stay unread: drain them, the next line is intact.
        var drained = 0
        while drained < 1 << 20 {
            let chunk = try reader.read(min(4096, (1 << 20) - drained))
            #expect(chunk.allSatisfy { $0 == 0x41 })
            if chunk.isEmpty { break }
            drained += chunk.count
        }
        #expect(drained == 1 << 20)
        #expect(try reader.readLine(maxLength: maxLength) == SockKit.bytes("\n"))
        #expect(try reader.readLine() == SockKit.bytes("next\n"))
        #expect(try reader.readLine() == nil)
        try writer.join()
    }

    @Test("a line of exactly maxLength bytes fits; one more does not")
    func exactLimit() throws {
        let r = SocketReader(bytes: SockKit.bytes("abcde\nabcdef\n"))
        #expect(try r.readLine(maxLength: 5) == SockKit.bytes("abcde\n"))
        #expect(throws: StreamError.lineTooLong(maxLength: 5)) { _ = try r.readLine(maxLength: 5) }
        #expect(try r.readLine(maxLength: 6) == SockKit.bytes("abcdef\n"))
        SockKit.expectErrno([.invalidArgument]) { _ = try r.readLine(maxLength: -1) }
    }

    @Test("EOF in the middle of a line returns the last line without LF", arguments: SockKit.connectionKinds)
    func eofMidLine(kind: String) throws {
        let (a, b) = kind == "unix" ? try SockKit.pair() : try SockKit.tcpPair(kind == "tcp4" ? .inet : .inet6)
        defer { a.close(); b.close() }
        try a.sendAll(SockKit.bytes("first\nsecond\nunfinished"))
        a.close()
        let r = SocketReader(b)
        #expect(try r.readLine() == SockKit.bytes("first\n"))
        #expect(try r.readTextLine() == "second")
        #expect(try r.readLine() == SockKit.bytes("unfinished"))
        #expect(try r.readLine() == nil)
        #expect(try r.readLine() == nil)
        #expect(r.isAtEOF)
    }

    @Test("a peer that resets the connection: readLine throws Errno.connectionReset", arguments: SockKit.ipFamilies)
    func reset(family: AddressFamily) throws {
        let (c, s) = try SockKit.tcpPair(family)
        defer { c.close() }
        try s.sendAll(SockKit.bytes("one line\n"))
        let r = SocketReader(c)
        #expect(try r.readLine() == SockKit.bytes("one line\n"))
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        try withUnsafeBytes(of: &linger) { try s.setOption(level: SOL_SOCKET, name: SO_LINGER, bytes: $0) }
        s.close()
        let e = SockKit.expectErrno([.connectionReset]) { _ = try r.readLine() }
        #expect(e?.isPeerGone == true)
        // The socket stays in error or at EOF; the reader does not crash.
        _ = try? r.readLine()
    }

    @Test("readTextLine: CRLF stripped, invalid UTF-8 replaced, NUL kept")
    func textLines() throws {
        var data = SockKit.bytes("plain\nwindows\r\nh\u{e9}llo \u{1F600}\n")
        data += [0x66, 0xFF, 0x6F, 0x0A]  // invalid UTF-8
        data += [0x61, 0x00, 0x62, 0x0A]  // NUL inside
        data += SockKit.bytes("a\rb\n\r\n\nlast")
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.sendAll(data)
        try a.shutdown(.write)
        let r = SocketReader(b, bufferSize: 7)
        #expect(try r.readTextLine() == "plain")
        #expect(try r.readTextLine() == "windows")
        #expect(try r.readTextLine() == "h\u{e9}llo \u{1F600}")
        #expect(try r.readTextLine() == "f\u{FFFD}o")
        let nul = try r.readTextLine()
        #expect(nul == "a\u{0}b")
        #expect(nul?.utf8.count == 3)
        #expect(try r.readTextLine() == "a\rb")
        #expect(try r.readTextLine() == "")
        #expect(try r.readTextLine() == "")
        #expect(try r.readTextLine() == "last")
        #expect(try r.readTextLine() == nil)
        #expect(throws: StreamError.lineTooLong(maxLength: 2)) {
            _ = try SocketReader(bytes: SockKit.bytes("abc\n")).readTextLine(maxLength: 2)
        }
    }

    @Test("withNextLine and forEachLine")
    func lineCallbacks() throws {
        let r = SocketReader(bytes: SockKit.bytes("one\ntwo\nthree\nfour"))
        let count = try r.withNextLine { buffer -> Int in
            #expect(Array(buffer) == SockKit.bytes("one\n"))
            return buffer.count
        }
        #expect(count == 4)
        var lines: [String] = []
        try r.forEachLine { lines.append(SockKit.text($0)) }
        #expect(lines == ["two\n", "three\n", "four"])
        #expect(try r.withNextLine { _ in 1 } == nil)

        // Over a socket, and an error from the body propagates.
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.sendAll(SockKit.bytes("x\ny\n"))
        try a.shutdown(.write)
        let sr = SocketReader(b)
        #expect(throws: SocketError.invalidArgument("stop")) {
            try sr.forEachLine { line in if line == SockKit.bytes("y\n") { throw SocketError.invalidArgument("stop") } }
        }
        #expect(try sr.readLine() == nil)
    }
}

@Suite("SocketReader bytes")
struct SocketReaderByteTests {
    @Test("read(n): exact counts, fewer at EOF, through the buffer and around it")
    func readN() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        let data = SockKit.pattern(count: 100_000)
        let writer = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Void in
            try a.sendAll(data)
            try a.shutdown(.write)
        }
        let r = SocketReader(b, bufferSize: 1000)
        var got: [UInt8] = []
        got += try r.read(0)
        got += try r.read(10)  // through the buffer
        #expect(got.count == 10)
        got += try r.read(5000)  // larger than the buffer: straight into the result
        #expect(got.count == 5010)
        got += try r.read(1)
        got += try r.read(200_000)  // to the end
        #expect(got == data)
        #expect(try r.read(10) == [])
        #expect(r.isAtEOF)
        SockKit.expectErrno([.invalidArgument]) { _ = try r.read(-1) }
        try writer.join()
    }

    @Test("readAll, readSome, readSome(into:), peek")
    func readVariants() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.sendAll(SockKit.bytes("hello world\nrest"))
        let r = SocketReader(b, bufferSize: 8)
        #expect(try r.peek(3) == SockKit.bytes("hel"))
        #expect(try r.peek() == SockKit.bytes("hello wo"))  // what one refill brought
        #expect(r.bufferedCount == 8)
        #expect(try r.readSome(5) == SockKit.bytes("hello"))
        #expect(try r.readSome(100) == SockKit.bytes(" wo"))  // only what is buffered
        #expect(try r.readSome(0) == [])
        var buffer = [UInt8](repeating: 0, count: 3)
        let n = try buffer.withUnsafeMutableBytes { try r.readSome(into: $0) }
        #expect(n == 3)
        #expect(buffer == SockKit.bytes("rld"))
        #expect(try r.readLine() == SockKit.bytes("\n"))
        // A large readSome(into:) with nothing buffered receives straight into it.
        var big = [UInt8](repeating: 0, count: 64)
        let m = try big.withUnsafeMutableBytes { try r.readSome(into: $0) }
        #expect(Array(big[0..<m]) == SockKit.bytes("rest"))
        let writer = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Void in
            try a.sendAll(SockKit.pattern(count: 300_000))
            try a.shutdown(.write)
        }
        let all = try r.readAll()
        try writer.join()
        #expect(all == SockKit.pattern(count: 300_000))
        #expect(try r.readAll() == [])
        #expect(try r.readSome(10) == [])
        #expect(try r.peek() == [])
        #expect(try big.withUnsafeMutableBytes { try r.readSome(into: $0) } == 0)
    }

    @Test("SocketReader(bytes:) reads from memory")
    func memory() throws {
        let r = SocketReader(bytes: SockKit.bytes("line one\nline two\ntail"))
        #expect(r.socket == nil)
        #expect(r.bufferedCount == 22)
        #expect(!r.isAtEOF)
        #expect(try r.peek(4) == SockKit.bytes("line"))
        #expect(try r.readLine() == SockKit.bytes("line one\n"))
        #expect(try r.read(4) == SockKit.bytes("line"))
        #expect(try r.readTextLine() == " two")
        #expect(try r.readAll() == SockKit.bytes("tail"))
        #expect(r.isAtEOF)
        #expect(try r.readLine() == nil)

        let empty = SocketReader(bytes: [UInt8]())
        #expect(empty.isAtEOF)
        #expect(try empty.readLine() == nil)
        #expect(try empty.read(5) == [])
        #expect(try empty.readAll() == [])

        let fromString = SocketReader(bytes: "a\nb".utf8)
        #expect(try fromString.readLine() == SockKit.bytes("a\n"))
        #expect(try fromString.readLine() == SockKit.bytes("b"))
    }

    @Test("close: later reads throw SocketError.closed, the socket stays open")
    func close() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try a.sendAll(SockKit.bytes("x\n"))
        let r = SocketReader(b)
        #expect(try r.peek() == SockKit.bytes("x\n"))
        r.close()
        r.close()
        #expect(r.isClosed)
        for call in [{ _ = try r.readLine() }, { _ = try r.read(1) }, { _ = try r.readSome(1) },
                     { _ = try r.peek() }, { _ = try r.readAll() }, { _ = try r.readTextLine() }] as [() throws -> Void] {
            SockKit.expectErrno([.badFileDescriptor]) { try call() }
        }
        #expect(!b.isClosed)
        try a.sendAll(SockKit.bytes("y"))
        #expect(try b.recv(10) == SockKit.bytes("y"))
    }

    @Test("a time-out leaves the reader usable: nothing read is lost")
    func timeoutThenData() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(0.05)
        let r = SocketReader(b, bufferSize: 4)

        // readLine: a partial line, a time-out, then the rest.
        try a.sendAll(SockKit.bytes("par"))
        SockKit.expectErrno([.timedOut]) { _ = try r.readLine() }
        try a.sendAll(SockKit.bytes("tial line\nnext"))
        #expect(try r.readLine() == SockKit.bytes("partial line\n"))

        // read(n): some bytes buffered, a time-out, then the rest.
        SockKit.expectErrno([.timedOut]) { _ = try r.read(10) }
        try a.sendAll(SockKit.bytes("+more"))
        #expect(try r.read(9) == SockKit.bytes("next+more"))

        // read(n) larger than the buffer, bypassing it.
        try a.sendAll(SockKit.bytes("0123456789"))
        SockKit.expectErrno([.timedOut]) { _ = try r.read(20) }
        try a.sendAll(SockKit.bytes("abcdefghij"))
        #expect(try r.read(20) == SockKit.bytes("0123456789abcdefghij"))

        // readAll: the bytes before the time-out come with the rest.
        try a.sendAll(SockKit.bytes("all-1 "))
        SockKit.expectErrno([.timedOut]) { _ = try r.readAll() }
        try a.sendAll(SockKit.bytes("all-2"))
        try a.shutdown(.write)
        #expect(try r.readAll() == SockKit.bytes("all-1 all-2"))

        // peek and readSome on an empty socket time out without damage.
        let (c, d) = try SockKit.pair()
        defer { c.close(); d.close() }
        try d.setTimeout(0.05)
        let r2 = SocketReader(d)
        SockKit.expectErrno([.timedOut]) { _ = try r2.peek() }
        SockKit.expectErrno([.timedOut]) { _ = try r2.readSome(5) }
        try c.sendAll(SockKit.bytes("ok\n"))
        #expect(try r2.readLine() == SockKit.bytes("ok\n"))
    }
}

@Suite("SocketWriter")
struct SocketWriterTests {
    /// Whatever the peer has queued right now (empty if nothing).
    private func queued(_ s: Socket) throws -> [UInt8] {
        let saved = s.timeout
        defer { try? s.setTimeout(saved) }
        try s.setTimeout(0)
        var got: [UInt8] = []
        while true {
            do { got += try s.recv(65536) } catch Errno.wouldBlock { return got }
        }
    }

    @Test("buffered: bytes wait for flush or a full buffer")
    func buffered() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        let w = SocketWriter(a, bufferSize: 8)
        #expect(w.bufferSize == 8)
        try w.write(SockKit.bytes("abc"))
        #expect(w.pendingCount == 3)
        #expect(try queued(b) == [])
        try w.flush()
        #expect(w.pendingCount == 0)
        #expect(try queued(b) == SockKit.bytes("abc"))

        try w.write("12345")
        try w.write("6789")  // would overflow: the first five go out
        #expect(w.pendingCount == 4)
        #expect(try queued(b) == SockKit.bytes("12345"))
        try w.write("abcd")  // exactly fills the buffer: sent
        #expect(w.pendingCount == 0)
        #expect(try queued(b) == SockKit.bytes("6789abcd"))

        try w.write("xy")
        try w.write(SockKit.bytes("a write larger than the buffer"))
        #expect(w.pendingCount == 0)
        #expect(try queued(b) == SockKit.bytes("xya write larger than the buffer"))

        try w.write("s".utf8)
        try w.write(SockKit.bytes("[slice]")[1..<6])
        try w.flush()
        try w.flush()
        #expect(try queued(b) == SockKit.bytes("sslice"))
    }

    @Test("unbuffered (bufferSize 0): every write is sent at once")
    func unbuffered() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        for w in [SocketWriter(a, bufferSize: 0), a.makeWriter(bufferSize: 0), a.makeStreams(writeBufferSize: 0).1] {
            #expect(w.bufferSize == 0)
            try w.write("now")
            #expect(w.pendingCount == 0)
            // Readable before any flush.
            #expect(try queued(b) == SockKit.bytes("now"))
        }
    }

    @Test("errors are sticky: after a failed send, later writes throw the same error")
    func stickyErrors() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close() }
        b.close()
        let w = SocketWriter(a, bufferSize: 4)
        let first = SockKit.expectErrno([.brokenPipe]) { try w.write("too long for the buffer") }
        #expect(first == .system(.brokenPipe, operation: "send", address: nil))
        for call in [{ try w.write("x") }, { try w.flush() }, { try w.write(SockKit.bytes("y")) }]
            as [() throws -> Void] {
            let again = SockKit.expectErrno([.brokenPipe]) { try call() }
            #expect(again == first)
        }
        #expect(throws: SocketError.self) { try w.close() }
        #expect(w.isClosed)
    }

    @Test("writing after the peer closed throws, never crashes", arguments: SockKit.connectionKinds)
    func writeAfterPeerClosed(kind: String) throws {
        let (a, b) = kind == "unix" ? try SockKit.pair() : try SockKit.tcpPair(kind == "tcp4" ? .inet : .inet6)
        defer { a.close() }
        b.close()
        let w = SocketWriter(a, bufferSize: 1024)
        var error: SocketError?
        for _ in 0..<1000 where error == nil {
            do {
                try w.write(SockKit.pattern(count: 4000))
                try w.flush()
            } catch let e as SocketError { error = e }
        }
        let e = try #require(error)
        #expect(Errno.brokenPipe ~= e || Errno.connectionReset ~= e, "\(e)")
    }

    @Test("close flushes, refuses further writes, leaves the socket open; again does nothing")
    func close() throws {
        let (a, b) = try SockKit.pair()
        defer { a.close(); b.close() }
        let w = a.makeWriter(bufferSize: 100)
        try w.write("pending")
        try w.close()
        #expect(w.isClosed)
        #expect(try queued(b) == SockKit.bytes("pending"))
        try w.close()
        SockKit.expectErrno([.badFileDescriptor]) { try w.write("x") }
        #expect(!a.isClosed)
        try a.sendAll(SockKit.bytes("socket"))
        #expect(try queued(b) == SockKit.bytes("socket"))
    }

    @Test("a writer in memory collects what is written")
    func memory() throws {
        let w = SocketWriter()
        #expect(w.socket == nil)
        #expect(w.bytes == [])
        try w.write("hello ")
        try w.write(SockKit.bytes("world"))
        try w.write("!".utf8)
        try w.flush()
        #expect(w.pendingCount == 0)
        #expect(w.bytes == SockKit.bytes("hello world!"))
        let big = SockKit.pattern(count: 1 << 20)
        try w.write(big)
        #expect(w.bytes.count == 12 + big.count)
        #expect(Array(w.bytes[12...]) == big)
        try w.close()
        #expect(w.bytes.count == 12 + big.count)
        SockKit.expectErrno([.badFileDescriptor]) { try w.write("x") }
    }
}

@Suite("makeStreams pairing")
struct SocketStreamPairingTests {
    private func queued(_ s: Socket) throws -> [UInt8] {
        let saved = s.timeout
        defer { try? s.setTimeout(saved) }
        try s.setTimeout(0)
        var got: [UInt8] = []
        while true {
            do { got += try s.recv(65536) } catch Errno.wouldBlock { return got }
        }
    }

    @Test("a write is sent at once when the reader holds no input, batched while it does")
    func batching() throws {
        let (a, peer) = try SockKit.pair()
        defer { a.close(); peer.close() }
        let (r, w) = a.makeStreams()
        #expect(r.socket === a && w.socket === a)

        try w.write("hello\n")
        #expect(w.pendingCount == 0)
        #expect(try queued(peer) == SockKit.bytes("hello\n"))

        // Two requests arrive together: the first reply waits for the second.
        try peer.sendAll(SockKit.bytes("r1\nr2\n"))
        #expect(try r.readLine() == SockKit.bytes("r1\n"))
        #expect(r.bufferedCount == 3)
        try w.write("e1\n")
        #expect(w.pendingCount == 3)
        #expect(try queued(peer) == [])
        #expect(try r.readLine() == SockKit.bytes("r2\n"))
        try w.write("e2\n")
        #expect(w.pendingCount == 0)
        #expect(try queued(peer) == SockKit.bytes("e1\ne2\n"))

        // Input already waiting in the socket keeps replies batched too.
        try peer.sendAll(SockKit.bytes("a\nb\n"))
        #expect(try r.readLine() == SockKit.bytes("a\n"))
        try w.write("A\n")
        #expect(try r.readLine() == SockKit.bytes("b\n"))
        #expect(w.pendingCount == 2)
        try peer.sendAll(SockKit.bytes("c\n"))
        #expect(try r.readLine() == SockKit.bytes("c\n"))
        #expect(w.pendingCount == 2)
        #expect(try queued(peer) == [])
        try w.write("C\n")
        #expect(try queued(peer) == SockKit.bytes("A\nC\n"))
    }

    @Test("pending replies are sent before the reader waits for the peer", arguments: SockKit.connectionKinds)
    func flushBeforeBlocking(kind: String) throws {
        let (client, server) = kind == "unix" ? try SockKit.pair() : try SockKit.tcpPair(kind == "tcp4" ? .inet : .inet6)
        defer { client.close(); server.close() }
        // A handler loop: echoes each line, except "quiet" lines.
        let handler = try TestThread(unblocking: SockKit.ordinarySignals) { () throws -> Int in
            let (r, w) = server.makeStreams()
            var handled = 0
            while let line = try r.readLine() {
                handled += 1
                if !line.starts(with: SockKit.bytes("quiet")) { try w.write(line) }
            }
            try w.close()
            try server.shutdown(.write)
            return handled
        }
        let replies = SocketReader(client)
        // Two lines at once: both echoes must come before we send anything else.
        try client.sendAll(SockKit.bytes("one\ntwo\n"))
        #expect(try replies.readLine() == SockKit.bytes("one\n"))
        #expect(try replies.readLine() == SockKit.bytes("two\n"))
        // A reply left pending behind a line with no reply.
        try client.sendAll(SockKit.bytes("three\nquiet\n"))
        #expect(try replies.readLine() == SockKit.bytes("three\n"))
        try client.sendAll(SockKit.bytes("four\n"))
        #expect(try replies.readLine() == SockKit.bytes("four\n"))
        try client.shutdown(.write)
        #expect(try replies.readLine() == nil)
        #expect(try handler.join() == 5)
    }

    @Test("closing the streams and the socket in any order is safe", arguments: 0..<6, [false, true])
    func closeOrders(order: Int, pending: Bool) throws {
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        let (a, peer) = try SockKit.pair()
        defer { peer.close() }
        let (r, w) = a.makeStreams()
        try peer.sendAll(SockKit.bytes("in1\nin2\n"))
        #expect(try r.readLine() == SockKit.bytes("in1\n"))
        if pending {
            try w.write("reply\n")  // input is buffered: stays pending
            #expect(w.pendingCount == 6)
        }
        var socketClosedFirst = false
        for step in orders[order] {
            switch step {
            case 0: r.close()
            case 1:
                do {
                    try w.close()
                    #expect(!(pending && socketClosedFirst), "flushing into a closed socket must throw")
                } catch let e as SocketError {
                    #expect(pending && socketClosedFirst)
                    #expect(e.errno == .badFileDescriptor)
                }
            default: a.close(); socketClosedFirst = true
            }
        }
        #expect(r.isClosed && w.isClosed && a.isClosed)
        SockKit.expectErrno([.badFileDescriptor]) { _ = try r.readLine() }
        SockKit.expectErrno([.badFileDescriptor]) { try w.write("x") }
        // The peer saw the reply unless the socket went first, and then EOF.
        let got = try SockKit.recvToEOF(peer)
        let replyOrder = orders[order].firstIndex(of: 1)!, socketOrder = orders[order].firstIndex(of: 2)!
        #expect(got == (pending && replyOrder < socketOrder ? SockKit.bytes("reply\n") : []))
    }

    @Test("streams outliving their socket, and dropped in any order")
    func lifetimes() throws {
        let (a, peer) = try SockKit.pair()
        defer { peer.close() }
        var pair: (SocketReader, SocketWriter)? = a.makeStreams()
        let (r, w) = pair!
        pair = nil
        try w.write("x")
        #expect(try peer.recv(1) == SockKit.bytes("x"))
        a.close()
        SockKit.expectErrno([.badFileDescriptor]) { _ = try r.readLine() }
        SockKit.expectErrno([.badFileDescriptor]) { try w.write("y") }
        #expect(try peer.recv(1) == [])
        _ = pair
    }
}
