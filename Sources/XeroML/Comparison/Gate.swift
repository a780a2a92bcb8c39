import Foundation

/// A run-level figure a gate condition can check.
public enum GateMetric: Sendable, Hashable, CustomStringConvertible {
    /// The mean of a score over the run's items (the pass rate for a boolean score).
    case score(String)
    case latencyP50
    case latencyP95
    /// Failed items / items.
    case errorRate
    /// Total cost of the run's generations.
    case cost

    /// Parses "latency_p95", "latency_p50", "error_rate", "cost", or any other text as a score name.
    public init(parsing name: String) {
        switch name {
        case "latency_p50": self = .latencyP50
        case "latency_p95": self = .latencyP95
        case "error_rate": self = .errorRate
        case "cost": self = .cost
        default: self = .score(name)
        }
    }

    public var description: String {
        switch self {
        case .score(let name): name
        case .latencyP50: "latency_p50"
        case .latencyP95: "latency_p95"
        case .errorRate: "error_rate"
        case .cost: "cost"
        }
    }

    var isLatency: Bool { self == .latencyP50 || self == .latencyP95 }
}

/// One condition of a quality gate.
public enum GateCondition: Sendable, Hashable, CustomStringConvertible {
    /// The metric must be at least the value.
    case minimum(GateMetric, Double)
    /// The metric must be at most the value (latencies in seconds).
    case maximum(GateMetric, Double)
    /// No score may regress significantly against the baseline run (paired tests, docs/comparison.md).
    case noSignificantRegression

    /// `score ≥ value`.
    public static func min(_ metric: String, _ value: Double) -> GateCondition { .minimum(GateMetric(parsing: metric), value) }
    /// `metric ≤ value`.
    public static func max(_ metric: String, _ value: Double) -> GateCondition { .maximum(GateMetric(parsing: metric), value) }

    /// Parses `NAME=VALUE` for `--min`/`--max`. Latencies take a unit: `2s`, `150ms`, `1.5m` (seconds
    /// when none); other values are plain numbers, or percentages like `85%`.
    public static func parse(_ text: String, maximum: Bool) throws -> GateCondition {
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw XeroMLError(.invalidArgument, "expected NAME=VALUE, got \"\(text)\"")
        }
        let metric = GateMetric(parsing: parts[0])
        var number = parts[1]
        var scale = 1.0
        var divisor = 1.0
        if metric.isLatency {
            for (suffix, factor) in [("ms", 0.001), ("s", 1.0), ("m", 60.0)] where number.hasSuffix(suffix) {
                number.removeLast(suffix.count)
                scale = factor
                break
            }
        } else if number.hasSuffix("%") {
            number.removeLast()
            divisor = 100  // divide, so 70% is exactly 0.7 (70 × 0.01 is 0.7000000000000001)
        }
        guard let value = Double(number), value.isFinite else {
            throw XeroMLError(.invalidArgument, "\"\(parts[1])\" is not a number in \"\(text)\"")
        }
        let threshold = value * scale / divisor
        return maximum ? .maximum(metric, threshold) : .minimum(metric, threshold)
    }

    public var description: String {
        switch self {
        case .minimum(let m, let v): "\(m) >= \(Self.format(m, v))"
        case .maximum(let m, let v): "\(m) <= \(Self.format(m, v))"
        case .noSignificantRegression: "no significant regression"
        }
    }

    static func format(_ metric: GateMetric, _ value: Double) -> String {
        metric.isLatency ? formatDuration(.seconds(value)) : formatNumber(value)
    }
}

/// An item behind a failed condition.
public struct GateItem: Sendable, Hashable {
    /// The dataset item (or `nil` for raw items) and the run item.
    public var datasetItemID: String?
    public var runItemID: String
    /// The repetition of the item (0-based).
    public var repetition: Int
    public var input: JSONValue
    public var output: JSONValue?
    public var expectedOutput: JSONValue?
    /// Why it is listed: its score, its error, its latency, or its change against the baseline.
    public var reason: String
}

/// The outcome of one condition.
public struct GateConditionResult: Sendable, Hashable {
    public var condition: GateCondition
    public var passed: Bool
    /// The measured value, when the condition has one.
    public var actual: Double?
    /// A sentence saying what was measured.
    public var detail: String
    /// The items behind a failure, worst first (at most ``Gate/maximumItemsPerCondition``).
    public var items: [GateItem]
}

/// One item of a gated run: failed (with the reason) or not.
public struct GateItemVerdict: Sendable, Hashable {
    public var item: GateItem
    /// Why the item failed, or `nil`.
    public var failure: String?
}

/// The outcome of a quality gate over a run.
public struct GateReport: Sendable, Hashable {
    public var runName: String
    public var runID: String
    public var baselineName: String?
    public var conditions: [GateConditionResult]
    /// Every item of the run, with why it failed (an error, or a score below a minimum), if it did.
    public var itemVerdicts: [GateItemVerdict] = []
    /// Why the run or the baseline is not complete (not finished, or missing results), when the gate
    /// was not told to allow partial runs: the gate then fails whatever the conditions say.
    public var incomplete: [String] = []
    /// The same reasons when partial runs were allowed on purpose: the report says so, the gate judges
    /// the results there are.
    public var partial: [String] = []

    /// Whether the runs are complete (or allowed partial) and every condition holds.
    public var passed: Bool { incomplete.isEmpty && conditions.allSatisfy(\.passed) }
    /// The conditions that failed.
    public var failures: [GateConditionResult] { conditions.filter { !$0.passed } }

    /// A readable report for a terminal: each condition with ✓/✗, then the items behind failures.
    /// Every value from the run goes through ``ReportEscaping/terminal(_:)``.
    public func format() -> String {
        let t = ReportEscaping.terminal
        var lines = ["Gate for run \"\(t(runName))\"" + (baselineName.map { " against \"\(t($0))\"" } ?? "") + ": "
                     + (passed ? "PASSED" : incomplete.isEmpty ? "FAILED" : "INCOMPLETE")]
        for reason in incomplete {
            lines.append("  ✗ incomplete: \(t(reason)) (finish or resume it, or allow partial runs on purpose)")
        }
        for reason in partial { lines.append("  ! partial (allowed): \(t(reason))") }
        for result in conditions {
            lines.append("  \(result.passed ? "✓" : "✗") \(t(result.condition.description)): \(t(result.detail))")
            for item in result.items {
                lines.append("      - \(t(Gate.describe(item.input))) → \(t(item.output.map(Gate.describe) ?? "no output")): \(t(item.reason))")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Quality gates: conditions over a run (and optionally a comparison with a baseline) that CI can
/// enforce. See docs/gate.md.
public enum Gate {
    /// How many items a failed condition lists.
    public static let maximumItemsPerCondition = 10

    /// Checks `conditions` against `results`, using `comparison` (baseline first, this run as its only
    /// candidate) for ``GateCondition/noSignificantRegression``.
    public static func evaluate(_ conditions: [GateCondition], results: ExperimentResults,
                                comparison: RunComparison? = nil) -> GateReport {
        let summary = results.summary
        let byRunItem = Dictionary(uniqueKeysWithValues: results.items.map { ($0.id, $0) })
        func gateItem(_ r: ExperimentItemResult, _ reason: String) -> GateItem {
            GateItem(datasetItemID: r.datasetItemID, runItemID: r.id, repetition: r.repetition, input: r.input, output: r.output,
                     expectedOutput: r.expectedOutput, reason: reason)
        }
        var outcomes: [GateConditionResult] = []
        var minimums: [String: Double] = [:]
        for condition in conditions {
            switch condition {
            case .minimum(let metric, let threshold), .maximum(let metric, let threshold):
                let isMinimum = if case .minimum = condition { true } else { false }
                if case .score(let name) = metric, isMinimum { minimums[name] = threshold }
                if let problem = rangeProblem(condition, results: results, scoreRanges: comparison?.options.scoreRanges ?? [:]) {
                    outcomes.append(GateConditionResult(condition: condition, passed: false, actual: nil, detail: problem, items: []))
                    continue
                }
                let actual = value(of: metric, summary: summary, results: results)
                guard let actual else {
                    outcomes.append(GateConditionResult(condition: condition, passed: false, actual: nil,
                                                        detail: "no value: the run has no \(metric)", items: []))
                    continue
                }
                let passed = isMinimum ? actual >= threshold : actual <= threshold
                var detail = "\(GateCondition.format(metric, actual))"
                if case .score(let name) = metric, let stats = summary.score(name) {
                    detail += " over \(stats.count) items"
                    if stats.unscored > 0 { detail += ", \(stats.unscored) unscored" }
                }
                var items: [GateItem] = []
                if !passed {
                    items = worstItems(metric, results: results, threshold: threshold, lowIsBad: isMinimum)
                        .map { gateItem($0.0, $0.1) }
                }
                outcomes.append(GateConditionResult(condition: condition, passed: passed, actual: actual,
                                                    detail: detail, items: items))
            case .noSignificantRegression:
                guard let comparison else {
                    outcomes.append(GateConditionResult(condition: condition, passed: false, actual: nil,
                                                        detail: "needs a baseline run", items: []))
                    continue
                }
                let regressions = comparison.significantRegressions
                let errors = comparison.errorComparisons.first
                let moreErrors = errors?.significantRegression == true
                var detail = regressions.isEmpty
                    ? "none of \(Set(comparison.scores.map(\.name)).count) scores regressed significantly (α = \(formatNumber(comparison.options.alpha)))"
                    : regressions.map { s in
                        "\(s.name) regressed: mean \(formatSigned(s.meanDifference)), p = \(String(format: "%.3g", s.pValue ?? 1))"
                    }.joined(separator: "; ")
                if let errors, moreErrors {
                    let text = "errors rose: \(errors.newErrors) new, \(errors.fixedErrors) fixed, p = \(String(format: "%.3g", errors.pValue))"
                    detail = regressions.isEmpty ? text : detail + "; " + text
                }
                let regressedNames = Set(regressions.map(\.name))
                let items = comparison.items.compactMap { item -> GateItem? in
                    guard let outcome = item.outcomes.last ?? nil,
                          let result = outcome.runItemIDs.first.flatMap({ byRunItem[$0] }) else { return nil }
                    // A task that newly fails is listed whether or not the baseline had scores for it.
                    if moreErrors, let base = item.outcomes.first ?? nil, !base.failed, outcome.failed {
                        return gateItem(result, "new error: \(outcome.error ?? "")")
                    }
                    let changed = item.changes.first?.filter { regressedNames.contains($0.key) && $0.value == .regressed }
                    guard let changed, !changed.isEmpty else { return nil }
                    return gateItem(result, changed.keys.sorted().map { "\($0) regressed" }.joined(separator: ", "))
                }
                outcomes.append(GateConditionResult(condition: condition, passed: regressions.isEmpty && !moreErrors,
                                                    actual: nil, detail: detail,
                                                    items: Array(items.prefix(maximumItemsPerCondition))))
            }
        }
        var report = GateReport(runName: results.run.name, runID: results.run.id,
                                baselineName: comparison?.baseline.name, conditions: outcomes)
        report.itemVerdicts = results.items.map { r in
            var failure: String?
            if let error = r.error {
                failure = "error: \(error)"
            } else {
                for (name, threshold) in minimums.sorted(by: { $0.key < $1.key }) {
                    guard let score = r.scoreValue(name) else { continue }
                    if case .unscored(let reason) = score { failure = "\(name) unscored: \(reason)"; break }
                    if let v = score.numericValue, v < threshold { failure = "\(name) = \(score) (< \(formatNumber(threshold)))"; break }
                }
            }
            return GateItemVerdict(item: gateItem(r, failure ?? "ok"), failure: failure)
        }
        return report
    }

    static func value(of metric: GateMetric, summary: RunSummary, results: ExperimentResults) -> Double? {
        switch metric {
        case .score(let name): summary.score(name)?.mean
        case .latencyP50: summary.latencyP50?.seconds
        case .latencyP95: summary.latencyP95?.seconds
        case .errorRate: summary.itemCount > 0 ? Double(summary.errorCount) / Double(summary.itemCount) : nil
        case .cost: results.usage.pricedGenerations > 0 ? results.usage.cost : nil
        }
    }

    /// The items on the wrong side of `threshold` (errors first, then the worst scores), at most
    /// ``maximumItemsPerCondition``.
    static func worstItems(_ metric: GateMetric, results: ExperimentResults, threshold: Double, lowIsBad: Bool)
        -> [(ExperimentItemResult, String)]
    {
        let limit = maximumItemsPerCondition
        switch metric {
        case .score(let name):
            let failed = results.items.filter { $0.error != nil }.map { ($0, "error: \($0.error!)") }
            let scored = results.items.compactMap { r -> (ExperimentItemResult, Double)? in
                guard let v = r.score(name), lowIsBad ? v < threshold : v > threshold else { return nil }
                return (r, v)
            }.sorted { lowIsBad ? $0.1 < $1.1 : $0.1 > $1.1 }
            let unscored = results.items.compactMap { r -> (ExperimentItemResult, String)? in
                if case .unscored(let reason)? = r.scoreValue(name) { return (r, "unscored: \(reason)") }
                return nil
            }
            return Array((failed + scored.map { ($0.0, "\(name) = \(r4($0.1))") } + unscored).prefix(limit))
        case .latencyP50, .latencyP95:
            let wrongSide = results.items.filter { lowIsBad ? $0.latency.seconds < threshold : $0.latency.seconds > threshold }
            return wrongSide.sorted { lowIsBad ? $0.latency < $1.latency : $0.latency > $1.latency }
                .prefix(limit).map { ($0, "latency \(formatDuration($0.latency))") }
        case .errorRate:
            return results.items.filter { $0.error != nil }.prefix(limit).map { ($0, "error: \($0.error!)") }
        case .cost:
            return []
        }
    }

    static func describe(_ value: JSONValue) -> String {
        let text = value.displayText.replacingOccurrences(of: "\n", with: " ")
        return text.count > 60 ? String(text.prefix(59)) + "…" : text
    }
}

func r4(_ v: Double) -> String { formatNumber((v * 10_000).rounded() / 10_000) }

func formatSigned(_ v: Double?) -> String {
    guard let v else { return "n/a" }
    return (v >= 0 ? "+" : "") + String(format: "%.4g", v)
}

extension ExperimentResults {
    /// Checks quality-gate conditions against these results, e.g.
    /// `results.gate([.min("accuracy", 0.85), .max("latency_p95", 2)])`.
    public func gate(_ conditions: [GateCondition], comparison: RunComparison? = nil) -> GateReport {
        Gate.evaluate(conditions, results: self, comparison: comparison)
    }
}

extension XeroML {
    /// Checks quality-gate conditions against a stored run, comparing it with `baseline` when given.
    ///
    /// By default both runs must be complete: finished, with a result for every (item, repetition) of
    /// their dataset version, and the run with no fewer results than the baseline. Otherwise the report
    /// is ``GateReport/incomplete`` and fails, whatever the conditions say. With `allowPartial` the
    /// conditions judge the results there are and the report lists what is missing as
    /// ``GateReport/partial``.
    public func gate(run: String, conditions: [GateCondition], baseline: String? = nil, datasetName: String? = nil,
                     options: ComparisonOptions = ComparisonOptions(), allowPartial: Bool = false) async throws -> GateReport {
        guard let found = try await findRun(run, datasetName: datasetName) else { throw XeroMLError.notFound("run \"\(run)\"") }
        var baselineRun: ExperimentRun?
        if let baseline {
            baselineRun = try await findRun(baseline, datasetName: datasetName ?? found.datasetName)
            guard baselineRun != nil else { throw XeroMLError.notFound("baseline run \"\(baseline)\"") }
        }
        let missing = try await incompleteness(of: found, baseline: baselineRun)
        let results = try await self.results(runID: found.id)
        try Gate.validateThresholds(conditions, results: results, scoreRanges: options.scoreRanges)
        var comparison: RunComparison?
        if let baseline {
            comparison = try await compare(baseline: baseline, candidates: [found.id], datasetName: datasetName,
                                           options: options)
        } else if conditions.contains(.noSignificantRegression) {
            throw XeroMLError(.invalidArgument, "the condition \"no significant regression\" needs a baseline run")
        }
        var report = Gate.evaluate(conditions, results: results, comparison: comparison)
        if allowPartial { report.partial = missing } else { report.incomplete = missing }
        return report
    }
}
