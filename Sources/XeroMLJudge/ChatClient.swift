import Foundation
public import XeroML
public import XeroMLHTTP

/// A client for OpenAI-compatible chat completions (`POST {baseURL}/chat/completions`),
/// non-streaming, with retries, an optional shared rate limiter, and tracing.
///
/// Judges use it, and so can the system under test: inside an experiment item (or any
/// ``XeroML/observe(_:as:input:metadata:_:)`` trace) every call is recorded as a **generation**
/// observation with the model and its parameters, the messages as input, the reply as output,
/// token usage, cost (when prices are configured) and latency.
///
/// ```swift
/// let client = ChatClient(configuration: ChatConfiguration(
///     baseURL: URL(string: "http://127.0.0.1:11434/v1")!, model: "llama3.1:8b"))
/// try await xeroml.runExperiment(name: "baseline", datasetName: "capitals") { run in
///     let reply = try await client.complete(messages: [.user(run.input["question"]!.displayText)])
///     run.setOutput(.string(reply.content))
/// }
/// ```
///
/// ### Retries and rate limits
/// Retryable failures (HTTP 429, 5xx, timeouts, dropped connections) are retried by ``retry``,
/// honouring `Retry-After`; what escapes is a ``ChatError``, which the experiment runner may retry
/// again. Each attempt holds a permit of ``limiter`` while it runs; a 429 makes the limiter back off.
///
/// Inside a `runExperiment` task, leave ``limiter`` `nil` when the runner already uses the same
/// limiter (``XeroML/ExperimentOptions/limiter``): the task holds the runner's permit while it
/// runs, and asking for a second one from the same limiter could wait forever. Judges run after the
/// task's permit is released and may share the runner's limiter.
///
/// Outside any trace nothing is recorded, and no store is opened.
///
/// ## Topics
/// ### Creating a client
/// - ``init(configuration:transport:retry:limiter:)``
/// - ``configuration``
/// - ``retry``
/// - ``limiter``
/// ### Calling the model
/// - ``complete(messages:options:)``
/// - ``complete(_:system:options:)``
/// - ``requestBody(messages:options:)``
public struct ChatClient: Sendable {
    /// The endpoint, model and parameters.
    public let configuration: ChatConfiguration
    /// How failed attempts are retried inside one call. Default: 3 attempts.
    public var retry: RetryPolicy
    /// A limiter shared with other clients or experiments, or `nil`.
    public var limiter: AdaptiveLimiter?
    let transport: any HTTPTransport

    /// A client.
    ///
    /// - Parameters:
    ///   - transport: how requests are sent (default: a ``XeroMLHTTP/NIOTransport`` with the
    ///     configuration's timeout).
    ///   - retry: retries inside one call.
    ///   - limiter: a shared limiter, acquired around each attempt.
    public init(configuration: ChatConfiguration, transport: (any HTTPTransport)? = nil,
                retry: RetryPolicy = RetryPolicy(), limiter: AdaptiveLimiter? = nil) {
        self.configuration = configuration
        self.transport = transport ?? NIOTransport(timeout: configuration.timeout)
        self.retry = retry
        self.limiter = limiter
    }

    /// Sends a one-turn conversation: an optional system message and `prompt` as the user message.
    public func complete(_ prompt: String, system: String? = nil, options: ChatOptions = ChatOptions())
        async throws -> ChatCompletion
    {
        try await complete(messages: (system.map { [.system($0)] } ?? []) + [.user(prompt)], options: options)
    }

    /// Sends `messages` and returns the first choice's reply.
    ///
    /// Inside a trace, the call is recorded as a generation named ``ChatOptions/name`` whose id is
    /// the reply's ``ChatCompletion/observationID``; a call that fails is recorded at level `error`.
    ///
    /// - Throws: ``ChatError`` once retries are exhausted or for a failure that is not retryable;
    ///   `CancellationError` when the calling task is cancelled.
    public func complete(messages: [ChatMessage], options: ChatOptions = ChatOptions()) async throws -> ChatCompletion {
        let body = requestBody(messages: messages, options: options)
        guard TraceContext.current != nil || XeroML.current != nil else {
            return try await send(body)
        }
        var metadata = options.metadata
        metadata["endpoint"] = .string(configuration.completionsURL.absoluteString)
        let recordedMetadata = metadata
        return try await observe(options.name, as: .generation, input: .array(messages.map(\.jsonValue)),
                                 metadata: .object(recordedMetadata)) { generation in
            generation.setModel(configuration.model, parameters: parameters(of: body))
            var completion = try await send(body)
            completion.observationID = generation.id
            generation.setModel(completion.model)
            generation.setOutput(.string(completion.content))
            generation.setUsage(promptTokens: completion.usage.promptTokens,
                                completionTokens: completion.usage.completionTokens,
                                totalTokens: completion.usage.totalTokens)
            if let cost = completion.cost { generation.setCost(cost) }
            var final = recordedMetadata
            final["attempts"] = .int(Int64(completion.attempts))
            final["latency_ms"] = .double((completion.latency.seconds * 1000 * 1000).rounded() / 1000)
            if let reason = completion.finishReason { final["finish_reason"] = .string(reason) }
            generation.setMetadata(.object(final))
            return completion
        }
    }

    /// The JSON body sent for `messages`: `model`, `messages`, `temperature`, `max_tokens`,
    /// `response_format` (when asked for and ``ChatConfiguration/structuredOutput`` is on) and
    /// `"stream": false`.
    public func requestBody(messages: [ChatMessage], options: ChatOptions = ChatOptions()) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(configuration.model),
            "messages": .array(messages.map(\.jsonValue)),
            "stream": false,
        ]
        if let temperature = options.temperature ?? configuration.temperature { body["temperature"] = .double(temperature) }
        if let maxTokens = options.maxTokens ?? configuration.maxTokens { body["max_tokens"] = .int(Int64(maxTokens)) }
        if configuration.structuredOutput, let format = options.responseFormat.jsonValue {
            body["response_format"] = format
        }
        return .object(body)
    }

    /// The model parameters recorded on generations: the request body without model and messages.
    func parameters(of body: JSONValue) -> JSONValue {
        guard case .object(var members) = body else { return .null }
        members["model"] = nil
        members["messages"] = nil
        members["stream"] = nil
        if let format = members["response_format"] {
            members["response_format"] = format["type"] ?? format
        }
        return .object(members)
    }

    /// Sends `body` with retries and the limiter, and parses the reply.
    func send(_ body: JSONValue) async throws -> ChatCompletion {
        let url = configuration.completionsURL
        var headers = configuration.headers
        headers["Accept"] = "application/json"
        if let key = configuration.apiKey, !key.isEmpty { headers["Authorization"] = "Bearer \(key)" }
        let request = HTTPRequest.post(url, json: Data(body.jsonString.utf8), headers: headers,
                                       timeout: configuration.timeout)
        let endpoint = url.absoluteString
        var random = SystemRandomNumberGenerator()
        let clock = ContinuousClock()
        var attempt = 1
        while true {
            try Task.checkCancellation()
            try await limiter?.acquire()
            let start = clock.now
            let failure: ChatError
            do {
                let response: HTTPResponse
                do {
                    response = try await transport.send(request).checked()
                } catch let error as HTTPError {
                    throw ChatError(error, endpoint: endpoint)
                }
                var completion = try parse(response, endpoint: endpoint)
                limiter?.release(.success)
                completion.attempts = attempt
                completion.latency = start.duration(to: clock.now)
                return completion
            } catch let error as ChatError {
                failure = error
            } catch {
                limiter?.release(.failure)
                throw error
            }
            // A wait longer than the policy honours is not imposed on the shared limiter either.
            let pause = failure.retryAfter.map { min($0, retry.maxRetryAfter) }
            limiter?.release(failure.isRateLimit ? .rateLimited(retryAfter: pause) : .failure)
            guard retry.shouldRetry(failure, attempt: attempt) else { throw failure }
            try await Task.sleep(for: retry.delay(afterAttempt: attempt, retryAfter: failure.retryAfter, using: &random))
            attempt += 1
        }
    }

    /// Reads `choices[0].message.content`, `usage`, `model` and `finish_reason` from a 2xx response.
    func parse(_ response: HTTPResponse, endpoint: String) throws(ChatError) -> ChatCompletion {
        let json: JSONValue
        do {
            json = try JSONValue(parsing: response.text)
        } catch {
            throw ChatError(.invalidResponse, "\(endpoint) sent a reply that is not JSON (\(error)): \(response.text.prefix(300))",
                            statusCode: response.statusCode)
        }
        guard let message = json["choices"]?[0]?["message"] else {
            if let detail = ChatError.serverMessage(json["error"] != nil ? response.text : nil) {
                throw ChatError(.invalidResponse, "\(endpoint) answered with an error: \(detail)", statusCode: response.statusCode)
            }
            throw ChatError(.invalidResponse, "\(endpoint) sent no choices[0].message: \(response.text.prefix(300))",
                            statusCode: response.statusCode)
        }
        let content: String
        switch message["content"] {
        case .string(let text)?:
            content = text
        case .array(let parts)?:
            // Some servers send content parts: [{"type": "text", "text": "…"}].
            content = parts.compactMap { $0["text"]?.stringValue ?? $0.stringValue }.joined()
        default:
            // No text: a refusal's words are the answer; anything else is no answer at all, which an
            // evaluation must not score as an empty one.
            if let refusal = message["refusal"]?.stringValue {
                content = refusal
            } else {
                let reason = json["choices"]?[0]?["finish_reason"]?.stringValue
                let what = message["tool_calls"] != nil ? "tool calls instead of text" : "no text (\"content\": null)"
                throw ChatError(.invalidResponse, "\(endpoint) answered with \(what)"
                                + (reason.map { ", finish_reason \"\($0)\"" } ?? "")
                                + (reason == "length" ? " (the reply hit its token limit before any text: raise max tokens)" : ""),
                                statusCode: response.statusCode)
            }
        }
        func count(_ key: String) -> Int? {
            json["usage"]?[key]?.doubleValue.map { Int($0) }
        }
        let usage = TokenUsage(promptTokens: count("prompt_tokens"), completionTokens: count("completion_tokens"),
                               totalTokens: count("total_tokens"))
        return ChatCompletion(
            content: content, model: json["model"]?.stringValue ?? configuration.model, usage: usage,
            cost: configuration.cost(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens),
            finishReason: json["choices"]?[0]?["finish_reason"]?.stringValue)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
