import Foundation
#if canImport(FoundationNetworking)
public import FoundationNetworking
#endif

/// An ``HTTPTransport`` over `URLSession` (FoundationNetworking on Linux): non-streaming requests
/// with a deadline and a bounded response size.
///
/// ```swift
/// let transport = URLSessionTransport(timeout: .seconds(30), maxResponseBytes: 4 << 20)
/// let response = try await transport.send(.post(url, json: body)).checked()
/// ```
///
/// - The deadline covers the whole exchange (connecting, sending, waiting, receiving), not just the
///   idle time between packets: a request still unanswered at ``HTTPRequest/timeout`` (else
///   ``timeout``) is cancelled and fails with ``HTTPError/Code/timeout``.
/// - A response whose `Content-Length` or received body exceeds ``maxResponseBytes`` fails with
///   ``HTTPError/Code/responseTooLarge``. `URLSession.data(for:)` collects the body before it
///   returns, so the check happens once the body is in; the deadline bounds how much can arrive.
/// - Cancelling the calling task cancels the request.
///
/// ## Topics
/// - ``init(timeout:maxResponseBytes:configuration:)``
/// - ``timeout``
/// - ``maxResponseBytes``
public final class URLSessionTransport: HTTPTransport {
    /// The deadline of requests that do not set their own.
    public let timeout: Duration
    /// The largest response body accepted, in bytes.
    public let maxResponseBytes: Int
    private let session: URLSession

    /// A transport with its own `URLSession`.
    ///
    /// - Parameters:
    ///   - timeout: the deadline of a request that sets none (default 60 s).
    ///   - maxResponseBytes: the largest body accepted (default 8 MiB).
    ///   - configuration: the session configuration (default: ephemeral, no cookies, no cache).
    public init(timeout: Duration = .seconds(60), maxResponseBytes: Int = 8 << 20,
                configuration: URLSessionConfiguration? = nil) {
        self.timeout = timeout
        self.maxResponseBytes = max(0, maxResponseBytes)
        let configuration = configuration ?? {
            let c = URLSessionConfiguration.ephemeral
            c.httpCookieAcceptPolicy = .never
            c.httpShouldSetCookies = false
            c.urlCache = nil
            c.requestCachePolicy = .reloadIgnoringLocalCacheData
            return c
        }()
        session = URLSession(configuration: configuration)
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let deadline = request.timeout ?? timeout
        let session = self.session
        let limit = maxResponseBytes
        let url = request.url
        return try await withThrowingTaskGroup(of: HTTPResponse?.self) { group in
            group.addTask {
                var urlRequest = URLRequest(url: request.url)
                urlRequest.httpMethod = request.method
                urlRequest.httpBody = request.body
                // URLSession's own timeout is an idle timeout; this task group enforces the deadline.
                urlRequest.timeoutInterval = max(1, deadline.seconds)
                for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
                let data: Data, response: URLResponse
                do {
                    (data, response) = try await session.data(for: urlRequest)
                } catch {
                    throw Self.translate(error, url: url, deadline: deadline)
                }
                guard let http = response as? HTTPURLResponse else {
                    throw HTTPError(.invalidResponse, "\(url.absoluteString) did not answer with HTTP")
                }
                if data.count > limit || http.expectedContentLength > Int64(limit) {
                    throw HTTPError(.responseTooLarge,
                                    "the response of \(url.absoluteString) is larger than the limit of \(limit) bytes")
                }
                var headers: [String: String] = [:]
                for (name, value) in http.allHeaderFields {
                    if let name = name as? String, let value = value as? String { headers[name] = value }
                }
                return HTTPResponse(statusCode: http.statusCode, headers: headers, body: data)
            }
            group.addTask {
                try await Task.sleep(for: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            guard let response = first else {
                throw HTTPError(.timeout, "\(url.absoluteString) did not answer within \(deadline)")
            }
            return response
        }
    }

    /// Maps a `URLSession` failure to an ``HTTPError`` (or `CancellationError`).
    static func translate(_ error: any Error, url: URL, deadline: Duration) -> any Error {
        if error is CancellationError { return error }
        guard let urlError = error as? URLError else {
            return HTTPError(.connectionFailed, "request to \(url.absoluteString) failed: \(error)")
        }
        switch urlError.code {
        case .cancelled:
            return CancellationError()
        case .timedOut:
            return HTTPError(.timeout, "\(url.absoluteString) did not answer within \(deadline)")
        case .badURL, .unsupportedURL:
            return HTTPError(.invalidRequest, "cannot send a request to \(url.absoluteString): \(urlError.localizedDescription)")
        case .dataLengthExceedsMaximum:
            return HTTPError(.responseTooLarge, "the response of \(url.absoluteString) is too large")
        case .badServerResponse, .cannotParseResponse, .cannotDecodeRawData, .cannotDecodeContentData:
            return HTTPError(.invalidResponse, "\(url.absoluteString) sent a malformed response")
        default:
            return HTTPError(.connectionFailed,
                             "cannot reach \(url.absoluteString): \(urlError.localizedDescription) (URLError \(urlError.code.rawValue))")
        }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
