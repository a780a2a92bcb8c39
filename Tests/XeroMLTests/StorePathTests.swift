import Foundation
import Testing
@testable import XeroML
import XeroMLSQLite

/// Paths a store can be opened on: in memory, read-only, and paths that are refused.
@Suite(.timeLimit(.minutes(1))) struct StorePathTests {
    /// `:memory:` used to give each connection its own empty database, so the first read after a write
    /// failed with "no such table". Now one connection serves both, end to end.
    @Test(arguments: [":memory:", "file::memory:", "file:evals?mode=memory"])
    func anInMemoryStoreImportsRunsAndReadsResults(path: String) async throws {
        let xeroml = try XeroML(path: path)
        let file = writeFile("qa.jsonl", """
            {"id": "1", "input": "2 + 2", "expected_output": "4"}
            {"id": "2", "input": "3 + 3", "expected_output": "6"}
            """)
        let imported = try await xeroml.importDataset(name: "qa", from: file)
        #expect(imported.created == 2)
        let report = try await xeroml.runExperiment(name: "calc", datasetName: "qa") { run in
            run.setOutput(run.input == "2 + 2" ? "4" : "7")
            run.score(name: "exact", value: run.output == run.expectedOutput)
        }
        #expect(report.run.status == .finished)
        let results = try await xeroml.results(runID: report.run.id)
        #expect(results.count == 2)
        #expect(results.summary.score("exact")?.mean == 0.5)
        let runs = try await xeroml.runs(datasetName: "qa")
        #expect(runs.map(\.name) == ["calc"] && runs[0].status == .finished && runs[0].itemCount == 2)
        #expect(try await xeroml.summary(runID: runs[0].id).itemCount == 2)
        // Nothing was written next to the working directory under that name.
        #expect(!FileManager.default.fileExists(atPath: path))
        // A second client on ":memory:" is a different, empty store.
        #expect(try await XeroML(path: path).datasets().isEmpty)
    }

    @Test func anEmptyPathIsRefused() throws {
        do {
            _ = try XeroML(path: "")
            Issue.record("an empty path must be refused")
        } catch let error as XeroMLError {
            #expect(error.code == .invalidArgument)
            #expect(error.localizedDescription.contains("the store path is empty"))
        }
    }

    @Test func inMemoryPathsAreRecognised() {
        for path in [":memory:", "file::memory:", "file::memory:?cache=shared", "file:x?mode=memory&cache=shared"] {
            #expect(XeroML.isInMemory(path: path), "\(path)")
        }
        for path in ["memory.sqlite", "file:x.sqlite", "file:x.sqlite?mode=ro", "./:memory:"] {
            #expect(!XeroML.isInMemory(path: path), "\(path)")
        }
    }

    // MARK: Read-only

    @Test func aReadOnlyOpeningNeverCreatesAFile() throws {
        let dir = temporaryDirectory()
        let path = dir.appendingPathComponent("typo.sqlite").path
        do {
            _ = try XeroML(path: path, readOnly: true)
            Issue.record("a missing store must be refused")
        } catch let error as XeroMLError {
            #expect(error.code == .storeNotFound)
            #expect(error.message == "no store at \(path): the file does not exist")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func aReadOnlyClientReadsAndRefusesWrites() async throws {
        let path = temporaryDirectory().appendingPathComponent("ro.sqlite").path
        let writer = try XeroML(path: path)
        try await writer.importDataset(name: "d", from: writeFile("d.jsonl", "{\"input\": 1}\n"))
        let reader = try await XeroML.open(path: path, readOnly: true)
        #expect(reader.isReadOnly && !writer.isReadOnly)
        #expect(try await reader.dataset(named: "d").items.count == 1)
        #expect(try await XeroML(path: "file:\(path)?mode=ro", readOnly: true).datasets().map(\.name) == ["d"])
        do {
            try await reader.createDataset(name: "e")
            Issue.record("a read-only client must refuse writes")
        } catch let error as XeroMLError {
            #expect(error.code == .readOnlyStore)
            #expect(error.message.contains("opened it read-only"))
        }
        // Results handed to the writer's queue (here by a top-level trace) are refused and reported.
        _ = await reader.withActive { await observe("t") { _ in 1 } }
        do {
            try await reader.flush()
            Issue.record("flush must report what a read-only client could not write")
        } catch let error as XeroMLError {
            #expect(error.code == .writeFailed)
            #expect(error.message.contains("opened it read-only"))
        }
        // What the writer adds later is visible to the reader.
        try await writer.createDataset(name: "later")
        #expect(try await reader.datasets().map(\.name).sorted() == ["d", "later"])
    }

    /// No migration and no switch to WAL: a file in rollback-journal mode (a `VACUUM INTO` copy) stays
    /// byte for byte the same after a read-only opening.
    @Test func aReadOnlyOpeningChangesNothingInTheFile() async throws {
        let dir = temporaryDirectory()
        let original = dir.appendingPathComponent("a.sqlite").path
        let writer = try XeroML(path: original)
        try await writer.createDataset(name: "d")
        let copy = dir.appendingPathComponent("copy.sqlite").path
        let db = try Connection(path: original)
        try db.execute("VACUUM INTO '\(copy)'")
        db.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let reader = try XeroML(path: copy, readOnly: true)
        #expect(try await reader.datasets().map(\.name) == ["d"])
        let check = try Connection(path: copy, mode: .readOnly)
        #expect(try check.queryFirst("PRAGMA journal_mode") { $0.text(0) } == "delete")
        check.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
    }

    @Test func aStoreThatNeedsAMigrationIsAClearErrorReadOnly() async throws {
        let path = temporaryDirectory().appendingPathComponent("old.sqlite").path
        _ = try XeroML(path: path)
        let db = try Connection(path: path)
        try db.execute("DELETE FROM xeroml_migrations WHERE name = '0002-cache'; DROP TABLE cache_entries")
        db.close()
        do {
            _ = try XeroML(path: path, readOnly: true)
            Issue.record("a store needing a migration must be refused read-only")
        } catch let error as XeroMLError {
            #expect(error.code == .needsMigration)
            #expect(error.message.contains("needs an upgrade (0002-cache)"))
            #expect(error.message.contains("xeroml migrate --db \(path)"))
        }
        // Opening it for writing upgrades it; then it opens read-only.
        _ = try XeroML(path: path)
        #expect(try XeroML(path: path, readOnly: true).isReadOnly)
    }

    @Test func readOnlyOpeningsRefuseWhatTheWriterRefuses() throws {
        let dir = temporaryDirectory()
        let newer = dir.appendingPathComponent("newer.sqlite").path
        _ = try XeroML(path: newer)
        let db = try Connection(path: newer)
        try db.run("INSERT INTO xeroml_migrations(name) VALUES ('9999-from-the-future')")
        db.close()
        #expect(throws: XeroMLError.self) { try XeroML(path: newer, readOnly: true) }
        do { _ = try XeroML(path: newer, readOnly: true) } catch let error as XeroMLError {
            #expect(error.code == .newerSchema)
        }

        let other = dir.appendingPathComponent("other.sqlite").path
        let foreign = try Connection(path: other)
        try foreign.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        foreign.close()
        do { _ = try XeroML(path: other, readOnly: true) } catch let error as XeroMLError {
            #expect(error.code == .notAXeroMLFile)
        }

        let empty = writeFile("empty.sqlite", "", in: dir)
        do { _ = try XeroML(path: empty, readOnly: true) } catch let error as XeroMLError {
            #expect(error.code == .storeNotFound)
            #expect(error.message.hasSuffix("the file is empty"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: empty)).isEmpty)
    }

    @Test func immutableURIsEscapeReservedCharacters() {
        #expect(Store.immutableURI("/tmp/a b/x.sqlite") == "file:/tmp/a b/x.sqlite?mode=ro&immutable=1")
        #expect(Store.immutableURI("/tmp/50%?#.sqlite") == "file:/tmp/50%25%3F%23.sqlite?mode=ro&immutable=1")
    }
}

/// Errors read like errors: a sentence saying what failed, where, and what to do; never Foundation's
/// "The operation could not be completed", and no SQL text outside the technical details.
@Suite(.timeLimit(.minutes(1))) struct ErrorDescriptionTests {
    /// A real SQLITE_FULL (the file capped with `max_page_count`): the sentence says the disk is full
    /// and names the file; the SQL stays in the details.
    @Test func aFullDiskReadsAsASentenceWithoutSQL() throws {
        let path = temporaryDirectory().appendingPathComponent("full.sqlite").path
        let db = try Connection(path: path)
        try db.execute("CREATE TABLE t(x TEXT)")
        let pages = try db.queryFirst("PRAGMA page_count") { $0.int(0) } ?? 1
        try db.execute("PRAGMA max_page_count = \(pages + 1)")
        var full: SQLiteError?
        for _ in 0..<100 {
            do { try db.run("INSERT INTO t VALUES (?)", [.text(String(repeating: "x", count: 4_000))]) }
            catch { full = error; break }
        }
        let error = try #require(full)
        #expect(error.code == .full)
        #expect(error.localizedDescription == "the disk is full (or the database reached its size limit)")
        let storage = XeroMLError.storage(error, path: path)
        #expect(storage.localizedDescription.hasPrefix("cannot write to \(path): the disk is full"))
        #expect(!storage.localizedDescription.contains("INSERT"))
        #expect(storage.technicalDetails?.contains("INSERT INTO t VALUES") == true)
    }

    @Test func aLockedFileSaysAnotherProcessHoldsIt() throws {
        let path = temporaryDirectory().appendingPathComponent("locked.sqlite").path
        let holder = try Connection(path: path)
        try holder.execute("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
        let other = try Connection(path: path, busyTimeoutMilliseconds: 1)
        #expect(throws: SQLiteError.self) { try other.execute("BEGIN IMMEDIATE") }
        do { try other.execute("BEGIN IMMEDIATE") } catch {
            #expect(error.code == .busy)
            #expect(XeroMLError.storage(error, path: path).localizedDescription
                .hasPrefix("\(path) is locked by another process"))
        }
        try holder.execute("ROLLBACK")
    }

    @Test func everyErrorTypeHasADescription() throws {
        var errors: [any Error] = [
            XeroMLError.notFound("dataset \"x\""),
            MigrationError.newerSchema(unknown: ["9999-x"]),
            RateLimitError(retryAfter: .seconds(2)),
            TransientError("connection reset"),
            TaskTimeoutError(timeout: .seconds(3)),
        ]
        do { _ = try JSONValue(parsing: "{\"a\": 1e999}") } catch { errors.append(error) }
        let db = try Connection(path: ":memory:")
        do { try db.execute("SELECT * FROM nowhere") } catch { errors.append(error) }
        #expect(errors.count == 7)
        for error in errors {
            let text = error.localizedDescription
            #expect(!text.contains("could not be completed"), "\(type(of: error)): \(text)")
            #expect(!text.isEmpty)
            #expect(!text.contains("SELECT"), "\(text)")
        }
        #expect(errors[5].localizedDescription == "invalid JSON at line 1, column 7: number 1e999 is too large for a 64-bit floating-point value (at most ±1.8e308)")
        #expect(errors[6].localizedDescription == "no such table: nowhere")
    }
}
