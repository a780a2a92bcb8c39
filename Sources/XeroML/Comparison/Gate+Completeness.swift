import XeroMLSQLite

extension XeroML {
    /// Why `run` (and `baseline`) cannot be gated as complete runs: a status other than finished, fewer
    /// results than its dataset version has (item, repetition) pairs, or fewer items than the baseline.
    /// Empty when both are complete.
    func incompleteness(of run: ExperimentRun, baseline: ExperimentRun?) async throws -> [String] {
        var reasons: [String] = []
        for (role, candidate) in [("run", run)] + (baseline.map { [("baseline", $0)] } ?? []) {
            if candidate.status != .finished {
                reasons.append("the \(role) \"\(candidate.name)\" is \(candidate.status.rawValue), not finished")
            }
            guard let datasetID = candidate.datasetID, let version = candidate.datasetVersion else { continue }
            let runID = candidate.id
            let (items, covered, repetitions) = try await store.read { db in
                let items = try db.queryFirst("""
                    SELECT count(*) FROM dataset_items WHERE dataset_id = ? AND created_version <= ?
                        AND (archived_version IS NULL OR archived_version > ?)
                    """, [.text(datasetID), .integer(Int64(version)), .integer(Int64(version))]) { $0.int(0) } ?? 0
                let covered = try db.queryFirst(
                    "SELECT count(DISTINCT dataset_item_id), coalesce(max(repetition), 0) + 1 FROM run_items WHERE run_id = ?",
                    [.text(runID)]) { ($0.int(0), $0.int(1)) } ?? (0, 1)
                return (items, covered.0, covered.1)
            }
            if covered < items {
                reasons.append("the \(role) \"\(candidate.name)\" has results for \(covered) of the \(items) items of "
                               + "its dataset version \(version)")
            } else if candidate.itemCount < items * repetitions {
                reasons.append("the \(role) \"\(candidate.name)\" has \(candidate.itemCount) of \(items * repetitions) "
                               + "results (\(items) items × \(repetitions) repetitions)")
            }
        }
        if let baseline, baseline.datasetID == run.datasetID, run.itemCount < baseline.itemCount {
            reasons.append("the run \"\(run.name)\" has \(run.itemCount) results, fewer than the \(baseline.itemCount) "
                           + "of the baseline \"\(baseline.name)\"")
        }
        return reasons
    }
}
