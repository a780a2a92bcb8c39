import Foundation
import Synchronization
import XeroMLSQLite

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
        return ExperimentReport(run: run, summary: summary.of(run), progress: final)
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
                if attempt < options.retry.maxAttempts, let retryable, retryable.isRetryable,
                   let asked = retryable.retryAfter, asked > options.retry.maxRetryAfter {
                    // Not retried because of the wait asked for: say so, beside the server's words.
                    pending.noteError("not retried: the server asked to wait \(Self.seconds(asked)), longer than the "
                                      + "\(Self.seconds(options.retry.maxRetryAfter)) honoured (RetryPolicy.maxRetryAfter; "
                                      + "--max-retry-after in xeroml eval)")
                }
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

    /// Adds `note` to the item's recorded error.
    mutating func noteError(_ note: String) {
        guard let error = batch.runItems[0].error else { return }
        batch.runItems[0].error = error + " (\(note))"
    }
}

extension Runner {
    /// `3600 s`, `1.5 s`: a wait as people read it.
    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}
