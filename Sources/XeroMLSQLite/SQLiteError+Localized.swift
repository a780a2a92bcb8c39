#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension SQLiteError: LocalizedError {
    /// What went wrong in plain words, without the SQL text or the numeric codes (those are in
    /// ``description``, for logs and `--verbose` output).
    ///
    /// For example "the disk is full", "the database is locked by another process", or, for
    /// constraint and other errors, SQLite's own message ("UNIQUE constraint failed: datasets.name").
    public var errorDescription: String? { explanation }

    /// ``errorDescription`` as a non-optional string.
    public var explanation: String {
        switch code {
        case .full: "the disk is full (or the database reached its size limit)"
        case .busy: "the database is locked by another process"
        case .locked: "the database is locked by another connection"
        case .readOnly:
            // SQLITE_READONLY_CANTINIT (8 | 5 << 8) and SQLITE_READONLY_DIRECTORY (8 | 6 << 8).
            extendedCode == 1288 || extendedCode == 1544
                ? "the database is read-only and its directory cannot be written"
                : "the database is read-only (the file or its directory cannot be written)"
        case .cantOpen: "the file cannot be opened (a missing directory, or no permission)"
        case .permission: "access to the file was denied"
        case .ioError: "a disk input/output error occurred (\(message))"
        case .corrupt: "the database file is damaged (\(message))"
        case .notADatabase: "the file is not an SQLite database"
        case .interrupt: "the operation was interrupted"
        case .noMemory: "SQLite ran out of memory"
        default: message
        }
    }
}

extension MigrationError: LocalizedError {
    /// The same sentence as ``description``: which migrations are unknown, and to upgrade XeroML.
    public var errorDescription: String? { description }
}
