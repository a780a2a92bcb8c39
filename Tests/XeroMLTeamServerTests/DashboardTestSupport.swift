import Foundation
import Logging
import PostgresNIO
import Testing
@_spi(Dashboard) import XeroML
import XeroMLSQLite
import XeroMLTeamServer

/// A throwaway PostgreSQL cluster for the dashboard's tests: `initdb` and `pg_ctl` (as the `postgres`
/// user when run as root), trust authentication on 127.0.0.1, a free port; one per test process.
actor DashboardCluster {
    static let shared = DashboardCluster()

    struct Binaries { var initdb: URL; var pgCtl: URL }

    static let binaries: Binaries? = {
        var folders = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            folders += versions.sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin" }
        }
        func find(_ name: String) -> URL? {
            folders.lazy.map { URL(fileURLWithPath: $0).appendingPathComponent(name) }
                .first { FileManager.default.isExecutableFile(atPath: $0.path) }
        }
        guard let initdb = find("initdb"), let pgCtl = find("pg_ctl") else { return nil }
        return Binaries(initdb: initdb, pgCtl: pgCtl)
    }()

    /// Whether the tests can start PostgreSQL here; when not, they are skipped with this reason.
    static let available = binaries != nil
    static let skipReason: Comment = "PostgreSQL's initdb and pg_ctl are not installed (Debian: postgresql); the team dashboard tests are skipped"

    private var port: Int?
    private var directory: URL?
    private var databases = 0

    /// Starts the cluster on first use; returns its port.
    func start() async throws -> Int {
        if let port { return port }
        guard let binaries = Self.binaries else { throw ClusterError("PostgreSQL binaries not found") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-pgdash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let asRoot = getuid() == 0
        if asRoot {
            try Self.run(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres", directory.path], timeout: 10)
        }
        func server(_ tool: URL, _ arguments: [String]) throws {
            if asRoot {
                try Self.run(URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", tool.path] + arguments, timeout: 60)
            } else {
                try Self.run(tool, arguments, timeout: 60)
            }
        }
        try server(binaries.initdb, ["-D", data.path, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        var lastError: (any Error)?
        for _ in 0..<5 {
            let candidate = Int.random(in: 20_000...60_000)
            do {
                try server(binaries.pgCtl, ["-D", data.path, "-w", "-t", "30", "-l", directory.appendingPathComponent("log").path,
                                            "-o", "-p \(candidate) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
                self.port = candidate
                self.directory = directory
                atexit { DashboardCluster.stopAtExit() }
                Self.stopInfo.withLock { $0 = (binaries.pgCtl, data, asRoot) }
                return candidate
            } catch {
                lastError = error
            }
        }
        throw lastError ?? ClusterError("could not start PostgreSQL")
    }

    static let stopInfo = Locked<(URL, URL, Bool)?>(nil)

    static func stopAtExit() {
        guard let (pgCtl, data, asRoot) = stopInfo.withLock({ $0 }) else { return }
        let arguments = ["-D", data.path, "-m", "immediate", "-w", "-t", "20", "stop"]
        if asRoot {
            try? run(URL(fileURLWithPath: "/usr/sbin/runuser"), ["-u", "postgres", "--", pgCtl.path] + arguments, timeout: 30)
        } else {
            try? run(pgCtl, arguments, timeout: 30)
        }
        try? FileManager.default.removeItem(at: data.deletingLastPathComponent())
    }

    /// A new, empty database with the team server's tables; returns a client to it (running until `body` returns).
    func withDatabase<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let port = try await start()
        databases += 1
        let name = "dash_\(getpid())_\(databases)"
        let admin = PostgresClient(configuration: Self.configuration(port: port, database: "postgres"))
        let client = PostgresClient(configuration: Self.configuration(port: port, database: name))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            try await TeamSchema.create(client)
            return try await body(client)
        }
    }

    static func configuration(port: Int, database: String) -> PostgresClient.Configuration {
        PostgresClient.Configuration(host: "127.0.0.1", port: port, username: "postgres", password: nil, database: database, tls: .disable)
    }

    @discardableResult
    static func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval) throws -> String {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                throw ClusterError("\(executable.lastPathComponent) did not finish within \(Int(timeout)) s")
            }
            usleep(20_000)
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw ClusterError("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }
}

struct ClusterError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value behind a lock, for the exit handler.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

/// The team server's tables as the sync contract describes them, and the dashboard's indexes.
enum TeamSchema {
    static let tables = [
        "CREATE TABLE projects (id uuid PRIMARY KEY, name text UNIQUE NOT NULL, created_us bigint NOT NULL)",
        """
        CREATE TABLE api_keys (id text PRIMARY KEY, project_id uuid NOT NULL REFERENCES projects, secret_hash bytea NOT NULL,
            created_us bigint NOT NULL, revoked_us bigint, last_used_us bigint)
        """,
        """
        CREATE TABLE sessions (token_hash bytea PRIMARY KEY, project_id uuid NOT NULL REFERENCES projects, key_id text NOT NULL,
            expires_us bigint NOT NULL)
        """,
        """
        CREATE TABLE datasets (project_id uuid NOT NULL, id text NOT NULL, name text NOT NULL, description text, metadata text,
            version int NOT NULL, created_us bigint NOT NULL, PRIMARY KEY (project_id, id), UNIQUE (project_id, name))
        """,
        """
        CREATE TABLE dataset_items (project_id uuid NOT NULL, id text NOT NULL, dataset_id text NOT NULL, item_key text NOT NULL,
            external_id text, input text NOT NULL, expected_output text, metadata text, created_us bigint NOT NULL,
            PRIMARY KEY (project_id, id), UNIQUE (project_id, dataset_id, item_key))
        """,
        """
        CREATE TABLE experiment_runs (project_id uuid NOT NULL, id text NOT NULL, dataset_id text, dataset_version int,
            name text NOT NULL, description text, metadata text, status text NOT NULL, configuration text, created_us bigint NOT NULL,
            finished_us bigint, committed_us bigint, chunk_count int, run_item_count int, PRIMARY KEY (project_id, id))
        """,
        """
        CREATE TABLE traces (project_id uuid NOT NULL, id text NOT NULL, run_id text NOT NULL, name text NOT NULL, kind text NOT NULL,
            input text, output text, metadata text, started_us bigint NOT NULL, ended_us bigint, PRIMARY KEY (project_id, id))
        """,
        """
        CREATE TABLE observations (project_id uuid NOT NULL, id text NOT NULL, run_id text NOT NULL, trace_id text NOT NULL,
            parent_id text, kind text NOT NULL, name text NOT NULL, input text, output text, metadata text, model text,
            model_parameters text, prompt_tokens bigint, completion_tokens bigint, total_tokens bigint, cost double precision,
            level text NOT NULL, status_message text, started_us bigint NOT NULL, ended_us bigint, PRIMARY KEY (project_id, id))
        """,
        """
        CREATE TABLE run_items (project_id uuid NOT NULL, id text NOT NULL, run_id text NOT NULL, dataset_item_id text,
            repetition bigint NOT NULL, input text, expected_output text, metadata text, output text, error text,
            latency_ms double precision NOT NULL, attempts bigint NOT NULL, generations bigint NOT NULL, prompt_tokens bigint NOT NULL,
            completion_tokens bigint NOT NULL, total_tokens bigint NOT NULL, cost double precision, trace_id text,
            started_us bigint NOT NULL, PRIMARY KEY (project_id, id))
        """,
        """
        CREATE TABLE scores (project_id uuid NOT NULL, id text NOT NULL, run_id text NOT NULL, run_item_id text, trace_id text,
            observation_id text, name text NOT NULL, data_type text NOT NULL, value double precision, string_value text,
            comment text, source text NOT NULL, evaluator text, created_us bigint NOT NULL, PRIMARY KEY (project_id, id))
        """,
    ]

    static func create(_ client: PostgresClient) async throws {
        for statement in tables + DashboardIndexes.statements { try await client.query(PostgresQuery(unsafeSQL: statement)) }
    }

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
