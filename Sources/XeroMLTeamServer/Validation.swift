import XeroMLSyncAPI

/// Checks of request bodies beyond their JSON shape: each failure is a 400 naming the field.
enum Validation {
    /// The longest id the server stores (client ids are UUIDv7 text, 36 characters).
    static let maxIDLength = 128
    /// The longest name, external id or enumeration value (they are indexed).
    static let maxKeyLength = 1_000

    static func runID(_ id: String) throws {
        try identifier(id, field: "runID")
    }

    static func chunkIndex(_ text: String) throws -> Int {
        guard let index = Int(text), (0...Int(Int32.max)).contains(index) else {
            throw APIError.invalid("the chunk index must be an integer from 0 to \(Int32.max), not \(text.prefix(40))", field: "index")
        }
        return index
    }

    static func manifest(_ manifest: RunManifest, runID: String) throws {
        let run = manifest.run
        guard run.id == runID else {
            throw APIError.invalid("run.id \(run.id.prefix(80)) differs from the path's run id \(runID)", field: "run.id")
        }
        try text(run.name, field: "run.name", max: maxKeyLength)
        guard run.status == "finished" || run.status == "failed" else {
            throw APIError.invalid("only ended runs are pushed: run.status must be finished or failed, not \(run.status.prefix(40))",
                                   field: "run.status")
        }
        if let version = run.datasetVersion, !(0...Int(Int32.max)).contains(version) {
            throw APIError.invalid("run.datasetVersion is out of range", field: "run.datasetVersion")
        }
        if let dataset = manifest.dataset {
            try identifier(dataset.id, field: "dataset.id")
            try text(dataset.name, field: "dataset.name", max: maxKeyLength)
            guard (0...Int(Int32.max)).contains(dataset.version) else {
                throw APIError.invalid("dataset.version is out of range", field: "dataset.version")
            }
        }
    }

    static func commit(_ commit: CommitRequest) throws {
        guard (0...1_000_000).contains(commit.chunkCount) else {
            throw APIError.invalid("chunkCount must be from 0 to 1000000", field: "chunkCount")
        }
        guard (0...Int(Int32.max)).contains(commit.runItemCount) else {
            throw APIError.invalid("runItemCount is out of range", field: "runItemCount")
        }
    }

    static func chunk(_ chunk: SyncChunk, runID: String, index: Int) throws {
        guard chunk.runID == runID else {
            throw APIError.invalid("runID \(chunk.runID.prefix(80)) differs from the path's run id \(runID)", field: "runID")
        }
        guard chunk.index == index else {
            throw APIError.invalid("index \(chunk.index) differs from the path's chunk index \(index)", field: "index")
        }
        guard chunk.rowCount <= SyncAPI.maxRowsPerChunk else {
            throw APIError.invalid("the chunk holds \(chunk.rowCount) rows; the limit is \(SyncAPI.maxRowsPerChunk) (SyncAPI.maxRowsPerChunk)")
        }
        for (i, row) in chunk.datasetItems.enumerated() {
            let at = "datasetItems[\(i)]"
            try identifier(row.id, field: "\(at).id")
            try identifier(row.datasetID, field: "\(at).datasetID")
            if let external = row.externalID { try text(external, field: "\(at).externalID", max: maxKeyLength) }
        }
        for (i, row) in chunk.traces.enumerated() {
            let at = "traces[\(i)]"
            try identifier(row.id, field: "\(at).id")
            try text(row.kind, field: "\(at).kind", max: 40)
        }
        for (i, row) in chunk.observations.enumerated() {
            let at = "observations[\(i)]"
            try identifier(row.id, field: "\(at).id")
            try identifier(row.traceID, field: "\(at).traceID")
            if let parent = row.parentID { try identifier(parent, field: "\(at).parentID") }
            try text(row.kind, field: "\(at).kind", max: 40)
            try text(row.level, field: "\(at).level", max: 40)
        }
        for (i, row) in chunk.runItems.enumerated() {
            let at = "runItems[\(i)]"
            try identifier(row.id, field: "\(at).id")
            if let item = row.datasetItemID { try identifier(item, field: "\(at).datasetItemID") }
            if let trace = row.traceID { try identifier(trace, field: "\(at).traceID") }
            guard row.latencyMs.isFinite else { throw APIError.invalid("\(at).latencyMs must be a finite number", field: "\(at).latencyMs") }
        }
        for (i, row) in chunk.scores.enumerated() {
            let at = "scores[\(i)]"
            try identifier(row.id, field: "\(at).id")
            if let item = row.runItemID { try identifier(item, field: "\(at).runItemID") }
            if let trace = row.traceID { try identifier(trace, field: "\(at).traceID") }
            if let observation = row.observationID { try identifier(observation, field: "\(at).observationID") }
            try text(row.name, field: "\(at).name", max: maxKeyLength)
            try text(row.dataType, field: "\(at).dataType", max: 40)
        }
    }

    /// A row id: 1 to ``maxIDLength`` ASCII letters, digits, `.`, `_`, `:` and `-` (ids appear in
    /// URLs; client ids are UUIDv7 text). `docs/sync-openapi.json` gives the same pattern.
    static func identifier(_ id: String, field: String) throws {
        guard !id.isEmpty, id.utf8.count <= maxIDLength, id.utf8.allSatisfy(isIDByte) else {
            throw APIError.invalid("\(field) must be 1 to \(maxIDLength) ASCII letters, digits, '.', '_', ':' or '-'", field: field)
        }
    }

    private static func isIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"): true
        default: false
        }
    }

    static func text(_ value: String, field: String, max: Int) throws {
        guard !value.isEmpty, value.utf8.count <= max else {
            throw APIError.invalid("\(field) must have 1 to \(max) bytes", field: field)
        }
    }
}
