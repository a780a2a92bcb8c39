public import Foundation
public import Logging
package import XeroMLSQLite
import Synchronization

/// The XeroML client: one local SQLite store of datasets, traces, experiment runs and scores.
///
/// ```swift
/// let xeroml = try XeroML(path: "evals.sqlite")
/// let dataset = try await xeroml.dataset(named: "capitals")
/// let experiment = try await xeroml.createExperiment(name: "baseline", datasetName: "capitals")
/// for item in dataset.items {
///     try await experiment.runItem(item) { run in
///         let answer = try await myModel(run.input)
///         run.setOutput(answer)
///         run.score(name: "exact_match", value: answer == run.expectedOutput)
///     }
/// }
/// try await experiment.finish()
/// ```
///
/// A client is `Sendable`; share one per file. Two processes may open the same file: writes wait for
/// each other (busy timeout and `BEGIN IMMEDIATE`), reads never block.
///
/// ## Topics
/// ### Opening a store
/// - ``init(path:readOnly:lockTimeout:logger:)``
/// - ``open(path:readOnly:lockTimeout:logger:)``
/// - ``shared()``
/// - ``isInMemory(path:)``
/// - ``isReadOnly``
/// - ``environmentVariable``
/// - ``current``
/// ### Datasets
/// - ``createDataset(name:description:metadata:)``
/// - ``createDatasetItem(datasetName:input:expectedOutput:metadata:id:)``
/// - ``dataset(named:)``
/// - ``datasets()``
/// - ``importDataset(name:from:format:description:csvColumnTypes:)``
/// ### Experiments
/// - ``createExperiment(name:datasetName:description:metadata:evaluators:)-(_,_,_,_,[any Evaluator])``
/// - ``runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)``
/// - ``compare(baseline:candidates:datasetName:options:)``
/// - ``gate(run:conditions:baseline:datasetName:options:)``
/// - ``runs(datasetName:)``
/// - ``run(id:)``
/// - ``results(runID:)``
/// ### Traces
/// - ``trace(id:)``
/// ### Durability
/// - ``flush()``
public final class XeroML: Sendable {
    /// The environment variable naming the shared client's file: `XEROML_DB`.
    public static let environmentVariable = "XEROML_DB"
    /// The file used when `XEROML_DB` is not set: `xeroml.sqlite` in the working directory.
    public static let defaultPath = "xeroml.sqlite"
    /// The environment variable naming the dashboard address used by ``Experiment/url``: `XEROML_UI_URL`.
    public static let dashboardEnvironmentVariable = "XEROML_UI_URL"

    /// The file this client stores into.
    public let path: String
    let store: Store
    let logger: Logger
    private let registry = Mutex(EvaluatorRegistry.standard)

    /// This client's evaluators by name: the built-in ones, plus what you register.
    ///
    /// ```swift
    /// xeroml.evaluators.register("polite") { ClosureEvaluator(name: "polite") { .boolean(!$0.outputText.contains("!")) } }
    /// ```
    ///
    /// Reading and assigning are two steps; to change the registry from several tasks at once, use
    /// ``updateEvaluators(_:)``.
    public var evaluators: EvaluatorRegistry {
        get { registry.withLock { $0 } }
        set { registry.withLock { $0 = newValue } }
    }

    /// Changes the evaluator registry in one step, safe against concurrent changes.
    public func updateEvaluators(_ change: (inout EvaluatorRegistry) -> Void) {
        registry.withLock { change(&$0) }
    }

    /// Opens the store at `path`: by default for reading and writing, creating the file when missing and
    /// bringing its schema up to date.
    ///
    /// With `readOnly`, the file must already be a store, and it is opened without a writer: nothing is
    /// created, no migration runs, the journal mode is left as it is, and the store can be read in a
    /// directory you cannot write and from a read-only file. Writes on such a client throw
    /// ``XeroMLError/Code/readOnlyStore``. Use it for tools that only look (reports, dashboards, CI
    /// checks): a mistyped path is an error instead of a new empty store.
    ///
    /// ```swift
    /// let store = try XeroML(path: "evals.sqlite", readOnly: true)
    /// let runs = try await store.runs()
    /// ```
    ///
    /// `":memory:"` (or a `file:` URI with `mode=memory`) opens a store that lives in this process only
    /// and is gone when the client is released: for tests and experiments that must leave nothing
    /// behind. It uses one connection for reads and writes.
    ///
    /// - Throws: ``XeroMLError`` with code
    ///   - ``XeroMLError/Code/invalidArgument`` when `path` is empty;
    ///   - ``XeroMLError/Code/storeNotFound`` when, read-only, there is no file at `path` or it is empty;
    ///   - ``XeroMLError/Code/needsMigration`` when, read-only, the file needs a schema upgrade (opening
    ///     it once read-write makes it);
    ///   - ``XeroMLError/Code/newerSchema`` when a newer XeroML wrote the file;
    ///   - ``XeroMLError/Code/notAXeroMLFile`` when it is some other SQLite file;
    ///   - ``XeroMLError/Code/storage`` when SQLite cannot open it.
    /// - Parameters:
    ///   - readOnly: open an existing store for reading only. Default: `false`.
    ///   - lockTimeout: the longest writes wait, in total, for another process that holds the file's
    ///     write lock (default: ``defaultLockTimeout``, 30 s unless `XEROML_LOCK_TIMEOUT` gives
    ///     seconds); then they fail with ``XeroMLError/Code/locked`` and a run stops. One wait for
    ///     everything pending, not one per batch; cancelling the waiting task ends it.
    ///   - logger: where XeroML logs; by default nothing is logged.
    public init(path: String, readOnly: Bool = false, lockTimeout: Duration = XeroML.defaultLockTimeout,
                logger: Logger? = nil) throws {
        guard !path.isEmpty else {
            throw XeroMLError(.invalidArgument,
                "the store path is empty; give a file path (or \":memory:\" for a store that keeps nothing)")
        }
        self.path = path
        self.logger = logger ?? Logger(label: "xeroml", factory: { _ in SwiftLogNoOpLogHandler() })
        self.store = try Store(path: path, readOnly: readOnly, lockTimeout: lockTimeout, logger: self.logger)
    }

    /// Whether `path` names an in-memory database (`:memory:`, or a `file:` URI with `:memory:` as its
    /// name or `mode=memory`): such a store lives in this process only and keeps nothing.
    public static func isInMemory(path: String) -> Bool { Store.isInMemory(path) }

    /// Whether this client was opened read-only (``init(path:readOnly:lockTimeout:logger:)``).
    public var isReadOnly: Bool { store.isReadOnly }

    /// Opens the store at `path` like ``init(path:readOnly:lockTimeout:logger:)``, without blocking the
    /// calling task's thread: opening, checking and migrating the file run on a thread of their own.
    /// Prefer it in async code, where the initializer would hold a cooperative thread while SQLite
    /// waits on a lock.
    public static func open(path: String, readOnly: Bool = false, lockTimeout: Duration = XeroML.defaultLockTimeout,
                            logger: Logger? = nil) async throws -> XeroML {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result {
                    try XeroML(path: path, readOnly: readOnly, lockTimeout: lockTimeout, logger: logger)
                })
            }
        }
    }

    /// The environment variable giving the default lock timeout in seconds: `XEROML_LOCK_TIMEOUT`.
    public static let lockTimeoutEnvironmentVariable = "XEROML_LOCK_TIMEOUT"

    /// How long writes wait, in total, for another process's write lock unless told otherwise:
    /// `$XEROML_LOCK_TIMEOUT` seconds when it is a number from 0 to 86400, else 30 s.
    public static var defaultLockTimeout: Duration {
        if let text = ProcessInfo.processInfo.environment[lockTimeoutEnvironmentVariable],
           let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds >= 0, seconds <= 86_400 {
            return .milliseconds(Int64(seconds * 1000))
        }
        return .seconds(30)
    }

    /// The path the shared client uses: `$XEROML_DB`, else `xeroml.sqlite`.
    public static var configuredPath: String {
        if let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty { return path }
        return defaultPath
    }

    private static let sharedClient = Mutex<XeroML?>(nil)

    /// The process-wide client on ``configuredPath``, opened on first use.
    public static func shared() throws -> XeroML {
        try sharedClient.withLock { client in
            if let client { return client }
            let opened = try XeroML(path: configuredPath)
            client = opened
            return opened
        }
    }

    @TaskLocal static var local: XeroML?

    /// The client bound to the calling task (inside experiment items and traces), if any.
    public static var current: XeroML? { local }

    /// The client top-level ``observe(_:as:input:metadata:_:)`` records into: the task's client, else
    /// the shared client when it was opened or `XEROML_DB` names its file. Library code that calls
    /// `observe` never creates a store file in the working directory on its own.
    static var activeClient: XeroML? {
        if let local { return local }
        let opened = sharedClient.withLock { $0 }
        if let opened { return opened }
        guard ProcessInfo.processInfo.environment[environmentVariable]?.isEmpty == false else { return nil }
        return try? shared()
    }

    /// Runs `body` with this client as the one top-level `observe` calls record into.
    public func withActive<T, E: Error>(_ body: () async throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await XeroML.$local.withValue(self) {
            do throws(E) { return .success(try await body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Waits until every result recorded so far is committed to the file.
    ///
    /// Results are committed in batches within milliseconds anyway; `flush()` is the point after which
    /// a crash cannot lose them.
    /// - Throws: ``XeroMLError/Code/writeFailed`` with the reasons when some could not be written.
    public func flush() async throws {
        try await store.flush()
    }

    /// Batches and transactions the store's writer committed so far (for this package's benchmarks:
    /// batches per transaction is the group-commit batch size).
    package var writerStatistics: (batches: Int, transactions: Int) { store.writerStatistics }

    /// The base address of the local dashboard: `$XEROML_UI_URL` when it is an http(s) URL, else
    /// `http://127.0.0.1:7474`. ``configuredDashboardBaseURL()`` refuses any other value with a message.
    public var dashboardBaseURL: URL {
        (try? Self.configuredDashboardBaseURL()) ?? URL(string: "http://127.0.0.1:7474")!
    }
}

// MARK: - Access for this package's other modules

extension XeroML {
    /// Runs `body` in a read transaction on one of the store's readers (for this package's modules,
    /// such as the sync client, that read tables directly).
    package func readDatabase<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await store.read(body)
    }

    /// Runs `body` in a write transaction on the store's writer, after every result enqueued before.
    package func writeDatabase<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await store.write(body)
    }
}
