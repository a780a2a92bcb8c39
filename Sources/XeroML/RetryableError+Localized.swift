public import Foundation

// Readable errors: `localizedDescription` is the sentence of `description`, not Foundation's
// "The operation could not be completed".

extension RateLimitError: LocalizedError {
    /// The message and the wait asked for: "rate limited (retry after 2 s)".
    public var errorDescription: String? { description }
}

extension TransientError: LocalizedError {
    /// The message.
    public var errorDescription: String? { description }
}

extension TaskTimeoutError: LocalizedError {
    /// "the task timed out after 30 s; raise the timeout (ExperimentOptions.timeout) if it needs longer".
    public var errorDescription: String? {
        "the task \(description); raise the timeout (ExperimentOptions.timeout) if it needs longer"
    }
}
