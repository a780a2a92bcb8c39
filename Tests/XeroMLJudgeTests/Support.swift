import Foundation
import XeroML
import XeroMLJudge
import XeroMLTesting

/// The repository's top directory, found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A client on a new file in a fresh directory.
func temporaryClient() throws -> XeroML { try XeroMLTest.temporaryClient() }

/// Creates a dataset of capital-city questions: (question, expected answer, metadata).
@discardableResult
func makeDataset(_ xeroml: XeroML, name: String = "capitals",
                 items: [(String, String?, JSONValue?)] = [
                     ("Capital of France?", "Paris", nil), ("Capital of Japan?", "Tokyo", nil),
                     ("Capital of Peru?", "Lima", nil),
                 ]) async throws -> Dataset {
    _ = try await xeroml.createDataset(name: name)
    for (question, expected, metadata) in items {
        _ = try await xeroml.createDatasetItem(datasetName: name, input: ["question": .string(question)],
                                               expectedOutput: expected.map(JSONValue.string), metadata: metadata)
    }
    return try await xeroml.dataset(named: name)
}

/// Whether a captured request is a judge call (its system message is a judge prompt).
func isJudgeRequest(_ request: FakeRequest) -> Bool {
    request.messages.first?.content.contains("impartial evaluator") == true
}

/// A retry policy with short, jitter-free waits, so tests measure `Retry-After` alone.
let quickRetry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(50), jitter: 0)

/// A chat client for `server` with quick retries.
func client(_ server: FakeOpenAIServer, prices: Bool = false, limiter: AdaptiveLimiter? = nil,
            retry: RetryPolicy = quickRetry) -> ChatClient {
    var configuration = server.configuration()
    if prices {
        configuration.pricePer1KPromptTokens = 0.5
        configuration.pricePer1KCompletionTokens = 1.5
    }
    return ChatClient(configuration: configuration, retry: retry, limiter: limiter)
}

extension Duration {
    var secondsValue: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

// MARK: - The CLI

/// The `xeroml` executable built next to the test bundle.
func xeromlExecutable() -> URL { builtExecutable("xeroml") }

/// Runs the CLI with `arguments` and waits for it, off the cooperative pool. The XEROML_JUDGE_* and
/// OPENAI_API_KEY variables of the test environment are blanked unless `environment` sets them.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
    var blanked: [String: String] = [:]
    for name in ["XEROML_JUDGE_BASE_URL", "XEROML_JUDGE_MODEL", "XEROML_JUDGE_API_KEY", "OPENAI_API_KEY"] {
        blanked[name] = ""
    }
    blanked.merge(environment) { _, new in new }
    return try await RunningProcess(executable: xeromlExecutable(), arguments: arguments, environment: blanked,
                                    directory: FileManager.default.temporaryDirectory).wait()
}

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP port that is bound but not listening: connections to it are refused, and no
/// other test can take it while this lives.
final class ClosedPort {
    let number: UInt16
    private let socketFD: Int32

    init() throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        socketFD = fd
        number = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(socketFD) }
}
