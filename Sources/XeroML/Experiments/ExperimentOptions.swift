import Foundation
import Synchronization
import XeroMLSQLite

/// How ``XeroML/runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)`` runs.
public struct ExperimentOptions: Sendable {
    /// Items whose task runs at the same time (the sliding window). Default 8.
    public var maxConcurrency: Int
    /// The longest one attempt of a task may take; `nil` for no limit. A timeout is retryable. The task
    /// is cancelled at the deadline; a task that ignores cancellation keeps its slot until it returns.
    public var timeout: Duration?
    /// How retryable errors (``RetryableError``, timeouts) are retried.
    public var retry: RetryPolicy
    /// Runs per item. Each (item, repetition) pair gets exactly one result.
    public var repetitions: Int
    /// Continue the run of the same name instead of failing because it exists: only (item, repetition)
    /// pairs without a committed result run. Several processes may resume one run at once: a pair
    /// both of them ran keeps the result committed first, and the other is dropped.
    public var resume: Bool
    /// With ``resume``: also run again the pairs whose committed result is an error (the old result is
    /// replaced). This is the one way a finished run changes; resuming a finished run without it does
    /// nothing and returns its report.
    public var retryErrors: Bool
    /// A limiter shared with other experiments, adapting to rate limits. `nil`: only ``maxConcurrency``.
    public var limiter: AdaptiveLimiter?
    /// Where progress events go; see ``ExperimentProgress``.
    public var progress: AsyncStream<ExperimentProgress>.Continuation?
    /// Dataset items read per page. The run holds at most two pages (the current one and the one read
    /// ahead) plus the window in memory.
    public var pageSize: Int
    /// Seed of the retry jitter, for reproducible waits; `nil` draws from the system.
    public var seed: UInt64?
    /// With ``resume``: resume even when the metadata or the evaluators differ from those the run was
    /// made with. Without it such a resume is refused with an error naming each difference, so that
    /// half a run cannot silently answer another question than the other half. When allowed, the run
    /// records the changes (its ``ExperimentRun/configuration`` key `resumed_with_changes`).
    public var allowConfigurationChange = false

    public init(maxConcurrency: Int = 8, timeout: Duration? = nil, retry: RetryPolicy = RetryPolicy(),
                repetitions: Int = 1, resume: Bool = false, retryErrors: Bool = false, limiter: AdaptiveLimiter? = nil,
                progress: AsyncStream<ExperimentProgress>.Continuation? = nil, pageSize: Int = 1_000, seed: UInt64? = nil) {
        self.maxConcurrency = maxConcurrency
        self.timeout = timeout
        self.retry = retry
        self.repetitions = repetitions
        self.resume = resume
        self.retryErrors = retryErrors
        self.limiter = limiter
        self.progress = progress
        self.pageSize = pageSize
        self.seed = seed
    }

    func validate() throws {
        guard maxConcurrency >= 1 else { throw XeroMLError(.invalidArgument, "maxConcurrency must be at least 1") }
        guard repetitions >= 1 else { throw XeroMLError(.invalidArgument, "repetitions must be at least 1") }
        guard pageSize >= 1 else { throw XeroMLError(.invalidArgument, "pageSize must be at least 1") }
        if let timeout, timeout <= .zero { throw XeroMLError(.invalidArgument, "timeout must be positive") }
        if retryErrors && !resume { throw XeroMLError(.invalidArgument, "retryErrors needs resume") }
    }
}

/// A progress event of a running experiment.
///
/// ```swift
/// let (events, continuation) = AsyncStream.makeStream(of: ExperimentProgress.self,
///                                                     bufferingPolicy: .bufferingNewest(1))
/// var options = ExperimentOptions(maxConcurrency: 16)
/// options.progress = continuation
/// Task { for await p in events { print(p.completed, "/", p.total, p.itemsPerSecond) } }
/// ```
public struct ExperimentProgress: Sendable, Hashable {
    public var runID: String
    /// (item, repetition) pairs this invocation will run.
    public var total: Int
    /// Pairs done so far (committed or handed to the writer), failures included.
    public var completed: Int
    /// Pairs whose task failed (after retries).
    public var failed: Int
    /// Retries so far.
    public var retries: Int
    /// Pairs skipped because a result was already committed (resume).
    public var skipped: Int
    /// Tasks running now.
    public var inFlight: Int
    public var elapsed: Duration
    /// How long new work stays paused because a server asked to wait (`Retry-After`), or `nil`.
    public var pausedFor: Duration? = nil
    /// Why the run stopped starting new items: results could not be stored. `nil` while all is well.
    public var writeFailure: String? = nil

    /// Completed pairs per second.
    public var itemsPerSecond: Double { elapsed > .zero ? Double(completed) / elapsed.seconds : 0 }
    /// Estimated time to finish, at the rate so far.
    public var estimatedRemaining: Duration? {
        let rate = itemsPerSecond
        guard rate > 0 else { return nil }
        return .seconds(Double(max(0, total - completed)) / rate)
    }
    /// Whether the run is complete.
    public var isFinished: Bool { completed >= total }
}

/// A local item for ``XeroML/runExperiment(name:items:description:metadata:evaluators:runEvaluators:options:task:)``.
public struct LocalItem: Sendable, Hashable {
    public var input: JSONValue
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    public init(input: JSONValue, expectedOutput: JSONValue? = nil, metadata: JSONValue? = nil) {
        self.input = input
        self.expectedOutput = expectedOutput
        self.metadata = metadata
    }
}

/// What a finished ``XeroML/runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)`` returns.
public struct ExperimentReport: Sendable {
    /// The run, as stored after finishing.
    public var run: ExperimentRun
    /// Statistics over all of the run's results (including those of earlier, resumed invocations).
    public var summary: RunSummary
    /// What this invocation did.
    public var progress: ExperimentProgress

    /// A readable summary (the run's statistics).
    public func format() -> String {
        summary.format(title: "Run \"\(run.name)\"" + (run.datasetName.map { " on \($0)" } ?? ""))
    }
}
