import Foundation
public import Hummingbird
public import Logging
public import PostgresNIO
import XeroMLDashboard
public import XeroMLServer

/// The team server's dashboard: the pages and JSON API of `xeroml ui`, per project, behind a login with
/// a project key.
///
/// `GET /login` shows a form for a project key (`xrml_<key id>_<secret>`); `POST /login` checks it
/// against `api_keys` (the SHA-256 of the secret, compared in constant time; a revoked key is refused),
/// creates a session (a random token, of which only the SHA-256 is stored in `sessions`) and sets the
/// cookie `xeroml_session` (HttpOnly, SameSite=Strict, Path=/, with an expiry); `POST /logout` ends it.
/// Every page and every `/api/` route reads the session's project only: without a valid session, a page
/// redirects to `/login` and the API answers 401; another project's run is a 404.
///
/// ```swift
/// let router = Router()
/// TeamDashboard(client: client).mount(on: router)
/// ```
public struct TeamDashboard: Sendable {
    /// The session cookie's name.
    public static let cookieName = "xeroml_session"

    public let client: PostgresClient
    /// How long a session lasts after sign-in.
    public let sessionLifetime: Duration
    /// Whether the cookie carries `Secure` (set it when users reach the server over HTTPS, through a proxy).
    public let secureCookie: Bool
    public let logger: Logger
    /// Whole-run figures shared by the pages of all sessions (and filled by ``TeamServer`` as runs are
    /// committed).
    let cache = PostgresDashboardCache()
    let clock: @Sendable () -> Int64

    public init(client: PostgresClient, sessionLifetime: Duration = .seconds(12 * 3600), secureCookie: Bool = false,
                logger: Logger? = nil) {
        self.init(client: client, sessionLifetime: sessionLifetime, secureCookie: secureCookie, logger: logger,
                  clock: { Int64(Date().timeIntervalSince1970 * 1_000_000) })
    }

    init(client: PostgresClient, sessionLifetime: Duration, secureCookie: Bool, logger: Logger?, clock: @escaping @Sendable () -> Int64) {
        self.client = client
        self.sessionLifetime = sessionLifetime
        self.secureCookie = secureCookie
        self.logger = logger ?? Logger(label: "xeroml.server.dashboard", factory: { _ in SwiftLogNoOpLogHandler() })
        self.clock = clock
    }

    static let signInContext = Pages.Context(storeName: "XeroML team server")

    /// The dashboard server reading each request's session.
    public var server: DashboardServer {
        DashboardServer(context: Self.signInContext, loginPath: "/login", logger: logger) { request in
            try await scope(of: request)
        }
    }

    /// Adds the login routes, the pages, the JSON API and the assets to `router`, in a group with the
    /// dashboard's headers and error pages.
    public func mount(on router: Router<BasicRequestContext>) {
        server.mount(on: router) { group in addLoginRoutes(to: group) }
    }

    /// A router serving only the dashboard (and its login).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        mount(on: router)
        return router
    }

    // MARK: Sessions

    /// The scope of a request with a valid session: its project's store; `nil` without one.
    func scope(of request: Request) async throws -> DashboardServer.Scope? {
        guard let token = request.cookies[Self.cookieName]?.value, Self.isToken(token) else { return nil }
        let sessions = try await client.boundedRows("""
            SELECT s.project_id, p.name FROM sessions s
            JOIN projects p ON p.id = s.project_id
            JOIN api_keys k ON k.id = s.key_id AND k.project_id = s.project_id AND k.revoked_us IS NULL
            WHERE s.token_hash = sha256(convert_to(\(token), 'UTF8')) AND s.expires_us > \(clock())
            """, as: (UUID, String).self, logger: logger)
        for (projectID, name) in sessions {
            let store = PostgresDashboardStore(client: client, projectID: projectID, cache: cache, logger: logger)
            return DashboardServer.Scope(store: store, context: Pages.Context(storeName: name, signOutPath: "/logout"))
        }
        return nil
    }

    /// A session token as this server makes them: 64 lowercase hex digits.
    static func isToken(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// The project of `key` when it names a key that is not revoked and its secret matches.
    func project(ofKey key: String) async throws -> (project: UUID, keyID: String)? {
        let parts = key.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "xrml", !parts[1].isEmpty, !parts[2].isEmpty, parts[2].utf8.count <= 256 else { return nil }
        let keyID = String(parts[1]), secret = String(parts[2])
        // The database hashes the secret; the two hashes are compared here, in constant time.
        let keys = try await client.boundedRows("""
            SELECT project_id, secret_hash, sha256(convert_to(\(secret), 'UTF8')) FROM api_keys
            WHERE id = \(keyID) AND revoked_us IS NULL
            """, as: (UUID, ByteBuffer, ByteBuffer).self, logger: logger)
        for (project, stored, given) in keys {
            return Self.constantTimeEqual(Array(buffer: stored), Array(buffer: given)) ? (project, keyID) : nil
        }
        return nil
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    // MARK: Routes

    func addLoginRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("/login") { _, _ in
            DashboardServer.htmlResponse(Pages.login(error: nil, context: Self.signInContext))
        }
        group.post("/login") { request, _ in
            try await signIn(request)
        }
        group.post("/logout") { request, _ in
            try await signOut(request)
        }
    }

    /// Refuses a form posted from another site (the browser names the page's origin).
    static func isSameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let host = request.head.authority else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }

    func signIn(_ request: Request) async throws -> Response {
        guard Self.isSameOrigin(request) else {
            throw HTTPError(.forbidden, message: "The sign-in form must be posted from this server's own page.")
        }
        var request = request
        let body = try await request.collectBody(upTo: 16 * 1024)
        let form = Self.formFields(String(buffer: body))
        guard let key = form["key"], let (project, keyID) = try await project(ofKey: key) else {
            logger.notice("dashboard sign-in refused")
            return DashboardServer.htmlResponse(
                Pages.login(error: "That key is not a valid project key (unknown, revoked or mistyped).", context: Self.signInContext),
                status: .unauthorized)
        }
        let token = Self.newToken()
        let now = clock()
        let expires = now + sessionLifetime.components.seconds * 1_000_000
        try await client.query("DELETE FROM sessions WHERE expires_us <= \(now)", logger: logger)
        try await client.query("""
            INSERT INTO sessions (token_hash, project_id, key_id, expires_us)
            VALUES (sha256(convert_to(\(token), 'UTF8')), \(project), \(keyID), \(expires))
            """, logger: logger)
        try await client.query("UPDATE api_keys SET last_used_us = \(now) WHERE id = \(keyID)", logger: logger)
        var response = Response(status: .seeOther, headers: [.location: "/", .cacheControl: "no-store"])
        response.setCookie(Cookie(name: Self.cookieName, value: token, maxAge: Int(sessionLifetime.components.seconds), path: "/",
                                  secure: secureCookie, httpOnly: true, sameSite: .strict))
        return response
    }

    func signOut(_ request: Request) async throws -> Response {
        guard Self.isSameOrigin(request) else {
            throw HTTPError(.forbidden, message: "Sign out from this server's own page.")
        }
        if let token = request.cookies[Self.cookieName]?.value, Self.isToken(token) {
            try await client.query("DELETE FROM sessions WHERE token_hash = sha256(convert_to(\(token), 'UTF8'))", logger: logger)
        }
        var response = Response(status: .seeOther, headers: [.location: "/login", .cacheControl: "no-store"])
        response.setCookie(Cookie(name: Self.cookieName, value: "", maxAge: 0, path: "/", secure: secureCookie, httpOnly: true,
                                  sameSite: .strict))
        return response
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            guard let name = parts.first else { continue }
            fields[decode(name)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
