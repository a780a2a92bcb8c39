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

    /// Runs an `INSERT … RETURNING 1` wrapped to answer how many rows it inserted.
    private static func count(_ connection: PostgresConnection, logger: Logger, insert: String, binds: Binds) async throws -> Int {
        let rows = try await connection.query(binds.query("WITH inserted AS (\(insert) RETURNING 1) SELECT count(*)::int8 FROM inserted"),
                                              logger: logger)
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
        var binds = Binds()
        binds.add(project)
        binds.add(runID)
        binds.add(rows.map(\.id) as [String?])
        binds.add(rows.map(\.name) as [String?])
        binds.add(rows.map(\.kind) as [String?])
        binds.add(rows.map(\.input))
        binds.add(rows.map(\.output))
        binds.add(rows.map(\.metadata))
        binds.add(rows.map(\.startedUs) as [Int64?])
        binds.add(rows.map(\.endedUs))
        return try await count(connection, logger: logger, insert: """
            INSERT INTO traces (project_id, id, run_id, name, kind, input, output, metadata, started_us, ended_us)
            SELECT $1, u.id, $2, u.name, u.kind, u.input, u.output, u.metadata, u.started_us, u.ended_us
            FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[])
                 AS u(id, name, kind, input, output, metadata, started_us, ended_us)
            ON CONFLICT DO NOTHING
            """, binds: binds)
    }

    private static func insertObservations(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                           rows: [ObservationRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var binds = Binds()
        binds.add(project)
        binds.add(runID)
        binds.add(rows.map(\.id) as [String?])
        binds.add(rows.map(\.traceID) as [String?])
        binds.add(rows.map(\.parentID))
        binds.add(rows.map(\.kind) as [String?])
        binds.add(rows.map(\.name) as [String?])
        binds.add(rows.map(\.input))
        binds.add(rows.map(\.output))
        binds.add(rows.map(\.metadata))
        binds.add(rows.map(\.model))
        binds.add(rows.map(\.modelParameters))
        binds.add(rows.map { $0.promptTokens.map(Int64.init) })
        binds.add(rows.map { $0.completionTokens.map(Int64.init) })
        binds.add(rows.map { $0.totalTokens.map(Int64.init) })
        binds.add(rows.map(\.cost))
        binds.add(rows.map(\.level) as [String?])
        binds.add(rows.map(\.statusMessage))
        binds.add(rows.map(\.startedUs) as [Int64?])
        binds.add(rows.map(\.endedUs))
        return try await count(connection, logger: logger, insert: """
            INSERT INTO observations (project_id, id, run_id, trace_id, parent_id, kind, name, input, output, metadata, model,
                                      model_parameters, prompt_tokens, completion_tokens, total_tokens, cost, level, status_message,
                                      started_us, ended_us)
            SELECT $1, u.id, $2, u.trace_id, u.parent_id, u.kind, u.name, u.input, u.output, u.metadata, u.model, u.model_parameters,
                   u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cost, u.level, u.status_message, u.started_us, u.ended_us
            FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                        $12::text[], $13::int8[], $14::int8[], $15::int8[], $16::float8[], $17::text[], $18::text[], $19::int8[], $20::int8[])
                 AS u(id, trace_id, parent_id, kind, name, input, output, metadata, model, model_parameters, prompt_tokens,
                      completion_tokens, total_tokens, cost, level, status_message, started_us, ended_us)
            ON CONFLICT DO NOTHING
            """, binds: binds)
    }

    private static func insertRunItems(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                       rows: [RunItemRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var binds = Binds()
        binds.add(project)
        binds.add(runID)
        binds.add(rows.map(\.id) as [String?])
        binds.add(rows.map(\.datasetItemID))
        binds.add(rows.map { Int64($0.repetition) } as [Int64?])
        binds.add(rows.map(\.input))
        binds.add(rows.map(\.expectedOutput))
        binds.add(rows.map(\.metadata))
        binds.add(rows.map(\.output))
        binds.add(rows.map(\.error))
        binds.add(rows.map(\.latencyMs) as [Double?])
        binds.add(rows.map { Int64($0.attempts) } as [Int64?])
        binds.add(rows.map { Int64($0.generations) } as [Int64?])
        binds.add(rows.map { Int64($0.promptTokens) } as [Int64?])
        binds.add(rows.map { Int64($0.completionTokens) } as [Int64?])
        binds.add(rows.map { Int64($0.totalTokens) } as [Int64?])
        binds.add(rows.map(\.cost))
        binds.add(rows.map(\.traceID))
        binds.add(rows.map(\.startedUs) as [Int64?])
        return try await count(connection, logger: logger, insert: """
            INSERT INTO run_items (project_id, id, run_id, dataset_item_id, repetition, input, expected_output, metadata, output, error,
                                   latency_ms, attempts, generations, prompt_tokens, completion_tokens, total_tokens, cost, trace_id, started_us)
            SELECT $1, u.id, $2, u.dataset_item_id, u.repetition, u.input, u.expected_output, u.metadata, u.output, u.error, u.latency_ms,
                   u.attempts, u.generations, u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cost, u.trace_id, u.started_us
            FROM UNNEST($3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::float8[],
                        $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::float8[], $18::text[], $19::int8[])
                 AS u(id, dataset_item_id, repetition, input, expected_output, metadata, output, error, latency_ms, attempts, generations,
                      prompt_tokens, completion_tokens, total_tokens, cost, trace_id, started_us)
            ON CONFLICT DO NOTHING
            """, binds: binds)
    }

    private static func insertScores(_ connection: PostgresConnection, logger: Logger, project: UUID, runID: String,
                                     rows: [ScoreRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let rows = rows.sorted { $0.id < $1.id }
        var binds = Binds()
        binds.add(project)
        binds.add(runID)
        binds.add(rows.map(\.id) as [String?])
        binds.add(rows.map(\.runItemID))
        binds.add(rows.map(\.traceID))
        binds.add(rows.map(\.observationID))
        binds.add(rows.map(\.name) as [String?])
        binds.add(rows.map(\.dataType) as [String?])
        binds.add(rows.map(\.value))
        binds.add(rows.map(\.stringValue))
        binds.add(rows.map(\.comment))
        binds.add(rows.map(\.source) as [String?])
        binds.add(rows.map(\.evaluator))
        binds.add(rows.map(\.createdUs) as [Int64?])
        return try await count(connection, logger: logger, insert: """
            INSERT INTO scores (project_id, id, run_id, run_item_id, trace_id, observation_id, name, data_type, value, string_value,
                                comment, source, evaluator, created_us)
            SELECT $1, u.id, $2, u.run_item_id, u.trace_id, u.observation_id, u.name, u.data_type, u.value, u.string_value, u.comment,
                   u.source, u.evaluator, u.created_us
            FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[], $10::text[], $11::text[],
                        $12::text[], $13::text[], $14::int8[])
                 AS u(id, run_item_id, trace_id, observation_id, name, data_type, value, string_value, comment, source, evaluator, created_us)
            ON CONFLICT DO NOTHING
            """, binds: binds)
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
