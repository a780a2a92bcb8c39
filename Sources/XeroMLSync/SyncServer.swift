public import Foundation
import XeroMLHTTP
import XeroMLSyncAPI

/// A team server to push runs to: its address and the project key.
public struct SyncServer: Sendable, Hashable {
    /// The server's base URL (e.g. `https://xeroml.example.com`), without `/v1`.
    public var url: URL
    /// A project key (`xrml_…`), sent as `Authorization: Bearer`.
    public var apiKey: String

    public init(url: URL, apiKey: String) {
        self.url = url
        self.apiKey = apiKey
    }

    /// The base URL as the local file records it: lower-case scheme and host, no trailing slash, no
    /// query. Two spellings of one server share one sync state.
    public var normalizedURL: String {
        guard var parts = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url.absoluteString }
        parts.scheme = parts.scheme?.lowercased()
        parts.host = parts.host?.lowercased()
        parts.query = nil
        parts.fragment = nil
        parts.user = nil
        parts.password = nil
        while parts.path.hasSuffix("/") { parts.path.removeLast() }
        return parts.string ?? url.absoluteString
    }
}

/// How transient failures (connection refused or reset, timeouts, 429, 5xx) are retried.
public struct SyncRetryPolicy: Sendable, Hashable {
    /// Failed attempts in a row before a push gives up (the run's state stays resumable).
    public var maxAttempts: Int
    /// The first pause; each next one doubles, up to ``maxDelay``.
    public var baseDelay: Duration
    /// The longest pause between attempts, and the longest `Retry-After` honoured.
    public var maxDelay: Duration

    public init(maxAttempts: Int = 10, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The pause before attempt `attempt + 1` (attempt counts from 1), with up to 20% jitter.
    func delay(after attempt: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return min(retryAfter, maxDelay) }
        let exponent = min(attempt - 1, 20)
        let base = baseDelay * (1 << exponent)
        let capped = min(base, maxDelay)
        return capped * Double.random(in: 0.8...1.0)
    }
}

/// Why a push failed.
public struct SyncError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Whether trying again later may succeed (the server was unreachable or busy) or not (the server
    /// refused the request: a bad key, a body too large, a protocol mismatch).
    public var isTransient: Bool
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// What went wrong, in a sentence.
    public var message: String
    /// How long the server asked to wait (`Retry-After` on 429 or 503).
    public var retryAfter: Duration?
    /// For 409 on commit: the chunk indices the server lacks.
    public var missingChunks: [Int]?

    public init(isTransient: Bool, status: Int?, message: String, retryAfter: Duration? = nil, missingChunks: [Int]? = nil) {
        self.isTransient = isTransient
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
        self.missingChunks = missingChunks
    }

    public var description: String { message }
}

/// The protocol's calls a push makes (begin, chunk, commit) over an ``HTTPTransport``, each retried by a ``SyncRetryPolicy``.
struct SyncConnection: Sendable {
    let server: SyncServer
    let transport: any HTTPTransport
    let retry: SyncRetryPolicy
    let timeout: Duration
    /// Called after each failed attempt that will be retried (attempt number, error).
    let onRetry: @Sendable (Int, SyncError) async -> Void

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    func begin(_ manifest: RunManifest) async throws -> RunState {
        try await call("PUT", SyncAPI.runPath(manifest.run.id), body: try Self.encoder.encode(manifest), gzip: false)
    }

    /// Sends a chunk, already encoded and compressed.
    func send(body: Data, runID: String, index: Int) async throws -> ChunkReceipt {
        try await call("PUT", SyncAPI.chunkPath(runID, index: index), body: body, gzip: true)
    }

    /// The project's committed runs, newest first (at most `runListLimit`).
    func committedRuns() async throws -> RunList {
        try await call("GET", SyncAPI.runsPath, body: nil, gzip: false)
    }

    /// The server's state of `runID` in the key's project, in one attempt; nil when it has no such run.
    func state(of runID: String) async throws -> RunState? {
        do {
            return try await once("GET", SyncAPI.runPath(runID), body: nil, gzip: false)
        } catch let error as SyncError where error.status == 404 {
            return nil
        }
    }

    func commit(runID: String, _ request: CommitRequest) async throws -> RunState {
        try await call("POST", SyncAPI.commitPath(runID), body: try Self.encoder.encode(request), gzip: false)
    }

    private func call<T: Decodable>(_ method: String, _ path: String, body: Data?, gzip: Bool) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await once(method, path, body: body, gzip: gzip)
            } catch let error as SyncError where error.isTransient && attempt < retry.maxAttempts {
                await onRetry(attempt, error)
                try await Task.sleep(for: retry.delay(after: attempt, retryAfter: error.retryAfter))
            }
        }
    }

    private func once<T: Decodable>(_ method: String, _ path: String, body: Data?, gzip: Bool) async throws -> T {
        guard let url = URL(string: server.normalizedURL + path) else {
            throw SyncError(isTransient: false, status: nil, message: "\(server.url) is not a server address")
        }
        var headers = ["Authorization": "Bearer \(server.apiKey)", "Accept": "application/json"]
        if body != nil { headers["Content-Type"] = "application/json" }
        if gzip { headers["Content-Encoding"] = "gzip" }
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(method: method, url: url, headers: headers, body: body, timeout: timeout))
        } catch let error as HTTPError {
            // The transport's message names the URL already.
            throw SyncError(isTransient: error.isRetryable, status: error.statusCode, message: "\(method): \(error.message)")
        }
        if response.isSuccess {
            do {
                return try JSONDecoder().decode(T.self, from: response.body)
            } catch {
                throw SyncError(isTransient: false, status: response.statusCode,
                                message: "\(server.normalizedURL)\(path) answered \(response.statusCode) with a body that is not a \(T.self): \(response.text.prefix(200))")
            }
        }
        let detail = (try? JSONDecoder().decode(APIErrorBody.self, from: response.body))?.error
        var message = "\(server.normalizedURL) answered \(response.statusCode) to \(method) \(path)"
        if let detail {
            message += ": \(detail.message)"
            if let field = detail.field { message += " (field \(field))" }
        } else if !response.body.isEmpty {
            message += ": \(response.text.prefix(200))"
        }
        let status = response.statusCode
        let transient = status == 429 || status == 408 || status >= 500
        if status == 401 { message += ". Check the key: it may be wrong or revoked" }
        throw SyncError(isTransient: transient, status: status, message: message,
                        retryAfter: transient ? response.retryAfter : nil, missingChunks: detail?.missingChunks)
    }
}
