extension Schema {
    /// Indexes for the dashboard's reads. The run-level scores of a run (no item, no trace) had no
    /// index: reading them scanned every score of the file (133 ms for 400,000 scores). This partial
    /// index holds only those few rows, so it costs the writer nothing per item.
    static let dashboardIndexes = """
        CREATE INDEX scores_of_runs ON scores(run_id) WHERE run_item_id IS NULL AND run_id IS NOT NULL;
        """
}
