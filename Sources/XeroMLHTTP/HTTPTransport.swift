public import Foundation

/// Sends one HTTP request and returns the whole response.
///
/// XeroML talks to model endpoints through this protocol, so tests and embedders can swap the
/// network for something else. ``NIOTransport`` is the implementation XeroML uses by default;
/// ``URLSessionTransport`` is the other one this module offers.
///
/// A transport returns a response for **every** status code; it throws only when no response
/// arrived (a timeout, a refused or dropped connection) or the response broke a limit. Turn an
/// unsuccessful status into an error with ``HTTPResponse/checked()``.
///
/// ## Topics
/// - ``send(_:)``
/// - ``HTTPRequest``
/// - ``HTTPResponse``
/// - ``HTTPError``
public protocol HTTPTransport: Sendable {
    /// Sends `request` and waits for the complete response.
    ///
    /// - Throws: ``HTTPError`` (``HTTPError/Code/timeout``, ``HTTPError/Code/connectionFailed``,
    ///   ``HTTPError/Code/responseTooLarge``, ``HTTPError/Code/invalidRequest``), or
    ///   `CancellationError` when the calling task is cancelled.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// An HTTP request: method, address, headers, body and a deadline.
///
/// ## Topics
/// - ``init(method:url:headers:body:timeout:)``
/// - ``post(_:json:headers:timeout:)``
public struct HTTPRequest: Sendable, Hashable {
    /// The method, such as `GET` or `POST`.
    public var method: String
    /// The full address.
    public var url: URL
    /// Header fields. Names are matched case-insensitively by servers; give each once.
    public var headers: [String: String]
    /// The body, or `nil` for none.
    public var body: Data?
    /// The longest the whole exchange may take; `nil` uses the transport's default.
    public var timeout: Duration?

    /// A request.
    public init(method: String = "GET", url: URL, headers: [String: String] = [:], body: Data? = nil,
                timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// A `POST` of a JSON body, with `Content-Type: application/json`.
    public static func post(_ url: URL, json body: Data, headers: [String: String] = [:],
                            timeout: Duration? = nil) -> HTTPRequest {
        var all = headers
        all["Content-Type"] = "application/json"
        return HTTPRequest(method: "POST", url: url, headers: all, body: body, timeout: timeout)
    }
}

extension HTTPRequest {
    /// Throws ``HTTPError/Code/invalidRequest`` unless the address is `http://` or `https://`: the
    /// only schemes XeroML's transports send to.
    func checkScheme() throws(HTTPError) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw HTTPError(.invalidRequest, "cannot send a request to \(url.absoluteString): only http:// and https:// addresses are supported")
        }
    }
}

/// A complete HTTP response.
///
/// ## Topics
/// - ``statusCode``
/// - ``headers``
/// - ``body``
/// - ``header(_:)``
/// - ``retryAfter``
/// - ``checked()``
public struct HTTPResponse: Sendable, Hashable {
    /// The status code, such as 200 or 429.
    public var statusCode: Int
    /// The header fields, with **lowercased** names.
    public var headers: [String: String]
    /// The body.
    public var body: Data

    /// A response. Header names are lowercased.
    public init(statusCode: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.statusCode = statusCode
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        self.body = body
    }

    /// The value of the header `name` (any case), or `nil`.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(statusCode) }

    /// The wait asked for by a `Retry-After` header (delay-seconds or an HTTP date), or `nil`.
    public var retryAfter: Duration? { header("Retry-After").flatMap { RetryAfter.parse($0) } }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// This response when its status is 2xx.
    /// - Throws: ``HTTPError`` with code ``HTTPError/Code/status``, carrying the status code, the
    ///   `Retry-After` wait and the start of the body.
    public func checked() throws(HTTPError) -> HTTPResponse {
        guard isSuccess else { throw HTTPError(response: self) }
        return self
    }
}

/// Parsing of the `Retry-After` header (RFC 9110, section 10.2.3).
public enum RetryAfter {
    /// The wait asked for by a `Retry-After` value: either delay-seconds (`"120"`) or an HTTP date
    /// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, measured from `now`). A date in the past is a zero wait.
    /// Returns `nil` for anything else.
    public static func parse(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
            // Enormous values saturate instead of overflowing.
            return .seconds(Int64(text) ?? Int64.max / 1_000_000_000_000)
        }
        if let seconds = Double(text), seconds.isFinite, seconds >= 0 {
            return .milliseconds(Int64((seconds * 1000).rounded(.up)))
        }
        guard let date = httpDate(text) else { return nil }
        let wait = date.timeIntervalSince(now)
        return wait > 0 ? .milliseconds(Int64((wait * 1000).rounded(.up))) : .zero
    }

    /// The three date formats HTTP allows: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
    static func httpDate(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
