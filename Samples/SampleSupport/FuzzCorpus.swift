// Corpus files for the fuzz targets (Fuzz/): reading them, and replaying
// them through a check, for the targets' replay mode and for the tests.
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
@preconcurrency import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum FuzzCorpus {
    /// The files of `paths`: a file as it is, a directory's regular files
    /// (not its subdirectories, not hidden files), sorted by name.
    public static func files(_ paths: [String]) -> [String] {
        var files: [String] = []
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0 else { files.append(path); continue }  // read(_:) reports it
            guard (st.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) else { files.append(path); continue }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                let file = path + "/" + name
                if !name.hasPrefix("."), stat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { names.append(name) }
            }
            files += names.sorted().map { path + "/" + $0 }
        }
        return files
    }

    /// A file's bytes; nil if it cannot be read.
    public static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[..<n]
            if n < chunk.count { return ferror(file) == 0 ? bytes : nil }
        }
    }

    /// The replay mode of a fuzz target built without libFuzzer: runs every
    /// file of `arguments` (files or directories) through `check`, prints
    /// each failure to stderr and a summary to stdout; the exit status:
    /// 0 if every check passed, 1 if one failed or a file could not be read,
    /// 2 without arguments.
    public static func replay(_ arguments: [String], tool: String, check: ([UInt8]) throws -> Void) -> Int32 {
        guard !arguments.isEmpty, !arguments.contains(where: { $0 == "-h" || $0 == "--help" }) else {
            printError("usage: \(tool) FILE|DIR...\n\n"
                       + "Replays corpus files through the fuzz check (this build has no libFuzzer;\n"
                       + "build with -sanitize=fuzzer -DFUZZING to fuzz: see Fuzz/README.md).\n")
            return 2
        }
        var failed = 0
        let files = files(arguments)
        for path in files {
            guard let input = read(path) else {
                printError("\(tool): cannot read \(path)\n")
                failed += 1
                continue
            }
            do {
                try check(input)
            } catch {
                printError("\(tool): FAILED \(path): \(error)\n")
                failed += 1
            }
        }
        print("\(tool): \(files.count - failed) of \(files.count) inputs passed")
        return failed == 0 ? 0 : 1
    }
}
