public import Foundation
import Synchronization
import XeroMLSQLite

/// One experiment run: a named pass of a task over a dataset (or over local items), with a result,
/// a trace and scores for every item.
///
/// Create one with ``XeroML/createExperiment(name:datasetName:description:metadata:evaluators:)-(_,_,_,_,[any Evaluator])``, call
/// ``runItem(_:repetition:_:)`` for each item (concurrently if you like: `Experiment` is `Sendable`),
/// then ``finish()``.
///
/// ## Topics
/// ### Running items
/// - ``runItem(_:repetition:_:)``
/// - ``runItemRaw(input:expectedOutput:metadata:repetition:_:)``
/// - ``ItemRun``
/// - ``score(name:value:comment:)``
/// ### Finishing and reading
/// - ``finish(status:)``
/// - ``results()``
/// - ``url``
public final class Experiment: Sendable {
    /// The run's id.
    public let id: String
    /// The run's name, unique within its dataset.
    public let name: String
    /// The dataset, or `nil` for an experiment over local items only.
    public let datasetID: String?
    public let datasetName: String?
    /// The dataset version when the run was created.
    public let datasetVersion: Int?
    /// The client the run records into.
    public let client: XeroML
    /// Evaluators that run automatically after each item whose task succeeded.
    public let evaluators: [any Evaluator]
    private let closed = Atomic<Bool>(false)

    init(id: String, name: String, datasetID: String?, datasetName: String?, datasetVersion: Int?, client: XeroML,
         evaluators: [any Evaluator] = []) {
        self.evaluators = evaluators
        self.id = id
        self.name = name
        self.datasetID = datasetID
        self.datasetName = datasetName
        self.datasetVersion = datasetVersion
        self.client = client
    }

    /// Where the run will be shown by the local dashboard: ``XeroML/dashboardBaseURL`` + `/runs/<id>`.
    /// (The dashboard is not part of XeroML yet; the address is stable so links can be kept.)
    public var url: URL {
        client.dashboardBaseURL.appendingPathComponent("runs").appendingPathComponent(id)
    }

    /// Runs `task` for a dataset item and records its output, error, latency, trace and scores.
    ///
    /// The task runs inside the item's trace: its `observe` calls nest under the item's root span. An
    /// error thrown by the task is recorded as the item's error and **not** rethrown, so one failing
    /// item never stops the experiment. Cancellation is the exception: a task cancelled with its
    /// calling task records nothing (a resumed run re-runs it) and `runItem` throws `CancellationError`.
    ///
    /// The result is handed to the store's writer and committed within milliseconds; ``XeroML/flush()``
    /// or ``finish(status:)`` waits for it.
    ///
    /// - Parameters:
    ///   - repetition: which repetition of the item this is (0-based). A run holds at most one result
    ///     per (item, repetition); recording a second makes ``XeroML/flush()`` throw
    ///     ``XeroMLError/Code/writeFailed``.
    /// - Throws: ``XeroMLError/Code/invalidArgument`` when the item belongs to another dataset,
    ///   ``XeroMLError/Code/runNotWritable`` after ``finish(status:)``.
    @discardableResult
    public func runItem(_ item: DatasetItem, repetition: Int = 0,
                        _ task: (ItemRun) async throws -> Void) async throws -> ExperimentItemResult {
        guard item.datasetID == datasetID else {
            throw XeroMLError(.invalidArgument,
                "item \(item.id) belongs to another dataset than run \"\(name)\" (\(datasetName ?? "no dataset"))")
        }
        return try await record(input: item.input, expectedOutput: item.expectedOutput, metadata: item.metadata,
                                item: item, repetition: repetition, task)
    }

    /// Runs `task` for a local item that is not in a dataset, recording it like ``runItem(_:repetition:_:)``.
    @discardableResult
    public func runItemRaw(input: JSONValue, expectedOutput: JSONValue? = nil, metadata: JSONValue? = nil,
                           repetition: Int = 0, _ task: (ItemRun) async throws -> Void) async throws -> ExperimentItemResult {
        try await record(input: input, expectedOutput: expectedOutput, metadata: metadata, item: nil,
                         repetition: repetition, task)
    }

    private func record(input: JSONValue, expectedOutput: JSONValue?, metadata: JSONValue?, item: DatasetItem?,
                        repetition: Int, _ task: (ItemRun) async throws -> Void) async throws -> ExperimentItemResult {
        guard !closed.load(ordering: .relaxed) else {
            throw XeroMLError(.runNotWritable, "run \"\(name)\" is finished and takes no more results")
        }
        guard repetition >= 0 else { throw XeroMLError(.invalidArgument, "repetition must be 0 or more") }
        var pending = try await execute(
            PendingItem.Source(input: input, expectedOutput: expectedOutput, metadata: metadata, item: item,
                               repetition: repetition), task)
        if pending.failure == nil && !evaluators.isEmpty {
            try await evaluate(&pending, with: evaluators)
        }
        await client.store.enqueue(pending.batch)
        return pending.result
    }

    /// Runs the task of one item inside a new trace and collects everything to write.
    /// Throws only `CancellationError`, when the calling task is cancelled.
    func execute(_ source: PendingItem.Source, _ task: (ItemRun) async throws -> Void) async throws -> PendingItem {
        let clock = ContinuousClock()
        let start = clock.now
        let startedUs = nowMicroseconds()
        let traceID = UUIDv7.make()
        let runItemID = UUIDv7.make()
        let recorder = TraceRecorder(traceID: traceID, runID: id, store: client.store, runItemID: runItemID)
        let root = Span(kind: .span, name: name, traceID: traceID, parentID: nil, input: source.input, metadata: nil,
                        recorder: recorder)
        let run = ItemRun(input: source.input, expectedOutput: source.expectedOutput, metadata: source.metadata,
                          item: source.item, repetition: source.repetition, span: root, runItemID: runItemID, runID: id)
        let context = TraceContext(traceID: traceID, observationID: root.id, recorder: recorder)
        let failure: (any Error)? = await XeroML.$local.withValue(client) {
            await TraceContext.$local.withValue(context) {
                do {
                    try await task(run)
                    return nil
                } catch {
                    return error
                }
            }
        }
        // A task that fails while its caller is cancelled failed because of the cancellation (whatever
        // error it chose to throw): record nothing, so a resumed run runs it again. A task that
        // finished despite the cancellation is recorded.
        if failure != nil && Task.isCancelled {
            recorder.discard()
            throw CancellationError()
        }
        let latency = start.duration(to: clock.now)
        let (output, itemScores) = run.finalState
        root.setOutput(output)
        let rootRow = root.end(error: failure)
        let (observations, spanScores) = recorder.seal()
        var batch = WriteBatch()
        batch.traces = [TraceRow(id: traceID, name: name, kind: .item, runID: id, input: source.input, output: output, metadata: nil,
                                 startedUs: startedUs, endedUs: rootRow.endedUs)]
        batch.observations = [rootRow] + observations
        batch.runItems = [RunItemRow(
            id: runItemID, runID: id, datasetItemID: source.item?.id, repetition: source.repetition,
            // Dataset items keep their input in `dataset_items`; only raw items store theirs here.
            // (Spelled with `Optional` on purpose: JSONValue is ExpressibleByNilLiteral, so a bare `nil`
            // in a ternary would become JSON null.)
            input: source.item == nil ? Optional(source.input) : Optional.none,
            expectedOutput: source.item == nil ? source.expectedOutput : Optional.none,
            metadata: source.item == nil ? source.metadata : Optional.none,
            output: output, error: failure.map(describeError), latencyMs: latency.milliseconds,
            traceID: traceID, startedUs: startedUs)]
        batch.scores = itemScores + spanScores
        batch.runItems[0].usage = UsageTotals(generationsOf: batch.observations)
        return PendingItem(source: source, batch: batch, failure: failure, latency: latency,
                           observations: batch.observations, recorder: recorder)
    }

    /// Runs `evaluators` on an executed item and adds their scores. A throwing evaluator yields an
    /// unscored score carrying the reason.
    ///
    /// Observations the evaluators make (judge calls) go into an evaluation trace of their own, so the
    /// item's trace, tokens and cost stay those of the task under test.
    /// - Throws: `CancellationError` when the calling task is cancelled meanwhile: nothing of the item is
    ///   written then, so a resumed run runs it again.
    func evaluate(_ pending: inout PendingItem, with evaluators: [any Evaluator]) async throws {
        let runItem = pending.batch.runItems[0]
        let input = EvaluationInput(
            input: pending.source.input, output: runItem.output, expectedOutput: pending.source.expectedOutput,
            metadata: pending.source.metadata, latency: pending.latency, traceID: runItem.traceID ?? "",
            observations: pending.observations.map(ObservationRecord.init(row:)), repetition: runItem.repetition)
        let evaluationTraceID = UUIDv7.make()
        let recorder = TraceRecorder(traceID: evaluationTraceID, runID: id, store: client.store, runItemID: runItem.id)
        let context = TraceContext(traceID: evaluationTraceID, observationID: nil, recorder: recorder)
        let startedUs = nowMicroseconds()
        for evaluator in evaluators {
            var evaluations: [Evaluation]
            do {
                evaluations = try await XeroML.$local.withValue(client) {
                    try await TraceContext.$local.withValue(context) { try await evaluator.evaluate(input) }
                }
                if evaluations.isEmpty {
                    evaluations = [Evaluation(name: evaluator.name, value: .unscored("the evaluator returned no result"))]
                }
            } catch {
                if Task.isCancelled {
                    recorder.discard()
                    pending.recorder.discard()
                    throw CancellationError()
                }
                evaluations = [Evaluation(name: evaluator.name, value: .unscored(describeError(error)))]
            }
            let now = nowMicroseconds()
            // A score name has one source per item: the task's score stands and an evaluator's of the
            // same name is refused (unscored, with the reason), so `result.score`, summaries, compare
            // and the gate all read the same value.
            let taskNames = Set(pending.batch.scores.filter { $0.evaluator == nil }.map(\.name))
            for var evaluation in evaluations {
                if taskNames.contains(evaluation.name) {
                    evaluation = Evaluation(name: evaluation.name, value: .unscored(
                        "the task already recorded a score named \"\(evaluation.name)\" on this item; a score name has "
                        + "one source: rename the task's score or the evaluator (\(evaluator.name))"))
                }
                pending.batch.scores.append(ScoreRow(
                    id: UUIDv7.make(), runID: id, runItemID: runItem.id, traceID: runItem.traceID,
                    observationID: evaluation.observationID, name: evaluation.name, value: evaluation.value,
                    comment: evaluation.comment ?? evaluation.value.unscoredReason, source: evaluation.source ?? evaluator.scoreSource,
                    evaluator: evaluator.name, createdUs: now))
            }
        }
        let (observations, scores) = recorder.seal()
        if !observations.isEmpty {
            // The trace goes before the scores that point at its observations (same batch, in order).
            pending.batch.traces.append(TraceRow(
                id: evaluationTraceID, name: "evaluate: \(name)", kind: .evaluation, runID: id, input: pending.source.input,
                output: runItem.output, metadata: ["run_item_id": .string(runItem.id)], startedUs: startedUs,
                endedUs: nowMicroseconds()))
            pending.batch.observations += observations
        }
        pending.batch.scores += scores
    }

    /// Attaches a score to the whole run (for example an aggregate computed over all items).
    /// - Throws: ``XeroMLError/Code/runNotWritable`` after ``finish(status:)``.
    public func score(name: String, value: ScoreValue, comment: String? = nil) async throws {
        guard !closed.load(ordering: .relaxed) else {
            throw XeroMLError(.runNotWritable, "run \"\(self.name)\" is finished and takes no more scores")
        }
        await score(name: name, value: value, comment: comment, source: .sdk, evaluator: nil)
    }

    func score(name: String, value: ScoreValue, comment: String?, source: ScoreSource, evaluator: String?) async {
        await client.store.enqueue(WriteBatch(scores: [ScoreRow(
            id: UUIDv7.make(), runID: id, runItemID: nil, traceID: nil, observationID: nil, name: name, value: value,
            comment: comment, source: source, evaluator: evaluator, createdUs: nowMicroseconds())]))
    }

    /// Commits every recorded result and marks the run `status` (by default finished).
    /// After this, the run takes no more results.
    ///
    /// The status is recorded even when some results could not be written; the error then says which.
    public func finish(status: RunStatus = .finished) async throws {
        closed.store(true, ordering: .relaxed)
        var flushError: (any Error)?
        do { try await client.flush() } catch { flushError = error }
        try await mark(status)
        // A finished run is complete: fold the write-ahead log into the main file so the file can be
        // copied on its own (https://www.sqlite.org/wal.html#ckpt).
        client.store.checkpointInBackground()
        if let flushError { throw flushError }
    }

    /// Records the run's status. With `waitingForLock`, waits for another process's lock even after a
    /// write failed.
    func mark(_ status: RunStatus, waitingForLock: Bool = false) async throws {
        let id = self.id
        try await client.store.write(waitingForLock: waitingForLock) { db in
            try db.run("UPDATE experiment_runs SET status = ?, finished_us = ? WHERE id = ?",
                       [.text(status.rawValue), status == .running ? .null : .integer(nowMicroseconds()), .text(id)])
        }
    }

    /// Every recorded item result of this run, with the run's summary. Flushes first.
    public func results() async throws -> ExperimentResults {
        try await client.flush()
        return try await client.results(runID: id)
    }
}

/// The item being run, handed to the task of ``Experiment/runItem(_:repetition:_:)``: read the item,
/// then record the output and scores.
///
/// ## Topics
/// ### The item
/// - ``input``
/// - ``expectedOutput``
/// - ``metadata``
/// - ``item``
/// - ``repetition``
/// ### Recording
/// - ``setOutput(_:)``
/// - ``score(name:value:comment:)-(_,ScoreValue,_)``
/// - ``span``
public final class ItemRun: Sendable {
    public let input: JSONValue
    public let expectedOutput: JSONValue?
    public let metadata: JSONValue?
    /// The dataset item, or `nil` for a raw item.
    public let item: DatasetItem?
    public let repetition: Int
    /// The item's root span: observations made by the task nest under it.
    public let span: Span
    /// The id the item's result will have.
    public let runItemID: String
    let runID: String
    private let state = Mutex<(output: JSONValue?, scores: [ScoreRow])>((nil, []))

    init(input: JSONValue, expectedOutput: JSONValue?, metadata: JSONValue?, item: DatasetItem?, repetition: Int,
         span: Span, runItemID: String, runID: String) {
        self.input = input
        self.expectedOutput = expectedOutput
        self.metadata = metadata
        self.item = item
        self.repetition = repetition
        self.span = span
        self.runItemID = runItemID
        self.runID = runID
    }

    /// The trace of this item.
    public var traceID: String { span.traceID }

    /// Records the item's output.
    public func setOutput(_ output: JSONValue?) { state.withLock { $0.output = output } }

    /// Records the item's output.
    public func setOutput(_ output: JSONValue) { state.withLock { $0.output = output } }

    /// Records the item's output: a text, such as a model's reply.
    ///
    /// ```swift
    /// let answer = try await myModel(run.input)
    /// run.setOutput(answer)
    /// ```
    public func setOutput(_ output: String) { state.withLock { $0.output = .string(output) } }

    /// Records a number as the item's output.
    public func setOutput(_ output: Int) { state.withLock { $0.output = .int(Int64(output)) } }

    /// Records a number as the item's output.
    public func setOutput(_ output: Double) { state.withLock { $0.output = .double(output) } }

    /// Records a boolean as the item's output.
    public func setOutput(_ output: Bool) { state.withLock { $0.output = .bool(output) } }

    /// Records the item's output from any `Encodable` value (a struct of yours, an array, …), encoded
    /// as JSON: `try run.setOutput(encoding: Answer(city: "Lima", confidence: 0.9))`.
    public func setOutput(encoding output: some Encodable) throws {
        let value = try JSONValue(encoding: output)
        state.withLock { $0.output = value }
    }

    /// The output recorded so far.
    public var output: JSONValue? { state.withLock { $0.output } }

    /// Records a score for this item.
    public func score(name: String, value: ScoreValue, comment: String? = nil) {
        let row = ScoreRow(id: UUIDv7.make(), runID: runID, runItemID: runItemID, traceID: span.traceID,
                           observationID: nil, name: name, value: value, comment: comment, source: .sdk,
                           evaluator: nil, createdUs: nowMicroseconds())
        state.withLock { $0.scores.append(row) }
    }

    /// Records a numeric score for this item.
    public func score(name: String, value: Double, comment: String? = nil) {
        score(name: name, value: .numeric(value), comment: comment)
    }

    /// Records a numeric score for this item: `value: 1` is the number 1 (use `true` for a pass).
    public func score(name: String, value: Int, comment: String? = nil) {
        score(name: name, value: .numeric(Double(value)), comment: comment)
    }

    /// Records a categorical score for this item, such as a grade: `value: "A"`.
    public func score(name: String, value: String, comment: String? = nil) {
        score(name: name, value: .categorical(value), comment: comment)
    }

    /// Records a boolean (pass/fail) score for this item.
    public func score(name: String, value: Bool, comment: String? = nil) {
        score(name: name, value: .boolean(value), comment: comment)
    }

    var finalState: (JSONValue?, [ScoreRow]) { state.withLock { ($0.output, $0.scores) } }
}

func describeError(_ error: any Error) -> String {
    if let error = error as? any LocalizedError, let text = error.errorDescription { return text }
    let text = String(describing: error)
    let type = String(describing: Swift.type(of: error))
    if text.hasPrefix(type) { return text }
    // An enum case prints as its bare name: show it as `Type.case`; anything else as `Type: text`.
    let isIdentifier = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    return isIdentifier ? "\(type).\(text)" : "\(type): \(text)"
}

extension Score {
    init(row: ScoreRow) {
        self.init(id: row.id, name: row.name, value: row.value, comment: row.comment, source: row.source,
                  evaluator: row.evaluator, runID: row.runID, runItemID: row.runItemID, traceID: row.traceID,
                  observationID: row.observationID, createdAt: date(microseconds: row.createdUs))
    }
}

/// One executed item on its way to the writer.
struct PendingItem: Sendable {
    struct Source: Sendable {
        var input: JSONValue
        var expectedOutput: JSONValue?
        var metadata: JSONValue?
        var item: DatasetItem?
        var repetition: Int
    }
    var source: Source
    var batch: WriteBatch
    var failure: (any Error)?
    var latency: Duration
    var observations: [ObservationRow]
    /// The item's trace recorder: discarded when the attempt is dropped (retried or cancelled), so
    /// observations ending late are not written against a trace that never is.
    var recorder: TraceRecorder

    var result: ExperimentItemResult {
        let row = batch.runItems[0]
        return ExperimentItemResult(
            id: row.id, runID: row.runID, datasetItemID: row.datasetItemID, repetition: row.repetition,
            input: source.input, expectedOutput: source.expectedOutput, metadata: source.metadata, output: row.output,
            error: row.error, latency: latency, attempts: row.attempts, traceID: row.traceID,
            startedAt: date(microseconds: row.startedUs), scores: batch.scores.map(Score.init(row:)))
    }
}

extension ObservationRecord {
    init(row o: ObservationRow) {
        self.init(id: o.id, traceID: o.traceID, parentID: o.parentID, kind: o.kind, name: o.name, input: o.input,
                  output: o.output, metadata: o.metadata, model: o.model, modelParameters: o.modelParameters,
                  usage: o.usage, cost: o.cost, level: o.level, statusMessage: o.statusMessage,
                  startedAt: date(microseconds: o.startedUs), endedAt: o.endedUs.map { date(microseconds: $0) })
    }
}

extension ScoreValue {
    var unscoredReason: String? { if case .unscored(let reason) = self { reason } else { nil } }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
