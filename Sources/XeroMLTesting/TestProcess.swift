package import Foundation
import Synchronization

/// What a finished process printed and how it ended.
package struct ProcessResult: Sendable {
    package var status: Int32
    package var stdout: String
    package var stderr: String
}

/// A started process, for this package's own tests of its executables.
///
/// `@unchecked Sendable`: the process and its pipes are set up before `run()` and only read after;
/// the pipes are drained on threads of their own.
package final class RunningProcess: @unchecked Sendable {
    package let process: Process
    private let out: Pipe
    private let err: Pipe

    /// Starts `executable` with `arguments` in `directory`, with the test's environment changed by
    /// `environment`.
    package init(executable: URL, arguments: [String], environment: [String: String] = [:],
                 directory: URL) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        out = Pipe()
        err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try launch(process)
    }

    /// The child's process id.
    package var pid: Int32 { process.processIdentifier }

    /// Waits for the process to exit, reading both pipes at once (so neither can fill up and stall the
    /// process) on dispatch threads: a test waiting for a process never blocks the cooperative pool.
    package func wait() async -> ProcessResult {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let stderr = StderrBox()
                let group = DispatchGroup()
                DispatchQueue.global().async(group: group) { stderr.data = self.err.fileHandleForReading.readDataToEndOfFile() }
                let stdout = self.out.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                self.process.waitUntilExit()
                continuation.resume(returning: ProcessResult(
                    status: self.process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                    stderr: String(decoding: stderr.data, as: UTF8.self)))
            }
        }
    }
}

/// Serializes process launches within this test process.
private let launches = Mutex(())

/// Starts `process`, one launch at a time in this test process.
///
/// Foundation's `Process.run()` on Linux adds a close action for every descriptor up to the highest
/// open one and was seen to crash (a bad memory copy inside `run()`) when many tests launched
/// processes at once while others opened and closed sockets; launching one at a time takes
/// milliseconds and keeps the parallel suite off that path.
package func launch(_ process: Process) throws {
    try launches.withLock { _ in try process.run() }
}

/// Standard error's bytes, written by one thread and read by another after `DispatchGroup.wait()`,
/// which orders the two. `@unchecked Sendable` for that reason.
private final class StderrBox: @unchecked Sendable {
    var data = Data()
}

/// An executable of this package (e.g. `xeroml`), found next to the running test bundle, else in the
/// package's debug build folder.
package func builtExecutable(_ name: String) -> URL {
    let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var candidates = [testBinary.deletingLastPathComponent().appendingPathComponent(name)]
    if let bundle = Bundle.main.executableURL {
        candidates.append(bundle.deletingLastPathComponent().appendingPathComponent(name))
    }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
}
