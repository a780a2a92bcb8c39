import Foundation

/// A failed HTTP exchange: no response, a response over the size limit, or an unsuccessful status.
///
/// Match on ``code``; ask ``isRetryable`` whether another attempt may succeed:
///
/// ```swift
/// catch let error as HTTPError where error.isRetryable { … try again after error.retryAfter … }
/// ```
///
/// A struct wrapping a code rather than an enum, so new kinds of error are not breaking changes.
///
/// ## Topics
/// ### Codes
/// - ``Code``
/// ### Details
/// - ``statusCode``
/// - ``retryAfter``
/// - ``isRetryable``
/// - ``isRateLimit``
/// - ``responseBody``
/// - ``message``
/// - ``shortDescription``
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case timeout, connectionFailed, status, responseTooLarge, invalidRequest, invalidResponse, tlsFailed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No complete response arrived in time. Retryable.
        public static let timeout = Code(.timeout)
        /// The connection could not be made or was lost. Retryable.
        public static let connectionFailed = Code(.connectionFailed)
        /// The server answered with a status other than 2xx; see ``HTTPError/statusCode``.
        /// Retryable for 408, 429 and 5xx.
        public static let status = Code(.status)
        /// The response body was larger than the transport accepts. Not retryable.
        public static let responseTooLarge = Code(.responseTooLarge)
        /// The request could not be sent as given (e.g. an unsupported URL). Not retryable.
        public static let invalidRequest = Code(.invalidRequest)
        /// The response could not be understood. Not retryable.
        public static let invalidResponse = Code(.invalidResponse)
        /// The TLS handshake failed: the server's certificate is not trusted, has expired or names
        /// another host, or the two sides share no protocol. Not retryable: another attempt meets the
        /// same certificate.
        public static let tlsFailed = Code(.tlsFailed)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// The status code, for ``Code/status`` errors.
    public let statusCode: Int?
    /// The wait the server asked for in a `Retry-After` header, if any.
    public let retryAfter: Duration?
    /// The body of an unsuccessful response (at most 4 KiB of it), if any.
    public let responseBody: String?
    /// A sentence saying what went wrong.
    public let message: String

    /// An error.
    public init(_ code: Code, _ message: String, statusCode: Int? = nil, retryAfter: Duration? = nil,
                responseBody: String? = nil) {
        self.code = code
        self.message = message
        self.statusCode = statusCode
        self.retryAfter = retryAfter
        self.responseBody = responseBody
    }

    /// The error for an unsuccessful `response`: its status, `Retry-After` and the start of its body.
    public init(response: HTTPResponse) {
        let body = response.body.isEmpty ? nil : String(decoding: response.body.prefix(4096), as: UTF8.self)
        var message = "HTTP \(response.statusCode)"
        if (300..<400).contains(response.statusCode), let location = response.header("Location") {
            // Redirects are not followed (they could carry an API key to another host): say where to.
            message += ", a redirect to \(location) (not followed)"
        }
        self.init(.status, message, statusCode: response.statusCode, retryAfter: response.retryAfter, responseBody: body)
    }

    /// Whether another attempt may succeed: timeouts, connection failures, and the statuses 408,
    /// 429 and 5xx.
    public var isRetryable: Bool {
        switch code {
        case .timeout, .connectionFailed: return true
        case .status:
            guard let statusCode else { return false }
            return statusCode == 408 || statusCode == 429 || (500..<600).contains(statusCode)
        default: return false
        }
    }

    /// Whether the server said the client sends too much (HTTP 429).
    public var isRateLimit: Bool { code == .status && statusCode == 429 }

    /// The kind of failure, without details: `"timeout"`, `"HTTP 503"`, …
    public var shortDescription: String {
        if code == .status, let statusCode { return "HTTP \(statusCode)" }
        return code.description
    }

    public var description: String {
        var text = message
        if let retryAfter { text += " (retry after \(retryAfter))" }
        if let responseBody, !responseBody.isEmpty { text += ": \(responseBody.prefix(500))" }
        return text
    }
}
