import Foundation
import Logging
import Synchronization
import XeroMLSQLite

// MARK: - Rows written by the single writer

struct TraceRow: Sendable {
    var id: String
    var name: String
    var kind: TraceKind = .trace
    var runID: String?
    var input: JSONValue?
    var output: JSONValue?
    var metadata: JSONValue?
    var startedUs: Int64
    var endedUs: Int64?
}

struct ObservationRow: Sendable {
    var id: String
    var traceID: String
    var parentID: String?
    var kind: ObservationKind
    var name: String
    var input: JSONValue?
    var output: JSONValue?
    var metadata: JSONValue?
    var model: String?
    var modelParameters: JSONValue?
    var usage: TokenUsage
    var cost: Double?
    var level: ObservationLevel
    var statusMessage: String?
    var startedUs: Int64
    var endedUs: Int64?
}

struct RunItemRow: Sendable {
    var id: String
    var runID: String
    var datasetItemID: String?
    var repetition: Int
    /// Stored only for raw items; dataset items keep theirs in `dataset_items`.
    var input: JSONValue?
    var expectedOutput: JSONValue?
    var metadata: JSONValue?
    var output: JSONValue?
    var error: String?
    var latencyMs: Double
    var attempts: Int = 1
    /// Totals of the task's generations (not of evaluators').
    var usage = UsageTotals()
    var traceID: String?
    var startedUs: Int64
}

struct ScoreRow: Sendable {
    var id: String
    var runID: String?
    var runItemID: String?
    var traceID: String?
    var observationID: String?
    var name: String
    var value: ScoreValue
    var comment: String?
    var source: ScoreSource
    var evaluator: String?
    var createdUs: Int64
}

/// Everything one finished unit of work produces, written in one transaction with others.
struct WriteBatch: Sendable {
    var traces: [TraceRow] = []
    var observations: [ObservationRow] = []
    var runItems: [RunItemRow] = []
    var scores: [ScoreRow] = []
    /// A resumed run may meet another process resuming it at the same time: when its (item,
    /// repetition) already has a committed result, the batch is dropped whole (that result stands)
    /// instead of being reported as a failure.
    var yieldsToCommittedResult = false
    var rowCount: Int { traces.count + observations.count + runItems.count + scores.count }
    /// The run this batch records into, if any.
    var runID: String? { runItems.first?.runID ?? scores.first?.runID ?? traces.first?.runID }
}

extension JSONValue? {
    var sql: SQLValue { self.map { .text($0.jsonString) } ?? .null }
}

// MARK: - Store

/// The SQLite file: one writer connection with group commit, and a few read-only connections.
///
/// - Writes of finished items are enqueued (``enqueue(_:)``) and committed by the writer in batches:
///   whatever accumulated while the previous transaction committed goes into the next one. A batch is
///   durable (WAL + synchronous=NORMAL) when its transaction commits, a few milliseconds after it was
///   enqueued; ``flush()`` waits for everything enqueued so far.
/// - Other writes (``write(_:)``) run on the same serial writer queue, in order with the batches.
/// - Reads (``read(_:)``) run on separate read-only connections, each on its own queue, and can be
///   cancelled (`sqlite3_interrupt`).
final class Store: Sendable {
    let path: String
    private let writer: DatabaseQueue
    private let readers: [DatabaseQueue]
    private let nextReader = Atomic<Int>(0)
    private let state = Mutex(WriterState())
    let logger: Logger
    /// Opened without a writer: writes are refused.
    let isReadOnly: Bool
    /// An in-memory database: one connection serves reads and writes.
    let isInMemory: Bool

    /// How many enqueued batches may wait for the writer before ``enqueue(_:)`` suspends.
    static let maximumPendingBatches = 4096
    /// The default of ``lockTimeout``.
    static let defaultLockTimeout: Duration = .seconds(30)
    /// SQLite's own busy timeout on the writer: short, so that the writer's wait loop can stop waiting
    /// when its caller is cancelled; the total wait is ``lockTimeout``.
    static let writerBusySliceMilliseconds: Int32 = 100

    /// The longest the writer waits, in total, for another process to release the write lock before
    /// its write fails: one wait for everything pending, not one per batch.
    let lockTimeout: Duration

    private struct WriterState {
        var pending: [WriteBatch] = []
        var drainScheduled = false
        var failures: [String] = []
        var waiters: [CheckedContinuation<Void, Never>] = []
        var committedBatches = 0
        var committedTransactions = 0
        /// Batches whose write failed for a reason that may pass (a lock, a full disk): kept to be
        /// tried once more by the next ``flush()``.
        var retained: [WriteBatch] = []
        /// The first write failure since the store opened, until a flush stores everything.
        var firstFailure: XeroMLError?
        /// Results that could not be stored (after their last try).
        var lostResults = 0
        /// Bumped by a cancelled caller: every lock wait in progress gives up.
        var abortGeneration = 0
        /// When the writer last refreshed run heartbeats in a commit.
        var lastHeartbeatUs: Int64 = 0
    }

    /// Opens the store at `path`.
    ///
    /// - Parameter readOnly: open without a writer: no file is created, no migration runs and the
    ///   journal mode is left alone (see ``openReadOnly(path:count:)``); ``write(_:)`` and
    ///   ``enqueue(_:)`` then refuse. Otherwise the writer creates the file when missing and migrates it.
    ///   An in-memory path (``isInMemory(_:)``) gets a single connection for reads and writes, since
    ///   every connection to `:memory:` would see its own empty database.
    init(path: String, readerCount: Int = 2, readOnly: Bool = false, lockTimeout: Duration = Store.defaultLockTimeout,
         logger: Logger) throws {
        self.path = path
        self.logger = logger
        self.lockTimeout = lockTimeout
        self.isReadOnly = readOnly
        self.isInMemory = Self.isInMemory(path)
        do {
            if readOnly {
                readers = try Self.openReadOnly(path: path, count: max(1, readerCount))
                // No write connection: the queue that would serve writes is a read-only one, and the
                // guards in `write` and `enqueue` keep anything from being sent to it.
                writer = readers[0]
                return
            }
            // The writer commits in the background, below the tasks that produce results: on a busy
            // machine the experiment's tasks keep their cores and batches grow instead.
            // Opened with the usual busy timeout, so switching a new file to WAL waits for another
            // process setting it up; the short slice is set once the file is ready (below).
            writer = try DatabaseQueue(path: path, mode: .readWrite, label: "xeroml.writer", priority: .background)
            try writer.sync { db in
                let appID = try db.queryFirst("PRAGMA application_id") { $0.int64(0) } ?? 0
                let tables = try db.queryFirst("SELECT count(*) FROM sqlite_master WHERE type = 'table'") { $0.int(0) } ?? 0
                let hasMigrations = try db.queryFirst(
                    "SELECT 1 FROM sqlite_master WHERE name = 'xeroml_migrations'") { _ in true } ?? false
                let foreignApplication = appID != 0 && appID != Int64(Schema.applicationID)
                if foreignApplication || (appID == 0 && tables > 0 && !hasMigrations) {
                    throw XeroMLError.notAXeroMLFile(path: path)
                }
                // Another process may be setting the file up: wait for its lock like any write.
                let deadline = ContinuousClock.now + lockTimeout
                while true {
                    do {
                        try Schema.migrator.migrate(db)
                        break
                    } catch let error as SQLiteError where (error.code == .busy || error.code == .locked)
                                && ContinuousClock.now < deadline {
                        Thread.sleep(forTimeInterval: 0.005)
                    }
                }
                try db.execute("PRAGMA busy_timeout = \(Self.writerBusySliceMilliseconds)")
            }
            if isInMemory {
                // Reads run on the writer's queue, in order with the writes.
                readers = [writer]
            } else {
                readers = try (0..<max(1, readerCount)).map { i in
                    try DatabaseQueue(path: path, mode: .readOnly, label: "xeroml.reader.\(i)", busyTimeoutMilliseconds: 10_000)
                }
            }
            OpenStores.register(self)
        } catch let error as MigrationError {
            throw XeroMLError.newerSchema(path: path, detail: error.description)
        } catch let error as SQLiteError {
            throw XeroMLError.storage(error, path: path)
        }
    }

    /// Whether `path` names an in-memory database: `:memory:`, or a `file:` URI with `:memory:` as
    /// its name or `mode=memory` among its parameters (https://www.sqlite.org/inmemorydb.html).
    static func isInMemory(_ path: String) -> Bool {
        if path == ":memory:" { return true }
        guard path.hasPrefix("file:") else { return false }
        let rest = path.dropFirst("file:".count)
        let name = rest.prefix { $0 != "?" && $0 != "#" }
        let query = rest.dropFirst(name.count).drop { $0 == "?" }.prefix { $0 != "#" }
        return name == ":memory:" || query.split(separator: "&").contains("mode=memory")
    }

    /// Opens `count` read-only connections to an existing store and checks it without writing.
    ///
    /// - A missing or empty file is ``XeroMLError/Code/storeNotFound``: nothing is created.
    /// - A file of another application is ``XeroMLError/Code/notAXeroMLFile``; one with unknown
    ///   migrations ``XeroMLError/Code/newerSchema``; one with migrations still to apply
    ///   ``XeroMLError/Code/needsMigration`` (applying them needs a writer).
    /// - A WAL file whose directory cannot be written, and that has no `-shm` file beside it, cannot
    ///   be read normally (SQLite needs the shared-memory file: https://www.sqlite.org/wal.html#readonly);
    ///   it is then opened as immutable (`immutable=1`: https://www.sqlite.org/uri.html#uriimmutable),
    ///   which is right for a file nobody can write there.
    static func openReadOnly(path: String, count: Int) throws -> [DatabaseQueue] {
        guard !isInMemory(path) else {
            throw XeroMLError(.storeNotFound, "no store at \(path): an in-memory database opened read-only is always empty")
        }
        // A `file:` URI is SQLite's to resolve (a read-only open never creates the file either).
        let isURI = path.hasPrefix("file:")
        var isDirectory: ObjCBool = false
        guard isURI || FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw XeroMLError(.storeNotFound, "no store at \(path): the file does not exist")
        }
        guard !isDirectory.boolValue else {
            throw XeroMLError(.storeNotFound, "no store at \(path): it is a directory")
        }
        func open(_ location: String) throws -> [DatabaseQueue] {
            let queues = try (0..<count).map { i in
                try DatabaseQueue(path: location, mode: .readOnly, label: "xeroml.reader.\(i)", busyTimeoutMilliseconds: 10_000)
            }
            try queues[0].sync { db in try checkSchemaWithoutWriting(db, path: path) }
            return queues
        }
        do {
            return try open(path)
        } catch let error as SQLiteError where !isURI && (error.code == .readOnly || error.code == .cantOpen) {
            // Immutable reads ignore the write-ahead log: only right when it holds nothing.
            let wal = (try? URL(fileURLWithPath: path + "-wal").resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
            guard wal == 0 else { throw error }
            return try open(immutableURI(path))
        }
    }

    /// `path` as a `file:` URI with `immutable=1`, its reserved characters percent-encoded.
    static func immutableURI(_ path: String) -> String {
        var encoded = ""
        for scalar in path.unicodeScalars {
            switch scalar {
            case "%", "?", "#": encoded += String(format: "%%%02X", scalar.value)
            default: encoded.unicodeScalars.append(scalar)
            }
        }
        return "file:\(encoded)?mode=ro&immutable=1"
    }

    /// The checks the writer makes at open, without migrating: throws when the file is not a store
    /// this build can read as it is.
    private static func checkSchemaWithoutWriting(_ db: Connection, path: String) throws {
        let appID = try db.queryFirst("PRAGMA application_id") { $0.int64(0) } ?? 0
        let tables = try db.queryFirst("SELECT count(*) FROM sqlite_master WHERE type = 'table'") { $0.int(0) } ?? 0
        let hasMigrations = try db.queryFirst(
            "SELECT 1 FROM sqlite_master WHERE name = 'xeroml_migrations'") { _ in true } ?? false
        if appID != 0 && appID != Int64(Schema.applicationID) || (appID == 0 && tables > 0 && !hasMigrations) {
            throw XeroMLError.notAXeroMLFile(path: path)
        }
        if tables == 0 {
            throw XeroMLError(.storeNotFound, "no store at \(path): the file is empty")
        }
        let migrator = Schema.migrator
        let applied = try migrator.appliedMigrations(db)
        let known = migrator.migrations.map(\.name)
        let unknown = applied.filter { !known.contains($0) }
        if !unknown.isEmpty {
            throw XeroMLError.newerSchema(path: path, detail: MigrationError.newerSchema(unknown: unknown).description)
        }
        let pending = known.filter { !applied.contains($0) }
        if !pending.isEmpty {
            throw XeroMLError(.needsMigration,
                "\(path) was written by an older XeroML and needs an upgrade (\(pending.joined(separator: ", "))) "
                + "that a read-only opening cannot make; open it once for writing (`xeroml migrate --db \(path)`, "
                + "or `XeroML(path:)` in Swift), then try again")
        }
    }

    // MARK: Reads

    /// Runs `body` on a read-only connection. Cancelling the task interrupts the query.
    func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let i = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue
        let reader = readers[i % readers.count]
        do {
            // Reads on the writer's own queue (in memory) are not interruptible: an interrupt could land
            // on a write that runs after them.
            return try await reader.run(interruptible: !isInMemory) { db in
                try db.transaction(.deferred) { try body(db) }
            }
        } catch let error as SQLiteError where error.code == .interrupt {
            throw CancellationError()
        } catch let error as SQLiteError {
            throw XeroMLError.storage(error, path: path)
        }
    }

    // MARK: Writes

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction on the writer, after every batch enqueued before.
    ///
    /// Waits at most ``lockTimeout`` for another process's write lock; cancelling the calling task
    /// stops the wait at once (the write then fails).
    func write<T: Sendable>(waitingForLock forceWait: Bool = false,
                            _ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        if isReadOnly { throw XeroMLError.readOnlyStore(path: path) }
        let cancelled = CancellationFlag()
        do {
            return try await withTaskCancellationHandler {
                try await writer.run { [self] db in
                    drain(db, abort: cancelled)
                    // After a failed write, nothing waits for a lock again: the total wait was spent.
                    let wait = forceWait || state.withLock { $0.firstFailure == nil }
                    return try waitingForLock(abort: cancelled, wait: wait) { try db.transaction(.immediate) { try body(db) } }
                }
            } onCancel: {
                cancelled.set()
                abortLockWaits()
            }
        } catch let error as SQLiteError {
            throw XeroMLError.storage(error, path: path)
        }
    }

    /// Hands a batch to the writer. Returns at once unless too many batches are waiting, in which case
    /// it waits for the writer to catch up (backpressure keeps memory bounded).
    func enqueue(_ batch: WriteBatch) async {
        if isReadOnly { refuseReadOnly(batch); return }
        enum Action { case none, schedule, wait }
        while true {
            let action: Action = state.withLock { s in
                if s.pending.count >= Self.maximumPendingBatches { return .wait }
                s.pending.append(batch)
                if s.drainScheduled { return .none }
                s.drainScheduled = true
                return .schedule
            }
            switch action {
            case .none: return
            case .schedule: scheduleDrain(); return
            case .wait:
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { s in
                        if s.pending.count < Self.maximumPendingBatches { return true }
                        s.waiters.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    /// Hands a batch to the writer without waiting (for callers that cannot suspend).
    func enqueueNow(_ batch: WriteBatch) {
        if isReadOnly { refuseReadOnly(batch); return }
        let schedule = state.withLock { s in
            s.pending.append(batch)
            if s.drainScheduled { return false }
            s.drainScheduled = true
            return true
        }
        if schedule { scheduleDrain() }
    }

    /// A batch handed to a read-only store is not written: ``flush()`` reports it.
    private func refuseReadOnly(_ batch: WriteBatch) {
        let reason = XeroMLError.readOnlyStore(path: path).message
        state.withLock { s in s.failures.append(reason) }
    }

    private func scheduleDrain() {
        writer.async { [self] db in drain(db, abort: nil) }
    }

    /// Waits until every batch enqueued before the call is committed, and tries once more the batches
    /// an earlier write could not store. Throws when some could not be written, with the reasons; the
    /// others are committed regardless.
    ///
    /// Cancelling the calling task does not drop anything: what can be written without waiting for
    /// another process's lock is written, and only the wait for a lock is cut short.
    func flush() async throws {
        let cancelled = CancellationFlag()
        let (failures, firstFailure, lost) = try await withTaskCancellationHandler {
            try await writer.run { [self] db in
                let retry = state.withLock { s in
                    defer { s.retained.removeAll() }
                    return s.retained
                }
                if !retry.isEmpty {
                    state.withLock { s in s.pending.insert(contentsOf: retry, at: 0) }
                }
                drain(db, abort: cancelled, final: true)
                return state.withLock { s in
                    defer {
                        s.failures.removeAll()
                        s.lostResults = 0
                    }
                    return (s.failures, s.firstFailure, s.lostResults)
                }
            }
        } onCancel: {
            cancelled.set()
            abortLockWaits()
        }
        if !failures.isEmpty {
            if let firstFailure, lost > 0 {
                throw XeroMLError(.writeFailed, "\(lost) result\(lost == 1 ? "" : "s") could not be stored: \(firstFailure.message)",
                                  underlying: firstFailure.underlying)
            }
            throw XeroMLError.writeFailed(failures)
        }
    }

    /// The first write that failed since writes last succeeded, if any. The runner stops scheduling
    /// new items when it is set. It stays set after results were lost (so that a status written next
    /// does not wait for the lock again) until a write succeeds or a new run starts.
    var writeFailure: XeroMLError? { state.withLock { $0.firstFailure } }

    /// Forgets a write failure whose results are all accounted for, so that a new run tries again.
    func forgetSettledFailure() {
        state.withLock { s in if s.retained.isEmpty && s.pending.isEmpty { s.firstFailure = nil } }
    }

    /// Makes every wait for another process's lock in progress give up now.
    func abortLockWaits() {
        state.withLock { $0.abortGeneration &+= 1 }
    }

    /// Commits everything pending in one transaction. Runs on the writer queue only.
    ///
    /// A batch that cannot be written because of a lock or a full disk is retained for the next
    /// ``flush()`` (which passes `final`: then it counts as lost); one that breaks a constraint is
    /// reported at once.
    private func drain(_ db: Connection, abort: CancellationFlag?, final: Bool = false) {
        let (batches, waiters) = state.withLock { s in
            defer {
                s.pending.removeAll(keepingCapacity: true)
                s.waiters.removeAll()
                s.drainScheduled = false
            }
            return (s.pending, s.waiters)
        }
        for waiter in waiters { waiter.resume() }
        guard !batches.isEmpty else { return }
        // After a failure nobody waits for a lock again until a write succeeds: one wait in total.
        let waitForLock = state.withLock { $0.firstFailure == nil }
        do {
            var refused: [WriteBatch] = []
            try waitingForLock(abort: abort, wait: waitForLock) {
                refused = []
                try db.transaction(.immediate) {
                    // Finished runs do not change: results for a run finished meanwhile (by hand, from
                    // another process) are refused, not added.
                    let finished = try Self.finishedRuns(of: batches, in: db)
                    let statements = try Inserts(db)
                    for batch in batches {
                        if let runID = batch.runID, finished.contains(runID) {
                            // Another process resuming the same run finished it with this pair done:
                            // its result stands and this one yields, as it would to any committed result.
                            if batch.yieldsToCommittedResult, try Self.pairIsCommitted(batch, in: db) { continue }
                            refused.append(batch)
                            continue
                        }
                        try insert(batch, with: statements)
                    }
                    try refreshHeartbeats(of: batches, in: db)
                }
            }
            if !refused.isEmpty {
                let runs = Set(refused.compactMap(\.runID)).sorted().joined(separator: ", ")
                state.withLock { s in
                    s.failures.append("run \(runs) was finished meanwhile; finished runs take no more results "
                                      + "(\(refused.count) result\(refused.count == 1 ? "" : "s") refused)")
                    if s.firstFailure == nil {
                        s.firstFailure = XeroMLError(.runNotWritable, "run \(runs) was finished by another process")
                    }
                }
            }
            state.withLock { s in
                s.committedBatches += batches.count
                s.committedTransactions += 1
                // Writes work again and nothing waits for a retry: the failure is over.
                if s.retained.isEmpty { s.firstFailure = nil }
            }
        } catch let error as XeroMLError {
            // Waiting for the lock ran out, or was cut short: nothing of these batches was written.
            retainOrLose(batches, error: error, final: final)
        } catch let error as SQLiteError where Self.isTransient(error) {
            retainOrLose(batches, error: XeroMLError.storage(error, path: path), final: final)
        } catch {
            // One bad batch must not sink the others: retry each alone and keep the reasons.
            var failures: [String] = []
            var committed = 0
            for batch in batches {
                do {
                    try waitingForLock(abort: abort, wait: false) { try db.transaction(.immediate) { try insert(batch, into: db) } }
                    committed += 1
                } catch let error as SQLiteError where Self.isTransient(error) {
                    retainOrLose([batch], error: XeroMLError.storage(error, path: path), final: final)
                } catch let error as XeroMLError {
                    retainOrLose([batch], error: error, final: final)
                } catch let error as SQLiteError where error.extendedCode == 2067 && error.message.contains("run_items") {
                    // SQLITE_CONSTRAINT_UNIQUE on run_items_one_result.
                    if batch.yieldsToCommittedResult {
                        logger.debug("xeroml: another writer committed this result first; keeping theirs")
                        continue
                    }
                    let item = batch.runItems.first
                    failures.append("run \(item?.runID ?? "?") already has a result for dataset item "
                                    + "\(item?.datasetItemID ?? "?") repetition \(item?.repetition ?? 0)")
                } catch {
                    // A sentence for people; SQLite's message and SQL stay in the log.
                    failures.append((error as? SQLiteError).map { Self.storageSentence($0, path: path) } ?? String(describing: error))
                    logger.error("xeroml: a result could not be written", metadata: ["error": "\(error)"])
                }
            }
            state.withLock { s in
                s.failures.append(contentsOf: failures)
                s.committedBatches += committed
                s.committedTransactions += committed
            }
        }
    }

    /// Every few seconds, the commit also refreshes the heartbeat of the runs it writes to, so a run
    /// driven item by item (not by the runner, whose ticker does it) reads as alive elsewhere.
    private func refreshHeartbeats(of batches: [WriteBatch], in db: Connection) throws {
        let now = nowMicroseconds()
        let due = state.withLock { s in
            guard now - s.lastHeartbeatUs >= Int64(RunOwner.heartbeatInterval.components.seconds) * 1_000_000 else { return false }
            s.lastHeartbeatUs = now
            return true
        }
        guard due else { return }
        for run in Set(batches.compactMap(\.runID)) {
            try db.run("UPDATE experiment_runs SET heartbeat_us = ? WHERE id = ? AND status = 'running'",
                       [.integer(now), .text(run)])
        }
    }

    static func storageSentence(_ error: SQLiteError, path: String) -> String {
        XeroMLError.storageSentence(error, path: path)
    }

    /// Whether the (dataset item, repetition) pair of `batch`'s result already has a committed result.
    static func pairIsCommitted(_ batch: WriteBatch, in db: Connection) throws -> Bool {
        guard let item = batch.runItems.first, let datasetItemID = item.datasetItemID else { return false }
        return try db.queryFirst(
            "SELECT 1 FROM run_items WHERE run_id = ? AND dataset_item_id = ? AND repetition = ?",
            [.text(item.runID), .text(datasetItemID), .integer(Int64(item.repetition))]) { _ in true } ?? false
    }

    /// The runs among those `batches` write to that are finished.
    static func finishedRuns(of batches: [WriteBatch], in db: Connection) throws -> Set<String> {
        let runs = Set(batches.compactMap(\.runID))
        var finished: Set<String> = []
        for run in runs {
            let status = try db.queryFirst("SELECT status FROM experiment_runs WHERE id = ?", [.text(run)]) { $0.text(0) }
            if status == "finished" { finished.insert(run) }
        }
        return finished
    }

    /// Whether a write that failed with `error` may succeed later: a lock, a full disk or file, an
    /// I/O error. Constraint violations and the like are not.
    static func isTransient(_ error: SQLiteError) -> Bool {
        [.busy, .locked, .full, .ioError, .cantOpen, .readOnly].contains(error.code)
    }

    /// Keeps `batches` for the next flush, or counts them as lost when this was their last try.
    private func retainOrLose(_ batches: [WriteBatch], error: XeroMLError, final: Bool) {
        let results = batches.reduce(0) { $0 + max(1, $1.runItems.count) }
        logger.error("xeroml: results could not be written", metadata: ["error": "\(error)", "results": "\(results)"])
        state.withLock { s in
            if s.firstFailure == nil { s.firstFailure = error }
            if final {
                s.failures.append(error.message)
                s.lostResults += results
            } else {
                s.retained.append(contentsOf: batches)
            }
        }
    }

    /// Runs `body`, retrying while another process holds the write lock, for at most ``lockTimeout``
    /// in total (SQLite's own busy timeout on the writer is a short slice of it). Gives up at once when
    /// `abort` is set or another caller aborts the waits (``abortLockWaits()``), and without `wait`
    /// tries only once.
    ///
    /// - Throws: ``XeroMLError/Code/locked`` when the wait ran out or was cut short.
    private func waitingForLock<T>(abort: CancellationFlag?, wait: Bool = true, _ body: () throws -> T) throws -> T {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + (wait ? lockTimeout : .zero)
        let generation = state.withLock { $0.abortGeneration }
        while true {
            do {
                return try body()
            } catch let error as SQLiteError where error.code == .busy || error.code == .locked {
                let aborted = abort?.isSet == true || state.withLock { $0.abortGeneration } != generation
                if aborted || clock.now >= deadline {
                    throw XeroMLError.locked(path: path, waited: clock.now - start, underlying: error)
                }
                logger.debug("xeroml: database locked by another connection, retrying")
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
    }

    /// Copies the write-ahead log into the main file without blocking readers or writers
    /// (`PRAGMA wal_checkpoint(PASSIVE)`), in the background: nobody waits for it. Until it has run the
    /// data is in the write-ahead log, durable all the same.
    func checkpointInBackground() {
        writer.async { db in try? db.execute("PRAGMA wal_checkpoint(PASSIVE)") }
    }

    /// Writes what is still pending when the process exits (the `exit` of a program that returned
    /// without flushing) and marks this process's runs that are still running as interrupted. Does not
    /// wait for another process's lock. Called on the exiting thread, never on the writer's.
    func drainAtExit() {
        abortLockWaits()
        let flag = CancellationFlag()
        flag.set()
        writer.sync { db in
            drain(db, abort: flag, final: true)
            let owner = RunOwner.current
            try? db.run("""
                UPDATE experiment_runs SET status = 'interrupted', finished_us = ?
                WHERE status = 'running' AND owner_host = ? AND owner_pid = ?
                """, [.integer(nowMicroseconds()), .text(owner.host), .integer(Int64(owner.processID))])
        }
    }

    /// Runs a statement on the writer connection outside any transaction (for tests: e.g.
    /// `PRAGMA max_page_count`, to make the file "full").
    func configureWriter(_ sql: String) async throws {
        try await writer.run { db in try db.execute(sql) }
    }

    /// Statistics of the writer: batches and transactions committed so far.
    var writerStatistics: (batches: Int, transactions: Int) {
        state.withLock { ($0.committedBatches, $0.committedTransactions) }
    }

    /// The writer's four insert statements, looked up in the connection's cache once per transaction
    /// rather than once per batch (the lookup hashes the whole SQL text).
    private struct Inserts {
        let trace: Statement
        let observation: Statement
        let runItem: Statement
        let score: Statement

        init(_ db: Connection) throws {
            trace = try db.cached("""
                INSERT INTO traces(id, name, kind, run_id, input, output, metadata, started_us, ended_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET output = excluded.output, metadata = excluded.metadata,
                    ended_us = excluded.ended_us
                """)
            observation = try db.cached("""
                INSERT INTO observations(id, trace_id, parent_id, kind, name, input, output, metadata, model,
                    model_parameters, prompt_tokens, completion_tokens, total_tokens, cost, level, status_message,
                    started_us, ended_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            runItem = try db.cached("""
                INSERT INTO run_items(id, run_id, dataset_item_id, repetition, input, expected_output, metadata,
                    output, error, latency_ms, attempts, generations, prompt_tokens, completion_tokens, total_tokens, cost,
                    trace_id, started_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            score = try db.cached("""
                INSERT INTO scores(id, run_id, run_item_id, trace_id, observation_id, name, data_type, value,
                    string_value, comment, source, evaluator, created_us)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        }
    }

    private func insert(_ batch: WriteBatch, into db: Connection) throws {
        try insert(batch, with: Inserts(db))
    }

    /// Inserts a batch's rows. Values are bound from one reused buffer per statement, JSON written
    /// straight into it (``Row``).
    private func insert(_ batch: WriteBatch, with statements: Inserts) throws {
        for t in batch.traces {
            try statements.trace.run { row in
                row.text(t.id); row.text(t.name); row.text(t.kind.rawValue); row.text(t.runID)
                row.json(t.input); row.json(t.output); row.json(t.metadata)
                row.integer(t.startedUs); row.integer(t.endedUs)
            }
        }
        for o in batch.observations {
            try statements.observation.run { row in
                row.text(o.id); row.text(o.traceID); row.text(o.parentID); row.text(o.kind.rawValue); row.text(o.name)
                row.json(o.input); row.json(o.output); row.json(o.metadata); row.text(o.model); row.json(o.modelParameters)
                row.integer(o.usage.promptTokens.map(Int64.init)); row.integer(o.usage.completionTokens.map(Int64.init))
                row.integer(o.usage.totalTokens.map(Int64.init))
                row.real(o.cost); row.text(o.level.rawValue); row.text(o.statusMessage)
                row.integer(o.startedUs); row.integer(o.endedUs)
            }
        }
        for r in batch.runItems {
            try statements.runItem.run { row in
                row.text(r.id); row.text(r.runID); row.text(r.datasetItemID); row.integer(Int64(r.repetition))
                row.json(r.input); row.json(r.expectedOutput); row.json(r.metadata); row.json(r.output); row.text(r.error)
                row.real(r.latencyMs); row.integer(Int64(r.attempts)); row.integer(Int64(r.usage.generations))
                row.integer(Int64(r.usage.promptTokens)); row.integer(Int64(r.usage.completionTokens))
                row.integer(Int64(r.usage.totalTokens)); row.real(r.usage.pricedGenerations > 0 ? r.usage.cost : nil)
                row.text(r.traceID); row.integer(r.startedUs)
            }
        }
        for s in batch.scores {
            try statements.score.run { row in
                row.text(s.id); row.text(s.runID); row.text(s.runItemID); row.text(s.traceID); row.text(s.observationID)
                row.text(s.name); row.text(s.value.dataType); row.real(s.value.numericValue); row.text(s.value.stringValue)
                row.text(s.comment); row.text(s.source.rawValue); row.text(s.evaluator); row.integer(s.createdUs)
            }
        }
    }
}

extension Row {
    /// Appends a JSON value as compact text written straight into the row's buffer, or NULL.
    func json(_ value: JSONValue?) {
        guard let value else { return null() }
        text { value.write(to: &$0) }
    }
}

/// The stores open in this process, weakly, so that what they hold is written when the process exits
/// normally (`atexit`), as a program that forgot ``XeroML/flush()`` expects.
enum OpenStores {
    private final class Weak: @unchecked Sendable {
        // Written once at registration, read at exit under the registry's lock.
        weak var store: Store?
        init(_ store: Store) { self.store = store }
    }
    private static let registry = Mutex<[Weak]>([])
    private static let installed = Atomic<Bool>(false)

    static func register(_ store: Store) {
        registry.withLock { list in
            list.removeAll { $0.store == nil }
            list.append(Weak(store))
        }
        if !installed.exchange(true, ordering: .relaxed) {
            atexit { OpenStores.drainAll() }
        }
    }

    static func drainAll() {
        let stores = registry.withLock { $0.compactMap(\.store) }
        for store in stores { store.drainAtExit() }
    }
}
