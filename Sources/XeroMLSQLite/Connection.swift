import XeroMLCSQLite
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One SQLite connection: the single owner of a `sqlite3*` handle.
///
/// A connection is not thread-safe and is deliberately not `Sendable`: it is opened with
/// `SQLITE_OPEN_NOMUTEX` and confined to one thread at a time by its owner, normally a
/// ``DatabaseQueue``. Blocking calls (`sqlite3_step`, busy-timeout sleeps) therefore never run on
/// Swift's cooperative thread pool.
///
/// Every connection is configured the same way at open (see ``init(path:mode:busyTimeoutMilliseconds:)``).
///
/// ## Topics
/// ### Opening
/// - ``init(path:mode:busyTimeoutMilliseconds:)``
/// - ``Mode``
/// - ``minimumLibraryVersion``
/// ### Running SQL
/// - ``execute(_:)``
/// - ``prepare(_:)``
/// - ``cached(_:)``
/// - ``transaction(_:_:)``
public final class Connection {
    /// How a connection opens its file.
    public enum Mode: Sendable {
        /// Read and write, creating the file when missing.
        case readWrite
        /// Read only: for the read connections of a store.
        case readOnly
    }

    /// The oldest SQLite the store accepts: 3.37.0, the first with STRICT tables
    /// (https://www.sqlite.org/stricttables.html). RETURNING needs 3.35, `->>` 3.38 (used only where noted).
    public static let minimumLibraryVersion: Int32 = 3_037_000

    /// The version of the SQLite library linked at run time, e.g. "3.40.1".
    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }

    /// The file this connection opened.
    public let path: String
    private(set) var handle: OpaquePointer?
    private var statementCache: [String: Statement] = [:]

    /// Opens (and creates, in ``Mode/readWrite``) the database at `path`.
    ///
    /// The configuration, applied here and only here:
    /// - `journal_mode=WAL`: readers never block the writer nor the writer readers
    ///   (https://www.sqlite.org/wal.html). Persistent in the file; set by read-write connections.
    /// - `synchronous=NORMAL`: in WAL mode a commit is durable across application crashes and
    ///   consistent across power loss (https://www.sqlite.org/pragma.html#pragma_synchronous).
    ///   Debian builds default to FULL in WAL mode, so it is set explicitly.
    /// - `foreign_keys=ON`: off by default for backward compatibility
    ///   (https://www.sqlite.org/foreignkeys.html#fk_enable).
    /// - `busy_timeout`: a bounded wait for another process's lock instead of an immediate
    ///   `SQLITE_BUSY` (https://www.sqlite.org/c3ref/busy_timeout.html).
    /// - Double-quoted string literals off (https://www.sqlite.org/quirks.html#dblquote).
    public init(path: String, mode: Mode = .readWrite, busyTimeoutMilliseconds: Int32 = 5_000) throws(SQLiteError) {
        guard sqlite3_libversion_number() >= Self.minimumLibraryVersion else {
            throw SQLiteError(
                extendedCode: SQLITE_ERROR,
                message: "SQLite \(Self.libraryVersion) is too old: XeroML needs 3.37.0 or newer")
        }
        self.path = path
        var db: OpaquePointer?
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        switch mode {
        case .readWrite: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        }
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            // A failed open still allocates a handle (https://www.sqlite.org/c3ref/open.html).
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteError(extendedCode: rc, message: "cannot open \(path): \(message)")
        }
        self.handle = db
        sqlite3_extended_result_codes(db, 1)
        do {
            try check(xeroml_sqlite_disable_dqs(db))
            try check(sqlite3_busy_timeout(db, busyTimeoutMilliseconds))
            if mode == .readWrite {
                try enableWAL(busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            }
            try execute("PRAGMA synchronous = NORMAL")
            try execute("PRAGMA foreign_keys = ON")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Switches the file to WAL unless it already is. Changing the journal mode needs an exclusive
    /// lock, and SQLite does not call the busy handler for it while another process is setting the
    /// file up, so this retries for up to the busy timeout.
    private func enableWAL(busyTimeoutMilliseconds: Int32) throws(SQLiteError) {
        let deadline = ContinuousClock.now + .milliseconds(Int(busyTimeoutMilliseconds))
        while true {
            do throws(SQLiteError) {
                let statement = try prepare("PRAGMA journal_mode")
                let mode = try statement.step() ? statement.text(0) ?? "" : ""
                statement.finalize()
                if mode.lowercased() == "wal" { return }
                try execute("PRAGMA journal_mode = WAL")
                return
            } catch where (error.code == .busy || error.code == .locked) && ContinuousClock.now < deadline {
                usleep(10_000)
            } catch {
                throw error
            }
        }
    }

    /// Finalizes every cached statement and closes the handle. Safe to call twice.
    public func close() {
        for statement in statementCache.values { statement.finalize() }
        statementCache.removeAll()
        if let handle {
            sqlite3_close_v2(handle)
            self.handle = nil
        }
    }

    func error(_ rc: Int32, sql: String?) -> SQLiteError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        let extended = handle.map { sqlite3_extended_errcode($0) } ?? rc
        return SQLiteError(extendedCode: extended & 0xFF == rc & 0xFF ? extended : rc, message: message, sql: sql)
    }

    private func check(_ rc: Int32, sql: String? = nil) throws(SQLiteError) {
        guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
    }

    /// Runs one or more SQL statements without parameters.
    public func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(message)
            let extended = handle.map { sqlite3_extended_errcode($0) } ?? rc
            throw SQLiteError(extendedCode: extended, message: text, sql: sql)
        }
    }

    /// Prepares a new statement. Prefer ``cached(_:)`` for statements that run many times.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        try Statement(connection: self, sql: sql)
    }

    /// Returns a prepared statement for `sql`, preparing it on first use and reusing it after.
    public func cached(_ sql: String) throws(SQLiteError) -> Statement {
        if let statement = statementCache[sql] { return statement }
        let statement = try prepare(sql)
        statementCache[sql] = statement
        return statement
    }

    /// Runs `sql` with `values` (INSERT, UPDATE, DELETE, DDL) through the statement cache.
    public func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) {
        try cached(sql).run(values)
    }

    /// Runs a query through the statement cache and reads each row with `row`.
    public func query<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) throws -> T) throws -> [T] {
        try cached(sql).query(values, row)
    }

    /// Runs a query through the statement cache and reads its first row with `row`.
    public func queryFirst<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (Statement) throws -> T) throws -> T? {
        try cached(sql).queryFirst(values, row)
    }

    /// The kind of transaction to begin (https://www.sqlite.org/lang_transaction.html).
    public enum TransactionKind: String, Sendable {
        /// For reads: the snapshot starts at the first read.
        case deferred = "DEFERRED"
        /// For writes: takes the write lock at once, so the transaction cannot fail later with
        /// `SQLITE_BUSY_SNAPSHOT` when another process wrote first.
        case immediate = "IMMEDIATE"
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// The body is synchronous on purpose: nothing else can run on this connection between BEGIN and
    /// COMMIT.
    public func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        try execute("BEGIN \(kind.rawValue)")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // ROLLBACK fails harmlessly when SQLite already rolled back (e.g. after SQLITE_FULL).
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Whether a transaction is open.
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` with a progress handler that stops any statement once `flag` is set
    /// (https://www.sqlite.org/c3ref/progress_handler.html): the statement fails with
    /// ``SQLiteError/Code/interrupt``. Unlike `sqlite3_interrupt`, a flag set before the statement
    /// starts is not missed.
    public func stoppable<T>(by flag: CancellationFlag, _ body: () throws -> T) throws -> T {
        if flag.isSet { throw SQLiteError(extendedCode: SQLITE_INTERRUPT, message: "interrupted") }
        let context = Unmanaged.passRetained(flag)
        sqlite3_progress_handler(handle, 4_096, { context in
            guard let context else { return 0 }
            return Unmanaged<CancellationFlag>.fromOpaque(context).takeUnretainedValue().isSet ? 1 : 0
        }, context.toOpaque())
        defer {
            sqlite3_progress_handler(handle, 0, nil, nil)
            context.release()
        }
        return try body()
    }

    /// A handle that can interrupt this connection's running statement from any thread.
    public var interruptHandle: InterruptHandle { InterruptHandle(handle: handle) }
}

@available(*, unavailable)
extension Connection: Sendable {}

/// Interrupts a connection's running statement from another thread (`sqlite3_interrupt`, which is
/// documented as safe to call from any thread: https://www.sqlite.org/c3ref/interrupt.html).
///
/// `@unchecked Sendable` because it only ever passes its pointer to `sqlite3_interrupt`. The owner
/// of the connection must keep the connection open while the handle may be used; ``DatabaseQueue``
/// does so by holding both for its whole lifetime.
public struct InterruptHandle: @unchecked Sendable {
    let handle: OpaquePointer?
    /// Makes the running statement, if any, fail with `SQLITE_INTERRUPT`.
    public func interrupt() {
        if let handle { sqlite3_interrupt(handle) }
    }
}

/// A flag set once, from any thread, when work should stop (see ``Connection/stoppable(by:_:)``).
public final class CancellationFlag: Sendable {
    private let state = Atomic<Bool>(false)
    public init() {}
    /// Asks the work to stop.
    public func set() { state.store(true, ordering: .releasing) }
    /// Whether ``set()`` was called.
    public var isSet: Bool { state.load(ordering: .acquiring) }
}
