import Foundation
import XeroML
import XeroMLHTTP
import XeroMLSync
import XeroMLSyncAPI
import XeroMLTesting

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
    /// Chunks on the wire at once, and run items per chunk, end to end.
    var concurrency = SyncOptions().concurrency
    var chunkItems = ChunkLimits().runItems

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
        try await endToEnd(store: path, in: dir)
    }

    /// The whole path: the client in a process of its own (`sync-client`, so its peak memory is its
    /// own) pushing to `xeroml-server` (release build, next to this one) on a throwaway PostgreSQL
    /// cluster with PostgreSQL's durable defaults (fsync on).
    func endToEnd(store path: String, in dir: URL) async throws {
        guard PostgresCluster.isAvailable else {
            print("end to end: skipped, \(PostgresCluster.skipReason)")
            return
        }
        let serverExecutable = builtExecutable("xeroml-server")
        guard FileManager.default.isExecutableFile(atPath: serverExecutable.path) else {
            print("end to end: skipped, no \(serverExecutable.path) (swift build -c release --product xeroml-server)")
            return
        }
        let cluster = try PostgresCluster(durable: true)
        try await cluster.start()
        do {
            try await pushRounds(path: path, dir: dir, cluster: cluster, serverExecutable: serverExecutable)
            try await cluster.stop()
        } catch {
            try? await cluster.stop()
            throw error
        }
    }

    private func pushRounds(path: String, dir: URL, cluster: PostgresCluster, serverExecutable: URL) async throws {
        print("")
        print("End to end into xeroml-server on PostgreSQL (fsync on), the client in its own process, "
              + "\(concurrency) chunks of \(chunkItems) items in flight:")
        print("| round | seconds | items/s | client CPU s | client peak RSS MB | server CPU s | PostgreSQL CPU s | re-push seconds |")
        print("|---|---|---|---|---|---|---|---|")
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        for round in 1...rounds {
            // Each round: a fresh database (the run would already be there otherwise) and a fresh copy
            // of the file (its sync state would make the push a re-push).
            let database = try await cluster.createDatabase("bench\(round)")
            _ = try await serverCommand(serverExecutable, ["projects", "create", "bench", "--database-url", database])
            let key = try await serverCommand(serverExecutable, ["keys", "create", "--project", "bench", "--database-url", database])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let copy = dir.appendingPathComponent("e2e-\(round).sqlite").path
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let server = try RunningProcess(executable: serverExecutable, arguments: ["serve", "--database-url", database, "--port", "0"])
            do {
                try await server.waitFor(.seconds(60), "the server's address") { out, _ in out.contains("listening on http://") }
                guard let range = server.output.stdout.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else {
                    throw BenchmarkFailure("xeroml-server printed no address: \(server.output.stdout)")
                }
                let base = String(server.output.stdout[range])
                let arguments = ["sync-client", "--db", copy, "--server", base, "--run", "baseline",
                                 "--concurrency", "\(concurrency)", "--chunk-items", "\(chunkItems)"]
                let serverBefore = processCPUSeconds(server.pid)
                let postgresBefore = postgresCPUSeconds()
                let push = try await RunningProcess(executable: me, arguments: arguments, environment: ["XEROML_API_KEY": key])
                    .wait(timeout: .seconds(600))
                let serverCPU = processCPUSeconds(server.pid) - serverBefore
                let postgresCPU = postgresCPUSeconds() - postgresBefore
                guard push.status == 0, let first = SyncClientFigures(push.stdout), first.items == items else {
                    throw BenchmarkFailure("sync-client failed: \(push.stdout) \(push.stderr)")
                }
                let again = try await RunningProcess(executable: me, arguments: arguments, environment: ["XEROML_API_KEY": key])
                    .wait(timeout: .seconds(600))
                guard again.status == 0, let second = SyncClientFigures(again.stdout), second.items == 0 else {
                    throw BenchmarkFailure("re-push failed or sent items: \(again.stdout) \(again.stderr)")
                }
                print(String(format: "| %d | %.2f | %.0f | %.2f | %.0f | %.2f | %.2f | %.3f |", round, first.seconds,
                             Double(first.items) / first.seconds, first.cpu, first.peakMegabytes, serverCPU, postgresCPU, second.seconds))
                await server.stop()
            } catch {
                await server.stop()
                throw error
            }
        }
    }

    private func serverCommand(_ executable: URL, _ arguments: [String]) async throws -> String {
        let result = try await RunningProcess(executable: executable, arguments: arguments).wait(timeout: .seconds(60))
        guard result.status == 0 else { throw BenchmarkFailure("xeroml-server \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result.stdout
    }

    /// `xeroml-bench sync-client --db PATH --server URL --run NAME`: one push, timed, in this process;
    /// prints `items seconds cpu peakMB`.
    static func client(path: String, server: String, run: String, chunkItems: Int, concurrency: Int) async throws {
        let key = ProcessInfo.processInfo.environment["XEROML_API_KEY"] ?? ""
        let xeroml = try XeroML(path: path)
        let clock = ContinuousClock()
        let cpuBefore = cpuSeconds()
        let start = clock.now
        let report = try await xeroml.sync(to: SyncServer(url: URL(string: server)!, apiKey: key), runs: [run],
                                           options: SyncOptions(limits: ChunkLimits(runItems: chunkItems), concurrency: concurrency))
        let elapsed = seconds(clock.now - start)
        let result = report.results[0]
        switch result.outcome {
        case .pushed, .alreadySynced: break
        default: throw BenchmarkFailure("push of \(run): \(result.outcome)")
        }
        print(String(format: "%d %.4f %.3f %.1f", result.runItemsSent, elapsed, cpuSeconds() - cpuBefore, peakResidentMegabytes()))
    }
}

/// CPU time of every `postgres` process of the machine so far (the cluster's backends, which live as
/// long as the server's pooled connections, and its background processes).
func postgresCPUSeconds() -> Double {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).reduce(0) { total, pid in
        let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return name == "postgres" ? total + processCPUSeconds(pid) : total
    }
}

/// What `sync-client` printed.
struct SyncClientFigures {
    var items: Int
    var seconds: Double
    var cpu: Double
    var peakMegabytes: Double

    init?(_ text: String) {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 4, let items = Int(fields[0]), let seconds = Double(fields[1]), let cpu = Double(fields[2]),
              let peak = Double(fields[3]) else { return nil }
        (self.items, self.seconds, self.cpu, self.peakMegabytes) = (items, seconds, cpu, peak)
    }
}
