import SocketServer
import Testing

/// `readExactly(_:)`: a length-prefixed frame is complete or an error,
/// where `read(_:)` returns short at end of file.
@Suite("SocketReader readExactly")
struct ReadExactlyTests {
    @Test func returnsTheFrameWhenAllBytesCome() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try a.setTimeout(5)
        try b.setTimeout(5)
        // A 4-byte big-endian length, then the body, sent in pieces.
        try a.sendAll([0, 0, 0, 5] + Array("he".utf8))
        try a.sendAll(Array("llo".utf8) + [0x0A])
        let reader = b.makeReader()
        let header = try reader.readExactly(4)
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        #expect(length == 5)
        #expect(try reader.readExactly(length) == Array("hello".utf8))
        #expect(try reader.readExactly(0) == [])
        #expect(try reader.readLine() == [0x0A])
    }

    @Test func throwsOnAShortReadAndKeepsTheBytes() throws {
        let (a, b) = try Socket.pair()
        defer { a.close(); b.close() }
        try b.setTimeout(5)
        try a.sendAll(Array("abc".utf8))
        try a.shutdown(.write)
        let reader = b.makeReader()
        #expect(throws: StreamError.unexpectedEOF(expected: 8, got: 3)) {
            try reader.readExactly(8)
        }
        // Python's read(n) is short at end of file; readExactly's bytes stay unread.
        #expect(try reader.read(8) == Array("abc".utf8))
        #expect(try reader.read(8) == [])
        #expect(throws: StreamError.unexpectedEOF(expected: 1, got: 0)) {
            try reader.readExactly(1)
        }
        #expect(reader.isAtEOF)
    }

    @Test func describesTheShortRead() {
        #expect("\(StreamError.unexpectedEOF(expected: 8, got: 3))" == "unexpected end of stream (3 of 8 bytes)")
    }

    @Test func overBytesInMemory() throws {
        let reader = SocketReader(bytes: [1, 2, 3])
        #expect(try reader.readExactly(2) == [1, 2])
        #expect(throws: StreamError.unexpectedEOF(expected: 2, got: 1)) { try reader.readExactly(2) }
        #expect(try reader.readAll() == [3])
    }
}

/// readTextLine takes off the line end, LF or CRLF, and nothing else.
@Suite("SocketReader readTextLine line ends")
struct ReadTextLineEndTests {
    @Test func aLoneCRBeforeEndOfFileStays() throws {
        let reader = SocketReader(bytes: Array("crlf\r\nlf\n\r\nmid\rdle\nlast\r".utf8))
        #expect(try reader.readTextLine() == "crlf")
        #expect(try reader.readTextLine() == "lf")
        #expect(try reader.readTextLine() == "")
        #expect(try reader.readTextLine() == "mid\rdle")
        #expect(try reader.readTextLine() == "last\r")
        #expect(try reader.readTextLine() == nil)
    }
}
