import Foundation
import XeroMLTesting
#if canImport(Glibc)
import Glibc
#endif

/// The reference program `sqlite-floor.c`: what SQLite itself does, driven from C, for the rows a fully
/// recorded item needs (a trace, a span, a run item, two scores) on a minimal schema with UUIDv7 keys,
/// 256 items per transaction, WAL and synchronous=NORMAL. XeroML's write path is measured against it.
///
/// The program is found, in order: the executable named by `XEROML_SQLITE_FLOOR`; else its source,
/// named by `XEROML_SQLITE_FLOOR_SOURCE` or found at `../shared/bench/sqlite-floor.c` from the current
/// directory or from the package's directory, compiled with `cc -O2` into the benchmark's scratch
/// directory. Without either, the benchmarks say why and leave the floor out.
struct SQLiteFloor {
    /// The compiled program.
    let executable: URL

    /// One run of the program.
    struct Result {
        var itemsPerSecond: Double
        /// Growth of the database file per item, after a checkpoint (`run_bytes_per_item`).
        var bytesPerItem: Double
        /// User + system CPU time of the program per item, in microseconds (set-up included).
        var cpuMicrosecondsPerItem: Double
    }

    /// Finds or builds the program; `nil` with the reason printed when neither is possible.
    static func locate(scratch: URL) async -> SQLiteFloor? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["XEROML_SQLITE_FLOOR"] {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                print("floor: XEROML_SQLITE_FLOOR=\(path) is not an executable; the floor is left out")
                return nil
            }
            return SQLiteFloor(executable: URL(fileURLWithPath: path))
        }
        let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            environment["XEROML_SQLITE_FLOOR_SOURCE"],
            FileManager.default.currentDirectoryPath + "/../shared/bench/sqlite-floor.c",
            packageDirectory.appendingPathComponent("../shared/bench/sqlite-floor.c").path,
        ].compactMap { $0 }
        guard let source = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            print("floor: sqlite-floor.c not found (set XEROML_SQLITE_FLOOR_SOURCE); the floor is left out")
            return nil
        }
        let executable = scratch.appendingPathComponent("sqlite-floor")
        let compiler = environment["CC"] ?? "cc"
        do {
            let build = try RunningProcess(
                executable: URL(fileURLWithPath: "/usr/bin/env"),
                arguments: [compiler, "-O2", "-o", executable.path, URL(fileURLWithPath: source).standardized.path, "-lsqlite3"],
                directory: scratch)
            let result = await build.wait()
            guard result.status == 0 else {
                print("floor: \(compiler) could not build \(source) (status \(result.status)): "
                      + result.stderr.split(separator: "\n").prefix(3).joined(separator: " / "))
                return nil
            }
        } catch {
            print("floor: cannot start \(compiler): \(error); the floor is left out")
            return nil
        }
        print("floor: built \(URL(fileURLWithPath: source).standardized.path) with \(compiler) -O2")
        return SQLiteFloor(executable: executable)
    }

    /// Runs the program on a new file at `path` (on the same disk as XeroML's) for `items` items.
    func run(path: String, items: Int) async throws -> Result {
        let before = childrenCPUSeconds()
        let process = try RunningProcess(
            executable: executable,
            arguments: ["--db", path, "--n", String(items), "--mode", "batch", "--batch", "256", "--uuid", "v7"],
            directory: URL(fileURLWithPath: path).deletingLastPathComponent())
        let result = await process.wait()
        let cpu = childrenCPUSeconds() - before
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        guard result.status == 0 else {
            throw BenchmarkFailure("sqlite-floor exited with status \(result.status): \(result.stderr)")
        }
        var fields: [String: Double] = [:]
        for pair in result.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Double(parts[1]) { fields[String(parts[0])] = value }
        }
        guard let rate = fields["items_per_s"], let bytes = fields["run_bytes_per_item"] else {
            throw BenchmarkFailure("unexpected output of sqlite-floor: \(result.stdout)")
        }
        return Result(itemsPerSecond: rate, bytesPerItem: bytes, cpuMicrosecondsPerItem: cpu / Double(items) * 1e6)
    }

    /// User + system CPU time of this process's waited-for children so far.
    private func childrenCPUSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        #else
        getrusage(RUSAGE_CHILDREN, &usage)
        #endif
        return usage.cpuSeconds
    }
}

extension rusage {
    /// User + system CPU time.
    var cpuSeconds: Double {
        Double(ru_utime.tv_sec) + Double(ru_utime.tv_usec) / 1e6 + Double(ru_stime.tv_sec) + Double(ru_stime.tv_usec) / 1e6
    }
}

/// User + system CPU time of this process so far (all its threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return usage.cpuSeconds
}
