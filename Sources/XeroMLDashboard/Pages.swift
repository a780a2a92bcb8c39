import Foundation
import XeroML

/// The dashboard's pages: pure functions from values to HTML documents.
///
/// ## Topics
/// - ``home(_:)``
/// - ``dataset(_:query:)``
/// - ``run(_:items:query:)``
/// - ``trace(_:)``
/// - ``compare(_:query:)``
/// - ``error(status:title:message:)``
public enum Pages {
    /// The store's file, shown in the header (set once by the server).
    public struct Context: Sendable {
        public var storeName: String
        /// Where the header's **Sign out** button posts to (a server behind a login); `nil` shows none.
        public var signOutPath: String?
        public init(storeName: String, signOutPath: String? = nil) {
            self.storeName = storeName
            self.signOutPath = signOutPath
        }
    }

    static func layout(_ context: Context, title: String, crumbs: [(String, Link?)], live: Bool = false, _ body: [HTML]) -> HTML {
        var nav: [HTML] = [.a(Link([]), "XeroML", cls: "brand")]
        for (label, link) in crumbs {
            nav.append(.span("sep", "/"))
            nav.append(link.map { .a($0, label) } ?? .element("span", [.named("aria-current", "page")], text: label))
        }
        var head: [HTML] = [
            .void("meta", [.named("charset", "utf-8")]),
            .void("meta", [.named("name", "viewport"), .named("content", "width=device-width, initial-scale=1")]),
            .element("title", [], text: title + " · XeroML"),
            .void("link", [.named("rel", "stylesheet"), .href(Link(["assets", "dashboard.css"]))]),
        ]
        if live { head.append(.element("script", [.src(Link(["assets", "dashboard.js"])), .flag("defer")])) }
        return .document(.element("html", [.named("lang", "en")], [
            .element("head", [], head),
            .element("body", [], [
                .element("a", [.href(Link([], fragment: "main")), .class("skip")], text: "Skip to content"),
                .element("header", [.class("top")], [
                    .element("nav", [.named("aria-label", "Breadcrumb")], nav),
                    .span("store", context.storeName),
                ] + (context.signOutPath.map { path in
                    [HTML.element("form", [.action(Link(path.split(separator: "/").map(String.init))), .named("method", "post"),
                                           .class("sign-out")], [.submit("Sign out")])]
                } ?? [])),
                .element("main", [.id("main")], body),
            ]),
        ]))
    }

    // MARK: Home

    /// Datasets and the latest runs.
    public static func home(_ data: HomeData, context: Context) -> HTML {
        let datasets = HTML.table(
            caption: "Datasets", headers: ["Dataset", "Items", "Version", "Runs", "Last run"],
            rows: data.datasets.map { d in
                [.a(Link(["datasets", d.id]), d.name), .text("\(d.itemCount)"), .text("\(d.version)"), .text("\(d.runCount)"),
                 .text(formatDate(d.lastRunAt))]
            }, numeric: [1, 2, 3])
        return layout(context, title: "Home", crumbs: [], [
            .h1("Datasets and runs"),
            .section("Datasets", id: "datasets", [data.datasets.isEmpty ? .p("No datasets yet: `xeroml quickstart` makes one.", cls: "muted") : datasets]),
            .section("Latest runs", id: "runs", [data.runs.isEmpty ? .p("No runs yet.", cls: "muted") : runsTable(data.runs, showDataset: true)]),
        ])
    }

    static func runsTable(_ runs: [RunListing], showDataset: Bool, selectable: Bool = false) -> HTML {
        var headers = ["Run", "Status", "Items", "Errors", "Scores", "Created"]
        if showDataset { headers.insert("Dataset", at: 1) }
        if selectable { headers.insert("Compare", at: 0) }
        let rows = runs.map { r -> [HTML] in
            var cells: [HTML] = [
                .a(Link(["runs", r.id]), r.name), .status(r.status), .text("\(r.itemCount)"),
                r.errorCount > 0 ? .span("bad", "\(r.errorCount)") : .text("0"),
                .element("span", [.class("means")], r.scores.prefix(4).map { m in
                    .element("span", [.class("mean"), .named("title", m.low.map { "95% interval [\(formatValue($0)), \(formatValue(m.high ?? $0))], n = \(m.count)" } ?? "n = \(m.count)")],
                             text: "\(m.name) \(formatValue(m.mean))")
                }),
                .text(formatDate(r.createdAt)),
            ]
            if showDataset { cells.insert(r.datasetID.map { .a(Link(["datasets", $0]), r.datasetName ?? "") } ?? .span("muted", "–"), at: 1) }
            if selectable {
                cells.insert(.void("input", [.named("type", "checkbox"), .named("name", "run"), .named("value", r.id),
                                             .named("aria-label", "Compare \(r.name)")]), at: 0)
            }
            return cells
        }
        return .table(headers: headers, rows: rows, numeric: Set([2, 3].map { $0 + (showDataset ? 1 : 0) + (selectable ? 1 : 0) }))
    }

    // MARK: Dataset

    /// A dataset: its runs (check two or more to compare), each score's mean across runs, its items.
    public static func dataset(_ data: DatasetPageData, query: QueryParameters, context: Context) -> HTML {
        let d = data.dataset
        func link(page: Int) -> Link {
            var q: [(String, String)] = []
            if let v = query["version"] { q.append(("version", v)) }
            if let s = query["q"] { q.append(("q", s)) }
            q.append(("page", "\(page)"))
            return Link(["datasets", d.id], query: q, fragment: "items")
        }
        var names: [String] = []
        for run in data.runs { for m in run.scores where !names.contains(m.name) { names.append(m.name) } }
        let charts = names.map { name in
            HTML.element("figure", [.class("chart-box")], [
                Charts.meanIntervals(name: name, points: data.runs.map { run in (run.name, run.scores.first { $0.name == name }) }),
                .element("figcaption", [], text: "\(name): mean and 95% interval per run, oldest first"),
            ])
        }
        let newestFirst = Array(data.runs.reversed())
        let items = HTML.table(
            headers: ["Item", "Input", "Expected output", "Metadata", "Version"],
            rows: data.items.map { item in
                [.element("code", [], text: item.externalID ?? String(item.id.suffix(12))), .cell(item.input), .cell(item.expectedOutput),
                 .cell(item.metadata), .text("\(item.createdVersion)" + (item.archivedVersion.map { "–\($0 - 1)" } ?? ""))]
            })
        return layout(context, title: d.name, crumbs: [(d.name, nil)], [
            .h1(d.name),
            d.description.map { .p($0, cls: "lead") } ?? .empty,
            .facts([("Items", .text("\(d.itemCount) at version \(d.version)")), ("Archived", .text("\(d.archivedCount)")),
                    ("Runs", .text("\(d.runCount)")), ("Created", .text(formatDate(d.createdAt)))]),
            .section("Runs", id: "runs", [
                data.runs.isEmpty ? .p("No runs of this dataset yet.", cls: "muted") :
                    .element("form", [.action(Link(["compare"])), .named("method", "get"), .class("compare-form")], [
                        runsTable(newestFirst, showDataset: false, selectable: true),
                        .element("p", [], [.submit("Compare runs"), .span("muted", " Check two or more runs; the oldest checked is the baseline.")]),
                    ]),
            ]),
            charts.isEmpty ? .empty : .section("Scores across runs", id: "trend", [.div("charts", charts)]),
            .section("Items", id: "items", [
                .element("form", [.action(Link(["datasets", d.id], fragment: "items")), .named("method", "get"), .class("filters")], [
                    .select(name: "version", label: "Version", options: (0...max(0, d.version)).reversed().map { ("\($0)", "\($0)") },
                            selected: "\(data.version)"),
                    .input(name: "q", label: "Search", value: query["q"] ?? "", type: "search", placeholder: "input, expected, metadata"),
                    .submit("Show"),
                ]),
                data.items.isEmpty ? .p("No items match.", cls: "muted") : items,
                .pager(page: data.page, hasNext: data.hasNextPage, link: link),
            ]),
        ])
    }

    // MARK: Run

    /// A run: status, facts, score summaries and histograms, latency, errors and a page of items.
    public static func run(_ detail: RunDetail, items: ItemsPage, query: QueryParameters, context: Context) -> HTML {
        let r = detail.run
        let running = r.status == "running"
        var crumbs: [(String, Link?)] = []
        if let id = r.datasetID { crumbs.append((r.datasetName ?? "dataset", Link(["datasets", id]))) }
        crumbs.append((r.name, nil))
        var metadataModel: String?
        if case .object(let m) = r.metadata ?? .null { metadataModel = m["model"]?.stringValue }
        let usage = detail.usage
        var facts: [(String, HTML)] = [
            ("Status", .status(r.status)),
            ("Items", .element("span", [.id("live-items")], text: "\(r.itemCount)")),
            ("Errors", .element("span", [.id("live-errors")], text: "\(r.errorCount)")),
            ("Dataset", r.datasetID.map { .a(Link(["datasets", $0]), "\(r.datasetName ?? "") v\(r.datasetVersion ?? 0)") } ?? .text("–")),
            ("Started", .text(formatDate(r.createdAt))),
            ("Finished", .text(formatDate(r.finishedAt))),
            ("Duration", .text(formatDuration(from: r.createdAt, to: r.finishedAt))),
            ("Tokens", .text("\(usage.totalTokens) (\(usage.promptTokens) prompt, \(usage.completionTokens) completion; \(usage.generations) generations)")),
            ("Cost", .text(formatCost(usage.cost))),
            ("Evaluators", .text("\(detail.evaluatorUsage.totalTokens) tokens, \(formatCost(detail.evaluatorUsage.cost))")),
        ]
        if let metadataModel { facts.insert(("Model", .text(metadataModel)), at: 4) }
        if let description = r.description { facts.append(("Description", .text(description))) }
        if let metadata = r.metadata { facts.append(("Metadata", .json(metadata))) }

        let scoreRows = detail.scores.map { s -> [HTML] in
            [.text(s.name), .text(s.dataType), .text(formatOptional(s.mean)),
             .text(s.low.map { "[\(formatValue($0)), \(formatValue(s.high ?? $0))]" } ?? "–"),
             .text(formatPercent(s.passRate)), .text("\(s.count)"), s.unscored > 0 ? .span("warn", "\(s.unscored)") : .text("0"),
             .text(formatOptional(s.min)), .text(formatOptional(s.median)), .text(formatOptional(s.p95)), .text(formatOptional(s.max))]
        }
        var histograms = detail.histograms.map { h in
            HTML.element("figure", [.class("chart-box")], [Charts.histogram(h), .element("figcaption", [], text: h.name)])
        }
        if let latency = detail.latency {
            histograms.append(.element("figure", [.class("chart-box")], [
                Charts.histogram(latency),
                .element("figcaption", [], text: "latency: p50 \(formatMilliseconds(detail.latencyP50Ms)), p95 \(formatMilliseconds(detail.latencyP95Ms)), p99 \(formatMilliseconds(detail.latencyP99Ms))"),
            ]))
        }
        var body: [HTML] = [
            .h1(r.name),
            running ? .element("p", [.id("live"), .class("live"), .named("data-run", r.id), .named("aria-live", "polite")],
                               text: "Running: \(r.itemCount) items so far. This page updates itself.") : .empty,
            .facts(facts),
            .section("Scores", id: "scores", [
                detail.scores.isEmpty ? .p("No item scores.", cls: "muted") :
                    .table(headers: ["Score", "Type", "Mean", "95% interval", "Pass rate", "Values", "Unscored", "Min", "Median", "p95", "Max"],
                           rows: scoreRows, numeric: [2, 4, 5, 6, 7, 8, 9, 10]),
                .div("charts", histograms),
            ]),
        ]
        if !detail.runScores.isEmpty {
            body.append(.section("Run scores", id: "run-scores", [
                .table(headers: ["Score", "Value", "Comment", "Source"], rows: detail.runScores.map { s in
                    [.text(s.name), .text(s.display), .text(s.comment ?? ""), .text(s.evaluator.map { "\(s.source) (\($0))" } ?? s.source)]
                }),
            ]))
        }
        if !detail.errors.isEmpty {
            body.append(.section("Errors", id: "errors", [
                .table(headers: ["Count", "Error", "Example"], rows: detail.errors.map { e in
                    [.text("\(e.count)"), .folded(e.message, fold: 300), .a(Link(["items", e.exampleItemID]), "open item")]
                }, numeric: [0]),
            ]))
        }
        body.append(itemsSection(detail, items: items, query: query))
        return layout(context, title: r.name, crumbs: crumbs, live: running, body)
    }

    static func itemsSection(_ detail: RunDetail, items: ItemsPage, query: QueryParameters) -> HTML {
        let runID = detail.run.id
        let names = detail.scores.map(\.name)
        // Shading spans each score's range over the run; pass and fail are always the two ends.
        let ranges = Dictionary(detail.scores.map { s in (s.name, s.dataType == "boolean" ? (0.0, 1.0) : (s.min, s.max)) },
                                uniquingKeysWith: { a, _ in a })
        let diff = query["diff"] == "expected"
        func link(page: Int) -> Link {
            var q = query.pairs.filter { $0.0 != "page" && !$0.1.isEmpty }
            q.append(("page", "\(page)"))
            return Link(["runs", runID], query: q, fragment: "items")
        }
        var sortOptions: [(String, String)] = [("started", "start order"), ("latency", "latency"), ("cost", "cost")]
        sortOptions += names.map { ("score:" + $0, "score: " + $0) }
        let form = HTML.element("form", [.action(Link(["runs", runID], fragment: "items")), .named("method", "get"), .class("filters")], [
            .select(name: "filter", label: "Show", options: [("all", "all items"), ("errors", "errors"), ("unscored", "unscored")],
                    selected: query["filter"] ?? "all"),
            .select(name: "score", label: "Score", options: [("", "any")] + names.map { ($0, $0) }, selected: query["score"] ?? ""),
            .select(name: "op", label: "", options: [("below", "below"), ("above", "above")], selected: query["op"] ?? "below"),
            .input(name: "value", label: "", value: query["value"] ?? "", type: "number", placeholder: "value"),
            .input(name: "q", label: "Search", value: query["q"] ?? "", type: "search", placeholder: "input, output, error"),
            .select(name: "sort", label: "Sort", options: sortOptions, selected: query["sort"] ?? "started"),
            .select(name: "order", label: "", options: [("asc", "ascending"), ("desc", "descending")], selected: query["order"] ?? "asc"),
            .element("label", [], [
                .void("input", [.named("type", "checkbox"), .named("name", "diff"), .named("value", "expected"), .flag("checked", diff)]),
                .text(" diff against expected"),
            ]),
            .submit("Apply"),
        ])
        let rows = items.items.map { item -> [HTML] in
            let output: HTML
            if let error = item.error {
                output = .element("div", [.class("error-text")], [.folded(error, fold: 300, pre: false)])
            } else if diff, let expected = item.expectedOutput, let out = item.output {
                output = WordDiff.html(from: expected.stringValue ?? expected.jsonString, to: out.stringValue ?? out.jsonString)
            } else {
                output = .cell(item.output)
            }
            var cells: [HTML] = [
                .element("a", [.href(Link(["items", item.id])), .id("item-" + item.id), .named("title", "Open the trace of this item")],
                         text: "#" + String(item.id.suffix(6)) + (item.repetition > 0 ? " r\(item.repetition)" : "")),
                .cell(item.input), .cell(item.expectedOutput), output,
            ]
            for name in names {
                let range = ranges[name] ?? (0, 1)
                cells.append(.scoreCell(item.scores.first { $0.name == name }, low: range.0, high: range.1))
            }
            cells.append(.text(formatMilliseconds(item.latencyMs)))
            cells.append(.text(formatCost(item.cost)))
            return cells
        }
        let first = 3 + names.count + 1
        return .section("Items", id: "items", [
            form,
            items.items.isEmpty ? .p("No items match.", cls: "muted")
                : .table(headers: ["Item", "Input", "Expected", "Output"] + names + ["Latency", "Cost"], rows: rows, cls: "data items",
                         numeric: Set(first..<(first + names.count + 2))),
            .pager(page: items.page, hasNext: items.hasNextPage, link: link),
        ])
    }

    // MARK: Trace

    /// A trace: the item with its scores, the tree of observations with a waterfall, and the evaluators' traces.
    public static func trace(_ detail: TraceDetail, context: Context) -> HTML {
        var crumbs: [(String, Link?)] = []
        if let run = detail.run {
            if let id = run.datasetID { crumbs.append((run.datasetName ?? "dataset", Link(["datasets", id]))) }
            crumbs.append((run.name, Link(["runs", run.id])))
        }
        let title = detail.item.map { "Item #" + String($0.id.suffix(6)) } ?? detail.trace?.name ?? "Trace"
        crumbs.append((title, nil))
        var body: [HTML] = [.h1(title)]
        if let item = detail.item {
            var facts: [(String, HTML)] = [
                ("Input", .json(item.input, fold: 1200)), ("Expected output", .json(item.expectedOutput, fold: 1200)),
                ("Output", .json(item.output, fold: 1200)),
            ]
            if let error = item.error { facts.append(("Error", .element("pre", [.class("error-text")], text: error))) }
            facts += [
                ("Latency", .text(formatMilliseconds(item.latencyMs) + (item.attempts > 1 ? " (attempt \(item.attempts))" : ""))),
                ("Tokens and cost", .text("\(item.totalTokens) tokens, \(formatCost(item.cost))")),
                ("Repetition", .text("\(item.repetition)")),
            ]
            if let metadata = item.metadata { facts.append(("Metadata", .json(metadata))) }
            body.append(.facts(facts))
            body.append(.section("Scores", id: "scores", [
                item.scores.isEmpty ? .p("No scores.", cls: "muted") :
                    .table(headers: ["Score", "Value", "Comment", "Source"], rows: item.scores.map { s in
                        [.text(s.name), .scoreCell(s, low: nil, high: nil), .folded(s.comment ?? "", fold: 400, pre: false),
                         .text(s.evaluator.map { "\(s.source) (\($0))" } ?? s.source)]
                    }),
            ]))
        }
        var columns: [HTML] = []
        if let trace = detail.trace {
            columns.append(.element("div", [.class("trace-column")], [.h2("Task trace"), traceTree(trace)]))
        } else {
            columns.append(.p("This item was recorded without a trace.", cls: "muted"))
        }
        if !detail.evaluations.isEmpty {
            columns.append(.element("div", [.class("trace-column")],
                                    [.h2("Evaluation")] + detail.evaluations.map(traceTree)))
        }
        body.append(.div("trace-grid", columns))
        return layout(context, title: title, crumbs: crumbs, body)
    }

    static func traceTree(_ trace: TraceView) -> HTML {
        let start = trace.startedAt
        let end = ([trace.endedAt].compactMap { $0 } + trace.observations.compactMap(\.endedAt)).max() ?? start
        let total = max(1e-6, end.timeIntervalSince(start))
        var depth: [String: Int] = [:]
        var children: [String?: [ObservationView]] = [:]
        let ids = Set(trace.observations.map(\.id))
        for o in trace.observations { children[o.parentID.flatMap { ids.contains($0) ? $0 : nil }, default: []].append(o) }
        var ordered: [ObservationView] = []
        func visit(_ parent: String?, _ level: Int) {
            for o in children[parent] ?? [] {
                depth[o.id] = level
                ordered.append(o)
                visit(o.id, level + 1)
            }
        }
        visit(nil, 0)
        let rows = ordered.map { o -> HTML in
            let from = o.startedAt.timeIntervalSince(start) / total
            let to = (o.endedAt ?? o.startedAt).timeIntervalSince(start) / total
            let duration = o.endedAt.map { formatMilliseconds($0.timeIntervalSince(o.startedAt) * 1000) } ?? "–"
            var facts: [(String, HTML)] = [("Kind", .text(o.kind)), ("Level", .element("span", [.class("level-" + (["debug", "default", "warning", "error"].contains(o.level) ? o.level : "default"))], text: o.level))]
            if let status = o.statusMessage { facts.append(("Status", .element("pre", [.class("error-text")], text: status))) }
            if let model = o.model { facts.append(("Model", .text(model))) }
            if let parameters = o.modelParameters { facts.append(("Parameters", .json(parameters))) }
            if o.totalTokens != nil || o.cost != nil {
                facts.append(("Tokens", .text("\(o.totalTokens ?? 0) (\(o.promptTokens ?? 0) prompt, \(o.completionTokens ?? 0) completion), \(formatCost(o.cost))")))
            }
            facts.append(("Input", .json(o.input, fold: 1200)))
            facts.append(("Output", .json(o.output, fold: 1200)))
            if let metadata = o.metadata { facts.append(("Metadata", .json(metadata))) }
            let scores = trace.scores.filter { $0.observationID == o.id }
            if !scores.isEmpty {
                facts.append(("Scores", .group(scores.map { s in .element("div", [], [.scoreCell(s, low: nil, high: nil), .text(" " + s.name + (s.comment.map { ": " + $0 } ?? ""))]) })))
            }
            return .element("details", [.class("observation kind-" + (["span", "generation", "event"].contains(o.kind) ? o.kind : "span")), .id("o-" + o.id)], [
                .element("summary", [], [
                    .element("span", [.class("obs-name depth-\(min(depth[o.id] ?? 0, 6))")], [
                        .span("kind", o.kind), .text(" " + o.name),
                    ]),
                    Charts.waterfallBar(start: from, end: to, cls: o.level == "error" ? "error" : o.kind, label: "\(o.name): \(duration)"),
                    .span("duration", duration),
                ]),
                .facts(facts),
            ])
        }
        return .element("div", [.class("trace")], [
            .element("p", [.class("muted")], text: "\(trace.name) · \(trace.kind) · \(formatDate(trace.startedAt)) · \(formatMilliseconds(total * 1000))"),
        ] + rows)
    }

    // MARK: Compare

    /// Compare Runs: the scores against the baseline with a forest plot, run figures, and items side by side.
    public static func compare(_ page: ComparisonPage, query: QueryParameters, context: Context) -> HTML {
        let baseline = page.runs[0]
        var runQuery: [(String, String)] = page.runs.map { ("run", $0.id) }
        runQuery.append(("baseline", baseline.id))
        func link(page number: Int) -> Link {
            var q = runQuery
            for name in ["filter", "sort", "diff"] { if let v = query[name] { q.append((name, v)) } }
            q.append(("page", "\(number)"))
            return Link(["compare"], query: q, fragment: "items")
        }
        var crumbs: [(String, Link?)] = []
        if let id = baseline.datasetID { crumbs.append((baseline.datasetName ?? "dataset", Link(["datasets", id]))) }
        crumbs.append(("Compare runs", nil))
        let multiple = page.runs.count > 2
        let scoreRows = page.scores.map { s -> [HTML] in
            var cells: [HTML] = [.text(s.name)]
            if multiple { cells.append(.text(page.runs[s.run].name)) }
            cells += [
                .text(formatOptional(s.baselineMean)), .text(formatOptional(s.candidateMean)), .text(formatSigned(s.difference)),
                .text(s.low.map { "[\(formatValue($0)), \(formatValue(s.high ?? $0))]" } ?? "–"),
                .text(s.pValue.map { String(format: "%.3g", $0) } ?? "–"),
                .text("\(s.improved) / \(s.regressed) / \(s.unchanged)"),
                .element("span", [.class("verdict " + verdictClass(s.verdict))], text: s.verdict),
            ]
            return cells
        }
        var scoreHeaders = ["Score", "Baseline mean", "Candidate mean", "Difference", "95% interval", "p-value", "Improved / regressed / same", "Verdict"]
        if multiple { scoreHeaders.insert("Candidate", at: 1) }
        let forest = Charts.forest(page.scores.compactMap { s in
            s.difference.map { ((multiple ? page.runs[s.run].name + " · " : "") + s.name, $0, s.low, s.high, verdictClass(s.verdict)) }
        })
        let statisticsRows = page.statistics.enumerated().map { i, s -> [HTML] in
            let base = page.statistics[0]
            func delta(_ value: Double?, _ baseValue: Double?, _ format: (Double?) -> String) -> String {
                guard i > 0, let value, let baseValue else { return format(value) }
                return format(value) + " (" + (value - baseValue >= 0 ? "+" : "−") + format(abs(value - baseValue)) + ")"
            }
            return [.a(Link(["runs", page.runs[i].id]), page.runs[i].name), .text(i == 0 ? "baseline" : "candidate"), .status(page.runs[i].status),
                    .text("\(s.items)"), .text("\(s.errors)"), .text(delta(s.latencyP50Ms, base.latencyP50Ms, formatMilliseconds)),
                    .text(delta(s.latencyP95Ms, base.latencyP95Ms, formatMilliseconds)), .text(delta(s.cost, base.cost, formatCost))]
        }
        let diffExpected = query["diff"] == "expected"
        let form = HTML.element("form", [.action(Link(["compare"], fragment: "items")), .named("method", "get"), .class("filters")],
            page.runs.map { .hidden("run", $0.id) } + [
                .select(name: "baseline", label: "Baseline", options: page.runs.map { ($0.id, $0.name) }, selected: baseline.id),
                .select(name: "filter", label: "Show", options: [("all", "all items"), ("regressions", "only regressions"),
                                                                 ("improvements", "only improvements"), ("changed", "only changed"), ("errors", "errors")],
                        selected: query["filter"] ?? "all"),
                .select(name: "sort", label: "Sort", options: [("item", "dataset order"), ("change", "largest change first")],
                        selected: query["sort"] ?? "item"),
                .element("label", [], [
                    .void("input", [.named("type", "checkbox"), .named("name", "diff"), .named("value", "expected"), .flag("checked", diffExpected)]),
                    .text(" diff against expected (else against the baseline)"),
                ]),
                .submit("Apply"),
            ])
        let names = page.scores.map(\.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let rows = page.items.map { item -> [HTML] in
            var cells: [HTML] = [
                .element("span", [.class("label label-" + item.label.replacingOccurrences(of: " ", with: "-")), .id("d-" + item.datasetItemID)], text: item.label),
                .cell(item.input), .cell(item.expectedOutput),
            ]
            let baseText = item.cells[0]?.output.map { $0.stringValue ?? $0.jsonString }
            for (index, cell) in item.cells.enumerated() {
                guard let cell else { cells.append(.span("muted", "not run")); continue }
                var parts: [HTML] = []
                if let error = cell.error {
                    parts.append(.element("div", [.class("error-text")], [.folded(error, fold: 200, pre: false)]))
                } else if let output = cell.output {
                    let text = output.stringValue ?? output.jsonString
                    let reference = diffExpected ? item.expectedOutput.map { $0.stringValue ?? $0.jsonString } : (index > 0 ? baseText : nil)
                    parts.append(reference.map { WordDiff.html(from: $0, to: text) } ?? .cell(output))
                }
                if let counts = cell.outputCounts {
                    parts.append(.p("\(cell.repetitions) repetitions, \(counts.count) distinct output\(counts.count == 1 ? "" : "s") (" + counts.map(String.init).joined(separator: ", ") + ")", cls: "muted small"))
                }
                var scoreParts: [HTML] = []
                for name in names {
                    guard let value = cell.scores[name] else { continue }
                    let change = cell.changes[name]
                    let shown = value.isBoolean && value.standardDeviation == nil ? (value.mean != 0 ? "pass" : "fail") : formatValue(value.mean)
                    scoreParts.append(.element("span", [.class("score-chip" + (change.map { " change-" + $0.replacingOccurrences(of: " ", with: "-") } ?? "")),
                                                        .named("title", change.map { "\(name): \($0)" } ?? name)],
                                               text: "\(name) \(shown)" + (value.standardDeviation.map { " ± " + formatValue($0) } ?? "")))
                }
                let base = item.cells[0]
                var latency = formatMilliseconds(cell.latencyMs)
                if index > 0, let base {
                    let change = cell.latencyMs - base.latencyMs
                    latency += " (" + (change < 0 ? "−" : "+") + formatMilliseconds(abs(change)) + ")"
                }
                scoreParts.append(.span("figure", latency))
                if let cost = cell.cost {
                    var text = formatCost(cost)
                    if index > 0, let baseCost = base?.cost, baseCost != cost {
                        text += " (" + (cost < baseCost ? "−" : "+") + formatCost(abs(cost - baseCost)) + ")"
                    }
                    scoreParts.append(.span("figure", text))
                }
                parts.append(.div("chips", scoreParts))
                if let id = cell.runItemID { parts.append(.a(Link(["items", id]), "trace", cls: "small")) }
                cells.append(.group(parts))
            }
            return cells
        }
        return layout(context, title: "Compare runs", crumbs: crumbs, [
            .h1("Compare runs"),
            .p("Baseline \(baseline.name) against " + page.runs.dropFirst().map(\.name).joined(separator: ", ")
               + (page.datasetVersionsDiffer ? ". The runs used different dataset versions: changed items show as missing on one side." : "."), cls: "lead"),
            .section("Scores", id: "scores", [
                page.scores.isEmpty ? .p("No score in common.", cls: "muted") : .table(headers: scoreHeaders, rows: scoreRows, numeric: Set(multiple ? [2, 3, 4, 6] : [1, 2, 3, 5])),
                forest.rendered.isEmpty ? .empty : .element("figure", [.class("chart-box wide")], [forest, .element("figcaption", [], text: "Difference from the baseline with its 95% interval")]),
            ]),
            .section("Runs", id: "figures", [
                .table(headers: ["Run", "Role", "Status", "Items", "Errors", "Latency p50", "Latency p95", "Cost"], rows: statisticsRows, numeric: [3, 4]),
            ]),
            .section("Items", id: "items", [
                form,
                .p("\(page.matchingItems) item\(page.matchingItems == 1 ? "" : "s") match.", cls: "muted"),
                page.items.isEmpty ? .p("No items match.", cls: "muted")
                    : .table(headers: ["Change", "Input", "Expected"] + page.runs.enumerated().map { $0.offset == 0 ? "\($0.element.name) (baseline)" : $0.element.name },
                             rows: rows, cls: "data items compare"),
                .pager(page: page.page, hasNext: page.page * page.pageSize < page.matchingItems, link: link,
                       total: "of \(max(1, (page.matchingItems + page.pageSize - 1) / page.pageSize))"),
            ]),
        ])
    }

    static func verdictClass(_ verdict: String) -> String {
        switch verdict {
        case "significant regression": "regression"
        case "significant improvement": "improvement"
        default: "noise"
        }
    }

    // MARK: Errors

    /// A page for a 404 or a 400: what went wrong, and a way home.
    /// The sign-in page of a server behind a login: a form posting a project key to `action`, with
    /// `error` (a failed attempt) shown above it.
    public static func login(error: String?, action: String = "/login", context: Context) -> HTML {
        layout(context, title: "Sign in", crumbs: [("Sign in", nil)], [
            .h1("Sign in"),
            .p("Enter a project key (xrml_…) to see that project's datasets and runs.", cls: "lead"),
            error.map { .element("p", [.class("bad"), .named("role", "alert")], text: $0) } ?? .empty,
            .element("form", [.action(Link(action.split(separator: "/").map(String.init))), .named("method", "post"),
                              .class("filters login")], [
                .element("label", [], [
                    .text("Project key "),
                    .void("input", [.named("type", "password"), .named("name", "key"), .named("autocomplete", "off"),
                                    .named("required", "required"), .named("size", "48"), .flag("autofocus")]),
                ]),
                .submit("Sign in"),
            ]),
        ])
    }

    public static func error(status: Int, title: String, message: String, context: Context) -> HTML {
        layout(context, title: title, crumbs: [(title, nil)], [
            .h1(title),
            .p(message, cls: "lead"),
            .element("p", [], [.a(Link([]), "Back to the datasets and runs")]),
            .p("HTTP \(status)", cls: "muted"),
        ])
    }
}
