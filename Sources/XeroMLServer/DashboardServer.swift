import Foundation
public import Hummingbird
public import Logging
public import XeroMLDashboard

/// The dashboard over HTTP: pages, a JSON API under `/api/` and two static assets, all read through a
/// ``DashboardStore``.
///
/// ```swift
/// let xeroml = try await XeroML.open(path: "evals.sqlite")
/// let app = DashboardServer(store: SQLiteDashboardStore(xeroml: xeroml), storeName: "evals.sqlite")
///     .application(host: "127.0.0.1", port: 7474)
/// try await app.runService()
/// ```
///
/// Every response carries a Content-Security-Policy that allows nothing from other origins and no
/// inline script. An unknown dataset, run, item or trace is a 404 page (a JSON error under `/api/`); a
/// malformed id or query parameter is a 400 naming the parameter; any other failure is a 500 whose
/// body says only that the store could not be read (details go to the log).
///
/// ## Topics
/// - ``init(store:storeName:logger:)``
/// - ``init(context:loginPath:logger:scope:)``
/// - ``router()``
/// - ``mount(on:with:)``
/// - ``application(host:port:onRunning:)``
/// - ``contentSecurityPolicy``
public struct DashboardServer: Sendable {
    /// What one request reads: a store, and the context its pages show (the header's name).
    public struct Scope: Sendable {
        public var store: any DashboardStore
        public var context: Pages.Context
        public init(store: any DashboardStore, context: Pages.Context) { (self.store, self.context) = (store, context) }
    }

    /// The scope of a request; `nil` when the request may not read anything (no valid session): pages
    /// then redirect to ``loginPath`` and the JSON API answers 401.
    public typealias ScopeProvider = @Sendable (Request) async throws -> Scope?

    /// The scope of each request.
    public let scope: ScopeProvider
    /// The context of pages that have no scope (errors before one is known).
    public let context: Pages.Context
    public let logger: Logger
    /// Where a page request without a scope is redirected.
    public let loginPath: String

    /// The policy sent with every response.
    public static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// Serves `store`; `storeName` is shown in every page's header.
    public init(store: any DashboardStore, storeName: String, logger: Logger? = nil) {
        let context = Pages.Context(storeName: storeName)
        let scope = Scope(store: store, context: context)
        self.init(context: context, logger: logger) { _ in scope }
    }

    /// Serves the store `scope` gives each request (a server that keeps several projects, behind a login).
    public init(context: Pages.Context, loginPath: String = "/login", logger: Logger? = nil, scope: @escaping ScopeProvider) {
        self.scope = scope
        self.context = context
        self.loginPath = loginPath
        self.logger = logger ?? Logger(label: "xeroml.ui", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    /// The routes, with the error and security-header middleware (which also answers unknown paths).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: DashboardMiddleware(context: context, loginPath: loginPath, logger: logger))
        addRoutes(to: router)
        return router
    }

    /// Adds the pages, the JSON API and the assets to `router` inside a group of their own, with the
    /// error and security-header middleware on that group only (so other routes of `router`, such as
    /// an API of another kind, keep their own error answers).
    /// `routes` adds more routes to the same group (a login page, say), so they get the same headers
    /// and error pages.
    public func mount(on router: Router<BasicRequestContext>, with routes: (RouterGroup<BasicRequestContext>) -> Void = { _ in }) {
        let group = router.group().add(middleware: DashboardMiddleware(context: context, loginPath: loginPath, logger: logger))
        routes(group)
        addRoutes(to: group)
    }

    /// An HTML response of `page` (no caching).
    public static func htmlResponse(_ page: HTML, status: HTTPResponse.Status = .ok) -> Response { html(page, status: status) }

    func addRoutes(to router: some RouterMethods<BasicRequestContext>) {
        let provider = self.scope
        @Sendable func scope(_ request: Request) async throws -> Scope {
            guard let scope = try await provider(request) else { throw Unauthenticated() }
            return scope
        }

        // Pages.
        router.get("/") { request, _ in
            let scope = try await scope(request)
            return try await html(Pages.home(scope.store.home(), context: scope.context))
        }
        router.get("/datasets/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            let query = QueryParameters(queryString: request.uri.query)
            let itemsQuery = DatasetItemsQuery(version: query["version"] == nil ? nil : try query.int("version", default: 0, range: 0...Int(Int32.max)),
                                               search: query["q"], page: try query.int("page", default: 1, range: 1...1_000_000))
            guard let data = try await scope.store.dataset(id: id, query: itemsQuery) else { throw NotFound("dataset \(id)") }
            return html(Pages.dataset(data, query: query, context: scope.context))
        }
        router.get("/runs/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            let query = QueryParameters(queryString: request.uri.query)
            let itemsQuery = try query.itemsQuery()
            async let detail = scope.store.run(id: id)
            async let items = scope.store.items(runID: id, query: itemsQuery)
            guard let detail = try await detail, let items = try await items else { throw NotFound("run \(id)") }
            return html(Pages.run(detail, items: items, query: query, context: scope.context))
        }
        router.get("/items/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            guard let detail = try await scope.store.item(id: id) else { throw NotFound("run item \(id)") }
            return html(Pages.trace(detail, context: scope.context))
        }
        router.get("/traces/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            guard let detail = try await scope.store.trace(id: id) else { throw NotFound("trace \(id)") }
            return html(Pages.trace(detail, context: scope.context))
        }
        router.get("/compare") { request, _ in
            let scope = try await scope(request)
            let query = QueryParameters(queryString: request.uri.query)
            let (runs, baseline) = try query.compareRuns()
            let compareQuery = try query.compareQuery()
            guard let page = try await scope.store.comparison(runIDs: runs, baseline: baseline, query: compareQuery) else {
                throw NotFound("one of the runs")
            }
            return html(Pages.compare(page, query: query, context: scope.context))
        }

        // Static assets.
        router.get("/assets/dashboard.css") { _, _ in asset(Assets.stylesheet, type: "text/css; charset=utf-8") }
        router.get("/assets/dashboard.js") { _, _ in asset(Assets.script, type: "text/javascript; charset=utf-8") }

        // JSON API.
        router.get("/api/datasets") { request, _ in try await json(scope(request).store.home().datasets) }
        router.get("/api/datasets/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            let query = QueryParameters(queryString: request.uri.query)
            let itemsQuery = DatasetItemsQuery(version: query["version"] == nil ? nil : try query.int("version", default: 0, range: 0...Int(Int32.max)),
                                               search: query["q"], page: try query.int("page", default: 1, range: 1...1_000_000),
                                               pageSize: try query.int("limit", default: 50, range: 1...500))
            guard let data = try await scope.store.dataset(id: id, query: itemsQuery) else { throw NotFound("dataset \(id)") }
            return try json(data)
        }
        router.get("/api/runs") { request, _ in try await json(scope(request).store.home().runs) }
        router.get("/api/runs/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            guard let detail = try await scope.store.run(id: id) else { throw NotFound("run \(id)") }
            return try json(detail)
        }
        router.get("/api/runs/:id/items") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            let query = try QueryParameters(queryString: request.uri.query).itemsQuery()
            guard let page = try await scope.store.items(runID: id, query: query) else { throw NotFound("run \(id)") }
            return try json(page)
        }
        router.get("/api/runs/:id/progress") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            guard let progress = try await scope.store.progress(runID: id) else { throw NotFound("run \(id)") }
            return try json(progress)
        }
        router.get("/api/items/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            guard let detail = try await scope.store.item(id: id) else { throw NotFound("run item \(id)") }
            return try json(detail)
        }
        router.get("/api/traces/:id") { request, requestContext in
            let scope = try await scope(request)
            let id = try pathID(requestContext)
            guard let detail = try await scope.store.trace(id: id) else { throw NotFound("trace \(id)") }
            return try json(detail)
        }
        router.get("/api/compare") { request, _ in
            let scope = try await scope(request)
            let query = QueryParameters(queryString: request.uri.query)
            let (runs, baseline) = try query.compareRuns()
            guard let page = try await scope.store.comparison(runIDs: runs, baseline: baseline, query: try query.compareQuery()) else {
                throw NotFound("one of the runs")
            }
            return try json(page)
        }
    }

    /// An application serving the dashboard on `host`:`port` (port 0 picks a free port);
    /// `onRunning` receives the port once the server listens.
    public func application(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        Self.application(router: router(), host: host, port: port, logger: logger, onRunning: onRunning)
    }

    /// An application serving `router` on `host`:`port` (port 0 picks a free port), without a server
    /// name header; `onRunning` receives the bound port once the server listens. The dashboard and the
    /// team server both serve through it.
    public static func application(
        router: Router<BasicRequestContext>, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void
    ) -> some ApplicationProtocol {
        Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Whether `host` names this machine only (so only its own users can connect).
    public static func isLoopback(_ host: String) -> Bool {
        let lowered = host.lowercased()
        if lowered == "localhost" || lowered == "::1" || lowered == "[::1]" { return true }
        let parts = lowered.split(separator: ".")
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}

/// A request without a scope (no valid session): a redirect to the login page, 401 under `/api/`.
struct Unauthenticated: Error {}

/// An unknown dataset, run, item or trace: a 404.
struct NotFound: Error {
    var what: String
    init(_ what: String) { self.what = what }
}

func pathID(_ context: BasicRequestContext) throws -> String {
    try QueryParameters.checkID(context.parameters.get("id") ?? "", parameter: "id")
}

func html(_ page: HTML, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
             body: ResponseBody(byteBuffer: ByteBuffer(string: page.rendered)))
}

func asset(_ text: String, type: String) -> Response {
    Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
             body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}

let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    return encoder
}()

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try encoder.encode(value)
    return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}

/// Turns errors into answers (an HTML page, or JSON under `/api/`) and adds the security headers to
/// every response.
struct DashboardMiddleware<Context: RequestContext>: RouterMiddleware {
    let context: Pages.Context
    let loginPath: String
    let logger: Logger

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var status: Int
            var message: String
            var parameter: String?
        }
        var error: Detail
    }

    @concurrent
    func handle(_ request: Request, context requestContext: Context,
                next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, requestContext)
        } catch {
            let api = request.uri.path.hasPrefix("/api/") || request.uri.path == "/api"
            if error is Unauthenticated, !api {
                var redirect = Response(status: .seeOther, headers: [.location: loginPath, .cacheControl: "no-store"])
                redirect.headers[.contentSecurityPolicy] = DashboardServer.contentSecurityPolicy
                redirect.headers[.xContentTypeOptions] = "nosniff"
                return redirect
            }
            let (status, title, message, parameter): (HTTPResponse.Status, String, String, String?)
            switch error {
            case is Unauthenticated:
                (status, title, message, parameter) = (.unauthorized, "Sign in", "Sign in with a project key first.", nil)
            case let error as DashboardError:
                (status, title, message, parameter) = (.badRequest, "Bad request", "\(error.parameter): \(error.message)", error.parameter)
            case let error as NotFound:
                (status, title, message, parameter) = (.notFound, "Not found", "No \(error.what) in this store.", nil)
            case let error as HTTPError where error.status == .notFound:
                (status, title, message, parameter) = (.notFound, "Not found", "Nothing is served at \(request.uri.path).", nil)
            case let error as HTTPError:
                (status, title, message, parameter) = (error.status, error.status.reasonPhrase, error.body ?? error.status.reasonPhrase, nil)
            case is CancellationError:
                throw error
            default:
                logger.error("dashboard request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                (status, title, message, parameter) = (.internalServerError, "Cannot read the store",
                                                       "The store could not be read for this page; the dashboard's log has the details.", nil)
            }
            if api {
                response = try json(ErrorBody(error: .init(status: Int(status.code), message: message, parameter: parameter)), status: status)
            } else {
                response = html(Pages.error(status: Int(status.code), title: title, message: message, context: context), status: status)
            }
        }
        response.headers[.contentSecurityPolicy] = DashboardServer.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        // Same-origin requests keep their origin (a POSTed form names it, which the team server's sign-in
        // checks; with no-referrer a browser sends `Origin: null`); no other site learns a dashboard URL.
        response.headers[HTTPFields.Element.Name("Referrer-Policy")!] = "same-origin"
        response.headers[HTTPFields.Element.Name("X-Frame-Options")!] = "DENY"
        return response
    }
}
