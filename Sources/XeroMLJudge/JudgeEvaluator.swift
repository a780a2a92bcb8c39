import Foundation
public import XeroML

/// Whether judge answers are reused from the judge cache.
public enum JudgeCachePolicy: String, Sendable, Hashable, CaseIterable {
    /// One answer per (model, prompt, parameters, template version), shared by every run and
    /// repetition: re-running an experiment does not pay the judge again. The default.
    case shared
    /// The repetition index is part of the key: each repetition gets its own judge call (once), for
    /// measuring the judge's own variance.
    case perRepetition
    /// Neither read nor written.
    case disabled
}

/// An LLM judge as an item ``XeroML/Evaluator``: renders a ``JudgeTemplate`` for the item, asks an
/// OpenAI-compatible model through a ``ChatClient``, and returns one evaluation.
///
/// - **Score**: in 0…1 (or a boolean, or a category, per the template's ``JudgeScale``); the judge's
///   reasoning is the comment.
/// - **Link**: the judge call is a generation in the item's evaluation trace, and the evaluation's
///   `observationID` is that generation's id.
/// - **Failures are data**: an item lacking a part the template needs, or a reply that cannot be
///   parsed, is `.unscored` with the reason (the raw reply included); a call that fails after
///   retries throws a ``ChatError``, which the experiment records as unscored.
/// - **No endpoint, no request**: with a `nil` client every item is unscored, saying how to configure one.
/// - **Cache**: answers are kept in the store's cache (namespace ``cacheNamespace``) under a SHA-256 of
///   the model, the rendered prompt, the parameters and the template version; a hit makes no request
///   and is recorded as a generation with metadata `"cached": true` and no cost. Only parseable
///   answers are cached. Cache I/O problems fall back to calling the judge.
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
        let cache = cachePolicy == .disabled ? nil : XeroML.current

        if let cache, let cached = try? await cache.cachedValue(namespace: Self.cacheNamespace, key: key),
           let content = cached["content"]?.stringValue {
            let observationID = await recordCachedAnswer(content, cached: cached, messages: messages, options: options,
                                                         client: client, body: body, key: key)
            return [evaluation(from: content, observationID: observationID)]
        }

        let completion = try await client.complete(messages: messages, options: options)
        let evaluation = evaluation(from: completion.content, observationID: completion.observationID)
        if let cache, !evaluation.value.isUnscored {
            var entry: [String: JSONValue] = [
                "content": .string(completion.content), "model": .string(completion.model),
                "template": .string(template.tag),
            ]
            if let tokens = completion.usage.promptTokens { entry["prompt_tokens"] = .int(Int64(tokens)) }
            if let tokens = completion.usage.completionTokens { entry["completion_tokens"] = .int(Int64(tokens)) }
            try? await cache.storeCachedValue(.object(entry), namespace: Self.cacheNamespace, key: key)
        }
        return [evaluation]
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
            return Evaluation(name: name, value: .unscored("could not parse judge reply: \(reply)"),
                              comment: "could not parse judge reply (\(failure.reason)): \(reply)",
                              observationID: observationID, source: .judge)
        }
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

    /// Records a cache hit as a generation (no tokens, no cost) so the score still links to what the
    /// judge said. Returns its id, or `nil` outside a trace.
    private func recordCachedAnswer(_ content: String, cached: JSONValue, messages: [ChatMessage], options: ChatOptions,
                                    client: ChatClient, body: JSONValue, key: String) async -> String? {
        guard TraceContext.current != nil else { return nil }
        var metadata = options.metadata
        metadata["cached"] = true
        metadata["cache_key"] = .string(key)
        return await observe(options.name, as: .generation, input: .array(messages.map(\.jsonValue)),
                             metadata: .object(metadata)) { generation in
            generation.setModel(cached["model"]?.stringValue ?? client.configuration.model,
                                parameters: client.parameters(of: body))
            generation.setOutput(.string(content))
            return generation.id
        }
    }
}
