public import Foundation
public import Logging
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
/// - ``init(path:lockTimeout:logger:)``
/// - ``open(path:lockTimeout:logger:)``
/// - ``shared()``
/// - ``environmentVariable``
/// - ``current``
/// ### Datasets
/// - ``createDataset(name:description:metadata:)``
/// - ``createDatasetItem(datasetName:input:expectedOutput:metadata:id:)``
/// - ``dataset(named:)``
/// - ``datasets()``
/// - ``importDataset(name:from:format:)``
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

    /// Opens (creating when missing) the store at `path` and brings its schema up to date.
    ///
    /// - Throws: ``XeroMLError`` with code ``XeroMLError/Code/newerSchema`` when a newer XeroML wrote
    ///   the file, ``XeroMLError/Code/notAXeroMLFile`` when it is some other SQLite file, or
    ///   ``XeroMLError/Code/storage`` when SQLite cannot open it.
    /// - Parameters:
    ///   - lockTimeout: the longest writes wait, in total, for another process that holds the file's
    ///     write lock (default: ``defaultLockTimeout``, 30 s unless `XEROML_LOCK_TIMEOUT` gives
    ///     seconds); then they fail with ``XeroMLError/Code/locked`` and a run stops. One wait for
    ///     everything pending, not one per batch; cancelling the waiting task ends it.
    ///   - logger: where XeroML logs; by default nothing is logged.
    public init(path: String, lockTimeout: Duration = XeroML.defaultLockTimeout, logger: Logger? = nil) throws {
        self.path = path
        self.logger = logger ?? Logger(label: "xeroml", factory: { _ in SwiftLogNoOpLogHandler() })
        self.store = try Store(path: path, lockTimeout: lockTimeout, logger: self.logger)
    }

    /// Opens the store at `path` like ``init(path:lockTimeout:logger:)``, without blocking the calling task's
    /// thread: opening, checking and migrating the file run on a thread of their own. Prefer it in
    /// async code, where the initializer would hold a cooperative thread while SQLite waits on a lock.
    public static func open(path: String, lockTimeout: Duration = XeroML.defaultLockTimeout,
                            logger: Logger? = nil) async throws -> XeroML {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try XeroML(path: path, lockTimeout: lockTimeout, logger: logger) })
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

    /// The base address of the local dashboard: `$XEROML_UI_URL`, else `http://127.0.0.1:7474`.
    public var dashboardBaseURL: URL {
        if let text = ProcessInfo.processInfo.environment[Self.dashboardEnvironmentVariable],
           let url = URL(string: text) { return url }
        return URL(string: "http://127.0.0.1:7474")!
    }
}
