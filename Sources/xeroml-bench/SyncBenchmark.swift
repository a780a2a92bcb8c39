import Foundation
import XeroML
import XeroMLHTTP
import XeroMLSync
import XeroMLSyncAPI

/// Pushing a finished 100,000-item run (trace, root span, run item, two scores per item) to a team
/// server. Targets: ≥ 10,000 items/s end to end, client peak memory < 100 MB, re-push < 1 s.
///
/// `xeroml-bench sync` measures the client alone first (reading, encoding and compressing chunks into
/// a sink that acknowledges them at once), then, when `--server URL` and a key in `$XEROML_API_KEY`
/// are given or a PostgreSQL cluster can be started here, the whole path into `xeroml-server`.
struct SyncBenchmark {
    let items: Int
    let rounds: Int
    /// A store made by an earlier run of this benchmark, kept at this path (made there when missing).
    var storePath: String?

    /// A transport that acknowledges every request at once without reading it: what the client costs.
    final class SinkTransport: HTTPTransport {
        func send(_ request: HTTPRequest) async throws -> HTTPResponse {
            let parts = request.url.path.split(separator: "/").map(String.init)
            let runID = parts.count > 2 ? parts[2] : ""
            let body: Data
            switch (request.method, parts.count) {
            case ("PUT", 5): body = try JSONEncoder().encode(ChunkReceipt(runID: runID, index: Int(parts[4]) ?? 0, newRows: 0))
            default: body = try JSONEncoder().encode(RunState(runID: runID, receivedChunks: [], committed: request.method == "POST"))
            }
            return HTTPResponse(statusCode: 200, body: body)
        }
    }

    func run() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        print("XeroML sync benchmark: a finished run of \(items) items (trace, root span, run item, two scores each)")
        let path: String
        if let storePath, FileManager.default.fileExists(atPath: storePath) {
            path = storePath
        } else {
            path = try await CompareBenchmark.makeStore(items: items, in: dir).path
            if let storePath { try FileManager.default.copyItem(atPath: path, toPath: storePath) }
        }
        let clock = ContinuousClock()
        print("| round | client only: seconds | items/s | CPU seconds | chunks | MB sent (gzip) |")
        print("|---|---|---|---|---|---|")
        for round in 1...rounds {
            // A fresh copy each round: the sync state of the previous round would make it a re-push.
            let copy = dir.appendingPathComponent("round-\(round).sqlite").path
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let xeroml = try XeroML(path: copy)
            let server = SyncServer(url: URL(string: "http://sink.invalid")!, apiKey: "xrml_bench")
            let cpuBefore = cpuSeconds()
            let start = clock.now
            let report = try await xeroml.sync(to: server, runs: ["baseline"], options: SyncOptions(transport: SinkTransport()))
            let elapsed = seconds(clock.now - start)
            let cpu = cpuSeconds() - cpuBefore
            let result = report.results[0]
            precondition(result.outcome == .pushed && result.runItemsSent == items, "\(result)")
            print(String(format: "| %d | %.2f | %.0f | %.2f | %d | %.1f |", round, elapsed, Double(items) / elapsed, cpu, result.chunksSent,
                         Double(result.bytesSent) / 1e6))
        }
        print(String(format: "peak RSS of this process: %.0f MB (includes making the run)", peakResidentMegabytes()))
    }
}
