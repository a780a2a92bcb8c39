public import Foundation
public import XeroML

/// A scripted answer of a ``FakeOpenAIServer``: status, headers, body, and a delay before sending.
///
/// ```swift
/// server.enqueue(.rateLimited(retryAfter: "1"), .status(503), .chat("Paris"))
/// server.enqueue(.judge(score: 0.8, reasoning: "Mostly right.").delayed(by: .milliseconds(50)))
/// ```
///
/// ## Topics
/// - ``chat(_:model:promptTokens:completionTokens:finishReason:)``
/// - ``judge(score:reasoning:)``
/// - ``json(_:status:)``
/// - ``status(_:body:headers:)``
/// - ``rateLimited(retryAfter:)``
/// - ``delayed(by:)``
/// - ``header(_:_:)``
/// - ``misbehaving(_:)``
/// - ``Misbehavior``
public struct FakeReply: Sendable, Hashable {
    /// Ways a server fails to answer properly, for tests of clients' deadlines and error handling.
    public enum Misbehavior: Sendable, Hashable {
        /// Reads the request and never sends a byte, holding the connection open until the server stops.
        case neverAnswer
        /// Sends the status line and headers (with the full `Content-Length`), then nothing more.
        case stallAfterHeaders
        /// Sends the whole response one byte at a time, one byte per `interval`.
        case trickle(interval: Duration)
        /// Sends the headers and half the body, then closes the connection.
        case closeMidBody
        /// Resets the connection (TCP RST) as soon as the request has been read.
        case reset
    }


    /// The HTTP status.
    public var status: Int
    /// Header fields; `Content-Type: application/json` is added unless given.
    public var headers: [String: String]
    /// The body.
    public var body: Data
    /// How long the server waits before answering.
    public var delay: Duration
    /// How the server fails to answer, or `nil` to answer properly.
    public var misbehavior: Misbehavior?

    public init(status: Int = 200, headers: [String: String] = [:], body: Data = Data(), delay: Duration = .zero) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
    }

    /// A chat completion whose `choices[0].message.content` is `content`, with token usage.
    public static func chat(_ content: String, model: String = "fake-model", promptTokens: Int = 10,
                            completionTokens: Int = 5, finishReason: String = "stop") -> FakeReply {
        .json([
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": .string(model),
            "choices": [[
                "index": 0,
                "message": ["role": "assistant", "content": .string(content)],
                "finish_reason": .string(finishReason),
            ]],
            "usage": [
                "prompt_tokens": .int(Int64(promptTokens)),
                "completion_tokens": .int(Int64(completionTokens)),
                "total_tokens": .int(Int64(promptTokens + completionTokens)),
            ],
        ])
    }

    /// A chat completion whose content is the judge JSON `{"reasoning": …, "score": …}`.
    public static func judge(score: JSONValue, reasoning: String = "Because.") -> FakeReply {
        .chat(JSONValue.object(["reasoning": .string(reasoning), "score": score]).jsonString)
    }

    /// A JSON body.
    public static func json(_ value: JSONValue, status: Int = 200) -> FakeReply {
        FakeReply(status: status, headers: ["Content-Type": "application/json"], body: Data(value.jsonString.utf8))
    }

    /// Any status with a text body, e.g. `.status(503)` or
    /// `.status(400, body: #"{"error": {"message": "unknown model"}}"#)`.
    public static func status(_ status: Int, body: String = "", headers: [String: String] = [:]) -> FakeReply {
        FakeReply(status: status, headers: headers, body: Data(body.utf8))
    }

    /// HTTP 429 with an OpenAI-style error body and, when given, a `Retry-After` header (seconds or
    /// an HTTP date).
    public static func rateLimited(retryAfter: String? = nil) -> FakeReply {
        .status(429, body: #"{"error": {"message": "Rate limit reached", "type": "requests"}}"#,
                headers: retryAfter.map { ["Retry-After": $0] } ?? [:])
    }

    /// This reply, sent after waiting `delay`.
    public func delayed(by delay: Duration) -> FakeReply {
        var copy = self
        copy.delay = delay
        return copy
    }

    /// This reply, sent the broken way `misbehavior` says (after ``delay``).
    public func misbehaving(_ misbehavior: Misbehavior) -> FakeReply {
        var copy = self
        copy.misbehavior = misbehavior
        return copy
    }

    /// This reply with one more header field.
    public func header(_ name: String, _ value: String) -> FakeReply {
        var copy = self
        copy.headers[name] = value
        return copy
    }
}

/// A request received by a ``FakeOpenAIServer``.
///
/// ## Topics
/// - ``method``
/// - ``path``
/// - ``headers``
/// - ``body``
/// - ``json``
/// - ``header(_:)``
/// - ``messages``
public struct FakeRequest: Sendable, Hashable {
    /// `POST`, `GET`, …
    public var method: String
    /// The request target, e.g. `/v1/chat/completions`.
    public var path: String
    /// Header fields, with **lowercased** names.
    public var headers: [String: String]
    /// The body.
    public var body: Data
    /// When it arrived.
    public var receivedAt: Date

    /// The value of the header `name` (any case).
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The body parsed as JSON, or `nil`.
    public var json: JSONValue? { try? JSONValue(parsing: String(decoding: body, as: UTF8.self)) }

    /// The chat messages of the body as (role, content) pairs; empty when there are none.
    public var messages: [(role: String, content: String)] {
        guard case .array(let messages)? = json?["messages"] else { return [] }
        return messages.map { ($0["role"]?.stringValue ?? "", $0["content"]?.stringValue ?? "") }
    }
}
