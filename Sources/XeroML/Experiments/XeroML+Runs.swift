import Foundation
import XeroMLSQLite

extension XeroML {
    /// Starts a new experiment run named `name`, over the dataset `datasetName` or, with `nil`, over
    /// local items given to ``Experiment/runItemRaw(input:expectedOutput:metadata:repetition:_:)``.
    ///
    /// The run records the dataset's current version.
    /// - Throws: ``XeroMLError/Code/alreadyExists`` when the dataset already has a run of that name,
    ///   ``XeroMLError/Code/notFound`` when the dataset does not exist.
    ///
    /// `evaluators` run automatically after each item whose task succeeded; their scores are recorded
    /// with the item's.
    public func createExperiment(name: String, datasetName: String? = nil, description: String? = nil,
                                 metadata: JSONValue? = nil, evaluators: [any Evaluator] = []) async throws -> Experiment {
        try await createExperiment(name: name, datasetName: datasetName, description: description, metadata: metadata,
                                   evaluators: evaluators, runEvaluators: [])
    }

    func createExperiment(name: String, datasetName: String?, description: String?, metadata: JSONValue?,
                          evaluators: [any Evaluator], runEvaluators: [any RunEvaluator]) async throws -> Experiment {
        try Self.validateName(name, what: "run")
        try Self.checkEvaluatorNames(evaluators)
        let configuration = RunConfiguration(metadata: metadata, evaluators: evaluators.map(\.configurationFingerprint),
                                             runEvaluators: runEvaluators.map { "\(type(of: $0)):\($0.name)" },
                                             scoreRanges: RunConfiguration.ranges(of: evaluators))
        let row = try await store.write { db -> ExperimentRun in
            var dataset: DatasetRow?
            if let datasetName {
                dataset = try Self.datasetRow(db, name: datasetName)
                guard dataset != nil else { throw XeroMLError.notFound("dataset \"\(datasetName)\"") }
            }
            let exists = try db.queryFirst(
                "SELECT 1 FROM experiment_runs WHERE name = ? AND dataset_id IS ?",
                [.text(name), .text(dataset?.id)]) { _ in true } ?? false
            if exists {
                let scope = datasetName.map { "dataset \"\($0)\"" } ?? "the local runs"
                throw XeroMLError(.alreadyExists, """
                    \(scope) already has a run named "\(name)": choose another name (XeroML.timestampedRunName("\(name)") \
                    adds the time, for scripts run again and again), or continue that run with \
                    runExperiment(…, options: ExperimentOptions(resume: true)) (--resume in the CLI)
                    """)
            }
            let id = UUIDv7.make()
            let now = nowMicroseconds()
            try db.run("""
                INSERT INTO experiment_runs(id, dataset_id, dataset_version, name, description, metadata, status, created_us,
                    configuration)
                VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)
                """, [.text(id), .text(dataset?.id), .integer(dataset?.version), .text(name), .text(description),
                      metadata.sql, .integer(now), .text(configuration.json.jsonString)])
            try Self.claimRun(db, runID: id)
            return ExperimentRun(id: id, name: name, datasetID: dataset?.id, datasetName: datasetName,
                                 datasetVersion: dataset?.version, description: description, metadata: metadata,
                                 status: .running, createdAt: date(microseconds: now), finishedAt: nil,
                                 itemCount: 0, errorCount: 0)
        }
        return Experiment(id: row.id, name: row.name, datasetID: row.datasetID, datasetName: row.datasetName,
                          datasetVersion: row.datasetVersion, client: self, evaluators: evaluators)
    }

    /// Starts a new experiment run whose evaluators are given by name, from ``evaluators``
    /// (e.g. `["exact_match", "levenshtein"]`).
    /// - Throws: ``XeroMLError/Code/invalidArgument`` for an unknown name, listing the known ones.
    public func createExperiment(name: String, datasetName: String? = nil, description: String? = nil,
                                 metadata: JSONValue? = nil, evaluators names: [String]) async throws -> Experiment {
        try await createExperiment(name: name, datasetName: datasetName, description: description, metadata: metadata,
                                   evaluators: evaluators.make(names))
    }

    /// Two evaluators of one name would record two scores of that name on every item, which no reader
    /// could tell apart: refused before the run starts.
    static func checkEvaluatorNames(_ evaluators: [any Evaluator]) throws {
        var seen: Set<String> = []
        for evaluator in evaluators where !seen.insert(evaluator.name).inserted {
            throw XeroMLError(.invalidArgument, """
                two evaluators are named "\(evaluator.name)"; each score name has one source: give one of them \
                another name (most evaluators take `name:`)
                """)
        }
    }

    static let runColumns = """
        r.id, r.name, r.dataset_id, d.name, r.dataset_version, r.description, r.metadata, r.status, r.created_us,
        r.finished_us,
        (SELECT count(*) FROM run_items i WHERE i.run_id = r.id),
        (SELECT count(*) FROM run_items i WHERE i.run_id = r.id AND i.error IS NOT NULL),
        r.owner_host, r.owner_pid, r.owner_process_start, r.heartbeat_us, r.configuration
        """

    /// A run from a row of ``runColumns``. A run stored as `running` whose owner is gone (its process
    /// ended, or its heartbeat went stale on another machine) reads as ``RunStatus/interrupted``.
    @Sendable static func readRun(_ s: Statement) -> ExperimentRun {
        let stored = RunStatus(rawValue: s.text(7) ?? "") ?? .failed
        let createdAt = date(microseconds: s.int64(8))
        let owner = s.text(12).map { host in
            RunOwner(host: host, processID: Int(s.optionalInt64(13) ?? 0),
                     heartbeatAt: s.optionalInt64(15).map { date(microseconds: $0) }, processStart: s.optionalInt64(14))
        }
        var status = stored
        if stored == .running {
            if let owner {
                if owner.isGone() { status = .interrupted }
            } else if Date().timeIntervalSince(createdAt) > Double(RunOwner.staleAfter.components.seconds) {
                // Recorded before owners were kept, and old enough that nobody is still running it.
                status = .interrupted
            }
        }
        return ExperimentRun(
            id: s.text(0)!, name: s.text(1)!, datasetID: s.text(2), datasetName: s.text(3),
            datasetVersion: s.optionalInt64(4).map(Int.init), description: s.text(5), metadata: parseStored(s.text(6)),
            status: status, createdAt: createdAt,
            finishedAt: s.optionalInt64(9).map { date(microseconds: $0) }, itemCount: s.int(10), errorCount: s.int(11),
            owner: owner, configuration: parseStored(s.text(16)), storedStatus: stored)
    }

    /// The runs of a dataset (or of every dataset with `nil`), newest first.
    public func runs(datasetName: String? = nil) async throws -> [ExperimentRun] {
        try await store.read { db in try Self.runs(db, datasetName: datasetName) }
    }

    static func runs(_ db: Connection, datasetName: String?) throws -> [ExperimentRun] {
        if let datasetName {
            guard try datasetRow(db, name: datasetName) != nil else { throw XeroMLError.notFound("dataset \"\(datasetName)\"") }
            return try db.query("""
                SELECT \(runColumns) FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id
                WHERE d.name = ? ORDER BY r.id DESC
                """, [.text(datasetName)], readRun)
        }
        return try db.query("""
            SELECT \(runColumns) FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id ORDER BY r.id DESC
            """, [], readRun)
    }

    /// The run with id `id`, or `nil`.
    public func run(id: String) async throws -> ExperimentRun? {
        try await store.read { db in try Self.findRun(db, reference: id, datasetName: nil) }
    }

    /// Finds a run by id, id prefix (at least 8 characters) or name. A name shared by runs of several
    /// datasets is ambiguous unless `datasetName` is given.
    static func findRun(_ db: Connection, reference: String, datasetName: String?) throws -> ExperimentRun? {
        if let run = try db.queryFirst("""
            SELECT \(runColumns) FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id WHERE r.id = ?
            """, [.text(reference)], readRun) { return run }
        var candidates = try db.query("""
            SELECT \(runColumns) FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id
            WHERE r.name = ? AND (? IS NULL OR d.name = ?) ORDER BY r.id DESC
            """, [.text(reference), .text(datasetName), .text(datasetName)], readRun)
        if candidates.isEmpty, reference.count >= 8 {
            candidates = try db.query("""
                SELECT \(runColumns) FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id
                WHERE r.id >= ? AND r.id < ? || 'g' ORDER BY r.id
                """, [.text(reference), .text(reference)], readRun)
        }
        if candidates.count > 1 {
            let names = candidates.map { "\($0.id) (\($0.datasetName ?? "local"))" }.joined(separator: ", ")
            throw XeroMLError(.invalidArgument, "\"\(reference)\" matches several runs: \(names); use one of these ids (or name the dataset, where the command takes one)")
        }
        return candidates.first
    }

    /// Every recorded item result of a run, in the order they were recorded, with the run's summary.
    ///
    /// Reads committed data only: call ``flush()`` first to include results still being written
    /// (``Experiment/results()`` does).
    ///
    /// - Parameter limit: read only the first `limit` item results. Their ``ExperimentResults/summary``
    ///   then covers those items only, while run-level scores and token totals cover the whole run;
    ///   ``summary(runID:)`` covers the whole run without loading it.
    public func results(runID: String, limit: Int? = nil) async throws -> ExperimentResults {
        try await store.read { db in try Self.results(db, runID: runID, limit: limit) }
    }

    static func results(_ db: Connection, runID: String, limit: Int? = nil) throws -> ExperimentResults {
        guard let run = try findRun(db, reference: runID, datasetName: nil) else { throw XeroMLError.notFound("run \(runID)") }
        var scoresByItem: [String: [Score]] = [:]
        var runScores: [Score] = []
        // Run-level and item scores apart, so that each part is read through an index of its own
        // (`scores_of_run`, `scores_by_run`) instead of a scan of every run's scores.
        let scoreRows = try db.query("""
            SELECT id, name, data_type, value, string_value, comment, source, evaluator, run_id, run_item_id,
                trace_id, observation_id, created_us
            FROM scores WHERE run_id = ?1 AND run_item_id IS NULL
            UNION ALL
            SELECT id, name, data_type, value, string_value, comment, source, evaluator, run_id, run_item_id,
                trace_id, observation_id, created_us
            FROM scores WHERE run_id = ?1 AND run_item_id IS NOT NULL
                AND (?2 IS NULL OR run_item_id IN (SELECT id FROM run_items WHERE run_id = ?1 ORDER BY id LIMIT ?3))
            ORDER BY id
            """, [.text(run.id), .integer(limit), .integer(limit ?? -1)], readScore)
        for score in scoreRows {
            if let item = score.runItemID { scoresByItem[item, default: []].append(score) }
            else if score.traceID == nil { runScores.append(score) }
        }
        let items = try db.query("""
            SELECT r.id, r.dataset_item_id, r.repetition, coalesce(r.input, d.input),
                coalesce(r.expected_output, d.expected_output), coalesce(r.metadata, d.metadata), r.output, r.error,
                r.latency_ms, r.trace_id, r.started_us, r.attempts
            FROM run_items r LEFT JOIN dataset_items d ON d.id = r.dataset_item_id
            WHERE r.run_id = ? ORDER BY r.id LIMIT ?
            """, [.text(run.id), .integer(Int64(limit ?? -1))]) { s in
            let id = s.text(0)!
            return ExperimentItemResult(
                id: id, runID: run.id, datasetItemID: s.text(1), repetition: s.int(2),
                input: parseStored(s.text(3)) ?? .null, expectedOutput: parseStored(s.text(4)),
                metadata: parseStored(s.text(5)), output: parseStored(s.text(6)), error: s.text(7),
                latency: .microseconds(Int64((s.double(8) * 1000).rounded())), attempts: s.int(11), traceID: s.text(9),
                startedAt: date(microseconds: s.int64(10)), scores: scoresByItem[id] ?? [])
        }
        return ExperimentResults(run: run, items: items, runScores: runScores, usage: try usage(db, runID: run.id),
                                 evaluatorUsage: try evaluatorUsage(db, runID: run.id))
    }

    /// Totals of the tasks' generations, kept on the run items.
    static func usage(_ db: Connection, runID: String) throws -> UsageTotals {
        try db.queryFirst("""
            SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(total_tokens), 0),
                coalesce(sum(cost), 0), coalesce(sum(generations), 0), coalesce(sum(generations * (cost IS NOT NULL)), 0)
            FROM run_items WHERE run_id = ?
            """, [.text(runID)]) { s in
            UsageTotals(promptTokens: s.int(0), completionTokens: s.int(1), totalTokens: s.int(2), cost: s.double(3),
                        generations: s.int(4), pricedGenerations: s.int(5))
        } ?? UsageTotals()
    }

    /// Totals of the evaluators' generations (LLM judges), recorded in the run's evaluation traces.
    static func evaluatorUsage(_ db: Connection, runID: String) throws -> UsageTotals {
        try db.queryFirst("""
            SELECT coalesce(sum(o.prompt_tokens), 0), coalesce(sum(o.completion_tokens), 0),
                coalesce(sum(o.total_tokens), 0), coalesce(sum(o.cost), 0), count(o.id), count(o.cost)
            FROM traces t JOIN observations o ON o.trace_id = t.id
            WHERE t.run_id = ? AND t.kind = 'evaluation' AND o.kind = 'generation'
            """, [.text(runID)]) { s in
            UsageTotals(promptTokens: s.int(0), completionTokens: s.int(1), totalTokens: s.int(2), cost: s.double(3),
                        generations: s.int(4), pricedGenerations: s.int(5))
        } ?? UsageTotals()
    }

    /// Statistics of a run computed in SQL, without loading its results: for large runs.
    public func summary(runID: String) async throws -> RunSummary {
        try await store.read { db in
            guard let run = try Self.findRun(db, reference: runID, datasetName: nil) else { throw XeroMLError.notFound("run \(runID)") }
            return try RunSummary(db, runID: run.id).of(run)
        }
    }

    @Sendable static func readScore(_ s: Statement) -> Score {
        let value: ScoreValue
        switch s.text(2) {
        case "boolean": value = .boolean(s.double(3) != 0)
        case "categorical": value = .categorical(s.text(4) ?? "")
        case "text": value = .text(s.text(4) ?? "")
        case "unscored": value = .unscored(s.text(4) ?? "")
        default: value = .numeric(s.double(3))
        }
        return Score(id: s.text(0)!, name: s.text(1)!, value: value, comment: s.text(5),
                     source: ScoreSource(rawValue: s.text(6) ?? "") ?? .sdk, evaluator: s.text(7), runID: s.text(8),
                     runItemID: s.text(9), traceID: s.text(10), observationID: s.text(11),
                     createdAt: date(microseconds: s.int64(12)))
    }

    /// One observation by id (e.g. the judge generation a score links to through
    /// ``Score/observationID``), or `nil`.
    public func observation(id: String) async throws -> ObservationRecord? {
        try await store.read { db in
            try db.queryFirst("""
                SELECT \(Self.observationColumns) FROM observations WHERE id = ?
                """, [.text(id)], Self.readObservation)
        }
    }

    static let observationColumns = """
        id, trace_id, parent_id, kind, name, input, output, metadata, model, model_parameters,
        prompt_tokens, completion_tokens, total_tokens, cost, level, status_message, started_us, ended_us
        """

    @Sendable static func readObservation(_ s: Statement) -> ObservationRecord {
        ObservationRecord(
            id: s.text(0)!, traceID: s.text(1)!, parentID: s.text(2),
            kind: ObservationKind(rawValue: s.text(3)!) ?? .span, name: s.text(4)!,
            input: parseStored(s.text(5)), output: parseStored(s.text(6)), metadata: parseStored(s.text(7)),
            model: s.text(8), modelParameters: parseStored(s.text(9)),
            usage: TokenUsage(promptTokens: s.optionalInt64(10).map(Int.init),
                              completionTokens: s.optionalInt64(11).map(Int.init),
                              totalTokens: s.optionalInt64(12).map(Int.init)),
            cost: s.optionalDouble(13), level: ObservationLevel(rawValue: s.text(14)!) ?? .default,
            statusMessage: s.text(15), startedAt: date(microseconds: s.int64(16)),
            endedAt: s.optionalInt64(17).map { date(microseconds: $0) })
    }

    /// A trace with its observations and scores, or `nil`.
    public func trace(id: String) async throws -> TraceRecord? {
        try await store.read { db in
            guard var trace = try db.queryFirst(
                "SELECT id, name, run_id, input, output, metadata, started_us, ended_us, kind FROM traces WHERE id = ?",
                [.text(id)], { s in
                    TraceRecord(id: s.text(0)!, name: s.text(1)!, kind: TraceKind(rawValue: s.text(8) ?? "") ?? .trace,
                                runID: s.text(2), input: parseStored(s.text(3)),
                                output: parseStored(s.text(4)), metadata: parseStored(s.text(5)),
                                startedAt: date(microseconds: s.int64(6)),
                                endedAt: s.optionalInt64(7).map { date(microseconds: $0) }, observations: [], scores: [])
                }) else { return nil }
            trace.observations = try db.query(
                "SELECT \(Self.observationColumns) FROM observations WHERE trace_id = ? ORDER BY started_us, id",
                [.text(id)], Self.readObservation)
            trace.scores = try db.query("""
                SELECT id, name, data_type, value, string_value, comment, source, evaluator, run_id, run_item_id,
                    trace_id, observation_id, created_us
                FROM scores WHERE trace_id = ? ORDER BY id
                """, [.text(id)], Self.readScore)
            return trace
        }
    }
}

extension XeroML {
    /// Finds a run by id, id prefix (8+ characters) or name; `datasetName` disambiguates a name.
    /// - Throws: ``XeroMLError/Code/invalidArgument`` when the reference matches several runs.
    public func findRun(_ reference: String, datasetName: String? = nil) async throws -> ExperimentRun? {
        try await store.read { db in try Self.findRun(db, reference: reference, datasetName: datasetName) }
    }
}
