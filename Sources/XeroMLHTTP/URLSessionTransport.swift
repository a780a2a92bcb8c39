import Foundation
import Synchronization
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
/// - ``init(timeout:maxResponseBytes:maxConnectionsPerHost:configuration:)``
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
    ///   - maxConnectionsPerHost: how many connections to one host may be open at once (default
    ///     1024). URLSession's own default is 6, which would hold a run with a higher concurrency to
    ///     6 requests in flight and count the queueing against the deadline; XeroML bounds requests
    ///     in flight itself (the runner's `maxConcurrency`), so the transport does not queue.
    ///   - configuration: the session configuration (default: ephemeral, no cookies, no cache, and
    ///     `maxConnectionsPerHost`). A configuration given here is used as it is.
    public init(timeout: Duration = .seconds(60), maxResponseBytes: Int = 8 << 20, maxConnectionsPerHost: Int = 1024,
                configuration: URLSessionConfiguration? = nil) {
        self.timeout = timeout
        self.maxResponseBytes = max(0, maxResponseBytes)
        let configuration = configuration ?? {
            let c = URLSessionConfiguration.ephemeral
            c.httpCookieAcceptPolicy = .never
            c.httpShouldSetCookies = false
            c.urlCache = nil
            c.requestCachePolicy = .reloadIgnoringLocalCacheData
            c.httpMaximumConnectionsPerHost = max(1, maxConnectionsPerHost)
            return c
        }()
        session = URLSession(configuration: configuration)
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        try request.checkScheme()
        let deadline = request.timeout ?? timeout
        var urlRequest = URLRequest(url: request.url)
        urlRequest.httpMethod = request.method
        urlRequest.httpBody = request.body
        // URLSession's own timeout is an idle timeout (a server trickling a byte at a time never
        // trips it); the exchange below enforces the deadline on its own timer.
        urlRequest.timeoutInterval = max(1, deadline.seconds)
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }

        let exchange = Exchange(url: request.url, deadline: deadline, limit: maxResponseBytes)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Creating and resuming a URLSession task waits on FoundationNetworking's own serial
                // queue, which many requests in flight keep busy for seconds: from here it would block
                // a thread of Swift's cooperative pool (one per core) and stall every other task of
                // the process. The exchange starts on a dispatch queue instead.
                let (session, urlRequest) = (self.session, urlRequest)
                Self.callbacks.async { exchange.start(continuation: continuation, session: session, request: urlRequest) }
            }
        } onCancel: {
            // The cancellation handler runs with the task's status lock held; stopping a URLSession
            // task from here can deadlock inside FoundationNetworking on Linux, so the exchange is
            // ended from another thread.
            Self.callbacks.async { exchange.finish(.failure(CancellationError())) }
        }
    }

    /// Where exchanges start, deadlines fire and cancelled exchanges are ended: never on a thread that
    /// holds a Swift task's lock, never on the cooperative pool.
    static let callbacks = DispatchQueue(label: "xeroml.http.callbacks", attributes: .concurrent)

    /// One request in flight: its continuation is resumed exactly once, by whichever comes first of
    /// the response, the deadline and the caller's cancellation. The `URLSessionTask` is cancelled
    /// after the continuation is resumed, from a dispatch queue, so a transfer that never ends (a
    /// server that stops answering mid-body) cannot hold the caller.
    ///
    /// `@unchecked Sendable`: its mutable state lives in a `Mutex`.
    final class Exchange: @unchecked Sendable {
        private struct State {
            var continuation: CheckedContinuation<HTTPResponse, any Error>?
            var task: URLSessionDataTask?
            var outcome: Result<HTTPResponse, any Error>?
        }
        private let state = Mutex(State())
        let url: URL
        let deadline: Duration
        let limit: Int

        init(url: URL, deadline: Duration, limit: Int) {
            self.url = url
            self.deadline = deadline
            self.limit = limit
        }

        func start(continuation: CheckedContinuation<HTTPResponse, any Error>, session: URLSession, request: URLRequest) {
            let task = session.dataTask(with: request) { [self] data, response, error in
                finish(outcome(data: data, response: response, error: error))
            }
            let earlyOutcome: Result<HTTPResponse, any Error>? = state.withLock { s in
                if let outcome = s.outcome { return outcome }  // cancelled before it started
                s.continuation = continuation
                s.task = task
                return nil
            }
            if let earlyOutcome {
                continuation.resume(with: earlyOutcome)
                return
            }
            let deadline = self.deadline
            let url = self.url
            // Weak: an exchange that ended early is freed at once, not at its deadline.
            URLSessionTransport.callbacks.asyncAfter(deadline: .now() + deadline.seconds) { [weak self] in
                self?.finish(.failure(HTTPError(.timeout, "\(url.absoluteString) did not answer within \(deadline)")))
            }
            task.resume()
        }

        /// Ends the exchange with `outcome` unless it has ended already.
        func finish(_ outcome: Result<HTTPResponse, any Error>) {
            let (continuation, task) = state.withLock { s in
                guard s.outcome == nil else {
                    return (CheckedContinuation<HTTPResponse, any Error>?.none, URLSessionDataTask?.none)
                }
                s.outcome = outcome
                defer { s.continuation = nil; s.task = nil }
                return (s.continuation, s.task)
            }
            guard let continuation else { return }
            continuation.resume(with: outcome)
            if case .failure = outcome, let task {
                URLSessionTransport.callbacks.async { task.cancel() }
            }
        }

        private func outcome(data: Data?, response: URLResponse?, error: (any Error)?) -> Result<HTTPResponse, any Error> {
            if let error { return .failure(URLSessionTransport.translate(error, url: url, deadline: deadline)) }
            guard let http = response as? HTTPURLResponse else {
                return .failure(HTTPError(.invalidResponse, "\(url.absoluteString) did not answer with HTTP"))
            }
            let data = data ?? Data()
            if data.count > limit || http.expectedContentLength > Int64(limit) {
                return .failure(HTTPError(.responseTooLarge,
                                          "the response of \(url.absoluteString) is larger than the limit of \(limit) bytes"))
            }
            var headers: [String: String] = [:]
            for (name, value) in http.allHeaderFields {
                if let name = name as? String, let value = value as? String { headers[name] = value }
            }
            return .success(HTTPResponse(statusCode: http.statusCode, headers: headers, body: data))
        }
    }

    /// Maps a `URLSession` failure to an ``HTTPError`` (or `CancellationError`).
    static func translate(_ error: any Error, url: URL, deadline: Duration) -> any Error {
        if error is CancellationError { return error }
        guard let urlError = error as? URLError else {
            return HTTPError(.connectionFailed, "request to \(url.absoluteString) failed: \(error)")
        }
        // FoundationNetworking reports libcurl's certificate failures as URLError -1 (unknown), with
        // curl's own words.
        let text = urlError.localizedDescription
        if urlError.code == .unknown, text.contains("SSL certificate problem") || text.contains("SSL: no alternative certificate")
            || text.contains("SSL: certificate subject name") {
            return HTTPError(.tlsFailed, "the TLS handshake with \(url.absoluteString) failed: \(text)")
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
        case .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
             .serverCertificateHasUnknownRoot, .secureConnectionFailed, .clientCertificateRejected, .clientCertificateRequired:
            return HTTPError(.tlsFailed, "the TLS handshake with \(url.absoluteString) failed: \(urlError.localizedDescription) (URLError \(urlError.code.rawValue))")
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
