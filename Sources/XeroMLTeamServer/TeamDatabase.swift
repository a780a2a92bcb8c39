import Foundation
public import Logging
import NIOSSL
public import PostgresNIO

/// The team server's PostgreSQL database: a connection pool (`PostgresClient`) and its logger.
///
/// The pool opens connections on demand and replaces broken ones on its own, so a server keeps
/// serving after PostgreSQL restarts: requests in flight at the restart fail (5xx), later ones get
/// fresh connections. ``run()`` must be running (in a task of its own) while the database is used.
///
/// ```swift
/// let database = try TeamDatabase(url: "postgres://xeroml@127.0.0.1/xeroml")
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { await database.run() }
///     try await database.migrate()
///     // …
///     group.cancelAll()
/// }
/// ```
///
/// ## Topics
/// - ``init(url:maximumConnections:logger:)``
/// - ``run()``
/// - ``migrate(timeout:)``
/// - ``client``
public struct TeamDatabase: Sendable {
    /// The pool; dashboard stores run their queries through it.
    public let client: PostgresClient
    /// Where the pool's background messages and query failures go.
    public let logger: Logger
    /// The URL without its password, for messages.
    public let displayURL: String

    /// A pool for `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]`).
    public init(url: String, maximumConnections: Int = 20, logger: Logger? = nil) throws {
        let logger = logger ?? Logger(label: "xeroml.server.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        var configuration = try Self.configuration(url: url)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(30))
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        self.displayURL = Self.redacted(url)
    }

    /// Runs the pool until the calling task is cancelled.
    public func run() async {
        await client.run()
    }

    /// Runs `body` with the database at `url`, migrated, its pool running meanwhile.
    public static func withMigrated<Result: Sendable>(url: String,
                                                       _ body: @escaping @Sendable (TeamDatabase) async throws -> Result)
        async throws -> Result {
        let database = try TeamDatabase(url: url)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                await database.run()
                return nil
            }
            defer { group.cancelAll() }
            try await database.migrate()
            return try await body(database)
        }
    }

    /// The parts of a `postgres://` or `postgresql://` URL.
    struct Address {
        var host: String
        var port: Int
        var user: String
        var password: String?
        var database: String
        /// `disable`, `prefer`, `require` or `verify-full`.
        var sslMode: String
    }

    /// Parses a `postgres://` or `postgresql://` URL.
    static func address(url: String) throws -> Address {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw TeamServerError.configuration("--database-url must look like postgres://USER@HOST:PORT/DATABASE, not \(redacted(url))")
        }
        guard let host = components.host, !host.isEmpty else {
            throw TeamServerError.configuration("--database-url names no host: \(redacted(url))")
        }
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        guard ["disable", "prefer", "require", "verify-full"].contains(sslMode) else {
            throw TeamServerError.configuration("--database-url: sslmode must be disable, prefer, require or verify-full, not \(sslMode)")
        }
        return Address(host: host, port: components.port ?? 5432, user: user, password: password, database: database, sslMode: sslMode)
    }

    /// The pool's configuration for a `postgres://` URL.
    static func configuration(url: String) throws -> PostgresClient.Configuration {
        let address = try address(url: url)
        let tls: PostgresClient.Configuration.TLS = switch address.sslMode {
        case "disable": .disable
        case "prefer": .prefer(.makeClientConfiguration())
        default: .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: address.host, port: address.port, username: address.user, password: address.password,
                                            database: address.database, tls: tls)
    }

    /// Connects once to the database of `url` and disconnects: throws at once, with PostgreSQL's own
    /// words, when it refuses (a wrong password, a database that does not exist, TLS it does not
    /// offer), where the pool would keep trying until a request's deadline.
    public static func check(url: String, logger: Logger? = nil) async throws {
        let address = try address(url: url)
        let tls: PostgresConnection.Configuration.TLS
        do {
            tls = switch address.sslMode {
            case "disable": .disable
            case "prefer": .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            default: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw TeamServerError.configuration("TLS for PostgreSQL cannot be set up: \(error)")
        }
        var configuration = PostgresConnection.Configuration(host: address.host, port: address.port, username: address.user,
                                                            password: address.password, database: address.database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        let where_ = "\(address.user)@\(address.host):\(address.port)/\(address.database)"
        do {
            let connection = try await PostgresConnection.connect(
                configuration: configuration, id: 0,
                logger: logger ?? Logger(label: "xeroml.server.check", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await connection.close()
        } catch let error as PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                throw TeamServerError.configuration("PostgreSQL refused the connection as \(where_): \(message)\(state)")
            }
            if error.code == .sslUnsupported {
                throw TeamServerError.configuration("PostgreSQL at \(address.host):\(address.port) does not offer TLS, "
                                                    + "which sslmode=\(address.sslMode) asks for")
            }
            let refused = error.underlying.map { "\($0)".contains("Connection refused") } ?? false
            throw TeamServerError.configuration("cannot connect to PostgreSQL as \(where_): "
                                                + (refused ? "connection refused (is it running, on that port?)"
                                                   : "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")))
        }
    }

    /// `url` with its password replaced by `***`.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    /// `body` within `timeout`; past it, ``TeamServerError/unavailable(_:)`` is thrown at once and the
    /// work is cancelled in the background (while PostgreSQL is down the pool waits for a connection,
    /// and a request must not wait with it, even if the work is slow to notice its cancellation).
    func withDeadline<Result: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
        try await Self.withDeadline(timeout, body)
    }

    /// ``withDeadline(_:_:)``, for callers without a database at hand (the dashboard's pages).
    static func withDeadline<Result: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Result)
        async throws -> Result {
        let race = DeadlineRace<Result>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation: continuation, timeout: timeout, body: body)
            }
        } onCancel: {
            race.cancel()
        }
    }

    /// Runs `body` in a transaction, again (up to three times in all) when PostgreSQL aborts it for a
    /// deadlock or a serialization failure.
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
            } catch let error as PostgresTransactionError {
                if attempt < 3, let closure = error.closureError as? PSQLError, Self.isRetryable(closure) { continue }
                throw error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError ?? error
            } catch let error as PSQLError where attempt < 3 && Self.isRetryable(error) {
                continue
            }
        }
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001" || state == "23505"
    }
}

/// Microseconds since the Unix epoch, now.
func nowMicroseconds() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
}

/// The first of a piece of work and its deadline to finish resumes the waiting request; the other is
/// ignored. `@unchecked Sendable`: the state is only touched under `lock`.
private final class DeadlineRace<Result: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Result, any Error>?
    private var work: Task<Void, Never>?
    private var timer: Task<Void, Never>?
    private var cancelled = false

    func start(continuation: CheckedContinuation<Result, any Error>, timeout: Duration,
               body: @escaping @Sendable () async throws -> Result) {
        lock.lock()
        if cancelled {
            lock.unlock()
            continuation.resume(throwing: CancellationError())
            return
        }
        self.continuation = continuation
        work = Task {
            do {
                self.finish(.success(try await body()))
            } catch {
                self.finish(.failure(error))
            }
        }
        timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            self.finish(.failure(TeamServerError.unavailable("PostgreSQL did not answer within \(timeout)")))
        }
        lock.unlock()
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
        finish(.failure(CancellationError()))
    }

    private func finish(_ result: Swift.Result<Result, any Error>) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        let (work, timer) = (self.work, self.timer)
        lock.unlock()
        guard let continuation else { return }
        work?.cancel()
        timer?.cancel()
        continuation.resume(with: result)
    }
}
