import Foundation
import Testing
@testable import XeroML

/// Reads a reference file written once by `Fixtures/statistics/make_fixtures.py` (SciPy 1.17.1).
func statisticsFixture(_ name: String) throws -> [String: Any] {
    let url = repositoryRoot.appendingPathComponent("Fixtures/statistics/\(name)")
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    return try #require(object as? [String: Any])
}

func doubles(_ value: Any?) -> [Double] { (value as? [Any] ?? []).map { ($0 as! NSNumber).doubleValue } }
func number(_ value: Any?) -> Double { (value as! NSNumber).doubleValue }

/// |a − b| within `relative` of |b| (or `absolute`, for values near zero).
func close(_ a: Double, _ b: Double, relative: Double, absolute: Double = 0) -> Bool {
    abs(a - b) <= max(absolute, relative * abs(b))
}

@Suite struct ToleranceTests {
    @Test func floatNoiseTies() {
        let t = Tolerance.standard
        #expect(t.ties(0.1 + 0.2, 0.3))
        #expect(t.difference(0.1 + 0.2, 0.3) == 0)
        // Values near 3e7 differ by one ulp (3.7e-9), beyond the absolute part; the relative part absorbs it.
        let a = (0.1 + 0.2) * 1e8, b = 0.3 * 1e8
        #expect(a != b)
        #expect(t.ties(a, b))
        #expect(!t.ties(1e8, 1e8 + 1))
        #expect(!t.ties(0.5, 0.50001))
        #expect(!Tolerance.exact.ties(0.1 + 0.2, 0.3))
        let literal: Tolerance = 0.01
        #expect(literal.absolute == 0.01 && literal.relative == 1e-9)
    }

    @Test func aRunIdenticalUpToRoundingIsNoChange() {
        // Ten pairs that differ only by rounding: no zero survives, so nothing is tested.
        let baseline = (1...10).map { Double($0) * 0.1 + 0.2 }
        let candidate = (1...10).map { Double($0) * 0.1 } .map { $0 + 0.1 + 0.1 }
        #expect(zip(baseline, candidate).contains { $0 != $1 })
        let w = PairedTests.wilcoxonSignedRank(baseline: baseline, candidate: candidate)
        #expect(w.n == 0 && w.zeros == 10 && w.pValue == 1)
        let differences = zip(candidate, baseline).map { Tolerance.standard.difference($0, $1) }
        #expect(differences.allSatisfy { $0 == 0 })
        #expect(PairedTests.meanDifferenceInterval(differences)?.range == 0...0)
    }

    @Test func absoluteDifferencesThatTieWithinTheToleranceShareARank() {
        // |0.3 − 0.1| and 0.2 differ by rounding: they tie, and get the average rank 1.5 each.
        let w = PairedTests.wilcoxonSignedRank([0.3 - 0.1, -0.2, 0.5])
        #expect(w.wMinus == 1.5 && w.wPlus == 4.5 && w.tiedGroups == 1)
    }
}

@Suite struct WilcoxonTests {
    @Test func matchesTheReferenceValues() throws {
        let fixture = try statisticsFixture("wilcoxon.json")
        let cases = try #require(fixture["cases"] as? [[String: Any]])
        #expect(cases.count >= 40)
        var tiedSmall = 0
        for c in cases {
            let d = doubles(c["differences"])
            let result = PairedTests.wilcoxonSignedRank(d, tolerance: .exact)
            let expected = number(c["p"])
            let exact = c["method"] as? String == "exact"
            #expect(result.exact == exact, "\(d)")
            #expect(result.n == (c["n"] as! Int), "\(d)")
            #expect(close(result.pValue, expected, relative: exact ? 1e-12 : 1e-9), "\(d): \(result.pValue) vs \(expected)")
            if let statistic = c["statistic"] { #expect(result.statistic == number(statistic)) }
            #expect(result.pValue >= PairedTests.smallestWilcoxonPValue(n: result.n) * (1 - 1e-12))
            if exact && result.tiedGroups > 0 && (4...12).contains(result.n) { tiedSmall += 1 }
        }
        #expect(tiedSmall >= 20)  // ties at n = 4 … 12 are covered
    }

    @Test func atFourPairsNoPValueIsBelowAnEighth() {
        // The ties that used to switch to the normal approximation (p = 0.0455 at n = 4).
        let result = PairedTests.wilcoxonSignedRank([1, 2, 2, 3])
        #expect(result.exact && result.tiedGroups == 1)
        #expect(result.pValue == 0.125)
        #expect(PairedTests.smallestWilcoxonPValue(n: 4) == 0.125)
    }

    @Test func noPValueIsBelowTheSmallestTheExactDistributionAllows() {
        var random = SeededGenerator(seed: 99)
        let levels: [Double] = [-2, -1, -0.5, 0, 0.5, 1, 1, 2, 3]
        for _ in 0..<2_000 {
            let n = Int(random.next() % 30) + 1
            let d = (0..<n).map { _ in levels[Int(random.next() % UInt64(levels.count))] }
            let result = PairedTests.wilcoxonSignedRank(d)
            #expect(result.exact)
            #expect(result.pValue >= PairedTests.smallestWilcoxonPValue(n: result.n), "\(d)")
            #expect(result.pValue <= 1)
        }
    }

    @Test func exactUpToFiftyAndFast() {
        // 50 non-zero differences with ties: exact, and quick (a few thousand sums, 50 times).
        let d = (1...50).map { Double($0 % 7) - 2.5 }
        let clock = ContinuousClock()
        let start = clock.now
        let result = PairedTests.wilcoxonSignedRank(d)
        #expect(result.exact && result.n == 50)
        // Milliseconds; enumerating the 2^50 sign patterns would never end. The bound leaves room
        // for a machine loaded by the rest of the suite.
        #expect(clock.now - start < .seconds(30))
        let above = PairedTests.wilcoxonSignedRank(d + [4])
        #expect(!above.exact)
    }

    @Test func mcNemarMatchesTheReferenceValues() throws {
        let cases = try #require(try statisticsFixture("mcnemar.json")["cases"] as? [[String: Any]])
        for c in cases {
            let p = PairedTests.mcNemarExact(b: c["b"] as! Int, c: c["c"] as! Int)
            #expect(close(p, number(c["p"]), relative: 1e-10), "\(c)")
        }
    }
}

@Suite struct IntervalTests {
    @Test func studentTMatchesTheReferenceValues() throws {
        let cases = try #require(try statisticsFixture("intervals.json")["student_t"] as? [[String: Any]])
        for c in cases {
            let values = doubles(c["values"])
            let interval = try #require(Statistics.studentTInterval(values))
            let se = number(c["standard_error"])
            #expect(interval.method == .studentT)
            #expect(close(interval.lower, number(c["lower"]), relative: 0, absolute: 1e-8 * se + 1e-13), "n = \(values.count)")
            #expect(close(interval.upper, number(c["upper"]), relative: 0, absolute: 1e-8 * se + 1e-13), "n = \(values.count)")
        }
        #expect(Statistics.studentTInterval([1]) == nil)
    }

    @Test func wilsonMatchesTheReferenceValues() throws {
        let cases = try #require(try statisticsFixture("intervals.json")["wilson"] as? [[String: Any]])
        for c in cases {
            let interval = try #require(Statistics.wilsonInterval(successes: c["successes"] as! Int, count: c["count"] as! Int))
            #expect(close(interval.lower, number(c["lower"]), relative: 1e-12, absolute: 1e-15), "\(c)")
            #expect(close(interval.upper, number(c["upper"]), relative: 1e-12, absolute: 1e-15), "\(c)")
            #expect(interval.lower >= 0 && interval.upper <= 1)
        }
    }

    @Test func pairedProportionIntervalStaysInRangeAndIsAntisymmetric() throws {
        for (a, b, c, d) in [(10, 0, 0, 10), (0, 5, 0, 0), (3, 1, 4, 2), (20, 2, 9, 5), (0, 0, 0, 1), (50, 10, 3, 37)] {
            let interval = try #require(PairedTests.pairedProportionInterval(bothPass: a, passToFail: b, failToPass: c, bothFail: d))
            let estimate = Double(c - b) / Double(a + b + c + d)
            #expect(interval.lower <= estimate && estimate <= interval.upper)
            #expect(interval.lower >= -1 && interval.upper <= 1)
            #expect(interval.method == .newcombe)
            let swapped = try #require(PairedTests.pairedProportionInterval(bothPass: a, passToFail: c, failToPass: b, bothFail: d))
            #expect(abs(swapped.lower + interval.upper) < 1e-12 && abs(swapped.upper + interval.lower) < 1e-12)
        }
        #expect(PairedTests.pairedProportionInterval(bothPass: 0, passToFail: 0, failToPass: 0, bothFail: 0) == nil)
    }

    @Test func intervalsAreClippedToTheScoreRange() throws {
        // Five similarities near 1: the t interval would pass 1.
        let values = [1, 1, 0.9, 1, 0.97]
        let free = try #require(Statistics.studentTInterval(values))
        #expect(free.upper > 1)
        let clipped = try #require(Statistics.studentTInterval(values, range: 0...1))
        #expect(clipped.upper == 1 && clipped.lower == free.lower && clipped.clipped)
        // A run summary of booleans: Wilson, inside [0, 1].
        let stats = ScoreStatistics(ScoreAggregate(name: "ok", values: [.boolean(true), .boolean(true), .boolean(true)]))
        #expect(stats.intervalMethod == .wilson && stats.range == 0...1)
        #expect(stats.confidenceInterval95!.upperBound == 1 && stats.confidenceInterval95!.lowerBound > 0.4)
        // A declared range clips a numeric score's summary interval.
        let similarity = ScoreStatistics(ScoreAggregate(name: "similarity", values: values.map(ScoreValue.numeric)))
        #expect(similarity.confidenceInterval95!.upperBound > 1)
        #expect(similarity.declaringRange(0...1).confidenceInterval95!.upperBound == 1)
    }
}

@Suite(.timeLimit(.minutes(1))) struct DeclaredRangeTests {
    @Test func evaluatorsDeclareTheirRangesToTheRunSummary() async throws {
        let xeroml = try temporaryClient()
        let items = (0..<6).map { LocalItem(input: .int(Int64($0)), expectedOutput: .string($0 == 0 ? "abcd" : "same")) }
        let report = try await xeroml.runExperiment(name: "sim", items: items,
                                                    evaluators: [LevenshteinSimilarity(name: "similarity")]) { run in
            run.setOutput(.string(run.input.doubleValue == 0 ? "abcx" : "same"))
        }
        // Similarities 0.75, 1, 1, 1, 1, 1: the t interval's upper bound (1.065) is clipped to 1.
        let similarity = try #require(report.summary.score("similarity"))
        #expect(similarity.range == 0...1)
        #expect(similarity.confidenceInterval95?.upperBound == 1)
        #expect(similarity.confidenceInterval95!.lowerBound < similarity.mean!)
    }
}

@Suite struct VarianceTests {
    func cases() throws -> [(label: String, values: [Double], mean: Double, variance: Double)] {
        let cases = try #require(try statisticsFixture("variance.json")["cases"] as? [[String: Any]])
        return cases.map { ($0["label"] as! String, doubles($0["values"]), number($0["mean"]), number($0["variance"])) }
    }

    @Test func twoPassAndWelfordMatchExactRationalResults() throws {
        for c in try cases() {
            let (mean, variance) = Statistics.meanAndVariance(c.values)
            #expect(close(mean, c.mean, relative: 1e-15), "\(c.label)")
            #expect(close(variance, c.variance, relative: 1e-9), "\(c.label): \(variance) vs \(c.variance)")
            var running = RunningVariance()
            for v in c.values { running.add(v) }
            #expect(close(running.variance, c.variance, relative: 1e-9), "\(c.label): \(running.variance) vs \(c.variance)")
            let stats = ScoreStatistics(ScoreAggregate(name: "x", values: c.values.map(ScoreValue.numeric)))
            #expect(close(stats.standardDeviation! * stats.standardDeviation!, c.variance, relative: 1e-9), "\(c.label)")
        }
    }

    @Test func theOnePassFormulaWouldHaveFailedTheseCases() throws {
        // Guard on the fixture itself: Σx² − n·mean² loses the variance of values near 1e8.
        let c = try #require(try cases().first { $0.label.hasPrefix("1e8 + small") })
        let n = Double(c.values.count)
        let sum = c.values.reduce(0, +), squares = c.values.reduce(0) { $0 + $1 * $1 }
        let onePass = (squares - sum * sum / n) / (n - 1)
        #expect(!close(onePass, c.variance, relative: 1e-3))
        #expect(c.variance == 5.0 / 3.0)
    }

    @Test(.timeLimit(.minutes(1))) func storedSummariesAndComparisonsAreStable() async throws {
        let xeroml = try temporaryClient()
        let all = try cases()
        try await makeNumbersDataset(xeroml, name: "big", count: 1)
        // Each case as one run's scores (SQL summary), and as the repetitions of one item (comparison columns).
        for (index, c) in all.enumerated() {
            let items = c.values.enumerated().map { LocalItem(input: .int(Int64($0.offset))) }
            let values = c.values
            try await xeroml.runExperiment(name: "v\(index)", items: items) { run in
                run.score(name: "x", value: values[Int(run.input.doubleValue!)])
            }
            let summary = try await xeroml.summary(runID: "v\(index)")
            let sd = try #require(summary.score("x")?.standardDeviation)
            #expect(close(sd * sd, c.variance, relative: 1e-9), "\(c.label): SQL \(sd * sd) vs \(c.variance)")
            #expect(close(summary.score("x")!.mean!, c.mean, relative: 1e-14), "\(c.label)")
        }
        let c = try #require(all.first { $0.label.hasPrefix("latency") })
        let values = c.values
        for name in ["r1", "r2"] {
            try await xeroml.runExperiment(name: name, datasetName: "big",
                                           options: ExperimentOptions(repetitions: values.count)) { run in
                run.score(name: "x", value: values[run.repetition])
            }
        }
        let comparison = try await xeroml.compare(baseline: "r1", candidates: ["r2"], datasetName: "big")
        let outcome = try #require(comparison.items.first?.outcomes.first ?? nil)
        let value = try #require(outcome.score("x"))
        #expect(value.count == values.count)
        #expect(close(value.variance, c.variance, relative: 1e-9), "\(value.variance) vs \(c.variance)")
        #expect(close(value.mean, c.mean, relative: 1e-15))
        // Same values, summed in another order: unchanged, not a regression.
        #expect(comparison.scores.first?.count(.unchanged) == 1)
    }
}
