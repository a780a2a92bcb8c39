import Foundation
import Logging
import PostgresNIO
import Testing
@_spi(Dashboard) import XeroML
import XeroMLSQLite
import XeroMLTeamServer
import Synchronization
import XeroMLTesting

/// Databases for the dashboard's tests, on the test process's shared PostgreSQL cluster, migrated by
/// the team server's own migrations plus the dashboard's indexes.
enum DashboardCluster {
    static let available = PostgresCluster.isAvailable
    static let skipReason = PostgresCluster.skipReason
    static let counter = Mutex(0)

    /// A new database with the team server's tables; `body` gets a client to it.
    static func withDatabase<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let cluster = try await PostgresCluster.shared()
        let n = counter.withLock { $0 += 1; return $0 }
        let url = try await cluster.createDatabase("dashboard_\(getpid())_\(n)")
        let database = try TeamDatabase(url: url, maximumConnections: 8)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            try await database.migrate()
            for statement in DashboardIndexes.statements { try await database.client.query(PostgresQuery(unsafeSQL: statement)) }
            return try await body(database.client)
        }
    }
}

/// Projects and keys written straight into the team server's tables.
enum TeamSchema {
    /// Adds a project; returns its id.
    static func addProject(_ client: PostgresClient, name: String) async throws -> UUID {
        let id = UUID()
        try await client.query("INSERT INTO projects (id, name, created_us) VALUES (\(id), \(name), 0)")
        return id
    }

    /// Adds an API key of `project`; returns the full key `xrml_<id>_<secret>`.
    static func addKey(_ client: PostgresClient, project: UUID, revoked: Bool = false) async throws -> String {
        let id = String(UUID().uuidString.lowercased().prefix(8)), secret = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let revokedUs: Int64? = revoked ? 1 : nil
        try await client.query("""
            INSERT INTO api_keys (id, project_id, secret_hash, created_us, revoked_us)
            VALUES (\(id), \(project), sha256(convert_to(\(secret), 'UTF8')), 0, \(revokedUs))
            """)
        return "xrml_\(id)_\(secret)"
    }
}

/// Copies a local file's rows into the team server's tables for one project, as a push would leave them
/// after commit (every run committed unless told otherwise).
enum RowCopier {
    enum Kind { case text, int, real }

    /// Per table: the server's columns with their kinds, and the local expressions that give them.
    static let tables: [(table: String, columns: [(String, Kind, String)], from: String)] = [
        ("datasets", [("id", .text, "id"), ("name", .text, "name"), ("description", .text, "description"), ("metadata", .text, "metadata"),
                      ("version", .int, "version"), ("created_us", .int, "created_us")], "datasets"),
        ("dataset_items", [("id", .text, "id"), ("dataset_id", .text, "dataset_id"),
                           ("item_key", .text, "coalesce('id:' || external_id, 'h:' || id)"), ("external_id", .text, "external_id"),
                           ("input", .text, "input"), ("expected_output", .text, "expected_output"), ("metadata", .text, "metadata"),
                           ("created_us", .int, "created_us")], "dataset_items"),
        ("experiment_runs", [("id", .text, "id"), ("dataset_id", .text, "dataset_id"), ("dataset_version", .int, "dataset_version"),
                             ("name", .text, "name"), ("description", .text, "description"), ("metadata", .text, "metadata"),
                             ("status", .text, "status"), ("created_us", .int, "created_us"), ("finished_us", .int, "finished_us"),
                             ("committed_us", .int, "coalesce(finished_us, created_us)"), ("chunk_count", .int, "1"),
                             ("run_item_count", .int, "(SELECT count(*) FROM run_items i WHERE i.run_id = experiment_runs.id)")],
         "experiment_runs"),
        ("traces", [("id", .text, "id"), ("run_id", .text, "run_id"), ("name", .text, "name"), ("kind", .text, "kind"),
                    ("input", .text, "input"), ("output", .text, "output"), ("metadata", .text, "metadata"),
                    ("started_us", .int, "started_us"), ("ended_us", .int, "ended_us")], "traces WHERE run_id IS NOT NULL"),
        ("observations", [("id", .text, "o.id"), ("run_id", .text, "t.run_id"), ("trace_id", .text, "o.trace_id"),
                          ("parent_id", .text, "o.parent_id"), ("kind", .text, "o.kind"), ("name", .text, "o.name"),
                          ("input", .text, "o.input"), ("output", .text, "o.output"), ("metadata", .text, "o.metadata"),
                          ("model", .text, "o.model"), ("model_parameters", .text, "o.model_parameters"),
                          ("prompt_tokens", .int, "o.prompt_tokens"), ("completion_tokens", .int, "o.completion_tokens"),
                          ("total_tokens", .int, "o.total_tokens"), ("cost", .real, "o.cost"), ("level", .text, "o.level"),
                          ("status_message", .text, "o.status_message"), ("started_us", .int, "o.started_us"),
                          ("ended_us", .int, "o.ended_us")],
         "observations o JOIN traces t ON t.id = o.trace_id WHERE t.run_id IS NOT NULL ORDER BY o.rowid"),
        ("run_items", [("id", .text, "id"), ("run_id", .text, "run_id"), ("dataset_item_id", .text, "dataset_item_id"),
                       ("repetition", .int, "repetition"), ("input", .text, "input"), ("expected_output", .text, "expected_output"),
                       ("metadata", .text, "metadata"), ("output", .text, "output"), ("error", .text, "error"),
                       ("latency_ms", .real, "latency_ms"), ("attempts", .int, "attempts"), ("generations", .int, "generations"),
                       ("prompt_tokens", .int, "prompt_tokens"), ("completion_tokens", .int, "completion_tokens"),
                       ("total_tokens", .int, "total_tokens"), ("cost", .real, "cost"), ("trace_id", .text, "trace_id"),
                       ("started_us", .int, "started_us")], "run_items"),
        ("scores", [("id", .text, "s.id"),
                    ("run_id", .text, "coalesce(s.run_id, (SELECT run_id FROM run_items i WHERE i.id = s.run_item_id), (SELECT run_id FROM traces t WHERE t.id = s.trace_id))"),
                    ("run_item_id", .text, "s.run_item_id"), ("trace_id", .text, "s.trace_id"), ("observation_id", .text, "s.observation_id"),
                    ("name", .text, "s.name"), ("data_type", .text, "s.data_type"), ("value", .real, "s.value"),
                    ("string_value", .text, "s.string_value"), ("comment", .text, "s.comment"), ("source", .text, "s.source"),
                    ("evaluator", .text, "s.evaluator"), ("created_us", .int, "s.created_us")], "scores s ORDER BY s.rowid"),
    ]

    enum Cell: Sendable { case text(String?), int(Int64?), real(Double?) }

    /// Copies every row of `xeroml`'s file into `project`, in the file's row order.
    static func copy(_ xeroml: XeroML, into client: PostgresClient, project: UUID) async throws {
        for (table, columns, from) in tables {
            let rows: [[Cell]] = try await xeroml.read { db in
                let select = "SELECT " + columns.map(\.2).joined(separator: ", ") + " FROM " + from
                return try db.query(select) { s in
                    columns.enumerated().map { i, column -> Cell in
                        switch column.1 {
                        case .text: .text(s.text(i))
                        case .int: .int(s.optionalInt64(i))
                        case .real: .real(s.optionalDouble(i))
                        }
                    }
                }
            }
            for batch in stride(from: 0, to: rows.count, by: 200) {
                var binds = PostgresBindings()
                var tuples: [String] = []
                for row in rows[batch..<min(rows.count, batch + 200)] {
                    binds.append(project)
                    var placeholders = ["$\(binds.count)"]
                    for cell in row {
                        switch cell {
                        case .text(let v): binds.append(v)
                        case .int(let v): binds.append(v)
                        case .real(let v): binds.append(v)
                        }
                        placeholders.append("$\(binds.count)")
                    }
                    tuples.append("(" + placeholders.joined(separator: ", ") + ")")
                }
                let sql = "INSERT INTO \(table) (project_id, " + columns.map(\.0).joined(separator: ", ") + ") VALUES "
                    + tuples.joined(separator: ", ")
                try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds))
            }
        }
    }
}
