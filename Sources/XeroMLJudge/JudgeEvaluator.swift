import Foundation
public import XeroML

/// Whether judge answers are reused from the judge cache.
public enum JudgeCachePolicy: String, Sendable, Hashable, CaseIterable {
    /// One answer per (model, prompt, parameters, template version), shared by every run and
    /// repetition: re-running an experiment does not pay the judge again, and identical requests in
    /// flight at the same moment make one call. The default.
    case shared
    /// The repetition index is part of the key: each repetition gets its own judge call (once), for
    /// measuring the judge's own variance; only requests of the same repetition share a call in flight.
    case perRepetition
    /// Neither read nor written, and no call is shared.
    case disabled
}

/// An LLM judge as an item ``XeroML/Evaluator``: renders a ``JudgeTemplate`` for the item, asks an
/// OpenAI-compatible model through a ``ChatClient``, and returns one evaluation.
///
/// - **Score**: in 0…1 (or a boolean, or a category, per the template's ``JudgeScale``); the judge's
///   reasoning is the comment.
/// - **Link**: the judge call is a generation in the item's evaluation trace, and the evaluation's
///   `observationID` is that generation's id.
/// - **Failures are data**: an item lacking a part the template needs is `.unscored` with the reason;
///   a reply that ``JudgeReplyParser`` cannot read (no score, a score off the scale, conflicting
///   scores) is `.unscored("could not parse judge reply (<reason>): <reply>")`, the reply quoted up to
///   2,000 characters (its start and end when longer; the whole reply is the generation's output). A
///   call that fails after retries throws a ``ChatError``, which the experiment records as unscored.
/// - **No endpoint, no request**: with a `nil` client every item is unscored, saying how to configure one.
/// - **Cache**: answers are kept in the store's cache (namespace ``cacheNamespace``) under a SHA-256 of
///   the model, the rendered prompt, the parameters and the template version; a hit makes no request
///   and is recorded as a generation with metadata `"cached": true` and no cost. Only parseable
///   answers are cached. Cache I/O problems fall back to calling the judge.
/// - **Single flight**: identical requests (the same cache key, on the same ``XeroML`` client) in
///   flight at the same moment make one call. The first asks; the others wait and record the answer as
///   a cache hit (metadata `"cached": true`, `"in_flight": true`, `"shared_from"`: the generation that
///   carries the tokens and cost). If that call fails after its retries, the waiters fail with the
///   same error; if the asking task is cancelled, the waiters are not: one of them asks instead.
///   With ``JudgeCachePolicy/disabled``, or outside an experiment, nothing is shared;
///   with ``JudgeCachePolicy/perRepetition`` only requests of the same repetition are.
///
/// ```swift
/// let judge = JudgeEvaluator(.helpfulness, client: ChatClient(configuration: configuration))
/// try await xeroml.runExperiment(name: "v2", datasetName: "faq", evaluators: [judge]) { run in … }
/// ```
///
/// ## Topics
/// ### Creating a judge
/// - ``init(_:client:name:cachePolicy:contextKeyPath:)``
/// - ``JudgeCachePolicy``
/// ### Properties
/// - ``template``
/// - ``client``
/// - ``cachePolicy``
/// - ``contextKeyPath``
/// ### Cache
/// - ``cacheNamespace``
/// - ``cacheKey(for:repetition:)``
public struct JudgeEvaluator: Evaluator {
    /// The cache namespace of judge answers: `"judge"`.
    public static let cacheNamespace = "judge"

    public let name: String
    /// The prompt and scale.
    public let template: JudgeTemplate
    /// The judge model, or `nil` when no endpoint is configured.
    public let client: ChatClient?
    /// Whether answers come from and go to the cache.
    public var cachePolicy: JudgeCachePolicy
    /// Where the item's context is: a key path from `input`, `output`, `expected_output` or
    /// `metadata`. Default `metadata.context`. Arrays of passages are numbered; objects with a
    /// `text` or `content` member show it.
    public var contextKeyPath: String

    /// A judge.
    ///
    /// - Parameters:
    ///   - name: the score name (default: the template's name).
    ///   - client: the judge model; `nil` makes every item unscored without any request.
    public init(_ template: JudgeTemplate, client: ChatClient?, name: String? = nil,
                cachePolicy: JudgeCachePolicy = .shared, contextKeyPath: String = "metadata.context") {
        self.template = template
        self.client = client
        self.name = name ?? template.name
        self.cachePolicy = cachePolicy
        self.contextKeyPath = contextKeyPath
    }

    /// Judge scores are recorded with source ``ScoreSource/judge``, failures included.
    public var scoreSource: ScoreSource { .judge }

    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let client else {
            return [Evaluation(name: name, value: .unscored(
                "no judge endpoint is configured: set \(ChatConfiguration.baseURLVariable) and "
                    + "\(ChatConfiguration.modelVariable), or register judges with a ChatConfiguration"), source: .judge)]
        }
        let messages: [ChatMessage]
        do {
            messages = try template.messages(for: input, context: context(of: input))
        } catch {
            return [Evaluation(name: name, value: .unscored(error.description), source: .judge)]
        }
        let options = ChatOptions(name: "judge:\(template.name)", responseFormat: template.responseFormat,
                                  metadata: ["judge": .string(name), "template": .string(template.tag)])
        let body = client.requestBody(messages: messages, options: options)
        let key = cacheKey(for: body, repetition: input.repetition)
        let request = Request(client: client, messages: messages, options: options, body: body, key: key)
        guard cachePolicy != .disabled, let store = XeroML.current else {
            // No cache to share through: every request is its own.
            return [try await call(request, cache: nil).evaluation]
        }

        let flight = JudgeFlights.Key(store: ObjectIdentifier(store), cacheKey: key)
        while true {
            switch await JudgeFlights.shared.join(flight) {
            case .cancelled:
                throw CancellationError()
            case .wait(.answered(let answer)):
                // An identical request was answered while this one waited: no second call.
                let observationID = await recordCachedAnswer(answer.content, model: answer.model, request: request,
                                                             inFlight: true, sharedFrom: answer.observationID)
                return [evaluation(from: answer.content, observationID: observationID)]
            case .wait(.failed(let error)):
                throw error
            case .wait(.abandoned):
                continue  // the leader was cancelled: ask again, perhaps as the new leader
            case .lead:
                do {
                    let (evaluation, answer) = try await ask(request, store: store)
                    JudgeFlights.shared.finish(flight, with: .answered(answer))
                    return [evaluation]
                } catch {
                    let cancelled = Task.isCancelled || error is CancellationError
                    JudgeFlights.shared.finish(flight, with: cancelled ? .abandoned : .failed(error))
                    throw error
                }
            }
        }
    }

    /// One judge request: what is sent and its cache key.
    struct Request {
        var client: ChatClient
        var messages: [ChatMessage]
        var options: ChatOptions
        var body: JSONValue
        var key: String
    }

    /// The answer to `request` from the cache of `store`, else from the endpoint.
    private func ask(_ request: Request, store: XeroML) async throws -> (Evaluation, JudgeFlights.Answer) {
        if let cached = try? await store.cachedValue(namespace: Self.cacheNamespace, key: request.key),
           let content = cached["content"]?.stringValue {
            let model = cached["model"]?.stringValue ?? request.client.configuration.model
            let observationID = await recordCachedAnswer(content, model: model, request: request)
            return (evaluation(from: content, observationID: observationID),
                    JudgeFlights.Answer(content: content, model: model, observationID: nil))
        }
        return try await call(request, cache: store)
    }

    /// Asks the endpoint, and stores a parseable answer in `cache`.
    private func call(_ request: Request, cache: XeroML?) async throws -> (evaluation: Evaluation, answer: JudgeFlights.Answer) {
        let completion = try await request.client.complete(messages: request.messages, options: request.options)
        let evaluation = evaluation(from: completion.content, observationID: completion.observationID)
        if let cache, !evaluation.value.isUnscored {
            var entry: [String: JSONValue] = [
                "content": .string(completion.content), "model": .string(completion.model),
                "template": .string(template.tag),
            ]
            if let tokens = completion.usage.promptTokens { entry["prompt_tokens"] = .int(Int64(tokens)) }
            if let tokens = completion.usage.completionTokens { entry["completion_tokens"] = .int(Int64(tokens)) }
            try? await cache.storeCachedValue(.object(entry), namespace: Self.cacheNamespace, key: request.key)
        }
        return (evaluation, JudgeFlights.Answer(content: completion.content, model: completion.model,
                                                observationID: completion.observationID))
    }

    /// The cache key of a request body: the SHA-256 (hex) of the template version, the endpoint, the
    /// body (model, rendered messages, temperature, max tokens, response format) and, with
    /// ``JudgeCachePolicy/perRepetition``, the repetition index. The endpoint is part of it because the
    /// same model name on two servers can be two different models.
    public func cacheKey(for body: JSONValue, repetition: Int) -> String {
        var material: [String: JSONValue] = ["format": 1, "template": .string(template.tag), "request": body]
        if let endpoint = client?.configuration.baseURL.absoluteString { material["endpoint"] = .string(endpoint) }
        if cachePolicy == .perRepetition { material["repetition"] = .int(Int64(repetition)) }
        return SHA256.hex(JSONValue.object(material).jsonString)
    }

    /// The evaluation for a judge reply.
    func evaluation(from reply: String, observationID: String?) -> Evaluation {
        switch JudgeReplyParser.parse(reply, scale: template.scale) {
        case .success(let verdict):
            var comment = verdict.reasoning
            if let raw = verdict.rawScore, case .range(let range) = template.scale {
                let prefix = "(\(formatBound(raw)) on \(formatBound(range.lowerBound))…\(formatBound(range.upperBound)))"
                comment = comment.map { "\(prefix) \($0)" } ?? prefix
            }
            return Evaluation(name: name, value: verdict.value, comment: comment, observationID: observationID,
                              source: .judge)
        case .failure(let failure):
            // The comment is left out: the experiment then stores the reason as the comment too.
            return Evaluation(name: name,
                              value: .unscored("could not parse judge reply (\(failure.reason)): \(Self.excerpt(of: reply))"),
                              observationID: observationID, source: .judge)
        }
    }

    /// The most of a judge reply an unscored reason quotes, in characters. The whole reply is the
    /// output of the judge's generation.
    static let excerptLimit = 2_000

    /// `reply` trimmed, or when longer than ``excerptLimit`` its start and its end (where replies
    /// usually put the score) around `[… N characters left out …]`; `(empty reply)` when empty.
    static func excerpt(of reply: String) -> String {
        let text = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return "(empty reply)" }
        guard text.count > excerptLimit else { return text }
        let half = excerptLimit / 2
        return "\(text.prefix(half)) [… \(text.count - 2 * half) characters left out …] \(text.suffix(half))"
    }

    /// The item's context as text, or `nil`.
    func context(of input: EvaluationInput) -> String? {
        var values: [String: JSONValue] = ["input": input.input]
        if let output = input.output { values["output"] = output }
        if let expected = input.expectedOutput { values["expected_output"] = expected }
        if let metadata = input.metadata { values["metadata"] = metadata }
        let path = contextKeyPath.split(separator: ".").map(String.init)
        guard let value = PromptTemplate.resolve(path, in: values) else { return nil }
        switch value {
        case .string(let text):
            return text.isEmpty ? nil : text
        case .array(let passages):
            guard !passages.isEmpty else { return nil }
            return passages.enumerated().map { index, passage in
                "[\(index + 1)] " + (passage["text"]?.displayText ?? passage["content"]?.displayText ?? passage.displayText)
            }.joined(separator: "\n\n")
        default:
            return value["text"]?.displayText ?? value["content"]?.displayText ?? value.displayText
        }
    }

    /// Records an answer taken from the cache, or from an identical request in flight, as a generation
    /// (no tokens, no cost) so the score still links to what the judge said. Returns its id, or `nil`
    /// outside a trace.
    ///
    /// - Parameters:
    ///   - inFlight: the answer came from an identical request in flight (metadata `"in_flight": true`).
    ///   - sharedFrom: that request's generation when it called the endpoint, the one carrying the
    ///     tokens and cost (metadata `"shared_from"`).
    private func recordCachedAnswer(_ content: String, model: String, request: Request, inFlight: Bool = false,
                                    sharedFrom: String? = nil) async -> String? {
        guard TraceContext.current != nil else { return nil }
        var metadata = request.options.metadata
        metadata["cached"] = true
        metadata["cache_key"] = .string(request.key)
        if inFlight {
            metadata["in_flight"] = true
            if let sharedFrom { metadata["shared_from"] = .string(sharedFrom) }
        }
        return await observe(request.options.name, as: .generation, input: .array(request.messages.map(\.jsonValue)),
                             metadata: .object(metadata)) { generation in
            generation.setModel(model, parameters: request.client.parameters(of: request.body))
            generation.setOutput(.string(content))
            return generation.id
        }
    }
}
