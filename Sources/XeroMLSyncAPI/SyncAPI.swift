import Foundation

/// The sync protocol between a local XeroML file (the client, `XeroMLSync`) and a team server
/// (`xeroml-server`): paths, request and response bodies. Both sides compile these types, and
/// `docs/sync-openapi.json` (OpenAPI 3) describes the same protocol for other clients.
///
/// A push of one finished run:
/// 1. `PUT /v1/runs/{runID}` with a ``RunManifest`` (the run and its dataset) → ``RunState``: which
///    chunks the server already holds and whether the run is committed. Sending it again is harmless.
/// 2. `PUT /v1/runs/{runID}/chunks/{index}` with a ``SyncChunk`` (gzip, `Content-Encoding: gzip`)
///    for each index from 0 → ``ChunkReceipt``. Every row carries its client UUIDv7; the server keeps
///    the first copy of a row and ignores repeats, so a chunk sent twice changes nothing.
/// 3. `POST /v1/runs/{runID}/commit` with a ``CommitRequest`` naming the chunk count → ``RunState``
///    with `committed` true. The run becomes visible only then, exactly once. With chunks missing the
///    server answers 409 and ``APIErrorBody/missingChunks`` lists them.
///
/// Every request carries `Authorization: Bearer <project key>`; everything is scoped to the key's
/// project. Errors are ``APIErrorBody`` with a 4xx or 5xx status.
public enum SyncAPI {
    /// The protocol version, the first path segment.
    public static let version = "v1"

    /// `GET /v1/project`: the key's project (``ProjectInfo``); a cheap check of a key.
    public static let projectPath = "/v1/project"
    /// `GET /v1/runs`: the project's committed runs (``RunList``).
    public static let runsPath = "/v1/runs"

    /// `PUT` (begin) and `GET` (state) of one run.
    public static func runPath(_ runID: String) -> String { "/v1/runs/\(runID)" }
    /// `PUT` of one chunk of a run.
    public static func chunkPath(_ runID: String, index: Int) -> String { "/v1/runs/\(runID)/chunks/\(index)" }
    /// `POST`: make the run visible.
    public static func commitPath(_ runID: String) -> String { "/v1/runs/\(runID)/commit" }

    /// The largest request body the server accepts, compressed (413 above it).
    public static let maxBodyBytes = 8 * 1024 * 1024
    /// The largest chunk the server accepts once inflated (413 above it).
    public static let maxInflatedChunkBytes = 64 * 1024 * 1024
    /// The most rows one chunk may hold (400 above it).
    public static let maxRowsPerChunk = 50_000
}

// MARK: - Rows

/// A row of the run (`experiment_runs`). Times are microseconds since the Unix epoch; JSON values are
/// compact JSON text, as stored locally.
public struct RunRow: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var description: String?
    public var metadata: String?
    /// `finished` or `failed`: only ended runs are pushed.
    public var status: String
    public var datasetID: String?
    public var datasetVersion: Int?
    /// How the run was made (evaluators, options), JSON text.
    public var configuration: String?
    public var createdUs: Int64
    public var finishedUs: Int64?

    public init(id: String, name: String, description: String? = nil, metadata: String? = nil, status: String,
                datasetID: String? = nil, datasetVersion: Int? = nil, configuration: String? = nil,
                createdUs: Int64, finishedUs: Int64? = nil) {
        self.id = id
        self.name = name
        self.description = description
        self.metadata = metadata
        self.status = status
        self.datasetID = datasetID
        self.datasetVersion = datasetVersion
        self.configuration = configuration
        self.createdUs = createdUs
        self.finishedUs = finishedUs
    }
}

/// A dataset, as the client knows it. The server matches datasets by (project, name).
public struct DatasetRow: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var description: String?
    public var metadata: String?
    public var version: Int
    public var createdUs: Int64

    public init(id: String, name: String, description: String? = nil, metadata: String? = nil, version: Int, createdUs: Int64) {
        self.id = id
        self.name = name
        self.description = description
        self.metadata = metadata
        self.version = version
        self.createdUs = createdUs
    }
}

/// A dataset item a run used. The server matches items of a dataset by `externalID` when there is
/// one, else by a hash of `input` and `expectedOutput`, so the same item imported on two machines
/// (two different ids) is one item on the server.
public struct DatasetItemRow: Codable, Sendable, Hashable {
    public var id: String
    public var datasetID: String
    public var externalID: String?
    public var input: String
    public var expectedOutput: String?
    public var metadata: String?
    public var createdUs: Int64

    public init(id: String, datasetID: String, externalID: String? = nil, input: String, expectedOutput: String? = nil,
                metadata: String? = nil, createdUs: Int64) {
        self.id = id
        self.datasetID = datasetID
        self.externalID = externalID
        self.input = input
        self.expectedOutput = expectedOutput
        self.metadata = metadata
        self.createdUs = createdUs
    }
}

/// A trace of the run: an item's task (`item`) or its evaluators (`evaluation`).
public struct TraceRow: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    /// `trace`, `item` or `evaluation`.
    public var kind: String
    public var input: String?
    public var output: String?
    public var metadata: String?
    public var startedUs: Int64
    public var endedUs: Int64?

    public init(id: String, name: String, kind: String, input: String? = nil, output: String? = nil, metadata: String? = nil,
                startedUs: Int64, endedUs: Int64? = nil) {
        self.id = id
        self.name = name
        self.kind = kind
        self.input = input
        self.output = output
        self.metadata = metadata
        self.startedUs = startedUs
        self.endedUs = endedUs
    }
}

/// A span, generation or event of a trace of the run.
public struct ObservationRow: Codable, Sendable, Hashable {
    public var id: String
    public var traceID: String
    public var parentID: String?
    /// `span`, `generation` or `event`.
    public var kind: String
    public var name: String
    public var input: String?
    public var output: String?
    public var metadata: String?
    public var model: String?
    public var modelParameters: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?
    public var cost: Double?
    /// `debug`, `default`, `warning` or `error`.
    public var level: String
    public var statusMessage: String?
    public var startedUs: Int64
    public var endedUs: Int64?

    public init(id: String, traceID: String, parentID: String? = nil, kind: String, name: String, input: String? = nil,
                output: String? = nil, metadata: String? = nil, model: String? = nil, modelParameters: String? = nil,
                promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil, cost: Double? = nil,
                level: String = "default", statusMessage: String? = nil, startedUs: Int64, endedUs: Int64? = nil) {
        self.id = id
        self.traceID = traceID
        self.parentID = parentID
        self.kind = kind
        self.name = name
        self.input = input
        self.output = output
        self.metadata = metadata
        self.model = model
        self.modelParameters = modelParameters
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.cost = cost
        self.level = level
        self.statusMessage = statusMessage
        self.startedUs = startedUs
        self.endedUs = endedUs
    }
}

/// One result of the run: a dataset item (or local input) at one repetition.
public struct RunItemRow: Codable, Sendable, Hashable {
    public var id: String
    public var datasetItemID: String?
    public var repetition: Int
    public var input: String?
    public var expectedOutput: String?
    public var metadata: String?
    public var output: String?
    public var error: String?
    public var latencyMs: Double
    public var attempts: Int
    public var generations: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    public var cost: Double?
    public var traceID: String?
    public var startedUs: Int64

    public init(id: String, datasetItemID: String? = nil, repetition: Int = 0, input: String? = nil,
                expectedOutput: String? = nil, metadata: String? = nil, output: String? = nil, error: String? = nil,
                latencyMs: Double, attempts: Int = 1, generations: Int = 0, promptTokens: Int = 0,
                completionTokens: Int = 0, totalTokens: Int = 0, cost: Double? = nil, traceID: String? = nil, startedUs: Int64) {
        self.id = id
        self.datasetItemID = datasetItemID
        self.repetition = repetition
        self.input = input
        self.expectedOutput = expectedOutput
        self.metadata = metadata
        self.output = output
        self.error = error
        self.latencyMs = latencyMs
        self.attempts = attempts
        self.generations = generations
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.cost = cost
        self.traceID = traceID
        self.startedUs = startedUs
    }
}

/// A score of the run: of an item (`runItemID`), of the run (neither item nor trace), of a trace or
/// an observation.
public struct ScoreRow: Codable, Sendable, Hashable {
    public var id: String
    public var runItemID: String?
    public var traceID: String?
    public var observationID: String?
    public var name: String
    /// `numeric`, `boolean`, `categorical`, `text` or `unscored`.
    public var dataType: String
    public var value: Double?
    public var stringValue: String?
    public var comment: String?
    /// `sdk`, `evaluator`, `judge`, `human` or `api`.
    public var source: String
    public var evaluator: String?
    public var createdUs: Int64

    public init(id: String, runItemID: String? = nil, traceID: String? = nil, observationID: String? = nil, name: String,
                dataType: String, value: Double? = nil, stringValue: String? = nil, comment: String? = nil,
                source: String = "sdk", evaluator: String? = nil, createdUs: Int64) {
        self.id = id
        self.runItemID = runItemID
        self.traceID = traceID
        self.observationID = observationID
        self.name = name
        self.dataType = dataType
        self.value = value
        self.stringValue = stringValue
        self.comment = comment
        self.source = source
        self.evaluator = evaluator
        self.createdUs = createdUs
    }
}

// MARK: - Requests

/// `PUT /v1/runs/{runID}`: announces a run before its chunks.
public struct RunManifest: Codable, Sendable, Hashable {
    public var run: RunRow
    /// The run's dataset, when it has one.
    public var dataset: DatasetRow?
    /// The XeroML version that recorded the run.
    public var clientVersion: String?

    public init(run: RunRow, dataset: DatasetRow? = nil, clientVersion: String? = nil) {
        self.run = run
        self.dataset = dataset
        self.clientVersion = clientVersion
    }
}

/// `PUT /v1/runs/{runID}/chunks/{index}`: some of a run's rows. Any mix of tables; rows may refer
/// to rows of other chunks (the server checks references only at commit).
public struct SyncChunk: Codable, Sendable, Hashable {
    public var runID: String
    public var index: Int
    public var datasetItems: [DatasetItemRow]
    public var traces: [TraceRow]
    public var observations: [ObservationRow]
    public var runItems: [RunItemRow]
    public var scores: [ScoreRow]

    public init(runID: String, index: Int, datasetItems: [DatasetItemRow] = [], traces: [TraceRow] = [],
                observations: [ObservationRow] = [], runItems: [RunItemRow] = [], scores: [ScoreRow] = []) {
        self.runID = runID
        self.index = index
        self.datasetItems = datasetItems
        self.traces = traces
        self.observations = observations
        self.runItems = runItems
        self.scores = scores
    }

    /// Rows of every table.
    public var rowCount: Int {
        datasetItems.count + traces.count + observations.count + runItems.count + scores.count
    }
}

/// `POST /v1/runs/{runID}/commit`.
public struct CommitRequest: Codable, Sendable, Hashable {
    /// How many chunks the run was sent in (indices 0..<chunkCount).
    public var chunkCount: Int
    /// How many run items the chunks hold in all, checked by the server.
    public var runItemCount: Int

    public init(chunkCount: Int, runItemCount: Int) {
        self.chunkCount = chunkCount
        self.runItemCount = runItemCount
    }
}

// MARK: - Responses

/// A run's state on the server.
public struct RunState: Codable, Sendable, Hashable {
    public var runID: String
    /// Indices of the chunks the server holds, ascending.
    public var receivedChunks: [Int]
    /// Whether the run is visible (committed).
    public var committed: Bool
    /// The run's page on the server's dashboard, once committed.
    public var url: String?

    public init(runID: String, receivedChunks: [Int], committed: Bool, url: String? = nil) {
        self.runID = runID
        self.receivedChunks = receivedChunks
        self.committed = committed
        self.url = url
    }
}

/// The answer to a chunk.
public struct ChunkReceipt: Codable, Sendable, Hashable {
    public var runID: String
    public var index: Int
    /// Rows of the chunk the server did not hold before (0 for a chunk sent again).
    public var newRows: Int

    public init(runID: String, index: Int, newRows: Int) {
        self.runID = runID
        self.index = index
        self.newRows = newRows
    }
}

/// `GET /v1/project`.
public struct ProjectInfo: Codable, Sendable, Hashable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

/// A committed run as listed by `GET /v1/runs`.
public struct RunSummaryRow: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var datasetName: String?
    public var status: String
    public var runItemCount: Int
    public var createdUs: Int64
    public var committedUs: Int64

    public init(id: String, name: String, datasetName: String?, status: String, runItemCount: Int, createdUs: Int64, committedUs: Int64) {
        self.id = id
        self.name = name
        self.datasetName = datasetName
        self.status = status
        self.runItemCount = runItemCount
        self.createdUs = createdUs
        self.committedUs = committedUs
    }
}

/// `GET /v1/runs`.
public struct RunList: Codable, Sendable, Hashable {
    public var runs: [RunSummaryRow]

    public init(runs: [RunSummaryRow]) { self.runs = runs }
}

/// Every error answer: `{"error": {...}}`.
public struct APIErrorBody: Codable, Sendable, Hashable, Error {
    public struct Detail: Codable, Sendable, Hashable {
        /// The HTTP status, repeated.
        public var status: Int
        /// A stable word for programs: `unauthorized`, `not_found`, `too_large`, `invalid`,
        /// `unsupported_version`, `method_not_allowed`, `missing_chunks`, `conflict`, `unavailable`,
        /// `internal`.
        public var code: String
        /// What went wrong, in a sentence.
        public var message: String
        /// The request field at fault (a JSON path such as `runItems[3].latencyMs`), for 400.
        public var field: String?
        /// Chunk indices the server lacks, for 409 on commit.
        public var missingChunks: [Int]?

        public init(status: Int, code: String, message: String, field: String? = nil, missingChunks: [Int]? = nil) {
            self.status = status
            self.code = code
            self.message = message
            self.field = field
            self.missingChunks = missingChunks
        }
    }

    public var error: Detail

    public init(_ error: Detail) { self.error = error }
}
