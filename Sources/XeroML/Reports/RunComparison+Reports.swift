import Foundation

/// How an item is shown in a comparison report: a short label (your dataset id, else the start of
/// XeroML's) and its input as text.
public struct ComparisonItemLabel: Sendable, Hashable {
    /// The short label of the item.
    public var label: String
    /// The item's input, as text.
    public var input: String

    /// A label and an input.
    public init(label: String, input: String) {
        self.label = label
        self.input = input
    }
}

/// What a comparison report shows.
public struct ComparisonReportOptions: Sendable {
    /// How many items to list (0: none).
    public var itemLimit: Int
    /// List only items where a score regressed or a new error appeared.
    public var onlyRegressions: Bool
    /// Colour the terminal text (red regressions, green improvements, yellow noise).
    public var color: Bool
    /// Labels and inputs of the items, by dataset item id (see ``XeroML/itemLabels(for:)``);
    /// items without one show the start of their id.
    public var itemLabels: [String: ComparisonItemLabel]

    /// Options with the defaults of `xeroml compare`: 20 items, all of them, no colour.
    public init(itemLimit: Int = 20, onlyRegressions: Bool = false, color: Bool = false,
                itemLabels: [String: ComparisonItemLabel] = [:]) {
        self.itemLimit = itemLimit
        self.onlyRegressions = onlyRegressions
        self.color = color
        self.itemLabels = itemLabels
    }
}

extension XeroML {
    /// The labels and inputs of `items` for a comparison report: each item's own id (else the first 8
    /// characters of XeroML's) and its input as text.
    public func itemLabels(for items: [ComparedItem]) async throws -> [String: ComparisonItemLabel] {
        var out: [String: ComparisonItemLabel] = [:]
        for item in items {
            if let stored = try await datasetItem(id: item.datasetItemID) {
                out[item.datasetItemID] = ComparisonItemLabel(label: stored.externalID ?? String(stored.id.prefix(8)),
                                                              input: stored.input.displayText)
            }
        }
        return out
    }
}

extension RunComparison {
    /// The items a report lists under `options` (all of them, or those with a regression).
    public func listedItems(_ options: ComparisonReportOptions) -> [ComparedItem] {
        items.filter { !options.onlyRegressions || $0.hasRegression }
    }

    /// What a run did on an item, in one cell.
    static func describe(_ outcome: ItemOutcome?) -> String {
        guard let outcome else { return "(missing)" }
        if outcome.failed { return "error: " + (outcome.error ?? "") }
        return outcome.output?.displayText ?? ""
    }

    static func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
    static func interval(_ s: ScoreComparison) -> String {
        s.meanDifferenceInterval.map { String(format: "[%+.3f, %+.3f]", $0.lower, $0.upper) } ?? "-"
    }
    static func test(_ s: ScoreComparison) -> String { s.isBoolean ? "McNemar" : "Wilcoxon" }

    /// The comparison for a terminal: the runs, a table of runs, a table of scores per candidate,
    /// task failures, and the first items with each run's output. Every value from the runs is
    /// escaped with ``ReportEscaping/terminal(_:)``.
    public func text(_ options: ComparisonReportOptions = ComparisonReportOptions()) -> String {
        let t = ReportEscaping.terminal
        func paint(_ text: String, _ color: TextTable.Color?) -> String {
            guard options.color, let color else { return text }
            return color.code + text + "\u{1B}[0m"
        }
        var out = ["Baseline: \(t(baseline.name)) (\(baseline.id))"]
        if datasetVersionsDiffer {
            out.append("Note: the runs used different dataset versions (" + runs.map { "\(t($0.name)): v\($0.datasetVersion ?? 0)" }
                .joined(separator: ", ") + "); changed items show as missing.")
        }
        for (i, run) in candidates.enumerated() { out.append("Candidate \(i + 1): \(t(run.name)) (\(run.id))") }
        out.append("")
        var runTable = TextTable(headers: ["RUN", "ITEMS", "ERRORS", "LATENCY P50", "LATENCY P95", "COST"])
        for (run, s) in zip(runs, runStatistics) {
            runTable.append([run.name, "\(s.items)", "\(s.errors)", s.latencyP50.map(formatDuration) ?? "-",
                             s.latencyP95.map(formatDuration) ?? "-", s.cost.map { String(format: "%.4f", $0) } ?? "-"])
        }
        out.append(runTable.render(color: options.color))
        out.append("")
        var table = TextTable(headers: ["SCORE", "CANDIDATE", "BASELINE", "CAND.", "Δ MEAN", "95% CI", "P", "TEST",
                                        "IMPROVED", "REGRESSED", "SAME", "NOISE", "MISSING", "ERRORS", ""])
        for s in scores {
            let flag: TextTable.Cell = s.significantRegression ? .init("SIGNIFICANT REGRESSION", color: .red)
                : s.significantImprovement ? .init("significant improvement", color: .green) : ""
            table.append(cells: [
                .init(s.name), .init(candidates[s.candidate].name), .init(Self.fmt(s.baselineMean)),
                .init(Self.fmt(s.candidateMean)), .init(s.meanDifference.map { String(format: "%+.4f", $0) } ?? "-"),
                .init(Self.interval(s)), .init(s.pValue.map { String(format: "%.3g", $0) } ?? "-"), .init(Self.test(s)),
                .init("\(s.count(.improved) + s.count(.fixedError))", color: .green),
                .init("\(s.count(.regressed) + s.count(.newError))", color: .red), .init("\(s.count(.unchanged))"),
                .init("\(s.count(.withinNoise))"), .init("\(s.count(.missing))"),
                .init("\(s.count(.newError))/\(s.count(.fixedError))"), flag,
            ])
        }
        out.append(table.render(maxColumnWidth: 60, color: options.color))
        for e in errorComparisons where e.newErrors + e.fixedErrors > 0 {
            let flag = e.significantRegression ? " " + paint("SIGNIFICANT REGRESSION", .red) : ""
            out.append("Task failures, \(t(candidates[e.candidate].name)): \(e.newErrors) new, \(e.fixedErrors) fixed "
                       + "(McNemar p = \(String(format: "%.3g", e.pValue)))\(flag)")
        }
        guard options.itemLimit > 0 else { return out.joined(separator: "\n") }
        let listed = listedItems(options)
        let shown = listed.prefix(options.itemLimit)
        out.append("")
        out.append(options.onlyRegressions ? "Items with regressions (\(listed.count)):" : "Items (\(listed.count)):")
        var itemTable = TextTable(headers: ["ITEM", "INPUT"] + runs.map { $0.name.uppercased() } + ["CHANGES"])
        for item in shown {
            var worst: ScoreChange?
            let changes = item.changes.enumerated().flatMap { index, byName in
                byName.filter { $0.value != .unchanged }.sorted { $0.key < $1.key }.map { name, change in
                    if worst == nil || change.severity > worst!.severity { worst = change }
                    return "\(candidates.count > 1 ? "#\(index + 1) " : "")\(name) \(change.rawValue)"
                }
            }
            let label = options.itemLabels[item.datasetItemID]
            itemTable.append(cells: [.init(label?.label ?? String(item.datasetItemID.prefix(8))), .init(label?.input ?? "")]
                             + item.outcomes.map { .init(Self.describe($0)) }
                             + [.init(changes.joined(separator: ", "), color: worst?.color)])
        }
        out.append(itemTable.render(maxColumnWidth: 36, color: options.color))
        if listed.count > options.itemLimit { out.append("… \(listed.count - options.itemLimit) more (--limit)") }
        return out.joined(separator: "\n")
    }

    /// The comparison in Markdown, for a pull-request comment or a CI step summary: a heading that
    /// names the baseline and every candidate, a table of scores (one row per score and candidate,
    /// only scores the baseline or that candidate has), and the first items with each run's output
    /// in a column named after its run. Every value is escaped with ``ReportEscaping/markdown(_:)``.
    public func markdown(_ options: ComparisonReportOptions = ComparisonReportOptions()) -> String {
        let m = ReportEscaping.markdown
        var md = "### XeroML comparison: baseline \(m(baseline.name)) vs " + candidates.map { m($0.name) }.joined(separator: ", ")
            + "\n\n"
        md += "| score | candidate | baseline mean | candidate mean | Δ mean | 95% CI | p | test | improved | regressed | missing | |\n"
        md += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for s in scores {
            let flag = s.significantRegression ? "❌ significant regression" : s.significantImprovement ? "✅ significant improvement" : ""
            let cells = [m(s.name), m(candidates[s.candidate].name), Self.fmt(s.baselineMean), Self.fmt(s.candidateMean),
                         s.meanDifference.map { String(format: "%+.4f", $0) } ?? "-", Self.interval(s),
                         s.pValue.map { String(format: "%.3g", $0) } ?? "-", Self.test(s),
                         "\(s.count(.improved) + s.count(.fixedError))", "\(s.count(.regressed) + s.count(.newError))",
                         "\(s.count(.missing))", flag]
            md += "| " + cells.joined(separator: " | ") + " |\n"
        }
        let failures = errorComparisons.filter { $0.newErrors + $0.fixedErrors > 0 }
        if !failures.isEmpty {
            md += "\n| task failures | new | fixed | p | |\n|---|---|---|---|---|\n"
            for e in failures {
                md += "| \(m(candidates[e.candidate].name)) | \(e.newErrors) | \(e.fixedErrors) | "
                md += String(format: "%.3g", e.pValue) + " | " + (e.significantRegression ? "❌ significant regression" : "") + " |\n"
            }
        }
        let listed = listedItems(options)
        guard options.itemLimit > 0, !listed.isEmpty else { return md }
        let headers = ["item", "input", "baseline: " + baseline.name]
            + candidates.enumerated().map { "candidate \($0.offset + 1): \($0.element.name)" } + ["changes"]
        md += "\n| " + headers.map(m).joined(separator: " | ") + " |\n"
        md += "|" + String(repeating: "---|", count: headers.count) + "\n"
        for item in listed.prefix(options.itemLimit) {
            let label = options.itemLabels[item.datasetItemID]
            let changes = item.changes.enumerated().flatMap { index, byName in
                byName.filter { $0.value != .unchanged }.sorted { $0.key < $1.key }.map { name, change in
                    (candidates.count > 1 ? "\(candidates[index].name): " : "") + "\(name) \(change.rawValue)"
                }
            }
            let cells = [label?.label ?? String(item.datasetItemID.prefix(8)), label?.input ?? ""]
                + item.outcomes.map(Self.describe) + [changes.joined(separator: ", ")]
            md += "| " + cells.map(m).joined(separator: " | ") + " |\n"
        }
        if listed.count > options.itemLimit { md += "\n… \(listed.count - options.itemLimit) more items\n" }
        return md
    }

    /// The comparison as CSV: one row per item and candidate, with each run's output and, per score,
    /// the baseline's and the candidate's value and the change. Fields are quoted as RFC 4180 says.
    public func csv(_ options: ComparisonReportOptions = ComparisonReportOptions()) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let names = Array(Set(scores.map(\.name))).sorted()
        var rows = [(["dataset_item_id", "candidate"] + runs.indices.map { "output_\($0)" }
                     + names.flatMap { ["\($0)_baseline", "\($0)_candidate", "\($0)_change"] }).map(field).joined(separator: ",")]
        for item in listedItems(options) {
            for (index, changes) in item.changes.enumerated() {
                let base = item.outcomes[0], cand = item.outcomes[index + 1]
                var row = [item.datasetItemID, candidates[index].id]
                row += item.outcomes.map { $0?.output?.displayText ?? "" }
                for name in names {
                    row += [base?.score(name).map { "\($0.mean)" } ?? "", cand?.score(name).map { "\($0.mean)" } ?? "",
                            changes[name]?.rawValue ?? ""]
                }
                rows.append(row.map(field).joined(separator: ","))
            }
        }
        return rows.joined(separator: "\n") + "\n"
    }

    /// The comparison as JSON, for tools: runs, scores (with the interval's method) and items.
    public func jsonValue(_ options: ComparisonReportOptions = ComparisonReportOptions()) -> JSONValue {
        func number(_ d: Double?) -> JSONValue { d.map { $0.isFinite ? .double($0) : .null } ?? .null }
        let scoreValues: [JSONValue] = scores.map { s in
            var o: [String: JSONValue] = [
                "name": .string(s.name), "candidate": .string(candidates[s.candidate].id),
                "test": .string(s.isBoolean ? "mcnemar_exact" : "wilcoxon_signed_rank"),
                "baseline_mean": number(s.baselineMean), "candidate_mean": number(s.candidateMean),
                "pairs": .int(Int64(s.pairs)), "mean_difference": number(s.meanDifference), "p_value": number(s.pValue),
                "significant_regression": .bool(s.significantRegression),
                "significant_improvement": .bool(s.significantImprovement),
                "counts": .object(Dictionary(uniqueKeysWithValues: ScoreChange.allCases.map { ($0.rawValue, JSONValue.int(Int64(s.count($0)))) })),
            ]
            if let w = s.wilcoxon { o["p_value_exact"] = .bool(w.exact) }
            if let ci = s.meanDifferenceInterval {
                o["mean_difference_ci95"] = [number(ci.lower), number(ci.upper)]
                o["mean_difference_ci95_method"] = .string(ci.method.rawValue)
            }
            if let range = s.range { o["range"] = [number(range.lowerBound), number(range.upperBound)] }
            return .object(o)
        }
        let itemValues: [JSONValue] = listedItems(options).map { item in
            .object([
                "dataset_item_id": .string(item.datasetItemID),
                "runs": .array(item.outcomes.map { o in
                    guard let o else { return .null }
                    return .object([
                        "output": o.output ?? .null, "error": o.error.map(JSONValue.string) ?? .null,
                        "repetitions": .int(Int64(o.repetitions)),
                        "latency_ms": .double(Double(o.latency.components.attoseconds) / 1e15 + Double(o.latency.components.seconds) * 1000),
                        "cost": number(o.cost), "scores": .object(o.scores.mapValues { .double($0.mean) }),
                    ])
                }),
                "changes": .array(item.changes.map { .object($0.mapValues { .string($0.rawValue) }) }),
            ])
        }
        return [
            "baseline": .string(baseline.id),
            "candidates": .array(candidates.map { .string($0.id) }),
            "runs": .array(zip(runs, runStatistics).map { run, s in
                .object(["id": .string(run.id), "name": .string(run.name), "items": .int(Int64(s.items)),
                         "errors": .int(Int64(s.errors)), "cost": number(s.cost)])
            }),
            "scores": .array(scoreValues), "items": .array(itemValues),
            "task_failures": .array(errorComparisons.map { e in
                .object(["candidate": .string(candidates[e.candidate].id), "new_errors": .int(Int64(e.newErrors)),
                         "fixed_errors": .int(Int64(e.fixedErrors)), "p_value": number(e.pValue),
                         "significant_regression": .bool(e.significantRegression)])
            }),
        ]
    }
}

extension ScoreChange {
    var color: TextTable.Color? {
        switch self {
        case .regressed, .newError: .red
        case .improved, .fixedError: .green
        case .withinNoise: .yellow
        default: nil
        }
    }

    /// Which colour a cell of several changes takes: regressions first, then improvements, then noise.
    var severity: Int {
        switch self {
        case .regressed, .newError: 3
        case .improved, .fixedError: 2
        case .withinNoise: 1
        default: 0
        }
    }
}

