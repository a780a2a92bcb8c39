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

    /// Parses a `postgres://` or `postgresql://` URL.
    static func configuration(url: String) throws -> PostgresClient.Configuration {
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
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-full": tls = .require(.makeClientConfiguration())
        default:
            throw TeamServerError.configuration("--database-url: sslmode must be disable, prefer, require or verify-full, not \(sslMode)")
        }
        return PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: user, password: password,
                                            database: database, tls: tls)
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
