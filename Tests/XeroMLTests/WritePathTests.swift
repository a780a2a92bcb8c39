import Foundation
import Testing
import XeroMLSQLite
@testable import XeroML

@Suite struct WritePathTests {
    /// A file as the first released schema left it: migrations 0001–0003 only.
    func storeBeforeWritePath() throws -> String {
        let path = temporaryDirectory().appendingPathComponent("old.sqlite").path
        let db = try Connection(path: path)
        var old = Migrator()
        for migration in Schema.migrator.migrations where migration.name < "0004" { old.register(migration) }
        try old.migrate(db)
        try db.execute("""
            INSERT INTO experiment_runs(id, name, status, created_us) VALUES ('r1', 'old', 'finished', 1);
            INSERT INTO traces(id, name, kind, run_id, started_us) VALUES ('t1', 'item', 'item', 'r1', 1);
            INSERT INTO observations(id, trace_id, kind, name, level, started_us) VALUES ('o1', 't1', 'span', 's', 'warning', 1);
            INSERT INTO scores(id, run_id, trace_id, name, data_type, value, source, created_us)
                VALUES ('s1', 'r1', 't1', 'ok', 'boolean', 1, 'judge', 1);
            """)
        db.close()
        return path
    }

    @Test func checksTestListsWithComparisonsInNewAndMigratedStores() async throws {
        let migrated = try storeBeforeWritePath()
        let fresh = temporaryDirectory().appendingPathComponent("new.sqlite").path
        for path in [migrated, fresh] {
            _ = try XeroML(path: path)
            let db = try Connection(path: path)
            let definitions = try db.query("SELECT sql FROM sqlite_schema WHERE type = 'table'") { $0.text(0) ?? "" }
            for check in Schema.equivalentChecks {
                #expect(!definitions.contains { $0.contains(check.from) }, "\(check.table) still has \(check.from)")
                #expect(definitions.contains { $0.contains(check.to) }, "\(check.table) lacks \(check.to)")
            }
            #expect(try db.queryFirst("PRAGMA integrity_check") { $0.text(0) } == "ok")
            // The same values are accepted and refused as before.
            try db.execute("""
                INSERT INTO experiment_runs(id, name, status, created_us) VALUES ('r2', 'new', 'interrupted', 1);
                INSERT INTO traces(id, name, kind, run_id, started_us) VALUES ('t2', 'eval', 'evaluation', 'r2', 1);
                INSERT INTO observations(id, trace_id, kind, name, level, started_us) VALUES ('o2', 't2', 'event', 'e', 'debug', 1);
                INSERT INTO scores(id, run_id, trace_id, name, data_type, string_value, source, created_us)
                    VALUES ('s2', 'r2', 't2', 'label', 'categorical', 'a', 'human', 1);
                """)
            let refused = [
                "INSERT INTO experiment_runs(id, name, status, created_us) VALUES ('r3', 'bad', 'paused', 1)",
                "INSERT INTO traces(id, name, kind, started_us) VALUES ('t3', 'bad', 'span', 1)",
                "INSERT INTO observations(id, trace_id, kind, name, started_us) VALUES ('o3', 't2', 'trace', 'bad', 1)",
                "INSERT INTO observations(id, trace_id, kind, name, level, started_us) VALUES ('o4', 't2', 'span', 'bad', 'info', 1)",
                "INSERT INTO scores(id, trace_id, name, data_type, created_us) VALUES ('s3', 't2', 'bad', 'integer', 1)",
                "INSERT INTO scores(id, trace_id, name, data_type, source, created_us) VALUES ('s4', 't2', 'bad', 'numeric', 'robot', 1)",
            ]
            for sql in refused {
                #expect(throws: SQLiteError.self, "\(sql)") { try db.execute(sql) }
            }
            db.close()
        }
        // The rows written before the migration read back through the API.
        let client = try XeroML(path: migrated)
        let trace = try #require(try await client.trace(id: "t1"))
        #expect(trace.observations.first?.level == .warning)
        #expect(trace.scores.first?.source == .judge)
    }

    @Test func idsAreFormattedFromTheirBitsWithTheTimeVersionAndVariantInPlace() throws {
        #expect(UUIDv7.format(bits: 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210) == "01234567-89ab-cdef-fedc-ba9876543210")
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = UUIDv7.make()
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        let bits = try #require(id.utf8.withContiguousStorageIfAvailable { UUIDv7.bits($0) } ?? nil)
        #expect(UUIDv7.format(bits: bits) == id)
        let millis = UInt64(truncatingIfNeeded: bits >> 80)
        #expect(millis >= before && millis <= after + 1)  // +1: a counter overflow borrows the next millisecond
        #expect((bits >> 76) & 0xF == 7)  // version
        #expect((bits >> 62) & 0x3 == 0b10)  // variant
    }
}
