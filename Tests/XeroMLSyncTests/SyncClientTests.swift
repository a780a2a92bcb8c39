import Foundation
import Synchronization
import Testing
import XeroML
import XeroMLHTTP
import XeroMLSQLite
@testable import XeroMLSync
import XeroMLSyncAPI

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-sync-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A file with a dataset of `items` items and two finished runs over it: each item has a traced
/// generation, a task score and an evaluator score whose evaluator makes an observation (an evaluation
/// trace); each run has a run-level score.
func makeStore(items: Int = 60, runs: [String] = ["baseline", "candidate"]) async throws -> (XeroML, String) {
    let path = temporaryDirectory().appendingPathComponent("sync.sqlite").path
    let xeroml = try XeroML(path: path)
    _ = try await xeroml.createDataset(name: "qa")
    for i in 0..<items {
        _ = try await xeroml.createDatasetItem(datasetName: "qa", input: .object(["question": .string("q\(i)")]),
                                               expectedOutput: .string("a\(i)"), id: i % 2 == 0 ? "item-\(i)" : nil)
    }
    let judge = ClosureEvaluator(name: "judged") { input in
        await observe("judge call", as: .generation) { span in
            span.setModel("judge-model")
            span.setUsage(promptTokens: 12, completionTokens: 3)
        }
        return [Evaluation(name: "judged", value: .numeric(input.output == input.expectedOutput ? 1 : 0))]
    }
    let mean = ClosureRunEvaluator(name: "mean") { results in
        [Evaluation(name: "mean_accuracy", value: .numeric(results.items.isEmpty ? 0 : 0.5))]
    }
    for (n, name) in runs.enumerated() {
        try await xeroml.runExperiment(name: name, datasetName: "qa", evaluators: [judge], runEvaluators: [mean],
                                       options: ExperimentOptions(maxConcurrency: 4)) { run in
            let answer = await observe("llm", as: .generation) { span in
                span.setModel("model-\(n)")
                span.setUsage(promptTokens: 20, completionTokens: 5)
                return run.input["question"]?.stringValue?.replacingOccurrences(of: "q", with: "a") ?? ""
            }
            run.setOutput(answer)
            run.score(name: "accuracy", value: 1.0)
        }
    }
    return (xeroml, path)
}

/// The rows of one run in the local file, by table, as the server should end up holding them.
func localRowIDs(path: String, runID: String) throws -> [String: Set<String>] {
    let db = try Connection(path: path, mode: .readOnly)
    func ids(_ sql: String) throws -> Set<String> { Set(try db.query(sql, [.text(runID)]) { $0.text(0)! }) }
    return [
        "runItems": try ids("SELECT id FROM run_items WHERE run_id = ?"),
        "traces": try ids("SELECT id FROM traces WHERE run_id = ?"),
        "observations": try ids("SELECT o.id FROM observations o JOIN traces t ON t.id = o.trace_id WHERE t.run_id = ?"),
        "scores": try ids("SELECT id FROM scores WHERE run_id = ?"),
        "datasetItems": try ids("SELECT DISTINCT dataset_item_id FROM run_items WHERE run_id = ?"),
    ]
}

/// The sync protocol's server side in memory, as an ``HTTPTransport``: rows kept once by id, chunk
/// receipts, commit with missing-chunk checks; and faults on demand. For unit tests of the client;
/// the end-to-end tests push to `xeroml-server` on PostgreSQL.
final class MemorySyncServer: HTTPTransport, Sendable {
    struct State {
        var runs: [String: RunManifest] = [:]
        var chunks: [String: Set<Int>] = [:]
        var committed: [String: Int] = [:]  // run id → times a commit changed it (must be 1)
        var rows: [String: [String: Set<String>]] = [:]  // run → table → ids
        var chunkRequests: [String: [Int]] = [:]
        var requests = 0
        /// Answers for the next requests, in order: a status, or nil for a dropped connection.
        var faults: [Int?] = []
        /// Fail every request after this many chunk requests (simulates the process dying mid-push).
        var dieAfterChunks: Int?
        var maxChunkRunItems = 0
    }
    let state = Mutex(State())

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let fault: Int?? = state.withLock { s in
            s.requests += 1
            if let limit = s.dieAfterChunks, s.chunkRequests.values.map(\.count).reduce(0, +) >= limit {
                return .some(nil)
            }
            return s.faults.isEmpty ? .none : .some(s.faults.removeFirst())
        }
        switch fault {
        case .some(.none): throw HTTPError(.connectionFailed, "connection refused (simulated)")
        case .some(.some(let status)):
            return HTTPResponse(statusCode: status, body: Data(#"{"error":{"status":\#(status),"code":"x","message":"simulated \#(status)"}}"#.utf8))
        case .none: break
        }
        guard request.headers["Authorization"] == "Bearer xrml_test_secret" else {
            return HTTPResponse(statusCode: 401, body: Data(#"{"error":{"status":401,"code":"unauthorized","message":"unknown key"}}"#.utf8))
        }
        let parts = request.url.path.split(separator: "/").map(String.init)  // v1 runs ID [chunks N | commit]
        if request.method == "GET", parts == ["v1", "runs"] {
            return try json(state.withLock { s in
                RunList(runs: s.committed.keys.sorted().map { id in
                    RunSummaryRow(id: id, name: s.runs[id]?.run.name ?? "", datasetName: nil, status: "finished", runItemCount: 0,
                                  createdUs: 0, committedUs: 0)
                })
            })
        }
        guard parts.count >= 3, parts[0] == "v1", parts[1] == "runs" else { return HTTPResponse(statusCode: 404) }
        let runID = parts[2]
        switch (request.method, parts.count) {
        case ("GET", 3):
            return try state.withLock { s in
                guard s.runs[runID] != nil else { return HTTPResponse(statusCode: 404) }
                return try json(RunState(runID: runID, receivedChunks: (s.chunks[runID] ?? []).sorted(), committed: s.committed[runID] != nil))
            }
        case ("PUT", 3):
            let manifest = try JSONDecoder().decode(RunManifest.self, from: request.body!)
            return try json(state.withLock { s in
                if s.runs[runID] == nil { s.runs[runID] = manifest }
                return RunState(runID: runID, receivedChunks: (s.chunks[runID] ?? []).sorted(), committed: s.committed[runID] != nil)
            })
        case ("PUT", 5):
            #expect(request.headers["Content-Encoding"] == "gzip")
            let chunk = try JSONDecoder().decode(SyncChunk.self, from: try Gzip.decompress(request.body!, limit: 64 << 20))
            return try json(state.withLock { s in
                s.chunkRequests[runID, default: []].append(chunk.index)
                s.chunks[runID, default: []].insert(chunk.index)
                s.maxChunkRunItems = max(s.maxChunkRunItems, chunk.runItems.count)
                var tables = s.rows[runID] ?? [:]
                var new = 0
                func add(_ table: String, _ ids: [String]) {
                    for id in ids where tables[table, default: []].insert(id).inserted { new += 1 }
                }
                add("runItems", chunk.runItems.map(\.id))
                add("traces", chunk.traces.map(\.id))
                add("observations", chunk.observations.map(\.id))
                add("scores", chunk.scores.map(\.id))
                add("datasetItems", chunk.datasetItems.map(\.id))
                s.rows[runID] = tables
                return ChunkReceipt(runID: runID, index: chunk.index, newRows: new)
            })
        case ("POST", 4):
            let commit = try JSONDecoder().decode(CommitRequest.self, from: request.body!)
            return try state.withLock { s in
                let missing = (0..<commit.chunkCount).filter { !(s.chunks[runID] ?? []).contains($0) }
                if !missing.isEmpty {
                    return HTTPResponse(statusCode: 409, body: try JSONEncoder().encode(APIErrorBody(.init(
                        status: 409, code: "missing_chunks", message: "chunks missing", missingChunks: missing))))
                }
                if s.committed[runID] == nil { s.committed[runID] = 1 }
                return try json(RunState(runID: runID, receivedChunks: (s.chunks[runID] ?? []).sorted(), committed: true,
                                         url: "http://team.example/runs/\(runID)"))
            }
        default:
            return HTTPResponse(statusCode: 405)
        }
    }

    private func json(_ value: some Encodable) throws -> HTTPResponse {
        HTTPResponse(statusCode: 200, body: try JSONEncoder().encode(value))
    }
}

let server = SyncServer(url: URL(string: "HTTP://Team.Example:8788/")!, apiKey: "xrml_test_secret")

func options(_ transport: MemorySyncServer, limits: ChunkLimits = ChunkLimits(runItems: 7, rows: 60),
             attempts: Int = 5) -> SyncOptions {
    SyncOptions(limits: limits, retry: SyncRetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(1), maxDelay: .milliseconds(5)),
                timeout: .seconds(5), transport: transport)
}

@Suite("Sync client", .timeLimit(.minutes(2)))
struct SyncClientTests {
    @Test("every row of every finished run arrives once, in chunks within the limits, and commits once")
    func pushAll() async throws {
        let (xeroml, path) = try await makeStore()
        let memory = MemorySyncServer()
        let report = try await xeroml.sync(to: server, options: options(memory))
        #expect(report.results.map(\.outcome) == [.pushed, .pushed])
        let runs = try await xeroml.runs()
        for run in runs {
            let expected = try localRowIDs(path: path, runID: run.id)
            let got = memory.state.withLock { $0.rows[run.id] ?? [:] }
            for (table, ids) in expected {
                #expect(got[table] == ids, "\(table) of \(run.name)")
            }
            #expect(expected["traces"]!.count == 120, "item and evaluation traces")
            #expect(memory.state.withLock { $0.committed[run.id] } == 1)
            let result = try #require(report.results.first { $0.runID == run.id })
            #expect(result.runItemsSent == 60)
            #expect(result.remoteURL == "http://team.example/runs/\(run.id)")
        }
        #expect(memory.state.withLock { $0.maxChunkRunItems } <= 7)
        // Indices are 0..<n, each sent once.
        for (_, indices) in memory.state.withLock({ $0.chunkRequests }) {
            #expect(indices.sorted() == Array(0..<indices.count))
        }
        let status = try await xeroml.syncStatus()
        #expect(status.count == 2)
        #expect(status.allSatisfy { $0.status == .synced && $0.server == "http://team.example:8788" && $0.attempts == 0 })
        #expect(status.allSatisfy { $0.runItemsSent == 60 && $0.chunksAcknowledged > 8 })
    }

    @Test("a second push sends nothing")
    func secondPush() async throws {
        let (xeroml, _) = try await makeStore(items: 10, runs: ["only"])
        let memory = MemorySyncServer()
        _ = try await xeroml.sync(to: server, options: options(memory))
        let before = memory.state.withLock { $0.requests }
        let again = try await xeroml.sync(to: server, runs: ["only"], options: options(memory))
        #expect(again.results.map(\.outcome) == [.alreadySynced])
        // One request: the server's list of committed runs, which names it.
        #expect(memory.state.withLock { $0.requests } == before + 1)
    }

    @Test("a run synced with a server that does not have it (another project, a restored database) is pushed again")
    func pushedAgain() async throws {
        let (xeroml, _) = try await makeStore(items: 10, runs: ["only"])
        let memory = MemorySyncServer()
        _ = try await xeroml.sync(to: server, options: options(memory))
        // The server forgets everything, as a database restored from before the push would.
        memory.state.withLock { s in
            let requests = s.requests
            s = MemorySyncServer.State()
            s.requests = requests
        }
        let again = try await xeroml.sync(to: server, runs: ["only"], options: options(memory))
        let result = try #require(again.results.first)
        #expect(result.outcome == .pushed)
        #expect(result.pushedAgainBecause?.contains("the server has no such run for this key's project") == true)
        #expect(result.runItemsSent == 10)
        #expect(memory.state.withLock { $0.committed.count } == 1)
        #expect(try await xeroml.syncStatus().allSatisfy { $0.status == .synced })
        // Synced again: the next push sends nothing.
        let third = try await xeroml.sync(to: server, runs: ["only"], options: options(memory))
        #expect(third.results.map(\.outcome) == [.alreadySynced])
    }

    @Test("a push that died mid-way resumes at the next unacknowledged chunk; every row still arrives once")
    func resume() async throws {
        let (xeroml, path) = try await makeStore(items: 40, runs: ["r"])
        let memory = MemorySyncServer()
        memory.state.withLock { $0.dieAfterChunks = 3 }
        let first = try await xeroml.sync(to: server, options: options(memory, attempts: 2))
        guard case .failed(let error) = first.results[0].outcome else {
            Issue.record("expected a failure, got \(first.results[0].outcome)")
            return
        }
        #expect(error.isTransient)
        var status = try await xeroml.syncStatus()
        #expect(status[0].status == .failed && status[0].chunksAcknowledged == 3 && status[0].attempts >= 2)
        #expect(status[0].lastError?.contains("connection refused") == true)

        memory.state.withLock { $0.dieAfterChunks = nil }
        let second = try await xeroml.sync(to: server, options: options(memory))
        #expect(second.results[0].outcome == .pushed)
        #expect(second.results[0].resumedAtChunk == 3)
        let run = try #require(try await xeroml.runs().first)
        let sent = memory.state.withLock { $0.chunkRequests[run.id] ?? [] }
        #expect(Array(sent.prefix(3)) == [0, 1, 2] && sent[3] == 3, "chunks 0-2 are not sent again: \(sent)")
        #expect(Set(sent).count == sent.count)
        let expected = try localRowIDs(path: path, runID: run.id)
        #expect(memory.state.withLock { $0.rows[run.id] } == expected)
        status = try await xeroml.syncStatus()
        #expect(status[0].status == .synced && status[0].runItemsSent == 40)
    }

    @Test("transient failures (503, 429, dropped connections) are retried; the state counts the attempts")
    func transient() async throws {
        let (xeroml, path) = try await makeStore(items: 12, runs: ["r"])
        let memory = MemorySyncServer()
        memory.state.withLock { $0.faults = [503, nil, 429, 500, nil] }
        // Five failures in a row, then success: within six attempts.
        let report = try await xeroml.sync(to: server, options: options(memory, attempts: 6))
        #expect(report.results[0].outcome == .pushed)
        let run = try #require(try await xeroml.runs().first)
        #expect(memory.state.withLock { $0.rows[run.id] } == (try localRowIDs(path: path, runID: run.id)))
        let status = try await xeroml.syncStatus()
        #expect(status[0].status == .synced && status[0].attempts == 5)
    }

    @Test("a push gives up after its attempts, does not try the next runs against a server that is down, and resumes later")
    func givesUp() async throws {
        let (xeroml, _) = try await makeStore(items: 3, runs: ["r", "s"])
        let memory = MemorySyncServer()
        memory.state.withLock { $0.faults = [503, 503, 503] }
        let report = try await xeroml.sync(to: server, options: options(memory, attempts: 3))
        guard case .failed(let error) = report.results[0].outcome else { Issue.record("\(report.results)"); return }
        #expect(error.isTransient && error.status == 503 && error.message.contains("simulated 503"))
        guard case .skipped(let reason) = report.results[1].outcome else { Issue.record("\(report.results)"); return }
        #expect(reason.contains("not tried") && reason.contains("simulated 503"))
        #expect(memory.state.withLock { $0.requests } == 3)
        let again = try await xeroml.sync(to: server, options: options(memory))
        #expect(again.results.map(\.outcome) == [.pushed, .pushed])
    }

    @Test("a refused key stops that run's push at once with the server's reason")
    func permanent() async throws {
        let (xeroml, _) = try await makeStore(items: 5, runs: ["a", "b"])
        let memory = MemorySyncServer()
        let wrong = SyncServer(url: server.url, apiKey: "xrml_wrong")
        let report = try await xeroml.sync(to: wrong, options: options(memory))
        #expect(report.failures.count == 2)
        for result in report.results {
            guard case .failed(let error) = result.outcome else { Issue.record("\(result.outcome)"); continue }
            #expect(!error.isTransient && error.status == 401)
            #expect(error.message.contains("401") && error.message.contains("unknown key") && error.message.contains("revoked"))
        }
        #expect(memory.state.withLock { $0.requests } == 2, "one request per run, no retries")
        let status = try await xeroml.syncStatus()
        #expect(status.allSatisfy { $0.status == .failed && $0.attempts == 1 })
    }

    @Test("running and interrupted runs are not pushed, and say why")
    func notFinished() async throws {
        let path = temporaryDirectory().appendingPathComponent("open.sqlite").path
        let xeroml = try XeroML(path: path)
        _ = try await xeroml.createDataset(name: "d")
        _ = try await xeroml.createDatasetItem(datasetName: "d", input: .string("x"))
        let open = try await xeroml.createExperiment(name: "open", datasetName: "d")
        try await open.runItemRaw(input: .string("x")) { $0.setOutput("y") }
        try await xeroml.flush()
        let memory = MemorySyncServer()
        let report = try await xeroml.sync(to: server, options: options(memory))
        guard case .skipped(let reason) = report.results[0].outcome else { Issue.record("\(report.results)"); return }
        #expect(reason.contains("still running"))
        #expect(memory.state.withLock { $0.requests } == 0)
    }

    @Test("a chunk read again from its cursor holds the same rows")
    func deterministic() async throws {
        let (xeroml, _) = try await makeStore(items: 30, runs: ["r"])
        let run = try #require(try await xeroml.runs().first)
        let reader = ChunkReader(runID: run.id, limits: ChunkLimits(runItems: 4, rows: 30))
        let chunks = try await xeroml.readDatabase { db in
            var cursor = ChunkCursor.start
            var all: [(ChunkCursor, SyncChunk)] = []
            while let content = try reader.chunk(index: all.count, at: cursor, in: db) {
                all.append((cursor, content.chunk))
                #expect(ChunkCursor(content.next.description) == content.next)
                cursor = content.next
            }
            return all.map { ($0.0.description, $0.1) }
        }
        #expect(chunks.count > 8)
        for (index, (cursorText, chunk)) in chunks.enumerated() {
            let again = try await xeroml.readDatabase { db in
                try reader.chunk(index: index, at: ChunkCursor(cursorText)!, in: db)!.chunk
            }
            #expect(again == chunk)
            #expect(chunk.rowCount <= 30 || chunk.runItems.count == 1)
        }
    }
}
