package import Foundation
import Synchronization
@_spi(Dashboard) public import XeroML
import XeroMLSQLite

/// The dashboard's queries over a XeroML SQLite file, through the client's read-only connections.
///
/// Every method runs its statements in read transactions on the client's reader connections: nothing
/// here writes, and a read never holds a lock writers wait for (WAL). Finished runs never change, so
/// what is computed over a whole finished run (its summary and histograms, its score means, a
/// comparison of finished runs) is kept in a small cache keyed by the run's id and finish time; a run
/// still running is read afresh on every request.
public final class SQLiteDashboardStore: DashboardStore {
    /// The client whose read connections the queries use.
    public let xeroml: XeroML
    /// Above this many runs, the home page lists the newest only.
    public let homeRunLimit: Int

    private let details = Mutex(Cache<RunDetail>(capacity: 16))
    private let means = Mutex(Cache<[ScoreMean]>(capacity: 4096))
    private let comparisons = Mutex(Cache<RunComparison>(capacity: 2))
    private let orders = Mutex(Cache<[MatchedItem]>(capacity: 8))

    /// Reads through `xeroml`'s read-only connections.
    public init(xeroml: XeroML, homeRunLimit: Int = 50) {
        self.xeroml = xeroml
        self.homeRunLimit = homeRunLimit
    }

    // MARK: Home

    public func home() async throws -> HomeData {
        let limit = homeRunLimit
        let (datasets, runs) = try await xeroml.read { db in
            (try Self.datasets(db, id: nil), try Self.runRows(db, where: "1", [], limit: limit))
        }
        return HomeData(datasets: datasets, runs: try await withMeans(runs))
    }

    static func datasets(_ db: Connection, id: String?) throws -> [DatasetListing] {
        try db.query("""
            SELECT d.id, d.name, d.description, d.version, d.created_us,
                (SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.archived_version IS NULL),
                (SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.archived_version IS NOT NULL),
                (SELECT count(*) FROM experiment_runs r WHERE r.dataset_id = d.id),
                (SELECT max(created_us) FROM experiment_runs r WHERE r.dataset_id = d.id)
            FROM datasets d WHERE ? IS NULL OR d.id = ? ORDER BY d.name
            """, [.text(id), .text(id)]) { s in
            DatasetListing(id: s.text(0)!, name: s.text(1)!, description: s.text(2), version: s.int(3),
                           itemCount: s.int(5), archivedCount: s.int(6), runCount: s.int(7),
                           lastRunAt: s.optionalInt64(8).map(date), createdAt: date(s.int64(4)))
        }
    }

    /// Runs without their score means, newest first.
    static func runRows(_ db: Connection, where condition: String, _ values: [SQLValue], limit: Int = -1) throws -> [RunListing] {
        try db.query("""
            SELECT r.id, r.name, r.dataset_id, d.name, r.dataset_version, r.description, r.metadata, r.status,
                r.created_us, r.finished_us,
                (SELECT count(*) FROM run_items i WHERE i.run_id = r.id),
                (SELECT count(*) FROM run_items i WHERE i.run_id = r.id AND i.error IS NOT NULL),
                \(XeroML.runOwnerColumns)
            FROM experiment_runs r LEFT JOIN datasets d ON d.id = r.dataset_id
            WHERE \(condition) ORDER BY r.id DESC LIMIT ?
            """, values + [.integer(limit)]) { s in
            let createdAt = date(s.int64(8))
            return RunListing(
                id: s.text(0)!, name: s.text(1)!, datasetID: s.text(2), datasetName: s.text(3),
                datasetVersion: s.optionalInt64(4).map { Int($0) }, description: s.text(5),
                metadata: XeroML.parseStoredJSON(s.text(6)),
                status: XeroML.displayedStatus(stored: s.text(7) ?? "unknown", createdAt: createdAt, ownerHost: s.text(12),
                                               ownerPID: s.optionalInt64(13), ownerProcessStart: s.optionalInt64(14),
                                               heartbeatMicroseconds: s.optionalInt64(15)),
                createdAt: createdAt, finishedAt: s.optionalInt64(9).map(date),
                itemCount: s.int(10), errorCount: s.int(11), scores: [])
        }
    }

    /// Fills in the score means: from the cache for finished runs, in one read for the others.
    func withMeans(_ runs: [RunListing]) async throws -> [RunListing] {
        var result = runs
        var missing: [Int] = []
        means.withLock { cache in
            for (i, run) in runs.enumerated() {
                if let cached = cache[Self.key(run)] { result[i].scores = cached } else { missing.append(i) }
            }
        }
        guard !missing.isEmpty else { return result }
        let ids = missing.map { runs[$0].id }
        let computed = try await xeroml.read { db in try ids.map { try Self.scoreMeans(db, runID: $0) } }
        means.withLock { cache in
            for (j, i) in missing.enumerated() {
                result[i].scores = computed[j]
                if let key = Self.key(runs[i]) { cache[key] = computed[j] }
            }
        }
        return result
    }

    /// The cache key of a finished run; `nil` for a run that may still change.
    package static func key(_ run: RunListing) -> String? {
        guard run.status == "finished", let finished = run.finishedAt else { return nil }
        return key(id: run.id, finished: finished)
    }

    package static func key(id: String, finished: Date) -> String { "\(id)@\(finished.timeIntervalSince1970)" }

    static func scoreMeans(_ db: Connection, runID: String) throws -> [ScoreMean] {
        try db.query("""
            SELECT name, count(value), total(value), total(value * value), sum(data_type = 'boolean') = count(value) FROM scores
            WHERE run_id = ? AND run_item_id IS NOT NULL AND data_type IN ('numeric', 'boolean')
            GROUP BY name ORDER BY min(rowid)
            """, [.text(runID)]) { s in
            ScoreMean(name: s.text(0)!, count: s.int(1), sum: s.double(2), sumOfSquares: s.double(3), boolean: s.int(4) == 1)
        }
    }

    // MARK: Dataset

    public func dataset(id: String, query: DatasetItemsQuery) async throws -> DatasetPageData? {
        let page = try await xeroml.read { db -> (DatasetListing, Int, [DatasetItemRow], Bool, [RunListing])? in
            guard let dataset = try Self.datasets(db, id: id).first else { return nil }
            let version = query.version ?? dataset.version
            guard version >= 0, version <= dataset.version else {
                throw DashboardError(parameter: "version", "the dataset has versions 0 to \(dataset.version)")
            }
            var sql = """
                SELECT id, external_id, input, expected_output, metadata, created_version, archived_version
                FROM dataset_items WHERE dataset_id = ? AND created_version <= ?
                    AND (archived_version IS NULL OR archived_version > ?)
                """
            var values: [SQLValue] = [.text(id), .integer(version), .integer(version)]
            if let search = query.search, !search.isEmpty {
                sql += " AND instr(lower(input || ' ' || coalesce(expected_output, '') || ' ' || coalesce(metadata, '')), lower(?)) > 0"
                values.append(.text(search))
            }
            sql += " ORDER BY id LIMIT ? OFFSET ?"
            values += [.integer(query.pageSize + 1), .integer((query.page - 1) * query.pageSize)]
            var items = try db.query(sql, values) { s in
                DatasetItemRow(id: s.text(0)!, externalID: s.text(1), input: XeroML.parseStoredJSON(s.text(2)) ?? .null,
                               expectedOutput: XeroML.parseStoredJSON(s.text(3)), metadata: XeroML.parseStoredJSON(s.text(4)),
                               createdVersion: s.int(5), archivedVersion: s.optionalInt64(6).map { Int($0) })
            }
            let hasNext = items.count > query.pageSize
            if hasNext { items.removeLast() }
            let runs = try Self.runRows(db, where: "r.dataset_id = ?", [.text(id)])
            return (dataset, version, items, hasNext, runs)
        }
        guard let (dataset, version, items, hasNext, runs) = page else { return nil }
        return DatasetPageData(dataset: dataset, version: version, items: items, page: query.page, hasNextPage: hasNext,
                               runs: try await withMeans(runs).reversed())
    }

    // MARK: Run

    public func run(id: String) async throws -> RunDetail? {
        // The cache key needs only the run's row, not its counts.
        let key = try await xeroml.read { db in
            try db.queryFirst("SELECT status, finished_us FROM experiment_runs WHERE id = ?", [.text(id)]) { s in
                s.text(0) == "finished" ? s.optionalInt64(1).map { Self.key(id: id, finished: date($0)) } : nil
            }
        }
        guard let key else { return nil }
        if let key, let cached = details.withLock({ $0[key] }) { return cached }
        // The two scans run at once, each on a read connection of its own. (For a run still running
        // they are two snapshots a moment apart; a finished run is the same in both.)
        async let items = xeroml.read { db -> ItemFigures? in
            guard let run = try Self.runRows(db, where: "r.id = ?", [.text(id)]).first else { return nil }
            return try Self.itemFigures(db, run: run)
        }
        async let scores = xeroml.read { db in try Self.scoreFigures(db, runID: id) }
        guard let itemFigures = try await items else { return nil }
        let detail = Self.detail(itemFigures, try await scores)
        if let key = Self.key(detail.run) {
            details.withLock { $0[key] = detail }
            means.withLock { $0[key] = detail.run.scores }
        }
        return detail
    }

    package static let histogramBins = 20

    /// What one pass over a run's items gives: latencies, the tasks' usage, error groups, evaluators' usage.
    package struct ItemFigures: Sendable {
        package var run: RunListing
        package var latencies: [Double]
        package var usage: UsageTotals
        package var errors: [ErrorGroup]
        package var evaluatorUsage: UsageTotals

        package init(run: RunListing, latencies: [Double], usage: UsageTotals, errors: [ErrorGroup], evaluatorUsage: UsageTotals) {
            (self.run, self.latencies, self.usage, self.errors, self.evaluatorUsage) = (run, latencies, usage, errors, evaluatorUsage)
        }
    }

    /// What one pass over a run's score index gives: summaries, histograms; and the run-level scores.
    package struct ScoreFigures: Sendable {
        package var summaries: [ScoreSummaryView]
        package var histograms: [Histogram]
        package var runScores: [ScoreView]

        package init(summaries: [ScoreSummaryView], histograms: [Histogram], runScores: [ScoreView]) {
            (self.summaries, self.histograms, self.runScores) = (summaries, histograms, runScores)
        }
    }

    static func itemFigures(_ db: Connection, run: RunListing) throws -> ItemFigures {
        let runValue: [SQLValue] = [.text(run.id)]
        // One pass over the run's items: latencies and the tasks' usage.
        var latencies: [Double] = []
        latencies.reserveCapacity(run.itemCount)
        var usage = UsageTotals()
        let items = try db.prepare("""
            SELECT latency_ms, generations, prompt_tokens, completion_tokens, total_tokens, cost, cost IS NOT NULL
            FROM run_items WHERE run_id = ?
            """)
        try items.bind(runValue)
        while try items.step() {
            latencies.append(items.double(0))
            usage.generations += items.int(1)
            usage.promptTokens += items.int(2)
            usage.completionTokens += items.int(3)
            usage.totalTokens += items.int(4)
            usage.cost += items.double(5)
            usage.pricedGenerations += items.int(6) * items.int(1)
        }
        latencies.sort()

        let errors = try db.query("""
            SELECT error, count(*), min(id) FROM run_items WHERE run_id = ? AND error IS NOT NULL
            GROUP BY error ORDER BY count(*) DESC, min(id) LIMIT 50
            """, runValue) { ErrorGroup(message: $0.text(0) ?? "", count: $0.int(1), exampleItemID: $0.text(2)!) }
        let evaluatorUsage = try db.queryFirst("""
            SELECT coalesce(sum(o.prompt_tokens), 0), coalesce(sum(o.completion_tokens), 0),
                coalesce(sum(o.total_tokens), 0), coalesce(sum(o.cost), 0), count(o.id), count(o.cost)
            FROM traces t JOIN observations o ON o.trace_id = t.id
            WHERE t.run_id = ? AND t.kind = 'evaluation' AND o.kind = 'generation'
            """, runValue) { s in
            UsageTotals(promptTokens: s.int(0), completionTokens: s.int(1), totalTokens: s.int(2), cost: s.double(3),
                        generations: s.int(4), pricedGenerations: s.int(5))
        } ?? UsageTotals()
        return ItemFigures(run: run, latencies: latencies, usage: usage, errors: errors, evaluatorUsage: evaluatorUsage)
    }

    static func scoreFigures(_ db: Connection, runID: String) throws -> ScoreFigures {
        let runValue: [SQLValue] = [.text(runID)]
        // One pass over the covering score index: values arrive sorted by name, then value.
        var summaries: [ScoreSummaryView] = []
        var histograms: [Histogram] = []
        // Scores are listed in the order they were first recorded (their smallest rowid).
        var order: [String: Int64] = [:]
        var current: (name: String, values: [Double], booleans: Int, numerics: Int, unscored: Int, others: Int)?
        func close() {
            guard let c = current else { return }
            summaries.append(summary(name: c.name, sortedValues: c.values, booleans: c.booleans, numerics: c.numerics,
                                     unscored: c.unscored, others: c.others))
            if let histogram = histogram(name: c.name, sortedValues: c.values, boolean: c.booleans > 0 && c.numerics == 0) {
                histograms.append(histogram)
            }
        }
        let scores = try db.prepare("""
            SELECT name, data_type, value, rowid FROM scores WHERE run_id = ? AND run_item_id IS NOT NULL ORDER BY name, value
            """)
        try scores.bind(runValue)
        while try scores.step() {
            let name = scores.text(0)!
            if current?.name != name {
                close()
                current = (name, [], 0, 0, 0, 0)
            }
            let rowid = scores.int64(3)
            if rowid < order[current!.name, default: .max] { order[current!.name] = rowid }
            switch scores.text(1) {
            case "numeric": current!.numerics += 1; current!.values.append(scores.double(2))
            case "boolean": current!.booleans += 1; current!.values.append(scores.double(2))
            case "unscored": current!.unscored += 1
            default: current!.others += 1
            }
        }
        close()
        let categories = try db.query("""
            SELECT name, string_value, count(*) FROM scores
            WHERE run_id = ? AND run_item_id IS NOT NULL AND data_type IN ('categorical', 'text') GROUP BY name, string_value
            """, runValue) { ($0.text(0)!, $0.text(1) ?? "", $0.int(2)) }
        for (name, category, count) in categories {
            if let i = summaries.firstIndex(where: { $0.name == name }) { summaries[i].categories?[category, default: 0] += count }
        }
        for i in summaries.indices {
            if let counts = summaries[i].categories, summaries[i].count == 0 {
                let top = counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(histogramBins)
                histograms.append(Histogram(name: summaries[i].name, low: 0, high: Double(top.count),
                                            counts: top.map(\.value), labels: top.map(\.key)))
            }
        }
        summaries.sort { (order[$0.name] ?? 0) < (order[$1.name] ?? 0) }
        histograms.sort { (order[$0.name] ?? 0) < (order[$1.name] ?? 0) }

        let runScores = try db.query("""
            SELECT name, data_type, value, string_value, comment, source, evaluator, observation_id
            FROM scores WHERE run_id = ? AND run_item_id IS NULL AND trace_id IS NULL ORDER BY id
            """, runValue, readScoreView)
        return ScoreFigures(summaries: summaries, histograms: histograms, runScores: runScores)
    }

    package static func detail(_ items: ItemFigures, _ scores: ScoreFigures) -> RunDetail {
        var run = items.run
        run.scores = scores.summaries.compactMap { s in
            guard let mean = s.mean else { return nil }
            return ScoreMean(name: s.name, count: s.count, mean: mean, low: s.low, high: s.high)
        }
        let latencies = items.latencies
        return RunDetail(
            run: run, scores: scores.summaries, histograms: scores.histograms,
            latency: histogram(name: "latency (ms)", sortedValues: latencies, boolean: false),
            latencyP50Ms: Statistics.percentile(latencies, 0.5), latencyP95Ms: Statistics.percentile(latencies, 0.95),
            latencyP99Ms: Statistics.percentile(latencies, 0.99), usage: UsageView(items.usage),
            evaluatorUsage: UsageView(items.evaluatorUsage), runScores: scores.runScores, errors: items.errors)
    }

    package static func summary(name: String, sortedValues v: [Double], booleans: Int, numerics: Int, unscored: Int, others: Int) -> ScoreSummaryView {
        let kinds = [numerics > 0 ? "numeric" : nil, booleans > 0 ? "boolean" : nil, others > 0 ? "categorical" : nil].compactMap { $0 }
        var s = ScoreSummaryView(name: name, dataType: kinds.count == 1 ? kinds[0] : (kinds.isEmpty ? "unscored" : "mixed"),
                                 count: v.count, unscored: unscored, mean: nil, standardDeviation: nil, low: nil, high: nil,
                                 min: v.first, median: Statistics.percentile(v, 0.5), p95: Statistics.percentile(v, 0.95),
                                 max: v.last, passRate: nil, categories: others > 0 ? [:] : nil)
        guard !v.isEmpty else { return s }
        let (mean, variance) = Statistics.meanAndVariance(v)
        s.mean = mean
        s.standardDeviation = v.count > 1 ? variance.squareRoot() : nil
        let interval: ConfidenceInterval?
        if booleans > 0, numerics == 0 {
            s.passRate = mean
            interval = Statistics.wilsonInterval(successes: v.count - (v.firstIndex { $0 != 0 } ?? v.count), count: v.count)
        } else {
            interval = Statistics.studentTInterval(mean: mean, variance: variance, count: v.count)
        }
        (s.low, s.high) = (interval?.lower, interval?.upper)
        return s
    }

    package static func histogram(name: String, sortedValues v: [Double], boolean: Bool) -> Histogram? {
        guard let low = v.first, let high = v.last else { return nil }
        if boolean {
            let passes = v.count - (v.firstIndex { $0 != 0 } ?? v.count) // sorted: zeros first
            return Histogram(name: name, low: 0, high: 1, counts: [v.count - passes, passes], labels: ["fail", "pass"])
        }
        guard high > low else { return Histogram(name: name, low: low, high: high, counts: [v.count]) }
        let width = (high - low) / Double(histogramBins)
        var counts = [Int](repeating: 0, count: histogramBins)
        for value in v { counts[min(histogramBins - 1, Int((value - low) / width))] += 1 }
        return Histogram(name: name, low: low, high: high, counts: counts)
    }

    @Sendable static func readScoreView(_ s: Statement) -> ScoreView {
        ScoreView(name: s.text(0)!, dataType: s.text(1) ?? "numeric", value: s.optionalDouble(2), text: s.text(3),
                  comment: s.text(4), source: s.text(5) ?? "sdk", evaluator: s.text(6), observationID: s.text(7))
    }

    public func progress(runID: String) async throws -> RunProgress? {
        try await xeroml.read { db in
            try db.queryFirst("""
                SELECT r.id, r.status,
                    (SELECT count(*) FROM run_items i WHERE i.run_id = r.id),
                    (SELECT count(*) FROM run_items i WHERE i.run_id = r.id AND i.error IS NOT NULL),
                    CASE WHEN r.dataset_id IS NULL THEN NULL ELSE
                        (SELECT count(*) FROM dataset_items d WHERE d.dataset_id = r.dataset_id
                         AND d.created_version <= r.dataset_version
                         AND (d.archived_version IS NULL OR d.archived_version > r.dataset_version)) END
                FROM experiment_runs r WHERE r.id = ?
                """, [.text(runID)]) { s in
                RunProgress(id: s.text(0)!, status: s.text(1) ?? "unknown", itemCount: s.int(2), errorCount: s.int(3),
                            expectedItems: s.optionalInt64(4).map { Int($0) })
            }
        }
    }

    // MARK: Items

    static let itemColumns = """
        r.id, r.dataset_item_id, r.repetition, coalesce(r.input, d.input), coalesce(r.expected_output, d.expected_output),
        coalesce(r.metadata, d.metadata), r.output, r.error, r.latency_ms, r.attempts, r.total_tokens, r.cost,
        r.trace_id, r.started_us
        """

    @Sendable static func readItem(_ s: Statement) -> ItemRow {
        ItemRow(id: s.text(0)!, datasetItemID: s.text(1), repetition: s.int(2),
                input: XeroML.parseStoredJSON(s.text(3)) ?? .null, expectedOutput: XeroML.parseStoredJSON(s.text(4)),
                metadata: XeroML.parseStoredJSON(s.text(5)), output: XeroML.parseStoredJSON(s.text(6)), error: s.text(7),
                latencyMs: s.double(8), attempts: s.int(9), totalTokens: s.int(10), cost: s.optionalDouble(11),
                traceID: s.text(12), startedAt: date(s.int64(13)), scores: [])
    }

    public func items(runID: String, query: ItemsQuery) async throws -> ItemsPage? {
        try await xeroml.read { db -> ItemsPage? in
            guard try db.queryFirst("SELECT 1 FROM experiment_runs WHERE id = ?", [.text(runID)], { _ in true }) != nil else {
                return nil
            }
            // Conditions on the run item `r`, each with its values.
            var conditions: [(sql: String, values: [SQLValue])] = []
            switch query.filter {
            case .all: break
            case .errors: conditions.append(("r.error IS NOT NULL", []))
            case .unscored:
                conditions.append(("EXISTS (SELECT 1 FROM scores u WHERE u.run_item_id = r.id AND u.data_type = 'unscored')", []))
            }
            if let search = query.search, !search.isEmpty {
                conditions.append(("""
                    instr(lower(coalesce(r.input, d.input, '') || ' ' || coalesce(r.expected_output, d.expected_output, '')
                        || ' ' || coalesce(r.output, '') || ' ' || coalesce(r.error, '')), lower(?)) > 0
                    """, [.text(search)]))
            }
            let filter = query.scoreFilter
            let comparison = filter.map { $0.below ? "<" : ">" } ?? "<"
            let direction = query.descending ? "DESC" : "ASC"
            let fromScores = """
                SELECT \(Self.itemColumns) FROM scores s JOIN run_items r ON r.id = s.run_item_id
                LEFT JOIN dataset_items d ON d.id = r.dataset_item_id
                WHERE s.run_id = ? AND s.name = ? AND s.run_item_id IS NOT NULL AND s.value IS NOT NULL
                """
            var sql: String
            var values: [SQLValue]
            var order: String
            switch (query.sort, filter) {
            case (.score(let name), let filter?) where filter.name == name:
                // Sorted and filtered on one score: a range of the covering score index, in value order.
                sql = fromScores + " AND s.value \(comparison) ?"
                values = [.text(runID), .text(name), .real(filter.value)]
                order = "s.value \(direction), s.data_type \(direction), s.run_item_id \(direction)"
            case (.score(let name), _):
                // Driven by the covering score index, already in value order.
                sql = fromScores
                values = [.text(runID), .text(name)]
                if let filter {
                    conditions.append(("EXISTS (SELECT 1 FROM scores f WHERE f.run_item_id = r.id AND f.name = ? AND f.value \(comparison) ?)",
                                       [.text(filter.name), .real(filter.value)]))
                }
                order = "s.value \(direction), s.data_type \(direction), s.run_item_id \(direction)"
            case (_, let filter?):
                // Driven by the filter's range of the covering score index: only matching items are read.
                sql = fromScores + " AND s.value \(comparison) ?"
                values = [.text(runID), .text(filter.name), .real(filter.value)]
                order = ""
            case (_, nil):
                sql = "SELECT \(Self.itemColumns) FROM run_items r LEFT JOIN dataset_items d ON d.id = r.dataset_item_id WHERE r.run_id = ?"
                values = [.text(runID)]
                order = ""
            }
            for condition in conditions {
                sql += " AND " + condition.sql
                values += condition.values
            }
            if let runItemsOrder = query.sort.runItemsOrder(descending: query.descending, id: "r.id") { order = runItemsOrder }
            sql += " ORDER BY " + order
            sql += " LIMIT ? OFFSET ?"
            var items = try db.query(sql, values + [.integer(query.pageSize + 1), .integer((query.page - 1) * query.pageSize)],
                                     Self.readItem)
            let hasNext = items.count > query.pageSize
            if hasNext { items.removeLast() }
            try Self.attachScores(db, to: &items)
            return ItemsPage(runID: runID, page: query.page, pageSize: query.pageSize, hasNextPage: hasNext, items: items)
        }
    }

    static func attachScores(_ db: Connection, to items: inout [ItemRow]) throws {
        guard !items.isEmpty else { return }
        let placeholders = Array(repeating: "?", count: items.count).joined(separator: ", ")
        var byItem: [String: [ScoreView]] = [:]
        let rows = try db.query("""
            SELECT run_item_id, name, data_type, value, string_value, comment, source, evaluator, observation_id
            FROM scores WHERE run_item_id IN (\(placeholders)) ORDER BY id
            """, items.map { .text($0.id) }) { s in
            (s.text(0)!, ScoreView(name: s.text(1)!, dataType: s.text(2) ?? "numeric", value: s.optionalDouble(3),
                                   text: s.text(4), comment: s.text(5), source: s.text(6) ?? "sdk", evaluator: s.text(7),
                                   observationID: s.text(8)))
        }
        for (id, score) in rows { byItem[id, default: []].append(score) }
        for i in items.indices { items[i].scores = byItem[items[i].id] ?? [] }
    }

    // MARK: Traces

    public func item(id: String) async throws -> TraceDetail? {
        let found = try await xeroml.read { db -> (ItemRow, RunListing, [String])? in
            guard var item = try db.queryFirst("""
                SELECT \(Self.itemColumns) FROM run_items r LEFT JOIN dataset_items d ON d.id = r.dataset_item_id WHERE r.id = ?
                """, [.text(id)], Self.readItem) else { return nil }
            var items = [item]
            try Self.attachScores(db, to: &items)
            item = items[0]
            let runID = try db.queryFirst("SELECT run_id FROM run_items WHERE id = ?", [.text(id)]) { $0.text(0)! }!
            let run = try Self.runRows(db, where: "r.id = ?", [.text(runID)])[0]
            // The evaluators' traces hold the observations their scores point at.
            let evaluations = try db.query("""
                SELECT DISTINCT o.trace_id FROM scores s JOIN observations o ON o.id = s.observation_id
                WHERE s.run_item_id = ? AND s.observation_id IS NOT NULL AND o.trace_id IS NOT ?
                """, [.text(id), .text(item.traceID)]) { $0.text(0)! }
            return (item, run, evaluations)
        }
        guard let (item, run, evaluationIDs) = found else { return nil }
        let trace = try await item.traceID.asyncMap { try await xeroml.trace(id: $0) } ?? nil
        var evaluations: [TraceView] = []
        for evaluationID in evaluationIDs {
            if let t = try await xeroml.trace(id: evaluationID) { evaluations.append(TraceView(t)) }
        }
        return TraceDetail(trace: trace.map(TraceView.init), run: run, item: item, evaluations: evaluations)
    }

    public func trace(id: String) async throws -> TraceDetail? {
        guard let trace = try await xeroml.trace(id: id) else { return nil }
        if trace.kind == .trace || trace.runID == nil {
            return TraceDetail(trace: TraceView(trace), run: nil, item: nil, evaluations: [])
        }
        let runID = trace.runID!
        let traceKind = trace.kind
        let itemID = try await xeroml.read { db -> String? in
            if traceKind == .evaluation, let id = try db.queryFirst("SELECT metadata ->> '$.run_item_id' FROM traces WHERE id = ?",
                                                                  [.text(id)], { $0.text(0) }) ?? nil {
                return id
            }
            // Through the item's scores (indexed by trace), else over the run's items.
            if let id = try db.queryFirst("SELECT run_item_id FROM scores WHERE trace_id = ? AND run_item_id IS NOT NULL LIMIT 1",
                                          [.text(id)], { $0.text(0) }) ?? nil {
                return id
            }
            return try db.queryFirst("SELECT id FROM run_items WHERE run_id = ? AND trace_id = ?", [.text(runID), .text(id)]) {
                $0.text(0)
            } ?? nil
        }
        guard let itemID, var detail = try await item(id: itemID) else {
            return TraceDetail(trace: TraceView(trace), run: nil, item: nil, evaluations: [])
        }
        if traceKind == .evaluation {
            // Opened from an evaluation trace: show that one beside the item's task trace.
            if !detail.evaluations.contains(where: { $0.id == id }) { detail.evaluations.insert(TraceView(trace), at: 0) }
        }
        return detail
    }

    // MARK: Comparison

    public func comparison(runIDs: [String], baseline: String?, query: CompareQuery) async throws -> ComparisonPage? {
        let ids = try CompareSelection.ids(runIDs, baseline: baseline)
        let chosen = ids
        let listed = try await xeroml.read { db in
            try Self.runRows(db, where: "r.id IN (\(Array(repeating: "?", count: chosen.count).joined(separator: ", ")))",
                             chosen.map { .text($0) })
        }
        // The page shows the comparison's means, not the listings'.
        guard let runs = try CompareSelection.ordered(listed, ids: ids, baseline: baseline) else { return nil }
        let keys = runs.map(Self.key)
        let cacheKey = keys.allSatisfy({ $0 != nil }) ? keys.map { $0! }.joined(separator: ",") : nil
        let comparison: RunComparison
        if let cacheKey, let cached = comparisons.withLock({ $0[cacheKey] }) {
            comparison = cached
        } else {
            comparison = try await xeroml.compare(baseline: runs[0].id, candidates: runs.dropFirst().map(\.id))
            if let cacheKey { comparisons.withLock { $0[cacheKey] = comparison } }
        }
        return try await page(of: comparison, cacheKey: cacheKey, runs: runs, query: query)
    }

    /// A compared item that passed the filter: its index in the comparison and its label.
    package struct MatchedItem: Sendable {
        package var index: Int
        package var label: String
    }

    /// Filters and orders the compared items, in one pass without per-item allocations.
    package static func match(_ comparison: RunComparison, query: CompareQuery) -> [MatchedItem] {
        let names = comparison.scores.map(\.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var matched: [(item: MatchedItem, change: Double)] = []
        for (index, item) in comparison.items.enumerated() {
            var regressed = false, improved = false, newError = false, fixed = false, noise = false, missing = false
            for changes in item.changes {
                for change in changes.values {
                    switch change {
                    case .regressed: regressed = true
                    case .improved: improved = true
                    case .newError: newError = true
                    case .fixedError: fixed = true
                    case .withinNoise: noise = true
                    case .missing: missing = true
                    case .unchanged: break
                    }
                }
            }
            let keep: Bool
            switch query.filter {
            case .all: keep = true
            case .regressions: keep = regressed || newError
            case .improvements: keep = improved || fixed
            case .changed: keep = regressed || improved || newError || fixed
            case .errors: keep = item.outcomes.contains { ($0?.errors ?? 0) > 0 }
            }
            guard keep else { continue }
            let label = newError ? "new error" : regressed ? "regressed" : fixed ? "fixed error" : improved ? "improved"
                : noise ? "within noise" : missing ? "missing" : "unchanged"
            var change = 0.0
            if query.sort == .change, let base = item.outcomes[0] {
                for candidate in item.outcomes.dropFirst() {
                    guard let candidate else { continue }
                    if (base.errors == 0) != (candidate.errors == 0) { change = .infinity; break }
                    for name in names {
                        if let c = candidate.score(name), let b = base.score(name) { change = max(change, abs(c.mean - b.mean)) }
                    }
                }
            }
            matched.append((MatchedItem(index: index, label: label), change))
        }
        if query.sort == .change {
            // Stable: equal changes keep dataset order.
            return matched.enumerated().sorted { a, b in
                a.element.change != b.element.change ? a.element.change > b.element.change : a.offset < b.offset
            }.map(\.element.item)
        }
        return matched.map(\.item)
    }

    func page(of comparison: RunComparison, cacheKey: String?, runs: [RunListing], query: CompareQuery) async throws -> ComparisonPage {
        let scores = Self.scoreViews(comparison)
        // The items that pass the filter, in the asked order: computed once per comparison, filter and
        // sort while the comparison is cached, so paging through them costs only the page.
        let orderKey = cacheKey.map { "\($0)|\(query.filter.rawValue)|\(query.sort.rawValue)" }
        let ordered: [MatchedItem]
        if let orderKey, let cached = orders.withLock({ $0[orderKey] }) {
            ordered = cached
        } else {
            ordered = Self.match(comparison, query: query)
            if let orderKey { orders.withLock { $0[orderKey] = ordered } }
        }
        let xeroml = self.xeroml
        return try await Self.comparisonPage(of: comparison, runs: runs, query: query, scores: scores, ordered: ordered) { datasetIDs, multiRepetitionIDs in
            try await Self.comparisonTexts(xeroml, datasetIDs: datasetIDs, runItemIDs: multiRepetitionIDs)
        }
    }

    /// The comparison's score rows as the page shows them.
    package static func scoreViews(_ comparison: RunComparison) -> [ScoreComparisonView] {
        comparison.scores.map { s in
            ScoreComparisonView(
                name: s.name, run: s.candidate + 1, isBoolean: s.isBoolean, lowerIsBetter: s.lowerIsBetter,
                baselineMean: s.baselineMean, candidateMean: s.candidateMean, pairs: s.pairs, difference: s.meanDifference,
                low: s.bootstrapInterval95?.lowerBound, high: s.bootstrapInterval95?.upperBound, pValue: s.pValue,
                improved: s.count(.improved), regressed: s.count(.regressed), unchanged: s.count(.unchanged) + s.count(.withinNoise),
                verdict: s.significantRegression ? "significant regression"
                    : s.significantImprovement ? "significant improvement" : "within noise")
        }
    }

    static func comparisonTexts(_ xeroml: XeroML, datasetIDs: [String], runItemIDs multiRepetitionIDs: [String]) async throws
        -> ([String: (JSONValue?, JSONValue?)], [String: String]) {
        try await xeroml.read { db -> ([String: (JSONValue?, JSONValue?)], [String: String]) in
            var texts: [String: (JSONValue?, JSONValue?)] = [:]
            if !datasetIDs.isEmpty {
                for (id, input, expected) in try db.query(
                    "SELECT id, input, expected_output FROM dataset_items WHERE id IN (\(Array(repeating: "?", count: datasetIDs.count).joined(separator: ", ")))",
                    datasetIDs.map { .text($0) }, { ($0.text(0)!, XeroML.parseStoredJSON($0.text(1)), XeroML.parseStoredJSON($0.text(2))) }) {
                    texts[id] = (input, expected)
                }
            }
            var outputs: [String: String] = [:]
            for chunk in stride(from: 0, to: multiRepetitionIDs.count, by: 500) {
                let ids = Array(multiRepetitionIDs[chunk..<min(multiRepetitionIDs.count, chunk + 500)])
                for (id, output) in try db.query(
                    "SELECT id, coalesce(output, 'null') FROM run_items WHERE id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))",
                    ids.map { .text($0) }, { ($0.text(0)!, $0.text(1)!) }) {
                    outputs[id] = output
                }
            }
            return (texts, outputs)
        }
    }

    /// One page of a comparison: the items of `ordered` on the asked page, with their dataset texts
    /// and, for items run several times, each repetition's output (both from `fetch`).
    package static func comparisonPage(
        of comparison: RunComparison, runs: [RunListing], query: CompareQuery, scores: [ScoreComparisonView], ordered: [MatchedItem],
        fetch: (_ datasetItemIDs: [String], _ runItemIDs: [String]) async throws -> ([String: (JSONValue?, JSONValue?)], [String: String])
    ) async throws -> ComparisonPage {
        let matching = ordered.map { (item: comparison.items[$0.index], label: $0.label) }
        let start = min(matching.count, (query.page - 1) * query.pageSize)
        let slice = Array(matching[start..<min(matching.count, start + query.pageSize)])
        let datasetIDs = slice.map(\.item.datasetItemID)
        let multiRepetitionIDs = slice.flatMap { $0.item.outcomes.compactMap { $0 }.filter { $0.repetitions > 1 }.flatMap(\.runItemIDs) }
        let (texts, outputs) = try await fetch(datasetIDs, multiRepetitionIDs)
        let rows = slice.map { entry -> CompareItemRow in
            let cells = entry.item.outcomes.enumerated().map { index, outcome -> CompareCell? in
                guard let outcome else { return nil }
                var counts: [Int]?
                if outcome.repetitions > 1 {
                    var tally: [String: Int] = [:]
                    for id in outcome.runItemIDs { tally[outputs[id] ?? "null", default: 0] += 1 }
                    counts = tally.values.sorted(by: >)
                }
                let changes = index == 0 ? [:] : entry.item.changes[index - 1].mapValues { $0.rawValue.replacingOccurrences(of: "_", with: " ") }
                return CompareCell(
                    runItemID: outcome.runItemIDs.first, repetitions: outcome.repetitions, errors: outcome.errors,
                    output: outcome.output, error: outcome.error, outputCounts: counts,
                    latencyMs: Double(outcome.latency.components.seconds) * 1000 + Double(outcome.latency.components.attoseconds) / 1e15,
                    cost: outcome.cost,
                    scores: outcome.scores.mapValues {
                        CompareValue(mean: $0.mean, standardDeviation: $0.count > 1 ? $0.variance.squareRoot() : nil, isBoolean: $0.isBoolean)
                    },
                    changes: changes)
            }
            let text = texts[entry.item.datasetItemID]
            return CompareItemRow(datasetItemID: entry.item.datasetItemID, input: text?.0, expectedOutput: text?.1,
                                  cells: cells, label: entry.label)
        }
        let statistics = comparison.runStatistics.map {
            RunStatisticsView(items: $0.items, errors: $0.errors, latencyP50Ms: $0.latencyP50.map(milliseconds),
                              latencyP95Ms: $0.latencyP95.map(milliseconds), cost: $0.cost)
        }
        return ComparisonPage(runs: runs, scores: scores, statistics: statistics, datasetVersionsDiffer: comparison.datasetVersionsDiffer,
                              matchingItems: matching.count, page: query.page, pageSize: query.pageSize, items: rows)
    }
}

func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

package func date(_ microseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}

/// A small cache that forgets its oldest entry when full.
package struct Cache<Value> {
    let capacity: Int
    private var values: [String: Value] = [:]
    private var order: [String] = []

    package init(capacity: Int) { self.capacity = capacity }

    package subscript(key: String?) -> Value? {
        get { key.flatMap { values[$0] } }
        set {
            guard let key, let newValue else { return }
            if values.updateValue(newValue, forKey: key) == nil {
                order.append(key)
                if order.count > capacity { values[order.removeFirst()] = nil }
            }
        }
    }
}
