import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing
import XeroML
import XeroMLTeamServer

/// The team dashboard over HTTP (Hummingbird's in-process client): sign-in, sessions, project isolation.
@Suite(.enabled(if: DashboardCluster.available, DashboardCluster.skipReason), .timeLimit(.minutes(5)))
struct TeamDashboardTests {
    static func form(_ key: String) -> ByteBuffer {
        ByteBuffer(string: "key=" + key.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
    }

    static let formHeaders: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    static func cookieHeaders(_ token: String) -> HTTPFields { [.cookie: "\(TeamDashboard.cookieName)=\(token)"] }

    /// Signs in with `key`; returns the session token from the cookie.
    static func signIn(_ client: some TestClientProtocol, key: String) async throws -> String {
        try await client.execute(uri: "/login", method: .post, headers: formHeaders, body: form(key)) { response in
            #expect(response.status == .seeOther)
            #expect(response.headers[.location] == "/")
            let cookie = try #require(response.headers[.setCookie])
            let token = try #require(cookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last)
            return String(token)
        }
    }

    @Test("a project key signs in; pages need the session; sign-out ends it")
    func login() async throws {
        let f = try await DashboardFixture.make()
        defer { f.remove() }
        try await DashboardCluster.withDatabase { client in
            let a = try await TeamSchema.addProject(client, name: "project-a")
            let b = try await TeamSchema.addProject(client, name: "project-b")
            let keyA = try await TeamSchema.addKey(client, project: a)
            let keyB = try await TeamSchema.addKey(client, project: b)
            let revoked = try await TeamSchema.addKey(client, project: a, revoked: true)
            try await RowCopier.copy(f.xeroml, into: client, project: a)
            let run = f.runs[1].id
            let app = Application(router: TeamDashboard(client: client).router())
            try await app.test(.router) { http in
                // Without a session: pages go to the login page, the API answers 401.
                for path in ["/", "/runs/\(run)", "/datasets/\(f.datasetID)", "/compare?run=\(f.runs[0].id)&run=\(run)"] {
                    try await http.execute(uri: path, method: .get) { response in
                        #expect(response.status == .seeOther, "\(path)")
                        #expect(response.headers[.location] == "/login")
                    }
                }
                try await http.execute(uri: "/api/runs/\(run)", method: .get) { response in
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                }
                try await http.execute(uri: "/login", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = String(buffer: response.body)
                    #expect(body.contains(#"<form action="/login" method="post""#) && body.contains(#"name="key""#) && body.contains(#"type="password""#))
                    #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                }

                // Wrong, malformed and revoked keys: the form again, with an error, and no cookie.
                let wrongSecret = keyA.dropLast(4) + "0000"
                for key in [String(wrongSecret), "xrml_nokey_secret", "not a key", "", revoked] {
                    try await http.execute(uri: "/login", method: .post, headers: Self.formHeaders, body: Self.form(key)) { response in
                        #expect(response.status == .unauthorized, "\(key)")
                        #expect(response.headers[.setCookie] == nil, "\(key)")
                        let body = String(buffer: response.body)
                        #expect(body.contains("not a valid project key") && body.contains(#"name="key""#))
                    }
                }
                // A form posted from another site is refused.
                var crossSite = Self.formHeaders
                crossSite[.origin] = "http://attacker.example"
                try await http.execute(uri: "/login", method: .post, headers: crossSite, body: Self.form(keyA)) { response in
                    #expect(response.status == .forbidden)
                    #expect(response.headers[.setCookie] == nil)
                }

                // The right key: a session cookie, HttpOnly and SameSite=Strict.
                let cookie = try await http.execute(uri: "/login", method: .post, headers: Self.formHeaders, body: Self.form(keyA)) { response in
                    #expect(response.status == .seeOther)
                    return try #require(response.headers[.setCookie])
                }
                #expect(cookie.hasPrefix("xeroml_session="))
                for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] { #expect(cookie.contains(attribute), "\(attribute)") }
                #expect(!cookie.contains("Secure"))
                let tokenA = String(cookie.split(separator: ";")[0].dropFirst("xeroml_session=".count))
                let stored = try await client.query("SELECT count(*) FROM sessions WHERE token_hash = sha256(convert_to(\(tokenA), 'UTF8'))")
                for try await count in stored.decode(Int.self) { #expect(count == 1, "only the token's hash is stored") }
                let plain = try await client.query("SELECT count(*) FROM sessions WHERE token_hash = convert_to(\(tokenA), 'UTF8')")
                for try await count in plain.decode(Int.self) { #expect(count == 0) }

                try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(tokenA)) { response in
                    #expect(response.status == .ok)
                    let body = String(buffer: response.body)
                    #expect(body.contains("project-a") && body.contains("prompt-v1") && body.contains("Sign out"))
                }
                try await http.execute(uri: "/runs/\(run)", method: .get, headers: Self.cookieHeaders(tokenA)) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body).contains("model failed: 429 Too Many Requests"))
                }
                try await http.execute(uri: "/api/runs/\(run)", method: .get, headers: Self.cookieHeaders(tokenA)) { response in
                    #expect(response.status == .ok)
                }

                // Project B's session sees none of A's runs.
                let tokenB = try await Self.signIn(http, key: keyB)
                for path in ["/runs/\(run)", "/api/runs/\(run)", "/api/runs/\(run)/items", "/datasets/\(f.datasetID)",
                             "/compare?run=\(f.runs[0].id)&run=\(run)"] {
                    try await http.execute(uri: path, method: .get, headers: Self.cookieHeaders(tokenB)) { response in
                        #expect(response.status == .notFound, "\(path)")
                    }
                }
                try await http.execute(uri: "/api/runs", method: .get, headers: Self.cookieHeaders(tokenB)) { response in
                    #expect(String(buffer: response.body) == "[]")
                }

                // A made-up or malformed token is no session.
                for token in [String(repeating: "a", count: 64), "../../etc", ""] {
                    try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(token)) { response in
                        #expect(response.status == .seeOther, "\(token)")
                    }
                }

                // Sign-out ends the session on the server, not only in the browser.
                try await http.execute(uri: "/logout", method: .post, headers: Self.cookieHeaders(tokenA)) { response in
                    #expect(response.status == .seeOther)
                    #expect(response.headers[.location] == "/login")
                    #expect(response.headers[.setCookie]?.contains("Max-Age=0") == true)
                }
                try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(tokenA)) { response in
                    #expect(response.status == .seeOther)
                }
                try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(tokenB)) { response in
                    #expect(response.status == .ok, "another session is untouched")
                }
                // Revoking the key ends its sessions.
                try await client.query("UPDATE api_keys SET revoked_us = 1 WHERE project_id = \(b)")
                try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(tokenB)) { response in
                    #expect(response.status == .seeOther)
                }
            }
        }
    }

    @Test("an expired session is no session")
    func expiry() async throws {
        try await DashboardCluster.withDatabase { client in
            let a = try await TeamSchema.addProject(client, name: "a")
            let key = try await TeamSchema.addKey(client, project: a)
            let app = Application(router: TeamDashboard(client: client, sessionLifetime: .seconds(1)).router())
            try await app.test(.router) { http in
                let token = try await Self.signIn(http, key: key)
                try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(token)) { response in
                    #expect(response.status == .ok)
                }
                try await Task.sleep(for: .milliseconds(1100))
                try await http.execute(uri: "/", method: .get, headers: Self.cookieHeaders(token)) { response in
                    #expect(response.status == .seeOther)
                }
            }
        }
    }
}
