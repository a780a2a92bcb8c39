import ArgumentParser
import Foundation
import Logging
import XeroMLTeamServer

@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xeroml-server",
        abstract: "The XeroML team server: receives runs pushed by `xeroml sync push` into PostgreSQL.",
        discussion: """
            Every command works on one PostgreSQL database: --database-url URL, else $DATABASE_URL \
            (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]). \
            Each brings the database's schema up to date first, and refuses a database migrated by a \
            newer xeroml-server.
            """,
        subcommands: [Serve.self, Projects.self, Keys.self],
        defaultSubcommand: Serve.self
    )
}

/// The database option every command shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "The PostgreSQL database (default: $DATABASE_URL).")
    var databaseURL: String?

    func url() throws -> String {
        if let databaseURL, !databaseURL.isEmpty { return databaseURL }
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty { return url }
        throw ValidationError("no database: give --database-url postgres://USER@HOST:PORT/DATABASE, or set DATABASE_URL")
    }

    /// Runs `body` with a migrated database whose pool runs meanwhile.
    func withDatabase<Result: Sendable>(_ body: @escaping @Sendable (TeamDatabase) async throws -> Result) async throws -> Result {
        let url = try url()
        // PostgreSQL's own refusal (a wrong password, a missing database) at once, not a timeout later.
        try await TeamDatabase.check(url: url)
        return try await TeamDatabase.withMigrated(url: url, body)
    }
}

/// One line on standard output, written at once (tests and scripts read it through a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A time in microseconds since the epoch as an ISO 8601 UTC time, or `-`.
func formatTime(_ microseconds: Int64?) -> String {
    guard let microseconds else { return "-" }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: Date(timeIntervalSince1970: Double(microseconds) / 1_000_000))
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the sync API (the default command).",
        discussion: """
            Prints `xeroml-server listening on http://HOST:PORT` once it listens. Stop it with SIGINT or \
            SIGTERM: requests in flight finish first. Serve TLS through a reverse proxy (docs/server.md).
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(name: .long, help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "The port to listen on (0 picks a free one).")
    var port = 8788

    @Option(name: .long, help: "The server's address as users reach it (e.g. https://evals.example.com), for run URLs.")
    var publicURL: String?

    @Option(name: .long, help: "The most connections to PostgreSQL this process opens.")
    var maxConnections = 20

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be from 0 to 65535, not \(port)") }
        guard (1...1_000).contains(maxConnections) else { throw ValidationError("--max-connections must be from 1 to 1000") }
        if let publicURL, URL(string: publicURL)?.scheme == nil {
            throw ValidationError("--public-url must be an absolute URL such as https://evals.example.com")
        }
    }

    func run() async throws {
        var logger = Logger(label: "xeroml.server") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .info
        let url = try database.url()
        try await TeamDatabase.check(url: url)
        let teamDatabase = try TeamDatabase(url: url, maximumConnections: maxConnections, logger: logger)
        let host = self.host
        let publicURL = self.publicURL
        let port = self.port
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await teamDatabase.run() }
            defer { group.cancelAll() }
            try await teamDatabase.migrate()
            let server = TeamServer(database: teamDatabase, publicURL: publicURL, logger: logger)
            let app = server.application(host: host, port: port) { bound in
                say("xeroml-server listening on http://\(host):\(bound)")
            }
            try await app.runService()
        }
    }
}

struct Projects: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and list projects.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a project.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The project's name.") var name: String

        func run() async throws {
            let name = self.name
            let project = try await database.withDatabase { try await TeamAdmin(database: $0).createProject(name: name) }
            say("created project \(project.name) (\(project.id.uuidString.lowercased()))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the projects.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let projects = try await database.withDatabase { try await TeamAdmin(database: $0).projects() }
            say("NAME\tID\tCREATED\tACTIVE KEYS")
            for project in projects {
                say("\(project.name)\t\(project.id.uuidString.lowercased())\t\(formatTime(project.createdUs))\t\(project.activeKeys)")
            }
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke a project's API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key and print it, once (only a hash of its secret is stored).")
        @OptionGroup var database: DatabaseOptions
        @Option(name: .long, help: "The project the key opens.") var project: String

        func run() async throws {
            let project = self.project
            let (key, token) = try await database.withDatabase { try await TeamAdmin(database: $0).createKey(project: project) }
            say(token)
            FileHandle.standardError.write(Data("""
                The line above is key \(key.id) of project \(key.project), shown only now; give it to clients \
                through an environment variable (xeroml sync push --api-key-env VAR).

                """.utf8))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a project's keys (never their secrets).")
        @OptionGroup var database: DatabaseOptions
        @Option(name: .long, help: "The project.") var project: String

        func run() async throws {
            let project = self.project
            let keys = try await database.withDatabase { try await TeamAdmin(database: $0).keys(project: project) }
            say("KEY ID\tCREATED\tLAST USED\tREVOKED")
            for key in keys {
                say("\(key.id)\t\(formatTime(key.createdUs))\t\(formatTime(key.lastUsedUs))\t\(formatTime(key.revokedUs))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: requests with it get 401 from now on.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The key's id (as keys list shows it).") var keyID: String

        func run() async throws {
            let id = keyID
            let key = try await database.withDatabase { try await TeamAdmin(database: $0).revokeKey(id: id) }
            say("revoked key \(key.id) of project \(key.project) at \(formatTime(key.revokedUs))")
        }
    }
}
