import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import XeroMLServer
import XeroMLSyncAPI

/// The team server: receives runs pushed by `xeroml sync push` into PostgreSQL (the `/v1` sync API)
/// and leaves room for the dashboard's pages next to it.
///
/// ```swift
/// let database = try TeamDatabase(url: "postgres://xeroml@127.0.0.1/xeroml")
/// let server = TeamServer(database: database)
/// let router = Router()
/// server.addAPIRoutes(to: router)   // /v1/…; other routes (pages) can be added to the same router
/// ```
///
/// Server state lives only in PostgreSQL, so several servers can serve one database behind a load
/// balancer. Every `/v1` answer is JSON; every error is an `APIErrorBody`: 400 (malformed or
/// schema-violating body, naming the field), 401 (unknown or revoked key), 404 (no such run in the
/// key's project, or an unknown API version: code `unsupported_version`), 409 (commit with chunks
/// missing), 413 (body over the limits), 503 (PostgreSQL unreachable), 500 (anything else; details in
/// the log).
///
/// ## Topics
/// - ``init(database:publicURL:requestTimeout:logger:)``
/// - ``addAPIRoutes(to:)``
/// - ``router(dashboard:)``
/// - ``application(host:port:onRunning:)``
/// - ``apiVersion``
public struct TeamServer: Sendable {
    /// The sync protocol version this server speaks.
    public static var apiVersion: String { SyncAPI.version }
    /// The routes ``addAPIRoutes(to:)`` serves, as `METHOD /path/{parameter}` (the form of
    /// `docs/sync-openapi.json`, which a test checks against this list and the live server).
    public static let apiRoutes = [
        "GET /v1/project", "GET /v1/runs", "GET /v1/runs/{runID}", "PUT /v1/runs/{runID}",
        "PUT /v1/runs/{runID}/chunks/{index}", "POST /v1/runs/{runID}/commit",
    ]
    /// The most runs `GET /v1/runs` lists (newest first).
    public static let runListLimit = 10_000

    /// Where runs are stored.
    public let database: TeamDatabase
    /// The server's address as users reach it (`https://evals.example.com`), for run URLs; nil uses
    /// each request's `Host` header over http.
    public let publicURL: String?
    /// How long a request may wait for PostgreSQL before it answers 503.
    public let requestTimeout: Duration
    /// Where failures of requests are logged.
    public let logger: Logger

    /// A server over `database` (its pool must be running); errors of 5xx answers go to `logger`.
    public init(database: TeamDatabase, publicURL: String? = nil, requestTimeout: Duration = .seconds(15), logger: Logger? = nil) {
        self.database = database
        self.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.requestTimeout = requestTimeout
        self.logger = logger ?? Logger(label: "xeroml.server", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// A router with the `/v1` API, and with `dashboard` the dashboard's pages behind its sign-in.
    public func router(dashboard: Bool = true) -> Router<BasicRequestContext> {
        let router = Router()
        guard dashboard else {
            addAPIRoutes(to: router)
            return router
        }
        let pages = TeamDashboard(client: database.client, secureCookie: publicURL?.hasPrefix("https://") == true, logger: logger)
        addAPIRoutes(to: router, warming: pages.cache)
        pages.mount(on: router)
        return router
    }

    /// An application serving ``router(dashboard:)`` on `host`:`port` (0 picks a free port); `onRunning` receives
    /// the bound port once the server listens.
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        DashboardServer.application(router: router(), host: host, port: port, logger: logger, onRunning: onRunning)
    }

    /// Adds the `/v1` routes to `router`, and a middleware that answers requests to other API
    /// versions (`/v2/…`) with 404 `unsupported_version` and unknown `/v1` paths with a JSON 404. Paths
    /// outside `/v<number>` are left to the router's other routes.
    public func addAPIRoutes<Context: RequestContext>(to router: Router<Context>) {
        addAPIRoutes(to: router, warming: nil)
    }

    /// ``addAPIRoutes(to:)``; with `cache`, each commit that makes a run visible also computes the
    /// run page's figures into `cache`, in the background (``warm(_:project:runID:)``).
    func addAPIRoutes<Context: RequestContext>(to router: Router<Context>, warming cache: PostgresDashboardCache?) {
        router.add(middleware: SyncAPIMiddleware<Context>())
        let store = SyncStore(database: database)
        let server = self

        router.get("/v1/project") { request, _ in
            try await server.answer(request) { project in
                ProjectInfo(id: project.id.uuidString.lowercased(), name: project.name)
            }
        }
        router.get("/v1/runs") { request, _ in
            try await server.answer(request) { project in
                RunList(runs: try await store.committedRuns(project: project.id, limit: Self.runListLimit))
            }
        }
        router.get("/v1/runs/:runID") { request, context in
            let runID = context.parameters.get("runID") ?? ""
            return try await server.answer(request) { project in
                try Validation.runID(runID)
                guard let state = try await store.state(project: project.id, runID: runID, baseURL: server.baseURL(request)) else {
                    throw APIError.notFound("no run \(runID) in this project")
                }
                return state
            }
        }
        router.put("/v1/runs/:runID") { request, context in
            let runID = context.parameters.get("runID") ?? ""
            return try await server.answer(request, body: RunManifest.self) { project, manifest in
                try Validation.runID(runID)
                try Validation.manifest(manifest, runID: runID)
                return try await store.begin(project: project.id, manifest: manifest, baseURL: server.baseURL(request))
            }
        }
        router.put("/v1/runs/:runID/chunks/:index") { request, context in
            let runID = context.parameters.get("runID") ?? ""
            let index = context.parameters.get("index") ?? ""
            return try await server.answer(request, body: SyncChunk.self, inflatedLimit: SyncAPI.maxInflatedChunkBytes) { project, chunk in
                try Validation.runID(runID)
                let index = try Validation.chunkIndex(index)
                try Validation.chunk(chunk, runID: runID, index: index)
                return try await store.ingest(project: project.id, chunk: chunk)
            }
        }
        router.post("/v1/runs/:runID/commit") { request, context in
            let runID = context.parameters.get("runID") ?? ""
            return try await server.answer(request, body: CommitRequest.self) { project, commit in
                try Validation.runID(runID)
                try Validation.commit(commit)
                let state = try await store.commit(project: project.id, runID: runID, request: commit, baseURL: server.baseURL(request))
                if state.committed, let cache { server.warm(cache, project: project.id, runID: runID) }
                return state
            }
        }
    }

    /// Computes the page figures of the committed run `runID` (its statistics, histograms and score
    /// means) into `cache` in the background, unless they are there already. The first visit of a
    /// run's page, often right after `xeroml sync push` prints its address, then reads them from
    /// memory: 7 ms instead of 0.7 s for 100,000 items (measured, release build).
    func warm(_ cache: PostgresDashboardCache, project: UUID, runID: String) {
        let store = PostgresDashboardStore(client: database.client, projectID: project, cache: cache, logger: logger)
        let logger = self.logger
        Task(priority: .background) {
            do {
                _ = try await store.run(id: runID)
            } catch {
                logger.debug("the figures of run \(runID) were not computed ahead: \(error)")
            }
        }
    }

    // MARK: - Answering

    /// Authenticates `request`, runs `body` within the request timeout, and answers its value as JSON
    /// (or the error as an `APIErrorBody`).
    func answer<Value: Encodable & Sendable>(_ request: Request, _ body: @escaping @Sendable (AuthenticatedProject) async throws -> Value)
        async throws -> Response {
        await respond {
            let project = try await authenticate(request)
            return try await database.withDeadline(requestTimeout) { try await body(project) }
        }
    }

    /// As ``answer(_:_:)``, decoding the request's JSON body (gzip or plain) as `Body` first.
    func answer<Body: Decodable & Sendable, Value: Encodable & Sendable>(
        _ request: Request, body type: Body.Type, inflatedLimit: Int = SyncAPI.maxBodyBytes,
        _ body: @escaping @Sendable (AuthenticatedProject, Body) async throws -> Value
    ) async throws -> Response {
        var request = request
        return await respond {
            let project = try await authenticate(request)
            let value = try await Self.decode(type, from: &request, inflatedLimit: inflatedLimit)
            return try await database.withDeadline(requestTimeout) { try await body(project, value) }
        }
    }

    private func respond<Value: Encodable>(_ body: () async throws -> Value) async -> Response {
        do {
            return Self.json(try await body(), status: .ok)
        } catch {
            let answer = APIError.from(error)
            if answer.status >= 500 {
                logger.error("sync request failed", metadata: ["error": "\(TeamServerError.describe(error))"])
            }
            return Self.json(answer.body, status: HTTPResponse.Status(code: answer.status))
        }
    }

    private func authenticate(_ request: Request) async throws -> AuthenticatedProject {
        guard let key = APIKey(authorization: request.headers[.authorization]) else { throw APIError.unauthorized }
        let store = SyncStore(database: database)
        guard let project = try await database.withDeadline(requestTimeout, { try await store.authenticate(key) }) else {
            throw APIError.unauthorized
        }
        return project
    }

    /// The body as `Type`: at most ``SyncAPI/maxBodyBytes`` on the wire and `inflatedLimit` once
    /// inflated (413 above), gzip when `Content-Encoding: gzip`.
    static func decode<Body: Decodable>(_ type: Body.Type, from request: inout Request, inflatedLimit: Int) async throws -> Body {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > SyncAPI.maxBodyBytes {
            throw APIError.tooLarge("the body has \(length) bytes; the limit is \(SyncAPI.maxBodyBytes) (SyncAPI.maxBodyBytes)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: SyncAPI.maxBodyBytes)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.tooLarge("the body is larger than \(SyncAPI.maxBodyBytes) bytes (SyncAPI.maxBodyBytes)")
        }
        var data = Data(buffer.readableBytesView)
        switch request.headers[.contentEncoding]?.lowercased().trimmingCharacters(in: .whitespaces) {
        case nil, "", "identity":
            if data.count > inflatedLimit {
                throw APIError.tooLarge("the body has \(data.count) bytes; the limit is \(inflatedLimit)")
            }
        case "gzip":
            do {
                data = try Gzip.decompress(data, limit: inflatedLimit)
            } catch Gzip.Failure.tooLarge(let limit) {
                throw APIError.tooLarge("the body inflates to more than \(limit) bytes (SyncAPI.maxInflatedChunkBytes)")
            } catch {
                throw APIError.invalid("the body is not valid gzip: \(error)", field: "Content-Encoding")
            }
        case let other?:
            throw APIError.invalid("Content-Encoding \(other) is not supported; send gzip or plain JSON", field: "Content-Encoding")
        }
        guard !data.isEmpty else { throw APIError.invalid("the request needs a JSON body") }
        // Chunks are most of what the server reads: the fast reader takes them, and JSONDecoder whatever
        // it is not sure of (which JSONDecoder then reads, or refuses naming the field).
        if Body.self == SyncChunk.self, let chunk = SyncChunk(fastJSON: data) as? Body { return chunk }
        return try JSONDecoder().decode(type, from: data)
    }

    /// Where runs are shown: ``publicURL``, else `http://` and the request's host.
    func baseURL(_ request: Request) -> String {
        if let publicURL { return publicURL }
        let host = request.head.authority ?? "127.0.0.1"
        let scheme = request.headers[HTTPField.Name("X-Forwarded-Proto")!] == "https" ? "https" : "http"
        return "\(scheme)://\(host)"
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"status":500,"code":"internal","message":"cannot encode the answer"}}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Answers requests to API versions other than v1 (`/v2/…`) with 404 `unsupported_version`, and
/// unknown `/v1` paths with a JSON 404; other paths pass through untouched.
struct SyncAPIMiddleware<Context: RequestContext>: RouterMiddleware {
    @concurrent
    func handle(_ request: Request, context: Context,
                next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard let version = Self.version(of: path) else { return try await next(request, context) }
        guard version == SyncAPI.version else {
            let error = APIError(status: 404, code: "unsupported_version",
                                 message: "this server speaks sync API \(SyncAPI.version) only (paths under /\(SyncAPI.version)/), not \(version)")
            return TeamServer.json(error.body, status: .notFound)
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound || error.status == .methodNotAllowed {
            let allowed = Self.methods(servedAt: path)
            guard allowed.isEmpty else {
                let answer = APIError(status: 405, code: "method_not_allowed",
                                      message: "\(request.method) is not served at \(path); \(allowed.joined(separator: ", ")) are")
                var response = TeamServer.json(answer.body, status: .methodNotAllowed)
                response.headers[.allow] = allowed.joined(separator: ", ")
                return response
            }
            return TeamServer.json(APIError.notFound("no sync API route \(request.method) \(path)").body, status: .notFound)
        }
    }

    /// The methods of ``TeamServer/apiRoutes`` whose path template matches `path`.
    static func methods(servedAt path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return TeamServer.apiRoutes.compactMap { route in
            let parts = route.split(separator: " ")
            let template = parts[1].split(separator: "/", omittingEmptySubsequences: true)
            guard template.count == segments.count,
                  zip(template, segments).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) else { return nil }
            return String(parts[0])
        }
    }

    /// `v1` of `/v1/…`, nil for paths that do not start with `/v<number>`.
    static func version(of path: String) -> String? {
        let first = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true).first.map(String.init) ?? ""
        guard first.count >= 2, first.first == "v" || first.first == "V", first.dropFirst().allSatisfy(\.isNumber) else { return nil }
        return first
    }
}
