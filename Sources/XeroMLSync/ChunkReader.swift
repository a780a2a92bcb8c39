import Foundation
import XeroMLSQLite
import XeroMLSyncAPI

/// Where the next chunk of a run starts. Stored in `sync_state.cursor` after each acknowledged chunk,
/// so an interrupted push resumes there.
///
/// A run is read in three passes, each in index order: its run items (with the dataset items, item
/// traces, observations and scores of each), its other traces (evaluations, with their
/// observations), then its run-level scores. A chunk never splits a run item from its rows.
enum ChunkCursor: Equatable, Sendable, CustomStringConvertible {
    /// Run items after `id` (nil: from the first).
    case items(after: String?)
    /// Traces of the run other than item traces, after this rowid.
    case traces(afterRowID: Int64)
    /// Run-level scores after `id` (nil: from the first).
    case runScores(after: String?)
    /// Everything was read.
    case done

    static let start = ChunkCursor.items(after: nil)

    var description: String {
        switch self {
        case .items(let id): "items:\(id ?? "")"
        case .traces(let rowID): "traces:\(rowID)"
        case .runScores(let id): "scores:\(id ?? "")"
        case .done: "done"
        }
    }

    init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        switch (parts.first, parts.count) {
        case ("items", 2): self = .items(after: parts[1].isEmpty ? nil : parts[1])
        case ("traces", 2): guard let rowID = Int64(parts[1]) else { return nil }; self = .traces(afterRowID: rowID)
        case ("scores", 2): self = .runScores(after: parts[1].isEmpty ? nil : parts[1])
        case ("done", 1): self = .done
        default: return nil
        }
    }
}

/// How large a chunk may grow.
public struct ChunkLimits: Sendable, Hashable {
    /// Run items per chunk at most.
    public var runItems: Int
    /// Rows of all tables per chunk at most (a single run item with more rows still goes alone).
    public var rows: Int
    /// Approximate bytes of JSON per chunk, before compression.
    public var bytes: Int

    /// The defaults (1,000 run items, 10,000 rows, 4 MiB of JSON) were measured pushing 100,000 items
    /// to `xeroml-server` on PostgreSQL (docs/performance.md): fewer, larger transactions cost the
    /// server's database less per row than chunks of 250, and the client stays under 100 MB.
    public init(runItems: Int = 1_000, rows: Int = 10_000, bytes: Int = 4 << 20) {
        self.runItems = max(1, runItems)
        self.rows = max(1, min(rows, SyncAPI.maxRowsPerChunk))
        self.bytes = max(1, bytes)
    }
}

/// Rows of one chunk and where the next one starts.
struct ChunkContent {
    var chunk: SyncChunk
    var next: ChunkCursor
}

/// Reads a finished run's rows, one chunk at a time, from a cursor.
///
/// Deterministic: the chunk that starts at a cursor is always the same (a run is immutable once
/// finished), so a chunk read again after an interruption holds the rows it held before.
struct ChunkReader {
    let runID: String
    let limits: ChunkLimits

    /// The chunk with index `index` starting at `cursor`, or nil when the run has nothing left.
    func chunk(index: Int, at cursor: ChunkCursor, in db: Connection) throws -> ChunkContent? {
        var cursor = cursor
        while true {
            switch cursor {
            case .items(let after):
                if let content = try items(index: index, after: after, in: db) { return content }
                cursor = .traces(afterRowID: 0)
            case .traces(let after):
                if let content = try otherTraces(index: index, after: after, in: db) { return content }
                cursor = .runScores(after: nil)
            case .runScores(let after):
                if let content = try runScores(index: index, after: after, in: db) { return content }
                cursor = .done
            case .done:
                return nil
            }
        }
    }

    // MARK: Passes

    private func items(index: Int, after: String?, in db: Connection) throws -> ChunkContent? {
        let items = try db.query("""
            SELECT id, dataset_item_id, repetition, input, expected_output, metadata, output, error, latency_ms, attempts,
                   generations, prompt_tokens, completion_tokens, total_tokens, cost, trace_id, started_us
            FROM run_items WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?
            """, [.text(runID), .text(after ?? ""), .integer(Int64(limits.runItems))]) { row in
            RunItemRow(id: row.text(0)!, datasetItemID: row.text(1), repetition: row.int(2), input: row.text(3),
                       expectedOutput: row.text(4), metadata: row.text(5), output: row.text(6), error: row.text(7),
                       latencyMs: row.double(8), attempts: row.int(9), generations: row.int(10), promptTokens: row.int(11),
                       completionTokens: row.int(12), totalTokens: row.int(13), cost: row.optionalDouble(14),
                       traceID: row.text(15), startedUs: row.int64(16))
        }
        guard !items.isEmpty else { return nil }

        let datasetItems = try db.query("""
            SELECT id, dataset_id, external_id, input, expected_output, metadata, created_us
            FROM dataset_items WHERE id IN (SELECT value FROM json_each(?))
            """, [.text(jsonArray(Set(items.compactMap(\.datasetItemID))))]) { row in
            DatasetItemRow(id: row.text(0)!, datasetID: row.text(1)!, externalID: row.text(2), input: row.text(3) ?? "null",
                           expectedOutput: row.text(4), metadata: row.text(5), createdUs: row.int64(6))
        }
        let traces = try db.query("""
            SELECT id, name, kind, input, output, metadata, started_us, ended_us
            FROM traces WHERE id IN (SELECT value FROM json_each(?))
            """, [.text(jsonArray(Set(items.compactMap(\.traceID))))], traceRow)
        let observations = try observations(of: traces.map(\.id), in: db)
        let scores = try db.query("""
            SELECT \(scoreColumns) FROM scores WHERE run_item_id IN (SELECT value FROM json_each(?)) ORDER BY run_item_id, id
            """, [.text(jsonArray(items.map(\.id)))], scoreRow)

        // Each run item with its rows, in order; the chunk is the longest prefix within the limits.
        let datasetItemByID = Dictionary(datasetItems.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let traceByID = Dictionary(traces.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let observationsByTrace = Dictionary(grouping: observations, by: \.traceID)
        let scoresByItem = Dictionary(grouping: scores, by: { $0.runItemID ?? "" })
        var chunk = SyncChunk(runID: runID, index: index)
        var (rows, bytes) = (0, 0)
        var sentDatasetItems = Set<String>()
        var last: String?
        for item in items {
            var unit = SyncChunk(runID: runID, index: index)
            unit.runItems = [item]
            if let id = item.datasetItemID, !sentDatasetItems.contains(id), let datasetItem = datasetItemByID[id] {
                unit.datasetItems = [datasetItem]
            }
            if let id = item.traceID, let trace = traceByID[id] {
                unit.traces = [trace]
                unit.observations = observationsByTrace[id] ?? []
            }
            unit.scores = scoresByItem[item.id] ?? []
            let unitBytes = estimatedBytes(unit)
            if last != nil && (rows + unit.rowCount > limits.rows || bytes + unitBytes > limits.bytes) { break }
            chunk.append(unit)
            sentDatasetItems.formUnion(unit.datasetItems.map(\.id))
            rows += unit.rowCount
            bytes += unitBytes
            last = item.id
        }
        return ChunkContent(chunk: chunk, next: .items(after: last))
    }

    private func otherTraces(index: Int, after: Int64, in db: Connection) throws -> ChunkContent? {
        let traces = try db.query("""
            SELECT id, name, kind, input, output, metadata, started_us, ended_us, rowid
            FROM traces WHERE run_id = ? AND kind <> 'item' AND rowid > ? ORDER BY rowid LIMIT ?
            """, [.text(runID), .integer(after), .integer(Int64(limits.runItems))]) { row in
            (try traceRow(row), row.int64(8))
        }
        guard !traces.isEmpty else { return nil }
        let observationsByTrace = Dictionary(grouping: try observations(of: traces.map(\.0.id), in: db), by: \.traceID)
        var chunk = SyncChunk(runID: runID, index: index)
        var (rows, bytes) = (0, 0)
        var last: Int64?
        for (trace, rowID) in traces {
            var unit = SyncChunk(runID: runID, index: index)
            unit.traces = [trace]
            unit.observations = observationsByTrace[trace.id] ?? []
            let unitBytes = estimatedBytes(unit)
            if last != nil && (rows + unit.rowCount > limits.rows || bytes + unitBytes > limits.bytes) { break }
            chunk.append(unit)
            rows += unit.rowCount
            bytes += unitBytes
            last = rowID
        }
        return ChunkContent(chunk: chunk, next: .traces(afterRowID: last!))
    }

    private func runScores(index: Int, after: String?, in db: Connection) throws -> ChunkContent? {
        let scores = try db.query("""
            SELECT \(scoreColumns) FROM scores WHERE run_id = ? AND run_item_id IS NULL AND id > ? ORDER BY id LIMIT ?
            """, [.text(runID), .text(after ?? ""), .integer(Int64(min(limits.rows, limits.runItems * 10)))], scoreRow)
        guard let last = scores.last else { return nil }
        return ChunkContent(chunk: SyncChunk(runID: runID, index: index, scores: scores), next: .runScores(after: last.id))
    }

    // MARK: Rows

    private let scoreColumns = """
        id, run_item_id, trace_id, observation_id, name, data_type, value, string_value, comment, source, evaluator, created_us
        """

    private func scoreRow(_ row: Statement) throws -> ScoreRow {
        ScoreRow(id: row.text(0)!, runItemID: row.text(1), traceID: row.text(2), observationID: row.text(3), name: row.text(4)!,
                 dataType: row.text(5)!, value: row.optionalDouble(6), stringValue: row.text(7), comment: row.text(8),
                 source: row.text(9)!, evaluator: row.text(10), createdUs: row.int64(11))
    }

    private func traceRow(_ row: Statement) throws -> TraceRow {
        TraceRow(id: row.text(0)!, name: row.text(1)!, kind: row.text(2)!, input: row.text(3), output: row.text(4),
                 metadata: row.text(5), startedUs: row.int64(6), endedUs: row.optionalInt64(7))
    }

    private func observations(of traceIDs: [String], in db: Connection) throws -> [ObservationRow] {
        guard !traceIDs.isEmpty else { return [] }
        return try db.query("""
            SELECT id, trace_id, parent_id, kind, name, input, output, metadata, model, model_parameters, prompt_tokens,
                   completion_tokens, total_tokens, cost, level, status_message, started_us, ended_us
            FROM observations WHERE trace_id IN (SELECT value FROM json_each(?)) ORDER BY trace_id, id
            """, [.text(jsonArray(traceIDs))]) { row in
            ObservationRow(id: row.text(0)!, traceID: row.text(1)!, parentID: row.text(2), kind: row.text(3)!, name: row.text(4)!,
                           input: row.text(5), output: row.text(6), metadata: row.text(7), model: row.text(8),
                           modelParameters: row.text(9), promptTokens: row.optionalInt64(10).map(Int.init),
                           completionTokens: row.optionalInt64(11).map(Int.init), totalTokens: row.optionalInt64(12).map(Int.init),
                           cost: row.optionalDouble(13), level: row.text(14)!, statusMessage: row.text(15),
                           startedUs: row.int64(16), endedUs: row.optionalInt64(17))
        }
    }

    /// A JSON array of ids for `json_each` (ids are UUID text: escaping is almost never needed).
    private func jsonArray(_ ids: some Sequence<String>) -> String {
        let quoted = ids.map { id in
            guard id.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else { return id }
            var escaped = ""
            for scalar in id.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return escaped
        }
        return quoted.isEmpty ? "[]" : "[\"" + quoted.joined(separator: "\",\"") + "\"]"
    }
}

/// About how many bytes of JSON `unit` becomes: its text plus a fixed allowance per row for keys and
/// numbers. Only used to bound chunks, so a rough figure is enough.
private func estimatedBytes(_ unit: SyncChunk) -> Int {
    func text(_ values: String?...) -> Int { values.reduce(0) { $0 + ($1?.utf8.count ?? 0) } }
    var total = 0
    for row in unit.datasetItems { total += 160 + text(row.externalID, row.input, row.expectedOutput, row.metadata) }
    for row in unit.traces { total += 160 + text(row.name, row.input, row.output, row.metadata) }
    for row in unit.observations {
        total += 320 + text(row.name, row.input, row.output, row.metadata, row.model, row.modelParameters, row.statusMessage)
    }
    for row in unit.runItems { total += 360 + text(row.input, row.expectedOutput, row.metadata, row.output, row.error) }
    for row in unit.scores { total += 240 + text(row.name, row.stringValue, row.comment, row.evaluator) }
    return total
}

extension SyncChunk {
    /// Adds `other`'s rows to this chunk.
    mutating func append(_ other: SyncChunk) {
        datasetItems += other.datasetItems
        traces += other.traces
        observations += other.observations
        runItems += other.runItems
        scores += other.scores
    }
}
