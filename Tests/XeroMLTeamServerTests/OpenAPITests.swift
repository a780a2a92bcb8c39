import Foundation
import Testing
import XeroMLSyncAPI
import XeroMLTesting
@testable import XeroMLTeamServer

/// `docs/sync-openapi.json` against the server's routes and the wire types' Codable keys.
@Suite("Sync OpenAPI document")
struct OpenAPITests {
    static var document: [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/sync-openapi.json")
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }

    static var schemas: [String: [String: Any]] {
        ((document["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]]) ?? [:]
    }

    /// `METHOD /path` of every documented operation.
    static var documentedRoutes: Set<String> {
        var routes = Set<String>()
        for (path, item) in (document["paths"] as? [String: [String: Any]]) ?? [:] {
            for method in item.keys where ["get", "put", "post", "delete", "patch"].contains(method) {
                routes.insert("\(method.uppercased()) \(path)")
            }
        }
        return routes
    }

    @Test("the document is OpenAPI 3 and lists exactly the server's routes")
    func routes() {
        #expect((Self.document["openapi"] as? String)?.hasPrefix("3.0") == true)
        #expect(Self.documentedRoutes == Set(TeamServer.apiRoutes))
    }

    /// Each wire type with every field set (all keys) and with only the required ones.
    static var samples: [(name: String, full: any Encodable, minimal: any Encodable)] { [
        ("RunRow", RunRow(id: "r", name: "n", description: "d", metadata: "{}", status: "finished", datasetID: "d", datasetVersion: 1,
                          configuration: "{}", createdUs: 1, finishedUs: 2),
         RunRow(id: "r", name: "n", status: "finished", createdUs: 1)),
        ("DatasetRow", DatasetRow(id: "d", name: "n", description: "d", metadata: "{}", version: 1, createdUs: 1),
         DatasetRow(id: "d", name: "n", version: 1, createdUs: 1)),
        ("DatasetItemRow", DatasetItemRow(id: "i", datasetID: "d", externalID: "e", input: "1", expectedOutput: "2", metadata: "{}", createdUs: 1),
         DatasetItemRow(id: "i", datasetID: "d", input: "1", createdUs: 1)),
        ("TraceRow", TraceRow(id: "t", name: "n", kind: "item", input: "1", output: "2", metadata: "{}", startedUs: 1, endedUs: 2),
         TraceRow(id: "t", name: "n", kind: "item", startedUs: 1)),
        ("ObservationRow", ObservationRow(id: "o", traceID: "t", parentID: "p", kind: "span", name: "n", input: "1", output: "2", metadata: "{}",
                                          model: "m", modelParameters: "{}", promptTokens: 1, completionTokens: 2, totalTokens: 3, cost: 0.1,
                                          level: "default", statusMessage: "s", startedUs: 1, endedUs: 2),
         ObservationRow(id: "o", traceID: "t", kind: "span", name: "n", startedUs: 1)),
        ("RunItemRow", RunItemRow(id: "ri", datasetItemID: "i", repetition: 0, input: "1", expectedOutput: "2", metadata: "{}", output: "3",
                                  error: "e", latencyMs: 1, attempts: 1, generations: 1, promptTokens: 1, completionTokens: 1, totalTokens: 2,
                                  cost: 0.1, traceID: "t", startedUs: 1),
         RunItemRow(id: "ri", latencyMs: 1, startedUs: 1)),
        ("ScoreRow", ScoreRow(id: "s", runItemID: "ri", traceID: "t", observationID: "o", name: "n", dataType: "numeric", value: 1,
                              stringValue: "v", comment: "c", source: "sdk", evaluator: "e", createdUs: 1),
         ScoreRow(id: "s", name: "n", dataType: "numeric", createdUs: 1)),
        ("RunManifest", RunManifest(run: RunRow(id: "r", name: "n", status: "finished", createdUs: 1),
                                    dataset: DatasetRow(id: "d", name: "n", version: 1, createdUs: 1), clientVersion: "1"),
         RunManifest(run: RunRow(id: "r", name: "n", status: "finished", createdUs: 1))),
        ("SyncChunk", SyncChunk(runID: "r", index: 0), SyncChunk(runID: "r", index: 0)),
        ("CommitRequest", CommitRequest(chunkCount: 1, runItemCount: 1), CommitRequest(chunkCount: 1, runItemCount: 1)),
        ("RunState", RunState(runID: "r", receivedChunks: [0], committed: true, url: "u"), RunState(runID: "r", receivedChunks: [], committed: false)),
        ("ChunkReceipt", ChunkReceipt(runID: "r", index: 0, newRows: 1), ChunkReceipt(runID: "r", index: 0, newRows: 1)),
        ("ProjectInfo", ProjectInfo(id: "p", name: "n"), ProjectInfo(id: "p", name: "n")),
        ("RunSummaryRow", RunSummaryRow(id: "r", name: "n", datasetName: "d", status: "finished", runItemCount: 1, createdUs: 1, committedUs: 2),
         RunSummaryRow(id: "r", name: "n", datasetName: nil, status: "finished", runItemCount: 1, createdUs: 1, committedUs: 2)),
        ("RunList", RunList(runs: []), RunList(runs: [])),
        ("APIErrorDetail", APIErrorBody.Detail(status: 409, code: "missing_chunks", message: "m", field: "f", missingChunks: [1]),
         APIErrorBody.Detail(status: 500, code: "internal", message: "m")),
        ("APIErrorBody", APIErrorBody(.init(status: 500, code: "internal", message: "m")), APIErrorBody(.init(status: 500, code: "internal", message: "m"))),
    ] }

    static func keys(_ value: any Encodable) throws -> Set<String> {
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] ?? [:]
        return Set(object.keys)
    }

    @Test("every wire type is a schema with the same properties, and the same required ones")
    func schemas() throws {
        let schemas = Self.schemas
        #expect(Set(schemas.keys) == Set(Self.samples.map(\.name)))
        for sample in Self.samples {
            let schema = try #require(schemas[sample.name], "no schema \(sample.name)")
            let properties = Set(((schema["properties"] as? [String: Any]) ?? [:]).keys)
            let required = Set((schema["required"] as? [String]) ?? [])
            #expect(try Self.keys(sample.full) == properties, "\(sample.name) properties")
            #expect(try Self.keys(sample.minimal) == required, "\(sample.name) required")
        }
    }

    @Test("every documented route is served (a real server answers it, not with the router's 404)",
          .enabled(if: postgresAvailable, PostgresCluster.skipReason), .timeLimit(.minutes(2)))
    func served() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                for route in TeamServer.apiRoutes {
                    let parts = route.split(separator: " ")
                    let path = String(parts[1]).replacingOccurrences(of: "{runID}", with: "r1").replacingOccurrences(of: "{index}", with: "0")
                    let answer = try await server.send(String(parts[0]), path, token: key.token, body: parts[0] == "GET" ? nil : Data("{}".utf8))
                    #expect(answer.error?.message.contains("no sync API route") != true, "\(route): \(answer.text)")
                    #expect(answer.headers["content-type"]?.hasPrefix("application/json") == true, "\(route)")
                    #expect(answer.status < 500, "\(route): \(answer.status)")
                }
            }
        }
    }
}
