public import Foundation
public import XeroMLSQLite

/// An error from XeroML. Match on ``code``:
///
/// ```swift
/// catch let error as XeroMLError where error.code == .importFailed { … }
/// ```
///
/// A struct wrapping a code rather than an enum, so new kinds of error are not breaking changes.
///
/// ``message`` (also ``errorDescription`` and `localizedDescription`) is a sentence for people: what
/// failed, on which file or run, and what to do. It never holds SQL text; the SQLite error behind a
/// ``Code/storage`` error, with its SQL and extended code, is in ``underlying`` and
/// ``technicalDetails``.
///
/// ## Topics
/// ### Codes
/// - ``Code``
/// ### Details
/// - ``message``
/// - ``underlying``
/// - ``technicalDetails``
public struct XeroMLError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// What kind of error this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case storage, notAXeroMLFile, newerSchema, writeFailed, notFound, alreadyExists
            case importFailed, invalidArgument, runNotWritable, locked
            case storeNotFound, readOnlyStore, needsMigration
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// SQLite failed; ``XeroMLError/underlying`` holds the ``SQLiteError``.
        public static let storage = Code(.storage)
        /// The file exists but is not a XeroML store.
        public static let notAXeroMLFile = Code(.notAXeroMLFile)
        /// The file was written by a newer XeroML whose schema this build does not know.
        public static let newerSchema = Code(.newerSchema)
        /// Some results could not be committed.
        public static let writeFailed = Code(.writeFailed)
        /// A dataset, run or item was not found.
        public static let notFound = Code(.notFound)
        /// A dataset or run of that name already exists.
        public static let alreadyExists = Code(.alreadyExists)
        /// An import file is malformed; the message names file:line.
        public static let importFailed = Code(.importFailed)
        /// An argument is out of range or malformed.
        public static let invalidArgument = Code(.invalidArgument)
        /// The run is finished and takes no more results.
        public static let runNotWritable = Code(.runNotWritable)
        /// Another process held the file's write lock for longer than the store's lock timeout (or the
        /// wait was cancelled).
        public static let locked = Code(.locked)
        /// A read-only opening found no store at the path (it never creates one), or an empty file.
        public static let storeNotFound = Code(.storeNotFound)
        /// The client was opened read-only (``XeroML/init(path:readOnly:lockTimeout:logger:)``) and cannot write.
        public static let readOnlyStore = Code(.readOnlyStore)
        /// A read-only opening found a store in an older format: opening it once for writing upgrades it.
        public static let needsMigration = Code(.needsMigration)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A sentence saying what went wrong and, where it helps, what to do.
    public let message: String
    /// The SQLite error behind a ``Code/storage`` error.
    public let underlying: SQLiteError?

    init(_ code: Code, _ message: String, underlying: SQLiteError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }

    /// The same sentence as ``message``.
    public var errorDescription: String? { message }

    /// For diagnostics (the CLI's `--verbose`): the SQLite error behind this one with its extended
    /// code and the SQL that failed, or `nil` when there is none.
    public var technicalDetails: String? { underlying?.description }

    static func storage(_ error: SQLiteError, path: String) -> XeroMLError {
        XeroMLError(.storage, storageSentence(error, path: path), underlying: error)
    }

    /// A sentence for an SQLite error on the file at `path`, without SQL text.
    static func storageSentence(_ error: SQLiteError, path: String) -> String {
        switch error.code {
        case .full:
            "cannot write to \(path): the disk is full (or the file reached its size limit); free some space and try again"
        case .busy, .locked:
            "\(path) is locked by another process; try again when it is done (`fuser \(path)` shows which process has it open)"
        case .readOnly:
            "cannot write to \(path): \(error.explanation); read commands still work, or copy the file somewhere writable"
        case .cantOpen, .permission:
            "cannot open \(path): \(error.explanation); check the path and its permissions"
        case .notADatabase:
            "\(path) is not an SQLite database, so not a XeroML store; choose another path"
        case .corrupt:
            "\(path) is damaged (\(error.message)); restore it from a copy"
        case .ioError:
            "cannot read or write \(path): \(error.explanation)"
        case .interrupt:
            "the operation on \(path) was interrupted"
        case .constraint:
            "\(path) refused the change: \(error.message)"
        default:
            "SQLite failed on \(path): \(error.message)"
        }
    }
    static func notAXeroMLFile(path: String) -> XeroMLError {
        XeroMLError(.notAXeroMLFile, "\(path) is an SQLite file but not a XeroML store; choose another path")
    }
    static func newerSchema(path: String, detail: String) -> XeroMLError {
        XeroMLError(.newerSchema, "cannot open \(path): \(detail)")
    }
    static func writeFailed(_ reasons: [String]) -> XeroMLError {
        let shown = reasons.prefix(3).joined(separator: "; ")
        let more = reasons.count > 3 ? " (and \(reasons.count - 3) more)" : ""
        return XeroMLError(.writeFailed, "\(reasons.count) result(s) could not be written: \(shown)\(more)")
    }
    static func locked(path: String, waited: Duration, underlying: SQLiteError) -> XeroMLError {
        let seconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
        return XeroMLError(.locked, """
            another process holds the write lock of \(path) (waited \(String(format: "%.1f", seconds)) s); \
            find it with `fuser \(path)` or `lsof \(path)`, or wait longer (XEROML_LOCK_TIMEOUT=SECONDS, or lockTimeout:)
            """, underlying: underlying)
    }
    static func readOnlyStore(path: String) -> XeroMLError {
        XeroMLError(.readOnlyStore, "cannot write to \(path): this client opened it read-only; open it with `XeroML(path:)` to write")
    }
    package static func notFound(_ what: String) -> XeroMLError { XeroMLError(.notFound, "\(what) not found") }
}
