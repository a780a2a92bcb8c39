import Foundation
import Logging
import PostgresNIO

/// One schema change of the team server's database. Migrations are ordered by version, recorded in
/// `xeroml_schema_migrations`, each applied in its own transaction, and never edited once released:
/// a change is a new migration.
struct TeamMigration: Sendable {
    var version: Int
    var name: String
    var statements: [String]
}

extension TeamDatabase {
    /// The migrations this server knows, oldest first.
    static let migrations: [TeamMigration] = [
        TeamMigration(version: 1, name: "sync and projects", statements: [
            """
            CREATE TABLE projects (
                id uuid PRIMARY KEY,
                name text UNIQUE NOT NULL,
                created_us bigint NOT NULL)
            """,
            """
            CREATE TABLE api_keys (
                id text PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects,
                secret_hash bytea NOT NULL,
                created_us bigint NOT NULL,
                revoked_us bigint,
                last_used_us bigint)
            """,
            "CREATE INDEX api_keys_project ON api_keys (project_id)",
            """
            CREATE TABLE sessions (
                token_hash bytea PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects,
                key_id text NOT NULL,
                expires_us bigint NOT NULL)
            """,
            """
            CREATE TABLE datasets (
                project_id uuid NOT NULL,
                id text NOT NULL,
                name text NOT NULL,
                description text,
                metadata text,
                version int NOT NULL,
                created_us bigint NOT NULL,
                PRIMARY KEY (project_id, id),
                UNIQUE (project_id, name))
            """,
            """
            CREATE TABLE dataset_items (
                project_id uuid NOT NULL,
                id text NOT NULL,
                dataset_id text NOT NULL,
                item_key text NOT NULL,
                external_id text,
                input text NOT NULL,
                expected_output text,
                metadata text,
                created_us bigint NOT NULL,
                PRIMARY KEY (project_id, id),
                UNIQUE (project_id, dataset_id, item_key))
            """,
            """
            CREATE TABLE dataset_item_aliases (
                project_id uuid NOT NULL,
                client_item_id text NOT NULL,
                item_id text NOT NULL,
                PRIMARY KEY (project_id, client_item_id))
            """,
            """
            CREATE TABLE experiment_runs (
                project_id uuid NOT NULL,
                id text NOT NULL,
                dataset_id text,
                dataset_version int,
                name text NOT NULL,
                description text,
                metadata text,
                status text NOT NULL,
                configuration text,
                created_us bigint NOT NULL,
                finished_us bigint,
                committed_us bigint,
                chunk_count int,
                run_item_count int,
                client_version text,
                PRIMARY KEY (project_id, id))
            """,
            "CREATE INDEX experiment_runs_committed ON experiment_runs (project_id, committed_us) WHERE committed_us IS NOT NULL",
            "CREATE INDEX experiment_runs_dataset ON experiment_runs (project_id, dataset_id)",
            """
            CREATE TABLE sync_chunks (
                project_id uuid NOT NULL,
                run_id text NOT NULL,
                idx int NOT NULL,
                row_count int NOT NULL,
                received_us bigint NOT NULL,
                PRIMARY KEY (project_id, run_id, idx))
            """,
            """
            CREATE TABLE traces (
                project_id uuid NOT NULL,
                id text NOT NULL,
                run_id text NOT NULL,
                name text NOT NULL,
                kind text NOT NULL,
                input text,
                output text,
                metadata text,
                started_us bigint NOT NULL,
                ended_us bigint,
                PRIMARY KEY (project_id, id))
            """,
            """
            CREATE TABLE observations (
                project_id uuid NOT NULL,
                id text NOT NULL,
                run_id text NOT NULL,
                trace_id text NOT NULL,
                parent_id text,
                kind text NOT NULL,
                name text NOT NULL,
                input text,
                output text,
                metadata text,
                model text,
                model_parameters text,
                prompt_tokens bigint,
                completion_tokens bigint,
                total_tokens bigint,
                cost double precision,
                level text NOT NULL,
                status_message text,
                started_us bigint NOT NULL,
                ended_us bigint,
                PRIMARY KEY (project_id, id))
            """,
            """
            CREATE TABLE run_items (
                project_id uuid NOT NULL,
                id text NOT NULL,
                run_id text NOT NULL,
                dataset_item_id text,
                repetition bigint NOT NULL,
                input text,
                expected_output text,
                metadata text,
                output text,
                error text,
                latency_ms double precision NOT NULL,
                attempts bigint NOT NULL,
                generations bigint NOT NULL,
                prompt_tokens bigint NOT NULL,
                completion_tokens bigint NOT NULL,
                total_tokens bigint NOT NULL,
                cost double precision,
                trace_id text,
                started_us bigint NOT NULL,
                PRIMARY KEY (project_id, id))
            """,
            """
            CREATE TABLE scores (
                project_id uuid NOT NULL,
                id text NOT NULL,
                run_id text NOT NULL,
                run_item_id text,
                trace_id text,
                observation_id text,
                name text NOT NULL,
                data_type text NOT NULL,
                value double precision,
                string_value text,
                comment text,
                source text NOT NULL,
                evaluator text,
                created_us bigint NOT NULL,
                PRIMARY KEY (project_id, id))
            """,
            "CREATE INDEX scores_run_name ON scores (project_id, run_id, name)",
        ]),
        // The orders and filters of the dashboard's pages (``DashboardIndexes``). They also serve the
        // ingestion's and the commit's lookups by run, trace and run item, so migration 1 has no index
        // of its own on those columns: every index is written for every row a chunk inserts.
        TeamMigration(version: 2, name: "dashboard indexes", statements: DashboardIndexes.statements),
        // Fewer index entries to write per pushed item (measured: 100,000 items pushed in 8.3-8.9 s
        // instead of 9.5-10.2 s without the latency index alone). Item scores are read through
        // `dashboard_scores_by_value` (every such query names `run_item_id IS NOT NULL`), so only
        // run-level scores need an index by run; the items table sorted by latency sorts the run's items.
        TeamMigration(version: 3, name: "fewer ingestion indexes", statements: [
            "DROP INDEX IF EXISTS scores_run_name",
            "DROP INDEX IF EXISTS dashboard_run_items_by_latency",
            "CREATE INDEX IF NOT EXISTS scores_run_level ON scores (project_id, run_id, id COLLATE \"C\") WHERE run_item_id IS NULL",
        ]),
    ]

    /// The newest schema version this server knows.
    public static var schemaVersion: Int { migrations.last?.version ?? 0 }

    /// Brings the database to ``schemaVersion``, one transaction per migration, and refuses a database
    /// whose schema is newer than this server's. Several servers starting at once on one database
    /// take turns (an advisory lock), so each migration runs once.
    public func migrate(timeout: Duration = .seconds(30)) async throws {
        let client = self.client
        let logger = self.logger
        let displayURL = self.displayURL
        try await withDeadline(timeout) {
            do {
                try await Self.migrate(client: client, logger: logger)
            } catch {
                if let error = TeamServerError.unwrap(error) as? TeamServerError { throw error }
                throw TeamServerError.unavailable("cannot migrate the database at \(displayURL): \(TeamServerError.describe(error))")
            }
        }
    }

    private static func migrate(client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            // Concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalog: one at a time.
            try await connection.query("SELECT pg_advisory_xact_lock(7270301)", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS xeroml_schema_migrations (
                    version int PRIMARY KEY, name text NOT NULL, applied_us bigint NOT NULL)
                """, logger: logger)
        }
        for migration in migrations {
            let applied: Bool = try await client.withTransaction(logger: logger) { connection in
                // One server migrates at a time; the others wait here, then see the work done.
                try await connection.query("SELECT pg_advisory_xact_lock(7270301)", logger: logger)
                let rows = try await connection.query("SELECT coalesce(max(version), 0) FROM xeroml_schema_migrations", logger: logger)
                var current = 0
                for try await (version) in rows.decode(Int.self) { current = version }
                if current > schemaVersion {
                    throw TeamServerError.newerSchema(database: current, server: schemaVersion)
                }
                guard current < migration.version else { return false }
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO xeroml_schema_migrations (version, name, applied_us) VALUES (\(migration.version), \(migration.name), \(nowMicroseconds()))",
                    logger: logger)
                return true
            }
            if applied { logger.info("applied migration \(migration.version) (\(migration.name))") }
        }
        // A database migrated by a newer server and holding no migration this one applied.
        let rows = try await client.query("SELECT coalesce(max(version), 0) FROM xeroml_schema_migrations", logger: logger)
        for try await (version) in rows.decode(Int.self) where version > schemaVersion {
            throw TeamServerError.newerSchema(database: version, server: schemaVersion)
        }
    }
}
