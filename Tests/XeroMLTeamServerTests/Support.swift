import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import Testing
import XeroMLSyncAPI
import XeroMLTesting
@testable import XeroMLTeamServer

/// Whether PostgreSQL tests can run here; printed once when they cannot.
let postgresAvailable: Bool = {
    if !PostgresCluster.isAvailable {
        print("◇ \(PostgresCluster.skipReason)")
    }
    return PostgresCluster.isAvailable
}()

/// A fresh database in the shared cluster: its URL.
func freshDatabase(in cluster: PostgresCluster? = nil) async throws -> String {
    let cluster = if let cluster { cluster } else { try await PostgresCluster.shared() }
    return try await cluster.createDatabase("t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())
}

/// The database name at the end of a URL.
func databaseName(_ url: String) -> String { String(url.split(separator: "/").last ?? "") }

/// Runs `body` with a migrated database whose pool runs meanwhile.
func withDatabase<T: Sendable>(_ url: String, _ body: @escaping @Sendable (TeamDatabase) async throws -> T) async throws -> T {
    try await TeamDatabase.withMigrated(url: url, body)
}

/// A team server on 127.0.0.1 (a free port) over `database`, for the time of `body`; answers what
/// `body` answers. Requests go over real HTTP on loopback (``Endpoint``).
func withServer<T: Sendable>(_ database: TeamDatabase, requestTimeout: Duration = .seconds(15),
                             _ body: @escaping @Sendable (Endpoint) async throws -> T) async throws -> T {
    let server = TeamServer(database: database, requestTimeout: requestTimeout)
    return try await server.application(host: "127.0.0.1", port: 0).test(.live) { client in
        let port = try #require(client.port)
        return try await body(Endpoint(base: "http://127.0.0.1:\(port)"))
    }
}

/// A project with a key, made through ``TeamAdmin``.
struct ProjectKey: Sendable {
    var name: String
    var id: UUID
    var keyID: String
    var token: String
}

func makeProject(_ database: TeamDatabase, _ name: String = "p-" + UUID().uuidString.prefix(8)) async throws -> ProjectKey {
    let admin = TeamAdmin(database: database)
    let project = try await admin.createProject(name: name)
    let (key, token) = try await admin.createKey(project: name)
    return ProjectKey(name: name, id: project.id, keyID: key.id, token: token)
}

/// An HTTP answer.
struct Answer: Sendable {
    var status: Int
    var body: Data
    var headers: [String: String]

    func decode<T: Decodable>(_ type: T.Type, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: body)
        } catch {
            Issue.record("cannot decode \(T.self) from \(status) \(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
            throw error
        }
    }

    var error: APIErrorBody.Detail? { (try? JSONDecoder().decode(APIErrorBody.self, from: body))?.error }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A server's base URL and requests to it, each on a connection of its own (URLSession).
struct Endpoint: Sendable {
    var base: String

    func send(_ method: String, _ path: String, token: String? = nil, body: Data? = nil, gzip: Bool = false,
              headers: [String: String] = [:], timeout: TimeInterval = 30) async throws -> Answer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            if gzip {
                request.setValue("gzip", forHTTPHeaderField: "Content-Encoding")
                request.httpBody = try Gzip.compress(body)
            } else {
                request.httpBody = body
            }
        }
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return Answer(status: http.statusCode, body: data, headers: headers)
    }

    func put(_ path: String, _ value: some Encodable, token: String?, gzip: Bool = true) async throws -> Answer {
        try await send("PUT", path, token: token, body: try JSONEncoder().encode(value), gzip: gzip)
    }

    func post(_ path: String, _ value: some Encodable, token: String?) async throws -> Answer {
        try await send("POST", path, token: token, body: try JSONEncoder().encode(value))
    }

    func get(_ path: String, token: String?) async throws -> Answer {
        try await send("GET", path, token: token)
    }
}

/// A synthetic finished run as a client would push it: per item a trace, a root span, a run item
/// and two scores; dataset items with external ids (even items) or without (odd items).
struct SyntheticRun: Sendable {
    var manifest: RunManifest
    var chunks: [SyncChunk]
    var runItemCount: Int

    var runID: String { manifest.run.id }

    /// `items` items in chunks of `itemsPerChunk`; `machine` changes every client id (as a second
    /// machine that imported the same file would have), not the items' content.
    static func make(items: Int, itemsPerChunk: Int, datasetName: String = "capitals", machine: String = "a",
                     runName: String = "run") -> SyntheticRun {
        let runID = "run-\(machine)-\(UUID().uuidString.lowercased())"
        let datasetID = "ds-\(machine)-\(UUID().uuidString.lowercased())"
        let now: Int64 = 1_764_000_000_000_000
        let manifest = RunManifest(
            run: RunRow(id: runID, name: runName, metadata: #"{"model":"small"}"#, status: "finished", datasetID: datasetID,
                        datasetVersion: 1, configuration: #"{"evaluators":["exact"]}"#, createdUs: now, finishedUs: now + 1_000_000),
            dataset: DatasetRow(id: datasetID, name: datasetName, description: "capital cities", version: 1, createdUs: now),
            clientVersion: "test")
        var chunks: [SyncChunk] = []
        var start = 0
        while start < items {
            let end = min(items, start + itemsPerChunk)
            var chunk = SyncChunk(runID: runID, index: chunks.count)
            for i in start..<end {
                let itemID = "item-\(machine)-\(runID.suffix(12))-\(i)"
                let traceID = "trace-\(runID.suffix(12))-\(i)"
                let runItemID = "ri-\(runID.suffix(12))-\(i)"
                let input = #"{"question":"capital of country \#(i)?"}"#
                let expected = #""city \#(i)""#
                chunk.datasetItems.append(DatasetItemRow(id: itemID, datasetID: datasetID, externalID: i % 2 == 0 ? "q\(i)" : nil,
                                                         input: input, expectedOutput: expected, createdUs: now))
                chunk.traces.append(TraceRow(id: traceID, name: "item", kind: "item", input: input, output: expected,
                                             startedUs: now + Int64(i), endedUs: now + Int64(i) + 900))
                chunk.observations.append(ObservationRow(id: "obs-\(runID.suffix(12))-\(i)", traceID: traceID, kind: "span", name: "task",
                                                         input: input, output: expected, startedUs: now + Int64(i), endedUs: now + Int64(i) + 800))
                chunk.runItems.append(RunItemRow(id: runItemID, datasetItemID: itemID, input: input, expectedOutput: expected,
                                                 output: expected, latencyMs: 12.5, traceID: traceID, startedUs: now + Int64(i)))
                chunk.scores.append(ScoreRow(id: "s1-\(runID.suffix(12))-\(i)", runItemID: runItemID, traceID: traceID, name: "exact",
                                             dataType: "boolean", value: 1, source: "evaluator", evaluator: "exact", createdUs: now))
                chunk.scores.append(ScoreRow(id: "s2-\(runID.suffix(12))-\(i)", runItemID: runItemID, traceID: traceID, name: "quality",
                                             dataType: "numeric", value: 0.75, comment: "fine", source: "judge", createdUs: now))
            }
            chunks.append(chunk)
            start = end
        }
        return SyntheticRun(manifest: manifest, chunks: chunks, runItemCount: items)
    }

    var commit: CommitRequest { CommitRequest(chunkCount: chunks.count, runItemCount: runItemCount) }

    /// The same run with the same rows, in chunks of `itemsPerChunk` items (as a client would send it
    /// with another chunk size).
    func rechunked(itemsPerChunk: Int) -> SyntheticRun {
        var all = SyncChunk(runID: runID, index: 0)
        for chunk in chunks {
            all.datasetItems += chunk.datasetItems
            all.traces += chunk.traces
            all.observations += chunk.observations
            all.runItems += chunk.runItems
            all.scores += chunk.scores
        }
        var copy = self
        copy.chunks = stride(from: 0, to: all.runItems.count, by: itemsPerChunk).enumerated().map { index, start in
            let items = start..<min(all.runItems.count, start + itemsPerChunk)
            var chunk = SyncChunk(runID: runID, index: index)
            chunk.datasetItems = Array(all.datasetItems[items])
            chunk.traces = Array(all.traces[items])
            chunk.observations = Array(all.observations[items])
            chunk.runItems = Array(all.runItems[items])
            chunk.scores = Array(all.scores[(2 * items.lowerBound)..<(2 * items.upperBound)])
            return chunk
        }
        return copy
    }
}

/// One number from `sql` (psql, unaligned).
func count(_ sql: String, in url: String, cluster: PostgresCluster? = nil) async throws -> Int {
    let cluster = if let cluster { cluster } else { try await PostgresCluster.shared() }
    let text = try await cluster.psql(sql, database: databaseName(url))
    return try #require(Int(text), "\(sql) answered \(text)")
}
