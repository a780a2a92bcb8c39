import Foundation
import Synchronization

/// Collects the observations and scores of one trace until the trace is written.
///
/// Observations that end after their trace was written (work that outlived its item, for example
/// an unstructured `Task`) are written on their own instead of being lost.
final class TraceRecorder: Sendable {
    let traceID: String
    let runID: String?
    /// The experiment item this trace belongs to, if any: scores recorded inside it attach to it.
    let runItemID: String?
    let store: Store
    private struct State {
        var observations: [ObservationRow] = []
        var scores: [ScoreRow] = []
        var sealed = false
        var discarded = false
    }
    private let state = Mutex(State())

    init(traceID: String, runID: String?, store: Store, runItemID: String? = nil) {
        self.traceID = traceID
        self.runID = runID
        self.runItemID = runItemID
        self.store = store
    }

    func record(_ row: ObservationRow) {
        let late = state.withLock { s in
            if s.sealed { return !s.discarded }
            s.observations.append(row)
            return false
        }
        if late { store.enqueueNow(WriteBatch(observations: [row])) }
    }

    func record(_ row: ScoreRow) {
        let late = state.withLock { s in
            if s.sealed { return !s.discarded }
            s.scores.append(row)
            return false
        }
        if late { store.enqueueNow(WriteBatch(scores: [row])) }
    }

    /// Drops the trace: nothing recorded so far or later is written (its item was cancelled, so the
    /// trace itself is never written and late rows would have nothing to attach to).
    func discard() {
        state.withLock { s in
            s.sealed = true
            s.discarded = true
            s.observations = []
            s.scores = []
        }
    }

    /// Takes what was recorded so far; later records are written on their own.
    func seal() -> (observations: [ObservationRow], scores: [ScoreRow]) {
        state.withLock { s in
            s.sealed = true
            defer { s.observations = []; s.scores = [] }
            return (s.observations, s.scores)
        }
    }
}

/// Where new observations go: the current trace and the observation they nest under.
///
/// XeroML keeps it in a task-local value, so it flows into child tasks (`async let`, task groups,
/// `Task { }`) but **not** into `Task.detached`, work hopped onto a `DispatchQueue`, or C callbacks.
/// Capture ``TraceContext/current`` there and re-enter it with ``withTraceContext(_:_:)``.
///
/// ## Topics
/// - ``current``
/// - ``traceID``
/// - ``observationID``
public struct TraceContext: Sendable {
    /// The trace observations are added to.
    public let traceID: String
    /// The observation new observations nest under, or `nil` at the top of the trace.
    public let observationID: String?
    let recorder: TraceRecorder

    @TaskLocal static var local: TraceContext?

    /// The context of the calling task, or `nil` outside any trace.
    public static var current: TraceContext? { local }

    func child(_ observationID: String) -> TraceContext {
        TraceContext(traceID: traceID, observationID: observationID, recorder: recorder)
    }
}

/// Runs `body` inside `context`, e.g. one captured before a `Task.detached`.
public func withTraceContext<T, E: Error>(_ context: TraceContext?, _ body: () async throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await TraceContext.$local.withValue(context) {
        do throws(E) { return .success(try await body()) } catch { return .failure(error) }
    }
    return try result.get()
}

/// A live observation (span, generation or event), handed to the body of ``observe(_:as:input:metadata:_:)``.
///
/// Set what you learn while the work runs: the output, the model and token usage of a generation,
/// its cost, metadata, a level. Everything is recorded when the body returns; when it throws, the
/// observation is recorded at level `.error` with the error as its status message.
///
/// `Span` is `Sendable`: child tasks may update it concurrently.
///
/// ## Topics
/// ### Identity
/// - ``id``
/// - ``traceID``
/// ### Recording
/// - ``setInput(_:)``
/// - ``setOutput(_:)``
/// - ``setMetadata(_:)``
/// - ``setModel(_:parameters:)``
/// - ``setUsage(promptTokens:completionTokens:totalTokens:)``
/// - ``setCost(_:)``
/// - ``setLevel(_:message:)``
/// - ``score(name:value:comment:)``
public final class Span: Sendable {
    /// The observation's id.
    public let id: String
    /// The id of its trace.
    public let traceID: String
    private let state: Mutex<ObservationRow>
    private let recorder: TraceRecorder?

    init(kind: ObservationKind, name: String, traceID: String, parentID: String?, input: JSONValue?,
         metadata: JSONValue?, recorder: TraceRecorder?) {
        let id = UUIDv7.make()
        self.id = id
        self.traceID = traceID
        self.recorder = recorder
        state = Mutex(ObservationRow(
            id: id, traceID: traceID, parentID: parentID, kind: kind, name: name, input: input, output: nil,
            metadata: metadata, model: nil, modelParameters: nil, usage: TokenUsage(), cost: nil,
            level: .default, statusMessage: nil, startedUs: nowMicroseconds(), endedUs: nil))
    }

    /// Sets the input.
    public func setInput(_ input: JSONValue?) { state.withLock { $0.input = input } }
    /// Sets the output.
    public func setOutput(_ output: JSONValue?) { state.withLock { $0.output = output } }
    /// Sets the output from any `Encodable` value.
    public func setOutput(encoding output: some Encodable) throws {
        let value = try JSONValue(encoding: output)
        state.withLock { $0.output = value }
    }
    /// Replaces the metadata.
    public func setMetadata(_ metadata: JSONValue?) { state.withLock { $0.metadata = metadata } }
    /// Sets the model name and its parameters (temperature, max tokens, …), for generations.
    public func setModel(_ model: String, parameters: JSONValue? = nil) {
        state.withLock { $0.model = model; if let parameters { $0.modelParameters = parameters } }
    }
    /// Sets the token usage. The total defaults to prompt + completion.
    public func setUsage(promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil) {
        state.withLock {
            $0.usage = TokenUsage(promptTokens: promptTokens, completionTokens: completionTokens, totalTokens: totalTokens)
        }
    }
    /// Sets the cost, in the currency of your price configuration (USD by convention).
    public func setCost(_ cost: Double) { state.withLock { $0.cost = cost } }
    /// Sets the level and an optional status message.
    public func setLevel(_ level: ObservationLevel, message: String? = nil) {
        state.withLock { $0.level = level; if let message { $0.statusMessage = message } }
    }

    /// Attaches a score to this observation.
    public func score(name: String, value: ScoreValue, comment: String? = nil) {
        recorder?.record(ScoreRow(
            id: UUIDv7.make(), runID: recorder?.runID, runItemID: recorder?.runItemID, traceID: traceID, observationID: id, name: name,
            value: value, comment: comment, source: .sdk, evaluator: nil, createdUs: nowMicroseconds()))
    }

    func end(error: (any Error)? = nil) -> ObservationRow {
        state.withLock { row in
            if row.endedUs == nil { row.endedUs = nowMicroseconds() }
            if let error {
                row.level = .error
                row.statusMessage = String(describing: error)
            }
            return row
        }
    }

    var snapshot: ObservationRow { state.withLock { $0 } }
}

/// Runs `body` as an observation of the current trace, nested under the current observation.
///
/// Outside any trace, `observe` starts a new trace in the active client (``XeroML/current``, else the
/// shared client when it is open or `XEROML_DB` is set) and writes it when `body` returns. Inside an experiment item, observations nest
/// under the item's root span and are written with the item's result.
///
/// ```swift
/// let answer = try await observe("answer-question") { span in
///     let passages = try await observe("retrieve") { _ in try await search(question) }
///     return try await observe("generate", as: .generation) { generation in
///         generation.setModel("gpt-4o-mini")
///         generation.setUsage(promptTokens: 812, completionTokens: 64)
///         return try await llm.complete(question, passages)
///     }
/// }
/// ```
///
/// Nesting follows structured concurrency: calls in `async let` and task-group children nest under
/// the observation that spawned them. Recording never changes what `body` returns or throws; when no
/// store is available, `body` simply runs untraced.
public func observe<T, E: Error>(
    _ name: String,
    as kind: ObservationKind = .span,
    input: JSONValue? = nil,
    metadata: JSONValue? = nil,
    _ body: (Span) async throws(E) -> T
) async throws(E) -> T {
    if let context = TraceContext.local {
        let span = Span(kind: kind, name: name, traceID: context.traceID, parentID: context.observationID,
                        input: input, metadata: metadata, recorder: context.recorder)
        let result: Result<T, E> = await TraceContext.$local.withValue(context.child(span.id)) {
            do throws(E) { return .success(try await body(span)) } catch { return .failure(error) }
        }
        if case .failure(let error) = result {
            context.recorder.record(span.end(error: error))
        } else {
            context.recorder.record(span.end())
        }
        return try result.get()
    }
    guard let client = XeroML.activeClient else {
        let span = Span(kind: kind, name: name, traceID: UUIDv7.make(), parentID: nil, input: input,
                        metadata: metadata, recorder: nil)
        return try await body(span)
    }
    return try await client.trace(name, kind: kind, input: input, metadata: metadata, runID: nil, body)
}

/// Records a point-in-time event in the current trace. Does nothing outside a trace.
public func event(_ name: String, input: JSONValue? = nil, metadata: JSONValue? = nil,
                  level: ObservationLevel = .default, message: String? = nil) {
    guard let context = TraceContext.local else { return }
    let now = nowMicroseconds()
    context.recorder.record(ObservationRow(
        id: UUIDv7.make(), traceID: context.traceID, parentID: context.observationID, kind: .event, name: name,
        input: input, output: nil, metadata: metadata, model: nil, modelParameters: nil, usage: TokenUsage(),
        cost: nil, level: level, statusMessage: message, startedUs: now, endedUs: now))
}

extension XeroML {
    /// Runs `body` as the root observation of a new trace and enqueues the trace for writing.
    func trace<T, E: Error>(
        _ name: String, kind: ObservationKind, input: JSONValue?, metadata: JSONValue?, runID: String?,
        _ body: (Span) async throws(E) -> T
    ) async throws(E) -> T {
        let traceID = UUIDv7.make()
        let recorder = TraceRecorder(traceID: traceID, runID: runID, store: store)
        let root = Span(kind: kind, name: name, traceID: traceID, parentID: nil, input: input, metadata: metadata,
                        recorder: recorder)
        let context = TraceContext(traceID: traceID, observationID: root.id, recorder: recorder)
        let result: Result<T, E> = await XeroML.$local.withValue(self) {
            await TraceContext.$local.withValue(context) {
                do throws(E) { return .success(try await body(root)) } catch { return .failure(error) }
            }
        }
        var rootRow: ObservationRow
        if case .failure(let error) = result { rootRow = root.end(error: error) } else { rootRow = root.end() }
        let (observations, scores) = recorder.seal()
        let trace = TraceRow(id: traceID, name: name, runID: runID, input: rootRow.input, output: rootRow.output,
                             metadata: rootRow.metadata, startedUs: rootRow.startedUs, endedUs: rootRow.endedUs)
        rootRow.parentID = nil
        await store.enqueue(WriteBatch(traces: [trace], observations: [rootRow] + observations, scores: scores))
        return try result.get()
    }
}
