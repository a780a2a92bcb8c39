import Foundation
import XeroMLSQLite

/// How runs are compared.
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

extension XeroML {
    /// Compares runs of one dataset item by item: `baseline` against each of `candidates` (ids, id
    /// prefixes or names).
    ///
    /// - Throws: ``XeroMLError/Code/notFound`` for an unknown run, ``XeroMLError/Code/invalidArgument``
    ///   when the runs are not of one dataset.
    public func compare(baseline: String, candidates: [String], datasetName: String? = nil,
                        options: ComparisonOptions = ComparisonOptions()) async throws -> RunComparison {
        guard !candidates.isEmpty else { throw XeroMLError(.invalidArgument, "compare needs at least one candidate run") }
        let runs = try await store.read { db in
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
            return runs
        }
        // Each run is read on a read connection of its own, concurrently; the comparison itself is
        // computed on the calling task.
        let loaded = try await withThrowingTaskGroup(of: (Int, RunColumns).self) { group in
            for (index, run) in runs.enumerated() {
                let runID = run.id
                group.addTask { (index, try await self.store.read { db in try Self.loadOutcomes(db, runID: runID) }) }
            }
            var loaded = [RunColumns?](repeating: nil, count: runs.count)
            for try await (index, columns) in group { loaded[index] = columns }
            return loaded.map { $0! }
        }
        return Self.compare(runs: runs, loaded: loaded, options: options)
    }

    /// Reads every item outcome of a run with two scans: run items in dataset-item order (through the
    /// one-result index) and item scores (index-only, through the covering score index), into flat
    /// columns: no joins, no per-item objects, ids kept as 128-bit integers.
    static func loadOutcomes(_ db: Connection, runID: String) throws -> RunColumns {
        // Filled in locals (no class-property access in the loops), then handed to the columns.
        var itemKeys: [UInt128] = [], runItemKeys: [UInt128] = [], runItemStarts: [Int32] = [0]
        var repetitions: [Int32] = [], errors: [Int32] = [], firstErrors: [String?] = [], outputs: [String?] = []
        var latencySums: [Double] = [], costs: [Double?] = []
        var itemOfRunItem: [Int32] = []  // parallel to runItemKeys
        var latencies: [Double] = []
        var totalCost: Double?
        var errorCount = 0
        let items = try db.cached("""
            SELECT id, dataset_item_id, error, latency_ms, cost, output FROM run_items
            WHERE run_id = ? AND dataset_item_id IS NOT NULL ORDER BY dataset_item_id, repetition
            """)
        try items.bind([.text(runID)])
        defer { items.reset() }
        while try items.step() {
            guard let runItem = items.withUTF8(0, UUIDv7.bits), let item = items.withUTF8(1, UUIDv7.bits) else { continue }
            let failed = !items.isNull(2)
            let latency = items.double(3)
            let cost = items.optionalDouble(4)
            latencies.append(latency)
            if failed { errorCount += 1 }
            if let cost { totalCost = (totalCost ?? 0) + cost }
            if itemKeys.last != item {
                itemKeys.append(item)
                runItemStarts.append(runItemStarts[runItemStarts.count - 1])
                repetitions.append(0)
                errors.append(0)
                firstErrors.append(nil)
                outputs.append(items.text(5))
                latencySums.append(0)
                costs.append(nil)
            }
            let i = itemKeys.count - 1
            runItemKeys.append(runItem)
            runItemStarts[i + 1] += 1
            repetitions[i] += 1
            latencySums[i] += latency
            if failed {
                errors[i] += 1
                if firstErrors[i] == nil { firstErrors[i] = items.text(2) }
            }
            if let cost { costs[i] = (costs[i] ?? 0) + cost }
            itemOfRunItem.append(Int32(i))
        }
        let itemCount = itemKeys.count
        // Score rows name their run item: find it by binary search over the sorted run-item keys
        // (measured several times faster here than a dictionary of 128-bit keys).
        let order = runItemKeys.indices.sorted { runItemKeys[$0] < runItemKeys[$1] }
        let sortedKeys = order.map { runItemKeys[$0] }
        let sortedItems = order.map { itemOfRunItem[$0] }
        func item(of key: UInt128) -> Int? {
            var low = 0, high = sortedKeys.count
            while low < high {
                let mid = (low + high) / 2
                if sortedKeys[mid] < key { low = mid + 1 } else { high = mid }
            }
            return low < sortedKeys.count && sortedKeys[low] == key ? Int(sortedItems[low]) : nil
        }
        var columns: [RunColumns.ScoreColumn] = []
        let scores = try db.cached("""
            SELECT name, value, data_type, run_item_id FROM scores
            WHERE run_id = ? AND run_item_id IS NOT NULL AND value IS NOT NULL
            """)
        try scores.bind([.text(runID)])
        defer { scores.reset() }
        var current = -1
        var values: [RunningVariance] = []
        func store() {
            guard current >= 0 else { return }
            columns[current].values = values
        }
        while try scores.step() {
            guard let key = scores.withUTF8(3, UUIDv7.bits), let i = item(of: key) else { continue }
            // Rows come grouped by name (the covering index starts with it): switch columns rarely.
            let sameName = current >= 0 && scores.withUTF8(0) { $0.elementsEqual(columns[current].name.utf8) }
            if !sameName {
                store()
                let name = scores.text(0)!
                if let found = columns.firstIndex(where: { $0.name == name }) {
                    current = found
                } else {
                    columns.append(RunColumns.ScoreColumn(name: name, isBoolean: scores.text(2) == "boolean",
                                                          values: []))
                    current = columns.count - 1
                }
                values = columns[current].values.isEmpty
                    ? .init(repeating: RunningVariance(), count: itemCount) : columns[current].values
                columns[current].values = []
            }
            values[i].add(scores.double(1))
        }
        store()
        latencies.sort()
        let run = RunColumns()
        (run.itemKeys, run.runItemKeys, run.runItemStarts) = (itemKeys, runItemKeys, runItemStarts)
        (run.repetitions, run.errors, run.firstErrors, run.outputs) = (repetitions, errors, firstErrors, outputs)
        (run.latencySums, run.costs, run.scores) = (latencySums, costs, columns)
        run.statistics = RunComparison.RunStatistics(
            items: latencies.count, errors: errorCount,
            latencyP50: Statistics.percentile(latencies, 0.5).map { .microseconds(Int64($0 * 1000)) },
            latencyP95: Statistics.percentile(latencies, 0.95).map { .microseconds(Int64($0 * 1000)) },
            cost: totalCost)
        return run
    }

    static func compare(runs: [ExperimentRun], loaded: [RunColumns], options: ComparisonOptions) -> RunComparison {
        // Merge the runs' sorted item keys: the union, in order, with each run's position per item.
        // (Hex ids of one width sort like their integers.)
        var itemKeys: [UInt128] = []
        var positions: [[Int?]] = []
        var cursors = [Int](repeating: 0, count: loaded.count)
        while true {
            var next: UInt128?
            for (r, run) in loaded.enumerated() where cursors[r] < run.count {
                let key = run.itemKeys[cursors[r]]
                if next == nil || key < next! { next = key }
            }
            guard let key = next else { break }
            itemKeys.append(key)
            positions.append(loaded.indices.map { r in
                guard cursors[r] < loaded[r].count, loaded[r].itemKeys[cursors[r]] == key else { return nil }
                defer { cursors[r] += 1 }
                return cursors[r]
            })
        }
        let statistics = loaded.map(\.statistics)
        let sortedNames = Set(loaded.flatMap { $0.scores.map(\.name) }).sorted()
        // Per run, the column of each score name (nil when the run lacks it).
        let columnOf: [[Int?]] = loaded.map { run in sortedNames.map { name in run.scores.firstIndex { $0.name == name } } }
        let booleans = sortedNames.indices.map { n in
            loaded.indices.contains { r in columnOf[r][n].map { loaded[r].scores[$0].isBoolean } ?? false }
        }
        let changeIndex = { (change: ScoreChange) in ScoreChange.allCases.firstIndex(of: change)! }
        let lowerIsBetter = sortedNames.map { options.lowerIsBetter.contains($0) }
        var items: [ComparedItem] = []
        items.reserveCapacity(itemKeys.count)
        // Per candidate and score name: paired means and change counts.
        var pairedBaseline = [[[Double]]](repeating: .init(repeating: [], count: sortedNames.count), count: runs.count - 1)
        var pairedCandidate = pairedBaseline
        var counts = [[[Int]]](repeating: .init(repeating: .init(repeating: 0, count: ScoreChange.allCases.count),
                                                 count: sortedNames.count), count: runs.count - 1)
        for (itemIndex, key) in itemKeys.enumerated() {
            let position = positions[itemIndex]
            let outcomes: [ItemOutcome?] = position.enumerated().map { r, p in p.map { ItemOutcome(columns: loaded[r], index: $0) } }
            var changes: [[String: ScoreChange]] = []
            for c in 1..<runs.count {
                var itemChanges: [String: ScoreChange] = [:]
                let basePosition = position[0], candidatePosition = position[c]
                let baseFailed = basePosition.map { loaded[0].errors[$0] == loaded[0].repetitions[$0] }
                let candidateFailed = candidatePosition.map { loaded[c].errors[$0] == loaded[c].repetitions[$0] }
                for (n, name) in sortedNames.enumerated() {
                    let b = basePosition.flatMap { p in columnOf[0][n].flatMap { loaded[0].value($0, p) } }
                    let v = candidatePosition.flatMap { p in columnOf[c][n].flatMap { loaded[c].value($0, p) } }
                    let change: ScoreChange
                    if baseFailed == false, candidateFailed == true, b != nil {
                        change = .newError
                    } else if baseFailed == true, candidateFailed == false, v != nil {
                        change = .fixedError
                    } else if let b, let v {
                        pairedBaseline[c - 1][n].append(b.mean)
                        pairedCandidate[c - 1][n].append(v.mean)
                        var delta = options.tolerance.difference(v.mean, b.mean)
                        if lowerIsBetter[n] { delta = -delta }
                        if delta == 0 {
                            change = .unchanged
                        } else if b.count > 1 && v.count > 1,
                                  abs(delta) <= 1.96 * (b.variance / Double(b.count) + v.variance / Double(v.count)).squareRoot() {
                            change = .withinNoise
                        } else {
                            change = delta > 0 ? .improved : .regressed
                        }
                    } else if b == nil && v == nil {
                        continue
                    } else {
                        change = .missing
                    }
                    itemChanges[name] = change
                    counts[c - 1][n][changeIndex(change)] += 1
                }
                changes.append(itemChanges)
            }
            items.append(ComparedItem(datasetItemID: UUIDv7.format(bits: key), outcomes: outcomes, changes: changes))
        }
        var scores: [ScoreComparison] = []
        let tolerance = options.tolerance
        for candidateIndex in 1..<runs.count {
            for (n, name) in sortedNames.enumerated() {
                // Only scores the baseline or this candidate has.
                guard columnOf[0][n] != nil || columnOf[candidateIndex][n] != nil else { continue }
                let isBoolean = booleans[n]
                let lowerIsBetter = options.lowerIsBetter.contains(name)
                let b = pairedBaseline[candidateIndex - 1][n], c = pairedCandidate[candidateIndex - 1][n]
                // Differences within the tolerance are exactly zero, in every figure below.
                let differences = zip(c, b).map { tolerance.difference($0, $1) }
                func mean(_ r: Int) -> Double? {
                    guard let column = columnOf[r][n] else { return nil }
                    let run = loaded[r]
                    var sum = 0.0, count = 0
                    for i in 0..<run.count { if let v = run.value(column, i) { sum += v.mean; count += 1 } }
                    return count > 0 ? sum / Double(count) : nil
                }
                var byChange: [ScoreChange: Int] = [:]
                for (k, change) in ScoreChange.allCases.enumerated() where counts[candidateIndex - 1][n][k] > 0 {
                    byChange[change] = counts[candidateIndex - 1][n][k]
                }
                let range = options.scoreRanges[name] ?? (isBoolean ? 0...1 : nil)
                // A difference of two values of the range lies within ± its width.
                let differenceRange = range.map { -($0.upperBound - $0.lowerBound)...($0.upperBound - $0.lowerBound) }
                var comparison = ScoreComparison(
                    name: name, candidate: candidateIndex - 1, isBoolean: isBoolean, lowerIsBetter: lowerIsBetter,
                    counts: byChange, baselineMean: mean(0), candidateMean: mean(candidateIndex),
                    pairs: differences.count,
                    meanDifference: differences.isEmpty ? nil : differences.reduce(0, +) / Double(differences.count),
                    meanDifferenceInterval: nil, range: range,
                    wilcoxon: nil, mcNemar: nil, significantRegression: false, significantImprovement: false)
                let worse: Bool
                let better: Bool
                // 0/1 up to the tolerance (a mean of agreeing repetitions, rounded or not).
                func bit(_ v: Double) -> Int? { tolerance.ties(v, 0) ? 0 : tolerance.ties(v, 1) ? 1 : nil }
                let baseBits = b.map(bit), candidateBits = c.map(bit)
                if isBoolean && !baseBits.contains(nil) && !candidateBits.contains(nil) {
                    var cells = [0, 0, 0, 0]  // pass→pass, pass→fail, fail→pass, fail→fail
                    for (x, y) in zip(baseBits, candidateBits) { cells[(1 - x!) * 2 + (1 - y!)] += 1 }
                    let passToFail = cells[1], failToPass = cells[2]
                    let p = PairedTests.mcNemarExact(b: passToFail, c: failToPass)
                    comparison.mcNemar = (passToFail, failToPass, p)
                    comparison.meanDifferenceInterval = PairedTests.pairedProportionInterval(
                        bothPass: cells[0], passToFail: passToFail, failToPass: failToPass, bothFail: cells[3])
                    worse = lowerIsBetter ? failToPass > passToFail : passToFail > failToPass
                    better = lowerIsBetter ? passToFail > failToPass : failToPass > passToFail
                } else {
                    // Booleans averaged over repetitions are proportions: compared like numbers.
                    comparison.isBoolean = false
                    let w = PairedTests.wilcoxonSignedRank(differences, tolerance: tolerance)
                    comparison.wilcoxon = w
                    comparison.meanDifferenceInterval = PairedTests.meanDifferenceInterval(differences, range: differenceRange)
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
            for position in positions {
                guard let b = position[0], let c = position[candidateIndex] else { continue }
                let baseFailed = loaded[0].errors[b] == loaded[0].repetitions[b]
                let candidateFailed = loaded[candidateIndex].errors[c] == loaded[candidateIndex].repetitions[c]
                if !baseFailed && candidateFailed { newErrors += 1 }
                if baseFailed && !candidateFailed { fixedErrors += 1 }
            }
            let p = PairedTests.mcNemarExact(b: newErrors, c: fixedErrors)
            return ErrorComparison(candidate: candidateIndex - 1, newErrors: newErrors, fixedErrors: fixedErrors, pValue: p,
                                   significantRegression: newErrors > fixedErrors && p < options.alpha)
        }
        return RunComparison(baseline: runs[0], candidates: Array(runs.dropFirst()), options: options, items: items,
                             scores: scores, runStatistics: statistics, errorComparisons: errorComparisons)
    }
}
