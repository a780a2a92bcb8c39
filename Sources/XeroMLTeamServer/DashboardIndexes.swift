/// Indexes the dashboard's queries need on the team server's tables, beyond the primary keys and the
/// indexes of the first migration, for the server's migrations to include.
///
/// Text ids sort as their bytes (`COLLATE "C"`, as SQLite sorts them), whatever the database's
/// default collation, so the dashboard's orders are the local dashboard's; an index serves such an
/// order only when it names the same collation, hence the collations below.
public enum DashboardIndexes {
    /// `CREATE INDEX IF NOT EXISTS` statements, each one statement, safe to run again.
    public static let statements: [String] = [
        // A run's items in start (id) order: the items table, its pages and counts.
        #"CREATE INDEX IF NOT EXISTS dashboard_run_items_by_id ON run_items (project_id, run_id, id COLLATE "C")"#,
        // A run's items in dataset-item order, for comparisons.
        #"CREATE INDEX IF NOT EXISTS dashboard_run_items_by_dataset_item ON run_items (project_id, run_id, dataset_item_id COLLATE "C", repetition) WHERE dataset_item_id IS NOT NULL"#,
        // Error counts and groups.
        #"CREATE INDEX IF NOT EXISTS dashboard_run_items_errors ON run_items (project_id, run_id) WHERE error IS NOT NULL"#,
        // (No index for the items table sorted by latency: such a page sorts the run's items, tens of
        // milliseconds at 100,000, where the index cost every push one entry per item.)
        // A run's item scores by name and value: summaries, histograms, score filters and sorts, comparisons.
        #"CREATE INDEX IF NOT EXISTS dashboard_scores_by_value ON scores (project_id, run_id, name COLLATE "C", value, data_type COLLATE "C", run_item_id COLLATE "C") WHERE run_item_id IS NOT NULL"#,
        // An item's scores, and a trace's.
        #"CREATE INDEX IF NOT EXISTS dashboard_scores_by_run_item ON scores (project_id, run_item_id) WHERE run_item_id IS NOT NULL"#,
        #"CREATE INDEX IF NOT EXISTS dashboard_scores_by_trace ON scores (project_id, trace_id) WHERE trace_id IS NOT NULL"#,
        // A run's traces by kind (the evaluators' usage).
        #"CREATE INDEX IF NOT EXISTS dashboard_traces_by_run ON traces (project_id, run_id, kind)"#,
        #"CREATE INDEX IF NOT EXISTS dashboard_observations_by_trace ON observations (project_id, trace_id)"#,
        // A dataset's items in id order.
        #"CREATE INDEX IF NOT EXISTS dashboard_dataset_items_by_id ON dataset_items (project_id, dataset_id, id COLLATE "C")"#,
        // Expired sessions, removed at each sign-in.
        #"CREATE INDEX IF NOT EXISTS dashboard_sessions_expiry ON sessions (expires_us)"#,
    ]
}
