import XeroMLSQLite

/// The store's schema, as named migrations. Never edit a migration that has shipped: add one.
///
/// Conventions (docs/storage.md): ids are UUIDv7 text; times are integer microseconds since the Unix
/// epoch (`*_us`); JSON values are compact text with sorted keys; every table is STRICT.
enum Schema {
    /// `PRAGMA application_id` of XeroML files ("XRML").
    static let applicationID: Int32 = 0x5852_4D4C

    static var migrator: Migrator {
        var migrator = Migrator()
        migrator.register(Migration("0001-core", sql: core))
        migrator.register(Migration("0002-cache", sql: cache))
        migrator.register(Migration("0003-run-lifecycle", sql: runLifecycle))
        migrator.register(Migration("0005-write-path", apply: writePath))
        migrator.register(Migration("0006-sync-state", sql: syncState))
        return migrator
    }

    static let core = """
        PRAGMA application_id = \(applicationID);

        CREATE TABLE datasets (
            id           TEXT NOT NULL PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            description  TEXT,
            metadata     TEXT,
            version      INTEGER NOT NULL DEFAULT 0,
            created_us   INTEGER NOT NULL,
            updated_us   INTEGER NOT NULL
        ) STRICT;

        -- An item is visible in dataset version v when created_version <= v and
        -- (archived_version IS NULL OR archived_version > v). Items are never updated in place:
        -- a changed item archives the old row and adds a new one, so old versions stay reproducible.
        CREATE TABLE dataset_items (
            id               TEXT NOT NULL PRIMARY KEY,
            dataset_id       TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            external_id      TEXT,
            input            TEXT NOT NULL,
            expected_output  TEXT,
            metadata         TEXT,
            created_version  INTEGER NOT NULL,
            archived_version INTEGER,
            created_us       INTEGER NOT NULL
        ) STRICT;
        -- Serves paging in id order, for the current items and for any pinned version alike.
        CREATE INDEX dataset_items_by_dataset ON dataset_items(dataset_id, id);
        CREATE INDEX dataset_items_by_external_id ON dataset_items(dataset_id, external_id)
            WHERE external_id IS NOT NULL;

        CREATE TABLE experiment_runs (
            id               TEXT NOT NULL PRIMARY KEY,
            dataset_id       TEXT REFERENCES datasets(id) ON DELETE CASCADE,
            dataset_version  INTEGER,
            name             TEXT NOT NULL,
            description      TEXT,
            metadata         TEXT,
            status           TEXT NOT NULL DEFAULT 'running'
                             CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
            created_us       INTEGER NOT NULL,
            finished_us      INTEGER
        ) STRICT;
        CREATE UNIQUE INDEX experiment_runs_name_per_dataset ON experiment_runs(dataset_id, name)
            WHERE dataset_id IS NOT NULL;
        CREATE UNIQUE INDEX experiment_runs_name_without_dataset ON experiment_runs(name)
            WHERE dataset_id IS NULL;

        CREATE TABLE traces (
            id          TEXT NOT NULL PRIMARY KEY,
            name        TEXT NOT NULL,
            -- 'trace' (user code), 'item' (an experiment item's task), 'evaluation' (its evaluators).
            kind        TEXT NOT NULL DEFAULT 'trace' CHECK (kind IN ('trace', 'item', 'evaluation')),
            run_id      TEXT REFERENCES experiment_runs(id) ON DELETE CASCADE,
            input       TEXT,
            output      TEXT,
            metadata    TEXT,
            started_us  INTEGER NOT NULL,
            ended_us    INTEGER
        ) STRICT;
        CREATE INDEX traces_by_run ON traces(run_id, kind) WHERE run_id IS NOT NULL;

        CREATE TABLE observations (
            id                TEXT NOT NULL PRIMARY KEY,
            trace_id          TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            parent_id         TEXT,
            kind              TEXT NOT NULL CHECK (kind IN ('span', 'generation', 'event')),
            name              TEXT NOT NULL,
            input             TEXT,
            output            TEXT,
            metadata          TEXT,
            model             TEXT,
            model_parameters  TEXT,
            prompt_tokens     INTEGER,
            completion_tokens INTEGER,
            total_tokens      INTEGER,
            cost              REAL,
            level             TEXT NOT NULL DEFAULT 'default'
                              CHECK (level IN ('debug', 'default', 'warning', 'error')),
            status_message    TEXT,
            started_us        INTEGER NOT NULL,
            ended_us          INTEGER
        ) STRICT;
        CREATE INDEX observations_by_trace ON observations(trace_id);

        CREATE TABLE run_items (
            id               TEXT NOT NULL PRIMARY KEY,
            run_id           TEXT NOT NULL REFERENCES experiment_runs(id) ON DELETE CASCADE,
            dataset_item_id  TEXT REFERENCES dataset_items(id),
            repetition       INTEGER NOT NULL DEFAULT 0,
            input            TEXT,
            expected_output  TEXT,
            metadata         TEXT,
            output           TEXT,
            error            TEXT,
            latency_ms       REAL NOT NULL,
            attempts         INTEGER NOT NULL DEFAULT 1,
            -- Totals of the task's generations (evaluators' are in their own traces), kept here so
            -- summaries and comparisons need no join over observations. cost is NULL when no generation recorded one.
            generations      INTEGER NOT NULL DEFAULT 0,
            prompt_tokens    INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            total_tokens     INTEGER NOT NULL DEFAULT 0,
            cost             REAL,
            trace_id         TEXT REFERENCES traces(id),
            started_us       INTEGER NOT NULL
        ) STRICT;
        -- One committed result per (dataset item, repetition) in a run: resume relies on it.
        CREATE UNIQUE INDEX run_items_one_result ON run_items(run_id, dataset_item_id, repetition)
            WHERE dataset_item_id IS NOT NULL;
        CREATE INDEX run_items_by_run ON run_items(run_id, id);
        -- Failed items only: error counts in run listings read this small index, not the table.
        CREATE INDEX run_items_errors ON run_items(run_id) WHERE error IS NOT NULL;

        CREATE TABLE scores (
            id              TEXT NOT NULL PRIMARY KEY,
            run_id          TEXT REFERENCES experiment_runs(id) ON DELETE CASCADE,
            run_item_id     TEXT REFERENCES run_items(id) ON DELETE CASCADE,
            trace_id        TEXT REFERENCES traces(id) ON DELETE CASCADE,
            observation_id  TEXT REFERENCES observations(id) ON DELETE CASCADE,
            name            TEXT NOT NULL,
            data_type       TEXT NOT NULL CHECK (data_type IN ('numeric', 'boolean', 'categorical', 'text', 'unscored')),
            value           REAL,
            string_value    TEXT,
            comment         TEXT,
            source          TEXT NOT NULL DEFAULT 'sdk'
                            CHECK (source IN ('sdk', 'evaluator', 'judge', 'human', 'api')),
            evaluator       TEXT,
            created_us      INTEGER NOT NULL,
            CHECK (run_id IS NOT NULL OR run_item_id IS NOT NULL OR trace_id IS NOT NULL OR observation_id IS NOT NULL)
        ) STRICT;
        -- Covering index for per-run aggregates, percentiles and per-item comparisons of item scores.
        CREATE INDEX scores_by_run ON scores(run_id, name, value, data_type, run_item_id) WHERE run_item_id IS NOT NULL;
        CREATE INDEX scores_by_run_item ON scores(run_item_id) WHERE run_item_id IS NOT NULL;
        CREATE INDEX scores_by_trace ON scores(trace_id) WHERE trace_id IS NOT NULL;
        """

    /// Who runs a run (host, process, its start time) and its heartbeat, so a run whose process died
    /// reads as interrupted; and how the run was made (evaluators), so a resume can refuse changes.
    static let runLifecycle = """
        ALTER TABLE experiment_runs ADD COLUMN owner_host TEXT;
        ALTER TABLE experiment_runs ADD COLUMN owner_pid INTEGER;
        ALTER TABLE experiment_runs ADD COLUMN owner_process_start INTEGER;
        ALTER TABLE experiment_runs ADD COLUMN heartbeat_us INTEGER;
        ALTER TABLE experiment_runs ADD COLUMN configuration TEXT;
        """

    /// A key-value cache for evaluators (e.g. judge replies), so re-running does not re-pay a model.
    static let cache = """
        CREATE TABLE cache_entries (
            namespace   TEXT NOT NULL,
            key         TEXT NOT NULL,
            value       TEXT NOT NULL,
            created_us  INTEGER NOT NULL,
            PRIMARY KEY (namespace, key)
        ) STRICT, WITHOUT ROWID;
        """

    /// The CHECK constraints of 0001 and 0003 that test a column against a list of three or more
    /// values, and the same tests spelled with `=` and `OR`.
    ///
    /// SQLite 3.40 evaluates `x IN ('a', 'b', 'c')` with a list of more than two values by building a
    /// temporary b-tree of the list, for every row inserted; measured from C on this schema, the four
    /// such checks on an experiment item's rows (trace kind, span kind and level, score type and
    /// source) took the cost of recording an item from about 28 to 155 µs of CPU. The `OR` form
    /// accepts and rejects exactly the same values and compiles to plain comparisons.
    static let equivalentChecks: [(table: String, from: String, to: String)] = [
        ("experiment_runs", "status IN ('running', 'finished', 'interrupted', 'failed')",
         "status = 'running' OR status = 'finished' OR status = 'interrupted' OR status = 'failed'"),
        ("traces", "kind IN ('trace', 'item', 'evaluation')", "kind = 'trace' OR kind = 'item' OR kind = 'evaluation'"),
        ("observations", "kind IN ('span', 'generation', 'event')", "kind = 'span' OR kind = 'generation' OR kind = 'event'"),
        ("observations", "level IN ('debug', 'default', 'warning', 'error')",
         "level = 'debug' OR level = 'default' OR level = 'warning' OR level = 'error'"),
        ("scores", "data_type IN ('numeric', 'boolean', 'categorical', 'text', 'unscored')",
         "data_type = 'numeric' OR data_type = 'boolean' OR data_type = 'categorical' OR data_type = 'text' OR data_type = 'unscored'"),
        ("scores", "source IN ('sdk', 'evaluator', 'judge', 'human', 'api')",
         "source = 'sdk' OR source = 'evaluator' OR source = 'judge' OR source = 'human' OR source = 'api'"),
    ]

    /// Rewrites ``equivalentChecks`` in the stored table definitions.
    ///
    /// The tables' rows are untouched: only the text of a CHECK constraint changes, to one that accepts
    /// the same values, which is the case SQLite documents for editing `sqlite_schema` in place
    /// (https://www.sqlite.org/lang_altertable.html#otheralter): in the migration's transaction,
    /// `writable_schema` on, the definitions updated, `schema_version` incremented so that every
    /// connection reloads the schema, `writable_schema` off.
    static func writePath(_ db: Connection) throws {
        let version = try db.queryFirst("PRAGMA schema_version") { $0.int64(0) } ?? 0
        try db.execute("PRAGMA writable_schema = ON")
        do {
            for check in equivalentChecks {
                try db.run("UPDATE sqlite_schema SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
                           [.text(check.from), .text(check.to), .text(check.table)])
            }
            try db.execute("PRAGMA schema_version = \(version + 1)")
            try db.execute("PRAGMA writable_schema = OFF")
        } catch {
            try? db.execute("PRAGMA writable_schema = OFF")
            throw error
        }
        try db.execute(runLevelScores)
    }

    /// Run-level scores (those of no item) by run. Summaries and results read them with
    /// `run_id = ? AND run_item_id IS NULL`, which no index of 0001 serves (`scores_by_run` holds item
    /// scores only), so each such read scanned the whole scores table: with 50 other runs of 5,000
    /// items in the store, a summary took 7 times as long as with its run alone. Item scores are not
    /// in this index, so recording an item does not write to it.
    static let runLevelScores = """
        CREATE INDEX scores_of_run ON scores(run_id, id) WHERE run_item_id IS NULL;
        """

    /// Where each run stands with each team server it is pushed to (docs/sync.md).
    ///
    /// `chunks_acknowledged` chunks (indices 0..<n) are acknowledged by the server; `cursor` says where
    /// chunk n starts, so an interrupted push resumes there. `server` is the server's base URL as
    /// normalized by the sync client.
    static let syncState = """
        CREATE TABLE sync_state (
            run_id              TEXT NOT NULL REFERENCES experiment_runs(id) ON DELETE CASCADE,
            server              TEXT NOT NULL,
            status              TEXT NOT NULL
                                CHECK (status = 'pending' OR status = 'pushing' OR status = 'synced' OR status = 'failed'),
            chunks_acknowledged INTEGER NOT NULL DEFAULT 0,
            cursor              TEXT,
            run_items_sent      INTEGER NOT NULL DEFAULT 0,
            rows_sent           INTEGER NOT NULL DEFAULT 0,
            bytes_sent          INTEGER NOT NULL DEFAULT 0,
            attempts            INTEGER NOT NULL DEFAULT 0,
            last_error          TEXT,
            started_us          INTEGER,
            updated_us          INTEGER NOT NULL,
            synced_us           INTEGER,
            remote_url          TEXT,
            PRIMARY KEY (run_id, server)
        ) STRICT;
        """
}
