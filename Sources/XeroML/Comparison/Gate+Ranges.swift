import Foundation

extension Gate {
    /// The values `metric` can take in `results`, when known: [0, 1] for `error_rate` and for a
    /// score whose values are all booleans (a pass rate), the range given in `scoreRanges` for a
    /// score listed there, [0, ∞) for latencies and cost; `nil` (anything goes) for other scores.
    public static func knownRange(of metric: GateMetric, results: ExperimentResults,
                                  scoreRanges: [String: ClosedRange<Double>] = [:]) -> ClosedRange<Double>? {
        switch metric {
        case .errorRate: return 0...1
        case .latencyP50, .latencyP95, .cost: return 0...Double.infinity
        case .score(let name):
            if let declared = scoreRanges[name] { return declared }
            return results.summary.score(name)?.dataType == "boolean" ? 0...1 : nil
        }
    }

    /// Why a threshold condition cannot mean anything for `results`: its value lies outside the
    /// metric's known range (``knownRange(of:results:scoreRanges:)``), as `--min accuracy=85` does
    /// for a pass rate. `nil` when the condition is fine.
    public static func rangeProblem(_ condition: GateCondition, results: ExperimentResults,
                                    scoreRanges: [String: ClosedRange<Double>] = [:]) -> String? {
        let metric: GateMetric, threshold: Double
        switch condition {
        case .minimum(let m, let v), .maximum(let m, let v): (metric, threshold) = (m, v)
        case .noSignificantRegression: return nil
        }
        guard let range = knownRange(of: metric, results: results, scoreRanges: scoreRanges),
              !range.contains(threshold) else { return nil }
        let upper = range.upperBound.isFinite ? formatNumber(range.upperBound) : "∞"
        var message = "the threshold \(GateCondition.format(metric, threshold)) of \(metric) is outside its range "
            + "[\(formatNumber(range.lowerBound)), \(upper)\(range.upperBound.isFinite ? "]" : ")")"
        if range == 0...1 && threshold > 1 && threshold <= 100 {
            message += " (a rate: write \(formatNumber(threshold / 100)) or \(formatNumber(threshold))%)"
        }
        return message
    }

    /// Refuses conditions whose threshold lies outside the metric's known range, with the range in
    /// the message. - Throws: ``XeroMLError/Code/invalidArgument``.
    public static func validateThresholds(_ conditions: [GateCondition], results: ExperimentResults,
                                          scoreRanges: [String: ClosedRange<Double>] = [:]) throws {
        for condition in conditions {
            if let problem = rangeProblem(condition, results: results, scoreRanges: scoreRanges) {
                throw XeroMLError(.invalidArgument, problem)
            }
        }
    }
}
