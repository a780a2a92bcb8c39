import Foundation
import Synchronization
import XeroMLSQLite

extension XeroML {
    /// Runs `task` over every item of a dataset with bounded concurrency, retries, timeouts,
    /// repetitions and evaluators, and finishes the run.
    ///
    /// - Items are read from the store page by page, so any dataset size runs in flat memory.
    /// - At most ``ExperimentOptions/maxConcurrency`` tasks run at once (and no more than the shared
    ///   ``ExperimentOptions/limiter`` allows). Evaluators run after each task, pipelined: a slot is
    ///   freed when the task ends, not when its evaluators end.
    /// - A task error is recorded as the item's error once retries are exhausted; the run goes on.
    /// - Cancelling the calling task stops the run: tasks in flight are cancelled and record nothing,
    ///   everything committed stays, and the run is marked `interrupted`. Run again with
    ///   ``ExperimentOptions/resume`` to complete it.
    ///
    /// - Parameters:
    ///   - evaluators: item evaluators, run after each successful task.
    ///   - runEvaluators: run evaluators, run once over all results at the end; their scores attach to the run.
    /// - Returns: the finished run and its statistics.
    /// - Throws: `CancellationError` when cancelled (the run is then `interrupted`), ``XeroMLError``
    ///   when the run cannot be created or resumed.
    @discardableResult
    public func runExperiment(
        name: String, datasetName: String, description: String? = nil, metadata: JSONValue? = nil,
        evaluators: [any Evaluator] = [], runEvaluators: [any RunEvaluator] = [],
        options: ExperimentOptions = ExperimentOptions(),
        task: @escaping @Sendable (ItemRun) async throws -> Void
    ) async throws -> ExperimentReport {
        // Whatever happens, the progress stream ends, so a consumer waiting on it returns.
        defer { options.progress?.finish() }
        try options.validate()
        try Self.checkEvaluatorNames(evaluators)
        let experiment = try await openExperiment(name: name, datasetName: datasetName, description: description,
                                                  metadata: metadata, evaluators: evaluators,
                                                  runEvaluators: runEvaluators, options: options)
        guard let experiment else {
            // Resuming a finished run without retryErrors: it is complete, and finished runs do not change.
            let report = try await store.read { db -> ExperimentReport? in
                guard let run = try Self.findRun(db, reference: name, datasetName: datasetName) else { return nil }
                let summary = try RunSummary(db, runID: run.id).of(run)
                return ExperimentReport(run: run, summary: summary, progress: ExperimentProgress(
                    runID: run.id, total: 0, completed: 0, failed: 0, retries: 0, skipped: run.itemCount, inFlight: 0,
                    elapsed: .zero))
            }
            guard let report else { throw XeroMLError.notFound("run \"\(name)\"") }
            return report
        }
        return try await Runner(experiment: experiment, options: options, task: task, runEvaluators: runEvaluators)
            .run(source: .dataset)
    }

    /// Runs `task` over local items (not stored in a dataset), like
    /// ``runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)``.
    /// Local runs cannot be resumed.
    @discardableResult
    public func runExperiment(
        name: String, items: [LocalItem], description: String? = nil, metadata: JSONValue? = nil,
        evaluators: [any Evaluator] = [], runEvaluators: [any RunEvaluator] = [],
        options: ExperimentOptions = ExperimentOptions(),
        task: @escaping @Sendable (ItemRun) async throws -> Void
    ) async throws -> ExperimentReport {
        defer { options.progress?.finish() }
        try options.validate()
        guard !options.resume else { throw XeroMLError(.invalidArgument, "runs over local items cannot be resumed") }
        let experiment = try await createExperiment(name: name, datasetName: nil, description: description,
                                                    metadata: metadata, evaluators: evaluators, runEvaluators: runEvaluators)
        return try await Runner(experiment: experiment, options: options, task: task, runEvaluators: runEvaluators)
            .run(source: .local(items))
    }

    /// Creates the run, or with `resume` reopens the existing one. Returns `nil` for a finished run
    /// resumed without `retryErrors`: there is nothing to do.
    func openExperiment(name: String, datasetName: String, description: String?, metadata: JSONValue?,
                        evaluators: [any Evaluator], runEvaluators: [any RunEvaluator],
                        options: ExperimentOptions) async throws -> Experiment? {
        if options.resume, let existing = try await store.read({ db -> ExperimentRun? in
            guard let dataset = try Self.datasetRow(db, name: datasetName) else {
                throw XeroMLError.notFound("dataset \"\(datasetName)\"")
            }
            return try db.queryFirst("""
                SELECT \(Self.runColumns) FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id
                WHERE r.name = ? AND r.dataset_id = ?
                """, [.text(name), .text(dataset.id)], Self.readRun)
        }) {
            if existing.status == .finished && !options.retryErrors { return nil }
            let runID = existing.id
            let retryErrors = options.retryErrors
            let now = RunConfiguration(metadata: metadata, evaluators: evaluators.map(\.configurationFingerprint),
                                       runEvaluators: runEvaluators.map { "\(type(of: $0)):\($0.name)" },
                                       scoreRanges: RunConfiguration.ranges(of: evaluators))
            let changes = now.differences(fromMetadata: existing.metadata, configuration: existing.configuration)
            if !changes.isEmpty && !options.allowConfigurationChange {
                throw XeroMLError(.invalidArgument, """
                    run "\(existing.name)" was made differently; resuming it would mix two experiments: \
                    \(changes.joined(separator: "; ")). Start a new run, or resume with the changes on purpose \
                    (allowConfigurationChange, or --allow-changes in the CLI)
                    """)
            }
            var configuration = existing.configuration?.objectValue ?? now.json.objectValue ?? [:]
            if !changes.isEmpty {
                var resumes = configuration["resumed_with_changes"]?.arrayValue ?? []
                resumes.append(.object(["at_us": .int(nowMicroseconds()), "changes": .array(changes.map(JSONValue.string))]))
                configuration["resumed_with_changes"] = .array(resumes)
            }
            let recorded = JSONValue.object(configuration)
            try await store.write { db in
                try db.run("UPDATE experiment_runs SET configuration = ? WHERE id = ?", [.text(recorded.jsonString), .text(runID)])
                try Self.claimRun(db, runID: runID)
                if retryErrors {
                    // Drop errored results so they run again; their traces go with them.
                    let traces = try db.query(
                        "SELECT trace_id FROM run_items WHERE run_id = ? AND error IS NOT NULL AND trace_id IS NOT NULL",
                        [.text(runID)]) { $0.text(0)! }
                    try db.run("DELETE FROM run_items WHERE run_id = ? AND error IS NOT NULL", [.text(runID)])
                    for trace in traces { try db.run("DELETE FROM traces WHERE id = ?", [.text(trace)]) }
                }
                try db.run("UPDATE experiment_runs SET status = 'running', finished_us = NULL WHERE id = ?", [.text(runID)])
            }
            return Experiment(id: existing.id, name: existing.name, datasetID: existing.datasetID,
                              datasetName: existing.datasetName, datasetVersion: existing.datasetVersion,
                              client: self, evaluators: evaluators)
        }
        return try await createExperiment(name: name, datasetName: datasetName, description: description,
                                          metadata: metadata, evaluators: evaluators, runEvaluators: runEvaluators)
    }
}

/// The scheduler of one experiment invocation.
