public import XeroML

/// One message of a chat conversation.
///
/// ## Topics
/// - ``system(_:)``
/// - ``user(_:)``
/// - ``assistant(_:)``
/// - ``Role``
public struct ChatMessage: Sendable, Hashable, Codable {
    /// Who speaks: `system`, `user`, `assistant`, or another role the server knows.
    public struct Role: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { rawValue = value }
        /// Instructions that frame the conversation.
        public static let system: Role = "system"
        /// The user's turn.
        public static let user: Role = "user"
        /// The model's turn.
        public static let assistant: Role = "assistant"
    }

    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: .system, content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    /// An assistant message.
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }

    /// The message as JSON: `{"role": …, "content": …}`.
    public var jsonValue: JSONValue { ["role": .string(role.rawValue), "content": .string(content)] }
}

/// The shape a reply must have (`response_format`).
///
/// ## Topics
/// - ``text``
/// - ``jsonObject``
/// - ``jsonSchema(name:schema:strict:)``
public enum ChatResponseFormat: Sendable, Hashable {
    /// Free text (the default; no `response_format` is sent).
    case text
    /// Any JSON object (`{"type": "json_object"}`).
    case jsonObject
    /// JSON matching `schema` (`{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`).
    /// OpenAI, Ollama, vLLM, llama.cpp server and LM Studio understand it; models that ignore it are
    /// handled by lenient parsing.
    case jsonSchema(name: String, schema: JSONValue, strict: Bool = true)

    /// The `response_format` field, or `nil` for ``text``.
    public var jsonValue: JSONValue? {
        switch self {
        case .text: nil
        case .jsonObject: ["type": "json_object"]
        case .jsonSchema(let name, let schema, let strict):
            ["type": "json_schema", "json_schema": ["name": .string(name), "schema": schema, "strict": .bool(strict)]]
        }
    }
}

/// Per-call settings of ``ChatClient/complete(messages:options:)``; `nil` fields fall back to the
/// client's ``ChatConfiguration``.
///
/// ## Topics
/// - ``name``
/// - ``temperature``
/// - ``maxTokens``
/// - ``responseFormat``
/// - ``metadata``
public struct ChatOptions: Sendable, Hashable {
    /// The name of the generation observation (default `"chat"`).
    public var name: String
    /// Overrides ``ChatConfiguration/temperature``.
    public var temperature: Double?
    /// Overrides ``ChatConfiguration/maxTokens``.
    public var maxTokens: Int?
    /// The reply's shape. Ignored (not sent) when ``ChatConfiguration/structuredOutput`` is off.
    public var responseFormat: ChatResponseFormat
    /// Metadata added to the generation observation.
    public var metadata: [String: JSONValue]

    public init(name: String = "chat", temperature: Double? = nil, maxTokens: Int? = nil,
                responseFormat: ChatResponseFormat = .text, metadata: [String: JSONValue] = [:]) {
        self.name = name
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.responseFormat = responseFormat
        self.metadata = metadata
    }
}

/// A model's reply with its usage, cost and the generation that recorded it.
///
/// ## Topics
/// - ``content``
/// - ``model``
/// - ``usage``
/// - ``cost``
/// - ``finishReason``
/// - ``observationID``
/// - ``attempts``
/// - ``latency``
public struct ChatCompletion: Sendable, Hashable {
    /// The text of `choices[0].message.content` (a refusal's text when the model refused; `""` when empty).
    public var content: String
    /// The model that answered, as the server reported it (else the requested one).
    public var model: String
    /// The token usage the server reported.
    public var usage: TokenUsage
    /// The cost from the configured prices, or `nil` without prices.
    public var cost: Double?
    /// Why the model stopped (`stop`, `length`, …), when reported.
    public var finishReason: String?
    /// The id of the generation observation that recorded the call, when it ran inside a trace.
    public var observationID: String?
    /// Attempts made, the first included.
    public var attempts: Int
    /// Wall time of the successful attempt.
    public var latency: Duration

    public init(content: String, model: String, usage: TokenUsage = TokenUsage(), cost: Double? = nil,
                finishReason: String? = nil, observationID: String? = nil, attempts: Int = 1, latency: Duration = .zero) {
        self.content = content
        self.model = model
        self.usage = usage
        self.cost = cost
        self.finishReason = finishReason
        self.observationID = observationID
        self.attempts = attempts
        self.latency = latency
    }
}
