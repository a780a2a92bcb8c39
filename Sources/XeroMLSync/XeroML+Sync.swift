public import Foundation
public import XeroML
public import XeroMLHTTP
import XeroMLSQLite
import XeroMLSyncAPI
import Synchronization

/// How a push reads, sends and retries.
public struct SyncOptions: Sendable {
    /// How large a chunk may grow.
    public var limits: ChunkLimits
    /// How transient failures are retried.
    public var retry: SyncRetryPolicy
    /// The longest one request may take.
    public var timeout: Duration
    /// The HTTP client; nil uses ``NIOTransport``.
    public var transport: (any HTTPTransport)?
    /// Chunks on the wire at once (the server ingests some while the next travels; 3 measured best
    /// with chunks of 1,000 items, docs/performance.md).
    public var concurrency: Int

    public init(limits: ChunkLimits = ChunkLimits(), retry: SyncRetryPolicy = SyncRetryPolicy(),
                timeout: Duration = .seconds(60), transport: (any HTTPTransport)? = nil, concurrency: Int = 3) {
        self.limits = limits
        self.retry = retry
        self.timeout = timeout
        self.transport = transport
        self.concurrency = max(1, concurrency)
    }
}

/// Where a run stands with one server.
public enum SyncStatus: String, Sendable, Hashable, Codable {
    /// Not pushed yet (finished runs with no sync state read as pending).
    case pending
    /// A push started and has not ended: it resumes at the next unacknowledged chunk.
    case pushing
    /// On the server, committed.
    case synced
    /// The last push failed; ``RunSyncState/lastError`` says why. Pushing again resumes.
    case failed
}

/// A run's sync state with one server, as `xeroml sync status` shows it.
public struct RunSyncState: Sendable, Hashable {
    public var runID: String
    public var runName: String
    public var datasetName: String?
    /// The run's own status: only finished runs are pushed.
    public var runStatus: RunStatus
    /// The server's base URL, normalized.
    public var server: String?
    public var status: SyncStatus
    /// Chunks the server acknowledged (indices 0..<n).
    public var chunksAcknowledged: Int
    public var runItemsSent: Int
    public var rowsSent: Int
    /// Compressed bytes sent.
    public var bytesSent: Int
    /// Failed attempts, over every push of this run to this server.
    public var attempts: Int
    public var lastError: String?
    public var updatedAt: Date?
    public var syncedAt: Date?
    /// The run's page on the server.
    public var remoteURL: String?
}

/// What a push did with one run.
public struct RunPushResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// Pushed and committed now.
        case pushed
        /// Already synced: nothing was sent.
        case alreadySynced
        /// Not pushed, and why (the run is running, interrupted or failed).
        case skipped(String)
        /// The push failed; pushing again resumes where it stopped.
        case failed(SyncError)
    }

    public var runID: String
    public var runName: String
    public var outcome: Outcome
    /// Chunks sent by this push (not counting those acknowledged before it).
    public var chunksSent: Int
    /// The chunk index this push started at (above 0 when it resumed).
    public var resumedAtChunk: Int
    public var runItemsSent: Int
    public var bytesSent: Int
    public var remoteURL: String?
    /// Why a run recorded as synced was pushed again: the server does not have it (a key of another
    /// project, or a database restored from before the push).
    public var pushedAgainBecause: String?
}

/// What a push did, run by run.
public struct SyncReport: Sendable, Hashable {
    public var results: [RunPushResult]

    /// Runs whose push failed.
    public var failures: [RunPushResult] {
        results.filter { if case .failed = $0.outcome { true } else { false } }
    }
}

/// Progress of a push, after each acknowledged chunk.
public struct SyncProgress: Sendable, Hashable {
    public var runID: String
    public var runName: String
    public var chunksAcknowledged: Int
    public var runItemsSent: Int
    /// The run's run items in all.
    public var runItemCount: Int
    /// A transient failure being retried (attempt, message), if that is what happened last.
    public var retrying: String?
}

extension XeroML {
    /// Pushes finished runs to a team server, with everything they reference (the dataset and the
    /// items they used, traces, observations, run items, scores), in gzip chunks.
    ///
    /// Each run's state with the server is kept in the local file (`sync_state`): a push that was
    /// interrupted (the process killed, the network or the server gone) resumes at the next
    /// unacknowledged chunk, and a run already synced sends nothing. Transient failures are retried
    /// per `options.retry`; a refusal (401, 403, 400, 413) stops that run's push with the server's
    /// reason and the next run is tried. Runs that are running, interrupted or failed are skipped
    /// with the reason.
    ///
    /// - Parameters:
    ///   - server: where to push, with a project key.
    ///   - runs: run ids or names; nil pushes every finished run of the file.
    ///   - progress: called after each acknowledged chunk and each retried failure.
    public func sync(to server: SyncServer, runs references: [String]? = nil, options: SyncOptions = SyncOptions(),
                     progress: (@Sendable (SyncProgress) -> Void)? = nil) async throws -> SyncReport {
        var selected: [ExperimentRun] = []
        if let references {
            for reference in references {
                guard let run = try await findRun(reference) else {
                    throw XeroMLError.notFound("run \"\(reference)\"")
                }
                if !selected.contains(where: { $0.id == run.id }) { selected.append(run) }
            }
        } else {
            selected = try await self.runs().sorted { $0.createdAt < $1.createdAt }
        }
        let transport = options.transport ?? NIOTransport(timeout: options.timeout)
        let remote = RemoteRuns(connection: SyncConnection(server: server, transport: transport, retry: options.retry,
                                                           timeout: options.timeout) { _, _ in })
        var results: [RunPushResult] = []
        var unreachable: SyncError?
        for run in selected {
            try Task.checkCancellation()
            if let unreachable {
                // The server stayed unreachable through a whole run's retries: the next runs would only
                // wait as long again. They stay pending, untouched.
                results.append(RunPushResult(runID: run.id, runName: run.name,
                                             outcome: .skipped("not tried: the server was unreachable (\(unreachable.message))"),
                                             chunksSent: 0, resumedAtChunk: 0, runItemsSent: 0, bytesSent: 0))
                continue
            }
            let result = try await push(run, to: server, transport: transport, options: options, remote: remote, progress: progress)
            if case .failed(let error) = result.outcome, error.isTransient, error.status == nil || error.status! >= 500 {
                unreachable = error
            }
            results.append(result)
        }
        return SyncReport(results: results)
    }

    /// Every run's sync state: with `server`, or with each server it was pushed to (a run never
    /// pushed appears once, pending, when finished).
    public func syncStatus(server: String? = nil) async throws -> [RunSyncState] {
        let runs = try await self.runs().sorted { $0.createdAt < $1.createdAt }
        let rows = try await readDatabase { db in
            try db.query("""
                SELECT run_id, server, status, chunks_acknowledged, run_items_sent, rows_sent, bytes_sent, attempts,
                       last_error, updated_us, synced_us, remote_url
                FROM sync_state WHERE ?1 IS NULL OR server = ?1 ORDER BY run_id, server
                """, [server.map(SQLValue.text) ?? .null]) { row in
                RunSyncState(runID: row.text(0)!, runName: "", datasetName: nil, runStatus: .finished, server: row.text(1),
                             status: SyncStatus(rawValue: row.text(2)!) ?? .pending, chunksAcknowledged: row.int(3),
                             runItemsSent: row.int(4), rowsSent: row.int(5), bytesSent: row.int(6), attempts: row.int(7),
                             lastError: row.text(8), updatedAt: row.optionalInt64(9).map(date(us:)),
                             syncedAt: row.optionalInt64(10).map(date(us:)), remoteURL: row.text(11))
            }
        }
        let byRun = Dictionary(grouping: rows, by: \.runID)
        var states: [RunSyncState] = []
        for run in runs {
            if let known = byRun[run.id] {
                for var state in known {
                    state.runName = run.name
                    state.datasetName = run.datasetName
                    state.runStatus = run.status
                    states.append(state)
                }
            } else {
                states.append(RunSyncState(runID: run.id, runName: run.name, datasetName: run.datasetName, runStatus: run.status,
                                           server: server, status: .pending, chunksAcknowledged: 0, runItemsSent: 0,
                                           rowsSent: 0, bytesSent: 0, attempts: 0))
            }
        }
        return states
    }

    // MARK: One run

    private func push(_ run: ExperimentRun, to server: SyncServer, transport: any HTTPTransport, options: SyncOptions,
                      remote: RemoteRuns, progress: (@Sendable (SyncProgress) -> Void)?) async throws -> RunPushResult {
        let serverKey = server.normalizedURL
        var result = RunPushResult(runID: run.id, runName: run.name, outcome: .pushed, chunksSent: 0, resumedAtChunk: 0,
                                   runItemsSent: 0, bytesSent: 0)
        guard run.status == .finished else {
            let reason = switch run.status {
            case .running: "it is still running; push it once it has finished"
            case .interrupted: "it was interrupted; resume it, or end it with `xeroml runs finish` or `xeroml runs abort`"
            default: "it \(run.status.rawValue); only finished runs are pushed"
            }
            result.outcome = .skipped(reason)
            return result
        }
        let runID = run.id
        var stored = try await readDatabase { db in try SyncStateRow.load(runID: runID, server: serverKey, in: db) }
        if let synced = stored, synced.status == .synced {
            // The local state says synced; the server has the last word, as the same address may be
            // asked with another project's key, or its database restored from before the push.
            guard await remote.lacks(runID) else {
                result.outcome = .alreadySynced
                result.remoteURL = synced.remoteURL
                return result
            }
            result.pushedAgainBecause = "it was synced with \(serverKey), but the server has no such run for this key's project "
                + "(another project's key, or a database restored from before the push)"
            try await writeDatabase { db in try SyncStateRow.reset(runID: runID, server: serverKey, in: db) }
            stored = nil
        }
        let runItemCount = run.itemCount
        let connection = SyncConnection(server: server, transport: transport, retry: options.retry, timeout: options.timeout) { [self] attempt, error in
            try? await writeDatabase { db in try SyncStateRow.recordFailure(runID: runID, server: serverKey, error: error.message, in: db) }
            progress?(SyncProgress(runID: runID, runName: run.name, chunksAcknowledged: 0, runItemsSent: 0,
                                   runItemCount: runItemCount, retrying: "attempt \(attempt) failed: \(error.message)"))
        }
        do {
            let manifest = try await readDatabase { db in try Self.manifest(runID: runID, in: db) }
            try await writeDatabase { db in try SyncStateRow.start(runID: runID, server: serverKey, in: db) }
            let state = try await connection.begin(manifest)
            var row = stored ?? SyncStateRow(status: .pushing)
            if state.committed {
                try await markSynced(runID: runID, server: serverKey, url: state.url)
                result.outcome = .alreadySynced
                result.remoteURL = state.url
                return result
            }
            // The server must still hold every chunk acknowledged before; if it lost any, start over.
            if row.chunksAcknowledged > 0 && !Set(state.receivedChunks).isSuperset(of: 0..<row.chunksAcknowledged) {
                row = SyncStateRow(status: .pushing)
            }
            result.resumedAtChunk = row.chunksAcknowledged
            // Up to `options.concurrency` chunks are on the wire at once while the next is read and
            // compressed; the state advances over the acknowledged prefix only, so a resume never skips
            // a chunk that was sent but not acknowledged.
            var acknowledged = row
            var sendIndex = row.chunksAcknowledged
            var finished: [Int: PreparedChunk] = [:]
            let reader = ChunkReader(runID: runID, limits: options.limits)
            try await withThrowingTaskGroup(of: (Int, PreparedChunk).self) { group in
                var inFlight = 0
                var upcoming = try await prepare(reader, index: sendIndex, cursor: row.cursor)
                while true {
                    while inFlight < options.concurrency, let chunk = upcoming {
                        let index = sendIndex
                        group.addTask {
                            let receipt = try await connection.send(body: chunk.body, runID: runID, index: index)
                            guard receipt.index == index else {
                                throw SyncError(isTransient: false, status: nil,
                                                message: "the server acknowledged chunk \(receipt.index) for chunk \(index)")
                            }
                            return (index, chunk)
                        }
                        inFlight += 1
                        sendIndex += 1
                        upcoming = try await prepare(reader, index: sendIndex, cursor: chunk.next)
                    }
                    guard let (index, chunk) = try await group.next() else { break }
                    inFlight -= 1
                    finished[index] = chunk
                    result.chunksSent += 1
                    var advanced = false
                    while let next = finished.removeValue(forKey: acknowledged.chunksAcknowledged) {
                        acknowledged.chunksAcknowledged += 1
                        acknowledged.cursor = next.next
                        acknowledged.runItemsSent += next.runItems
                        acknowledged.rowsSent += next.rows
                        acknowledged.bytesSent += next.body.count
                        advanced = true
                    }
                    guard advanced else { continue }
                    let state = acknowledged
                    try await writeDatabase { db in try state.saveProgress(runID: runID, server: serverKey, in: db) }
                    progress?(SyncProgress(runID: runID, runName: run.name, chunksAcknowledged: state.chunksAcknowledged,
                                           runItemsSent: state.runItemsSent, runItemCount: runItemCount, retrying: nil))
                }
            }
            let (index, runItemsSent, bytesSent) = (acknowledged.chunksAcknowledged, acknowledged.runItemsSent, acknowledged.bytesSent)
            result.runItemsSent = runItemsSent
            result.bytesSent = bytesSent
            let committed = try await connection.commit(runID: runID, CommitRequest(chunkCount: index, runItemCount: runItemsSent))
            try await markSynced(runID: runID, server: serverKey, url: committed.url)
            result.remoteURL = committed.url
            return result
        } catch let error as SyncError {
            if error.status == 409, error.missingChunks != nil {
                // The server lacks chunks it acknowledged (its database was restored, say): the next push starts over.
                try await writeDatabase { db in try SyncStateRow.reset(runID: runID, server: serverKey, in: db) }
            }
            try await writeDatabase { db in
                try SyncStateRow.recordFailure(runID: runID, server: serverKey, error: error.message, final: true, in: db)
            }
            result.outcome = .failed(error)
            return result
        }
    }

    private func markSynced(runID: String, server: String, url: String?) async throws {
        try await writeDatabase { db in
            try db.run("""
                UPDATE sync_state SET status = 'synced', synced_us = ?3, updated_us = ?3, remote_url = ?4, last_error = NULL
                WHERE run_id = ?1 AND server = ?2
                """, [.text(runID), .text(server), .integer(nowUs()), url.map(SQLValue.text) ?? .null])
        }
    }

    /// A chunk read and encoded, ready to send.
    private struct PreparedChunk: Sendable {
        var body: Data
        var next: ChunkCursor
        var runItems: Int
        var rows: Int
    }

    private func prepare(_ reader: ChunkReader, index: Int, cursor: ChunkCursor) async throws -> PreparedChunk? {
        if cursor == .done { return nil }
        guard let content = try await readDatabase({ db in try reader.chunk(index: index, at: cursor, in: db) }) else { return nil }
        let body = try Gzip.compress(content.chunk.jsonData())
        return PreparedChunk(body: body, next: content.next, runItems: content.chunk.runItems.count, rows: content.chunk.rowCount)
    }

    private static func manifest(runID: String, in db: Connection) throws -> RunManifest {
        guard let run = try db.queryFirst("""
            SELECT id, name, description, metadata, status, dataset_id, dataset_version, configuration, created_us, finished_us
            FROM experiment_runs WHERE id = ?
            """, [.text(runID)], { row in
            RunRow(id: row.text(0)!, name: row.text(1)!, description: row.text(2), metadata: row.text(3), status: row.text(4)!,
                   datasetID: row.text(5), datasetVersion: row.optionalInt64(6).map(Int.init), configuration: row.text(7),
                   createdUs: row.int64(8), finishedUs: row.optionalInt64(9))
        }) else {
            throw XeroMLError.notFound("run \(runID)")
        }
        let dataset = try run.datasetID.flatMap { id in
            try db.queryFirst("SELECT id, name, description, metadata, version, created_us FROM datasets WHERE id = ?", [.text(id)]) { row in
                DatasetRow(id: row.text(0)!, name: row.text(1)!, description: row.text(2), metadata: row.text(3),
                           version: row.int(4), createdUs: row.int64(5))
            }
        }
        return RunManifest(run: run, dataset: dataset, clientVersion: XeroML.version)
    }
}

/// A `sync_state` row.
struct SyncStateRow: Sendable {
    var status: SyncStatus
    var chunksAcknowledged = 0
    var cursor = ChunkCursor.start
    var runItemsSent = 0
    var rowsSent = 0
    var bytesSent = 0
    var remoteURL: String?

    static func load(runID: String, server: String, in db: Connection) throws -> SyncStateRow? {
        try db.queryFirst("""
            SELECT status, chunks_acknowledged, cursor, run_items_sent, rows_sent, bytes_sent, remote_url
            FROM sync_state WHERE run_id = ? AND server = ?
            """, [.text(runID), .text(server)]) { row in
            SyncStateRow(status: SyncStatus(rawValue: row.text(0)!) ?? .pending, chunksAcknowledged: row.int(1),
                         cursor: row.text(2).flatMap(ChunkCursor.init) ?? .start, runItemsSent: row.int(3), rowsSent: row.int(4),
                         bytesSent: row.int(5), remoteURL: row.text(6))
        }
    }

    /// Marks the run as being pushed (creating its row if needed).
    static func start(runID: String, server: String, in db: Connection) throws {
        try db.run("""
            INSERT INTO sync_state (run_id, server, status, started_us, updated_us) VALUES (?1, ?2, 'pushing', ?3, ?3)
            ON CONFLICT (run_id, server) DO UPDATE SET status = 'pushing', updated_us = ?3
            """, [.text(runID), .text(server), .integer(nowUs())])
    }

    func saveProgress(runID: String, server: String, in db: Connection) throws {
        try db.run("""
            UPDATE sync_state SET chunks_acknowledged = ?3, cursor = ?4, run_items_sent = ?5, rows_sent = ?6, bytes_sent = ?7,
                   updated_us = ?8
            WHERE run_id = ?1 AND server = ?2
            """, [.text(runID), .text(server), .integer(Int64(chunksAcknowledged)), .text(cursor.description),
                  .integer(Int64(runItemsSent)), .integer(Int64(rowsSent)), .integer(Int64(bytesSent)), .integer(nowUs())])
    }

    /// Counts a failed attempt; `final` marks the push failed (else it is being retried).
    static func recordFailure(runID: String, server: String, error: String, final: Bool = false, in db: Connection) throws {
        try db.run("""
            INSERT INTO sync_state (run_id, server, status, attempts, last_error, updated_us) VALUES (?1, ?2, ?3, 1, ?4, ?5)
            ON CONFLICT (run_id, server) DO UPDATE SET status = ?3, attempts = attempts + 1, last_error = ?4, updated_us = ?5
            """, [.text(runID), .text(server), .text(final ? "failed" : "pushing"), .text(error), .integer(nowUs())])
    }

    static func reset(runID: String, server: String, in db: Connection) throws {
        try db.run("""
            UPDATE sync_state SET chunks_acknowledged = 0, cursor = NULL, run_items_sent = 0, rows_sent = 0, bytes_sent = 0
            WHERE run_id = ? AND server = ?
            """, [.text(runID), .text(server)])
    }
}

/// Which runs the server holds for the key's project, asked once per push of several runs: its list
/// of committed runs, then the run itself for one the list does not name.
final class RemoteRuns: Sendable {
    let connection: SyncConnection
    private let listed = Mutex<Set<String>?>(nil)

    init(connection: SyncConnection) { self.connection = connection }

    /// Whether the server answers that it has no committed run `runID`. When it cannot be asked (it is
    /// unreachable, or an older server), the local state is trusted: false.
    func lacks(_ runID: String) async -> Bool {
        if listed.withLock({ $0 }) == nil, let list = try? await connection.committedRuns() {
            listed.withLock { $0 = Set(list.runs.map(\.id)) }
        }
        if listed.withLock({ $0?.contains(runID) }) == true { return false }
        // Not listed (the list holds the newest runs only), or no list: ask for the run itself.
        do {
            guard let state = try await connection.state(of: runID) else { return true }
            return !state.committed
        } catch {
            return false
        }
    }
}

private func nowUs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }
private func date(us: Int64) -> Date { Date(timeIntervalSince1970: Double(us) / 1_000_000) }
