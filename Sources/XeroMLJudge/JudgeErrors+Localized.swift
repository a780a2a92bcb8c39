public import Foundation

// Readable errors: `localizedDescription` says what failed and what to do, instead of Foundation's
// "The operation could not be completed".

extension ChatError: LocalizedError {
    /// The message (naming the endpoint and the server's own explanation) and what to do about it.
    public var errorDescription: String? {
        let redirect = statusCode.map { (300..<400).contains($0) } ?? false
        let advice: String? = switch code {
        case .requestRejected where redirect:
            "redirects are not followed, since they could carry the API key to another host; use the address it names as the base URL"
        case .rateLimited: "the endpoint asks for fewer requests; lower the concurrency or wait"
        case .serverError: "the endpoint failed; try again later"
        case .timeout: "no answer in time; check the endpoint or raise its timeout"
        case .connectionFailed where message.contains("through the proxy"): nil  // the message says what to check
        case .connectionFailed: "check that the endpoint is running and that its URL is right"
        case .requestRejected: "check the model name, the API key and the request's options"
        case .invalidResponse: "check that the URL is an OpenAI-compatible chat completions endpoint"
        case .tlsFailed: "check the URL's host name; a certificate signed by your own authority needs that authority in the system's trust store (Debian: /usr/local/share/ca-certificates, then update-ca-certificates)"
        default: nil
        }
        return advice.map { "\(message) (\($0))" } ?? message
    }
}

extension PromptTemplateError: LocalizedError {
    /// The message, naming the placeholder.
    public var errorDescription: String? { description }
}

extension JudgeInputMissing: LocalizedError {
    /// Which template needs which missing part.
    public var errorDescription: String? { description }
}

extension JudgeReplyParser.Failure: LocalizedError {
    /// Why the judge's reply could not be read.
    public var errorDescription: String? { description }
}
