// Behaviours checked against what Python's `socket` module does: each test
// here failed before its fix (see the commit that added it).

#if canImport(Glibc)
import Glibc
#endif
import SocketServer
import Testing

// MARK: - Time-outs and modes

@Suite("Python parity: sockets")
struct ParitySocketTests {







}

@Suite("Python parity: streams, errors, defaults")
struct ParityStreamAndErrorTests {



}

@Suite("The error types")
struct ErrorTypeTests {
    @Test("SocketError is a struct: kinds, patterns, fields")
    func socketErrorStruct() throws {
        let t = SocketError.timeout(operation: "recv", address: "127.0.0.1:1")
        #expect(t.kind == .timeout && t.isTimeout && t.errno == .timedOut)
        #expect(SocketError.Kind.timeout ~= t)
        #expect(!(SocketError.Kind.closed ~= t))
        do { throw t } catch SocketError.timeout {} catch { Issue.record("\(error)") }
        do { throw SocketError.closed(operation: "recv") } catch SocketError.closed {} catch { Issue.record("\(error)") }
        let reset = SocketError.system(.connectionReset, operation: "recv", address: nil)
        do { throw reset } catch Errno.connectionReset {} catch { Issue.record("\(error)") }
        #expect(reset.kind == .system && reset.operation == "recv" && reset.isPeerGone)
        #expect(SocketError.invalidArgument("x").detail == "x")
        let r = SocketError.addressResolution(code: EAI_NONAME, message: "m", host: "h")
        #expect(r.resolverCode == EAI_NONAME && r.address == "h" && r.reason == "m")
        // The library's own errors keep the SocketAddress.
        let l = try Socket()
        defer { l.close() }
        let refused = try SockKit.refusedPort()
        let address = try SocketAddress(ipv4: "127.0.0.1", port: refused)
        do { try l.connect(to: address) } catch let e as SocketError {
            #expect(e.errno == .connectionRefused)
            #expect(e.socketAddress == address)
            #expect(e.address == address.description)
            #expect(e == .system(.connectionRefused, operation: "connect to", address: address.description))
        }
    }

    @Test("Errno: one name per number, the call's name, equal by number")
    func errno() throws {
        let e = Errno(ECONNRESET, call: "recv")
        #expect(e == .connectionReset)
        #expect(e.call == "recv")
        #expect(e.description == "recv: \(Errno.connectionReset.message) (ECONNRESET)")
        #expect(Errno.connectionReset.description == "\(Errno.connectionReset.message) (ECONNRESET)")
        #expect(Errno.wouldBlock.name == "EAGAIN")
    }

    @Test("ServerError: its kinds match, and its error number does")
    func serverError() throws {
        let e = ServerError.threadStart(.wouldBlock)
        do { throw e } catch ServerError.threadStart {} catch { Issue.record("\(error)") }
        do { throw e } catch Errno.wouldBlock {} catch { Issue.record("\(error)") }
        let a = ServerError.alreadyServing()
        #expect(a.kind == .alreadyServing && a.errno == nil)
        #expect(a.description == "serve forever: serveForever is already running")
    }
}
