import XeroMLCSQLite

/// The values of one row for a prepared statement, gathered into one reusable byte buffer and bound
/// without per-value copies.
///
/// Text is appended to the buffer (JSON can be written into it directly with ``text(writing:)``), then
/// every value is bound at once with `SQLITE_STATIC`, which is safe because the buffer outlives the
/// step: SQLite reads the bytes while stepping and the statement is reset before the buffer changes
/// (https://www.sqlite.org/c3ref/bind_blob.html). Compared with ``Statement/run(_:)``, a row makes no
/// array of ``SQLValue``s, no C string per text value, and SQLite makes no private copy of each text.
///
/// Obtain one through ``Statement/run(row:)``; values are appended in parameter order. A row belongs to
/// its statement and is valid only inside the closure it is handed to.
public final class Row {
    enum Slot {
        case null
        case integer(Int64)
        case real(Double)
        case text(offset: Int, count: Int)
    }
    var bytes: [UInt8] = []
    var slots: [Slot] = []

    init() {
        bytes.reserveCapacity(1024)
        slots.reserveCapacity(32)
    }

    func clear() {
        bytes.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
    }

    /// Appends NULL.
    public func null() { slots.append(.null) }
    /// Appends an integer.
    public func integer(_ value: Int64) { slots.append(.integer(value)) }
    /// Appends an integer, or NULL.
    public func integer(_ value: Int64?) { slots.append(value.map(Slot.integer) ?? .null) }
    /// Appends a floating-point value, or NULL.
    public func real(_ value: Double?) { slots.append(value.map(Slot.real) ?? .null) }
    /// Appends text, or NULL.
    public func text(_ value: String?) {
        guard let value else { return slots.append(.null) }
        let offset = bytes.count
        bytes.append(contentsOf: value.utf8)
        slots.append(.text(offset: offset, count: bytes.count - offset))
    }
    /// Appends text that `write` produces as UTF-8 straight into the row's buffer.
    public func text(writing write: (inout [UInt8]) -> Void) {
        let offset = bytes.count
        write(&bytes)
        slots.append(.text(offset: offset, count: bytes.count - offset))
    }
}

@available(*, unavailable)
extension Row: Sendable {}

extension Statement {
    /// Binds the values `fill` appends to a ``Row`` (in parameter order), steps to completion and resets:
    /// for INSERT, UPDATE and DELETE run many times in a row. The row's buffer is kept for the next call.
    public func run(row fill: (Row) throws -> Void) throws {
        let row: Row
        if let existing = rowBuffer { row = existing } else { row = Row(); rowBuffer = row }
        row.clear()
        try fill(row)
        try bindAndRun(row)
    }

    private func bindAndRun(_ row: Row) throws(SQLiteError) {
        guard row.slots.count == parameterCount else {
            throw SQLiteError(
                extendedCode: SQLITE_RANGE,
                message: "statement has \(parameterCount) parameters, \(row.slots.count) values given",
                sql: sql)
        }
        let result: Int32 = row.bytes.withUnsafeBufferPointer { buffer in
            // Empty text needs a non-null pointer too (a null one would bind NULL): any valid address does.
            let base = UnsafeRawPointer(buffer.baseAddress ?? Self.emptyText.utf8Start)
            for (offset, slot) in row.slots.enumerated() {
                let i = Int32(offset + 1)
                let rc: Int32
                switch slot {
                case .null: rc = sqlite3_bind_null(handle, i)
                case .integer(let v): rc = sqlite3_bind_int64(handle, i, v)
                case .real(let v): rc = sqlite3_bind_double(handle, i, v)
                case .text(let start, let count):
                    rc = sqlite3_bind_text(handle, i, (base + start).assumingMemoryBound(to: CChar.self), Int32(count), nil)
                }
                if rc != SQLITE_OK { return rc }
            }
            var rc = sqlite3_step(handle)
            while rc == SQLITE_ROW { rc = sqlite3_step(handle) }
            return rc == SQLITE_DONE ? SQLITE_OK : rc
        }
        guard result == SQLITE_OK else {
            let error = connection.error(result, sql: sql)
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            throw error
        }
        sqlite3_reset(handle)
        // The bound pointers are into the row's buffer, which changes after this call.
        sqlite3_clear_bindings(handle)
    }

    private static let emptyText: StaticString = ""
}
