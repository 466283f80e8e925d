#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import SocketServer

/// Test certificates made with the openssl CLI in a directory of their
/// own, removed when the test process exits: certificate authorities and
/// the certificates they sign, P-256 keys, valid for two days.
public final class CertificateFactory: Sendable {
    /// Where the files are: `NAME.pem`, `NAME.key` (and `NAME.der`).
    public let directory: String

    /// A new directory `/tmp/PREFIX-XXXXXX`.
    public init(prefix: String) throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(Errno(errno))") }
        directory = String(cString: made)
        removeAtExit(directory)
    }

    /// The path of file `name` in the directory.
    public func path(_ name: String) -> String { "\(directory)/\(name)" }

    private static let ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    /// A self-signed certificate authority: `NAME.pem`, `NAME.key`.
    public func makeCA(_ name: String, subject: String) throws {
        try openssl(["req", "-x509"] + Self.ecKey + ["-keyout", path("\(name).key"), "-out", path("\(name).pem"),
                                                     "-days", "2", "-subj", subject])
    }

    /// A certificate `NAME.pem` (key `NAME.key`; `NAME.der` too with `der`)
    /// for `subject` with the X.509 `extensions` (`subjectAltName=...`),
    /// signed by the authority `ca`.
    public func issue(_ name: String, serial: Int, subject: String, extensions: String, ca: String = "ca",
                      der: Bool = false) throws {
        try writeFile(path("\(name).ext"), extensions + "\nbasicConstraints=CA:FALSE\n")
        try openssl(["req"] + Self.ecKey + ["-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", subject])
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                     "-set_serial", "\(serial)", "-days", "2", "-extfile", path("\(name).ext"), "-out", path("\(name).pem")])
        if der { try openssl(["x509", "-in", path("\(name).pem"), "-outform", "DER", "-out", path("\(name).der")]) }
    }

    /// Runs `openssl ARGS` in the directory; throws with its stderr if it fails.
    public func openssl(_ args: [String]) throws {
        guard haveProgram("openssl") else { throw TestFailure("no openssl in PATH") }
        let (status, _, err) = try runToEnd(["openssl"] + args, directory: directory)
        if status != 0 { throw TestFailure("openssl \(args.joined(separator: " ")) failed: \(err)") }
    }
}

private let exitRemovals = Locked<[String]>([])

/// Removes `path` (and all it holds) when the process exits.
public func removeAtExit(_ path: String) {
    let first = exitRemovals.withLock { list -> Bool in
        list.append(path)
        return list.count == 1
    }
    if first { atexit { for path in exitRemovals.withLock({ $0 }) { removeTree(path) } } }
}
