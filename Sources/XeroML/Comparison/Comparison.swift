import Foundation
import XeroMLSQLite

/// How runs are compared.
public struct ComparisonOptions: Sendable, Hashable {
    /// Score names where a smaller value is better (e.g. a distance). Others: bigger is better.
    public var lowerIsBetter: Set<String>
    /// Differences at most this large count as unchanged.
    public var tolerance: Double
    /// The significance level of the paired tests.
    public var alpha: Double
    /// Seed of the bootstrap, so intervals are reproducible.
    public var seed: UInt64
    /// Bootstrap resamples.
    public var bootstrapResamples: Int
    /// Above this many pairs the interval of the mean difference is the normal-theory one (see
    /// ``PairedTests/bootstrapMeanInterval(_:resamples:seed:bootstrapLimit:)``).
    public var bootstrapLimit: Int

    public init(lowerIsBetter: Set<String> = [], tolerance: Double = 1e-9, alpha: Double = 0.05, seed: UInt64 = 1,
                bootstrapResamples: Int = 2_000, bootstrapLimit: Int = 10_000) {
        self.bootstrapLimit = bootstrapLimit
        self.lowerIsBetter = lowerIsBetter
        self.tolerance = tolerance
        self.alpha = alpha
        self.seed = seed
        self.bootstrapResamples = bootstrapResamples
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
public struct ItemOutcome: Sendable, Hashable {
    /// Mean and sample variance of one score over the item's repetitions.
    public struct Value: Sendable, Hashable {
        public var mean: Double
        public var variance: Double
        public var count: Int
        public var isBoolean: Bool
    }
    public var runItemIDs: [String]
    public var repetitions: Int
    public var errors: Int
    /// The output of the first repetition (parsed when read: comparisons of large runs skip it).
    public var output: JSONValue? { parseStored(outputText) }
    var outputText: String?
    /// The first error message, if any repetition failed.
    public var error: String?
    /// Mean latency over repetitions.
    public var latency: Duration
    /// Total cost over repetitions, when recorded.
    public var cost: Double?
    public var scores: [String: Value]
    /// Whether every repetition failed.
    public var failed: Bool { errors == repetitions }
}

/// One dataset item across the compared runs.
public struct ComparedItem: Sendable, Hashable {
    public var datasetItemID: String
    /// Per run (baseline first, then candidates): what it did, or `nil` when the run lacks the item.
    public var outcomes: [ItemOutcome?]
    /// Per candidate (index 0 is the first candidate): the change of each score name.
    public var changes: [[String: ScoreChange]]

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
    /// Percentile bootstrap 95% interval of the mean difference.
    public var bootstrapInterval95: ClosedRange<Double>?
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

extension XeroML {
    /// Compares runs of one dataset item by item: `baseline` against each of `candidates` (ids, id
    /// prefixes or names).
    ///
    /// - Throws: ``XeroMLError/Code/notFound`` for an unknown run, ``XeroMLError/Code/invalidArgument``
    ///   when the runs are not of one dataset.
    public func compare(baseline: String, candidates: [String], datasetName: String? = nil,
                        options: ComparisonOptions = ComparisonOptions()) async throws -> RunComparison {
        guard !candidates.isEmpty else { throw XeroMLError(.invalidArgument, "compare needs at least one candidate run") }
        return try await store.read { db in
            var runs: [ExperimentRun] = []
            for reference in [baseline] + candidates {
                guard let run = try Self.findRun(db, reference: reference, datasetName: datasetName) else {
                    throw XeroMLError.notFound("run \"\(reference)\"")
                }
                runs.append(run)
            }
            guard let datasetID = runs[0].datasetID, runs.allSatisfy({ $0.datasetID == datasetID }) else {
                let described = runs.map { "\($0.name) (\($0.datasetName ?? "no dataset"))" }.joined(separator: ", ")
                throw XeroMLError(.invalidArgument, "runs can be compared only over one dataset: \(described)")
            }
            guard Set(runs.map(\.id)).count == runs.count else {
                throw XeroMLError(.invalidArgument, "a run is named twice in the comparison")
            }
            let loaded = try runs.map { try Self.loadOutcomes(db, runID: $0.id) }
            return Self.compare(runs: runs, loaded: loaded, options: options)
        }
    }

    /// One run's outcomes, in dataset-item order.
    struct RunOutcomes {
        var itemIDs: [String] = []
        var outcomes: [ItemOutcome] = []
        var statistics = RunComparison.RunStatistics(items: 0, errors: 0)
    }

    /// Reads every item outcome of a run with two scans: run items in dataset-item order (through the
    /// one-result index) and item scores (index-only, through the covering score index). Scores are
    /// accumulated in flat per-name arrays; no joins, no nested dictionaries.
    static func loadOutcomes(_ db: Connection, runID: String) throws -> RunOutcomes {
        var run = RunOutcomes()
        var indexOfRunItem: [UInt128: Int] = [:]
        var latencies: [Double] = []
        var latencySums: [Double] = []
        var totalCost: Double?
        var errors = 0
        let items = try db.cached("""
            SELECT id, dataset_item_id, error, latency_ms, cost, output FROM run_items
            WHERE run_id = ? AND dataset_item_id IS NOT NULL ORDER BY dataset_item_id, repetition
            """)
        try items.bind([.text(runID)])
        defer { items.reset() }
        while try items.step() {
            let id = items.text(0)!, item = items.text(1)!
            let error = items.text(2)
            let latency = items.double(3)
            let cost = items.optionalDouble(4)
            latencies.append(latency)
            if error != nil { errors += 1 }
            if let cost { totalCost = (totalCost ?? 0) + cost }
            if let last = run.itemIDs.last, last == item {
                let i = run.outcomes.count - 1
                run.outcomes[i].runItemIDs.append(id)
                run.outcomes[i].repetitions += 1
                if error != nil { run.outcomes[i].errors += 1; run.outcomes[i].error = run.outcomes[i].error ?? error }
                latencySums[i] += latency
                if let cost { run.outcomes[i].cost = (run.outcomes[i].cost ?? 0) + cost }
            } else {
                run.itemIDs.append(item)
                latencySums.append(latency)
                run.outcomes.append(ItemOutcome(
                    runItemIDs: [id], repetitions: 1, errors: error == nil ? 0 : 1, outputText: items.text(5), error: error,
                    latency: .zero, cost: cost, scores: [:]))
            }
            if let key = items.withUTF8(0, UUIDv7.bits) { indexOfRunItem[key] = run.outcomes.count - 1 }
        }
        for i in run.outcomes.indices {
            run.outcomes[i].latency = .microseconds(Int64(latencySums[i] / Double(run.outcomes[i].repetitions) * 1000))
        }
        // Per score name: count, sum and sum of squares per item.
        struct Accumulator {
            var isBoolean: Bool
            var count: [Int32]
            var sum: [Double]
            var sumOfSquares: [Double]
        }
        var accumulators: [(name: String, accumulator: Accumulator)] = []
        let scores = try db.cached("""
            SELECT name, value, data_type, run_item_id FROM scores
            WHERE run_id = ? AND run_item_id IS NOT NULL AND value IS NOT NULL
            """)
        try scores.bind([.text(runID)])
        defer { scores.reset() }
        let itemCount = run.outcomes.count
        var current = -1
        while try scores.step() {
            guard let key = scores.withUTF8(3, UUIDv7.bits), let i = indexOfRunItem[key] else { continue }
            let name = scores.text(0)!
            // Rows come grouped by name (the covering index starts with it).
            if current < 0 || accumulators[current].name != name {
                if let found = accumulators.firstIndex(where: { $0.name == name }) {
                    current = found
                } else {
                    accumulators.append((name, Accumulator(
                        isBoolean: scores.text(2) == "boolean", count: .init(repeating: 0, count: itemCount),
                        sum: .init(repeating: 0, count: itemCount), sumOfSquares: .init(repeating: 0, count: itemCount))))
                    current = accumulators.count - 1
                }
            }
            let v = scores.double(1)
            accumulators[current].accumulator.count[i] += 1
            accumulators[current].accumulator.sum[i] += v
            accumulators[current].accumulator.sumOfSquares[i] += v * v
        }
        for (name, a) in accumulators {
            for i in 0..<itemCount where a.count[i] > 0 {
                let n = Double(a.count[i])
                let mean = a.sum[i] / n
                let variance = n > 1 ? max(0, (a.sumOfSquares[i] - n * mean * mean) / (n - 1)) : 0
                run.outcomes[i].scores[name] = ItemOutcome.Value(mean: mean, variance: variance, count: Int(a.count[i]),
                                                                 isBoolean: a.isBoolean)
            }
        }
        latencies.sort()
        run.statistics = RunComparison.RunStatistics(
            items: latencies.count, errors: errors,
            latencyP50: Statistics.percentile(latencies, 0.5).map { .microseconds(Int64($0 * 1000)) },
            latencyP95: Statistics.percentile(latencies, 0.95).map { .microseconds(Int64($0 * 1000)) },
            cost: totalCost)
        return run
    }

    static func compare(runs: [ExperimentRun], loaded: [RunOutcomes], options: ComparisonOptions) -> RunComparison {
        // Merge the runs' sorted item ids: the union, in order, with each run's position per item.
        var itemIDs: [String] = []
        var positions: [[Int?]] = []
        var cursors = [Int](repeating: 0, count: loaded.count)
        while true {
            var next: String?
            for (r, run) in loaded.enumerated() where cursors[r] < run.itemIDs.count {
                let id = run.itemIDs[cursors[r]]
                if next == nil || id < next! { next = id }
            }
            guard let id = next else { break }
            itemIDs.append(id)
            positions.append(loaded.indices.map { r in
                guard cursors[r] < loaded[r].itemIDs.count, loaded[r].itemIDs[cursors[r]] == id else { return nil }
                defer { cursors[r] += 1 }
                return cursors[r]
            })
        }
        let statistics = loaded.map(\.statistics)
        var scoreNames = Set<String>()
        for run in loaded { for outcome in run.outcomes { scoreNames.formUnion(outcome.scores.keys) } }
        let sortedNames = scoreNames.sorted()
        var items: [ComparedItem] = []
        items.reserveCapacity(itemIDs.count)
        // Per candidate and score: paired values and change counts.
        var pairs = [[String: (b: [Double], c: [Double])]](repeating: [:], count: runs.count - 1)
        var counts = [[String: [ScoreChange: Int]]](repeating: [:], count: runs.count - 1)
        var booleans: [String: Bool] = [:]
        for (itemIndex, id) in itemIDs.enumerated() {
            let outcomes: [ItemOutcome?] = positions[itemIndex].enumerated().map { r, p in p.map { loaded[r].outcomes[$0] } }
            let base = outcomes[0]
            var changes: [[String: ScoreChange]] = []
            for candidateIndex in 1..<runs.count {
                let candidate = outcomes[candidateIndex]
                var itemChanges: [String: ScoreChange] = [:]
                for name in sortedNames {
                    let b = base?.scores[name], c = candidate?.scores[name]
                    if let v = b ?? c { booleans[name] = v.isBoolean }
                    let change: ScoreChange
                    if let base, let candidate, !base.failed, candidate.failed, b != nil {
                        change = .newError
                    } else if let base, let candidate, base.failed, !candidate.failed, c != nil {
                        change = .fixedError
                    } else if let b, let c {
                        pairs[candidateIndex - 1][name, default: ([], [])].b.append(b.mean)
                        pairs[candidateIndex - 1][name, default: ([], [])].c.append(c.mean)
                        var delta = c.mean - b.mean
                        if options.lowerIsBetter.contains(name) { delta = -delta }
                        if abs(delta) <= options.tolerance {
                            change = .unchanged
                        } else if b.count > 1 && c.count > 1,
                                  abs(delta) <= 1.96 * (b.variance / Double(b.count) + c.variance / Double(c.count)).squareRoot() {
                            change = .withinNoise
                        } else {
                            change = delta > 0 ? .improved : .regressed
                        }
                    } else if b == nil && c == nil {
                        continue
                    } else {
                        change = .missing
                    }
                    itemChanges[name] = change
                    counts[candidateIndex - 1][name, default: [:]][change, default: 0] += 1
                }
                changes.append(itemChanges)
            }
            items.append(ComparedItem(datasetItemID: id, outcomes: outcomes, changes: changes))
        }
        var scores: [ScoreComparison] = []
        for candidateIndex in 1..<runs.count {
            for name in sortedNames {
                let isBoolean = booleans[name] ?? false
                let lowerIsBetter = options.lowerIsBetter.contains(name)
                let (b, c) = pairs[candidateIndex - 1][name] ?? ([], [])
                let differences = zip(c, b).map { $0 - $1 }
                func mean(_ run: RunOutcomes) -> Double? {
                    let v = run.outcomes.compactMap { $0.scores[name]?.mean }
                    return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
                }
                var comparison = ScoreComparison(
                    name: name, candidate: candidateIndex - 1, isBoolean: isBoolean, lowerIsBetter: lowerIsBetter,
                    counts: counts[candidateIndex - 1][name] ?? [:], baselineMean: mean(loaded[0]),
                    candidateMean: mean(loaded[candidateIndex]), pairs: differences.count,
                    meanDifference: differences.isEmpty ? nil : differences.reduce(0, +) / Double(differences.count),
                    bootstrapInterval95: PairedTests.bootstrapMeanInterval(
                        differences, resamples: options.bootstrapResamples, seed: options.seed,
                        bootstrapLimit: options.bootstrapLimit),
                    wilcoxon: nil, mcNemar: nil, significantRegression: false, significantImprovement: false)
                let worse: Bool
                let better: Bool
                if isBoolean && b.allSatisfy({ $0 == 0 || $0 == 1 }) && c.allSatisfy({ $0 == 0 || $0 == 1 }) {
                    let passToFail = zip(b, c).filter { $0.0 == 1 && $0.1 == 0 }.count
                    let failToPass = zip(b, c).filter { $0.0 == 0 && $0.1 == 1 }.count
                    let p = PairedTests.mcNemarExact(b: passToFail, c: failToPass)
                    comparison.mcNemar = (passToFail, failToPass, p)
                    worse = lowerIsBetter ? failToPass > passToFail : passToFail > failToPass
                    better = lowerIsBetter ? passToFail > failToPass : failToPass > passToFail
                } else {
                    // Booleans averaged over repetitions are proportions: compared like numbers.
                    comparison.isBoolean = false
                    let w = PairedTests.wilcoxonSignedRank(differences)
                    comparison.wilcoxon = w
                    worse = lowerIsBetter ? w.wPlus > w.wMinus : w.wMinus > w.wPlus
                    better = lowerIsBetter ? w.wMinus > w.wPlus : w.wPlus > w.wMinus
                }
                if let p = comparison.pValue, p < options.alpha {
                    comparison.significantRegression = worse
                    comparison.significantImprovement = better
                }
                scores.append(comparison)
            }
        }
        let errorComparisons = (1..<runs.count).map { candidateIndex -> ErrorComparison in
            var newErrors = 0, fixedErrors = 0
            for item in items {
                guard let base = item.outcomes[0], let candidate = item.outcomes[candidateIndex] else { continue }
                if !base.failed && candidate.failed { newErrors += 1 }
                if base.failed && !candidate.failed { fixedErrors += 1 }
            }
            let p = PairedTests.mcNemarExact(b: newErrors, c: fixedErrors)
            return ErrorComparison(candidate: candidateIndex - 1, newErrors: newErrors, fixedErrors: fixedErrors, pValue: p,
                                   significantRegression: newErrors > fixedErrors && p < options.alpha)
        }
        return RunComparison(baseline: runs[0], candidates: Array(runs.dropFirst()), options: options, items: items,
                             scores: scores, runStatistics: statistics, errorComparisons: errorComparisons)
    }
}
