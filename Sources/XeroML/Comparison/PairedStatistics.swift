import Foundation

/// When two scores count as equal: the one tolerance of comparisons.
///
/// Two values a and b are **tied** when |a − b| ≤ max(`absolute`, `relative` · max(|a|, |b|)). A
/// paired difference between tied values counts as exactly zero everywhere: in the per-item
/// improved/regressed labels, in the mean difference and its interval, in the Wilcoxon and McNemar
/// tests. So `0.1 + 0.2` against `0.3`, or two sums of the same latencies in nanoseconds added in a
/// different order, are the same score. See docs/statistics.md.
///
/// A literal is the absolute part: `tolerance: 0.01` keeps the default relative part.
public struct Tolerance: Sendable, Hashable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    /// The largest difference that counts as none, whatever the size of the values.
    public var absolute: Double
    /// The largest difference that counts as none, as a share of the larger magnitude of the two values.
    public var relative: Double

    /// Absolute 10⁻⁹ and relative 10⁻⁹: rounding noise of double arithmetic (about 10⁻¹⁶ relative)
    /// with room to spare, and far below any difference a score can mean.
    public static let standard = Tolerance(absolute: 1e-9, relative: 1e-9)
    /// Exact equality only.
    public static let exact = Tolerance(absolute: 0, relative: 0)

    /// A tolerance; negative parts count as 0.
    public init(absolute: Double = 1e-9, relative: Double = 1e-9) {
        self.absolute = Swift.max(0, absolute)
        self.relative = Swift.max(0, relative)
    }

    /// The absolute part, with the default relative one.
    public init(floatLiteral value: Double) { self.init(absolute: value) }
    /// The absolute part, with the default relative one.
    public init(integerLiteral value: Int) { self.init(absolute: Double(value)) }

    /// Whether `a` and `b` are equal within the tolerance.
    public func ties(_ a: Double, _ b: Double) -> Bool {
        abs(a - b) <= Swift.max(absolute, relative * Swift.max(abs(a), abs(b)))
    }

    /// `candidate − baseline`, or exactly 0 when the two are tied.
    public func difference(_ candidate: Double, _ baseline: Double) -> Double {
        ties(candidate, baseline) ? 0 : candidate - baseline
    }

    /// Both parts, for messages.
    public var description: String { "absolute \(formatNumber(absolute)), relative \(formatNumber(relative))" }
}

/// A confidence interval, with how it was computed.
public struct ConfidenceInterval: Sendable, Hashable {
    /// How an interval was computed (docs/statistics.md).
    public enum Method: String, Sendable, Hashable, Codable {
        /// mean ± t(0.975, n − 1) · s / √n.
        case studentT = "student_t"
        /// Wilson's score interval of a proportion.
        case wilson
        /// Newcombe's hybrid score interval of a difference of paired proportions (his method 10).
        case newcombe
        /// Percentile bootstrap of the mean.
        case percentileBootstrap = "percentile_bootstrap"
    }

    /// The lower bound.
    public var lower: Double
    /// The upper bound.
    public var upper: Double
    /// The nominal coverage, 0.95.
    public var level: Double
    /// How the interval was computed.
    public var method: Method
    /// Whether a bound was moved to the edge of the score's range.
    public var clipped: Bool

    /// An interval from its bounds.
    public init(lower: Double, upper: Double, level: Double = 0.95, method: Method, clipped: Bool = false) {
        self.lower = lower
        self.upper = upper
        self.level = level
        self.method = method
        self.clipped = clipped
    }

    /// The bounds as a range.
    public var range: ClosedRange<Double> { lower...upper }

    /// The interval moved inside `bounds` (unchanged when `bounds` is `nil`).
    public func clipped(to bounds: ClosedRange<Double>?) -> ConfidenceInterval {
        guard let bounds else { return self }
        var result = self
        result.lower = Swift.min(Swift.max(lower, bounds.lowerBound), bounds.upperBound)
        result.upper = Swift.max(Swift.min(upper, bounds.upperBound), bounds.lowerBound)
        result.clipped = clipped || result.lower != lower || result.upper != upper
        return result
    }
}

/// Paired tests for comparing two runs item by item. Formulas and references: docs/comparison.md and
/// docs/statistics.md.
public enum PairedTests {
    /// Up to this many non-zero differences, the Wilcoxon p-value is exact.
    public static let wilcoxonExactLimit = 50

    /// The result of a Wilcoxon signed-rank test.
    public struct WilcoxonResult: Sendable, Hashable {
        /// Pairs with a non-zero difference (zero differences are dropped, Wilcoxon's own treatment).
        public var n: Int
        /// Differences that counted as zero (within the tolerance) and were dropped.
        public var zeros: Int = 0
        /// Sum of the ranks of positive differences.
        public var wPlus: Double
        /// Sum of the ranks of negative differences.
        public var wMinus: Double
        /// min(W+, W−), the two-sided statistic.
        public var statistic: Double { min(wPlus, wMinus) }
        /// Two-sided p-value.
        public var pValue: Double
        /// Whether the p-value is exact (the permutation distribution of the observed ranks, up to
        /// ``PairedTests/wilcoxonExactLimit`` non-zero differences) or from the normal approximation.
        public var exact: Bool
        /// Groups of tied absolute differences (two or more), which get average ranks.
        public var tiedGroups: Int = 0
    }

    /// The Wilcoxon signed-rank test of the differences `d` against zero, two-sided.
    ///
    /// Differences within `tolerance` of zero are zeros and are dropped; absolute differences that
    /// tie within `tolerance` get their average rank. Up to `exactLimit` non-zero differences the
    /// p-value is exact: the conditional distribution of W+ over the 2ⁿ sign assignments of the
    /// observed ranks (ties included). Above, the normal approximation with the tie correction of the
    /// variance and a continuity correction.
    public static func wilcoxonSignedRank(_ d: [Double], tolerance: Tolerance = .standard,
                                          exactLimit: Int = wilcoxonExactLimit) -> WilcoxonResult {
        let nonZero = d.filter { !tolerance.ties($0, 0) }
        let zeros = d.count - nonZero.count
        let n = nonZero.count
        guard n > 0 else { return WilcoxonResult(n: 0, zeros: zeros, wPlus: 0, wMinus: 0, pValue: 1, exact: true) }
        let order = nonZero.indices.sorted { abs(nonZero[$0]) < abs(nonZero[$1]) }
        // Doubled ranks are integers even for average ranks (the average of ranks i+1 … j+1 is (i+j+2)/2).
        var doubledRanks = [Int](repeating: 0, count: n)
        var tieSizes: [Int] = []
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && tolerance.ties(abs(nonZero[order[j + 1]]), abs(nonZero[order[i]])) { j += 1 }
            for k in i...j { doubledRanks[order[k]] = i + j + 2 }
            if j > i { tieSizes.append(j - i + 1) }
            i = j + 1
        }
        var plus2 = 0, minus2 = 0
        for k in 0..<n { if nonZero[k] > 0 { plus2 += doubledRanks[k] } else { minus2 += doubledRanks[k] } }
        var result = WilcoxonResult(n: n, zeros: zeros, wPlus: Double(plus2) / 2, wMinus: Double(minus2) / 2, pValue: 1,
                                    exact: true, tiedGroups: tieSizes.count)
        if n <= exactLimit {
            result.pValue = exactConditionalPValue(doubledRanks: doubledRanks, statistic: min(plus2, minus2))
            return result
        }
        let nd = Double(n)
        let mean = nd * (nd + 1) / 4
        var variance = nd * (nd + 1) * (2 * nd + 1) / 24
        variance -= tieSizes.reduce(0.0) { $0 + Double($1 * $1 * $1 - $1) } / 48
        result.exact = false
        guard variance > 0 else { return result }
        let t = result.statistic
        // Continuity correction: half a rank towards the mean.
        let corrected = t - mean + (t < mean ? 0.5 : t > mean ? -0.5 : 0)
        let z = corrected / variance.squareRoot()
        result.pValue = min(1, 2 * normalCDF(-abs(z)))
        return result
    }

    /// The Wilcoxon test of paired values, with each difference `candidate − baseline` set to zero
    /// when the two values tie within `tolerance` (relative to their magnitude).
    public static func wilcoxonSignedRank(baseline: [Double], candidate: [Double], tolerance: Tolerance = .standard,
                                          exactLimit: Int = wilcoxonExactLimit) -> WilcoxonResult {
        wilcoxonSignedRank(zip(candidate, baseline).map { tolerance.difference($0, $1) }, tolerance: tolerance,
                           exactLimit: exactLimit)
    }

    /// 2 · P(S ≤ t), capped at 1, for S the sum of a uniformly random subset of `doubledRanks`
    /// (each rank positive with probability ½): the exact two-sided p-value of the doubled statistic
    /// `t` = min(2W+, 2W−). Counts subsets by dynamic programming over sums; counts up to 2⁵⁰ are
    /// exact in a `Double`, and above that the relative rounding is about 10⁻¹⁶.
    static func exactConditionalPValue(doubledRanks: [Int], statistic t: Int) -> Double {
        let total = doubledRanks.reduce(0, +)
        var counts = [Double](repeating: 0, count: total + 1)
        counts[0] = 1
        var reach = 0
        for r in doubledRanks {
            reach += r
            for s in stride(from: reach, through: r, by: -1) { counts[s] += counts[s - r] }
        }
        let lowerTail = counts[0...max(0, min(t, total))].reduce(0, +)
        return min(1, 2 * lowerTail / pow(2.0, Double(doubledRanks.count)))
    }

    /// The smallest two-sided p-value the exact signed-rank test of `n` non-zero differences can give,
    /// 2 / 2ⁿ (every sign the same); 1 for n = 0.
    public static func smallestWilcoxonPValue(n: Int) -> Double { n == 0 ? 1 : min(1, 2 / pow(2.0, Double(n))) }

    /// The exact McNemar test for paired booleans: `b` pairs changed one way, `c` the other.
    /// Two-sided p = min(1, 2 · P(X ≤ min(b, c))) for X ~ Binomial(b + c, ½), exact at every count.
    public static func mcNemarExact(b: Int, c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // Sum the binomial probabilities in log space to stay finite for large n.
        var logTerms: [Double] = []
        for i in 0...k { logTerms.append(logChoose(n, i) - Double(n) * M_LN2) }
        let maxLog = logTerms.max()!
        let sum = logTerms.reduce(0) { $0 + exp($1 - maxLog) } * exp(maxLog)
        return min(1, 2 * sum)
    }

    /// The 95% interval of the mean of paired differences: Student's t (``Statistics/studentTInterval(_:range:)``).
    public static func meanDifferenceInterval(_ differences: [Double], range: ClosedRange<Double>? = nil)
        -> ConfidenceInterval?
    {
        Statistics.studentTInterval(differences, range: range)
    }

    /// Newcombe's hybrid score interval (1998, method 10) of the difference of two paired
    /// proportions, candidate − baseline, from the four cells of the paired table: `bothPass`,
    /// `passToFail` (baseline passed, candidate failed), `failToPass` and `bothFail`. Built from the
    /// Wilson intervals of the two pass rates and their correlation; always inside [−1, 1].
    public static func pairedProportionInterval(bothPass a: Int, passToFail b: Int, failToPass c: Int, bothFail d: Int)
        -> ConfidenceInterval?
    {
        let n = a + b + c + d
        guard n > 0 else { return nil }
        let nd = Double(n)
        let p1 = Double(a + b) / nd, p2 = Double(a + c) / nd  // baseline, candidate pass rates
        guard let w1 = Statistics.wilsonInterval(successes: a + b, count: n),
              let w2 = Statistics.wilsonInterval(successes: a + c, count: n) else { return nil }
        let (l1, u1, l2, u2) = (w1.lower, w1.upper, w2.lower, w2.upper)
        // Correlation of the pairs (phi), 0 when a margin is empty; Newcombe's continuity-free form.
        let denominator = Double(a + b) * Double(c + d) * Double(a + c) * Double(b + d)
        let phi = denominator > 0 ? (Double(a) * Double(d) - Double(b) * Double(c)) / denominator.squareRoot() : 0
        let theta = p2 - p1
        let lowerHalf = ((p2 - l2) * (p2 - l2) - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) * (u1 - p1))
        let upperHalf = ((u2 - p2) * (u2 - p2) - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) * (p1 - l1))
        let interval = ConfidenceInterval(lower: theta - max(0, lowerHalf).squareRoot(),
                                          upper: theta + max(0, upperHalf).squareRoot(), method: .newcombe)
        return interval.clipped(to: -1...1)
    }

    /// A 95% percentile-bootstrap interval of the mean of `values`, with `resamples` resamples drawn
    /// from a generator seeded with `seed` (so it is reproducible). Its coverage falls short of 95% at
    /// small n (docs/statistics.md measures it): comparisons use ``meanDifferenceInterval(_:range:)``.
    /// Above `bootstrapLimit` values, the normal-theory interval mean ± 1.96·s/√n (with a two-pass
    /// variance), which the bootstrap converges to and which costs O(n).
    public static func bootstrapMeanInterval(_ values: [Double], resamples: Int = 2_000, seed: UInt64 = 1,
                                             bootstrapLimit: Int = 10_000) -> ClosedRange<Double>? {
        guard values.count > 1 else { return nil }
        let n = values.count
        if n > bootstrapLimit {
            let (mean, variance) = Statistics.meanAndVariance(values)
            let half = 1.959964 * (variance / Double(n)).squareRoot()
            return (mean - half)...(mean + half)
        }
        var random = SeededGenerator(seed: seed)
        var means = [Double](repeating: 0, count: max(1, resamples))
        values.withUnsafeBufferPointer { buffer in
            for r in means.indices {
                var sum = 0.0
                for _ in 0..<n {
                    // Lemire's multiply-shift maps 64 random bits to 0..<n without a division.
                    let index = Int((UInt128(random.next()) &* UInt128(n)) >> 64)
                    sum += buffer[index]
                }
                means[r] = sum / Double(n)
            }
        }
        means.sort()
        guard let low = Statistics.percentile(means, 0.025), let high = Statistics.percentile(means, 0.975) else { return nil }
        return low...high
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// The standard normal cumulative distribution function.
    static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
}
