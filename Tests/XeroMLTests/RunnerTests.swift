import Foundation
import Synchronization
import Testing
@testable import XeroML
import XeroMLSQLite

/// Makes a dataset of `count` items with input i and expected output 2·i.
func makeNumbersDataset(_ xeroml: XeroML, name: String = "numbers", count: Int) async throws {
    let lines = (0..<count).map { #"{"id": "\#($0)", "input": \#($0), "expected_output": \#($0 * 2)}"# }
    try await xeroml.importDataset(name: name, from: writeFile("\(name).jsonl", lines.joined(separator: "\n")))
}

final class ConcurrencyProbe: Sendable {
    private let state = Mutex((current: 0, peak: 0))
    func enter() { state.withLock { $0.current += 1; $0.peak = max($0.peak, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}

@Suite(.timeLimit(.minutes(3))) struct RunnerTests {
    @Test func neverExceedsTheConcurrencyBound() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 60)
        let probe = ConcurrencyProbe()
        let report = try await xeroml.runExperiment(
            name: "bounded", datasetName: "numbers", options: ExperimentOptions(maxConcurrency: 5, pageSize: 7)
        ) { run in
            probe.enter()
            defer { probe.leave() }
            try await Task.sleep(for: .milliseconds(5))
            run.setOutput(.int(Int64(run.input.doubleValue!) * 2))
        }
        #expect(probe.peak == 5)
        #expect(report.run.status == .finished)
        #expect(report.run.itemCount == 60 && report.summary.itemCount == 60)
        #expect(report.progress.completed == 60 && report.progress.total == 60)
    }

    @Test func retriesHonourRetryAfter() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 3)
        let attempts = Mutex<[String: [ContinuousClock.Instant]]>([:])
        let options = ExperimentOptions(
            maxConcurrency: 3,
            retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(5), jitter: 0))
        let report = try await xeroml.runExperiment(name: "retry", datasetName: "numbers", options: options) { run in
            let key = run.input.jsonString
            let count = attempts.withLock { $0[key, default: []].append(.now); return $0[key]!.count }
            if key == "1" && count == 1 { throw RateLimitError(retryAfter: .milliseconds(300)) }
            if key == "2" { throw TransientError("HTTP 503") }
            run.setOutput(run.input)
        }
        let times = attempts.withLock { $0 }
        #expect(times["1"]!.count == 2)
        #expect(times["1"]![1] - times["1"]![0] >= .milliseconds(300))
        #expect(times["2"]!.count == 3)  // retried until maxAttempts, then recorded as an error
        #expect(times["0"]!.count == 1)
        let results = try await xeroml.results(runID: report.run.id)
        let byInput = Dictionary(uniqueKeysWithValues: results.map { ($0.input.jsonString, $0) })
        #expect(byInput["1"]?.attempts == 2 && byInput["1"]?.error == nil)
        #expect(byInput["2"]?.attempts == 3 && byInput["2"]?.error == "TransientError: HTTP 503")
        #expect(report.progress.retries == 3)
    }

    @Test func errorsThatAreNotRetryableAreNotRetried() async throws {
        struct Broken: Error {}
        let xeroml = try temporaryClient()
        let calls = Mutex(0)
        let report = try await xeroml.runExperiment(name: "no-retry", items: [LocalItem(input: 1)]) { _ in
            calls.withLock { $0 += 1 }
            throw Broken()
        }
        #expect(calls.withLock { $0 } == 1)
        #expect(report.summary.errorCount == 1)
    }

    @Test func aTaskThatTakesTooLongTimesOut() async throws {
        let xeroml = try temporaryClient()
        let start = ContinuousClock.now
        let report = try await xeroml.runExperiment(
            name: "timeout", items: [LocalItem(input: "slow"), LocalItem(input: "fast")],
            options: ExperimentOptions(timeout: .milliseconds(100), retry: .none)
        ) { run in
            if run.input == "slow" { try await Task.sleep(for: .seconds(90)) }
            run.setOutput("ok")
        }
        // Far below the task's 90 s: the timeout ended it (slack for a loaded machine).
        #expect(ContinuousClock.now - start < .seconds(45))
        let results = try await xeroml.results(runID: report.run.id)
        let slow = try #require(results.first { $0.input == "slow" })
        #expect(slow.error == "TaskTimeoutError: timed out after 100.0 ms")
        #expect(results.first { $0.input == "fast" }?.output == "ok")
    }

    @Test func cancellationInterruptsAndResumeCompletesWithOneResultPerPair() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 40)
        let options = ExperimentOptions(maxConcurrency: 4, repetitions: 2, pageSize: 8)
        let started = Mutex(0)
        let task = Task {
            try await xeroml.runExperiment(name: "resumable", datasetName: "numbers", options: options) { run in
                started.withLock { $0 += 1 }
                try await Task.sleep(for: .milliseconds(10))
                run.setOutput(.int(Int64(run.input.doubleValue!) * 2))
            }
        }
        while started.withLock({ $0 }) < 30 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        let interrupted = try #require(try await xeroml.findRun("resumable", datasetName: "numbers"))
        #expect(interrupted.status == .interrupted)
        #expect(interrupted.itemCount > 0 && interrupted.itemCount < 80)

        // Without resume the name is taken.
        await #expect(throws: XeroMLError.self) {
            try await xeroml.runExperiment(name: "resumable", datasetName: "numbers") { _ in }
        }
        var resumeOptions = options
        resumeOptions.resume = true
        let report = try await xeroml.runExperiment(name: "resumable", datasetName: "numbers", options: resumeOptions) { run in
            run.setOutput(.int(Int64(run.input.doubleValue!) * 2))
        }
        #expect(report.progress.skipped == interrupted.itemCount)
        #expect(report.progress.completed == 80 - interrupted.itemCount)
        #expect(report.run.status == .finished)
        let results = try await xeroml.results(runID: report.run.id)
        #expect(results.count == 80)
        let pairs = Set(results.map { "\($0.datasetItemID!)#\($0.repetition)" })
        #expect(pairs.count == 80)
        #expect(results.allSatisfy { $0.output == .int(Int64($0.input.doubleValue!) * 2) })
    }

    @Test func retryErrorsRerunsOnlyTheErroredPairs() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 10)
        let first = try await xeroml.runExperiment(name: "flaky", datasetName: "numbers",
                                                   options: ExperimentOptions(retry: .none)) { run in
            if Int(run.input.doubleValue!) % 3 == 0 { throw TransientError("flaky backend") }
            run.setOutput("first")
        }
        #expect(first.summary.errorCount == 4)
        let calls = Mutex<[Int]>([])
        let second = try await xeroml.runExperiment(
            name: "flaky", datasetName: "numbers", options: ExperimentOptions(resume: true, retryErrors: true)
        ) { run in
            calls.withLock { $0.append(Int(run.input.doubleValue!)) }
            run.setOutput("second")
        }
        #expect(calls.withLock { $0 }.sorted() == [0, 3, 6, 9])
        let results = try await xeroml.results(runID: second.run.id)
        #expect(results.count == 10 && results.allSatisfy { $0.error == nil })
        #expect(results.filter { $0.output == "second" }.count == 4)
        #expect(second.summary.errorCount == 0)
    }

    @Test func repetitionsExposePerItemMeanAndVariance() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 3)
        let report = try await xeroml.runExperiment(
            name: "reps", datasetName: "numbers", options: ExperimentOptions(repetitions: 4)
        ) { run in
            // Item i scores i + repetition: mean i + 1.5, sample variance 5/3.
            run.score(name: "value", value: run.input.doubleValue! + Double(run.repetition))
        }
        let results = try await xeroml.results(runID: report.run.id)
        #expect(results.count == 12)
        let items = results.byItem
        #expect(items.count == 3)
        for item in items {
            let i = item.input.doubleValue!
            #expect(item.results.map(\.repetition) == [0, 1, 2, 3])
            let spread = try #require(item.scores["value"])
            #expect(spread.count == 4)
            #expect(abs(spread.mean - (i + 1.5)) < 1e-12)
            #expect(abs(spread.variance - 5.0 / 3.0) < 1e-12)
        }
    }

    @Test func evaluatorsRunAfterEachItemAndFailuresAreUnscored() async throws {
        struct Exploding: Evaluator {
            var name: String { "exploding" }
            func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
                throw TransientError("judge unreachable")
            }
        }
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 6)
        let seenTraces = Mutex(0)
        let traceAware = ClosureEvaluator(name: "has_trace") { input in
            seenTraces.withLock { $0 += 1 }
            return .boolean(input.observations.contains { $0.name == "double" })
        }
        let report = try await xeroml.runExperiment(
            name: "evals", datasetName: "numbers",
            evaluators: [ExactMatch(), Exploding(), traceAware],
            runEvaluators: [ClosureRunEvaluator(name: "item_count") { [Evaluation(name: "item_count", value: .numeric(Double($0.count)))] }]
        ) { run in
            let n = Int64(run.input.doubleValue!)
            await observe("double") { _ in }
            if n == 5 { throw TransientError("boom") }
            run.setOutput(.int(n == 4 ? 0 : n * 2))
        }
        let summary = report.summary
        let exact = try #require(summary.score("exact_match"))
        #expect(exact.count == 5 && exact.passRate == 0.8)
        let exploding = try #require(summary.score("exploding"))
        #expect(exploding.count == 0 && exploding.unscored == 5)
        #expect(summary.score("has_trace")?.passRate == 1)
        #expect(seenTraces.withLock { $0 } == 5)  // not run for the failed item
        #expect(summary.runScores.first { $0.name == "item_count" }?.value == .numeric(6))
        let results = try await xeroml.results(runID: report.run.id)
        let unscored = results.flatMap(\.scores).filter { $0.name == "exploding" }
        #expect(unscored.count == 5)
        #expect(unscored.allSatisfy { $0.value == .unscored("TransientError: judge unreachable") && $0.source == .evaluator })
        #expect(report.format().contains("exploding: no values, 5 unscored"))
    }

    @Test func createExperimentResolvesEvaluatorNames() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 2)
        let experiment = try await xeroml.createExperiment(name: "named", datasetName: "numbers",
                                                           evaluators: ["exact_match", "levenshtein"])
        for item in try await xeroml.dataset(named: "numbers").items {
            try await experiment.runItem(item) { run in run.setOutput(run.expectedOutput) }
        }
        let results = try await experiment.results()
        #expect(results.allSatisfy { $0.score("exact_match") == 1 && $0.score("levenshtein") == 1 })
        do {
            _ = try await xeroml.createExperiment(name: "bad", datasetName: "numbers", evaluators: ["helpfulnes"])
            Issue.record("unknown evaluator names must be refused")
        } catch let error as XeroMLError {
            #expect(error.code == .invalidArgument && error.message.contains("exact_match"))
        }
    }

    @Test func sqlSummaryMatchesTheInMemorySummary() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 25)
        let report = try await xeroml.runExperiment(name: "stats", datasetName: "numbers") { run in
            let i = run.input.doubleValue!
            run.score(name: "x", value: i * i / 7)
            run.score(name: "pass", value: Int(i) % 3 != 0)
            run.score(name: "label", value: .categorical(Int(i) % 2 == 0 ? "even" : "odd"))
        }
        let sql = report.summary
        let memory = try await xeroml.results(runID: report.run.id).summary
        #expect(sql.scores.map(\.name) == ["x", "pass", "label"])
        for (a, b) in zip(sql.scores, memory.scores) {
            #expect(a.name == b.name && a.count == b.count && a.dataType == b.dataType)
            #expect(a.passRate == b.passRate && a.categories == b.categories)
            for (x, y) in [(a.mean, b.mean), (a.standardDeviation, b.standardDeviation), (a.median, b.median),
                           (a.p95, b.p95), (a.min, b.min), (a.max, b.max)] {
                #expect(abs((x ?? .nan) - (y ?? .nan)) < 1e-9 || (x == nil && y == nil))
            }
        }
        #expect(sql.score("label")?.categories == ["even": 13, "odd": 12])
        #expect(abs(sql.score("pass")!.passRate! - 16.0 / 25.0) < 1e-12)
        #expect(sql.latencyP50 != nil && sql.itemCount == 25)
    }
}

@Suite(.timeLimit(.minutes(3))) struct AdaptiveLimiterTests {
    @Test func halvesOnRateLimitsAndRecoversAdditively() async throws {
        let limiter = AdaptiveLimiter(maximum: 8)
        #expect(limiter.currentLimit == 8)
        try await limiter.acquire()
        limiter.release(.rateLimited(retryAfter: nil))
        #expect(limiter.currentLimit == 4)
        // A burst of rate limits from attempts already in flight counts once.
        try await limiter.acquire()
        limiter.release(.rateLimited(retryAfter: nil))
        #expect(limiter.currentLimit == 4)
        // Additive increase: one more permit after each full window of successes.
        for _ in 0..<4 { try await limiter.acquire(); limiter.release(.success) }
        #expect(limiter.currentLimit == 5)
        for _ in 0..<5 { try await limiter.acquire(); limiter.release(.success) }
        #expect(limiter.currentLimit == 6)
    }

    @Test func honoursRetryAfterBeforeHandingOutPermits() async throws {
        let limiter = AdaptiveLimiter(maximum: 2)
        try await limiter.acquire()
        limiter.release(.rateLimited(retryAfter: .milliseconds(250)))
        let start = ContinuousClock.now
        try await limiter.acquire()
        #expect(ContinuousClock.now - start >= .milliseconds(240))
        limiter.release(.success)
    }

    @Test func oneLimiterBoundsTwoExperimentsTogether() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, name: "a", count: 30)
        try await makeNumbersDataset(xeroml, name: "b", count: 30)
        let limiter = AdaptiveLimiter(maximum: 3)
        let probe = ConcurrencyProbe()
        var options = ExperimentOptions(maxConcurrency: 10)
        options.limiter = limiter
        let opts = options
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in ["a", "b"] {
                group.addTask {
                    try await xeroml.runExperiment(name: "shared", datasetName: name, options: opts) { run in
                        probe.enter()
                        defer { probe.leave() }
                        try await Task.sleep(for: .milliseconds(3))
                        run.setOutput(run.input)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(probe.peak <= 3)
        #expect(limiter.inUse == 0)
    }
}

@Suite(.timeLimit(.minutes(3))) struct RunnerLifecycleTests {
    @Test func evaluatorCallsLiveInTheirOwnTraceAndTheirCostIsCountedApart() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 3)
        let judge = ClosureEvaluator(name: "judged") { input in
            let id = await observe("judge-call", as: .generation) { generation in
                generation.setUsage(promptTokens: 100, completionTokens: 10)
                generation.setCost(0.5)
                return generation.id
            }
            return [Evaluation(name: "judged", value: .numeric(1), observationID: id, source: .judge)]
        }
        let report = try await xeroml.runExperiment(name: "costs", datasetName: "numbers", evaluators: [judge]) { run in
            await observe("model-call", as: .generation) { generation in
                generation.setUsage(promptTokens: 7, completionTokens: 3)
                generation.setCost(0.25)
            }
            run.setOutput(run.input)
        }
        #expect(report.summary.usage == UsageTotals(promptTokens: 21, completionTokens: 9, totalTokens: 30, cost: 0.75, generations: 3))
        #expect(report.summary.evaluatorUsage.totalTokens == 330 && report.summary.evaluatorUsage.cost == 1.5)
        let results = try await xeroml.results(runID: report.run.id)
        #expect(results.usage == report.summary.usage && results.evaluatorUsage == report.summary.evaluatorUsage)
        for item in results {
            let trace = try #require(try await xeroml.trace(id: item.traceID!))
            #expect(trace.observations.map(\.name).sorted() == ["costs", "model-call"])
            let score = try #require(item.scores.first { $0.name == "judged" })
            #expect(score.source == .judge && score.evaluator == "judged")
            let generation = try #require(try await xeroml.observation(id: score.observationID!))
            #expect(generation.name == "judge-call" && generation.traceID != trace.id)
        }
        #expect(report.format().contains("evaluator tokens: 330"))
    }

    @Test func resumingAFinishedRunChangesNothing() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 4)
        let first = try await xeroml.runExperiment(name: "done", datasetName: "numbers") { run in run.setOutput("x") }
        let calls = Mutex(0)
        let again = try await xeroml.runExperiment(name: "done", datasetName: "numbers",
                                                   options: ExperimentOptions(resume: true)) { _ in calls.withLock { $0 += 1 } }
        #expect(calls.withLock { $0 } == 0)
        #expect(again.run.status == .finished && again.run.finishedAt == first.run.finishedAt)
        #expect(again.progress.skipped == 4 && again.progress.completed == 0)
    }

    @Test func cancellationWhileEvaluatorsRunRecordsNothingForThoseItems() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 20)
        let slowJudge = ClosureEvaluator(name: "slow") { input in
            if input.input.doubleValue! >= 5 { try await Task.sleep(for: .seconds(30)) }
            return .numeric(1)
        }
        let evaluated = Mutex(0)
        let counting = ClosureEvaluator(name: "count") { _ in evaluated.withLock { $0 += 1 }; return .numeric(1) }
        let task = Task {
            try await xeroml.runExperiment(name: "slow-evals", datasetName: "numbers", evaluators: [counting, slowJudge],
                                           options: ExperimentOptions(maxConcurrency: 2)) { run in run.setOutput(run.input) }
        }
        while evaluated.withLock({ $0 }) < 7 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        let run = try #require(try await xeroml.findRun("slow-evals", datasetName: "numbers"))
        #expect(run.status == .interrupted)
        let results = try await xeroml.results(runID: run.id)
        // Only items whose evaluators all finished are recorded, never an unscored "cancelled" one.
        #expect(results.count == 5)
        #expect(results.allSatisfy { $0.score("slow") == 1 && $0.scores.allSatisfy { !$0.value.isUnscored } })
        // Evaluators never held more items than the window allows.
        #expect(evaluated.withLock { $0 } <= 5 + 2 + 2)
    }

    @Test func retryPolicyCapsWaitsAndRefusesLongRetryAfter() {
        let policy = RetryPolicy(maxAttempts: 5, initialBackoff: .seconds(1), maxBackoff: .seconds(2), jitter: 0.5,
                                 maxRetryAfter: .seconds(60))
        var random = SeededGenerator(seed: 3)
        for attempt in 1...4 {
            let wait = policy.delay(afterAttempt: attempt, retryAfter: nil, using: &random)
            #expect(wait <= .seconds(2))
        }
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(10), using: &random) == .seconds(10))
        #expect(policy.shouldRetry(RateLimitError(retryAfter: .seconds(30)), attempt: 1))
        #expect(!policy.shouldRetry(RateLimitError(retryAfter: .seconds(3600)), attempt: 1))
        #expect(!policy.shouldRetry(TransientError("x"), attempt: 5))
    }

    @Test func topLevelObserveCreatesNoStoreOnItsOwn() async throws {
        guard ProcessInfo.processInfo.environment[XeroML.environmentVariable] == nil else { return }
        #expect(XeroML.activeClient == nil)
        let value = await observe("library-code") { _ in 7 }
        #expect(value == 7)
        #expect(XeroML.activeClient == nil)
    }
}

@Suite(.timeLimit(.minutes(3))) struct ConcurrentResumeTests {
    @Test func twoClientsResumingOneRunTogetherLeaveExactlyOneResultPerPair() async throws {
        let path = temporaryDirectory().appendingPathComponent("shared-resume.sqlite").path
        let first = try XeroML(path: path)
        try await makeNumbersDataset(first, count: 60)
        // Start the run and stop it early, so there is something to resume.
        let started = Mutex(0)
        let task = Task {
            try await first.runExperiment(name: "shared", datasetName: "numbers", options: ExperimentOptions(maxConcurrency: 2)) { run in
                started.withLock { $0 += 1 }
                try await Task.sleep(for: .milliseconds(20))
                run.setOutput(run.input)
            }
        }
        while started.withLock({ $0 }) < 6 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        _ = try? await task.value
        // Two clients (separate connections, like two processes) resume it at the same time.
        let second = try XeroML(path: path)
        let options = ExperimentOptions(maxConcurrency: 4, resume: true)
        async let a = first.runExperiment(name: "shared", datasetName: "numbers", options: options) { run in
            try await Task.sleep(for: .milliseconds(2))
            run.setOutput(run.input)
        }
        async let b = second.runExperiment(name: "shared", datasetName: "numbers", options: options) { run in
            try await Task.sleep(for: .milliseconds(2))
            run.setOutput(run.input)
        }
        let (ra, rb) = try await (a, b)
        #expect(ra.run.id == rb.run.id)
        let results = try await first.results(runID: ra.run.id)
        #expect(results.count == 60)
        #expect(Set(results.map { $0.datasetItemID! }).count == 60)
        #expect(results.allSatisfy { $0.output == $0.input })
        let status = try #require(try await first.findRun("shared", datasetName: "numbers")).status
        #expect(status == .finished)
        // No orphans: every trace of the run belongs to a result.
        let db = try XeroMLSQLite.Connection(path: path, mode: .readOnly)
        let orphanTraces = try db.queryFirst("""
            SELECT count(*) FROM traces t WHERE t.run_id = ? AND t.kind = 'item'
                AND NOT EXISTS (SELECT 1 FROM run_items r WHERE r.trace_id = t.id)
            """, [.text(ra.run.id)]) { $0.int(0) }
        #expect(orphanTraces == 0)
    }
}
