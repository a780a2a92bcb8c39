import Foundation

/// Paired tests for comparing two runs item by item. Formulas and references: docs/comparison.md.
public enum PairedTests {
    /// The result of a Wilcoxon signed-rank test.
    public struct WilcoxonResult: Sendable, Hashable {
        /// Pairs with a non-zero difference (zeros are discarded, Wilcoxon's original treatment).
        public var n: Int
        /// Sum of the ranks of positive differences.
        public var wPlus: Double
        /// Sum of the ranks of negative differences.
        public var wMinus: Double
        /// min(W+, W−), the two-sided statistic.
        public var statistic: Double { min(wPlus, wMinus) }
        /// Two-sided p-value.
        public var pValue: Double
        /// Whether the p-value is exact (n ≤ 50 without ties) or from the normal approximation.
        public var exact: Bool
    }

    /// The Wilcoxon signed-rank test of the differences `d` against zero, two-sided.
    ///
    /// Zero differences are dropped; tied absolute differences get average ranks. With at most 50
    /// non-zero differences and no ties the p-value is exact (the distribution of W+ by dynamic
    /// programming); otherwise it uses the normal approximation with the tie correction of the
    /// variance and no continuity correction.
    public static func wilcoxonSignedRank(_ d: [Double]) -> WilcoxonResult {
        let nonZero = d.filter { $0 != 0 }
        let n = nonZero.count
        guard n > 0 else { return WilcoxonResult(n: 0, wPlus: 0, wMinus: 0, pValue: 1, exact: true) }
        let order = nonZero.indices.sorted { abs(nonZero[$0]) < abs(nonZero[$1]) }
        var ranks = [Double](repeating: 0, count: n)
        var tieGroups: [Int] = []
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && abs(nonZero[order[j + 1]]) == abs(nonZero[order[i]]) { j += 1 }
            let average = Double(i + j + 2) / 2  // ranks i+1 … j+1
            for k in i...j { ranks[order[k]] = average }
            if j > i { tieGroups.append(j - i + 1) }
            i = j + 1
        }
        var wPlus = 0.0, wMinus = 0.0
        for k in 0..<n { if nonZero[k] > 0 { wPlus += ranks[k] } else { wMinus += ranks[k] } }
        if n <= 50 && tieGroups.isEmpty {
            return WilcoxonResult(n: n, wPlus: wPlus, wMinus: wMinus,
                                  pValue: exactWilcoxonPValue(n: n, statistic: min(wPlus, wMinus)), exact: true)
        }
        let nd = Double(n)
        let mean = nd * (nd + 1) / 4
        var variance = nd * (nd + 1) * (2 * nd + 1) / 24
        variance -= tieGroups.reduce(0.0) { $0 + Double($1 * $1 * $1 - $1) } / 48
        guard variance > 0 else { return WilcoxonResult(n: n, wPlus: wPlus, wMinus: wMinus, pValue: 1, exact: false) }
        let z = (min(wPlus, wMinus) - mean) / variance.squareRoot()
        let p = min(1, 2 * normalCDF(-abs(z)))
        return WilcoxonResult(n: n, wPlus: wPlus, wMinus: wMinus, pValue: p, exact: false)
    }

    /// P(W ≤ t) · 2 for W the signed-rank statistic of n pairs under the null, capped at 1.
    static func exactWilcoxonPValue(n: Int, statistic t: Double) -> Double {
        let maxSum = n * (n + 1) / 2
        // counts[s] = number of subsets of {1…n} whose sum is s.
        var counts = [Double](repeating: 0, count: maxSum + 1)
        counts[0] = 1
        for r in 1...n {
            for s in stride(from: maxSum, through: r, by: -1) { counts[s] += counts[s - r] }
        }
        let total = pow(2.0, Double(n))
        let limit = Int(t.rounded(.down))
        let lowerTail = counts[0...max(0, min(limit, maxSum))].reduce(0, +) / total
        return min(1, 2 * lowerTail)
    }

    /// The exact McNemar test for paired booleans: `b` pairs changed one way, `c` the other.
    /// Two-sided p = min(1, 2 · P(X ≤ min(b, c))) for X ~ Binomial(b + c, ½).
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

    /// A 95% confidence interval of the mean of `values`: a percentile bootstrap with `resamples`
    /// resamples drawn from a generator seeded with `seed` (so it is reproducible), for up to
    /// `bootstrapLimit` values; above that, the normal-theory interval mean ± 1.96·s/√n, which the
    /// bootstrap of a mean converges to (central limit theorem) and which costs O(n) instead of
    /// O(n · resamples). See docs/comparison.md.
    public static func bootstrapMeanInterval(_ values: [Double], resamples: Int = 2_000, seed: UInt64 = 1,
                                             bootstrapLimit: Int = 10_000) -> ClosedRange<Double>? {
        guard values.count > 1 else { return nil }
        let n = values.count
        if n > bootstrapLimit {
            let mean = values.reduce(0, +) / Double(n)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
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
