import ArgumentParser
import Foundation
import XeroML
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare runs of one dataset item by item: the first run is the baseline.",
        discussion: """
            Per score: baseline and candidate means, the mean paired difference with its 95% interval \
            (Student's t; Newcombe's for pass/fail scores), the p-value of a Wilcoxon signed-rank test (numeric) or an exact McNemar test \
            (boolean), and counts of improved, regressed, unchanged, within-noise and missing items. \
            See docs/comparison.md.
            """)

    @OptionGroup var store: StoreOptions
    @Argument(help: "Two or more runs (ids, id prefixes or names); the first is the baseline.") var runs: [String]
    @Option(help: "The dataset, when run names are ambiguous.") var dataset: String?
    @Flag(help: "List only items where a score regressed or a new error appeared.") var onlyRegressions = false
    @Option(help: "text, json, markdown or csv.") var format = "text"
    @Option(help: "How many items to list in text and markdown output.") var limit = 20
    @Option(help: "Score names where lower is better (repeatable).") var lowerIsBetter: [String] = []
    @Option(help: "Significance level of the paired tests.") var alpha = 0.05

    func validate() throws {
        guard runs.count >= 2 else { throw ValidationError("name at least two runs: a baseline and a candidate") }
        guard ["text", "json", "markdown", "csv"].contains(format) else {
            throw ValidationError("--format must be text, json, markdown or csv")
        }
        guard limit >= 0 else { throw ValidationError("--limit must not be negative") }
        guard alpha > 0 && alpha < 1 else { throw ValidationError("--alpha must be between 0 and 1") }
    }

    func run() async throws {
        let xeroml = try store.openReadOnly()
        let options = ComparisonOptions(lowerIsBetter: Set(lowerIsBetter), alpha: alpha)
        let comparison = try await xeroml.compare(baseline: runs[0], candidates: Array(runs.dropFirst()),
                                                  datasetName: dataset, options: options)
        var report = ComparisonReportOptions(itemLimit: limit, onlyRegressions: onlyRegressions, color: useColor)
        if format == "text" || format == "markdown" {
            report.itemLabels = try await xeroml.itemLabels(for: Array(comparison.listedItems(report).prefix(limit)))
        }
        switch format {
        case "json": print(comparison.jsonValue(report).jsonString)
        case "csv": print(comparison.csv(report), terminator: "")
        case "markdown": print(comparison.markdown(report))
        default: print(comparison.text(report))
        }
    }

    var useColor: Bool { isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }
}

struct GateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Check a run against quality conditions; exit non-zero when one fails.",
        discussion: """
            Exit status: 0 when every condition holds, 1 when at least one fails, 2 when the gate could \
            not be evaluated (unknown run, unreadable file), 3 when the run or the baseline is not \
            complete (not finished, or missing results; --allow-partial judges them anyway), 64 for \
            invalid arguments.
            Metrics: any score name (mean, or pass rate of a boolean score), latency_p50, latency_p95 \
            (with a unit: 2s, 150ms), error_rate, cost. See docs/gate.md.
            """)

    @OptionGroup var store: StoreOptions
    @Argument(help: "The run to check (id, id prefix or name).") var run: String
    @Option(help: "A minimum, NAME=VALUE (repeatable), e.g. accuracy=0.85.") var min: [String] = []
    @Option(help: "A maximum, NAME=VALUE (repeatable), e.g. latency_p95=2s.") var max: [String] = []
    @Option(help: "A baseline run to compare with.") var baseline: String?
    @Flag(help: "Fail when a score regresses, or task failures rise, significantly against --baseline.")
    var noSignificantRegression = false
    @Option(help: "The dataset, when run names are ambiguous.") var dataset: String?
    @Option(help: "Significance level for --no-significant-regression.") var alpha = 0.05
    @Flag(help: "Judge an unfinished or partial run (or baseline) on the results it has; the report says it is partial.")
    var allowPartial = false
    @Option(help: "Write a JUnit XML report here.") var junit: String?
    @Option(help: "Write a Markdown summary to this file, replacing it.") var markdown: String?
    @Option(help: "Append a Markdown summary to this file, creating it if needed (e.g. $GITHUB_STEP_SUMMARY).")
    var appendMarkdown: String?

    func conditions() throws -> [GateCondition] {
        var conditions = try min.map { try GateCondition.parse($0, maximum: false) }
        conditions += try max.map { try GateCondition.parse($0, maximum: true) }
        if noSignificantRegression { conditions.append(.noSignificantRegression) }
        return conditions
    }

    func validate() throws {
        do { _ = try conditions() } catch let error as XeroMLError { throw ValidationError(error.message) }
        if min.isEmpty && max.isEmpty && !noSignificantRegression {
            throw ValidationError("give at least one condition: --min, --max or --no-significant-regression")
        }
        if noSignificantRegression && baseline == nil {
            throw ValidationError("--no-significant-regression needs --baseline RUN")
        }
        guard alpha > 0 && alpha < 1 else { throw ValidationError("--alpha must be between 0 and 1") }
    }

    func run() async throws {
        let report: GateReport
        do {
            let xeroml = try store.openReadOnly()
            report = try await xeroml.gate(run: run, conditions: try conditions(), baseline: baseline, datasetName: dataset,
                                           options: ComparisonOptions(alpha: alpha), allowPartial: allowPartial)
            if let junit { try report.junitXML().write(toFile: junit, atomically: true, encoding: .utf8) }
            if let markdown { try (report.markdown() + "\n").write(toFile: markdown, atomically: true, encoding: .utf8) }
            if let appendMarkdown {
                // Appended whole, as CI step-summary files expect (several gates add up in one summary).
                let text = report.markdown() + "\n"
                if FileManager.default.fileExists(atPath: appendMarkdown) {
                    guard let handle = FileHandle(forWritingAtPath: appendMarkdown) else {
                        throw CommandError("cannot append to \(appendMarkdown)")
                    }
                    try handle.seekToEnd()
                    try handle.write(contentsOf: Data(text.utf8))
                    try handle.close()
                } else {
                    try text.write(toFile: appendMarkdown, atomically: true, encoding: .utf8)
                }
            }
        } catch {
            FileHandle.standardError.write(Data("Error: \(store.describe(error))\n".utf8))
            throw ExitCode(2)
        }
        print(report.format())
        if !report.incomplete.isEmpty { throw ExitCode(3) }
        if !report.passed { throw ExitCode(1) }
    }
}
