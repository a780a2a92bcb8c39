import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// The ``HTTPTransport`` XeroML uses by default: AsyncHTTPClient on SwiftNIO, non-streaming
/// requests with a deadline over the whole exchange and a bounded response size.
///
/// ```swift
/// let transport = NIOTransport(timeout: .seconds(30), maxResponseBytes: 4 << 20)
/// let response = try await transport.send(.post(url, json: body)).checked()
/// ```
///
/// - The deadline covers the whole exchange (connecting, sending, waiting, receiving the body): a
///   request still unfinished at ``HTTPRequest/timeout`` (else ``timeout``) is cancelled and fails
///   with ``HTTPError/Code/timeout``, whatever the server does meanwhile (never answers, stalls after
///   its headers, trickles a byte at a time).
/// - A response whose body exceeds ``maxResponseBytes`` fails with ``HTTPError/Code/responseTooLarge``
///   as soon as the limit is passed.
/// - Cancelling the calling task cancels the request at once.
/// - A refused connection fails with ``HTTPError/Code/connectionFailed`` at once, not at the deadline,
///   and so do the requests waiting for a connection to the same host at that moment; retrying is the
///   caller's policy (`RetryPolicy`, `SyncRetryPolicy`).
/// - Redirects are not followed: a 3xx answer is returned as it is, so headers (API keys) never go to
///   a host they were not given for.
/// - Proxies come from the environment as curl reads them (``HTTPProxySettings``), unless given.
/// - Every transport shares one connection pool per process, with up to 1,024 connections per host:
///   XeroML bounds the requests in flight itself (the runner's `maxConcurrency`, the
///   `AdaptiveLimiter`), so the transport never queues below that. Idle connections are kept for
///   60 seconds and reused.
///
/// It replaced ``URLSessionTransport`` as the default because it costs far less CPU per request; the
/// measurements are in `docs/decisions/0005-http-transport-asynchttpclient.md`.
///
/// ## Topics
/// - ``init(timeout:maxResponseBytes:proxies:)``
/// - ``timeout``
/// - ``maxResponseBytes``
/// - ``proxies``
public struct NIOTransport: HTTPTransport {
    /// The deadline of requests that do not set their own.
    public let timeout: Duration
    /// The largest response body accepted, in bytes.
    public let maxResponseBytes: Int
    /// Which proxy each request goes through.
    public let proxies: HTTPProxySettings

    /// A transport over the process's shared connection pool.
    ///
    /// - Parameters:
    ///   - timeout: the deadline of a request that sets none (default 60 s).
    ///   - maxResponseBytes: the largest body accepted (default 8 MiB).
    ///   - proxies: the proxies to use (default: this process's environment, as curl reads it:
    ///     `https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`; see ``HTTPProxySettings``).
    public init(timeout: Duration = .seconds(60), maxResponseBytes: Int = 8 << 20,
                proxies: HTTPProxySettings = .environment()) {
        self.timeout = timeout
        self.maxResponseBytes = max(0, maxResponseBytes)
        self.proxies = proxies
    }

    /// The process's clients, one per proxy (and one direct). They live as long as the process, so
    /// they are never shut down.
    private static let clients = Mutex<[URL?: HTTPClient]>([:])

    static func client(proxy: URL?) throws(HTTPError) -> HTTPClient {
        let setting = try proxy.map { url throws(HTTPError) in try nioProxy(url) }
        return clients.withLock { clients in
            if let client = clients[proxy] { return client }
            let client = makeClient(proxy: setting)
            clients[proxy] = client
            return client
        }
    }

    /// A proxy's address as it may be shown: without its user and password.
    static func shown(proxy url: URL) -> String {
        var shown = URLComponents(url: url, resolvingAgainstBaseURL: false)
        shown?.user = nil
        shown?.password = nil
        return shown?.string ?? "the proxy"
    }

    /// AsyncHTTPClient's setting for a proxy address.
    static func nioProxy(_ url: URL) throws(HTTPError) -> HTTPClient.Configuration.Proxy {
        let display = shown(proxy: url)
        guard let host = url.host, !host.isEmpty else {
            throw HTTPError(.invalidRequest, "the proxy \(display) names no host")
        }
        // URLComponents decodes the user and the password alike (`URL.user` and `URL.password` do not).
        let parts = URLComponents(url: url, resolvingAgainstBaseURL: false)
        switch url.scheme?.lowercased() ?? "http" {
        case "http":
            let authorization = parts?.user.map { HTTPClient.Authorization.basic(username: $0, password: parts?.password ?? "") }
            return .server(host: host, port: url.port ?? 1080, authorization: authorization)
        case "socks5", "socks5h":
            guard parts?.user == nil else {
                throw HTTPError(.invalidRequest, "the proxy \(display) has credentials, which XeroML cannot give a SOCKS proxy")
            }
            return .socksServer(host: host, port: url.port ?? 1080)
        default:
            throw HTTPError(.invalidRequest, "the proxy \(display) is not supported: give an http:// or socks5:// proxy")
        }
    }

    private static func makeClient(proxy: HTTPClient.Configuration.Proxy?) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.proxy = proxy
        configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)
        // A refused connection fails at once, with the requests waiting for a connection to that host
        // (the client fails every queued request when a connection cannot be made): XeroML's own
        // retry policies decide whether and when to try again. The client's default would retry until
        // each request's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Redirects are answered as they are (a 3xx response): following one to another host would
        // carry the request's own headers, an API key among them, where the user did not send it.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(30))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        try request.checkScheme()
        let deadline = request.timeout ?? timeout
        let url = request.url
        let outgoing: HTTPClient.Request
        do {
            var headers = HTTPHeaders()
            for (name, value) in request.headers { headers.add(name: name, value: value) }
            outgoing = try HTTPClient.Request(url: url, method: HTTPMethod(rawValue: request.method), headers: headers,
                                              body: request.body.map { .byteBuffer(ByteBuffer(bytes: $0)) })
        } catch {
            throw HTTPError(.invalidRequest, "cannot send a request to \(url.absoluteString): \(error)")
        }
        let limit = maxResponseBytes
        if let name = proxies.unreadable.first {
            throw HTTPError(.invalidRequest, "the proxy setting \(name) is not an address (http://[user:password@]host:port or socks5://host:port)")
        }
        let proxy = proxies.proxy(for: url)
        let client = try Self.client(proxy: proxy)
        let task = client.execute(
            request: outgoing, delegate: ResponseAccumulator(request: outgoing, maxBodySize: limit),
            eventLoop: .indifferent, deadline: .now() + .nanoseconds(Int64(min(max(deadline.seconds, 0), 1e9) * 1e9)), logger: nil)
        let response: HTTPClient.Response
        do {
            response = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            let translated = Self.translate(error, url: url, deadline: deadline, limit: limit)
            if let proxy, let failure = translated as? HTTPError, failure.code == .connectionFailed,
               !failure.message.contains("the proxy") {
                // Through a proxy, a connection that fails is the proxy's as likely as the endpoint's: name it.
                throw HTTPError(.connectionFailed, "cannot reach \(url.absoluteString) through the proxy \(Self.shown(proxy: proxy)) "
                                + "(check that the proxy is running; no_proxy lists hosts reached directly): \(failure.message)")
            }
            throw translated
        }
        var headers: [String: String] = [:]
        for (name, value) in response.headers {
            let key = name.lowercased()
            headers[key] = headers[key].map { "\($0), \(value)" } ?? value
        }
        let body = response.body.map { Data($0.readableBytesView) } ?? Data()
        return HTTPResponse(statusCode: Int(response.status.code), headers: headers, body: body)
    }

    /// What a TLS failure means, in words, before BoringSSL's own text.
    static func tlsReason(_ error: NIOSSLError) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "its certificate is not trusted by this machine (self-signed, an unknown authority, or expired) [\(text)]"
        }
        return text
    }

    /// Maps an AsyncHTTPClient or NIO failure to an ``HTTPError``.
    static func translate(_ error: any Error, url: URL, deadline: Duration, limit: Int) -> any Error {
        if error is CancellationError { return error }
        if error is ResponseAccumulator.ResponseTooBigError {
            return HTTPError(.responseTooLarge, "the response of \(url.absoluteString) is larger than the limit of \(limit) bytes")
        }
        if let error = error as? HTTPClientError {
            // `shortDescription`: the error's name without the values it carries (a rejected header
            // value may be an API key).
            let name = error.shortDescription
            if [.deadlineExceeded, .readTimeout, .writeTimeout].contains(error) {
                return HTTPError(.timeout, "\(url.absoluteString) did not answer within \(deadline)")
            }
            if error == .cancelled { return CancellationError() }
            if [.invalidURL, .emptyHost, .emptyScheme].contains(error) || name.lowercased().contains("unsupported scheme")
                || "\(error)".contains("unsupportedScheme") {
                return HTTPError(.invalidRequest, "cannot send a request to \(url.absoluteString): \(name)")
            }
            if name.lowercased().contains("header field") {
                return HTTPError(.invalidRequest, "cannot send a request to \(url.absoluteString): a header's name or value holds a "
                                 + "character HTTP does not allow (a line break at the end of an API key read from a file?)")
            }
            if error == .proxyAuthenticationRequired {
                return HTTPError(.invalidRequest, "the proxy for \(url.absoluteString) asks for credentials (HTTP 407): give them in the "
                                 + "proxy's address, http://user:password@host:port")
            }
            if error == .invalidProxyResponse {
                // The proxy refused or could not open the tunnel (its upstream down, a 502 or 503): as
                // a connection failure without a proxy, worth another attempt.
                return HTTPError(.connectionFailed, "the proxy did not open a tunnel to \(url.absoluteString)")
            }
            return HTTPError(.connectionFailed, "request to \(url.absoluteString) failed: \(name)")
        }
        if let error = error as? NIOSSLError {
            switch error {
            case .uncleanShutdown:
                return HTTPError(.connectionFailed, "the TLS connection to \(url.absoluteString) was cut: \(error)")
            default:
                return HTTPError(.tlsFailed, "the TLS handshake with \(url.absoluteString) failed: \(Self.tlsReason(error))")
            }
        }
        if let error = error as? NIOSSLExtraError {
            return HTTPError(.tlsFailed, "the TLS handshake with \(url.absoluteString) failed: \(error)")
        }
        if let error = error as? HTTPParserError {
            if error == .invalidEOFState {
                // The server closed the connection before the response was complete: a dropped
                // connection, worth another attempt, not a server that speaks something else.
                return HTTPError(.connectionFailed, "\(url.absoluteString) closed the connection before its response was complete")
            }
            return HTTPError(.invalidResponse, "\(url.absoluteString) sent a malformed response: \(error)")
        }
        return HTTPError(.connectionFailed, "cannot reach \(url.absoluteString): \(error)")
    }
}
