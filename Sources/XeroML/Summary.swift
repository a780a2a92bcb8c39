import Foundation

/// Token and cost totals of the generations recorded in a run's traces.
public struct UsageTotals: Sendable, Hashable {
    public var promptTokens = 0
    public var completionTokens = 0
    public var totalTokens = 0
    public var cost = 0.0
    public var generations = 0
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
    /// Tokens and cost of the run's generations.
    public let usage: UsageTotals

    public var startIndex: Int { items.startIndex }
    public var endIndex: Int { items.endIndex }
    public subscript(position: Int) -> ExperimentItemResult { items[position] }

    /// Statistics per score name, errors and latency.
    public var summary: RunSummary { RunSummary(items: items, runScores: runScores, usage: usage) }

    /// A readable multi-line summary of the run.
    public func format() -> String { summary.format(title: "Run \"\(run.name)\"" + (run.datasetName.map { " on \($0)" } ?? "")) }
}

/// Summary statistics of one score name over the items of a run.
public struct ScoreStatistics: Sendable, Hashable, Codable {
    public var name: String
    /// "numeric", "boolean", "categorical" or "text".
    public var dataType: String
    /// Items with this score.
    public var count: Int
    public var mean: Double?
    /// Sample standard deviation (n − 1).
    public var standardDeviation: Double?
    /// Standard error of the mean: sd / √n.
    public var standardError: Double?
    /// 95% confidence interval of the mean (Student's t with n − 1 degrees of freedom).
    public var confidenceInterval95: ClosedRange<Double>?
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
    public var usage: UsageTotals

    init(items: [ExperimentItemResult], runScores: [Score], usage: UsageTotals) {
        itemCount = items.count
        errorCount = items.lazy.filter { $0.error != nil }.count
        self.runScores = runScores
        self.usage = usage
        let latencies = items.map { $0.latency }.sorted()
        latencyP50 = Statistics.percentile(latencies.map(\.seconds), 0.5).map { Duration.seconds($0) }
        latencyP95 = Statistics.percentile(latencies.map(\.seconds), 0.95).map { Duration.seconds($0) }
        var order: [String] = []
        var byName: [String: [ScoreValue]] = [:]
        for item in items {
            for score in item.scores {
                if byName[score.name] == nil { order.append(score.name) }
                byName[score.name, default: []].append(score.value)
            }
        }
        scores = order.map { ScoreStatistics(name: $0, values: byName[$0]!) }
    }

    /// The statistics of the score `name`, or `nil`.
    public func score(_ name: String) -> ScoreStatistics? { scores.first { $0.name == name } }

    /// A readable multi-line summary.
    public func format(title: String) -> String {
        var lines = [title]
        let failed = errorCount > 0 ? ", \(errorCount) failed" : ""
        lines.append("  items: \(itemCount)\(failed)")
        if let p50 = latencyP50, let p95 = latencyP95 {
            lines.append("  latency: p50 \(formatDuration(p50)), p95 \(formatDuration(p95))")
        }
        if usage.generations > 0 {
            var text = "  tokens: \(usage.totalTokens) (\(usage.promptTokens) prompt, \(usage.completionTokens) completion)"
            if usage.cost > 0 { text += String(format: ", cost %.4f", usage.cost) }
            lines.append(text)
        }
        for s in scores {
            var text = "  \(s.name): "
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
                    .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            } else {
                text += "\(s.count) text values"
            }
            lines.append(text)
        }
        for score in runScores { lines.append("  \(score.name) (run): \(score.value)") }
        return lines.joined(separator: "\n")
    }
}

extension ScoreStatistics {
    init(name: String, values: [ScoreValue]) {
        self.name = name
        dataType = values.first?.dataType ?? "numeric"
        count = values.count
        let numbers = values.compactMap(\.numericValue)
        if numbers.count == values.count, !numbers.isEmpty {
            let stats = Statistics.describe(numbers)
            mean = stats.mean
            standardDeviation = stats.standardDeviation
            standardError = stats.standardError
            confidenceInterval95 = stats.confidenceInterval95
            let sorted = numbers.sorted()
            min = sorted.first
            max = sorted.last
            median = Statistics.percentile(sorted, 0.5)
            p95 = Statistics.percentile(sorted, 0.95)
            if values.allSatisfy({ if case .boolean = $0 { true } else { false } }) { passRate = stats.mean }
        } else if values.allSatisfy({ if case .categorical = $0 { true } else { false } }) {
            categories = values.reduce(into: [:]) { $0[$1.stringValue ?? "", default: 0] += 1 }
        }
    }
}

/// Small, dependency-free statistics used by summaries.
public enum Statistics {
    /// Mean, sample standard deviation, standard error and a t-based 95% confidence interval.
    public static func describe(_ values: [Double]) -> (mean: Double, standardDeviation: Double?, standardError: Double?,
                                                       confidenceInterval95: ClosedRange<Double>?) {
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        guard values.count > 1 else { return (mean, nil, nil, nil) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        let sd = variance.squareRoot()
        let se = sd / n.squareRoot()
        let t = tQuantile975(degreesOfFreedom: values.count - 1)
        return (mean, sd, se, (mean - t * se)...(mean + t * se))
    }

    /// The p-th percentile (0…1) of sorted values, by linear interpolation between closest ranks
    /// (Hyndman & Fan type 7, the default of R and NumPy).
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let h = Double(sorted.count - 1) * p
        let lower = Int(h.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        return sorted[lower] + (h - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    /// The 97.5% quantile of Student's t distribution (two-sided 95%), exact to 3 decimals for
    /// df ≤ 30 (standard tables) and by the Cornish–Fisher expansion above.
    public static func tQuantile975(degreesOfFreedom df: Int) -> Double {
        let table: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        if df >= 1 && df <= 30 { return table[df - 1] }
        let z = 1.959964, v = Double(df)
        let g1 = (pow(z, 3) + z) / 4
        let g2 = (5 * pow(z, 5) + 16 * pow(z, 3) + 3 * z) / 96
        let g3 = (3 * pow(z, 7) + 19 * pow(z, 5) + 17 * pow(z, 3) - 15 * z) / 384
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v)
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
