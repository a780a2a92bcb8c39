import Foundation
import XeroMLSQLite

/// Running mean and variance of a stream of values: Welford's update of the values shifted by the
/// first one, numerically stable for values of any magnitude (no sum of squares is formed, and the
/// shift keeps the mean of what is accumulated near zero for clustered values such as latencies in
/// nanoseconds).
public struct RunningVariance: Sendable, Hashable {
    /// How many values were added.
    public private(set) var count = 0
    private var shift = 0.0
    private var shiftedMean = 0.0
    /// Σ (x − mean)².
    public private(set) var squaredDeviations = 0.0

    /// No values yet.
    public init() {}

    /// Adds one value.
    public mutating func add(_ x: Double) {
        if count == 0 { shift = x }
        count += 1
        let y = x - shift
        let delta = y - shiftedMean
        shiftedMean += delta / Double(count)
        squaredDeviations += delta * (y - shiftedMean)
    }

    /// The mean of the values (NaN before the first).
    public var mean: Double { count > 0 ? shift + shiftedMean : .nan }

    /// The sample variance (n − 1); 0 for fewer than two values.
    public var variance: Double { count > 1 ? Swift.max(0, squaredDeviations / Double(count - 1)) : 0 }
}

/// Small, dependency-free statistics used by summaries and comparisons. docs/statistics.md gives
/// every formula and the coverage measured for each interval.
public enum Statistics {
    /// Mean, sample standard deviation, standard error and a t-based 95% confidence interval.
    public static func describe(_ values: [Double]) -> (mean: Double, standardDeviation: Double?, standardError: Double?,
                                                       confidenceInterval95: ClosedRange<Double>?) {
        let stats = ScoreStatistics(ScoreAggregate(name: "", values: values.map(ScoreValue.numeric)))
        return (stats.mean ?? .nan, stats.standardDeviation, stats.standardError, stats.confidenceInterval95)
    }

    /// The mean and the sample variance (n − 1) of `values`, by the corrected two-pass algorithm
    /// (Chan, Golub & LeVeque 1983): m = Σx/n, then (Σ(x − m)² − (Σ(x − m))²/n)/(n − 1). Exact to a
    /// few units in the last place for values near 10⁸ or 10⁻⁸ alike; the variance is 0 for fewer
    /// than two values and never negative.
    public static func meanAndVariance(_ values: [Double]) -> (mean: Double, variance: Double) {
        guard !values.isEmpty else { return (.nan, 0) }
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        guard values.count > 1 else { return (mean, 0) }
        var squares = 0.0, deviations = 0.0
        for x in values {
            squares += (x - mean) * (x - mean)
            deviations += x - mean
        }
        return (mean, Swift.max(0, (squares - deviations * deviations / n) / (n - 1)))
    }

    /// The sample variance (n − 1) of `values` (``meanAndVariance(_:)``).
    public static func sampleVariance(_ values: [Double]) -> Double { meanAndVariance(values).variance }

    /// Student's t 95% interval of the mean, mean ± t(0.975, n − 1) · s/√n, clipped to `range` when
    /// given; `nil` for fewer than two values.
    public static func studentTInterval(_ values: [Double], range: ClosedRange<Double>? = nil) -> ConfidenceInterval? {
        let (mean, variance) = meanAndVariance(values)
        return studentTInterval(mean: mean, variance: variance, count: values.count, range: range)
    }

    /// Student's t 95% interval from a mean, a sample variance and a count.
    public static func studentTInterval(mean: Double, variance: Double, count: Int, range: ClosedRange<Double>? = nil)
        -> ConfidenceInterval?
    {
        guard count > 1, mean.isFinite, variance.isFinite else { return nil }
        let half = tQuantile975(degreesOfFreedom: count - 1) * (variance / Double(count)).squareRoot()
        return ConfidenceInterval(lower: mean - half, upper: mean + half, method: .studentT).clipped(to: range)
    }

    /// Wilson's 95% score interval of a proportion (Wilson 1927): always inside [0, 1], and close to
    /// nominal coverage at small n and near 0 or 1, where the normal (Wald) interval fails.
    public static func wilsonInterval(successes: Int, count: Int) -> ConfidenceInterval? {
        guard count > 0, (0...count).contains(successes) else { return nil }
        let z = 1.959963984540054, n = Double(count), p = Double(successes) / n
        let denominator = 1 + z * z / n
        let center = (p + z * z / (2 * n)) / denominator
        let half = z / denominator * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()
        // The exact bounds at 0 and n successes are 0 and 1; rounding can miss them by an ulp.
        let lower = successes == 0 ? 0 : Swift.max(0, center - half)
        let upper = successes == count ? 1 : Swift.min(1, center + half)
        return ConfidenceInterval(lower: lower, upper: upper, method: .wilson)
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

    /// The 97.5% quantile of Student's t distribution (two-sided 95%): a table to 9 decimals for
    /// df ≤ 30, and the Cornish–Fisher expansion in 1/df to the fourth order above (within 3·10⁻⁸
    /// at df = 31, 10⁻¹⁰ at df = 100).
    public static func tQuantile975(degreesOfFreedom df: Int) -> Double {
        let table: [Double] = [
            12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252,
            2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688,
            2.131449546, 2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447, 2.079613845,
            2.073873068, 2.068657610, 2.063898562, 2.059538553, 2.055529439, 2.051830516, 2.048407142,
            2.045229642, 2.042272456,
        ]
        if df >= 1 && df <= 30 { return table[df - 1] }
        let z = 1.959963984540054, v = Double(Swift.max(df, 1))
        let g1 = (pow(z, 3) + z) / 4
        let g2 = (5 * pow(z, 5) + 16 * pow(z, 3) + 3 * z) / 96
        let g3 = (3 * pow(z, 7) + 19 * pow(z, 5) + 17 * pow(z, 3) - 15 * z) / 384
        let g4 = (79 * pow(z, 9) + 776 * pow(z, 7) + 1482 * pow(z, 5) - 1920 * pow(z, 3) - 945 * z) / 92160
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
    }
}
