import Foundation
import XeroMLSQLite

public struct ComparisonOptions: Sendable, Hashable {
    /// Score names where a smaller value is better (e.g. a distance). Others: bigger is better.
    public var lowerIsBetter: Set<String>
    /// When two values count as the same (absolute and relative): such pairs are `unchanged`, and
    /// their difference is zero in every statistic and test. `tolerance: 0.01` sets the absolute part.
    public var tolerance: Tolerance
    /// The significance level of the paired tests.
    public var alpha: Double
    /// The values each score can take, by name, for scores whose range is known (a similarity in
    /// [0, 1]): intervals are clipped to it, and gate thresholds outside it are refused. Boolean
    /// scores are in [0, 1] without being listed.
    public var scoreRanges: [String: ClosedRange<Double>]
    /// Seed of ``PairedTests/bootstrapMeanInterval(_:resamples:seed:bootstrapLimit:)`` when you call
    /// it yourself; comparisons use Student's t interval, whose coverage is measured in
    /// docs/statistics.md.
    public var seed: UInt64
    /// Bootstrap resamples, for the same.
    public var bootstrapResamples: Int
    /// Bootstrap limit, for the same.
    public var bootstrapLimit: Int

    /// Whether each ``ComparedItem`` carries its dataset item's external id and input (one more
    /// ordered scan of the dataset's items, read beside the runs). Default `true`; turn it off for the
    /// fastest comparison of very large runs when only statistics are needed.
    public var itemDetails = true

    public init(lowerIsBetter: Set<String> = [], tolerance: Tolerance = .standard, alpha: Double = 0.05,
                seed: UInt64 = 1, bootstrapResamples: Int = 2_000, bootstrapLimit: Int = 10_000,
                scoreRanges: [String: ClosedRange<Double>] = [:]) {
        self.bootstrapLimit = bootstrapLimit
        self.lowerIsBetter = lowerIsBetter
        self.tolerance = tolerance
        self.alpha = alpha
        self.seed = seed
        self.bootstrapResamples = bootstrapResamples
        self.scoreRanges = scoreRanges
    }
}

/// How one score of one item changed from the baseline to a candidate.
public enum ScoreChange: String, Sendable, Hashable, CaseIterable, Codable {
    case improved, regressed, unchanged
    /// Changed, but by less than the item's own noise across repetitions.
    case withinNoise = "within_noise"
    /// The score is missing from one of the two runs (item not run, or no value).
    case missing
    /// The candidate's task failed on an item the baseline ran without error.
    case newError = "new_error"
    /// The baseline's task failed on an item the candidate ran without error.
    case fixedError = "fixed_error"
}

/// What one run did on one dataset item (over its repetitions).
///
/// A view into the run's columns as loaded for the comparison: its values are read when asked for,
/// so comparing large runs builds no per-item dictionaries.
public struct ItemOutcome: Sendable, Hashable {
    /// Mean and sample variance of one score over the item's repetitions.
    public struct Value: Sendable, Hashable {
        public var mean: Double
        public var variance: Double
        public var count: Int
        public var isBoolean: Bool
    }
    let columns: RunColumns
    let index: Int

    /// The run items of this dataset item, by repetition.
    public var runItemIDs: [String] { columns.runItemIDs(of: index) }
    public var repetitions: Int { Int(columns.repetitions[index]) }
    public var errors: Int { Int(columns.errors[index]) }
    /// The output of the first repetition.
    public var output: JSONValue? { parseStored(columns.outputs[index]) }
    /// The first error message, if any repetition failed.
    public var error: String? { columns.firstErrors[index] }
    /// Mean latency over repetitions.
    public var latency: Duration { .microseconds(Int64(columns.latencySums[index] / Double(repetitions) * 1000)) }
    /// Total cost over repetitions, when recorded.
    public var cost: Double? { columns.costs[index] }
    /// Every score of the item, by name.
    public var scores: [String: Value] {
        var scores: [String: Value] = [:]
        for name in columns.scores.indices { if let v = columns.value(name, index) { scores[columns.scores[name].name] = v } }
        return scores
    }
    /// The score `name`, or `nil`.
    public func score(_ name: String) -> Value? {
        columns.scores.firstIndex { $0.name == name }.flatMap { columns.value($0, index) }
    }
    /// Whether every repetition failed.
    public var failed: Bool { columns.errors[index] == columns.repetitions[index] }

    public static func == (a: Self, b: Self) -> Bool { a.columns === b.columns && a.index == b.index }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(columns)); hasher.combine(index) }
}

/// One run's results as loaded for a comparison: one array per field, items in dataset-item order.
///
/// `@unchecked Sendable`: built once by ``XeroML/loadOutcomes(_:runID:)`` and never changed after.
final class RunColumns: @unchecked Sendable {
    struct ScoreColumn {
        var name: String
        var isBoolean: Bool
        /// Per item: count, mean and variance of its values over repetitions (Welford's update).
        var values: [RunningVariance]
    }
    var itemKeys: [UInt128] = []
    var runItemKeys: [UInt128] = []
    /// Start of each item's run items in `runItemKeys`; one more entry than items.
    var runItemStarts: [Int32] = [0]
    var repetitions: [Int32] = []
    var errors: [Int32] = []
    var firstErrors: [String?] = []
    var outputs: [String?] = []
    var latencySums: [Double] = []
    var costs: [Double?] = []
    var scores: [ScoreColumn] = []
    var statistics = RunComparison.RunStatistics(items: 0, errors: 0)

    var count: Int { itemKeys.count }

    func runItemIDs(of item: Int) -> [String] {
        (Int(runItemStarts[item])..<Int(runItemStarts[item + 1])).map { UUIDv7.format(bits: runItemKeys[$0]) }
    }

    func value(_ score: Int, _ item: Int) -> ItemOutcome.Value? {
        let column = scores[score]
        let values = column.values[item]
        guard values.count > 0 else { return nil }
        return ItemOutcome.Value(mean: values.mean, variance: values.variance, count: values.count, isBoolean: column.isBoolean)
    }
}

/// One dataset item across the compared runs.
public struct ComparedItem: Sendable, Hashable {
    public var datasetItemID: String
    /// The item's own id in the dataset (the `id` of the imported line), when it has one.
    public var externalID: String?
    /// Per run (baseline first, then candidates): what it did, or `nil` when the run lacks the item.
    public var outcomes: [ItemOutcome?]
    /// Per candidate (index 0 is the first candidate): the change of each score name.
    public var changes: [[String: ScoreChange]]
    /// The item's input as stored (compact JSON); see ``input``.
    public var inputJSON: String?

    /// The item's input (parsed from ``inputJSON`` on each access).
    public var input: JSONValue? { inputJSON.flatMap { try? JSONValue(parsing: $0) } }

    /// An item of a comparison.
    public init(datasetItemID: String, externalID: String? = nil, outcomes: [ItemOutcome?],
                changes: [[String: ScoreChange]], inputJSON: String? = nil) {
        self.datasetItemID = datasetItemID
        self.externalID = externalID
        self.outcomes = outcomes
        self.changes = changes
        self.inputJSON = inputJSON
    }

    /// Whether any score regressed or a new error appeared for any candidate.
    public var hasRegression: Bool {
        changes.contains { $0.values.contains { $0 == .regressed || $0 == .newError } }
    }
}

/// One score name compared between the baseline and one candidate.
public struct ScoreComparison: Sendable, Hashable {
    public var name: String
    /// Index of the candidate in ``RunComparison/candidates``.
    public var candidate: Int
    public var isBoolean: Bool
    public var lowerIsBetter: Bool
    /// How many items fell in each category.
    public var counts: [ScoreChange: Int]
    /// Means over each run's items that have the score.
    public var baselineMean: Double?
    public var candidateMean: Double?
    /// Items with the score in both runs (the pairs of the tests).
    public var pairs: Int
    /// Mean of candidate − baseline over the pairs.
    public var meanDifference: Double?
    /// The 95% interval of the mean difference: Newcombe's paired-proportion interval for a boolean
    /// score compared with McNemar, Student's t otherwise, clipped to the range a difference of the
    /// score can have (docs/comparison.md).
    public var meanDifferenceInterval: ConfidenceInterval?
    /// The bounds of ``meanDifferenceInterval`` (the name is kept for source compatibility; the
    /// interval is no longer a bootstrap one: see ``ConfidenceInterval/method``).
    public var bootstrapInterval95: ClosedRange<Double>? { meanDifferenceInterval?.range }
    /// The values the score can take, when known (booleans, or ``ComparisonOptions/scoreRanges``).
    public var range: ClosedRange<Double>?
    /// Wilcoxon signed-rank test of the paired differences (numeric scores).
    public var wilcoxon: PairedTests.WilcoxonResult?
    /// Exact McNemar test (boolean scores): pairs that went from pass to fail and from fail to pass.
    public var mcNemar: (passToFail: Int, failToPass: Int, pValue: Double)?
    /// The p-value of the test that applies.
    public var pValue: Double? { isBoolean ? mcNemar?.pValue : wilcoxon?.pValue }
    /// The candidate is worse, and the paired test says so at the chosen level.
    public var significantRegression: Bool
    /// The candidate is better, and the paired test says so at the chosen level.
    public var significantImprovement: Bool

    public func count(_ change: ScoreChange) -> Int { counts[change] ?? 0 }

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.candidate == b.candidate && a.counts == b.counts && a.meanDifference == b.meanDifference
            && a.pValue == b.pValue
    }
    public func hash(into h: inout Hasher) { h.combine(name); h.combine(candidate) }
}

/// Two or more runs of one dataset compared item by item against a baseline.
///
/// ```swift
/// let comparison = try await xeroml.compare(baseline: "prompt-v1", candidates: ["prompt-v2"], datasetName: "qa")
/// for score in comparison.scores where score.significantRegression { print(score.name, score.pValue!) }
/// ```
public struct RunComparison: Sendable {
    public var baseline: ExperimentRun
    public var candidates: [ExperimentRun]
    public var options: ComparisonOptions
    /// Every item of any run, in dataset-item order.
    public var items: [ComparedItem]
    /// Per candidate and score name.
    public var scores: [ScoreComparison]
    /// Per run (baseline first): errors, latency percentiles and total cost.
    public var runStatistics: [RunStatistics]

    /// Run-level figures used in comparisons and gates.
    public struct RunStatistics: Sendable, Hashable {
        public var items: Int
        public var errors: Int
        public var latencyP50: Duration?
        public var latencyP95: Duration?
        public var cost: Double?
    }

    /// The runs, baseline first.
    public var runs: [ExperimentRun] { [baseline] + candidates }

    /// Score comparisons with a significant regression.
    public var significantRegressions: [ScoreComparison] { scores.filter(\.significantRegression) }

    /// Per candidate: items whose task newly fails or newly succeeds, compared with the exact McNemar
    /// test like a boolean score ("the task ran without error").
    public var errorComparisons: [ErrorComparison]

    /// Whether the runs used different versions of the dataset (items changed between them show as
    /// missing on one side).
    public var datasetVersionsDiffer: Bool { Set(runs.map(\.datasetVersion)).count > 1 }
}

/// Task failures compared between the baseline and one candidate.
public struct ErrorComparison: Sendable, Hashable {
    public var candidate: Int
    /// Items the baseline ran without error and the candidate failed.
    public var newErrors: Int
    /// Items the baseline failed and the candidate ran without error.
    public var fixedErrors: Int
    /// Exact McNemar p-value of new against fixed errors.
    public var pValue: Double
    /// More new errors than fixed ones, significantly.
    public var significantRegression: Bool
}
