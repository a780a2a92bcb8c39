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
            Per score: baseline and candidate means, the mean paired difference with a bootstrap 95% \
            interval, the p-value of a Wilcoxon signed-rank test (numeric) or an exact McNemar test \
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
    @Option(help: "Seed of the bootstrap.") var seed: UInt64 = 1

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
        let options = ComparisonOptions(lowerIsBetter: Set(lowerIsBetter), alpha: alpha, seed: seed)
        let comparison = try await xeroml.compare(baseline: runs[0], candidates: Array(runs.dropFirst()),
                                                  datasetName: dataset, options: options)
        let items = comparison.items.filter { !onlyRegressions || $0.hasRegression }
        switch format {
        case "json": print(try await json(comparison, items: items, xeroml: xeroml).jsonString)
        case "csv": print(csv(comparison, items: items), terminator: "")
        case "markdown": print(try await markdown(comparison, items: items, xeroml: xeroml))
        default: print(try await text(comparison, items: items, xeroml: xeroml))
        }
    }

    // MARK: Text

    var useColor: Bool { isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    func paint(_ text: String, _ change: ScoreChange?) -> String {
        guard useColor, let change else { return text }
        switch change {
        case .regressed, .newError: return "\u{1B}[31m\(text)\u{1B}[0m"
        case .improved, .fixedError: return "\u{1B}[32m\(text)\u{1B}[0m"
        case .withinNoise: return "\u{1B}[33m\(text)\u{1B}[0m"
        default: return text
        }
    }

    func text(_ c: RunComparison, items: [ComparedItem], xeroml: XeroML) async throws -> String {
        var out = ["Baseline: \(c.baseline.name) (\(c.baseline.id))"]
        if c.datasetVersionsDiffer {
            out.append("Note: the runs used different dataset versions (" + c.runs.map { "\($0.name): v\($0.datasetVersion ?? 0)" }
                .joined(separator: ", ") + "); changed items show as missing.")
        }
        for (i, run) in c.candidates.enumerated() { out.append("Candidate \(i + 1): \(run.name) (\(run.id))") }
        out.append("")
        var runTable = Table(headers: ["RUN", "ITEMS", "ERRORS", "LATENCY P50", "LATENCY P95", "COST"])
        for (run, s) in zip(c.runs, c.runStatistics) {
            runTable.append([run.name, "\(s.items)", "\(s.errors)", s.latencyP50.map(formatSeconds) ?? "-",
                             s.latencyP95.map(formatSeconds) ?? "-", s.cost.map { String(format: "%.4f", $0) } ?? "-"])
        }
        out.append(runTable.render())
        out.append("")
        var table = Table(headers: ["SCORE", "CANDIDATE", "BASELINE", "CAND.", "Δ MEAN", "95% CI", "P", "TEST",
                                    "IMPROVED", "REGRESSED", "SAME", "NOISE", "MISSING", "ERRORS", ""])
        for s in c.scores {
            let ci = s.bootstrapInterval95.map { String(format: "[%+.3f, %+.3f]", $0.lowerBound, $0.upperBound) } ?? "-"
            let flag = s.significantRegression ? paint("SIGNIFICANT REGRESSION", .regressed)
                : s.significantImprovement ? paint("significant improvement", .improved) : ""
            table.append([s.name, c.candidates[s.candidate].name, fmt(s.baselineMean), fmt(s.candidateMean),
                          s.meanDifference.map { String(format: "%+.4f", $0) } ?? "-", ci,
                          s.pValue.map { String(format: "%.3g", $0) } ?? "-", s.isBoolean ? "McNemar" : "Wilcoxon",
                          paint("\(s.count(.improved) + s.count(.fixedError))", .improved),
                          paint("\(s.count(.regressed) + s.count(.newError))", .regressed), "\(s.count(.unchanged))",
                          "\(s.count(.withinNoise))", "\(s.count(.missing))",
                          "\(s.count(.newError))/\(s.count(.fixedError))", flag])
        }
        out.append(table.render(maxColumnWidth: 60))
        for e in c.errorComparisons where e.newErrors + e.fixedErrors > 0 {
            let flag = e.significantRegression ? " " + paint("SIGNIFICANT REGRESSION", .regressed) : ""
            out.append("Task failures, \(c.candidates[e.candidate].name): \(e.newErrors) new, \(e.fixedErrors) fixed "
                       + "(McNemar p = \(String(format: "%.3g", e.pValue)))\(flag)")
        }
        guard limit > 0 else { return out.joined(separator: "\n") }
        let shown = Array(items.prefix(limit))
        let inputs = try await inputsOf(shown, xeroml: xeroml)
        out.append("")
        out.append(onlyRegressions ? "Items with regressions (\(items.count)):" : "Items (\(items.count)):")
        var itemTable = Table(headers: ["ITEM", "INPUT"] + c.runs.map { $0.name.uppercased() } + ["CHANGES"])
        for item in shown {
            let changes = item.changes.enumerated().flatMap { index, byName in
                byName.filter { $0.value != .unchanged }.sorted { $0.key < $1.key }.map { name, change in
                    paint("\(c.candidates.count > 1 ? "#\(index + 1) " : "")\(name) \(change.rawValue)", change)
                }
            }
            let label = inputs[item.datasetItemID]?.0 ?? String(item.datasetItemID.prefix(8))
            let input = inputs[item.datasetItemID]?.1 ?? ""
            let outputs: [String] = item.outcomes.map(Self.describe)
            itemTable.append([label, input] + outputs + [changes.joined(separator: ", ")])
        }
        out.append(itemTable.render(maxColumnWidth: 36))
        if items.count > limit { out.append("… \(items.count - limit) more (--limit)") }
        return out.joined(separator: "\n")
    }

    /// What a run did on an item, in one cell.
    static func describe(_ outcome: ItemOutcome?) -> String {
        guard let outcome else { return "(missing)" }
        if outcome.failed { return "error: " + (outcome.error ?? "") }
        return outcome.output?.displayText ?? ""
    }

    func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }

    /// The external id (or short id) and input of each listed item.
    func inputsOf(_ items: [ComparedItem], xeroml: XeroML) async throws -> [String: (String, String)] {
        var out: [String: (String, String)] = [:]
        for item in items {
            if let stored = try await xeroml.datasetItem(id: item.datasetItemID) {
                out[item.datasetItemID] = (stored.externalID ?? String(stored.id.prefix(8)), stored.input.displayText)
            }
        }
        return out
    }

    // MARK: Markdown

    func markdown(_ c: RunComparison, items: [ComparedItem], xeroml: XeroML) async throws -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        var md = "### XeroML comparison: baseline `\(c.baseline.name)` vs " + c.candidates.map { "`\($0.name)`" }.joined(separator: ", ") + "\n\n"
        md += "| score | candidate | baseline | candidate mean | Δ mean | 95% CI | p | improved | regressed | missing | |\n"
        md += "|---|---|---|---|---|---|---|---|---|---|---|\n"
        for s in c.scores {
            let ci = s.bootstrapInterval95.map { String(format: "[%+.3f, %+.3f]", $0.lowerBound, $0.upperBound) } ?? "-"
            md += "| \(cell(s.name)) | \(cell(c.candidates[s.candidate].name)) | \(fmt(s.baselineMean)) | \(fmt(s.candidateMean)) | "
            md += "\(s.meanDifference.map { String(format: "%+.4f", $0) } ?? "-") | \(ci) | \(s.pValue.map { String(format: "%.3g", $0) } ?? "-") | "
            md += "\(s.count(.improved) + s.count(.fixedError)) | \(s.count(.regressed) + s.count(.newError)) | \(s.count(.missing)) | "
            md += (s.significantRegression ? "❌ significant regression" : s.significantImprovement ? "✅ significant improvement" : "") + " |\n"
        }
        guard limit > 0, !items.isEmpty else { return md }
        let shown = Array(items.prefix(limit))
        let inputs = try await inputsOf(shown, xeroml: xeroml)
        md += "\n| item | input | " + c.runs.map { cell($0.name) }.joined(separator: " | ") + " | changes |\n"
        md += "|---|---|" + String(repeating: "---|", count: c.runs.count) + "---|\n"
        for item in shown {
            let outputs: [String] = item.outcomes.map(Self.describe)
            let changes = item.changes.flatMap { $0.filter { $0.value != .unchanged }.map { "\($0.key) \($0.value.rawValue)" } }.sorted()
            md += "| \(cell(inputs[item.datasetItemID]?.0 ?? "")) | \(cell(inputs[item.datasetItemID]?.1 ?? "")) | "
            md += outputs.map(cell).joined(separator: " | ") + " | \(cell(changes.joined(separator: ", "))) |\n"
        }
        return md
    }

    // MARK: JSON and CSV

    func json(_ c: RunComparison, items: [ComparedItem], xeroml: XeroML) async throws -> JSONValue {
        func number(_ d: Double?) -> JSONValue { d.map { $0.isFinite ? .double($0) : .null } ?? .null }
        let scores: [JSONValue] = c.scores.map { s in
            var o: [String: JSONValue] = [
                "name": .string(s.name), "candidate": .string(c.candidates[s.candidate].id),
                "test": .string(s.isBoolean ? "mcnemar_exact" : "wilcoxon_signed_rank"),
                "baseline_mean": number(s.baselineMean), "candidate_mean": number(s.candidateMean),
                "pairs": .int(Int64(s.pairs)), "mean_difference": number(s.meanDifference), "p_value": number(s.pValue),
                "significant_regression": .bool(s.significantRegression),
                "significant_improvement": .bool(s.significantImprovement),
                "counts": .object(Dictionary(uniqueKeysWithValues: ScoreChange.allCases.map { ($0.rawValue, JSONValue.int(Int64(s.count($0)))) })),
            ]
            if let ci = s.bootstrapInterval95 { o["mean_difference_ci95"] = [number(ci.lowerBound), number(ci.upperBound)] }
            return .object(o)
        }
        let itemValues: [JSONValue] = items.map { item in
            .object([
                "dataset_item_id": .string(item.datasetItemID),
                "runs": .array(item.outcomes.map { o in
                    guard let o else { return .null }
                    return .object([
                        "output": o.output ?? .null, "error": o.error.map(JSONValue.string) ?? .null,
                        "repetitions": .int(Int64(o.repetitions)), "latency_ms": .double(Double(o.latency.components.attoseconds) / 1e15 + Double(o.latency.components.seconds) * 1000),
                        "cost": number(o.cost), "scores": .object(o.scores.mapValues { .double($0.mean) }),
                    ])
                }),
                "changes": .array(item.changes.map { .object($0.mapValues { .string($0.rawValue) }) }),
            ])
        }
        return [
            "baseline": .string(c.baseline.id),
            "candidates": .array(c.candidates.map { .string($0.id) }),
            "runs": .array(zip(c.runs, c.runStatistics).map { run, s in
                .object(["id": .string(run.id), "name": .string(run.name), "items": .int(Int64(s.items)),
                         "errors": .int(Int64(s.errors)), "cost": number(s.cost)])
            }),
            "scores": .array(scores), "items": .array(itemValues),
            "task_failures": .array(c.errorComparisons.map { e in
                .object(["candidate": .string(c.candidates[e.candidate].id), "new_errors": .int(Int64(e.newErrors)),
                         "fixed_errors": .int(Int64(e.fixedErrors)), "p_value": number(e.pValue),
                         "significant_regression": .bool(e.significantRegression)])
            }),
        ]
    }

    func csv(_ c: RunComparison, items: [ComparedItem]) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let names = Array(Set(c.scores.map(\.name))).sorted()
        var rows = [(["dataset_item_id", "candidate"] + c.runs.indices.map { "output_\($0)" }
                     + names.flatMap { ["\($0)_baseline", "\($0)_candidate", "\($0)_change"] }).joined(separator: ",")]
        for item in items {
            for (index, changes) in item.changes.enumerated() {
                let base = item.outcomes[0], cand = item.outcomes[index + 1]
                var row = [item.datasetItemID, c.candidates[index].id]
                row += item.outcomes.map { $0?.output?.displayText ?? "" }
                for name in names {
                    row += [base?.scores[name].map { "\($0.mean)" } ?? "", cand?.scores[name].map { "\($0.mean)" } ?? "",
                            changes[name]?.rawValue ?? ""]
                }
                rows.append(row.map(field).joined(separator: ","))
            }
        }
        return rows.joined(separator: "\n") + "\n"
    }
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
    @Option(help: "Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).") var markdown: String?

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
            if let markdown {
                // Append, as CI step-summary files expect.
                let text = report.markdown() + "\n"
                if FileManager.default.fileExists(atPath: markdown) {
                    guard let handle = FileHandle(forWritingAtPath: markdown) else {
                        throw CommandError("cannot append to \(markdown)")
                    }
                    handle.seekToEndOfFile()
                    handle.write(Data(text.utf8))
                    try handle.close()
                } else {
                    try text.write(toFile: markdown, atomically: true, encoding: .utf8)
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
