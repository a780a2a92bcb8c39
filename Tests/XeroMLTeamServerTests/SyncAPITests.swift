import Foundation
import Testing
import XeroMLSyncAPI
import XeroMLTesting
@testable import XeroMLTeamServer

/// The `/v1` API over real HTTP on loopback, on a real PostgreSQL (a throwaway cluster).
@Suite("Team server sync API", .enabled(if: postgresAvailable, PostgresCluster.skipReason), .timeLimit(.minutes(3)))
struct SyncAPITests {
    @Test("a key opens its project only: 401 for missing, wrong, unknown and revoked keys; 404 for another project's run")
    func authentication() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let a = try await makeProject(database, "alpha")
            let b = try await makeProject(database, "beta")
            try await withServer(database) { server in
                let project = try await server.get(SyncAPI.projectPath, token: a.token)
                #expect(project.status == 200)
                #expect(try project.decode(ProjectInfo.self).name == "alpha")

                for token in [nil, "xrml_\(a.keyID)_" + String(repeating: "0", count: 64), "xrml_ffffffffffffffff_abc", "not-a-key",
                              String(a.token.dropLast()) + (a.token.hasSuffix("0") ? "1" : "0")] {
                    let answer = try await server.get(SyncAPI.projectPath, token: token)
                    #expect(answer.status == 401, "token \(token ?? "none")")
                    #expect(answer.error?.code == "unauthorized")
                }

                // A run of project A.
                let run = SyntheticRun.make(items: 4, itemsPerChunk: 4)
                #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: a.token).status == 200)
                #expect(try await server.put(SyncAPI.chunkPath(run.runID, index: 0), run.chunks[0], token: a.token).status == 200)
                #expect(try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: a.token).status == 200)

                // Project B's key sees nothing of it: 404, not 403.
                let state = try await server.get(SyncAPI.runPath(run.runID), token: b.token)
                #expect(state.status == 404)
                #expect(state.error?.code == "not_found")
                let chunk = try await server.put(SyncAPI.chunkPath(run.runID, index: 0), run.chunks[0], token: b.token)
                #expect(chunk.status == 404)
                let commit = try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: b.token)
                #expect(commit.status == 404)
                #expect(try await server.get(SyncAPI.runsPath, token: b.token).decode(RunList.self).runs.isEmpty)
                #expect(try await server.get(SyncAPI.runsPath, token: a.token).decode(RunList.self).runs.map(\.id) == [run.runID])

                // Revoked: 401 from now on.
                _ = try await TeamAdmin(database: database).revokeKey(id: a.keyID)
                let revoked = try await server.get(SyncAPI.projectPath, token: a.token)
                #expect(revoked.status == 401)
                #expect(try await server.get(SyncAPI.projectPath, token: b.token).status == 200)
            }
        }
    }

    @Test("413 for a body over the limit, compressed or inflated; 400 for too many rows")
    func limits() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let run = SyntheticRun.make(items: 1, itemsPerChunk: 1)
                #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token).status == 200)
                let path = SyncAPI.chunkPath(run.runID, index: 0)

                var big = Data("{\"runID\":\"".utf8)
                big.append(Data(repeating: UInt8(ascii: "a"), count: SyncAPI.maxBodyBytes))
                big.append(Data("\"}".utf8))
                let tooBig = try await server.send("PUT", path, token: key.token, body: big)
                #expect(tooBig.status == 413)
                #expect(tooBig.error?.code == "too_large")

                // A small gzip body that inflates past the limit.
                var bomb = Data("{\"runID\":\"".utf8)
                bomb.append(Data(repeating: UInt8(ascii: " "), count: SyncAPI.maxInflatedChunkBytes + 1))
                let inflated = try await server.send("PUT", path, token: key.token, body: bomb, gzip: true)
                #expect(inflated.status == 413)
                #expect(inflated.error?.message.contains("inflates") == true)

                var crowded = SyncChunk(runID: run.runID, index: 0)
                crowded.scores = (0...SyncAPI.maxRowsPerChunk).map {
                    ScoreRow(id: "s\($0)", name: "n", dataType: "numeric", value: 1, createdUs: 0)
                }
                let rows = try await server.put(path, crowded, token: key.token)
                #expect(rows.status == 400)
                #expect(rows.error?.message.contains("\(SyncAPI.maxRowsPerChunk)") == true)
                #expect(try await count("SELECT count(*) FROM scores", in: url) == 0)
            }
        }
    }

    @Test("400 naming the field for malformed or schema-violating JSON and for a body that contradicts its path")
    func malformed() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let run = SyntheticRun.make(items: 2, itemsPerChunk: 2)
                #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token).status == 200)
                let path = SyncAPI.chunkPath(run.runID, index: 0)

                let notJSON = try await server.send("PUT", path, token: key.token, body: Data("{not json".utf8))
                #expect(notJSON.status == 400)
                #expect(notJSON.error?.code == "invalid")

                // A number where a string is due, deep inside.
                var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(run.chunks[0])) as! [String: Any]
                var items = object["runItems"] as! [[String: Any]]
                items[1]["latencyMs"] = "slow"
                object["runItems"] = items
                let wrongType = try await server.send("PUT", path, token: key.token, body: JSONSerialization.data(withJSONObject: object), gzip: true)
                #expect(wrongType.status == 400)
                #expect(wrongType.error?.field == "runItems[1].latencyMs")

                // A required field missing.
                var traces = object["traces"] as! [[String: Any]]
                traces[0].removeValue(forKey: "startedUs")
                object["traces"] = traces
                items[1]["latencyMs"] = 1.5
                object["runItems"] = items
                let missing = try await server.send("PUT", path, token: key.token, body: JSONSerialization.data(withJSONObject: object))
                #expect(missing.status == 400)
                #expect(missing.error?.field == "traces[0].startedUs")

                // Body and path disagree.
                var other = run.chunks[0]
                other.index = 3
                let index = try await server.put(path, other, token: key.token)
                #expect(index.status == 400)
                #expect(index.error?.field == "index")
                other = run.chunks[0]
                other.runID = "another-run"
                let runID = try await server.put(path, other, token: key.token)
                #expect(runID.status == 400)
                #expect(runID.error?.field == "runID")
                let manifest = try await server.put(SyncAPI.runPath("another-run"), run.manifest, token: key.token)
                #expect(manifest.status == 400)
                #expect(manifest.error?.field == "run.id")

                // Values PostgreSQL cannot hold: a NUL character in text.
                var nul = run.chunks[0]
                nul.traces[0].output = "a\u{0}b"
                let nulAnswer = try await server.put(path, nul, token: key.token)
                #expect(nulAnswer.status == 400)

                let badIndex = try await server.put(SyncAPI.runPath(run.runID) + "/chunks/-1", run.chunks[0], token: key.token)
                #expect(badIndex.status == 400)
                #expect(badIndex.error?.field == "index")

                // Nothing of the refused chunks was stored.
                #expect(try await count("SELECT count(*) FROM traces", in: url) == 0)
                #expect(try await count("SELECT count(*) FROM sync_chunks", in: url) == 0)
            }
        }
    }

    @Test("an unknown API version is a 404 naming v1; an unknown v1 path is a JSON 404")
    func versions() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let v2 = try await server.get("/v2/project", token: key.token)
                #expect(v2.status == 404)
                #expect(v2.error?.code == "unsupported_version")
                #expect(v2.error?.message.contains("v1") == true)
                let unknown = try await server.get("/v1/nothing-here", token: key.token)
                #expect(unknown.status == 404)
                #expect(unknown.error?.code == "not_found")
                let method = try await server.send("DELETE", SyncAPI.runPath("r1"), token: key.token)
                #expect(method.status == 405)
                #expect(method.error?.code == "method_not_allowed")
                #expect(method.headers["allow"] == "GET, PUT")
            }
        }
    }

    @Test("chunks out of order and twice hold each row once; a commit with chunks missing is a 409 naming them; a second commit changes nothing")
    func exactlyOnce() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let run = SyntheticRun.make(items: 30, itemsPerChunk: 10)
                let begun = try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                #expect(try begun.decode(RunState.self) == RunState(runID: run.runID, receivedChunks: [], committed: false))

                let last = try await server.put(SyncAPI.chunkPath(run.runID, index: 2), run.chunks[2], token: key.token)
                #expect(try last.decode(ChunkReceipt.self).newRows == 60)
                let first = try await server.put(SyncAPI.chunkPath(run.runID, index: 0), run.chunks[0], token: key.token, gzip: false)
                #expect(try first.decode(ChunkReceipt.self).newRows == 60)

                let early = try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token)
                #expect(early.status == 409)
                #expect(early.error?.code == "missing_chunks")
                #expect(early.error?.missingChunks == [1])
                #expect(try await server.get(SyncAPI.runsPath, token: key.token).decode(RunList.self).runs.isEmpty)

                let middle = try await server.put(SyncAPI.chunkPath(run.runID, index: 1), run.chunks[1], token: key.token)
                #expect(try middle.decode(ChunkReceipt.self).newRows == 60)
                let again = try await server.put(SyncAPI.chunkPath(run.runID, index: 0), run.chunks[0], token: key.token)
                #expect(try again.decode(ChunkReceipt.self).newRows == 0)
                let state = try await server.get(SyncAPI.runPath(run.runID), token: key.token).decode(RunState.self)
                #expect(state.receivedChunks == [0, 1, 2])
                #expect(!state.committed)

                let commit = try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token).decode(RunState.self)
                #expect(commit.committed)
                #expect(commit.url?.hasSuffix("/runs/\(run.runID)") == true)
                let second = try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token).decode(RunState.self)
                #expect(second == commit)
                // A chunk after the commit is accepted and changes nothing; so is the manifest.
                #expect(try await server.put(SyncAPI.chunkPath(run.runID, index: 1), run.chunks[1], token: key.token)
                    .decode(ChunkReceipt.self).newRows == 0)
                var renamed = run.manifest
                renamed.run.name = "renamed"
                #expect(try await server.put(SyncAPI.runPath(run.runID), renamed, token: key.token).decode(RunState.self).committed)

                let runs = try await server.get(SyncAPI.runsPath, token: key.token).decode(RunList.self).runs
                #expect(runs.map(\.id) == [run.runID])
                #expect(runs.first?.name == "run")
                #expect(runs.first?.runItemCount == 30)
                #expect(runs.first?.datasetName == "capitals")
                for (table, rows) in [("traces", 30), ("observations", 30), ("run_items", 30), ("scores", 60), ("dataset_items", 30),
                                      ("sync_chunks", 3)] {
                    #expect(try await count("SELECT count(*) FROM \(table)", in: url) == rows, "\(table)")
                }
                #expect(try await count("SELECT count(*) FROM experiment_runs WHERE committed_us IS NOT NULL", in: url) == 1)
            }
        }
    }

    @Test("rows sent again under another chunk number (a push resumed with another chunk size) are stored once, beside the chunk's new rows")
    func rowsAgainInAnotherChunk() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let run = SyntheticRun.make(items: 30, itemsPerChunk: 10)
                _ = try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                for index in 0..<2 {
                    let receipt = try await server.put(SyncAPI.chunkPath(run.runID, index: index), run.chunks[index], token: key.token)
                    #expect(try receipt.decode(ChunkReceipt.self).newRows == 60)
                }
                // Items 0-19 are stored. In chunks of 15, chunk 1 holds items 15-29: five stored, ten new.
                let resumed = run.rechunked(itemsPerChunk: 15)
                let receipt = try await server.put(SyncAPI.chunkPath(run.runID, index: 1), resumed.chunks[1], token: key.token)
                #expect(try receipt.decode(ChunkReceipt.self).newRows == 60, "\(receipt.text)")
                // Chunk 0 again (all 15 items stored): nothing new.
                let again = try await server.put(SyncAPI.chunkPath(run.runID, index: 0), resumed.chunks[0], token: key.token)
                #expect(try again.decode(ChunkReceipt.self).newRows == 0)
                let commit = try await server.post(SyncAPI.commitPath(run.runID), resumed.commit, token: key.token)
                #expect(try commit.decode(RunState.self).committed, "\(commit.text)")
                for (table, rows) in [("traces", 30), ("observations", 30), ("run_items", 30), ("scores", 60), ("dataset_items", 30)] {
                    #expect(try await count("SELECT count(*) FROM \(table)", in: url) == rows, "\(table)")
                }
            }
        }
    }

    @Test("a commit whose run item count disagrees with the chunks is a 409 and leaves the run invisible")
    func commitCountMismatch() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let run = SyntheticRun.make(items: 5, itemsPerChunk: 5)
                _ = try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                _ = try await server.put(SyncAPI.chunkPath(run.runID, index: 0), run.chunks[0], token: key.token)
                let wrong = try await server.post(SyncAPI.commitPath(run.runID), CommitRequest(chunkCount: 1, runItemCount: 6), token: key.token)
                #expect(wrong.status == 409)
                #expect(wrong.error?.code == "conflict")
                #expect(try await count("SELECT count(*) FROM experiment_runs WHERE committed_us IS NOT NULL", in: url) == 0)
            }
        }
    }

    @Test("datasets from two machines: one dataset, one item per key, both runs' items point at the same canonical items")
    func datasetsAcrossMachines() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let first = SyntheticRun.make(items: 12, itemsPerChunk: 5, machine: "laptop", runName: "baseline")
                let second = SyntheticRun.make(items: 12, itemsPerChunk: 7, machine: "ci", runName: "candidate")
                for run in [first, second] {
                    #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token).status == 200)
                    for chunk in run.chunks.reversed() {
                        #expect(try await server.put(SyncAPI.chunkPath(run.runID, index: chunk.index), chunk, token: key.token).status == 200)
                    }
                    #expect(try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token).status == 200)
                }
                let joined = """
                    SELECT count(*) FROM run_items ri JOIN dataset_items d ON d.project_id = ri.project_id AND d.id = ri.dataset_item_id
                    """
                let paired = """
                    SELECT count(*) FROM run_items a JOIN run_items b ON a.dataset_item_id = b.dataset_item_id
                    WHERE a.run_id = '\(first.runID)' AND b.run_id = '\(second.runID)'
                    """
                let expectations: [(String, Int)] = [
                    ("SELECT count(*) FROM datasets", 1),
                    ("SELECT count(*) FROM dataset_items", 12),
                    ("SELECT count(*) FROM dataset_item_aliases", 24),
                    // Both runs use the first pusher's dataset id and items.
                    ("SELECT count(DISTINCT dataset_id) FROM experiment_runs", 1),
                    (joined, 24),
                    ("SELECT count(DISTINCT dataset_item_id) FROM run_items", 12),
                    ("SELECT count(*) FROM dataset_items WHERE id LIKE 'item-laptop-%'", 12),
                    // Item by item, the two runs meet on the same items.
                    (paired, 12),
                ]
                for (sql, expected) in expectations {
                    let found = try await count(sql, in: url)
                    #expect(found == expected, "\(sql)")
                }
            }
        }
    }

    @Test("identical items of one dataset (no external id) are one item on the server; both client items point at it")
    func identicalItemsInOneRun() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                var run = SyntheticRun.make(items: 6, itemsPerChunk: 3, machine: "dup")
                // Items 1 and 3 (odd: no external id) get the same input and expected output, in different
                // chunks; items 5 and 3 too, in the same chunk as each other's neighbour.
                for (chunk, item) in [(0, 1), (1, 0), (1, 2)] {
                    run.chunks[chunk].datasetItems[item].input = "same"
                    run.chunks[chunk].datasetItems[item].expectedOutput = "same"
                    run.chunks[chunk].datasetItems[item].externalID = nil
                }
                #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token).status == 200)
                for chunk in run.chunks {
                    #expect(try await server.put(SyncAPI.chunkPath(run.runID, index: chunk.index), chunk, token: key.token).status == 200)
                }
                #expect(try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token).status == 200)
                let expectations: [(String, Int)] = [
                    ("SELECT count(*) FROM dataset_items", 4),
                    ("SELECT count(*) FROM dataset_item_aliases", 6),
                    ("SELECT count(DISTINCT item_id) FROM dataset_item_aliases", 4),
                    ("SELECT count(*) FROM run_items ri JOIN dataset_items d ON d.id = ri.dataset_item_id WHERE d.input = 'same'", 3),
                    ("SELECT count(DISTINCT dataset_item_id) FROM run_items", 4),
                ]
                for (sql, expected) in expectations {
                    let found = try await count(sql, in: url)
                    #expect(found == expected, "\(sql)")
                }
            }
        }
    }

    @Test("every column of every table arrives as it was sent")
    func everyColumnArrives() async throws {
        let url = try await freshDatabase()
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                var run = SyntheticRun.make(items: 1, itemsPerChunk: 1, machine: "cols")
                let runID = run.runID
                // Every optional field set, every value distinct, so a column stored in another's place shows.
                run.chunks[0].datasetItems[0].metadata = #"{"d":"meta"}"#
                run.chunks[0].traces[0].metadata = #"{"t":"meta"}"#
                run.chunks[0].observations[0] = ObservationRow(
                    id: "obs-cols", traceID: run.chunks[0].traces[0].id, parentID: "parent-cols", kind: "generation", name: "gen",
                    input: "o-in", output: "o-out", metadata: "o-meta", model: "o-model", modelParameters: "o-params",
                    promptTokens: 11, completionTokens: 12, totalTokens: 23, cost: 0.25, level: "warning", statusMessage: "o-status",
                    startedUs: 101, endedUs: 202)
                let trace = run.chunks[0].traces[0].id
                run.chunks[0].runItems[0] = RunItemRow(
                    id: "ri-cols", datasetItemID: run.chunks[0].datasetItems[0].id, repetition: 2, input: "r-in", expectedOutput: "r-exp",
                    metadata: "r-meta", output: "r-out", error: "r-err", latencyMs: 12.5, attempts: 3, generations: 4, promptTokens: 5,
                    completionTokens: 6, totalTokens: 11, cost: 0.5, traceID: trace, startedUs: 303)
                run.chunks[0].scores = [ScoreRow(
                    id: "s-cols", runItemID: "ri-cols", traceID: trace, observationID: "obs-cols", name: "quality", dataType: "numeric",
                    value: 0.75, stringValue: "s-str", comment: "s-comment", source: "judge", evaluator: "s-eval", createdUs: 404)]
                #expect(try await server.put(SyncAPI.runPath(runID), run.manifest, token: key.token).status == 200)
                #expect(try await server.put(SyncAPI.chunkPath(runID, index: 0), run.chunks[0], token: key.token).status == 200)
                #expect(try await server.post(SyncAPI.commitPath(runID), run.commit, token: key.token).status == 200)

                let cluster = try await PostgresCluster.shared()
                func row(_ sql: String) async throws -> String {
                    try await cluster.psql(sql, database: databaseName(url)).trimmingCharacters(in: .whitespacesAndNewlines)
                }
                let item = run.chunks[0].datasetItems[0]
                #expect(try await row("""
                    SELECT concat_ws('|', id, dataset_id IS NOT NULL, external_id, input, expected_output, metadata, created_us)
                    FROM dataset_items
                    """) == "\(item.id)|t|\(item.externalID ?? "")|\(item.input)|\(item.expectedOutput ?? "")|{\"d\":\"meta\"}|\(item.createdUs)")
                let t = run.chunks[0].traces[0]
                #expect(try await row("SELECT concat_ws('|', id, run_id, name, kind, input, output, metadata, started_us, ended_us) FROM traces")
                        == "\(t.id)|\(runID)|\(t.name)|\(t.kind)|\(t.input ?? "")|\(t.output ?? "")|{\"t\":\"meta\"}|\(t.startedUs)|\(t.endedUs ?? 0)")
                #expect(try await row("""
                    SELECT concat_ws('|', id, run_id, trace_id, parent_id, kind, name, input, output, metadata, model, model_parameters,
                                     prompt_tokens, completion_tokens, total_tokens, cost, level, status_message, started_us, ended_us)
                    FROM observations
                    """) == "obs-cols|\(runID)|\(trace)|parent-cols|generation|gen|o-in|o-out|o-meta|o-model|o-params|11|12|23|0.25|warning|o-status|101|202")
                #expect(try await row("""
                    SELECT concat_ws('|', id, run_id, dataset_item_id = '\(item.id)', repetition, input, expected_output, metadata, output, error,
                                     latency_ms, attempts, generations, prompt_tokens, completion_tokens, total_tokens, cost, trace_id, started_us)
                    FROM run_items
                    """) == "ri-cols|\(runID)|t|2|r-in|r-exp|r-meta|r-out|r-err|12.5|3|4|5|6|11|0.5|\(trace)|303")
                #expect(try await row("""
                    SELECT concat_ws('|', id, run_id, run_item_id, trace_id, observation_id, name, data_type, value, string_value, comment,
                                     source, evaluator, created_us)
                    FROM scores
                    """) == "s-cols|\(runID)|ri-cols|\(trace)|obs-cols|quality|numeric|0.75|s-str|s-comment|judge|s-eval|404")
            }
        }
    }
}
