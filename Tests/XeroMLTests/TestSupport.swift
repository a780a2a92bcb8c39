import Foundation
@testable import XeroML
import XeroMLTesting

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
func xeromlExecutable() -> URL { builtExecutable("xeroml") }

/// Runs the CLI with `arguments` and waits for it, off the cooperative pool.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    try await startCLI(arguments, environment: environment).wait()
}

/// Starts the CLI in the repository's top directory.
func startCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningProcess {
    try RunningProcess(executable: xeromlExecutable(), arguments: arguments, environment: environment,
                       directory: repositoryRoot)
}
