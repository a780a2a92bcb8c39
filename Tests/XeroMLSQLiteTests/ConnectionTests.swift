import Dispatch
import Foundation
import Synchronization
import Testing
import XeroMLSQLite

func temporaryPath(_ name: String = "test.sqlite") -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-sqlite-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

@Suite struct ConnectionTests {
    @Test func configuresEveryConnectionAtOpen() throws {
        let db = try Connection(path: temporaryPath())
        #expect(try db.queryFirst("PRAGMA journal_mode") { $0.text(0) } == "wal")
        #expect(try db.queryFirst("PRAGMA synchronous") { $0.int(0) } == 1)  // NORMAL
        #expect(try db.queryFirst("PRAGMA foreign_keys") { $0.int(0) } == 1)
        #expect(try db.queryFirst("PRAGMA busy_timeout") { $0.int(0) } == 5_000)
        // Double-quoted string literals are identifiers only.
        #expect(throws: SQLiteError.self) { try db.execute("SELECT \"no such column\"") }
    }

    @Test func reportsTypedErrorsWithTheSQL() throws {
        let db = try Connection(path: temporaryPath())
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT")
        try db.run("INSERT INTO t(name) VALUES (?)", ["a"])
        do {
            try db.run("INSERT INTO t(name) VALUES (?)", ["a"])
            Issue.record("expected a constraint error")
        } catch {
            #expect(error.code == .constraint)
            #expect(error.extendedCode == 2067)  // SQLITE_CONSTRAINT_UNIQUE
            #expect(error.message.contains("UNIQUE"))
            #expect(error.sql == "INSERT INTO t(name) VALUES (?)")
            #expect(!error.description.contains("\"a\""))  // bound values never printed
        }
        #expect(throws: SQLiteError.self) { try db.prepare("SELEKT 1") }
        do { _ = try db.prepare("SELEKT 1") } catch { #expect(error.code == .error && error.sql == "SELEKT 1") }
    }

    @Test func bindsAndReadsEveryStorageClass() throws {
        let db = try Connection(path: temporaryPath())
        try db.execute("CREATE TABLE v (a ANY, b ANY, c ANY, d ANY, e ANY) STRICT")
        try db.run("INSERT INTO v VALUES (?, ?, ?, ?, ?)", [.null, .integer(42), .real(2.5), .text("héllo"), .blob([0, 1, 255])])
        let row = try db.queryFirst("SELECT a, b, c, d, e FROM v") { s in (0..<5).map { s.value($0) } }
        #expect(row == [.null, .integer(42), .real(2.5), .text("héllo"), .blob([0, 1, 255])])
        #expect(throws: SQLiteError.self) { try db.run("INSERT INTO v VALUES (?, ?)", [1, 2]) }
    }

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        struct Boom: Error {}
        let db = try Connection(path: temporaryPath())
        try db.execute("CREATE TABLE t (x INTEGER) STRICT")
        #expect(throws: Boom.self) {
            try db.transaction { try db.run("INSERT INTO t VALUES (1)"); throw Boom() }
        }
        #expect(try db.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 0)
        #expect(!db.isInTransaction)
        try db.transaction { try db.run("INSERT INTO t VALUES (1)") }
        #expect(try db.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 1)
    }

    @Test func refusesToOpenAMissingFileReadOnly() {
        #expect(throws: SQLiteError.self) { try Connection(path: "/nonexistent-dir/x.sqlite", mode: .readOnly) }
    }
}

@Suite struct MigratorTests {
    @Test func appliesPendingMigrationsOnceAndInOrder() throws {
        let path = temporaryPath()
        var migrator = Migrator()
        migrator.register(Migration("1-a", sql: "CREATE TABLE a (x INTEGER) STRICT"))
        migrator.register(Migration("2-b", sql: "CREATE TABLE b (x INTEGER) STRICT"))
        let db = try Connection(path: path)
        #expect(try migrator.migrate(db) == ["1-a", "2-b"])
        #expect(try migrator.migrate(db) == [])
        migrator.register(Migration("3-c", sql: "CREATE TABLE c (x INTEGER) STRICT"))
        #expect(try migrator.migrate(db) == ["3-c"])
        #expect(try migrator.appliedMigrations(db) == ["1-a", "2-b", "3-c"])
    }

    @Test func aFailingMigrationLeavesNoTrace() throws {
        var migrator = Migrator()
        migrator.register(Migration("1-ok", sql: "CREATE TABLE a (x INTEGER) STRICT"))
        migrator.register(Migration("2-bad", sql: "CREATE TABLE b (x INTEGER) STRICT; INSERT INTO nope VALUES (1)"))
        let db = try Connection(path: temporaryPath())
        #expect(throws: SQLiteError.self) { try migrator.migrate(db) }
        #expect(try migrator.appliedMigrations(db) == ["1-ok"])
        #expect(try db.queryFirst("SELECT count(*) FROM sqlite_master WHERE name = 'b'") { $0.int(0) } == 0)
    }

    @Test func refusesAFileFromANewerSchema() throws {
        let path = temporaryPath()
        var newer = Migrator()
        newer.register(Migration("1-a", sql: "CREATE TABLE a (x INTEGER) STRICT"))
        newer.register(Migration("2-future", sql: "CREATE TABLE f (x INTEGER) STRICT"))
        try newer.migrate(Connection(path: path))
        var older = Migrator()
        older.register(Migration("1-a", sql: "CREATE TABLE a (x INTEGER) STRICT"))
        #expect(throws: MigrationError.newerSchema(unknown: ["2-future"])) { try older.migrate(Connection(path: path)) }
    }
}

@Suite struct DatabaseQueueTests {
    @Test func blockingBodiesDoNotStarveTheCooperativePool() async throws {
        // Four bodies per core each block their thread for 2 s. The cooperative pool has one thread
        // per core: had the bodies run there, no more than one per core would block at a time. On
        // their own queues' threads they overlap. Counting the bodies blocked at once measures the
        // overlap itself, which a loaded machine does not change (sleeping needs no CPU; the whole
        // call's time, or the spread of start times, moves with the load).
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let count = 4 * cores
        let queues = try (0..<count).map { _ in try DatabaseQueue(path: temporaryPath()) }
        let blocked = BlockedBodies()
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for queue in queues {
                group.addTask {
                    try await queue.run { db in
                        blocked.count.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                        usleep(2_000_000)
                        blocked.count.withLock { $0.now -= 1 }
                        return try db.queryFirst("SELECT 1") { $0.int(0) } ?? 0
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results == Array(repeating: 1, count: count))
        let peak = blocked.count.withLock { $0.peak }
        #expect(peak > cores, "at most \(peak) bodies blocked at once on \(cores) cores")
        let value = try await queues[0].run { db in try db.queryFirst("SELECT 6 * 7") { $0.int(0) } }
        #expect(value == 42)
    }

    @Test(.timeLimit(.minutes(1))) func cancellationInterruptsARunningQuery() async throws {
        let queue = try DatabaseQueue(path: temporaryPath())
        let task = Task {
            try await queue.run(interruptible: true) { db in
                try countToTenBillion(db)
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("the query should have been interrupted")
        } catch let error as SQLiteError {
            #expect(error.code == .interrupt)
        }
        // Uninterrupted, the count would run for hours; the bound leaves room for a machine loaded by
        // the rest of the suite (2.17 s was seen under a full parallel run).
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    @Test(.timeLimit(.minutes(1))) func cancellationBeforeTheQueryStartsIsNotMissed() async throws {
        let queue = try DatabaseQueue(path: temporaryPath())
        // Keep the queue busy, so the query below is still waiting when it is cancelled.
        async let busy: Void = queue.run { _ in usleep(300_000) }
        let task = Task {
            try await queue.run(interruptible: true) { db in
                try countToTenBillion(db)
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let start = ContinuousClock.now
        do {
            _ = try await task.value
            Issue.record("the query should have been stopped")
        } catch let error as SQLiteError {
            #expect(error.code == .interrupt)
        }
        // Uncancelled, the count would run for hours; room for a loaded machine.
        #expect(ContinuousClock.now - start < .seconds(30))
        try await busy
    }
}

/// How many bodies block at once, and the most that ever did.
final class BlockedBodies: Sendable {
    let count = Mutex((now: 0, peak: 0))
}

/// A query that counts for minutes unless it is stopped.
func countToTenBillion(_ db: Connection) throws -> Int? {
    try db.queryFirst("""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000000)
        SELECT count(*) FROM n
        """) { $0.int(0) }
}
