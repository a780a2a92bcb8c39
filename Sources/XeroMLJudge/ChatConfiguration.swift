public import Foundation

/// Where and how to call an OpenAI-compatible chat endpoint: OpenAI, Ollama, vLLM, llama.cpp
/// server, LM Studio, or anything else that serves `POST {baseURL}/chat/completions`.
///
/// ```swift
/// // A local Ollama:
/// let local = ChatConfiguration(baseURL: URL(string: "http://127.0.0.1:11434/v1")!, model: "llama3.1:8b")
/// // OpenAI, with prices so generations carry a cost:
/// var openAI = ChatConfiguration(baseURL: URL(string: "https://api.openai.com/v1")!, model: "gpt-4o-mini",
///                                apiKey: key)
/// openAI.pricePer1KPromptTokens = 0.00015
/// openAI.pricePer1KCompletionTokens = 0.0006
/// // Or from the environment (nil when no endpoint is configured):
/// let configured = try ChatConfiguration.fromEnvironment()
/// ```
///
/// Nothing is ever sent anywhere unless a configuration names an endpoint.
///
/// ## Topics
/// ### Creating a configuration
/// - ``init(baseURL:model:apiKey:temperature:maxTokens:timeout:)``
/// - ``fromEnvironment(_:)``
/// ### Endpoint
/// - ``baseURL``
/// - ``model``
/// - ``apiKey``
/// - ``headers``
/// - ``completionsURL``
/// ### Parameters
/// - ``temperature``
/// - ``maxTokens``
/// - ``timeout``
/// - ``structuredOutput``
/// ### Cost
/// - ``pricePer1KPromptTokens``
/// - ``pricePer1KCompletionTokens``
/// - ``cost(promptTokens:completionTokens:)``
/// ### Environment variables
/// - ``baseURLVariable``
/// - ``modelVariable``
/// - ``apiKeyVariable``
/// - ``fallbackAPIKeyVariable``
public struct ChatConfiguration: Sendable, Hashable {
    /// The API root, including its version path: `https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` (Ollama), `http://127.0.0.1:8000/v1` (vLLM),
    /// `http://127.0.0.1:8080/v1` (llama.cpp server), `http://127.0.0.1:1234/v1` (LM Studio).
    public var baseURL: URL
    /// The model name the endpoint knows (`gpt-4o-mini`, `llama3.1:8b`, …).
    public var model: String
    /// Sent as `Authorization: Bearer <key>` when set. Local servers usually need none.
    public var apiKey: String?
    /// The sampling temperature; `nil` leaves it to the server. Default 0, for repeatable judging.
    public var temperature: Double?
    /// The most tokens a reply may have (`max_tokens`); `nil` leaves it to the server.
    public var maxTokens: Int?
    /// The deadline of one request (each retry gets a new one). Default 60 s.
    public var timeout: Duration
    /// Whether to ask for JSON-schema structured output (`response_format`) where a caller wants
    /// JSON, as judges do. Default `true`. Turn it off for servers that reject the field; replies
    /// are parsed leniently either way.
    public var structuredOutput: Bool
    /// Price in your currency (USD by convention) per 1,000 prompt tokens, for the cost of generations.
    public var pricePer1KPromptTokens: Double?
    /// Price per 1,000 completion tokens.
    public var pricePer1KCompletionTokens: Double?
    /// Extra header fields sent with every request (e.g. `OpenAI-Organization`).
    public var headers: [String: String]

    /// A configuration.
    public init(baseURL: URL, model: String, apiKey: String? = nil, temperature: Double? = 0, maxTokens: Int? = nil,
                timeout: Duration = .seconds(60)) {
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.timeout = timeout
        self.structuredOutput = true
        self.pricePer1KPromptTokens = nil
        self.pricePer1KCompletionTokens = nil
        self.headers = [:]
    }

    /// `XEROML_JUDGE_BASE_URL`: the endpoint's API root.
    public static let baseURLVariable = "XEROML_JUDGE_BASE_URL"
    /// `XEROML_JUDGE_MODEL`: the model name.
    public static let modelVariable = "XEROML_JUDGE_MODEL"
    /// `XEROML_JUDGE_API_KEY`: the API key.
    public static let apiKeyVariable = "XEROML_JUDGE_API_KEY"
    /// `OPENAI_API_KEY`: the API key when `XEROML_JUDGE_API_KEY` is not set.
    public static let fallbackAPIKeyVariable = "OPENAI_API_KEY"

    /// The configuration described by environment variables, or `nil` when no endpoint is
    /// configured (`XEROML_JUDGE_BASE_URL` or `XEROML_JUDGE_MODEL` unset or empty).
    ///
    /// | Variable | Meaning |
    /// |---|---|
    /// | `XEROML_JUDGE_BASE_URL` | the API root, e.g. `http://127.0.0.1:11434/v1` |
    /// | `XEROML_JUDGE_MODEL` | the model name |
    /// | `XEROML_JUDGE_API_KEY` | the API key (else `OPENAI_API_KEY`, else none) |
    /// | `XEROML_JUDGE_TEMPERATURE` | the temperature (default 0) |
    /// | `XEROML_JUDGE_MAX_TOKENS` | `max_tokens` (default: the server's) |
    /// | `XEROML_JUDGE_TIMEOUT` | seconds per request (default 60) |
    /// | `XEROML_JUDGE_STRUCTURED_OUTPUT` | `0` to never send `response_format` |
    /// | `XEROML_JUDGE_PRICE_PROMPT` / `XEROML_JUDGE_PRICE_COMPLETION` | prices per 1,000 tokens |
    ///
    /// - Parameter environment: the variables to read (default: the process environment).
    /// - Throws: ``ChatError`` with code ``ChatError/Code/invalidConfiguration`` naming the variable
    ///   whose value is malformed.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ChatError) -> ChatConfiguration?
    {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        guard let base = value(baseURLVariable), let model = value(modelVariable) else { return nil }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              url.host != nil
        else {
            throw ChatError(.invalidConfiguration, "\(baseURLVariable) must be an http(s) URL such as http://127.0.0.1:11434/v1, not \"\(base)\"")
        }
        var configuration = ChatConfiguration(baseURL: url, model: model,
                                              apiKey: value(apiKeyVariable) ?? value(fallbackAPIKeyVariable))
        func number(_ name: String, range: ClosedRange<Double>) throws(ChatError) -> Double? {
            guard let text = value(name) else { return nil }
            guard let number = Double(text), range.contains(number) else {
                throw ChatError(.invalidConfiguration, "\(name) must be a number in \(range.lowerBound)…\(range.upperBound), not \"\(text)\"")
            }
            return number
        }
        if let temperature = try number("XEROML_JUDGE_TEMPERATURE", range: 0...2) { configuration.temperature = temperature }
        if let text = value("XEROML_JUDGE_MAX_TOKENS") {
            guard let tokens = Int(text), tokens > 0 else {
                throw ChatError(.invalidConfiguration, "XEROML_JUDGE_MAX_TOKENS must be a positive integer, not \"\(text)\"")
            }
            configuration.maxTokens = tokens
        }
        if let seconds = try number("XEROML_JUDGE_TIMEOUT", range: 0.001...86_400) {
            configuration.timeout = .milliseconds(Int64(seconds * 1000))
        }
        if let text = value("XEROML_JUDGE_STRUCTURED_OUTPUT") {
            configuration.structuredOutput = !["0", "false", "no", "off"].contains(text.lowercased())
        }
        configuration.pricePer1KPromptTokens = try number("XEROML_JUDGE_PRICE_PROMPT", range: 0...1_000_000)
        configuration.pricePer1KCompletionTokens = try number("XEROML_JUDGE_PRICE_COMPLETION", range: 0...1_000_000)
        return configuration
    }

    /// `{baseURL}/chat/completions`, with the base URL's query kept after the path (as endpoints that
    /// want `?api-version=…` need). A base URL whose path already ends in `/chat/completions` is used as
    /// it is.
    public var completionsURL: URL {
        guard var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false) else {
            return baseURL.appendingPathComponent("chat/completions")
        }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        if !path.hasSuffix("/chat/completions") { path += "/chat/completions" }
        components.percentEncodedPath = path
        return components.url ?? baseURL.appendingPathComponent("chat/completions")
    }

    /// The cost of a generation from its token counts, or `nil` when no price is configured or no
    /// token count is known.
    public func cost(promptTokens: Int?, completionTokens: Int?) -> Double? {
        guard pricePer1KPromptTokens != nil || pricePer1KCompletionTokens != nil,
              promptTokens != nil || completionTokens != nil else { return nil }
        let prompt = Double(promptTokens ?? 0) / 1000 * (pricePer1KPromptTokens ?? 0)
        let completion = Double(completionTokens ?? 0) / 1000 * (pricePer1KCompletionTokens ?? 0)
        return prompt + completion
    }
}

extension ChatConfiguration: CustomStringConvertible {
    /// The endpoint and model; never the API key.
    public var description: String {
        "\(model) at \(baseURL.absoluteString)" + (apiKey == nil ? "" : " (with API key)")
    }
}

extension ChatConfiguration: CustomReflectable {
    /// Like the stored properties, with the API key masked, so `dump` and debuggers do not show it.
    public var customMirror: Mirror {
        Mirror(self, children: [
            "baseURL": baseURL, "model": model, "apiKey": apiKey == nil ? "nil" : "<redacted>",
            "temperature": temperature as Any, "maxTokens": maxTokens as Any, "timeout": timeout,
            "structuredOutput": structuredOutput, "pricePer1KPromptTokens": pricePer1KPromptTokens as Any,
            "pricePer1KCompletionTokens": pricePer1KCompletionTokens as Any, "headers": headers.keys.sorted(),
        ], displayStyle: .struct)
    }
}
