public import Foundation

/// The value of a score: a number, a pass/fail, a category or free text.
public enum ScoreValue: Sendable, Hashable, CustomStringConvertible {
    case numeric(Double)
    case boolean(Bool)
    case categorical(String)
    case text(String)
    /// No score could be given; the reason says why (e.g. the evaluator threw, or a judge's reply
    /// could not be parsed). Counted apart, never as a zero.
    case unscored(String)

    /// The value as a number: numeric values as they are, booleans as 1 or 0, otherwise `nil`.
    public var numericValue: Double? {
        switch self {
        case .numeric(let v): v
        case .boolean(let b): b ? 1 : 0
        case .categorical, .text, .unscored: nil
        }
    }

    /// Whether this is ``unscored(_:)``.
    public var isUnscored: Bool { if case .unscored = self { true } else { false } }

    /// The value as a string: categories and text as they are, otherwise `nil`.
    public var stringValue: String? {
        switch self {
        case .categorical(let s), .text(let s), .unscored(let s): s
        case .numeric, .boolean: nil
        }
    }

    /// The stored data type: "numeric", "boolean", "categorical", "text" or "unscored".
    public var dataType: String {
        switch self {
        case .numeric: "numeric"
        case .boolean: "boolean"
        case .categorical: "categorical"
        case .text: "text"
        case .unscored: "unscored"
        }
    }

    public var description: String {
        switch self {
        case .numeric(let v): formatNumber(v)
        case .boolean(let b): b ? "true" : "false"
        case .categorical(let s), .text(let s): s
        case .unscored(let reason): "unscored (\(reason))"
        }
    }
}

extension ScoreValue: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByStringLiteral
{
    public init(floatLiteral value: Double) { self = .numeric(value) }
    public init(integerLiteral value: Int) { self = .numeric(Double(value)) }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
    public init(stringLiteral value: String) { self = .categorical(value) }
}

/// Who produced a score.
public enum ScoreSource: String, Sendable, Hashable, Codable {
    /// Recorded by user code through the SDK (`run.score(…)`).
    case sdk
    /// Produced by an evaluator that ran after the item.
    case evaluator
    /// Produced by an LLM judge.
    case judge
    /// Entered by a person.
    case human
    /// Received through an API.
    case api
}

/// A stored score, attached to a run item, a trace, an observation or a whole run.
public struct Score: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var value: ScoreValue
    public var comment: String?
    public var source: ScoreSource
    /// The evaluator that produced it, when one did.
    public var evaluator: String?
    public var runID: String?
    public var runItemID: String?
    public var traceID: String?
    public var observationID: String?
    public var createdAt: Date
}

/// The kind of an observation inside a trace.
public enum ObservationKind: String, Sendable, Hashable, Codable {
    /// A unit of work with a duration.
    case span
    /// A model call: a span with model, token usage and cost.
    case generation
    /// A point in time.
    case event
}

/// The severity of an observation. An observation whose body throws is recorded at `.error`.
public enum ObservationLevel: String, Sendable, Hashable, Codable, Comparable {
    case debug, `default`, warning, error

    private var rank: Int {
        switch self {
        case .debug: 0
        case .default: 1
        case .warning: 2
        case .error: 3
        }
    }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// Token usage of a generation.
public struct TokenUsage: Sendable, Hashable {
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?

    public init(promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens ?? {
            guard promptTokens != nil || completionTokens != nil else { return nil }
            return (promptTokens ?? 0) + (completionTokens ?? 0)
        }()
    }
}

/// A stored observation: a span, generation or event of a trace.
public struct ObservationRecord: Sendable, Hashable, Identifiable {
    public var id: String
    public var traceID: String
    public var parentID: String?
    public var kind: ObservationKind
    public var name: String
    public var input: JSONValue?
    public var output: JSONValue?
    public var metadata: JSONValue?
    public var model: String?
    public var modelParameters: JSONValue?
    public var usage: TokenUsage
    public var cost: Double?
    public var level: ObservationLevel
    public var statusMessage: String?
    public var startedAt: Date
    public var endedAt: Date?

    /// The duration, when the observation has ended.
    public var duration: Duration? {
        endedAt.map { .microseconds(microseconds($0) - microseconds(startedAt)) }
    }
}

/// What a trace records.
public enum TraceKind: String, Sendable, Hashable, Codable {
    /// User code traced with `observe` outside any experiment.
    case trace
    /// The task of one experiment item.
    case item
    /// The evaluators of one experiment item (LLM judge calls).
    case evaluation
}

/// A stored trace with its observations.
public struct TraceRecord: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var kind: TraceKind
    public var runID: String?
    public var input: JSONValue?
    public var output: JSONValue?
    public var metadata: JSONValue?
    public var startedAt: Date
    public var endedAt: Date?
    /// The observations, in start order.
    public var observations: [ObservationRecord]
    /// Scores attached to the trace or to one of its observations.
    public var scores: [Score]
}

/// A named collection of items to run experiments on.
public struct Dataset: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var description: String?
    public var metadata: JSONValue?
    /// Incremented by every change to the items; a run records the version it used.
    public var version: Int
    public var createdAt: Date
    /// The active items at ``version``, in creation order.
    public var items: [DatasetItem]
}

/// Whether a dataset item takes part in new runs.
public enum DatasetItemStatus: String, Sendable, Hashable, Codable {
    case active, archived
}

/// One item of a dataset: an input, an optional expected output, and metadata.
public struct DatasetItem: Sendable, Hashable, Identifiable {
    public var id: String
    public var datasetID: String
    /// The id given by the user (the `id` field of an imported line), when there was one.
    public var externalID: String?
    public var input: JSONValue
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    public var status: DatasetItemStatus
    /// The dataset version that introduced this item.
    public var createdVersion: Int
    /// The dataset version that archived it, when archived.
    public var archivedVersion: Int?
    public var createdAt: Date
}

/// The life-cycle state of an experiment run.
public enum RunStatus: String, Sendable, Hashable, Codable {
    case running, finished, interrupted, failed
}

/// A stored experiment run.
public struct ExperimentRun: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var datasetID: String?
    public var datasetName: String?
    public var datasetVersion: Int?
    public var description: String?
    public var metadata: JSONValue?
    public var status: RunStatus
    public var createdAt: Date
    public var finishedAt: Date?
    /// The number of recorded item results.
    public var itemCount: Int
    /// The number of item results that recorded an error.
    public var errorCount: Int
    /// The process that created or last resumed the run, when recorded.
    public var owner: RunOwner? = nil
    /// How the run was made (its evaluators, and the changes of resumes that were allowed to differ),
    /// when recorded.
    public var configuration: JSONValue? = nil
    /// The status as stored; ``status`` differs from it when the run's process is gone
    /// (stored `running`, shown ``RunStatus/interrupted``).
    public var storedStatus: RunStatus? = nil
}

/// The recorded result of one item of an experiment run.
public struct ExperimentItemResult: Sendable, Hashable, Identifiable {
    public var id: String
    public var runID: String
    /// The dataset item, or `nil` for raw items (``Experiment/runItemRaw(input:expectedOutput:metadata:repetition:_:)``).
    public var datasetItemID: String?
    public var repetition: Int
    public var input: JSONValue
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    public var output: JSONValue?
    /// The error the task threw, when it threw.
    public var error: String?
    /// Wall time of the task (of its last attempt, when it was retried).
    public var latency: Duration
    /// How many times the task ran: more than 1 when retryable errors were retried.
    public var attempts: Int = 1
    public var traceID: String?
    public var startedAt: Date
    /// The scores of this item, in the order they were recorded.
    public var scores: [Score]

    /// The numeric value of the first score named `name` (booleans as 1 or 0), or `nil`.
    public func score(_ name: String) -> Double? {
        scores.first { $0.name == name }?.value.numericValue
    }

    /// The value of the first score named `name`, or `nil`.
    public func scoreValue(_ name: String) -> ScoreValue? {
        scores.first { $0.name == name }?.value
    }

    /// Whether the task succeeded.
    public var succeeded: Bool { error == nil }
}

// MARK: - Time and formatting helpers

@inline(__always) func microseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
}

@inline(__always) func date(microseconds: Int64) -> Date {
    Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
}

@inline(__always) func nowMicroseconds() -> Int64 { microseconds(Date()) }

func formatNumber(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e12 { return String(Int64(value)) }
    return String(format: "%.4g", value)
}
