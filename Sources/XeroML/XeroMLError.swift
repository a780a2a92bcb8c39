public import XeroMLSQLite

/// An error from XeroML. Match on ``code``:
///
/// ```swift
/// catch let error as XeroMLError where error.code == .importFailed { … }
/// ```
///
/// A struct wrapping a code rather than an enum, so new kinds of error are not breaking changes.
///
/// ## Topics
/// ### Codes
/// - ``Code``
/// ### Details
/// - ``message``
/// - ``underlying``
public struct XeroMLError: Error, Sendable, CustomStringConvertible {
    /// What kind of error this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case storage, notAXeroMLFile, newerSchema, writeFailed, notFound, alreadyExists
            case importFailed, invalidArgument, runNotWritable, locked
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

    static func storage(_ error: SQLiteError, path: String) -> XeroMLError {
        XeroMLError(.storage, "\(path): \(error)", underlying: error)
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
    static func notFound(_ what: String) -> XeroMLError { XeroMLError(.notFound, "\(what) not found") }
}
