public import Foundation

// Readable errors: `localizedDescription` is the error's own text, not Foundation's "The operation
// could not be completed". It keeps the type's name in front, as results have always recorded these
// errors (`TransientError: HTTP 503`; see docs/runner.md), so the text stored with a failed item and
// the one a person reads are the same.

extension RateLimitError: LocalizedError {
    /// "RateLimitError: rate limited (retry after 2.00 s)".
    public var errorDescription: String? { "RateLimitError: \(description)" }
}

extension TransientError: LocalizedError {
    /// "TransientError: " and the message.
    public var errorDescription: String? { "TransientError: \(description)" }
}

extension TaskTimeoutError: LocalizedError {
    /// "TaskTimeoutError: timed out after 30.00 s".
    public var errorDescription: String? { "TaskTimeoutError: \(description)" }
}
