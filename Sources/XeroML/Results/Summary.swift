import Foundation
import XeroMLSQLite

/// Token and cost totals of generations.
public struct UsageTotals: Sendable, Hashable {
    public var promptTokens = 0
    public var completionTokens = 0
    public var totalTokens = 0
    public var cost = 0.0
    public var generations = 0
    /// Generations that recorded a cost: with none, ``cost`` is unknown rather than zero.
    public var pricedGenerations = 0

    public init(promptTokens: Int = 0, completionTokens: Int = 0, totalTokens: Int = 0, cost: Double = 0,
                generations: Int = 0, pricedGenerations: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.cost = cost
        self.generations = generations
        self.pricedGenerations = pricedGenerations ?? (cost > 0 ? generations : 0)
    }

    init(generationsOf observations: [ObservationRow]) {
        self.init()
        for o in observations where o.kind == .generation {
            generations += 1
            promptTokens += o.usage.promptTokens ?? 0
            completionTokens += o.usage.completionTokens ?? 0
            totalTokens += o.usage.totalTokens ?? 0
            if let c = o.cost { cost += c; pricedGenerations += 1 }
        }
    }
}

/// The results of a run: every item result, run-level scores, and a statistical summary.
///
/// ```swift
/// let results = try await experiment.results()
/// for result in results where result.score("accuracy") == 0 { print(result.input) }
/// print(results.format())
/// ```
public struct ExperimentResults: Sendable, RandomAccessCollection {
    public let run: ExperimentRun
    /// The item results, in the order they were recorded.
    public let items: [ExperimentItemResult]
    /// Scores attached to the run as a whole.
    public let runScores: [Score]
    /// Tokens and cost of the tasks' generations.
    public let usage: UsageTotals
    /// Tokens and cost of the evaluators' generations (LLM judges).
    public let evaluatorUsage: UsageTotals

    public var startIndex: Int { items.startIndex }
    public var endIndex: Int { items.endIndex }
    public subscript(position: Int) -> ExperimentItemResult { items[position] }

    /// Statistics per score name, errors and latency.
    public var summary: RunSummary {
        RunSummary(items: items, runScores: runScores, usage: usage, evaluatorUsage: evaluatorUsage).of(run)
    }

    /// A readable multi-line summary of the run.
    public func format() -> String { summary.format(title: "Run \"\(run.name)\"" + (run.datasetName.map { " on \($0)" } ?? "")) }
}

/// Summary statistics of one score name over the items of a run.
public struct ScoreStatistics: Sendable, Hashable, Codable {
    public var name: String
    /// "numeric", "boolean", "categorical", "text", "mixed", or "unscored" when no item got a value.
    public var dataType: String
    /// Items with a value for this score (unscored ones excluded).
    public var count: Int
    /// Items the evaluator could not score (``ScoreValue/unscored(_:)``): never counted as zeros.
    public var unscored: Int
    public var mean: Double?
    /// Sample standard deviation (n − 1).
    public var standardDeviation: Double?
    /// Standard error of the mean: sd / √n.
    public var standardError: Double?
    /// 95% confidence interval of the mean: Wilson's for a boolean score (a pass rate), Student's t
    /// with n − 1 degrees of freedom otherwise, clipped to ``range`` when it is known.
    public var confidenceInterval95: ClosedRange<Double>?
    /// How ``confidenceInterval95`` was computed.
    public var intervalMethod: ConfidenceInterval.Method?
    /// The values the score can take, when known: [0, 1] for a boolean score, or a range declared
    /// with ``declaringRange(_:)``; `nil` (unknown, nothing clipped) otherwise.
    public var range: ClosedRange<Double>?
    public var min: Double?
    public var median: Double?
    public var p95: Double?
    public var max: Double?
    /// For boolean scores: the share of `true`.
    public var passRate: Double?
    /// For categorical scores: how many items got each category.
    public var categories: [String: Int]?
}

/// The statistics of a run: per score name, plus errors, latency, tokens and cost.
public struct RunSummary: Sendable, Hashable {
    public var itemCount: Int
    public var errorCount: Int
    public var scores: [ScoreStatistics]
    public var runScores: [Score]
    public var latencyP50: Duration?
    public var latencyP95: Duration?
    /// Tokens and cost of the tasks' generations.
    public var usage: UsageTotals
    /// Tokens and cost of the evaluators' generations (LLM judges).
    public var evaluatorUsage: UsageTotals
    /// The run's name, when the summary was made for a stored run.
    public var runName: String? = nil
    /// The name of the run's dataset, when the summary was made for a stored run of a dataset.
    public var datasetName: String? = nil

    init(items: [ExperimentItemResult], runScores: [Score], usage: UsageTotals, evaluatorUsage: UsageTotals) {
        self.evaluatorUsage = evaluatorUsage
        itemCount = items.count
        errorCount = items.lazy.filter { $0.error != nil }.count
        self.runScores = runScores
        self.usage = usage
        (latencyP50, latencyP95) = Self.latencyPercentiles(items.map { $0.latency.seconds })
        var order: [String] = []
        var byName: [String: [ScoreValue]] = [:]
        for item in items {
            for score in item.scores {
                if byName[score.name] == nil { order.append(score.name) }
                byName[score.name, default: []].append(score.value)
            }
        }
        scores = order.map { ScoreStatistics(ScoreAggregate(name: $0, values: byName[$0]!)) }
    }

    static func latencyPercentiles(_ seconds: [Double]) -> (Duration?, Duration?) {
        let sorted = seconds.sorted()
        return (Statistics.percentile(sorted, 0.5).map { .seconds($0) }, Statistics.percentile(sorted, 0.95).map { .seconds($0) })
    }

    /// The statistics of the score `name`, or `nil`.
    public func score(_ name: String) -> ScoreStatistics? { scores.first { $0.name == name } }

    /// A readable multi-line summary for a terminal; the title, score names and categories pass
    /// through ``ReportEscaping/terminal(_:)``.
    public func format(title: String) -> String {
        let t = ReportEscaping.terminal
        var lines = [t(title)]
        let failed = errorCount > 0 ? ", \(errorCount) failed" : ""
        lines.append("  items: \(itemCount)\(failed)")
        if let p50 = latencyP50, let p95 = latencyP95 {
            lines.append("  latency: p50 \(formatDuration(p50)), p95 \(formatDuration(p95))")
        }
        for (label, usage) in [("tokens", usage), ("evaluator tokens", evaluatorUsage)]
            where usage.totalTokens > 0 || usage.pricedGenerations > 0 {
            var text = "  \(label): \(usage.totalTokens) (\(usage.promptTokens) prompt, \(usage.completionTokens) completion)"
            if usage.pricedGenerations > 0 { text += String(format: ", cost %.4f", usage.cost) }
            lines.append(text)
        }
        for s in scores {
            var text = "  \(t(s.name)): "
            if let rate = s.passRate {
                text += String(format: "%.1f%% pass", rate * 100) + " (n=\(s.count))"
            } else if let mean = s.mean {
                text += String(format: "mean %.3f", mean)
                if let ci = s.confidenceInterval95 { text += String(format: " [95%% CI %.3f, %.3f]", ci.lowerBound, ci.upperBound) }
                if let sd = s.standardDeviation { text += String(format: ", sd %.3f", sd) }
                if let lo = s.min, let hi = s.max { text += String(format: ", min %.3f, max %.3f", lo, hi) }
                text += " (n=\(s.count))"
            } else if let categories = s.categories {
                text += categories.sorted { $0.value > $1.value || $0.value == $1.value && $0.key < $1.key }
                    .map { "\(t($0.key)) \($0.value)" }.joined(separator: ", ")
            } else if s.count > 0 {
                text += "\(s.count) text values"
            } else {
                text += "no values"
            }
            if s.unscored > 0 { text += ", \(s.unscored) unscored" }
            lines.append(text)
        }
        for score in runScores { lines.append("  \(t(score.name)) (run): \(t(score.value.description))") }
        return lines.joined(separator: "\n")
    }
}

/// What the statistics of one score name are computed from, whether the values are in memory or
/// aggregated by SQL. The spread is kept as a mean and a sum of squared deviations from it (two
/// passes), never as a sum of squares: see ``Statistics/meanAndVariance(_:)``.
struct ScoreAggregate {
    var name: String
    var numericCount = 0
    var booleanCount = 0
    var categoricalCount = 0
    var textCount = 0
    var unscoredCount = 0
    /// Mean of the numeric and boolean values (booleans as 1 and 0).
    var mean = 0.0
    /// Σ (x − mean)² over those values.
    var squaredDeviations = 0.0
    /// Σ (x − mean): zero up to rounding; it corrects the rounding of the mean (corrected two-pass).
    var deviations = 0.0
    var min: Double?
    var max: Double?
    var median: Double?
    var p95: Double?
    var categories: [String: Int] = [:]

    init(name: String) { self.name = name }

    init(name: String, values: [ScoreValue]) {
        self.name = name
        var numbers: [Double] = []
        for value in values {
            switch value {
            case .numeric(let v): numericCount += 1; numbers.append(v)
            case .boolean(let b): booleanCount += 1; numbers.append(b ? 1 : 0)
            case .categorical(let c): categoricalCount += 1; categories[c, default: 0] += 1
            case .text: textCount += 1
            case .unscored: unscoredCount += 1
            }
        }
        if !numbers.isEmpty {
            mean = numbers.reduce(0, +) / Double(numbers.count)
            for x in numbers {
                squaredDeviations += (x - mean) * (x - mean)
                deviations += x - mean
            }
        }
        numbers.sort()
        min = numbers.first
        max = numbers.last
        median = Statistics.percentile(numbers, 0.5)
        p95 = Statistics.percentile(numbers, 0.95)
    }

    var numberCount: Int { numericCount + booleanCount }

    /// The sample variance (n − 1), corrected two-pass: (Σ(x − m)² − (Σ(x − m))²/n) / (n − 1).
    var variance: Double {
        guard numberCount > 1 else { return 0 }
        let n = Double(numberCount)
        return Swift.max(0, (squaredDeviations - deviations * deviations / n) / (n - 1))
    }
}

extension ScoreStatistics {
    init(_ a: ScoreAggregate) {
        name = a.name
        let kinds = [("numeric", a.numericCount), ("boolean", a.booleanCount), ("categorical", a.categoricalCount),
                     ("text", a.textCount)].filter { $0.1 > 0 }
        dataType = kinds.count == 1 ? kinds[0].0 : kinds.isEmpty ? "unscored" : "mixed"
        count = a.numberCount + a.categoricalCount + a.textCount
        unscored = a.unscoredCount
        if a.numberCount > 0 {
            let n = Double(a.numberCount)
            let mean = a.mean
            self.mean = mean
            let booleans = a.booleanCount == a.numberCount
            if booleans { range = 0...1 }
            if a.numberCount > 1 {
                let sd = a.variance.squareRoot()
                standardDeviation = sd
                standardError = sd / n.squareRoot()
            }
            let interval = booleans
                ? Statistics.wilsonInterval(successes: Int((mean * n).rounded()), count: a.numberCount)
                : Statistics.studentTInterval(mean: mean, variance: a.variance, count: a.numberCount, range: range)
            confidenceInterval95 = interval?.range
            intervalMethod = interval?.method
            min = a.min
            max = a.max
            median = a.median
            p95 = a.p95
            if booleans { passRate = mean }
        }
        if a.categoricalCount > 0 { categories = a.categories }
    }

    /// These statistics with the score's range declared (for a score whose values cannot leave it,
    /// such as a similarity in [0, 1]): the interval is clipped to it.
    public func declaringRange(_ bounds: ClosedRange<Double>) -> ScoreStatistics {
        var copy = self
        copy.range = bounds
        if let ci = confidenceInterval95, let method = intervalMethod {
            copy.confidenceInterval95 = ConfidenceInterval(lower: ci.lowerBound, upper: ci.upperBound, method: method)
                .clipped(to: bounds).range
        }
        return copy
    }
}

extension RunSummary {
    /// The summary with score ranges declared by name (see ``ScoreStatistics/declaringRange(_:)``).
    public func declaringRanges(_ ranges: [String: ClosedRange<Double>]) -> RunSummary {
        var copy = self
        copy.scores = scores.map { s in ranges[s.name].map { s.declaringRange($0) } ?? s }
        return copy
    }

    /// The summary of `run`: its name and dataset's name set, intervals clipped to the ranges it
    /// recorded.
    func of(_ run: ExperimentRun) -> RunSummary {
        var copy = declaringRanges(run.declaredScoreRanges)
        copy.runName = run.name
        copy.datasetName = run.datasetName
        return copy
    }
}


extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

func formatDuration(_ d: Duration) -> String {
    let s = d.seconds
    if s < 0.001 { return String(format: "%.0f µs", s * 1e6) }
    if s < 1 { return String(format: "%.1f ms", s * 1e3) }
    return String(format: "%.2f s", s)
}

extension RunSummary {
    /// Statistics computed by SQL over the stored results of a run, without loading them: aggregates
    /// and percentiles come from the covering index on (run_id, name, value).
    init(_ db: Connection, runID: String) throws {
        let run = [SQLValue.text(runID)]
        // One pass over the run's items: counts, latencies and the tasks' usage.
        var latencies: [Double] = []
        var errors = 0
        var usage = UsageTotals()
        let items = try db.cached("""
            SELECT latency_ms, error IS NOT NULL, generations, prompt_tokens, completion_tokens, total_tokens, cost,
                cost IS NOT NULL
            FROM run_items WHERE run_id = ?
            """)
        try items.bind(run)
        defer { items.reset() }
        while try items.step() {
            latencies.append(items.double(0) / 1000)
            errors += items.int(1)
            usage.generations += items.int(2)
            usage.promptTokens += items.int(3)
            usage.completionTokens += items.int(4)
            usage.totalTokens += items.int(5)
            usage.cost += items.double(6)
            usage.pricedGenerations += items.int(7) * items.int(2)
        }
        (itemCount, errorCount) = (latencies.count, errors)
        (latencyP50, latencyP95) = Self.latencyPercentiles(latencies)
        self.usage = usage
        // Two passes, for a variance that stays exact for values near 10⁸ as near 10⁻⁸: the mean per
        // name first, then the squared deviations from it (and their plain sum, which corrects the
        // rounding of the mean). Both passes read the covering index only.
        var aggregates = try db.query("""
            WITH means AS (
                SELECT name, avg(value) AS mean FROM scores
                WHERE run_id = ?1 AND run_item_id IS NOT NULL AND data_type IN ('numeric', 'boolean') GROUP BY name
            )
            SELECT s.name, sum(s.data_type = 'numeric'), sum(s.data_type = 'boolean'), sum(s.data_type = 'categorical'),
                sum(s.data_type = 'text'), sum(s.data_type = 'unscored'), m.mean,
                total(CASE WHEN s.data_type IN ('numeric', 'boolean') THEN (s.value - m.mean) * (s.value - m.mean) END),
                total(CASE WHEN s.data_type IN ('numeric', 'boolean') THEN s.value - m.mean END),
                min(CASE WHEN s.data_type IN ('numeric', 'boolean') THEN s.value END),
                max(CASE WHEN s.data_type IN ('numeric', 'boolean') THEN s.value END), min(s.rowid)
            FROM scores s LEFT JOIN means m ON m.name = s.name
            WHERE s.run_id = ?1 AND s.run_item_id IS NOT NULL GROUP BY s.name ORDER BY min(s.rowid)
            """, run) { s -> ScoreAggregate in
            var a = ScoreAggregate(name: s.text(0)!)
            a.numericCount = s.int(1)
            a.booleanCount = s.int(2)
            a.categoricalCount = s.int(3)
            a.textCount = s.int(4)
            a.unscoredCount = s.int(5)
            a.mean = s.optionalDouble(6) ?? 0
            a.squaredDeviations = s.double(7)
            a.deviations = s.double(8)
            a.min = s.optionalDouble(9)
            a.max = s.optionalDouble(10)
            return a
        }
        let nth = try db.cached("""
            SELECT value FROM scores WHERE run_id = ? AND name = ? AND run_item_id IS NOT NULL AND value IS NOT NULL
            ORDER BY value LIMIT 2 OFFSET ?
            """)
        func percentile(_ name: String, count: Int, _ p: Double) throws -> Double? {
            guard count > 0 else { return nil }
            let h = Double(count - 1) * p
            let lower = Int(h.rounded(.down))
            let values = try nth.query([.text(runID), .text(name), .integer(Int64(lower))]) { $0.double(0) }
            guard let low = values.first else { return nil }
            let high = values.count > 1 ? values[1] : low
            return low + (h - Double(lower)) * (high - low)
        }
        for i in aggregates.indices where aggregates[i].numberCount > 0 {
            aggregates[i].median = try percentile(aggregates[i].name, count: aggregates[i].numberCount, 0.5)
            aggregates[i].p95 = try percentile(aggregates[i].name, count: aggregates[i].numberCount, 0.95)
        }
        let categories = try db.query("""
            SELECT name, string_value, count(*) FROM scores
            WHERE run_id = ? AND run_item_id IS NOT NULL AND data_type = 'categorical' GROUP BY name, string_value
            """, run) { ($0.text(0)!, $0.text(1) ?? "", $0.int(2)) }
        for (name, category, count) in categories {
            if let i = aggregates.firstIndex(where: { $0.name == name }) { aggregates[i].categories[category] = count }
        }
        scores = aggregates.map(ScoreStatistics.init)
        runScores = try db.query("""
            SELECT id, name, data_type, value, string_value, comment, source, evaluator, run_id, run_item_id,
                trace_id, observation_id, created_us
            FROM scores WHERE run_id = ? AND run_item_id IS NULL AND trace_id IS NULL ORDER BY id
            """, run, XeroML.readScore)
        evaluatorUsage = try XeroML.evaluatorUsage(db, runID: runID)
    }

    /// The summary as JSON, for tools.
    public var jsonValue: JSONValue {
        func number(_ d: Double?) -> JSONValue { d.map { $0.isFinite ? .double($0) : .null } ?? .null }
        var scoreObjects: [JSONValue] = []
        for s in scores {
            var o: [String: JSONValue] = [
                "name": .string(s.name), "data_type": .string(s.dataType), "count": .int(Int64(s.count)),
                "unscored": .int(Int64(s.unscored)), "mean": number(s.mean), "standard_deviation": number(s.standardDeviation),
                "standard_error": number(s.standardError), "min": number(s.min), "median": number(s.median),
                "p95": number(s.p95), "max": number(s.max), "pass_rate": number(s.passRate),
            ]
            if let ci = s.confidenceInterval95 { o["ci95"] = [number(ci.lowerBound), number(ci.upperBound)] }
            if let categories = s.categories { o["categories"] = .object(categories.mapValues { .int(Int64($0)) }) }
            scoreObjects.append(.object(o))
        }
        return [
            "items": .int(Int64(itemCount)), "errors": .int(Int64(errorCount)), "scores": .array(scoreObjects),
            "latency_p50_ms": number(latencyP50?.milliseconds), "latency_p95_ms": number(latencyP95?.milliseconds),
            "tokens": ["prompt": .int(Int64(usage.promptTokens)), "completion": .int(Int64(usage.completionTokens)),
                       "total": .int(Int64(usage.totalTokens))],
            // Unknown (no priced generation) is null, not 0.
            "cost": usage.pricedGenerations > 0 ? .double(usage.cost) : .null,
            "evaluator_tokens": .int(Int64(evaluatorUsage.totalTokens)),
            "evaluator_cost": evaluatorUsage.pricedGenerations > 0 ? .double(evaluatorUsage.cost) : .null,
            "run_scores": .object(Dictionary(runScores.map { ($0.name, JSONValue.string($0.value.description)) },
                                             uniquingKeysWith: { first, _ in first })),
        ]
    }
}

/// The repetitions of one item: how its scores vary from run to run of the same input.
public struct ItemRepetitions: Sendable, Hashable {
    /// Mean and sample variance of one score over an item's repetitions.
    public struct Spread: Sendable, Hashable {
        public var count: Int
        public var mean: Double
        /// Sample variance (n − 1); 0 with a single value.
        public var variance: Double
        public var standardDeviation: Double { variance.squareRoot() }
    }

    /// The dataset item, or `nil` for local items (grouped by input).
    public var datasetItemID: String?
    public var input: JSONValue
    /// The results of the item, by repetition.
    public var results: [ExperimentItemResult]
    /// How many repetitions failed.
    public var errorCount: Int { results.lazy.filter { $0.error != nil }.count }
    /// Per numeric or boolean score name: mean and variance over the repetitions that have it.
    public var scores: [String: Spread]
}

extension ExperimentResults {
    /// Results grouped by item, in first-seen order, with the spread of each score over repetitions.
    public var byItem: [ItemRepetitions] {
        var order: [String] = []
        var groups: [String: [ExperimentItemResult]] = [:]
        for result in items {
            let key = result.datasetItemID ?? "input:" + result.input.jsonString
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(result)
        }
        return order.map { key in
            let results = groups[key]!.sorted { $0.repetition < $1.repetition }
            var values: [String: [Double]] = [:]
            for result in results {
                for score in result.scores { if let v = score.value.numericValue { values[score.name, default: []].append(v) } }
            }
            let spreads = values.mapValues { v -> ItemRepetitions.Spread in
                let (mean, variance) = Statistics.meanAndVariance(v)
                return .init(count: v.count, mean: mean, variance: variance)
            }
            return ItemRepetitions(datasetItemID: results[0].datasetItemID, input: results[0].input, results: results,
                                   scores: spreads)
        }
    }
}
