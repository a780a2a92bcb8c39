public import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Projects and their API keys, as `xeroml-server projects …` and `keys …` manage them.
///
/// A key is `xrml_<key id>_<secret>`: the id is public (listed, used to revoke), the secret is 32
/// random bytes shown once at creation; only its SHA-256 is stored.
///
/// ## Topics
/// - ``createProject(name:)``
/// - ``projects()``
/// - ``createKey(project:)``
/// - ``keys(project:)``
/// - ``revokeKey(id:)``
public struct TeamAdmin: Sendable {
    /// A project.
    public struct Project: Sendable, Hashable {
        /// The project's id.
        public var id: UUID
        /// Its unique name.
        public var name: String
        /// When it was created, in microseconds since the epoch.
        public var createdUs: Int64
        /// Keys not revoked.
        public var activeKeys: Int
    }

    /// A key, without its secret.
    public struct Key: Sendable, Hashable {
        /// The public key id (the part between `xrml_` and the secret).
        public var id: String
        /// The name of the key's project.
        public var project: String
        /// When it was created, in microseconds since the epoch.
        public var createdUs: Int64
        /// When a request last used it (updated at most once a minute).
        public var lastUsedUs: Int64?
        /// When it was revoked, if it was.
        public var revokedUs: Int64?
    }

    /// The database of the projects.
    public let database: TeamDatabase

    /// Administration of `database` (its pool must be running).
    public init(database: TeamDatabase) { self.database = database }

    private var client: PostgresClient { database.client }
    private var logger: Logger { database.logger }

    /// Creates project `name` (1 to 200 characters, unique).
    public func createProject(name: String) async throws -> Project {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(name.count), !name.contains("\0") else {
            throw TeamServerError.invalid("a project name has 1 to 200 characters")
        }
        let id = UUID()
        let now = nowMicroseconds()
        let rows = try await client.query("""
            INSERT INTO projects (id, name, created_us) VALUES (\(id), \(name), \(now)) ON CONFLICT (name) DO NOTHING RETURNING id
            """, logger: logger)
        var created = false
        for try await _ in rows.decode(UUID.self) { created = true }
        guard created else { throw TeamServerError.invalid("a project named \(name) exists already") }
        return Project(id: id, name: name, createdUs: now, activeKeys: 0)
    }

    /// Every project, by name.
    public func projects() async throws -> [Project] {
        let rows = try await client.query("""
            SELECT p.id, p.name, p.created_us, count(k.id) FILTER (WHERE k.revoked_us IS NULL)::int8
            FROM projects p LEFT JOIN api_keys k ON k.project_id = p.id GROUP BY p.id ORDER BY p.name
            """, logger: logger)
        var projects: [Project] = []
        for try await (id, name, created, keys) in rows.decode((UUID, String, Int64, Int).self) {
            projects.append(Project(id: id, name: name, createdUs: created, activeKeys: keys))
        }
        return projects
    }

    /// A new key of project `project`: its record and the key itself, which is shown only now.
    public func createKey(project: String) async throws -> (key: Key, token: String) {
        let projectID = try await self.projectID(named: project)
        let id = Self.randomHex(bytes: 8)
        let secret = Self.randomHex(bytes: 32)
        let now = nowMicroseconds()
        try await client.query("""
            INSERT INTO api_keys (id, project_id, secret_hash, created_us)
            VALUES (\(id), \(projectID), sha256(\(ByteBuffer(string: secret))::bytea), \(now))
            """, logger: logger)
        return (Key(id: id, project: project, createdUs: now), "xrml_\(id)_\(secret)")
    }

    /// The keys of project `project`, newest first.
    public func keys(project: String) async throws -> [Key] {
        let projectID = try await self.projectID(named: project)
        let rows = try await client.query("""
            SELECT id, created_us, last_used_us, revoked_us FROM api_keys WHERE project_id = \(projectID) ORDER BY created_us DESC, id
            """, logger: logger)
        var keys: [Key] = []
        for try await (id, created, lastUsed, revoked) in rows.decode((String, Int64, Int64?, Int64?).self) {
            keys.append(Key(id: id, project: project, createdUs: created, lastUsedUs: lastUsed, revokedUs: revoked))
        }
        return keys
    }

    /// Revokes key `id` (its public id, or the whole key); requests with it get 401 from now on.
    public func revokeKey(id: String) async throws -> Key {
        let id = APIKey(token: id)?.id ?? id
        let rows = try await client.query("""
            UPDATE api_keys k SET revoked_us = coalesce(k.revoked_us, \(nowMicroseconds()))
            FROM projects p WHERE k.id = \(id) AND p.id = k.project_id
            RETURNING k.id, p.name, k.created_us, k.last_used_us, k.revoked_us
            """, logger: logger)
        var key: Key?
        for try await (id, project, created, lastUsed, revoked) in rows.decode((String, String, Int64, Int64?, Int64?).self) {
            key = Key(id: id, project: project, createdUs: created, lastUsedUs: lastUsed, revokedUs: revoked)
        }
        guard let key else { throw TeamServerError.invalid("no key \(id)") }
        return key
    }

    private func projectID(named name: String) async throws -> UUID {
        let rows = try await client.query("SELECT id FROM projects WHERE name = \(name)", logger: logger)
        for try await (id) in rows.decode(UUID.self) { return id }
        throw TeamServerError.invalid("no project named \(name) (xeroml-server projects list shows them)")
    }

    /// `bytes` random bytes from the system's generator, as lowercase hex.
    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
