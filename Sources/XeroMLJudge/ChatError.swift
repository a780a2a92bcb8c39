import Foundation
public import XeroML
public import XeroMLHTTP

/// A failed chat completion, telling the XeroML runner whether to try again.
///
/// `ChatError` is a ``XeroML/RetryableError``: a task that lets it escape is retried by
/// `runExperiment` with backoff, and a rate limit (HTTP 429) makes the shared
/// ``XeroML/AdaptiveLimiter`` back off for the `Retry-After` the server asked for.
///
/// | Failure | Code | Retryable |
/// |---|---|---|
/// | HTTP 429 | ``Code/rateLimited`` | yes, after `Retry-After` |
/// | HTTP 5xx, 408 | ``Code/serverError`` | yes |
/// | no answer in time | ``Code/timeout`` | yes |
/// | refused or dropped connection | ``Code/connectionFailed`` | yes |
/// | other HTTP 4xx | ``Code/requestRejected`` | no |
/// | a body that is not a chat completion | ``Code/invalidResponse`` | no |
/// | a malformed configuration | ``Code/invalidConfiguration`` | no |
///
/// ## Topics
/// ### Codes
/// - ``Code``
/// ### Details
/// - ``message``
/// - ``statusCode``
/// - ``retryAfter``
/// - ``isRetryable``
/// - ``isRateLimit``
/// - ``underlying``
/// - ``shortDescription``
public struct ChatError: RetryableError, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case rateLimited, serverError, timeout, connectionFailed, requestRejected, invalidResponse
            case invalidConfiguration, tlsFailed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// HTTP 429: the endpoint asks for fewer requests. Retryable; see ``ChatError/retryAfter``.
        public static let rateLimited = Code(.rateLimited)
        /// HTTP 5xx or 408. Retryable.
        public static let serverError = Code(.serverError)
        /// No complete answer within the configured timeout. Retryable.
        public static let timeout = Code(.timeout)
        /// The endpoint could not be reached, or the connection dropped. Retryable.
        public static let connectionFailed = Code(.connectionFailed)
        /// Any other HTTP 4xx (a wrong model name, a bad key, a field the server rejects). Not retryable.
        public static let requestRejected = Code(.requestRejected)
        /// The reply is not a chat completion, or is larger than allowed. Not retryable.
        public static let invalidResponse = Code(.invalidResponse)
        /// The configuration is malformed. Not retryable.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The endpoint's TLS certificate was not accepted (untrusted, expired, another host's). Not
        /// retryable.
        public static let tlsFailed = Code(.tlsFailed)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// A sentence saying what went wrong; includes the server's error message when it sent one.
    public let message: String
    /// The HTTP status, when the server answered.
    public let statusCode: Int?
    /// The wait the server asked for (`Retry-After`), if any.
    public let retryAfter: Duration?
    /// The transport error behind this one, if any.
    public let underlying: HTTPError?

    /// An error.
    public init(_ code: Code, _ message: String, statusCode: Int? = nil, retryAfter: Duration? = nil,
                underlying: HTTPError? = nil) {
        self.code = code
        self.message = message
        self.statusCode = statusCode
        self.retryAfter = retryAfter
        self.underlying = underlying
    }

    /// Whether another attempt may succeed.
    public var isRetryable: Bool {
        [Code.rateLimited, .serverError, .timeout, .connectionFailed].contains(code)
    }

    /// Whether this is a rate limit (HTTP 429).
    public var isRateLimit: Bool { code == .rateLimited }

    /// The kind of failure, without details: `"rateLimited"`, `"serverError"`, …
    public var shortDescription: String { code.description }

    public var description: String { message }

    /// The chat error for a transport error, naming the endpoint.
    init(_ error: HTTPError, endpoint: String) {
        let code: Code
        switch error.code {
        case .timeout: code = .timeout
        case .connectionFailed: code = .connectionFailed
        case .tlsFailed: code = .tlsFailed
        case .status:
            let status = error.statusCode ?? 0
            code = status == 429 ? .rateLimited : (status == 408 || status >= 500 ? .serverError : .requestRejected)
        default: code = .invalidResponse
        }
        var message: String
        if error.code == .status, let status = error.statusCode, (300..<400).contains(status) {
            message = "\(endpoint) answered \(error.message)"
        } else if error.code == .status, let status = error.statusCode {
            message = "\(endpoint) answered HTTP \(status)"
            if let detail = Self.serverMessage(error.responseBody) { message += ": \(detail)" }
        } else {
            message = "\(endpoint): \(error.message)"
        }
        self.init(code, message, statusCode: error.statusCode, retryAfter: error.retryAfter, underlying: error)
    }

    /// The `error.message` of an OpenAI-style error body, else the start of the body.
    static func serverMessage(_ body: String?) -> String? {
        guard let body = body?.trimmingCharacters(in: .whitespacesAndNewlines), !body.isEmpty else { return nil }
        if let json = try? JSONValue(parsing: body) {
            if let message = json["error"]?["message"]?.stringValue ?? json["error"]?.stringValue
                ?? json["message"]?.stringValue ?? json["detail"]?.stringValue {
                return message
            }
        }
        return String(body.prefix(300))
    }
}
