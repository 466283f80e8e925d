internal import COpenSSL

/// The bytes between OpenSSL and the socket: the BIO of every session is
/// one of these, so OpenSSL never touches the descriptor itself (no
/// `write(2)`, hence no SIGPIPE; every wait under our deadlines).
///
/// - `input`: ciphertext received and not yet read by OpenSSL. The BIO's
///   read callback serves it; when it is empty, the callback says "retry"
///   and OpenSSL reports `SSL_ERROR_WANT_READ`, and the session receives
///   more with the library's socket calls, then calls OpenSSL again.
/// - `output`: ciphertext OpenSSL wrote (records, alerts, handshake
///   messages), collected until the session sends it.
///
/// Guarded by its session's lock, with one exception the session keeps:
/// it receives into the free room past `inputEnd` without the lock while
/// the input is empty (nothing reads that room then).
final class TLSPipe {
    /// The first buffer size: small, for the many idle connections; it
    /// grows while receives fill it (a bulk transfer, full 16 KiB records).
    static let initialCapacity = 4 * 1024
    /// The buffer grows to this while receives fill it (a bulk transfer).
    static let maximumCapacity = 64 * 1024

    private(set) var input: UnsafeMutableRawPointer
    private(set) var inputCapacity: Int
    var inputStart = 0
    var inputEnd = 0
    /// The peer's end of file was received (after `input` is read).
    var inputEOF = false
    /// Ciphertext waiting to be sent.
    var output: [UInt8] = []

    /// A pipe that first serves `buffered` (bytes taken from the socket
    /// before TLS began: after a PROXY header, the ClientHello's start).
    init(buffered: [UInt8]) {
        inputCapacity = max(TLSPipe.initialCapacity, buffered.count)
        input = UnsafeMutableRawPointer.allocate(byteCount: inputCapacity, alignment: 16)
        if !buffered.isEmpty {
            buffered.withUnsafeBytes { input.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            inputEnd = buffered.count
        }
    }

    deinit { input.deallocate() }

    /// Bytes received and not yet read by OpenSSL.
    var pendingInput: Int { inputEnd - inputStart }

    /// The free room past the unread input, to receive into (the unread
    /// bytes moved to the front first). `grow`: the last receive filled
    /// the room, so offer more, up to the maximum.
    func receiveRoom(grow: Bool) -> UnsafeMutableRawBufferPointer {
        let unread = inputEnd - inputStart
        let wanted = grow || unread == inputCapacity ? min(inputCapacity * 2, TLSPipe.maximumCapacity) : inputCapacity
        if wanted > inputCapacity {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: wanted, alignment: 16)
            grown.copyMemory(from: input + inputStart, byteCount: unread)
            input.deallocate()
            input = grown
            inputCapacity = wanted
        } else if inputStart > 0 && unread > 0 {
            input.copyMemory(from: input + inputStart, byteCount: unread)
        }
        inputStart = 0
        inputEnd = unread
        return UnsafeMutableRawBufferPointer(start: input + unread, count: inputCapacity - unread)
    }

    /// Takes note of `count` bytes received into the room; 0 is the end of file.
    func received(_ count: Int) {
        if count == 0 { inputEOF = true } else { inputEnd += count }
    }

    /// Makes a BIO over this pipe, for `SSL_set_bio`. The BIO does not
    /// retain the pipe: the session owns both and frees the SSL (and so
    /// the BIO) before the pipe.
    func makeBIO() -> OpaquePointer? {
        guard let bio = BIO_new(TLSPipe.method.pointer) else { return nil }
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_init(bio, 1)
        return bio
    }

    /// The BIO method: made once, never changed after (OpenSSL only reads it).
    private static let method = BIOMethod()
}

/// The process's one `BIO_METHOD` for pipes. Sendable: its pointer is set
/// once in `init` and the method is only read afterwards, by OpenSSL.
private final class BIOMethod: @unchecked Sendable {
    let pointer: OpaquePointer

    init() {
        let type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK
        pointer = BIO_meth_new(type, "SocketServerTLS pipe")!
        _ = BIO_meth_set_write(pointer, pipeWrite)
        _ = BIO_meth_set_read(pointer, pipeRead)
        _ = BIO_meth_set_ctrl(pointer, pipeControl)
        _ = BIO_meth_set_create(pointer, pipeCreate)
        _ = BIO_meth_set_destroy(pointer, pipeDestroy)
    }
}

@inline(__always)
private func pipe(of bio: OpaquePointer?) -> TLSPipe? {
    guard let bio, let data = BIO_get_data(bio) else { return nil }
    return Unmanaged<TLSPipe>.fromOpaque(data).takeUnretainedValue()
}

/// OpenSSL writes ciphertext: collect it (never fails, never blocks).
private func pipeWrite(_ bio: OpaquePointer?, _ bytes: UnsafePointer<CChar>?, _ count: Int32) -> Int32 {
    guard let pipe = pipe(of: bio), let bytes, count > 0 else { return 0 }
    cssl_bio_clear_retry_flags(bio)
    // Appended out of the property: an append may call into the allocator,
    // and one access spanning a call makes all of `output`'s checked at run time.
    var output: [UInt8] = []
    swap(&output, &pipe.output)
    output.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: Int(count)))
    swap(&output, &pipe.output)
    return count
}

/// OpenSSL reads ciphertext: what is buffered; "retry" when nothing is
/// (the session then receives); 0 once the peer's end of file is reached.
private func pipeRead(_ bio: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ count: Int32) -> Int32 {
    guard let pipe = pipe(of: bio), let buffer, count > 0 else { return 0 }
    cssl_bio_clear_retry_flags(bio)
    let available = pipe.pendingInput
    if available == 0 {
        if pipe.inputEOF { return 0 }
        cssl_bio_set_retry_read(bio)
        return -1
    }
    let n = min(available, Int(count))
    UnsafeMutableRawPointer(buffer).copyMemory(from: pipe.input + pipe.inputStart, byteCount: n)
    pipe.inputStart += n
    return Int32(n)
}

/// The controls OpenSSL asks of a BIO: flush (nothing to do: the session
/// sends), end of file, bytes pending. Written bytes are never "pending"
/// to OpenSSL: the pipe took them.
private func pipeControl(_ bio: OpaquePointer?, _ command: Int32, _ number: Int, _ pointer: UnsafeMutableRawPointer?) -> Int {
    // OpenSSL asks many times per record (flush, kTLS, pending...): answer
    // what needs no pipe before looking it up, and look without a retain.
    switch command {
    case BIO_CTRL_FLUSH, BIO_CTRL_DUP:
        return 1
    case BIO_CTRL_EOF, BIO_CTRL_PENDING:
        guard let bio, let data = BIO_get_data(bio) else { return 0 }
        return Unmanaged<TLSPipe>.fromOpaque(data)._withUnsafeGuaranteedRef { pipe in
            command == BIO_CTRL_PENDING ? pipe.pendingInput : (pipe.inputEOF && pipe.pendingInput == 0 ? 1 : 0)
        }
    default:
        return 0
    }
}

private func pipeCreate(_ bio: OpaquePointer?) -> Int32 { 1 }

private func pipeDestroy(_ bio: OpaquePointer?) -> Int32 {
    if let bio { BIO_set_data(bio, nil) }
    return 1
}

/// A plain mutex around a closure: guards state that lives beside it (the
/// session's OpenSSL object, pipe and flags) rather than inside it, which
/// OpenSSL's callbacks, running with it held, reach directly. On
/// `pthread_mutex_t`, which the thread sanitizer understands.
final class TLSLock: @unchecked Sendable {
    // @unchecked: the mutex is the synchronization itself.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    @inline(__always)
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif
