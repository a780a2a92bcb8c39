public import Foundation
import Logging
import PostgresNIO
import XeroMLSyncAPI

/// The project a request's key belongs to.
public struct AuthenticatedProject: Sendable, Hashable {
    /// The project's id.
    public var id: UUID
    /// The project's name.
    public var name: String
    /// The public id of the key that authenticated the request.
    public var keyID: String
}

/// The `/v1` API's reads and writes on PostgreSQL. Every statement is scoped by the project.
struct SyncStore: Sendable {
    let database: TeamDatabase
    var client: PostgresClient { database.client }
    var logger: Logger { database.logger }

    // MARK: - Keys

    /// The key's project, or nil for an unknown, revoked or wrong key. The secret's SHA-256 is
    /// compared in constant time.
    func authenticate(_ key: APIKey) async throws -> AuthenticatedProject? {
        let rows = try await client.query("""
            SELECT k.project_id, p.name, k.secret_hash, sha256(\(key.secretBytes)::bytea), k.revoked_us, k.last_used_us
            FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.id = \(key.id)
            """, logger: logger)
        var found: (UUID, String, ByteBuffer, ByteBuffer, Int64?, Int64?)?
        for try await row in rows.decode((UUID, String, ByteBuffer, ByteBuffer, Int64?, Int64?).self) { found = row }
        guard let (projectID, name, stored, presented, revoked, lastUsed) = found else { return nil }
        guard constantTimeEqual(stored, presented), revoked == nil else { return nil }
        let now = nowMicroseconds()
        if (lastUsed ?? 0) < now - 60_000_000 {
            try await client.query("UPDATE api_keys SET last_used_us = \(now) WHERE id = \(key.id)", logger: logger)
        }
        return AuthenticatedProject(id: projectID, name: name, keyID: key.id)
    }

    // MARK: - Reads

    func committedRuns(project: UUID, limit: Int) async throws -> [RunSummaryRow] {
        let rows = try await client.query("""
            SELECT r.id, r.name, d.name, r.status, coalesce(r.run_item_count, 0), r.created_us, r.committed_us
            FROM experiment_runs r LEFT JOIN datasets d ON d.project_id = r.project_id AND d.id = r.dataset_id
            WHERE r.project_id = \(project) AND r.committed_us IS NOT NULL
            ORDER BY r.created_us DESC, r.id DESC LIMIT \(limit)
            """, logger: logger)
        var runs: [RunSummaryRow] = []
        for try await (id, name, dataset, status, count, created, committed) in rows.decode((String, String, String?, String, Int, Int64, Int64).self) {
            runs.append(RunSummaryRow(id: id, name: name, datasetName: dataset, status: status, runItemCount: count,
                                      createdUs: created, committedUs: committed))
        }
        return runs
    }

    /// The run's state, or nil when the project has no such run.
    func state(project: UUID, runID: String, baseURL: String) async throws -> RunState? {
        try await client.withConnection { connection in
            try await Self.state(connection, logger: logger, project: project, runID: runID, baseURL: baseURL)
        }
    }

    static func state(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String, baseURL: String) async throws -> RunState? {
        let runs = try await connection.query(
            "SELECT committed_us FROM experiment_runs WHERE project_id = \(project) AND id = \(runID)", logger: logger)
        var exists = false
        var committed = false
        for try await (committedUs) in runs.decode(Int64?.self) {
            exists = true
            committed = committedUs != nil
        }
        guard exists else { return nil }
        let chunks = try await connection.query(
            "SELECT idx FROM sync_chunks WHERE project_id = \(project) AND run_id = \(runID) ORDER BY idx", logger: logger)
        var received: [Int] = []
        for try await (index) in chunks.decode(Int.self) { received.append(index) }
        return RunState(runID: runID, receivedChunks: received, committed: committed,
                        url: committed ? "\(baseURL)/runs/\(runID)" : nil)
    }

    // MARK: - Begin

    /// Creates or updates the (uncommitted) run and its dataset; a committed run is left as it is.
    func begin(project: UUID, manifest: RunManifest, baseURL: String) async throws -> RunState {
        let logger = self.logger
        return try await database.transaction { connection in
            let runID = manifest.run.id
            let existing = try await connection.query(
                "SELECT committed_us FROM experiment_runs WHERE project_id = \(project) AND id = \(runID) FOR UPDATE", logger: logger)
            var committed = false
            for try await (committedUs) in existing.decode(Int64?.self) { committed = committedUs != nil }
            if !committed {
                var datasetID: String?
                if let dataset = manifest.dataset {
                    datasetID = try await Self.canonicalDataset(connection, logger: logger, project: project, dataset: dataset)
                }
                let run = manifest.run
                try await connection.query("""
                    INSERT INTO experiment_runs (project_id, id, dataset_id, dataset_version, name, description, metadata, status,
                                                 configuration, created_us, finished_us, client_version)
                    VALUES (\(project), \(run.id), \(datasetID), \(run.datasetVersion), \(run.name), \(run.description), \(run.metadata),
                            \(run.status), \(run.configuration), \(run.createdUs), \(run.finishedUs), \(manifest.clientVersion))
                    ON CONFLICT (project_id, id) DO UPDATE SET
                        dataset_id = EXCLUDED.dataset_id, dataset_version = EXCLUDED.dataset_version, name = EXCLUDED.name,
                        description = EXCLUDED.description, metadata = EXCLUDED.metadata, status = EXCLUDED.status,
                        configuration = EXCLUDED.configuration, created_us = EXCLUDED.created_us,
                        finished_us = EXCLUDED.finished_us, client_version = EXCLUDED.client_version
                    WHERE experiment_runs.committed_us IS NULL
                    """, logger: logger)
            }
            guard let state = try await Self.state(connection, logger: logger, project: project, runID: runID, baseURL: baseURL) else {
                throw APIError.internalError
            }
            return state
        }
    }

    /// The server's id of the project's dataset named like `dataset`: the first pusher's id, created
    /// now if this is the first push of that name.
    static func canonicalDataset(_ connection: PostgresConnection, logger: Logger, project: UUID, dataset: DatasetRow) async throws -> String {
        // A client's dataset id already taken by a dataset of another name gets a fresh server id.
        let rows = try await connection.query("""
            INSERT INTO datasets (project_id, id, name, description, metadata, version, created_us)
            SELECT \(project),
                   CASE WHEN EXISTS (SELECT 1 FROM datasets WHERE project_id = \(project) AND id = \(dataset.id))
                        THEN gen_random_uuid()::text ELSE \(dataset.id) END,
                   \(dataset.name), \(dataset.description), \(dataset.metadata), \(dataset.version), \(dataset.createdUs)
            ON CONFLICT (project_id, name) DO UPDATE SET version = GREATEST(datasets.version, EXCLUDED.version)
            RETURNING id
            """, logger: logger)
        var id: String?
        for try await (value) in rows.decode(String.self) { id = value }
        guard let id else { throw APIError.internalError }
        return id
    }

    // MARK: - Chunks

    /// Stores a chunk's rows (each at most once) and records the chunk, in one transaction. A chunk for a
    /// committed run changes nothing.
    func ingest(project: UUID, chunk: SyncChunk) async throws -> ChunkReceipt {
        let logger = self.logger
        return try await database.transaction { connection in
            let runs = try await connection.query(
                "SELECT committed_us, dataset_id FROM experiment_runs WHERE project_id = \(project) AND id = \(chunk.runID) FOR SHARE",
                logger: logger)
            var found: (Int64?, String?)?
            for try await row in runs.decode((Int64?, String?).self) { found = row }
            guard let (committedUs, datasetID) = found else {
                throw APIError.notFound("no run \(chunk.runID) in this project: PUT \(SyncAPI.runPath(chunk.runID)) first")
            }
            if committedUs != nil {
                return ChunkReceipt(runID: chunk.runID, index: chunk.index, newRows: 0)
            }
            var newRows = 0
            if !chunk.datasetItems.isEmpty {
                guard let datasetID else {
                    throw APIError.invalid("the run has no dataset, so its chunks cannot hold dataset items", field: "datasetItems")
                }
                newRows += try await Self.insertDatasetItems(connection, logger: logger, project: project, datasetID: datasetID,
                                                             items: chunk.datasetItems)
            }
            newRows += try await Self.insertTraces(connection, logger: logger, project: project, runID: chunk.runID, rows: chunk.traces)
            newRows += try await Self.insertObservations(connection, logger: logger, project: project, runID: chunk.runID, rows: chunk.observations)
            newRows += try await Self.insertRunItems(connection, logger: logger, project: project, runID: chunk.runID, rows: chunk.runItems)
            newRows += try await Self.insertScores(connection, logger: logger, project: project, runID: chunk.runID, rows: chunk.scores)
            try await connection.query("""
                INSERT INTO sync_chunks (project_id, run_id, idx, row_count, received_us)
                VALUES (\(project), \(chunk.runID), \(chunk.index), \(chunk.rowCount), \(nowMicroseconds()))
                ON CONFLICT DO NOTHING
                """, logger: logger)
            return ChunkReceipt(runID: chunk.runID, index: chunk.index, newRows: newRows)
        }
    }

    /// Runs `insert`, answering how many rows it inserted.
    private static func count(_ connection: PostgresConnection, logger: Logger, _ insert: UnnestInsert) async throws -> Int {
        let rows = try await connection.query(
            insert.binds.query("WITH inserted AS (\(insert.sql) RETURNING 1) SELECT count(*)::int8 FROM inserted"), logger: logger)
        var total = 0
        for try await (value) in rows.decode(Int.self) { total = value }
        return total
    }

    /// The expression of a dataset item's key: its external id, else a hash of input and expected output.
    private static let itemKey = """
        CASE WHEN external_id IS NOT NULL THEN 'id:' || external_id
             ELSE 'h:' || encode(sha256(convert_to(input || E'\\x1f' || coalesce(expected_output, ''), 'UTF8')), 'hex') END
        """

    private static func insertDatasetItems(_ connection: PostgresConnection, logger: Logger, project: UUID, datasetID: String,
                                           items: [DatasetItemRow]) async throws -> Int {
        // Sorted, so concurrent transactions take row locks in one order.
        let items = items.sorted { $0.id < $1.id }
        // $1 project, $2 dataset, $3… the items' columns, for both statements below.
        func itemBinds(_ items: [DatasetItemRow]) -> Binds {
            var binds = Binds()
            binds.add(project)
            binds.add(datasetID)
            binds.add(items.map(\.id) as [String?])
            binds.add(items.map(\.externalID))
            binds.add(items.map(\.input) as [String?])
            binds.add(items.map(\.expectedOutput))
            binds.add(items.map(\.metadata))
            binds.add(items.map(\.createdUs) as [Int64?])
            return binds
        }
        let source = """
            UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[])
                AS u(id, external_id, input, expected_output, metadata, created_us)
            """
        let binds = itemBinds(items)
        let rows = try await connection.query(binds.query("""
            INSERT INTO dataset_items (project_id, id, dataset_id, item_key, external_id, input, expected_output, metadata, created_us)
            SELECT $1, u.id, $2, \(itemKey), u.external_id, u.input, u.expected_output, u.metadata, u.created_us
            FROM \(source)
            ON CONFLICT DO NOTHING
            RETURNING id
            """), logger: logger)
        var inserted = Set<String>()
        for try await (id) in rows.decode(String.self) { inserted.insert(id) }
        // Every client item id → the item that holds its key. An item inserted now holds its own; the
        // others (a key another machine's push, or an earlier item of this one, brought first) are
        // looked up by key, one unique-index probe each. (A join of the chunk with the dataset's items
        // was planned as a scan of all of them while the table's statistics were those of an empty
        // table: quadratic in the run's size.)
        var own = Binds()
        own.add(project)
        own.add(Array(inserted).sorted() as [String?])
        try await connection.query(own.query("""
            INSERT INTO dataset_item_aliases (project_id, client_item_id, item_id)
            SELECT $1, u.id, u.id FROM UNNEST($2::text[]) AS u(id)
            ON CONFLICT DO NOTHING
            """), logger: logger)
        let others = items.filter { !inserted.contains($0.id) }
        if !others.isEmpty {
            try await connection.query(itemBinds(others).query("""
                INSERT INTO dataset_item_aliases (project_id, client_item_id, item_id)
                SELECT $1, s.id, d.id
                FROM (SELECT u.id, \(itemKey) AS item_key FROM \(source)) s
                CROSS JOIN LATERAL (SELECT d.id FROM dataset_items d
                                    WHERE d.project_id = $1 AND d.dataset_id = $2 AND d.item_key = s.item_key) d
                ON CONFLICT DO NOTHING
                """), logger: logger)
        }
        return inserted.count
    }

    private static func insertTraces(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                     rows: [TraceRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var insert = UnnestInsert(into: "traces", project: project, runID: runID)
        insert.text("id", rows.map(\.id))
        insert.text("name", rows.map(\.name))
        insert.text("kind", rows.map(\.kind))
        insert.text("input", rows.map(\.input))
        insert.text("output", rows.map(\.output))
        insert.text("metadata", rows.map(\.metadata))
        insert.int("started_us", rows.map(\.startedUs))
        insert.int("ended_us", rows.map(\.endedUs))
        return try await count(connection, logger: logger, insert)
    }

    private static func insertObservations(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                           rows: [ObservationRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var insert = UnnestInsert(into: "observations", project: project, runID: runID)
        insert.text("id", rows.map(\.id))
        insert.text("trace_id", rows.map(\.traceID))
        insert.text("parent_id", rows.map(\.parentID))
        insert.text("kind", rows.map(\.kind))
        insert.text("name", rows.map(\.name))
        insert.text("input", rows.map(\.input))
        insert.text("output", rows.map(\.output))
        insert.text("metadata", rows.map(\.metadata))
        insert.text("model", rows.map(\.model))
        insert.text("model_parameters", rows.map(\.modelParameters))
        insert.int("prompt_tokens", rows.map { $0.promptTokens.map(Int64.init) })
        insert.int("completion_tokens", rows.map { $0.completionTokens.map(Int64.init) })
        insert.int("total_tokens", rows.map { $0.totalTokens.map(Int64.init) })
        insert.double("cost", rows.map(\.cost))
        insert.text("level", rows.map(\.level))
        insert.text("status_message", rows.map(\.statusMessage))
        insert.int("started_us", rows.map(\.startedUs))
        insert.int("ended_us", rows.map(\.endedUs))
        return try await count(connection, logger: logger, insert)
    }

    private static func insertRunItems(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                       rows: [RunItemRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var insert = UnnestInsert(into: "run_items", project: project, runID: runID)
        insert.text("id", rows.map(\.id))
        insert.text("dataset_item_id", rows.map(\.datasetItemID))
        insert.int("repetition", rows.map { Int64($0.repetition) })
        insert.text("input", rows.map(\.input))
        insert.text("expected_output", rows.map(\.expectedOutput))
        insert.text("metadata", rows.map(\.metadata))
        insert.text("output", rows.map(\.output))
        insert.text("error", rows.map(\.error))
        insert.double("latency_ms", rows.map(\.latencyMs))
        insert.int("attempts", rows.map { Int64($0.attempts) })
        insert.int("generations", rows.map { Int64($0.generations) })
        insert.int("prompt_tokens", rows.map { Int64($0.promptTokens) })
        insert.int("completion_tokens", rows.map { Int64($0.completionTokens) })
        insert.int("total_tokens", rows.map { Int64($0.totalTokens) })
        insert.double("cost", rows.map(\.cost))
        insert.text("trace_id", rows.map(\.traceID))
        insert.int("started_us", rows.map(\.startedUs))
        return try await count(connection, logger: logger, insert)
    }

    private static func insertScores(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                     rows: [ScoreRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var insert = UnnestInsert(into: "scores", project: project, runID: runID)
        insert.text("id", rows.map(\.id))
        insert.text("run_item_id", rows.map(\.runItemID))
        insert.text("trace_id", rows.map(\.traceID))
        insert.text("observation_id", rows.map(\.observationID))
        insert.text("name", rows.map(\.name))
        insert.text("data_type", rows.map(\.dataType))
        insert.double("value", rows.map(\.value))
        insert.text("string_value", rows.map(\.stringValue))
        insert.text("comment", rows.map(\.comment))
        insert.text("source", rows.map(\.source))
        insert.text("evaluator", rows.map(\.evaluator))
        insert.int("created_us", rows.map(\.createdUs))
        return try await count(connection, logger: logger, insert)
    }

    // MARK: - Commit

    /// Makes the run visible once every chunk is in: resolves its run items' dataset items to the
    /// server's canonical items, checks the run item count and sets `committed_us`, in one transaction.
    /// A committed run answers its state again.
    func commit(project: UUID, runID: String, request: CommitRequest, baseURL: String) async throws -> RunState {
        let logger = self.logger
        return try await database.transaction { connection in
            let runs = try await connection.query(
                "SELECT committed_us FROM experiment_runs WHERE project_id = \(project) AND id = \(runID) FOR UPDATE", logger: logger)
            var found: Int64??
            for try await (committedUs) in runs.decode(Int64?.self) { found = .some(committedUs) }
            guard let committedUs = found else {
                throw APIError.notFound("no run \(runID) in this project")
            }
            if committedUs == nil {
                let chunks = try await connection.query(
                    "SELECT idx FROM sync_chunks WHERE project_id = \(project) AND run_id = \(runID) AND idx < \(request.chunkCount)",
                    logger: logger)
                var received = Set<Int>()
                for try await (index) in chunks.decode(Int.self) { received.insert(index) }
                let missing = (0..<request.chunkCount).filter { !received.contains($0) }
                if !missing.isEmpty {
                    let shown = missing.prefix(20).map(String.init).joined(separator: ", ") + (missing.count > 20 ? ", …" : "")
                    throw APIError(status: 409, code: "missing_chunks",
                                   message: "the server lacks \(missing.count) of the run's \(request.chunkCount) chunks: \(shown)",
                                   missingChunks: missing)
                }
                // One pass over the run's items: how many there are, how many name a dataset item no
                // chunk brought, and how many name a client item the server holds under another id
                // (pushed first from another machine), which are then pointed at the canonical item.
                let counts = try await connection.query("""
                    SELECT count(*)::int8,
                           count(*) FILTER (WHERE ri.dataset_item_id IS NOT NULL AND a.client_item_id IS NULL)::int8,
                           count(*) FILTER (WHERE a.item_id <> ri.dataset_item_id)::int8
                    FROM run_items ri LEFT JOIN dataset_item_aliases a
                        ON a.project_id = ri.project_id AND a.client_item_id = ri.dataset_item_id
                    WHERE ri.project_id = \(project) AND ri.run_id = \(runID)
                    """, logger: logger)
                var total = 0
                var unresolved = 0
                var remapped = 0
                for try await (all, dangling, other) in counts.decode((Int, Int, Int).self) { (total, unresolved, remapped) = (all, dangling, other) }
                guard total == request.runItemCount else {
                    throw APIError.conflict("the server holds \(total) run items of the run but the commit names \(request.runItemCount); "
                                            + "send the missing chunks again")
                }
                guard unresolved == 0 else {
                    throw APIError.conflict("\(unresolved) run items name dataset items that no chunk of the run holds")
                }
                if remapped > 0 {
                    try await connection.query("""
                        UPDATE run_items ri SET dataset_item_id = a.item_id
                        FROM dataset_item_aliases a
                        WHERE ri.project_id = \(project) AND ri.run_id = \(runID) AND a.project_id = \(project)
                          AND a.client_item_id = ri.dataset_item_id AND a.item_id <> ri.dataset_item_id
                        """, logger: logger)
                }
                try await connection.query("""
                    UPDATE experiment_runs SET committed_us = \(nowMicroseconds()), chunk_count = \(request.chunkCount), run_item_count = \(total)
                    WHERE project_id = \(project) AND id = \(runID) AND committed_us IS NULL
                    """, logger: logger)
            }
            guard let state = try await Self.state(connection, logger: logger, project: project, runID: runID, baseURL: baseURL) else {
                throw APIError.internalError
            }
            return state
        }
    }
}

/// Whether two byte buffers are equal, in time that depends only on their lengths.
func constantTimeEqual(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool {
    let left = Array(a.readableBytesView)
    let right = Array(b.readableBytesView)
    guard left.count == right.count else { return false }
    var difference: UInt8 = 0
    for index in left.indices { difference |= left[index] ^ right[index] }
    return difference == 0
}

/// A project key as presented: `xrml_<key id>_<secret>`.
struct APIKey: Sendable {
    var id: String
    var secret: String

    var secretBytes: ByteBuffer { ByteBuffer(string: secret) }

    /// The key of an `Authorization: Bearer …` header, or nil when it is not one.
    init?(authorization: String?) {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        self.init(token: String(parts[1]).trimmingCharacters(in: .whitespaces))
    }

    init?(token: String) {
        guard token.hasPrefix("xrml_") else { return nil }
        let rest = token.dropFirst(5)
        guard let separator = rest.firstIndex(of: "_") else { return nil }
        let id = String(rest[..<separator])
        let secret = String(rest[rest.index(after: separator)...])
        guard !id.isEmpty, id.count <= 64, !secret.isEmpty, secret.count <= 256,
              id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        self.id = id
        self.secret = secret
    }
}
