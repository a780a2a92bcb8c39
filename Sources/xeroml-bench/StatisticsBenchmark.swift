import Foundation
import XeroML

/// Measures what XeroML's intervals and tests promise: simulates many data sets of known truth and
/// counts how often each 95% interval covers the true value, and how often the paired significance
/// test fires (p < α = 0.05) when the two runs do not differ. Fixed seed: the table is reproducible.
/// The scenarios are described in docs/statistics.md.
struct StatisticsBenchmark {
    let simulations: Int
    let bootstrapSimulations: Int
    let seed: UInt64

    struct Scenario: Sendable {
        var name: String
        var range: ClosedRange<Double>?
        var isBoolean: Bool
        /// One data set's truth (mean, mean difference) and its item generator: (baseline, candidate
        /// without shift, candidate with shift).
        var dataSet: @Sendable (inout SeededGenerator) -> (mean: Double, difference: Double,
                                                           draw: @Sendable (inout SeededGenerator) -> (Double, Double, Double))
    }

    /// A scenario whose truth is the same for every data set.
    static func fixed(_ name: String, range: ClosedRange<Double>?, mean: Double, difference: Double,
                      draw: @escaping @Sendable (inout SeededGenerator) -> (Double, Double, Double)) -> Scenario {
        Scenario(name: name, range: range, isBoolean: false) { _ in (mean, difference, draw) }
    }

    static func uniform(_ g: inout SeededGenerator) -> Double { Double(g.next() >> 11) * 0x1p-53 }
    static func normal(_ g: inout SeededGenerator) -> Double {
        var u = uniform(&g)
        while u == 0 { u = uniform(&g) }
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * uniform(&g))
    }
    /// Gamma(2, 1): the sum of two unit exponentials (mean 2, skewness √2).
    static func gamma2(_ g: inout SeededGenerator) -> Double {
        -log(1 - uniform(&g)) - log(1 - uniform(&g))
    }
    static func bernoulli(_ p: Double, _ g: inout SeededGenerator) -> Double { uniform(&g) < p ? 1 : 0 }

    static let scenarios: [Scenario] = [
        // Item quality N(0.6, 0.2²); each run adds its own N(0, 0.1²); the candidate's shift is 0.05.
        fixed("normal", range: nil, mean: 0.6, difference: 0.05) { g in
            let item = 0.6 + 0.2 * normal(&g)
            let b = item + 0.1 * normal(&g), c = item + 0.1 * normal(&g)
            return (b, c, c + 0.05)
        },
        // Skewed: item effect Gamma(2, 1) plus each run's own Gamma(2, 1) − 2 noise; shift 0.3.
        fixed("skewed", range: nil, mean: 2, difference: 0.3) { g in
            let item = gamma2(&g)
            let b = item + gamma2(&g) - 2, c = item + gamma2(&g) - 2
            return (b, c, c + 0.3)
        },
        // Pass/fail: each data set has its own pass rate π ~ U(0.5, 0.95) (coverage at one fixed π
        // jumps with the discreteness of the binomial, so it is averaged over π); item pass
        // probabilities u ~ U(2π − 1, 1), mean π; the candidate's is min(1, u + 0.1).
        Scenario(name: "binary", range: 0...1, isBoolean: true) { g in
            let rate = 0.5 + 0.45 * uniform(&g)
            let low = 2 * rate - 1, width = 1 - low, shift = 0.1
            // E[min(1, u + δ) − u] for u ~ U(low, 1).
            let difference = width >= shift ? shift - shift * shift / (2 * width) : width / 2
            return (rate, difference, { g in
                let u = low + width * uniform(&g)
                return (bernoulli(u, &g), bernoulli(u, &g), bernoulli(min(1, u + shift), &g))
            })
        },
        // A 1–5 judge scale (many ties): 1 + Binomial(4, u), u ~ U(0, 1); the candidate's u + 0.1 (at most 1).
        fixed("judge 1-5", range: 1...5, mean: 3, difference: 0.38) { g in
            let u = uniform(&g)
            func score(_ p: Double) -> Double { 1 + (0..<4).reduce(0.0) { s, _ in s + bernoulli(p, &g) } }
            return (score(u), score(u), score(min(1, u + 0.1)))
        },
    ]

    func run() {
        print("XeroML statistics: \(simulations) simulated data sets per cell (\(bootstrapSimulations) for the bootstrap "
              + "column), seed \(seed), nominal 95% intervals, α = 0.05")
        let coverageError = 100 * (0.95 * 0.05 / Double(simulations)).squareRoot()
        let rateError = 100 * (0.05 * 0.95 / Double(simulations)).squareRoot()
        print(String(format: "Monte Carlo standard error: %.2f points on a 95%% coverage, %.2f on a 5%% rate", coverageError, rateError))
        print("")
        print("| scenario | n | mean: method | mean: coverage | Δ: method | Δ: coverage | Δ: percentile bootstrap | false positives |")
        print("|---|---|---|---|---|---|---|---|")
        for scenario in Self.scenarios {
            for n in [5, 10, 30, 100] {
                print(row(scenario, n: n))
            }
        }
        print("")
        print("Exact false-positive rate of the signed-rank test on untied differences, from its null distribution: "
              + [5, 10, 30, 100].map { String(format: "n = %d: %.3f%%", $0, 100 * exactSize(n: $0)) }.joined(separator: ", "))
    }

    /// P(p < 0.05) when the n differences are untied and each sign is a coin flip: the sum over every
    /// value s of W+ of its null probability, for the p-value XeroML's test gives a sample with W+ = s.
    func exactSize(n: Int) -> Double {
        let total = n * (n + 1) / 2
        var counts = [Double](repeating: 0, count: total + 1)
        counts[0] = 1
        for r in 1...n { for s in stride(from: total, through: r, by: -1) { counts[s] += counts[s - r] } }
        var size = 0.0
        for s in 0...total {
            // A sample whose positive ranks sum to s (greedy: every sum in 0…total is reachable).
            var remaining = s
            var positive = [Bool](repeating: false, count: n + 1)
            for r in stride(from: n, through: 1, by: -1) where r <= remaining {
                positive[r] = true
                remaining -= r
            }
            let d = (1...n).map { positive[$0] ? Double($0) : -Double($0) }
            if PairedTests.wilcoxonSignedRank(d).pValue < 0.05 { size += counts[s] / pow(2, Double(n)) }
        }
        return size
    }

    func row(_ s: Scenario, n: Int) -> String {
        var g = SeededGenerator(seed: seed ^ UInt64(n) &* 0x9E37_79B9 ^ UInt64(s.name.utf8.count))
        var meanCovered = 0, differenceCovered = 0, bootstrapCovered = 0, falsePositives = 0
        var meanMethod = "", differenceMethod = ""
        let differenceRange = s.range.map { -($0.upperBound - $0.lowerBound)...($0.upperBound - $0.lowerBound) }
        for simulation in 0..<simulations {
            var baseline: [Double] = [], candidate: [Double] = [], shifted: [Double] = []
            let (trueMean, trueDifference, draw) = s.dataSet(&g)
            for _ in 0..<n {
                let (b, c, shiftedC) = draw(&g)
                baseline.append(b)
                candidate.append(c)
                shifted.append(shiftedC)
            }
            // The run summary's interval of a mean (XeroML's own code path: a summary of the values).
            let summary: ConfidenceInterval?
            if s.isBoolean {
                summary = Statistics.wilsonInterval(successes: Int(baseline.reduce(0, +)), count: n)
            } else {
                summary = Statistics.studentTInterval(baseline, range: s.range)
            }
            if let summary {
                meanMethod = summary.method.rawValue
                if summary.range.contains(trueMean) { meanCovered += 1 }
            }
            // The comparison's interval of the mean difference, candidate (shifted) − baseline.
            let tolerance = Tolerance.standard
            let differences = zip(shifted, baseline).map { tolerance.difference($0, $1) }
            let interval: ConfidenceInterval?
            if s.isBoolean {
                var cells = [0, 0, 0, 0]
                for (b, c) in zip(baseline, shifted) { cells[Int(1 - b) * 2 + Int(1 - c)] += 1 }
                interval = PairedTests.pairedProportionInterval(bothPass: cells[0], passToFail: cells[1],
                                                                failToPass: cells[2], bothFail: cells[3])
            } else {
                interval = PairedTests.meanDifferenceInterval(differences, range: differenceRange)
            }
            if let interval {
                differenceMethod = interval.method.rawValue
                if interval.range.contains(trueDifference) { differenceCovered += 1 }
            }
            if simulation < bootstrapSimulations,
               let bootstrap = PairedTests.bootstrapMeanInterval(differences, resamples: 1_000, seed: UInt64(simulation)),
               bootstrap.contains(trueDifference) {
                bootstrapCovered += 1
            }
            // The significance test under no difference: baseline against the unshifted candidate.
            let p: Double
            if s.isBoolean {
                let passToFail = zip(baseline, candidate).filter { $0.0 == 1 && $0.1 == 0 }.count
                let failToPass = zip(baseline, candidate).filter { $0.0 == 0 && $0.1 == 1 }.count
                p = PairedTests.mcNemarExact(b: passToFail, c: failToPass)
            } else {
                p = PairedTests.wilcoxonSignedRank(baseline: baseline, candidate: candidate).pValue
            }
            if p < 0.05 { falsePositives += 1 }
        }
        func percent(_ k: Int, _ total: Int) -> String { String(format: "%.1f%%", 100 * Double(k) / Double(total)) }
        return "| \(s.name) | \(n) | \(meanMethod) | \(percent(meanCovered, simulations)) | \(differenceMethod) | "
            + "\(percent(differenceCovered, simulations)) | \(percent(bootstrapCovered, bootstrapSimulations)) | "
            + String(format: "%.2f%%", 100 * Double(falsePositives) / Double(simulations)) + " |"
    }
}
