import Testing
import XeroMLSQLite

@Suite struct RowTests {
    @Test func bindsEveryKindOfValueFromOneReusedBuffer() throws {
        let db = try Connection(path: temporaryPath())
        try db.execute("CREATE TABLE t (n INTEGER, i INTEGER, r REAL, s TEXT, e TEXT, j TEXT, u TEXT) STRICT")
        let insert = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)")
        for k in 0..<3 {
            try insert.run { row in
                row.null()
                row.integer(Int64(k))
                row.real(k == 1 ? nil : Double(k) + 0.5)
                row.text("text \(k) with more than a few bytes, so that the buffer grows")
                row.text("")
                row.text { $0.append(contentsOf: #"{"k":\#(k)}"#.utf8) }
                row.text(k == 2 ? nil : "héllo \(k)")
            }
        }
        let rows = try db.query("SELECT n, i, r, s, e, j, u FROM t ORDER BY i") { s in
            [s.value(0), s.value(1), s.value(2), s.value(3), s.value(4), s.value(5), s.value(6)]
        }
        #expect(rows.count == 3)
        for (k, row) in rows.enumerated() {
            #expect(row[0] == .null)
            #expect(row[1] == .integer(Int64(k)))
            #expect(row[2] == (k == 1 ? .null : .real(Double(k) + 0.5)))
            #expect(row[3] == .text("text \(k) with more than a few bytes, so that the buffer grows"))
            #expect(row[4] == .text(""))  // empty text, not NULL
            #expect(row[5] == .text(#"{"k":\#(k)}"#))
            #expect(row[6] == (k == 2 ? .null : .text("héllo \(k)")))
        }
    }

    @Test func refusesAWrongNumberOfValuesAndReportsConstraintErrors() throws {
        let db = try Connection(path: temporaryPath())
        try db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER NOT NULL) STRICT")
        let insert = try db.prepare("INSERT INTO t VALUES (?, ?)")
        #expect(throws: SQLiteError.self) { try insert.run { row in row.text("a") } }
        try insert.run { row in row.text("a"); row.integer(1) }
        do {
            try insert.run { row in row.text("a"); row.integer(2) }
            Issue.record("expected a constraint error")
        } catch let error as SQLiteError {
            #expect(error.code == .constraint)
        }
        // The statement is usable after the failure.
        try insert.run { row in row.text("b"); row.integer(3) }
        #expect(try db.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 2)
    }
}
