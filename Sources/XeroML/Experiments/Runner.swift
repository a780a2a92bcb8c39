import Foundation
import Synchronization
import XeroMLSQLite

/// How ``XeroML/runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)`` runs.
public struct ExperimentOptions: Sendable {
    /// Items whose task runs at the same time (the sliding window). Default 8.
    public var maxConcurrency: Int
    /// The longest one attempt of a task may take; `nil` for no limit. A timeout is retryable. The task
    /// is cancelled at the deadline; a task that ignores cancellation keeps its slot until it returns.
    public var timeout: Duration?
    /// How retryable errors (``RetryableError``, timeouts) are retried.
    public var retry: RetryPolicy
    /// Runs per item. Each (item, repetition) pair gets exactly one result.
    public var repetitions: Int
    /// Continue the run of the same name instead of failing because it exists: only (item, repetition)
    /// pairs without a committed result run. Several processes may resume one run at once: a pair
    /// both of them ran keeps the result committed first, and the other is dropped.
    public var resume: Bool
    /// With ``resume``: also run again the pairs whose committed result is an error (the old result is
    /// replaced). This is the one way a finished run changes; resuming a finished run without it does
    /// nothing and returns its report.
    public var retryErrors: Bool
    /// A limiter shared with other experiments, adapting to rate limits. `nil`: only ``maxConcurrency``.
    public var limiter: AdaptiveLimiter?
    /// Where progress events go; see ``ExperimentProgress``.
    public var progress: AsyncStream<ExperimentProgress>.Continuation?
    /// Dataset items read per page. The run holds at most two pages (the current one and the one read
    /// ahead) plus the window in memory.
    public var pageSize: Int
    /// Seed of the retry jitter, for reproducible waits; `nil` draws from the system.
    public var seed: UInt64?
    /// With ``resume``: resume even when the metadata or the evaluators differ from those the run was
    /// made with. Without it such a resume is refused with an error naming each difference, so that
    /// half a run cannot silently answer another question than the other half. When allowed, the run
    /// records the changes (its ``ExperimentRun/configuration`` key `resumed_with_changes`).
    public var allowConfigurationChange = false

    public init(maxConcurrency: Int = 8, timeout: Duration? = nil, retry: RetryPolicy = RetryPolicy(),
                repetitions: Int = 1, resume: Bool = false, retryErrors: Bool = false, limiter: AdaptiveLimiter? = nil,
                progress: AsyncStream<ExperimentProgress>.Continuation? = nil, pageSize: Int = 1_000, seed: UInt64? = nil) {
        self.maxConcurrency = maxConcurrency
        self.timeout = timeout
        self.retry = retry
        self.repetitions = repetitions
        self.resume = resume
        self.retryErrors = retryErrors
        self.limiter = limiter
        self.progress = progress
        self.pageSize = pageSize
        self.seed = seed
    }

    func validate() throws {
        guard maxConcurrency >= 1 else { throw XeroMLError(.invalidArgument, "maxConcurrency must be at least 1") }
        guard repetitions >= 1 else { throw XeroMLError(.invalidArgument, "repetitions must be at least 1") }
        guard pageSize >= 1 else { throw XeroMLError(.invalidArgument, "pageSize must be at least 1") }
        if let timeout, timeout <= .zero { throw XeroMLError(.invalidArgument, "timeout must be positive") }
        if retryErrors && !resume { throw XeroMLError(.invalidArgument, "retryErrors needs resume") }
    }
}

/// A progress event of a running experiment.
///
/// ```swift
/// let (events, continuation) = AsyncStream.makeStream(of: ExperimentProgress.self,
///                                                     bufferingPolicy: .bufferingNewest(1))
/// var options = ExperimentOptions(maxConcurrency: 16)
/// options.progress = continuation
/// Task { for await p in events { print(p.completed, "/", p.total, p.itemsPerSecond) } }
/// ```
public struct ExperimentProgress: Sendable, Hashable {
    public var runID: String
    /// (item, repetition) pairs this invocation will run.
    public var total: Int
    /// Pairs done so far (committed or handed to the writer), failures included.
    public var completed: Int
    /// Pairs whose task failed (after retries).
    public var failed: Int
    /// Retries so far.
    public var retries: Int
    /// Pairs skipped because a result was already committed (resume).
    public var skipped: Int
    /// Tasks running now.
    public var inFlight: Int
    public var elapsed: Duration
    /// How long new work stays paused because a server asked to wait (`Retry-After`), or `nil`.
    public var pausedFor: Duration? = nil
    /// Why the run stopped starting new items: results could not be stored. `nil` while all is well.
    public var writeFailure: String? = nil

    /// Completed pairs per second.
    public var itemsPerSecond: Double { elapsed > .zero ? Double(completed) / elapsed.seconds : 0 }
    /// Estimated time to finish, at the rate so far.
    public var estimatedRemaining: Duration? {
        let rate = itemsPerSecond
        guard rate > 0 else { return nil }
        return .seconds(Double(max(0, total - completed)) / rate)
    }
    /// Whether the run is complete.
    public var isFinished: Bool { completed >= total }
}

/// A local item for ``XeroML/runExperiment(name:items:description:metadata:evaluators:runEvaluators:options:task:)``.
public struct LocalItem: Sendable, Hashable {
    public var input: JSONValue
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    public init(input: JSONValue, expectedOutput: JSONValue? = nil, metadata: JSONValue? = nil) {
        self.input = input
        self.expectedOutput = expectedOutput
        self.metadata = metadata
    }
}

/// What a finished ``XeroML/runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)`` returns.
public struct ExperimentReport: Sendable {
    /// The run, as stored after finishing.
    public var run: ExperimentRun
    /// Statistics over all of the run's results (including those of earlier, resumed invocations).
    public var summary: RunSummary
    /// What this invocation did.
    public var progress: ExperimentProgress

    /// A readable summary (the run's statistics).
    public func format() -> String {
        summary.format(title: "Run \"\(run.name)\"" + (run.datasetName.map { " on \($0)" } ?? ""))
    }
}

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
                let summary = try RunSummary(db, runID: run.id)
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
struct Runner: Sendable {
    enum Source: Sendable {
        case dataset
        case local([LocalItem])
    }

    let experiment: Experiment
    let options: ExperimentOptions
    let task: @Sendable (ItemRun) async throws -> Void
    let runEvaluators: [any RunEvaluator]

    private var store: Store { experiment.client.store }

    /// Counters shared by the child tasks.
    final class Counters: Sendable {
        struct Values { var completed = 0, failed = 0, retries = 0, inFlight = 0 }
        let values = Mutex(Values())
    }

    func run(source: Source) async throws -> ExperimentReport {
        // A failure of an earlier run whose results are accounted for does not stop this one.
        store.forgetSettledFailure()
        let clock = ContinuousClock()
        let start = clock.now
        let counters = Counters()
        let (total, skipped): (Int, Int)
        switch source {
        case .local(let items): (total, skipped) = (items.count * options.repetitions, 0)
        case .dataset:
            let (all, done) = try await countPairs()
            (total, skipped) = (all - done, done)
        }
        let limiter = options.limiter
        let store = self.store
        let snapshot = { @Sendable () -> ExperimentProgress in
            let v = counters.values.withLock { $0 }
            return ExperimentProgress(runID: experiment.id, total: total, completed: v.completed, failed: v.failed,
                                      retries: v.retries, skipped: skipped, inFlight: v.inFlight,
                                      elapsed: clock.now - start, pausedFor: limiter?.pauseRemaining,
                                      writeFailure: store.writeFailure?.message)
        }
        options.progress?.yield(snapshot())
        // Once a second: a progress event even when no item ends (a long Retry-After pause shows), and
        // every few seconds the run's heartbeat, so readers elsewhere know its process is alive.
        let progress = options.progress
        let client = experiment.client
        let runID = experiment.id
        let ticker = Task {
            var sinceHeartbeat = Duration.zero
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                progress?.yield(snapshot())
                sinceHeartbeat += .seconds(1)
                if sinceHeartbeat >= RunOwner.heartbeatInterval, store.writeFailure == nil {
                    sinceHeartbeat = .zero
                    try? await client.heartbeat(runID: runID)
                }
            }
        }
        defer { ticker.cancel() }
        do {
            let work = WorkSequence(runner: self, source: source)
            let stoppedBy = try await schedule(work, counters: counters, onItemDone: { progress?.yield(snapshot()) })
            try await experiment.client.flush()
            if let stoppedBy {
                // What was held may have been stored on the retry, but the items after the failure
                // never ran: the run is not complete.
                throw XeroMLError(stoppedBy.code, "\(stoppedBy.message); new items stopped at the first failed write",
                                  underlying: stoppedBy.underlying)
            }
            try await runRunEvaluators()
            try Task.checkCancellation()
            try await experiment.finish()
        } catch {
            // Cancelled or failed, at any point before the run finished: keep what was committed, mark
            // the run, and report.
            ticker.cancel()
            let status: RunStatus = error is CancellationError || Task.isCancelled ? .interrupted : .failed
            try? await experiment.client.flush()
            if (try? await experiment.mark(status)) == nil, status == .failed {
                // The file is still locked: the status is written once the lock frees (within the lock
                // timeout), without holding up the caller; an exit before that leaves it interrupted.
                let experiment = self.experiment
                Task.detached { try? await experiment.mark(.failed, waitingForLock: true) }
            }
            options.progress?.yield(snapshot())
            options.progress?.finish()
            if status == .interrupted { throw CancellationError() }
            if let storage = error as? XeroMLError, storage.code == .writeFailed || storage.code == .locked {
                // Say what is safe: how many results of this run are in the file.
                let stored = try? await store.read { db in
                    try db.queryFirst("SELECT count(*) FROM run_items WHERE run_id = ?", [.text(runID)]) { $0.int(0) }
                } ?? nil
                let kept = stored.map { "; \($0) result\($0 == 1 ? " is" : "s are") stored in \(store.path)" } ?? ""
                throw XeroMLError(storage.code, "run \"\(experiment.name)\" stopped: \(storage.message)\(kept); "
                                  + "resume it once the file is writable", underlying: storage.underlying)
            }
            throw error
        }
        let final = snapshot()
        options.progress?.yield(final)
        options.progress?.finish()
        let (run, summary) = try await experiment.client.store.read { db in
            (try XeroML.findRun(db, reference: runID, datasetName: nil)!, try RunSummary(db, runID: runID))
        }
        // Intervals clipped to the ranges the evaluators declare (a similarity cannot pass 1), as
        // recorded with the run, so every later reader clips the same way.
        return ExperimentReport(run: run, summary: summary.declaringRanges(run.declaredScoreRanges), progress: final)
    }

    /// Runs the run evaluators over all results and records their scores on the run, replacing those
    /// of an earlier invocation (a resumed run is evaluated once, as a whole).
    private func runRunEvaluators() async throws {
        guard !runEvaluators.isEmpty else { return }
        let runID = experiment.id
        let names = runEvaluators.map(\.name)
        try await store.write { db in
            for name in names {
                try db.run("DELETE FROM scores WHERE run_id = ? AND run_item_id IS NULL AND evaluator = ?",
                           [.text(runID), .text(name)])
            }
        }
        let results = try await experiment.client.results(runID: runID)
        for evaluator in runEvaluators {
            var evaluations: [Evaluation]
            do {
                evaluations = try await evaluator.evaluate(results)
                if evaluations.isEmpty {
                    evaluations = [Evaluation(name: evaluator.name, value: .unscored("the evaluator returned no result"))]
                }
            } catch {
                if Task.isCancelled { throw CancellationError() }
                evaluations = [Evaluation(name: evaluator.name, value: .unscored(describeError(error)))]
            }
            for evaluation in evaluations {
                await experiment.score(name: evaluation.name, value: evaluation.value,
                                       comment: evaluation.comment ?? evaluation.value.unscoredReason,
                                       source: evaluation.source ?? .evaluator, evaluator: evaluator.name)
            }
        }
        try await experiment.client.flush()
    }

    /// (item, repetition) pairs of the run's dataset version, and how many already have a result.
    private func countPairs() async throws -> (Int, Int) {
        let runID = experiment.id
        let datasetID = experiment.datasetID ?? ""
        let version = Int64(experiment.datasetVersion ?? 0)
        let repetitions = options.repetitions
        return try await store.read { db in
            let items = try db.queryFirst("""
                SELECT count(*) FROM dataset_items WHERE dataset_id = ? AND created_version <= ?
                    AND (archived_version IS NULL OR archived_version > ?)
                """, [.text(datasetID), .integer(version), .integer(version)]) { $0.int(0) } ?? 0
            let done = try db.queryFirst(
                "SELECT count(*) FROM run_items WHERE run_id = ? AND dataset_item_id IS NOT NULL AND repetition < ?",
                [.text(runID), .integer(Int64(repetitions))]) { $0.int(0) } ?? 0
            return (items * repetitions, done)
        }
    }

    /// One (item, repetition) pair to run.
    struct Work: Sendable {
        var source: PendingItem.Source
    }

    /// The pairs still to run, read from the store a page at a time.
    struct WorkSequence: AsyncSequence, Sendable {
        typealias Element = Work
        let runner: Runner
        let source: Source

        struct AsyncIterator: AsyncIteratorProtocol {
            let runner: Runner
            let source: Source
            var buffer: [Work] = []
            var position = 0
            var cursor = ""
            var localIndex = 0
            var exhausted = false
            /// The next page, read while the current one is consumed: waiting for a read between pages
            /// would leave the window's slots idle.
            var prefetch: Task<Page, any Error>?

            struct Page: Sendable {
                var work: [Work]
                var cursor: String
                var exhausted: Bool
            }

            mutating func next() async throws -> Work? {
                while position >= buffer.count {
                    if exhausted { return nil }
                    let page: Page
                    if let prefetch {
                        page = try await prefetch.value
                        self.prefetch = nil
                    } else {
                        page = try await fetch(after: cursor)
                    }
                    (buffer, position, cursor, exhausted) = (page.work, 0, page.cursor, page.exhausted)
                }
                if case .dataset = source, prefetch == nil, !exhausted, position >= buffer.count / 2 {
                    let (iterator, after) = (self, cursor)
                    prefetch = Task { try await iterator.fetchDatasetPage(after: after) }
                }
                defer { position += 1 }
                return buffer[position]
            }

            private mutating func fetch(after: String) async throws -> Page {
                if case .local = source {
                    return nextLocalPage()
                }
                return try await fetchDatasetPage(after: after)
            }

            private mutating func nextLocalPage() -> Page {
                guard case .local(let items) = source else { return Page(work: [], cursor: "", exhausted: true) }
                let repetitions = runner.options.repetitions
                let end = Swift.min(items.count, localIndex + runner.options.pageSize)
                defer { localIndex = end }
                let work = items[localIndex..<end].flatMap { item in
                    (0..<repetitions).map { rep in
                        Work(source: .init(input: item.input, expectedOutput: item.expectedOutput,
                                           metadata: item.metadata, item: nil, repetition: rep))
                    }
                }
                return Page(work: work, cursor: "", exhausted: end >= items.count)
            }

            private func fetchDatasetPage(after: String) async throws -> Page {
                let repetitions = runner.options.repetitions
                let experiment = runner.experiment
                let (datasetID, version, runID) = (experiment.datasetID ?? "", experiment.datasetVersion ?? 0, experiment.id)
                let pageSize = runner.options.pageSize
                let (items, done) = try await runner.store.read { db -> ([DatasetItem], Set<String>) in
                    let items = try XeroML.itemsPage(db, datasetID: datasetID, version: version, after: after, limit: pageSize)
                    guard let first = items.first, let last = items.last else { return ([], []) }
                    let done = try db.query("""
                        SELECT dataset_item_id, repetition FROM run_items
                        WHERE run_id = ? AND dataset_item_id >= ? AND dataset_item_id <= ?
                        """, [.text(runID), .text(first.id), .text(last.id)]) { "\($0.text(0)!)#\($0.int(1))" }
                    return (items, Set(done))
                }
                let work = items.flatMap { item in
                    (0..<repetitions).compactMap { rep in
                        done.contains("\(item.id)#\(rep)") ? nil
                            : Work(source: .init(input: item.input, expectedOutput: item.expectedOutput,
                                                 metadata: item.metadata, item: item, repetition: rep))
                    }
                }
                return Page(work: work, cursor: items.last?.id ?? after, exhausted: items.count < pageSize)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(runner: runner, source: source) }
    }

    private enum Completion: Sendable {
        /// A task ended and its result went to the writer: its window slot is free.
        case committed
        /// A task ended and its evaluators are still to run: its window slot is free.
        case executed(PendingItem)
        /// An item's evaluators ended and its result went to the writer.
        case evaluated
    }

    /// The sliding window: at most `maxConcurrency` tasks at once; evaluators pipelined behind them.
    ///
    /// Each child task finishes its own item (builds and enqueues the write) so the coordinating loop
    /// does little more than start the next task: slots are refilled without waiting behind the
    /// bookkeeping of other items.
    /// - Returns: the write failure that stopped new items from starting, if one did.
    private func schedule(_ work: WorkSequence, counters: Counters,
                          onItemDone: @escaping @Sendable () -> Void) async throws -> XeroMLError? {
        var iterator = work.makeAsyncIterator()
        let evaluators = experiment.evaluators
        return try await withThrowingTaskGroup(of: Completion.self) { group in
            var stoppedBy: XeroMLError?
            var running = 0
            var evaluating = 0
            var more = true
            // New tasks start only while the evaluators keep up: at most `maxConcurrency` items wait for
            // their evaluators, so a slow judge bounds memory and its own concurrency.
            func fill() async throws {
                while more && running < options.maxConcurrency && evaluating < options.maxConcurrency {
                    // Results that cannot be stored are not worth computing: after the first failed
                    // write, no new item starts; those in flight finish and are tried once more.
                    if let failure = store.writeFailure { stoppedBy = failure; more = false; return }
                    guard let next = try await iterator.next() else { more = false; return }
                    running += 1
                    counters.values.withLock { $0.inFlight += 1 }
                    group.addTask {
                        let pending = try await attempt(next, counters: counters)
                        counters.values.withLock { $0.inFlight -= 1 }
                        if pending.failure == nil && !evaluators.isEmpty { return .executed(pending) }
                        await commit(pending, counters: counters)
                        onItemDone()
                        return .committed
                    }
                }
            }
            try await fill()
            while let completion = try await group.next() {
                switch completion {
                case .committed:
                    running -= 1
                    try await fill()
                case .executed(let pending):
                    running -= 1
                    evaluating += 1
                    group.addTask {
                        var pending = pending
                        try await experiment.evaluate(&pending, with: evaluators)
                        await commit(pending, counters: counters)
                        onItemDone()
                        return .evaluated
                    }
                    try await fill()
                case .evaluated:
                    evaluating -= 1
                    try await fill()
                }
            }
            return stoppedBy
        }
    }

    private func commit(_ pending: PendingItem, counters: Counters) async {
        counters.values.withLock {
            $0.completed += 1
            if pending.failure != nil { $0.failed += 1 }
        }
        var batch = pending.batch
        batch.yieldsToCommittedResult = options.resume
        await store.enqueue(batch)
    }

    /// Runs one pair with timeout, limiter and retries. Throws only `CancellationError`.
    private func attempt(_ work: Work, counters: Counters) async throws -> PendingItem {
        var random: any RandomNumberGenerator = options.seed.map { seed in
            // A stable hash of the item (FNV-1a), so a seed gives the same waits in every process.
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in (work.source.item?.id ?? work.source.input.jsonString).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            return SeededGenerator(seed: seed ^ hash &+ UInt64(work.source.repetition))
        } ?? SystemRandomNumberGenerator()
        var attempt = 1
        let task = self.task
        let timeout = options.timeout
        while true {
            try await options.limiter?.acquire()
            var pending: PendingItem
            do {
                pending = try await experiment.execute(work.source) { run in
                    if let timeout {
                        try await withTimeout(timeout) { try await task(run) }
                    } else {
                        try await task(run)
                    }
                }
            } catch {
                options.limiter?.release(.failure)
                throw error
            }
            guard let failure = pending.failure else {
                options.limiter?.release(.success)
                pending.setAttempts(attempt)
                return pending
            }
            let retryable = failure as? any RetryableError
            if let retryable, retryable.isRateLimit {
                // A wait longer than the policy honours is not waited for, by this item or by the limiter.
                let pause = retryable.retryAfter.map { min($0, options.retry.maxRetryAfter) }
                options.limiter?.release(.rateLimited(retryAfter: pause))
            } else {
                options.limiter?.release(.failure)
            }
            guard options.retry.shouldRetry(failure, attempt: attempt) else {
                pending.setAttempts(attempt)
                return pending
            }
            pending.recorder.discard()
            counters.values.withLock { $0.retries += 1 }
            let wait = options.retry.delay(afterAttempt: attempt, retryAfter: retryable?.retryAfter, using: &random)
            try await Task.sleep(for: wait)
            attempt += 1
        }
    }
}

extension PendingItem {
    mutating func setAttempts(_ attempts: Int) { batch.runItems[0].attempts = attempts }
}
