import Foundation
import Synchronization
import Testing
@testable import XeroML
import XeroMLTesting
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reference values come from SciPy 1.17.1 (`scipy.stats.wilcoxon`, `scipy.stats.binomtest`), the
/// reference implementations cited in docs/comparison.md.
@Suite struct PairedTestsTests {
    @Test func wilcoxonExactMatchesSciPy() {
        // scipy.stats.wilcoxon(x, y) for the classic paired sample of 9 (no ties): statistic 5, p 0.0390625.
        let x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
        let y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
        let result = PairedTests.wilcoxonSignedRank(zip(x, y).map { $0 - $1 })
        #expect(result.statistic == 5)
        #expect(result.exact)
        #expect(abs(result.pValue - 0.0390625) < 1e-12)
    }

    @Test func wilcoxonWithTiesAndZerosIsExactAtSmallN() {
        // Exact conditional p-value (scipy.stats.permutation_test over every sign flip of the 11
        // non-zero differences, average ranks): 0.10546875; the normal approximation said 0.099.
        let d = [0.5, -1.0, 2.0, 2.0, -0.5, 1.5, 3.0, -2.5, 1.0, 0.0, 4.0, 1.0]
        let result = PairedTests.wilcoxonSignedRank(d)
        #expect(result.n == 11 && result.zeros == 1)
        #expect(result.statistic == 14.5)
        #expect(result.exact)
        #expect(abs(result.pValue - 0.10546875) < 1e-12)
    }

    @Test func wilcoxonLargeSamplesMatchSciPy() {
        // d_i = round(sin(1.7 i) + 0.1, 6); scipy.stats.wilcoxon(d, correction=True, method="asymptotic"):
        // n = 80 → statistic 1300, p 0.12542036455989578; n = 30 → statistic 183, p 0.31839608028531075 (exact).
        let d80 = (1...80).map { ((sin(Double($0) * 1.7) + 0.1) * 1e6).rounded() / 1e6 }
        let large = PairedTests.wilcoxonSignedRank(d80)
        #expect(large.statistic == 1300 && !large.exact)
        #expect(abs(large.pValue - 0.12542036455989578) < 1e-9)
        let small = PairedTests.wilcoxonSignedRank(Array(d80.prefix(30)))
        #expect(small.statistic == 183 && small.exact)
        #expect(abs(small.pValue - 0.31839608028531075) < 1e-12)
    }

    @Test func mcNemarExactMatchesSciPyBinomialTest() {
        // scipy.stats.binomtest(k, n, 0.5).pvalue with k = min(b, c), n = b + c.
        #expect(abs(PairedTests.mcNemarExact(b: 3, c: 12) - 0.03515625) < 1e-12)
        #expect(abs(PairedTests.mcNemarExact(b: 11, c: 1) - 0.00634765625) < 1e-12)
        #expect(abs(PairedTests.mcNemarExact(b: 40, c: 60) - 0.05688793364098089) < 1e-9)
        #expect(PairedTests.mcNemarExact(b: 0, c: 0) == 1)
        #expect(PairedTests.mcNemarExact(b: 5, c: 5) == 1)
    }

    @Test func bootstrapIsSeededAndCoversTheMean() {
        let values = (0..<200).map { Double($0 % 7) - 2.5 }
        let a = PairedTests.bootstrapMeanInterval(values, seed: 42)!
        let b = PairedTests.bootstrapMeanInterval(values, seed: 42)!
        #expect(a == b)
        let mean = values.reduce(0, +) / Double(values.count)
        #expect(a.contains(mean))
        #expect(a.upperBound - a.lowerBound < 1)
        #expect(PairedTests.bootstrapMeanInterval([1], seed: 1) == nil)
    }
}

@Suite struct ComparisonTests {
    /// A dataset of 8 items and two runs with known differences.
    func makeRuns(_ xeroml: XeroML) async throws {
        try await makeNumbersDataset(xeroml, name: "cmp", count: 8)
        // Baseline: correct on 0…5, wrong on 6, error on 7. Quality = i/10.
        try await xeroml.runExperiment(name: "base", datasetName: "cmp", options: ExperimentOptions(retry: .none)) { run in
            let i = Int(run.input.doubleValue!)
            if i == 7 { throw TransientError("backend down") }
            run.score(name: "correct", value: i != 6)
            run.score(name: "quality", value: Double(i) / 10)
        }
        // Candidate: item 0 not run; 1 flips to wrong; 6 fixed; 7 fixed; 5 errors; quality up on 2, down on 3.
        let candidate = try await xeroml.createExperiment(name: "cand", datasetName: "cmp")
        for item in try await xeroml.dataset(named: "cmp").items {
            let i = Int(item.input.doubleValue!)
            if i == 0 { continue }
            try await candidate.runItem(item) { run in
                if i == 5 { throw TransientError("new failure") }
                run.score(name: "correct", value: i != 1)
                run.score(name: "quality", value: Double(i) / 10 + (i == 2 ? 0.5 : i == 3 ? -0.2 : 0))
            }
        }
        try await candidate.finish()
    }

    @Test func countsImprovementsRegressionsMissingAndErrors() async throws {
        let xeroml = try temporaryClient()
        try await makeRuns(xeroml)
        let comparison = try await xeroml.compare(baseline: "base", candidates: ["cand"], datasetName: "cmp")
        #expect(comparison.items.count == 8)
        let correct = try #require(comparison.scores.first { $0.name == "correct" })
        #expect(correct.isBoolean)
        #expect(correct.count(.missing) == 1)      // item 0: not run by the candidate
        #expect(correct.count(.regressed) == 1)    // item 1
        #expect(correct.count(.improved) == 1)     // item 6
        #expect(correct.count(.newError) == 1)     // item 5
        #expect(correct.count(.fixedError) == 1)   // item 7
        #expect(correct.count(.unchanged) == 3)    // items 2, 3, 4
        #expect(correct.pairs == 5)
        #expect(correct.mcNemar?.passToFail == 1 && correct.mcNemar?.failToPass == 1)
        #expect(correct.pValue == 1)
        #expect(!correct.significantRegression)
        let quality = try #require(comparison.scores.first { $0.name == "quality" })
        #expect(!quality.isBoolean)
        #expect(quality.count(.improved) == 1 && quality.count(.regressed) == 1 && quality.count(.unchanged) == 3)
        #expect(abs(quality.meanDifference! - 0.06) < 1e-12)  // (0.5 − 0.2) / 5 pairs
        #expect(quality.wilcoxon?.n == 2)
        let item1 = try #require(comparison.items.first { $0.outcomes[0]?.output == nil && $0.changes[0]["correct"] == .regressed })
        #expect(item1.hasRegression)
        #expect(comparison.runStatistics[0].errors == 1 && comparison.runStatistics[1].errors == 1)
        #expect(comparison.runStatistics[1].items == 7)
    }

    @Test func flagsASignificantRegressionAndLabelsNoise() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, name: "many", count: 40)
        try await xeroml.runExperiment(name: "good", datasetName: "many", options: ExperimentOptions(repetitions: 3)) { run in
            let i = Int(run.input.doubleValue!)
            run.score(name: "pass", value: true)
            // Noisy on items below 10 (±0.05 across repetitions), stable elsewhere.
            run.score(name: "quality", value: 0.8 + (i < 10 ? (Double(run.repetition) - 1) * 0.05 : 0))
        }
        try await xeroml.runExperiment(name: "worse", datasetName: "many", options: ExperimentOptions(repetitions: 3)) { run in
            let i = Int(run.input.doubleValue!)
            run.score(name: "pass", value: i % 4 != 0)
            run.score(name: "quality", value: i < 10 ? 0.79 + (Double(run.repetition) - 1) * 0.05 : 0.6)
        }
        let comparison = try await xeroml.compare(baseline: "good", candidates: ["worse"], datasetName: "many")
        let pass = try #require(comparison.scores.first { $0.name == "pass" })
        #expect(pass.mcNemar?.passToFail == 10 && pass.mcNemar?.failToPass == 0)
        #expect(abs(pass.pValue! - 0.001953125) < 1e-12)  // binomtest(0, 10, 0.5)
        #expect(pass.significantRegression)
        let quality = try #require(comparison.scores.first { $0.name == "quality" })
        #expect(quality.count(.withinNoise) == 10)
        #expect(quality.count(.regressed) == 30)
        #expect(quality.significantRegression)
        #expect(comparison.significantRegressions.count == 2)

        // The gate fails on it, with the regressed items listed.
        let report = try await xeroml.gate(run: "worse", conditions: [.noSignificantRegression], baseline: "good",
                                           datasetName: "many")
        #expect(!report.passed)
        #expect(report.failures[0].detail.contains("pass regressed"))
        #expect(report.failures[0].items.count == Gate.maximumItemsPerCondition)
    }

    @Test func refusesRunsOfDifferentDatasets() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, name: "a", count: 2)
        try await makeNumbersDataset(xeroml, name: "b", count: 2)
        try await xeroml.runExperiment(name: "ra", datasetName: "a") { _ in }
        try await xeroml.runExperiment(name: "rb", datasetName: "b") { _ in }
        await #expect(throws: XeroMLError.self) { try await xeroml.compare(baseline: "ra", candidates: ["rb"]) }
        await #expect(throws: XeroMLError.self) { try await xeroml.compare(baseline: "ra", candidates: ["nope"]) }
    }
}

@Suite struct GateTests {
    @Test func parsesConditions() throws {
        #expect(try GateCondition.parse("accuracy=0.85", maximum: false) == .minimum(.score("accuracy"), 0.85))
        #expect(try GateCondition.parse("accuracy=85%", maximum: false) == .minimum(.score("accuracy"), 0.85))
        #expect(try GateCondition.parse("latency_p95=2s", maximum: true) == .maximum(.latencyP95, 2))
        #expect(try GateCondition.parse("latency_p95=150ms", maximum: true) == .maximum(.latencyP95, 0.15))
        #expect(try GateCondition.parse("error_rate=0.01", maximum: true) == .maximum(.errorRate, 0.01))
        #expect(throws: XeroMLError.self) { try GateCondition.parse("accuracy", maximum: false) }
        #expect(throws: XeroMLError.self) { try GateCondition.parse("accuracy=high", maximum: false) }
    }

    @Test func evaluatesThresholdsAndListsTheItemsBehindAFailure() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 10)
        try await xeroml.runExperiment(name: "r", datasetName: "numbers", options: ExperimentOptions(retry: .none)) { run in
            let i = Int(run.input.doubleValue!)
            if i == 9 { throw TransientError("timeout upstream") }
            run.score(name: "accuracy", value: i < 7)
        }
        let report = try await xeroml.gate(run: "r", conditions: [.min("accuracy", 0.8), .max("error_rate", 0.2),
                                                                   .max("latency_p95", 5)])
        #expect(!report.passed)
        #expect(report.conditions.map(\.passed) == [false, true, true])
        let accuracy = report.conditions[0]
        #expect(abs(accuracy.actual! - 7.0 / 9.0) < 1e-12)
        #expect(accuracy.items.count == 3)  // the error, then the two failing scores
        #expect(accuracy.items[0].reason == "error: TransientError: timeout upstream")
        #expect(Set(accuracy.items.dropFirst().map(\.input)) == [7, 8])
        #expect(report.itemVerdicts.filter { $0.failure != nil }.count == 3)
        #expect(report.format().contains("✗ accuracy >= 0.85") == false)
        #expect(report.format().contains("✗ accuracy >= 0.8"))

        let passing = try await xeroml.gate(run: "r", conditions: [.min("accuracy", 0.7)])
        #expect(passing.passed)
    }

    @Test func junitXMLIsWellFormedAndCountsFailures() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 4)
        try await xeroml.runExperiment(name: "x", datasetName: "numbers") { run in
            run.setOutput("<tag> & \"quotes\" \u{01}")
            run.score(name: "ok", value: run.input != 3)
        }
        let report = try await xeroml.gate(run: "x", conditions: [.min("ok", 0.9), .max("latency_p95", 10)])
        let xml = report.junitXML()
        let parser = XMLParser(data: Data(xml.utf8))
        final class Collector: NSObject, XMLParserDelegate, @unchecked Sendable {
            var testcases = 0, failures = 0, suites: [String: String] = [:]
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if name == "testcase" { testcases += 1 }
                if name == "failure" { failures += 1 }
                if name == "testsuites" { suites = attributes }
            }
        }
        let collector = Collector()
        parser.delegate = collector
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(collector.testcases == 2 + 4)
        #expect(collector.failures == 1 + 1)
        #expect(collector.suites["tests"] == "6" && collector.suites["failures"] == "2")
        let markdown = report.markdown()
        #expect(markdown.contains("❌ failed") && markdown.contains("| ❌ | ok &gt;= 0.9 |"))
    }
}

@Suite(.timeLimit(.minutes(3))) struct TestingHelperTests {
    @Test func expectGateRecordsAnIssueWhenAConditionFails() async throws {
        let xeroml = try XeroMLTest.temporaryClient()
        try await makeNumbersDataset(xeroml, count: 5)
        let report = try await xeroml.runExperiment(name: "weak", datasetName: "numbers") { run in
            run.score(name: "accuracy", value: run.input == 0)
        }
        try await withKnownIssue {
            try await expectGate(report, in: xeroml, [.min("accuracy", 0.9)])
        } matching: { issue in
            issue.comments.contains { $0.rawValue.contains("✗ accuracy >= 0.9") && $0.rawValue.contains("accuracy = 0") }
        }
        // Passing conditions record nothing (an unexpected issue would fail this test).
        let passed = try await expectGate(report, in: xeroml, [.min("accuracy", 0.2)])
        #expect(passed.passed)
    }

    @Test func xctestAssertionReportsThroughTheTaskLocalHandler() async throws {
        let xeroml = try XeroMLTest.temporaryClient()
        try await makeNumbersDataset(xeroml, count: 3)
        let report = try await xeroml.runExperiment(name: "weak", datasetName: "numbers") { run in
            run.score(name: "accuracy", value: false)
        }
        let failures = Mutex<[String]>([])
        try await XeroMLXCTestFailure.$handler.withValue({ message, _, _ in failures.withLock { $0.append(message) } }) {
            try await XCTAssertGate(report, in: xeroml, [.min("accuracy", 0.5)])
            try await XCTAssertGate(report, in: xeroml, [.max("error_rate", 0)])
        }
        let messages = failures.withLock { $0 }
        #expect(messages.count == 1)
        #expect(messages.first?.contains("Gate for run \"weak\": FAILED") == true)
    }

    /// The project's own quality bar, enforced with the testing helpers: the quickstart's better
    /// variant must stay accurate, and must not regress against the simpler one.
    @Test func quickstartModelMeetsItsQualityBar() async throws {
        let xeroml = try XeroMLTest.temporaryClient()
        let path = repositoryRoot.appendingPathComponent("Fixtures/datasets/capitals.jsonl").path
        try await xeroml.importDataset(name: "capitals", from: path)
        let table = ["France": "Paris", "Germany": "Berlin", "Japan": "Tokyo", "Italy": "Rome"]
        try await xeroml.runExperiment(name: "small", datasetName: "capitals", evaluators: [ExactMatch()]) { run in
            let question = run.input["question"]?.stringValue ?? ""
            run.setOutput(.string(table.first { question.contains($0.key) }?.value ?? "I don't know"))
        }
        let full = try await xeroml.runExperiment(name: "oracle", datasetName: "capitals", evaluators: [ExactMatch()]) { run in
            run.setOutput(run.expectedOutput)
        }
        try await expectGate(full, in: xeroml, [.min("exact_match", 0.95), .max("error_rate", 0)],
                             baseline: "small")
        try await expectGate(full, in: xeroml, [.noSignificantRegression], baseline: "small")
    }
}

@Suite(.timeLimit(.minutes(3))) struct GateCommandTests {
    /// A store with two finished runs of the capitals quickstart.
    func quickstartStore() async throws -> String {
        let path = temporaryDirectory().appendingPathComponent("gate.sqlite").path
        let result = try await runCLI(["quickstart", "--db", path, "--repetitions", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        return path
    }

    @Test func exitCodesSayWhetherTheGatePassed() async throws {
        let db = try await quickstartStore()
        let dir = temporaryDirectory()
        let junit = dir.appendingPathComponent("gate.xml").path
        let markdown = dir.appendingPathComponent("summary.md").path
        let passed = try await runCLI(["gate", "lookup-v2", "--db", db, "--min", "exact_match=90%", "--max", "latency_p95=5s",
                                 "--baseline", "lookup-v1", "--no-significant-regression", "--junit", junit,
                                 "--markdown", markdown])
        #expect(passed.status == 0, "\(passed.stdout)\(passed.stderr)")
        #expect(passed.stdout.contains("PASSED"))
        #expect(FileManager.default.fileExists(atPath: junit))
        #expect(try String(contentsOfFile: markdown, encoding: .utf8).contains("✅ passed"))

        let failed = try await runCLI(["gate", "lookup-v1", "--db", db, "--min", "exact_match=0.9"])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("✗ exact_match >= 0.9"))
        #expect(failed.stdout.contains("What is the capital of"))  // the items behind the failure

        // The simpler variant regresses significantly against the better one.
        let regressed = try await runCLI(["gate", "lookup-v1", "--db", db, "--baseline", "lookup-v2", "--no-significant-regression"])
        #expect(regressed.status == 1)
        #expect(regressed.stdout.contains("exact_match regressed"))

        let missing = try await runCLI(["gate", "no-such-run", "--db", db, "--min", "exact_match=0.5"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no-such-run"))

        for arguments in [["gate", "lookup-v1", "--db", db], ["gate", "lookup-v1", "--db", db, "--min", "exact_match"],
                          ["gate", "lookup-v1", "--db", db, "--no-significant-regression"],
                          ["gate", "lookup-v1", "--db", db, "--min", "x=1", "--alpha", "0"]] {
            let bad = try await runCLI(arguments)
            #expect(bad.status == 64, "\(arguments)")
        }
    }

    @Test func compareWritesEveryFormat() async throws {
        let db = try await quickstartStore()
        let json = try await runCLI(["compare", "lookup-v1", "lookup-v2", "--db", db, "--format", "json"])
        #expect(json.status == 0)
        let value = try JSONValue(parsing: json.stdout)
        #expect(value["items"].flatMap { if case .array(let a) = $0 { a.count } else { nil } } == 26)
        let exact = try #require({ () -> JSONValue? in
            if case .array(let scores)? = value["scores"] { return scores.first { $0["name"] == "exact_match" } }
            return nil
        }())
        #expect(exact["test"] == "mcnemar_exact" && exact["significant_improvement"] == true)
        let csv = try await runCLI(["compare", "lookup-v1", "lookup-v2", "--db", db, "--format", "csv", "--only-regressions"])
        #expect(csv.status == 0)
        #expect(csv.stdout.split(separator: "\n").count == 1)  // header only: nothing regressed
        let markdown = try await runCLI(["compare", "lookup-v1", "lookup-v2", "--db", db, "--format", "markdown"])
        #expect(markdown.stdout.contains(#"| exact\_match | lookup-v2 |"#))
        let text = try await runCLI(["compare", "lookup-v1", "lookup-v2", "--db", db])
        #expect(text.stdout.contains("significant improvement"))
        let one = try await runCLI(["compare", "lookup-v1", "--db", db])
        #expect(one.status == 64)
    }
}

@Suite struct GateDetailTests {
    @Test func percentagesAreExact() throws {
        #expect(try GateCondition.parse("exact_match=70%", maximum: false) == .minimum(.score("exact_match"), 0.7))
        #expect(try GateCondition.parse("exact_match=95%", maximum: false) == .minimum(.score("exact_match"), 0.95))
    }

    @Test func moreFailingTasksAreASignificantRegression() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 30)
        try await xeroml.runExperiment(name: "steady", datasetName: "numbers") { run in run.score(name: "ok", value: true) }
        try await xeroml.runExperiment(name: "brittle", datasetName: "numbers", options: ExperimentOptions(retry: .none)) { run in
            if Int(run.input.doubleValue!) % 3 == 0 { throw TransientError("crashed") }
            run.score(name: "ok", value: true)
        }
        let comparison = try await xeroml.compare(baseline: "steady", candidates: ["brittle"], datasetName: "numbers")
        #expect(comparison.significantRegressions.isEmpty)  // the scores that exist did not change
        let errors = try #require(comparison.errorComparisons.first)
        #expect(errors.newErrors == 10 && errors.fixedErrors == 0)
        #expect(abs(errors.pValue - 0.001953125) < 1e-12)
        let report = try await xeroml.gate(run: "brittle", conditions: [.noSignificantRegression], baseline: "steady",
                                           datasetName: "numbers")
        #expect(!report.passed)
        #expect(report.failures[0].detail.contains("errors rose: 10 new, 0 fixed"))
        #expect(report.failures[0].items.count == 10)
    }

    @Test func costIsUnknownWithoutPricesAndJUnitNamesRepetitions() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, count: 2)
        let report = try await xeroml.runExperiment(name: "unpriced", datasetName: "numbers",
                                                    options: ExperimentOptions(repetitions: 2)) { run in
            await observe("model", as: .generation) { $0.setUsage(promptTokens: 3, completionTokens: 1) }
            run.score(name: "ok", value: false)
        }
        #expect(report.summary.usage.generations == 4 && report.summary.usage.pricedGenerations == 0)
        #expect(!report.format().contains("cost"))
        let gate = try await xeroml.gate(run: "unpriced", conditions: [.max("cost", 1), .min("ok", 0.5)])
        #expect(gate.conditions[0].detail.contains("no value"))
        let names = gate.junitXML().split(separator: "\n").filter { $0.contains("xeroml.gate.items") }
        #expect(names.count == 4)
        #expect(Set(names.map { $0.split(separator: "\"")[3] }).count == 4)
    }
}
