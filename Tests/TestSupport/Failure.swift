// What every test target shares (Package.swift: the `TestSupport` target):
// temporary directories, bounded waits, threads, processes, files,
// sockets and certificates. Only the library's public API is used here,
// so the helpers build in any configuration.

/// A test helper's own failure (a file it could not make, a program that
/// did not start): not an error of the library under test.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
