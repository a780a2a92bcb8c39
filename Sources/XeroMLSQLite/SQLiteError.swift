import XeroMLCSQLite

/// An error reported by SQLite, or by this layer on SQLite's behalf.
///
/// Every non-OK result code from the C API becomes one `SQLiteError`, carrying the primary result
/// code, the extended code, SQLite's message and the SQL that failed. Bound values are never part of
/// the description, so errors can be logged without leaking user data.
///
/// Match on the code in `catch` clauses:
///
/// ```swift
/// do { try connection.execute("…") }
/// catch let error as SQLiteError where error.code == .constraint { … }
/// ```
///
/// ## Topics
/// ### Inspecting the error
/// - ``code``
/// - ``extendedCode``
/// - ``message``
/// - ``sql``
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A primary SQLite result code (https://www.sqlite.org/rescode.html).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let error = Code(rawValue: SQLITE_ERROR)
        public static let internalError = Code(rawValue: SQLITE_INTERNAL)
        public static let permission = Code(rawValue: SQLITE_PERM)
        public static let abort = Code(rawValue: SQLITE_ABORT)
        public static let busy = Code(rawValue: SQLITE_BUSY)
        public static let locked = Code(rawValue: SQLITE_LOCKED)
        public static let noMemory = Code(rawValue: SQLITE_NOMEM)
        public static let readOnly = Code(rawValue: SQLITE_READONLY)
        public static let interrupt = Code(rawValue: SQLITE_INTERRUPT)
        public static let ioError = Code(rawValue: SQLITE_IOERR)
        public static let corrupt = Code(rawValue: SQLITE_CORRUPT)
        public static let full = Code(rawValue: SQLITE_FULL)
        public static let cantOpen = Code(rawValue: SQLITE_CANTOPEN)
        public static let schema = Code(rawValue: SQLITE_SCHEMA)
        public static let constraint = Code(rawValue: SQLITE_CONSTRAINT)
        public static let mismatch = Code(rawValue: SQLITE_MISMATCH)
        public static let misuse = Code(rawValue: SQLITE_MISUSE)
        public static let range = Code(rawValue: SQLITE_RANGE)
        public static let notADatabase = Code(rawValue: SQLITE_NOTADB)

        public var description: String {
            String(cString: sqlite3_errstr(rawValue))
        }
    }

    /// The primary result code (the low byte of ``extendedCode``).
    public var code: Code { Code(rawValue: extendedCode & 0xFF) }
    /// The extended result code, e.g. `SQLITE_CONSTRAINT_UNIQUE`.
    public var extendedCode: Int32
    /// SQLite's own explanation (`sqlite3_errmsg`), or this layer's.
    public var message: String
    /// The statement that failed, when there was one.
    public var sql: String?

    public init(extendedCode: Int32, message: String, sql: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    /// A short form without the SQL: "SQLite error 19 (constraint failed): UNIQUE constraint failed: …".
    public var shortDescription: String {
        "SQLite error \(extendedCode) (\(code)): \(message)"
    }

    public var description: String {
        if let sql { return "\(shortDescription) — while executing `\(sql)`" }
        return shortDescription
    }
}
