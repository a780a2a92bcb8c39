public import Foundation
public import XeroML

/// What the dashboard's pages and JSON API read: one method per page, returning plain values.
///
/// The local dashboard implements it over the SQLite file (``SQLiteDashboardStore``); a server that
/// keeps runs elsewhere implements the same methods over its own storage and serves the same pages.
/// Methods return `nil` for an unknown dataset, run, item or trace (the server answers 404), and throw
/// ``DashboardError`` for a request it cannot answer (400), or the storage's error.
///
/// ## Topics
/// - ``home()``
/// - ``dataset(id:query:)``
/// - ``run(id:)``
/// - ``items(runID:query:)``
/// - ``progress(runID:)``
/// - ``item(id:)``
/// - ``trace(id:)``
/// - ``comparison(runIDs:baseline:query:)``
public protocol DashboardStore: Sendable {
    /// Datasets and the latest runs.
    func home() async throws -> HomeData
    /// A dataset: a page of its items and its runs.
    func dataset(id: String, query: DatasetItemsQuery) async throws -> DatasetPageData?
    /// A run with its summary, histograms and error groups (no items: see ``items(runID:query:)``).
    func run(id: String) async throws -> RunDetail?
    /// A page of a run's items, filtered and sorted.
    func items(runID: String, query: ItemsQuery) async throws -> ItemsPage?
    /// The run's status and counts, cheap enough to poll while it runs.
    func progress(runID: String) async throws -> RunProgress?
    /// One run item (the permalink of an item row) with its trace and evaluation traces.
    func item(id: String) async throws -> TraceDetail?
    /// A trace with the run item it belongs to, when there is one.
    func trace(id: String) async throws -> TraceDetail?
    /// Runs of one dataset compared against `baseline` (or the oldest of them), one page of items.
    func comparison(runIDs: [String], baseline: String?, query: CompareQuery) async throws -> ComparisonPage?
}

/// A request the dashboard cannot answer as asked: a malformed parameter (HTTP 400).
public struct DashboardError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The query or path parameter at fault.
    public var parameter: String
    /// What is wrong with it, in a sentence.
    public var message: String

    public init(parameter: String, _ message: String) {
        self.parameter = parameter
        self.message = message
    }

    public var description: String { "\(parameter): \(message)" }
}

// MARK: - Listings

/// A dataset as listed.
public struct DatasetListing: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var description: String?
    public var version: Int
    public var itemCount: Int
    public var archivedCount: Int
    public var runCount: Int
    public var lastRunAt: Date?
    public var createdAt: Date

    public init(id: String, name: String, description: String?, version: Int, itemCount: Int, archivedCount: Int,
                runCount: Int, lastRunAt: Date?, createdAt: Date) {
        (self.id, self.name, self.description, self.version) = (id, name, description, version)
        (self.itemCount, self.archivedCount, self.runCount, self.lastRunAt, self.createdAt) =
            (itemCount, archivedCount, runCount, lastRunAt, createdAt)
    }
}

/// The mean of one score over a run's items, with its 95% interval.
public struct ScoreMean: Sendable, Hashable, Codable {
    public var name: String
    public var count: Int
    public var mean: Double
    /// The normal-theory 95% interval of the mean (`nil` under two values).
    public var low: Double?
    public var high: Double?

    public init(name: String, count: Int, mean: Double, low: Double?, high: Double?) {
        (self.name, self.count, self.mean, self.low, self.high) = (name, count, mean, low, high)
    }

    /// From a count, a sum and a sum of squares, as summed by the store: Student's t interval for
    /// numbers, Wilson's for pass rates (the intervals of the run summaries; docs/statistics.md).
    public init(name: String, count: Int, sum: Double, sumOfSquares: Double, boolean: Bool) {
        self.name = name
        self.count = count
        mean = count > 0 ? sum / Double(count) : 0
        let interval: ConfidenceInterval?
        if boolean {
            interval = Statistics.wilsonInterval(successes: Int(sum.rounded()), count: count)
        } else {
            let variance = count > 1 ? Swift.max(0, (sumOfSquares - sum * sum / Double(count)) / Double(count - 1)) : 0
            interval = Statistics.studentTInterval(mean: mean, variance: variance, count: count)
        }
        (low, high) = (interval?.lower, interval?.upper)
    }
}

/// A run as listed. ``status`` is the stored text (`running`, `finished`, `interrupted`, `failed`, or
/// any status a later XeroML records), shown as it is.
public struct RunListing: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var datasetID: String?
    public var datasetName: String?
    public var datasetVersion: Int?
    public var description: String?
    public var metadata: JSONValue?
    public var status: String
    public var createdAt: Date
    public var finishedAt: Date?
    public var itemCount: Int
    public var errorCount: Int
    /// Means of the numeric and boolean item scores, in the order they were first recorded.
    public var scores: [ScoreMean]

    public init(id: String, name: String, datasetID: String?, datasetName: String?, datasetVersion: Int?,
                description: String?, metadata: JSONValue?, status: String, createdAt: Date, finishedAt: Date?,
                itemCount: Int, errorCount: Int, scores: [ScoreMean]) {
        (self.id, self.name, self.datasetID, self.datasetName, self.datasetVersion) = (id, name, datasetID, datasetName, datasetVersion)
        (self.description, self.metadata, self.status, self.createdAt, self.finishedAt) = (description, metadata, status, createdAt, finishedAt)
        (self.itemCount, self.errorCount, self.scores) = (itemCount, errorCount, scores)
    }
}

/// The home page.
public struct HomeData: Sendable, Codable {
    public var datasets: [DatasetListing]
    /// The latest runs, newest first.
    public var runs: [RunListing]
    public init(datasets: [DatasetListing], runs: [RunListing]) { (self.datasets, self.runs) = (datasets, runs) }
}

// MARK: - Dataset

/// Which items of a dataset to list.
public struct DatasetItemsQuery: Sendable, Hashable {
    /// The dataset version; `nil` for the current one.
    public var version: Int?
    /// Text to find in the input, expected output or metadata (case-insensitive).
    public var search: String?
    /// 1-based page of ``pageSize`` items.
    public var page: Int = 1
    public var pageSize: Int = 50

    public init(version: Int? = nil, search: String? = nil, page: Int = 1, pageSize: Int = 50) {
        (self.version, self.search, self.page, self.pageSize) = (version, search, page, pageSize)
    }
}

/// One item of a dataset.
public struct DatasetItemRow: Sendable, Hashable, Codable {
    public var id: String
    public var externalID: String?
    public var input: JSONValue
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    public var createdVersion: Int
    public var archivedVersion: Int?

    public init(id: String, externalID: String?, input: JSONValue, expectedOutput: JSONValue?, metadata: JSONValue?,
                createdVersion: Int, archivedVersion: Int?) {
        (self.id, self.externalID, self.input, self.expectedOutput) = (id, externalID, input, expectedOutput)
        (self.metadata, self.createdVersion, self.archivedVersion) = (metadata, createdVersion, archivedVersion)
    }
}

/// The dataset page.
public struct DatasetPageData: Sendable, Codable {
    public var dataset: DatasetListing
    /// The version the items are shown at.
    public var version: Int
    public var items: [DatasetItemRow]
    public var page: Int
    public var hasNextPage: Bool
    /// The dataset's runs, oldest first (the order of the chart).
    public var runs: [RunListing]

    public init(dataset: DatasetListing, version: Int, items: [DatasetItemRow], page: Int, hasNextPage: Bool, runs: [RunListing]) {
        (self.dataset, self.version, self.items, self.page, self.hasNextPage, self.runs) = (dataset, version, items, page, hasNextPage, runs)
    }
}

// MARK: - Run

/// Counts in equal-width bins between ``low`` and ``high``.
public struct Histogram: Sendable, Hashable, Codable {
    public var name: String
    public var low: Double
    public var high: Double
    public var counts: [Int]
    /// For booleans and categories: the label of each bin instead of a range.
    public var labels: [String]?

    public init(name: String, low: Double, high: Double, counts: [Int], labels: [String]? = nil) {
        (self.name, self.low, self.high, self.counts, self.labels) = (name, low, high, counts, labels)
    }
}

/// Failed items sharing one error text.
public struct ErrorGroup: Sendable, Hashable, Codable {
    public var message: String
    public var count: Int
    /// One item with this error, to open.
    public var exampleItemID: String

    public init(message: String, count: Int, exampleItemID: String) {
        (self.message, self.count, self.exampleItemID) = (message, count, exampleItemID)
    }
}

/// Token and cost totals.
public struct UsageView: Sendable, Hashable, Codable {
    public var generations: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    /// `nil` when no generation recorded a cost.
    public var cost: Double?

    public init(_ usage: UsageTotals) {
        generations = usage.generations
        promptTokens = usage.promptTokens
        completionTokens = usage.completionTokens
        totalTokens = usage.totalTokens
        cost = usage.pricedGenerations > 0 ? usage.cost : nil
    }
}

/// A score as shown: value, comment and where it came from.
public struct ScoreView: Sendable, Hashable, Codable {
    public var name: String
    public var dataType: String
    /// Numeric value (booleans as 1 or 0).
    public var value: Double?
    /// Category, text or the reason of an unscored value.
    public var text: String?
    public var comment: String?
    public var source: String
    public var evaluator: String?
    /// The observation the score is attached to or came from (a judge's generation).
    public var observationID: String?

    public init(_ score: Score) {
        name = score.name
        dataType = score.value.dataType
        value = score.value.numericValue
        text = score.value.stringValue
        comment = score.comment
        source = score.source.rawValue
        evaluator = score.evaluator
        observationID = score.observationID
    }

    public init(name: String, dataType: String, value: Double?, text: String?, comment: String?, source: String,
                evaluator: String?, observationID: String?) {
        (self.name, self.dataType, self.value, self.text, self.comment) = (name, dataType, value, text, comment)
        (self.source, self.evaluator, self.observationID) = (source, evaluator, observationID)
    }

    /// The value as shown in a table cell.
    public var display: String {
        switch dataType {
        case "boolean": value.map { $0 != 0 ? "pass" : "fail" } ?? "–"
        case "unscored": "unscored"
        case "numeric": value.map(formatValue) ?? "–"
        default: text ?? "–"
        }
    }
}

/// The run page, apart from its items.
public struct RunDetail: Sendable, Codable {
    public var run: RunListing
    /// Per item score: count, unscored, mean, interval, percentiles, pass rate, categories.
    public var scores: [ScoreSummaryView]
    public var histograms: [Histogram]
    /// Task latency in milliseconds.
    public var latency: Histogram?
    public var latencyP50Ms: Double?
    public var latencyP95Ms: Double?
    public var latencyP99Ms: Double?
    public var usage: UsageView
    public var evaluatorUsage: UsageView
    public var runScores: [ScoreView]
    /// Failed items grouped by error text, most frequent first.
    public var errors: [ErrorGroup]

    public init(run: RunListing, scores: [ScoreSummaryView], histograms: [Histogram], latency: Histogram?,
                latencyP50Ms: Double?, latencyP95Ms: Double?, latencyP99Ms: Double?, usage: UsageView,
                evaluatorUsage: UsageView, runScores: [ScoreView], errors: [ErrorGroup]) {
        (self.run, self.scores, self.histograms, self.latency) = (run, scores, histograms, latency)
        (self.latencyP50Ms, self.latencyP95Ms, self.latencyP99Ms) = (latencyP50Ms, latencyP95Ms, latencyP99Ms)
        (self.usage, self.evaluatorUsage, self.runScores, self.errors) = (usage, evaluatorUsage, runScores, errors)
    }
}

/// The statistics of one item score over a run.
public struct ScoreSummaryView: Sendable, Hashable, Codable {
    public var name: String
    /// `numeric`, `boolean`, `categorical`, `text`, or `mixed`.
    public var dataType: String
    /// Values with a number (numeric and boolean).
    public var count: Int
    public var unscored: Int
    public var mean: Double?
    public var standardDeviation: Double?
    /// Normal-theory 95% interval of the mean.
    public var low: Double?
    public var high: Double?
    public var min: Double?
    public var median: Double?
    public var p95: Double?
    public var max: Double?
    /// Share of `true` among booleans.
    public var passRate: Double?
    /// Counts of each category (categorical and text scores).
    public var categories: [String: Int]?

    public init(name: String, dataType: String, count: Int, unscored: Int, mean: Double?, standardDeviation: Double?,
                low: Double?, high: Double?, min: Double?, median: Double?, p95: Double?, max: Double?,
                passRate: Double?, categories: [String: Int]?) {
        (self.name, self.dataType, self.count, self.unscored, self.mean) = (name, dataType, count, unscored, mean)
        (self.standardDeviation, self.low, self.high, self.min, self.median) = (standardDeviation, low, high, min, median)
        (self.p95, self.max, self.passRate, self.categories) = (p95, max, passRate, categories)
    }
}

/// What a running run's page polls.
public struct RunProgress: Sendable, Hashable, Codable {
    public var id: String
    public var status: String
    public var itemCount: Int
    public var errorCount: Int
    /// Items of the dataset version the run uses, when it has one.
    public var expectedItems: Int?

    public init(id: String, status: String, itemCount: Int, errorCount: Int, expectedItems: Int?) {
        (self.id, self.status, self.itemCount, self.errorCount, self.expectedItems) = (id, status, itemCount, errorCount, expectedItems)
    }
}

/// How a run's items are ordered.
public enum ItemsSort: Sendable, Hashable {
    /// Start order (the default).
    case started
    case latency
    case cost
    /// By a score's value; items without that score are left out.
    case score(String)

    /// The `ORDER BY` of a run items query (`r` the run items) for the orders that are not a score's,
    /// ties broken by id; `id` is how the store's SQL spells the id in byte order (`r.id` in SQLite,
    /// `r.id COLLATE "C"` in PostgreSQL). Nil for ``score(_:)``, which each store orders through its
    /// scores.
    public func runItemsOrder(descending: Bool, id: String) -> String? {
        let direction = descending ? "DESC" : "ASC"
        switch self {
        case .score: return nil
        case .latency: return "r.latency_ms \(direction), \(id)"
        case .cost: return "r.cost IS NULL, r.cost \(direction), \(id)"
        case .started: return "\(id) \(direction)"
        }
    }
}

/// Which of a run's items to list.
public struct ItemsQuery: Sendable, Hashable {
    public enum Filter: String, Sendable, Hashable, CaseIterable {
        case all, errors, unscored
    }
    public var filter: Filter = .all
    /// Keep items whose score `name` is below (`<`) or above (`>`) a value.
    public var scoreFilter: (name: String, below: Bool, value: Double)?
    /// Text to find in the input, expected output, output or error (case-insensitive).
    public var search: String?
    public var sort: ItemsSort = .started
    public var descending = false
    /// 1-based page of ``pageSize`` items.
    public var page = 1
    public var pageSize = 50

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.filter == b.filter && a.scoreFilter?.name == b.scoreFilter?.name && a.scoreFilter?.below == b.scoreFilter?.below
            && a.scoreFilter?.value == b.scoreFilter?.value && a.search == b.search && a.sort == b.sort
            && a.descending == b.descending && a.page == b.page && a.pageSize == b.pageSize
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(filter); hasher.combine(search); hasher.combine(sort); hasher.combine(page)
    }
}

/// One item result of a run, as a table row.
public struct ItemRow: Sendable, Hashable, Codable {
    public var id: String
    public var datasetItemID: String?
    public var repetition: Int
    public var input: JSONValue
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    public var output: JSONValue?
    public var error: String?
    public var latencyMs: Double
    public var attempts: Int
    public var totalTokens: Int
    public var cost: Double?
    public var traceID: String?
    public var startedAt: Date
    public var scores: [ScoreView]

    public init(id: String, datasetItemID: String?, repetition: Int, input: JSONValue, expectedOutput: JSONValue?,
                metadata: JSONValue?, output: JSONValue?, error: String?, latencyMs: Double, attempts: Int,
                totalTokens: Int, cost: Double?, traceID: String?, startedAt: Date, scores: [ScoreView]) {
        (self.id, self.datasetItemID, self.repetition, self.input, self.expectedOutput) = (id, datasetItemID, repetition, input, expectedOutput)
        (self.metadata, self.output, self.error, self.latencyMs, self.attempts) = (metadata, output, error, latencyMs, attempts)
        (self.totalTokens, self.cost, self.traceID, self.startedAt, self.scores) = (totalTokens, cost, traceID, startedAt, scores)
    }
}

/// A page of a run's items.
public struct ItemsPage: Sendable, Codable {
    public var runID: String
    public var page: Int
    public var pageSize: Int
    public var hasNextPage: Bool
    public var items: [ItemRow]

    public init(runID: String, page: Int, pageSize: Int, hasNextPage: Bool, items: [ItemRow]) {
        (self.runID, self.page, self.pageSize, self.hasNextPage, self.items) = (runID, page, pageSize, hasNextPage, items)
    }
}

// MARK: - Trace

/// An observation as shown.
public struct ObservationView: Sendable, Hashable, Codable {
    public var id: String
    public var parentID: String?
    public var kind: String
    public var name: String
    public var input: JSONValue?
    public var output: JSONValue?
    public var metadata: JSONValue?
    public var model: String?
    public var modelParameters: JSONValue?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?
    public var cost: Double?
    public var level: String
    public var statusMessage: String?
    public var startedAt: Date
    public var endedAt: Date?

    public init(_ o: ObservationRecord) {
        (id, parentID, kind, name) = (o.id, o.parentID, o.kind.rawValue, o.name)
        (input, output, metadata, model, modelParameters) = (o.input, o.output, o.metadata, o.model, o.modelParameters)
        (promptTokens, completionTokens, totalTokens, cost) = (o.usage.promptTokens, o.usage.completionTokens, o.usage.totalTokens, o.cost)
        (level, statusMessage, startedAt, endedAt) = (o.level.rawValue, o.statusMessage, o.startedAt, o.endedAt)
    }

    /// An observation read from another store (the team server's).
    public init(id: String, parentID: String?, kind: String, name: String, input: JSONValue?, output: JSONValue?,
                metadata: JSONValue?, model: String?, modelParameters: JSONValue?, promptTokens: Int?, completionTokens: Int?,
                totalTokens: Int?, cost: Double?, level: String, statusMessage: String?, startedAt: Date, endedAt: Date?) {
        (self.id, self.parentID, self.kind, self.name) = (id, parentID, kind, name)
        (self.input, self.output, self.metadata, self.model, self.modelParameters) = (input, output, metadata, model, modelParameters)
        (self.promptTokens, self.completionTokens, self.totalTokens, self.cost) = (promptTokens, completionTokens, totalTokens, cost)
        (self.level, self.statusMessage, self.startedAt, self.endedAt) = (level, statusMessage, startedAt, endedAt)
    }
}

/// A trace as shown.
public struct TraceView: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var kind: String
    public var runID: String?
    public var input: JSONValue?
    public var output: JSONValue?
    public var metadata: JSONValue?
    public var startedAt: Date
    public var endedAt: Date?
    /// In start order.
    public var observations: [ObservationView]
    public var scores: [ScoreView]

    public init(_ t: TraceRecord) {
        (id, name, kind, runID) = (t.id, t.name, t.kind.rawValue, t.runID)
        (input, output, metadata, startedAt, endedAt) = (t.input, t.output, t.metadata, t.startedAt, t.endedAt)
        observations = t.observations.map(ObservationView.init)
        scores = t.scores.map(ScoreView.init)
    }

    /// A trace read from another store (the team server's).
    public init(id: String, name: String, kind: String, runID: String?, input: JSONValue?, output: JSONValue?,
                metadata: JSONValue?, startedAt: Date, endedAt: Date?, observations: [ObservationView], scores: [ScoreView]) {
        (self.id, self.name, self.kind, self.runID) = (id, name, kind, runID)
        (self.input, self.output, self.metadata, self.startedAt, self.endedAt) = (input, output, metadata, startedAt, endedAt)
        (self.observations, self.scores) = (observations, scores)
    }
}

/// The trace page: a trace, and when it is an item's, the item, its scores and its evaluation traces.
public struct TraceDetail: Sendable, Codable {
    /// The item's task trace (or a standalone trace); `nil` for an item recorded without one.
    public var trace: TraceView?
    public var run: RunListing?
    public var item: ItemRow?
    /// The traces of the item's evaluators (judge prompts, replies and verdicts).
    public var evaluations: [TraceView]

    public init(trace: TraceView?, run: RunListing?, item: ItemRow?, evaluations: [TraceView]) {
        (self.trace, self.run, self.item, self.evaluations) = (trace, run, item, evaluations)
    }
}

// MARK: - Comparison

/// The runs a Compare Runs page asks for, as every store reads them.
public enum CompareSelection {
    /// The ids to load: each of `runIDs` once, in order, with `baseline` first when it is not among
    /// them. Throws (a 400 naming `run`) below two runs.
    public static func ids(_ runIDs: [String], baseline: String?) throws -> [String] {
        var ids: [String] = []
        for id in runIDs where !ids.contains(id) { ids.append(id) }
        if let baseline, !ids.contains(baseline) { ids.insert(baseline, at: 0) }
        guard ids.count >= 2 else { throw DashboardError(parameter: "run", "choose two or more runs to compare") }
        return ids
    }

    /// The listed runs of `ids` in comparison order: the baseline (as asked, else the oldest: ids are
    /// time-ordered), then the candidates in id order. Nil when a run is missing; throws (a 400 naming
    /// `run`) when they are not all of one dataset.
    public static func ordered(_ listed: [RunListing], ids: [String], baseline: String?) throws -> [RunListing]? {
        guard listed.count == ids.count else { return nil }
        guard let datasetID = listed[0].datasetID, listed.allSatisfy({ $0.datasetID == datasetID }) else {
            throw DashboardError(parameter: "run", "runs can be compared only over one dataset")
        }
        let baselineID = baseline ?? ids.min()!
        let candidates = ids.filter { $0 != baselineID }.sorted()
        let byID = Dictionary(uniqueKeysWithValues: listed.map { ($0.id, $0) })
        return [byID[baselineID]!] + candidates.map { byID[$0]! }
    }
}

/// Which compared items to list.
public struct CompareQuery: Sendable, Hashable {
    public enum Filter: String, Sendable, Hashable, CaseIterable {
        case all, regressions, improvements, changed, errors
    }
    public enum Sort: String, Sendable, Hashable, CaseIterable {
        /// Dataset order.
        case item
        /// Largest change of any score against the baseline first.
        case change
    }
    public var filter: Filter = .all
    public var sort: Sort = .item
    public var page = 1
    public var pageSize = 50

    public init(filter: Filter = .all, sort: Sort = .item, page: Int = 1, pageSize: Int = 50) {
        (self.filter, self.sort, self.page, self.pageSize) = (filter, sort, page, pageSize)
    }
}

/// One score compared between the baseline and one candidate.
public struct ScoreComparisonView: Sendable, Hashable, Codable {
    public var name: String
    /// Index into ``ComparisonPage/runs`` (1 is the first candidate).
    public var run: Int
    public var isBoolean: Bool
    public var lowerIsBetter: Bool
    public var baselineMean: Double?
    public var candidateMean: Double?
    public var pairs: Int
    public var difference: Double?
    public var low: Double?
    public var high: Double?
    public var pValue: Double?
    public var improved: Int
    public var regressed: Int
    public var unchanged: Int
    /// `significant regression`, `significant improvement` or `within noise`.
    public var verdict: String

    public init(name: String, run: Int, isBoolean: Bool, lowerIsBetter: Bool, baselineMean: Double?, candidateMean: Double?,
                pairs: Int, difference: Double?, low: Double?, high: Double?, pValue: Double?, improved: Int,
                regressed: Int, unchanged: Int, verdict: String) {
        (self.name, self.run, self.isBoolean, self.lowerIsBetter) = (name, run, isBoolean, lowerIsBetter)
        (self.baselineMean, self.candidateMean, self.pairs, self.difference) = (baselineMean, candidateMean, pairs, difference)
        (self.low, self.high, self.pValue) = (low, high, pValue)
        (self.improved, self.regressed, self.unchanged, self.verdict) = (improved, regressed, unchanged, verdict)
    }
}

/// What one run did on one compared item.
public struct CompareCell: Sendable, Hashable, Codable {
    public var runItemID: String?
    public var repetitions: Int
    public var errors: Int
    public var output: JSONValue?
    public var error: String?
    /// How many repetitions gave each distinct output, most frequent first (with two or more repetitions).
    public var outputCounts: [Int]?
    public var latencyMs: Double
    public var cost: Double?
    /// Per score name: the mean over repetitions and its standard deviation (with two or more).
    public var scores: [String: CompareValue]
    /// Per score name, against the baseline (candidates only): the change label.
    public var changes: [String: String]

    public init(runItemID: String?, repetitions: Int, errors: Int, output: JSONValue?, error: String?, outputCounts: [Int]?,
                latencyMs: Double, cost: Double?, scores: [String: CompareValue], changes: [String: String]) {
        (self.runItemID, self.repetitions, self.errors, self.output, self.error) = (runItemID, repetitions, errors, output, error)
        (self.outputCounts, self.latencyMs, self.cost, self.scores, self.changes) = (outputCounts, latencyMs, cost, scores, changes)
    }
}

/// A score's mean over an item's repetitions.
public struct CompareValue: Sendable, Hashable, Codable {
    public var mean: Double
    public var standardDeviation: Double?
    public var isBoolean: Bool
    public init(mean: Double, standardDeviation: Double?, isBoolean: Bool) {
        (self.mean, self.standardDeviation, self.isBoolean) = (mean, standardDeviation, isBoolean)
    }
}

/// One dataset item across the compared runs.
public struct CompareItemRow: Sendable, Hashable, Codable {
    public var datasetItemID: String
    public var input: JSONValue?
    public var expectedOutput: JSONValue?
    /// Per run, baseline first; `nil` where the run lacks the item.
    public var cells: [CompareCell?]
    /// The item's label against the baseline: `regressed`, `improved`, `new error`, `fixed error`,
    /// `changed` or `unchanged`.
    public var label: String

    public init(datasetItemID: String, input: JSONValue?, expectedOutput: JSONValue?, cells: [CompareCell?], label: String) {
        (self.datasetItemID, self.input, self.expectedOutput, self.cells, self.label) = (datasetItemID, input, expectedOutput, cells, label)
    }
}

/// The Compare Runs page: the score table and one page of items.
public struct ComparisonPage: Sendable, Codable {
    /// Baseline first.
    public var runs: [RunListing]
    public var scores: [ScoreComparisonView]
    /// Per run, baseline first: items, errors, latency percentiles and cost.
    public var statistics: [RunStatisticsView]
    public var datasetVersionsDiffer: Bool
    /// Items that pass the filter, over all pages.
    public var matchingItems: Int
    public var page: Int
    public var pageSize: Int
    public var items: [CompareItemRow]

    public init(runs: [RunListing], scores: [ScoreComparisonView], statistics: [RunStatisticsView], datasetVersionsDiffer: Bool,
                matchingItems: Int, page: Int, pageSize: Int, items: [CompareItemRow]) {
        (self.runs, self.scores, self.statistics, self.datasetVersionsDiffer) = (runs, scores, statistics, datasetVersionsDiffer)
        (self.matchingItems, self.page, self.pageSize, self.items) = (matchingItems, page, pageSize, items)
    }
}

/// Run-level figures of a compared run.
public struct RunStatisticsView: Sendable, Hashable, Codable {
    public var items: Int
    public var errors: Int
    public var latencyP50Ms: Double?
    public var latencyP95Ms: Double?
    public var cost: Double?
    public init(items: Int, errors: Int, latencyP50Ms: Double?, latencyP95Ms: Double?, cost: Double?) {
        (self.items, self.errors, self.latencyP50Ms, self.latencyP95Ms, self.cost) = (items, errors, latencyP50Ms, latencyP95Ms, cost)
    }
}

/// A number as the dashboard shows it: integers plainly, others to four significant digits.
public func formatValue(_ value: Double) -> String {
    if value.isNaN { return "–" }
    if value == value.rounded(), abs(value) < 1e12 { return String(Int64(value)) }
    let magnitude = abs(value)
    if magnitude >= 1000 || magnitude < 0.001 { return String(format: "%.3g", value) }
    var text = String(format: "%.4f", value)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
}
