import Foundation
@testable import XeroML

/// A fresh directory for one test's files.
func temporaryDirectory() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-test-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A client on a new file in a fresh directory.
func temporaryClient() throws -> XeroML {
    try XeroML(path: temporaryDirectory().appendingPathComponent("xeroml.sqlite").path)
}

/// Writes `text` to a new file and returns its path.
func writeFile(_ name: String, _ text: String, in dir: URL = temporaryDirectory()) -> String {
    let url = dir.appendingPathComponent(name)
    try! text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// The repository's top directory, found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The `xeroml` executable built next to the test bundle.
func xeromlExecutable() -> URL {
    let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var candidates = [testBinary.deletingLastPathComponent().appendingPathComponent("xeroml")]
    if let bundle = Bundle.main.executableURL { candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("xeroml")) }
    candidates.append(repositoryRoot.appendingPathComponent(".build/debug/xeroml"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the CLI with `arguments` and waits for it, off the cooperative pool.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    let process = try startCLI(arguments, environment: environment)
    return await process.wait()
}

final class RunningProcess: @unchecked Sendable {
    // Set up before `run()` and then only read; the pipes are drained on threads of their own.
    let process: Process
    let out: Pipe
    let err: Pipe
    init(process: Process, out: Pipe, err: Pipe) { self.process = process; self.out = out; self.err = err }

    /// Waits for the process to exit, reading both pipes at once (so neither can fill up and stall the
    /// process) on dispatch threads: a test waiting for a process never blocks the cooperative pool.
    func wait() async -> ProcessResult {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let stderr = Locked(Data())
                let group = DispatchGroup()
                DispatchQueue.global().async(group: group) {
                    let data = self.err.fileHandleForReading.readDataToEndOfFile()
                    stderr.set(data)
                }
                let stdout = self.out.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                self.process.waitUntilExit()
                continuation.resume(returning: ProcessResult(
                    status: self.process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                    stderr: String(decoding: stderr.value, as: UTF8.self)))
            }
        }
    }
}

/// A value shared between threads behind a lock.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // Only touched under `lock`.
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
}

func startCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningProcess {
    let process = Process()
    process.executableURL = xeromlExecutable()
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { _, new in new }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    return RunningProcess(process: process, out: out, err: err)
}
