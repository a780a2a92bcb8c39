/// One named schema change. Never edit a migration once it has shipped: add a new one.
public struct Migration: Sendable {
    /// The unique, stable name recorded in the migrations table.
    public var name: String
    /// The change, run inside the migration's own transaction.
    public var apply: @Sendable (Connection) throws -> Void

    /// A migration made of plain SQL statements.
    public init(_ name: String, sql: String) {
        self.name = name
        self.apply = { try $0.execute(sql) }
    }

    /// A migration that runs arbitrary code.
    public init(_ name: String, apply: @escaping @Sendable (Connection) throws -> Void) {
        self.name = name
        self.apply = apply
    }
}

/// Applies named, ordered migrations and records each in a table.
///
/// - Each pending migration runs in its own `BEGIN IMMEDIATE` transaction, and its name is recorded in
///   the same transaction, so a crash leaves the file either before or after it.
/// - A file that records a migration this build does not know was written by a newer version of the
///   program: it is refused with ``MigrationError/newerSchema(unknown:)`` rather than misread.
///
/// ## Topics
/// - ``register(_:)``
/// - ``migrate(_:)``
/// - ``appliedMigrations(_:)``
public struct Migrator: Sendable {
    /// The table that records applied migrations.
    public let tableName: String
    public private(set) var migrations: [Migration] = []

    public init(tableName: String = "xeroml_migrations") {
        self.tableName = tableName
    }

    /// Appends a migration. Order of registration is the order of application.
    public mutating func register(_ migration: Migration) {
        precondition(!migrations.contains { $0.name == migration.name }, "duplicate migration \(migration.name)")
        migrations.append(migration)
    }

    /// The names of applied migrations, in order of application.
    public func appliedMigrations(_ db: Connection) throws -> [String] {
        let exists = try db.queryFirst(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(tableName)]
        ) { _ in true } ?? false
        guard exists else { return [] }
        return try db.query("SELECT name FROM \(tableName) ORDER BY rowid") { $0.text(0) ?? "" }
    }

    /// Applies every pending migration. Returns the names applied now.
    @discardableResult
    public func migrate(_ db: Connection) throws -> [String] {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS \(tableName) (
                name TEXT NOT NULL PRIMARY KEY,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            ) STRICT
            """)
        let known = Set(migrations.map(\.name))
        let applied = try appliedMigrations(db)
        let unknown = applied.filter { !known.contains($0) }
        if !unknown.isEmpty { throw MigrationError.newerSchema(unknown: unknown) }
        var done = Set(applied)
        var appliedNow: [String] = []
        for migration in migrations where !done.contains(migration.name) {
            let ran: Bool = try db.transaction(.immediate) {
                // Another process may have applied it while this one waited for the lock.
                let already = try db.queryFirst("SELECT 1 FROM \(tableName) WHERE name = ?", [.text(migration.name)]) { _ in true } ?? false
                if already { return false }
                try migration.apply(db)
                try db.run("INSERT INTO \(tableName)(name) VALUES (?)", [.text(migration.name)])
                return true
            }
            done.insert(migration.name)
            if ran { appliedNow.append(migration.name) }
        }
        return appliedNow
    }
}

/// Why ``Migrator/migrate(_:)`` refused a file.
public enum MigrationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file records migrations this build does not know: a newer version wrote it.
    case newerSchema(unknown: [String])

    public var description: String {
        switch self {
        case .newerSchema(let unknown):
            "the database was written by a newer version of XeroML (unknown migrations: \(unknown.joined(separator: ", "))); upgrade XeroML to open it"
        }
    }
}
