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

/// Runs the CLI with `arguments` and waits for it.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    let process = try startCLI(arguments, environment: environment)
    return process.wait()
}

final class RunningProcess: @unchecked Sendable {
    // Only touched from the thread that created it and in `wait()`.
    let process: Process
    let out: Pipe
    let err: Pipe
    init(process: Process, out: Pipe, err: Pipe) { self.process = process; self.out = out; self.err = err }

    func wait() -> ProcessResult {
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                             stderr: String(decoding: stderr, as: UTF8.self))
    }
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
