public import Foundation
import Hummingbird
import Logging
public import PostgresNIO
import Synchronization
@_spi(Dashboard) import XeroML
public import XeroMLDashboard

/// The dashboard's queries over the team server's PostgreSQL, for one project.
///
/// Returns the values ``SQLiteDashboardStore`` returns for the same rows, with two differences that
/// come from what the server keeps: only committed runs (and the datasets, items, traces and scores
/// they reference) exist, and a dataset is not versioned (a dataset page lists every item the server
/// holds for it, at the dataset's current version; another `version` is a 400). Every query is scoped
/// by ``projectID``: another project's dataset, run, item or trace is `nil` (404).
///
/// Committed runs never change, so what is computed over a whole run (its summary, its score means, a
/// comparison) is kept in a ``PostgresDashboardCache`` shared by the stores of all requests.
public struct PostgresDashboardStore: DashboardStore {
    public let client: PostgresClient
    public let projectID: UUID
    /// Above this many runs, the home page lists the newest only.
    public let homeRunLimit: Int
    let cache: PostgresDashboardCache
    let logger: Logger

    /// Reads `projectID`'s runs through `client`, keeping whole-run figures in `cache`.
    public init(client: PostgresClient, projectID: UUID, cache: PostgresDashboardCache = PostgresDashboardCache(),
                homeRunLimit: Int = 50, logger: Logger? = nil) {
        self.client = client
        self.projectID = projectID
        self.cache = cache
        self.homeRunLimit = homeRunLimit
        self.logger = logger ?? Logger(label: "xeroml.server.dashboard", factory: { _ in SwiftLogNoOpLogHandler() })
    }

    // MARK: Queries

    /// SQL text with its numbered parameters; the project is always `$1`.
    struct Query {
        var sql = ""
        var binds = PostgresBindings()

        init(project: UUID) { binds.append(project) }

        mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }

        mutating func bind(_ value: (some PostgresDynamicTypeEncodable)?) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }

        var postgres: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
    }

    func query() -> Query { Query(project: projectID) }

    func rows(_ query: Query) async throws -> [PostgresRandomAccessRow] {
        let (client, logger, postgres) = (self.client, self.logger, query.postgres)
        return try await boundedRead(logger: logger) {
            var result: [PostgresRandomAccessRow] = []
            for try await row in try await client.query(postgres, logger: logger) { result.append(row.makeRandomAccess()) }
            return result
        }
    }

    /// Which runs exist for the dashboard: the project's committed runs (`r`).
    static let visibleRun = "r.project_id = $1 AND r.committed_us IS NOT NULL"

    // MARK: Home

    public func home() async throws -> HomeData {
        async let datasets = datasets(id: nil)
        async let runs = runRows(where: "TRUE", query(), limit: homeRunLimit)
        return HomeData(datasets: try await datasets, runs: try await withMeans(try await runs))
    }

    func datasets(id: String?) async throws -> [DatasetListing] {
        var q = query()
        let condition = id.map { "AND d.id = \(q.bind($0))" } ?? ""
        q.sql = """
            SELECT d.id, d.name, d.description, d.version, d.created_us,
                (SELECT count(*) FROM dataset_items i WHERE i.project_id = d.project_id AND i.dataset_id = d.id),
                (SELECT count(*) FROM experiment_runs r WHERE \(Self.visibleRun) AND r.dataset_id = d.id),
                (SELECT max(r.created_us) FROM experiment_runs r WHERE \(Self.visibleRun) AND r.dataset_id = d.id)
            FROM datasets d WHERE d.project_id = $1 \(condition)
                AND EXISTS (SELECT 1 FROM experiment_runs r WHERE \(Self.visibleRun) AND r.dataset_id = d.id)
            ORDER BY d.name COLLATE "C"
            """
        return try await rows(q).map { s in
            DatasetListing(id: try s.text(0)!, name: try s.text(1)!, description: try s.text(2), version: try s.int(3),
                           itemCount: try s.int(5), archivedCount: 0, runCount: try s.int(6),
                           lastRunAt: try s.int64(7).map(date), createdAt: date(try s.int64(4) ?? 0))
        }
    }

    /// Committed runs matching `condition` (on `r`, with `q`'s parameters), without their score means, newest first.
    func runRows(where condition: String, _ q: Query, limit: Int? = nil) async throws -> [RunListing] {
        var q = q
        let limitClause = limit.map { "LIMIT \(q.bind($0))" } ?? ""
        q.sql = """
            SELECT r.id, r.name, r.dataset_id, d.name, r.dataset_version, r.description, r.metadata, r.status,
                r.created_us, r.finished_us,
                coalesce(r.run_item_count::bigint,
                         (SELECT count(*) FROM run_items i WHERE i.project_id = r.project_id AND i.run_id = r.id)),
                (SELECT count(*) FROM run_items i WHERE i.project_id = r.project_id AND i.run_id = r.id AND i.error IS NOT NULL)
            FROM experiment_runs r LEFT JOIN datasets d ON d.project_id = r.project_id AND d.id = r.dataset_id
            WHERE \(Self.visibleRun) AND (\(condition)) ORDER BY r.id COLLATE "C" DESC \(limitClause)
            """
        return try await rows(q).map { s in
            RunListing(id: try s.text(0)!, name: try s.text(1)!, datasetID: try s.text(2), datasetName: try s.text(3),
                       datasetVersion: try s.int64(4).map { Int($0) }, description: try s.text(5),
                       metadata: XeroML.parseStoredJSON(try s.text(6)), status: try s.text(7) ?? "unknown",
                       createdAt: date(try s.int64(8) ?? 0), finishedAt: try s.int64(9).map(date),
                       itemCount: try s.int(10), errorCount: try s.int(11), scores: [])
        }
    }

    func cacheKey(_ runID: String) -> String { "\(projectID.uuidString)/\(runID)" }

    /// Fills in the score means, from the cache or in one query for the runs not cached.
    func withMeans(_ runs: [RunListing]) async throws -> [RunListing] {
        var result = runs
        var missing: [Int] = []
        cache.means.withLock { cache in
            for (i, run) in runs.enumerated() {
                if let cached = cache[cacheKey(run.id)] { result[i].scores = cached } else { missing.append(i) }
            }
        }
        guard !missing.isEmpty else { return result }
        var q = query()
        let ids = q.bind(missing.map { runs[$0].id })
        q.sql = """
            SELECT run_id, name, count(value), coalesce(sum(value), 0)::float8, coalesce(sum(value * value), 0)::float8,
                count(*) FILTER (WHERE data_type = 'boolean') = count(value)
            FROM scores WHERE project_id = $1 AND run_id = ANY(\(ids)) AND run_item_id IS NOT NULL
                AND data_type IN ('numeric', 'boolean')
            GROUP BY run_id, name ORDER BY run_id, min(id COLLATE "C")
            """
        var computed: [String: [ScoreMean]] = [:]
        for s in try await rows(q) {
            computed[try s.text(0)!, default: []].append(
                ScoreMean(name: try s.text(1)!, count: try s.int(2), sum: try s.double(3) ?? 0, sumOfSquares: try s.double(4) ?? 0,
                          boolean: try s[5].decode(Bool.self)))
        }
        cache.means.withLock { cache in
            for i in missing {
                result[i].scores = computed[runs[i].id] ?? []
                cache[cacheKey(runs[i].id)] = result[i].scores
            }
        }
        return result
    }

    // MARK: Dataset

    public func dataset(id: String, query itemsQuery: DatasetItemsQuery) async throws -> DatasetPageData? {
        guard let dataset = try await datasets(id: id).first else { return nil }
        if let version = itemsQuery.version, version != dataset.version {
            throw DashboardError(parameter: "version",
                                 "the team server keeps a dataset's items at its current version only (\(dataset.version))")
        }
        var q = query()
        var sql = """
            SELECT id, external_id, input, expected_output, metadata FROM dataset_items
            WHERE project_id = $1 AND dataset_id = \(q.bind(id))
            """
        if let search = itemsQuery.search, !search.isEmpty {
            sql += """
                 AND strpos(lower(input || ' ' || coalesce(expected_output, '') || ' ' || coalesce(metadata, '')), lower(\(q.bind(search)))) > 0
                """
        }
        sql += " ORDER BY id COLLATE \"C\" LIMIT \(q.bind(itemsQuery.pageSize + 1)) OFFSET \(q.bind((itemsQuery.page - 1) * itemsQuery.pageSize))"
        q.sql = sql
        var runsQuery = query()
        let runsCondition = "r.dataset_id = \(runsQuery.bind(id))"
        async let runs = runRows(where: runsCondition, runsQuery)
        var items = try await rows(q).map { s in
            DatasetItemRow(id: try s.text(0)!, externalID: try s.text(1), input: XeroML.parseStoredJSON(try s.text(2)) ?? .null,
                           expectedOutput: XeroML.parseStoredJSON(try s.text(3)), metadata: XeroML.parseStoredJSON(try s.text(4)),
                           createdVersion: dataset.version, archivedVersion: nil)
        }
        let hasNext = items.count > itemsQuery.pageSize
        if hasNext { items.removeLast() }
        return DatasetPageData(dataset: dataset, version: dataset.version, items: items, page: itemsQuery.page, hasNextPage: hasNext,
                               runs: try await withMeans(try await runs).reversed())
    }

    // MARK: Run

    func run(_ id: String) async throws -> RunListing? {
        var q = query()
        let condition = "r.id = \(q.bind(id))"
        return try await runRows(where: condition, q).first
    }

    public func run(id: String) async throws -> RunDetail? {
        let key = cacheKey(id)
        if let cached = cache.details.withLock({ $0[key] }) { return cached }
        // One computation per run at a time: a request that arrives while another request (or the
        // computation that follows the run's commit) computes the same figures waits for those. The
        // computation is not cancelled with a request that stops waiting; its figures are kept.
        let computation = cache.computing.withLock { computing in
            if let running = computing[key] { return running }
            let task = Task { [self] in
                defer { cache.computing.withLock { _ = $0.removeValue(forKey: key) } }
                return try await computeDetail(id: id, key: key)
            }
            computing[key] = task
            return task
        }
        return try await computation.value
    }

    /// The figures of run `id`, computed and kept in the cache under `key`; nil for a run that is not
    /// a committed run of the project.
    func computeDetail(id: String, key: String) async throws -> RunDetail? {
        cache.computations.add(1, ordering: .relaxed)
        guard let run = try await run(id) else { return nil }
        async let items = itemFigures(run: run)
        async let scores = scoreFigures(runID: id)
        let detail = SQLiteDashboardStore.detail(try await items, try await scores)
        cache.details.withLock { $0[key] = detail }
        cache.means.withLock { $0[key] = detail.run.scores }
        return detail
    }

    func itemFigures(run: RunListing) async throws -> SQLiteDashboardStore.ItemFigures {
        var latencyQuery = query()
        latencyQuery.sql = "SELECT latency_ms FROM run_items WHERE project_id = $1 AND run_id = \(latencyQuery.bind(run.id))"
        var usageQuery = query()
        usageQuery.sql = """
            SELECT coalesce(sum(generations), 0)::bigint, coalesce(sum(prompt_tokens), 0)::bigint,
                coalesce(sum(completion_tokens), 0)::bigint, coalesce(sum(total_tokens), 0)::bigint,
                coalesce(sum(cost), 0)::float8, coalesce(sum(generations) FILTER (WHERE cost IS NOT NULL), 0)::bigint
            FROM run_items WHERE project_id = $1 AND run_id = \(usageQuery.bind(run.id))
            """
        var errorsQuery = query()
        errorsQuery.sql = """
            SELECT error, count(*), min(id COLLATE "C") FROM run_items
            WHERE project_id = $1 AND run_id = \(errorsQuery.bind(run.id)) AND error IS NOT NULL
            GROUP BY error ORDER BY count(*) DESC, min(id COLLATE "C") LIMIT 50
            """
        var evaluatorQuery = query()
        evaluatorQuery.sql = """
            SELECT coalesce(sum(o.prompt_tokens), 0)::bigint, coalesce(sum(o.completion_tokens), 0)::bigint,
                coalesce(sum(o.total_tokens), 0)::bigint, coalesce(sum(o.cost), 0)::float8, count(o.id), count(o.cost)
            FROM traces t JOIN observations o ON o.project_id = t.project_id AND o.trace_id = t.id
            WHERE t.project_id = $1 AND t.run_id = \(evaluatorQuery.bind(run.id)) AND t.kind = 'evaluation' AND o.kind = 'generation'
            """
        async let usageRows = rows(usageQuery)
        async let errorRows = rows(errorsQuery)
        async let evaluatorRows = rows(evaluatorQuery)
        var latencies = try await client.boundedRows(latencyQuery.postgres, as: Double.self, logger: logger)
        latencies.sort()
        func usage(_ s: PostgresRandomAccessRow?) throws -> UsageTotals {
            guard let s else { return UsageTotals() }
            return UsageTotals(promptTokens: try s.int(1), completionTokens: try s.int(2), totalTokens: try s.int(3),
                               cost: try s.double(4) ?? 0, generations: try s.int(0), pricedGenerations: try s.int(5))
        }
        let taskUsage = try usage(try await usageRows.first)
        let errors = try await errorRows.map { s in
            ErrorGroup(message: try s.text(0) ?? "", count: try s.int(1), exampleItemID: try s.text(2)!)
        }
        let evaluatorUsage: UsageTotals = try await evaluatorRows.first.map { s in
            UsageTotals(promptTokens: try s.int(0), completionTokens: try s.int(1), totalTokens: try s.int(2), cost: try s.double(3) ?? 0,
                        generations: try s.int(4), pricedGenerations: try s.int(5))
        } ?? UsageTotals()
        return SQLiteDashboardStore.ItemFigures(run: run, latencies: latencies, usage: taskUsage, errors: errors,
                                                evaluatorUsage: evaluatorUsage)
    }

    func scoreFigures(runID: String) async throws -> SQLiteDashboardStore.ScoreFigures {
        // Per name: how many values of each type, and the first recorded score (ids are time-ordered).
        var kindsQuery = query()
        kindsQuery.sql = """
            SELECT name, count(*) FILTER (WHERE data_type = 'numeric'), count(*) FILTER (WHERE data_type = 'boolean'),
                count(*) FILTER (WHERE data_type = 'unscored'),
                count(*) FILTER (WHERE data_type NOT IN ('numeric', 'boolean', 'unscored')), min(id COLLATE "C")
            FROM scores WHERE project_id = $1 AND run_id = \(kindsQuery.bind(runID)) AND run_item_id IS NOT NULL
            GROUP BY name ORDER BY name COLLATE "C"
            """
        var valuesQuery = query()
        valuesQuery.sql = """
            SELECT name, value FROM scores WHERE project_id = $1 AND run_id = \(valuesQuery.bind(runID))
                AND run_item_id IS NOT NULL AND data_type IN ('numeric', 'boolean')
            ORDER BY name COLLATE "C", value
            """
        var categoriesQuery = query()
        categoriesQuery.sql = """
            SELECT name, string_value, count(*) FROM scores
            WHERE project_id = $1 AND run_id = \(categoriesQuery.bind(runID)) AND run_item_id IS NOT NULL
                AND data_type IN ('categorical', 'text')
            GROUP BY name, string_value
            """
        var runScoresQuery = query()
        runScoresQuery.sql = """
            SELECT \(Self.scoreViewColumns) FROM scores
            WHERE project_id = $1 AND run_id = \(runScoresQuery.bind(runID)) AND run_item_id IS NULL AND trace_id IS NULL
            ORDER BY id COLLATE "C"
            """
        async let kindRows = rows(kindsQuery)
        async let categoryRows = rows(categoriesQuery)
        async let runScoreRows = rows(runScoresQuery)
        var values: [String: [Double]] = [:]
        var current: (name: String, values: [Double])?
        for (name, value) in try await client.boundedRows(valuesQuery.postgres, as: (String, Double?).self, logger: logger) {
            if current?.name != name {
                if let c = current { values[c.name] = c.values }
                current = (name, [])
            }
            current!.values.append(value ?? 0)
        }
        if let c = current { values[c.name] = c.values }

        var summaries: [ScoreSummaryView] = []
        var histograms: [Histogram] = []
        var order: [String: String] = [:]
        for s in try await kindRows {
            let name = try s.text(0)!
            let (numerics, booleans, unscored, others) = (try s.int(1), try s.int(2), try s.int(3), try s.int(4))
            order[name] = try s.text(5) ?? ""
            let sorted = values[name] ?? []
            summaries.append(SQLiteDashboardStore.summary(name: name, sortedValues: sorted, booleans: booleans, numerics: numerics,
                                                          unscored: unscored, others: others))
            if let histogram = SQLiteDashboardStore.histogram(name: name, sortedValues: sorted, boolean: booleans > 0 && numerics == 0) {
                histograms.append(histogram)
            }
        }
        for s in try await categoryRows {
            let (name, category, count) = (try s.text(0)!, try s.text(1) ?? "", try s.int(2))
            if let i = summaries.firstIndex(where: { $0.name == name }) { summaries[i].categories?[category, default: 0] += count }
        }
        for i in summaries.indices {
            if let counts = summaries[i].categories, summaries[i].count == 0 {
                let top = counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                    .prefix(SQLiteDashboardStore.histogramBins)
                histograms.append(Histogram(name: summaries[i].name, low: 0, high: Double(top.count),
                                            counts: top.map(\.value), labels: top.map(\.key)))
            }
        }
        summaries.sort { (order[$0.name] ?? "") < (order[$1.name] ?? "") }
        histograms.sort { (order[$0.name] ?? "") < (order[$1.name] ?? "") }
        let runScores = try await runScoreRows.map { try Self.readScoreView($0) }
        return SQLiteDashboardStore.ScoreFigures(summaries: summaries, histograms: histograms, runScores: runScores)
    }

    static let scoreViewColumns = "name, data_type, value, string_value, comment, source, evaluator, observation_id"

    static func readScoreView(_ s: PostgresRandomAccessRow, from first: Int = 0) throws -> ScoreView {
        ScoreView(name: try s.text(first)!, dataType: try s.text(first + 1) ?? "numeric", value: try s.double(first + 2),
                  text: try s.text(first + 3), comment: try s.text(first + 4), source: try s.text(first + 5) ?? "sdk",
                  evaluator: try s.text(first + 6), observationID: try s.text(first + 7))
    }

    public func progress(runID: String) async throws -> RunProgress? {
        var q = query()
        q.sql = """
            SELECT r.id, r.status,
                (SELECT count(*) FROM run_items i WHERE i.project_id = r.project_id AND i.run_id = r.id),
                (SELECT count(*) FROM run_items i WHERE i.project_id = r.project_id AND i.run_id = r.id AND i.error IS NOT NULL),
                CASE WHEN r.dataset_id IS NULL THEN NULL ELSE
                    (SELECT count(*) FROM dataset_items d WHERE d.project_id = r.project_id AND d.dataset_id = r.dataset_id) END
            FROM experiment_runs r WHERE \(Self.visibleRun) AND r.id = \(q.bind(runID))
            """
        return try await rows(q).first.map { s in
            RunProgress(id: try s.text(0)!, status: try s.text(1) ?? "unknown", itemCount: try s.int(2), errorCount: try s.int(3),
                        expectedItems: try s.int64(4).map { Int($0) })
        }
    }

    // MARK: Items

    static let itemColumns = """
        r.id, r.dataset_item_id, r.repetition, coalesce(r.input, d.input), coalesce(r.expected_output, d.expected_output),
        coalesce(r.metadata, d.metadata), r.output, r.error, r.latency_ms, r.attempts, r.total_tokens, r.cost,
        r.trace_id, r.started_us
        """

    static func readItem(_ s: PostgresRandomAccessRow) throws -> ItemRow {
        ItemRow(id: try s.text(0)!, datasetItemID: try s.text(1), repetition: try s.int(2),
                input: XeroML.parseStoredJSON(try s.text(3)) ?? .null, expectedOutput: XeroML.parseStoredJSON(try s.text(4)),
                metadata: XeroML.parseStoredJSON(try s.text(5)), output: XeroML.parseStoredJSON(try s.text(6)), error: try s.text(7),
                latencyMs: try s.double(8) ?? 0, attempts: try s.int(9), totalTokens: try s.int(10), cost: try s.double(11),
                traceID: try s.text(12), startedAt: date(try s.int64(13) ?? 0), scores: [])
    }

    public func items(runID: String, query itemsQuery: ItemsQuery) async throws -> ItemsPage? {
        guard try await runExists(runID) else { return nil }
        var q = query()
        let run = q.bind(runID)
        var conditions: [String] = []
        switch itemsQuery.filter {
        case .all: break
        case .errors: conditions.append("r.error IS NOT NULL")
        case .unscored:
            conditions.append("""
                EXISTS (SELECT 1 FROM scores u WHERE u.project_id = r.project_id AND u.run_item_id = r.id AND u.data_type = 'unscored')
                """)
        }
        if let search = itemsQuery.search, !search.isEmpty {
            conditions.append("""
                strpos(lower(coalesce(r.input, d.input, '') || ' ' || coalesce(r.expected_output, d.expected_output, '')
                    || ' ' || coalesce(r.output, '') || ' ' || coalesce(r.error, '')), lower(\(q.bind(search)))) > 0
                """)
        }
        let filter = itemsQuery.scoreFilter
        let comparison = filter.map { $0.below ? "<" : ">" } ?? "<"
        let direction = itemsQuery.descending ? "DESC" : "ASC"
        func fromScores(_ name: String) -> String {
            """
            SELECT \(Self.itemColumns) FROM scores s JOIN run_items r ON r.project_id = s.project_id AND r.id = s.run_item_id
            LEFT JOIN dataset_items d ON d.project_id = r.project_id AND d.id = r.dataset_item_id
            WHERE s.project_id = $1 AND s.run_id = \(run) AND s.name = \(q.bind(name)) AND s.run_item_id IS NOT NULL AND s.value IS NOT NULL
            """
        }
        let scoreOrder = "s.value \(direction), s.data_type COLLATE \"C\" \(direction), s.run_item_id COLLATE \"C\" \(direction)"
        var sql: String
        var order = ""
        switch (itemsQuery.sort, filter) {
        case (.score(let name), let filter?) where filter.name == name:
            sql = fromScores(name) + " AND s.value \(comparison) \(q.bind(filter.value))"
            order = scoreOrder
        case (.score(let name), _):
            sql = fromScores(name)
            if let filter {
                conditions.append("""
                    EXISTS (SELECT 1 FROM scores f WHERE f.project_id = r.project_id AND f.run_item_id = r.id
                        AND f.name = \(q.bind(filter.name)) AND f.value \(comparison) \(q.bind(filter.value)))
                    """)
            }
            order = scoreOrder
        case (_, let filter?):
            sql = fromScores(filter.name) + " AND s.value \(comparison) \(q.bind(filter.value))"
        case (_, nil):
            sql = """
                SELECT \(Self.itemColumns) FROM run_items r
                LEFT JOIN dataset_items d ON d.project_id = r.project_id AND d.id = r.dataset_item_id
                WHERE r.project_id = $1 AND r.run_id = \(run)
                """
        }
        for condition in conditions { sql += " AND " + condition }
        if let runItemsOrder = itemsQuery.sort.runItemsOrder(descending: itemsQuery.descending, id: #"r.id COLLATE "C""#) {
            order = runItemsOrder
        }
        sql += " ORDER BY " + order
        sql += " LIMIT \(q.bind(itemsQuery.pageSize + 1)) OFFSET \(q.bind((itemsQuery.page - 1) * itemsQuery.pageSize))"
        q.sql = sql
        var items = try await rows(q).map(Self.readItem)
        let hasNext = items.count > itemsQuery.pageSize
        if hasNext { items.removeLast() }
        try await attachScores(to: &items)
        return ItemsPage(runID: runID, page: itemsQuery.page, pageSize: itemsQuery.pageSize, hasNextPage: hasNext, items: items)
    }

    func runExists(_ runID: String) async throws -> Bool {
        var q = query()
        q.sql = "SELECT 1 FROM experiment_runs r WHERE \(Self.visibleRun) AND r.id = \(q.bind(runID))"
        return try await !rows(q).isEmpty
    }

    func attachScores(to items: inout [ItemRow]) async throws {
        guard !items.isEmpty else { return }
        var q = query()
        q.sql = """
            SELECT run_item_id, \(Self.scoreViewColumns) FROM scores
            WHERE project_id = $1 AND run_item_id = ANY(\(q.bind(items.map(\.id)))) ORDER BY id COLLATE "C"
            """
        var byItem: [String: [ScoreView]] = [:]
        for s in try await rows(q) { byItem[try s.text(0)!, default: []].append(try Self.readScoreView(s, from: 1)) }
        for i in items.indices { items[i].scores = byItem[items[i].id] ?? [] }
    }

    // MARK: Traces

    public func item(id: String) async throws -> TraceDetail? {
        var q = query()
        q.sql = """
            SELECT \(Self.itemColumns), r.run_id FROM run_items r
            JOIN experiment_runs e ON e.project_id = r.project_id AND e.id = r.run_id AND e.committed_us IS NOT NULL
            LEFT JOIN dataset_items d ON d.project_id = r.project_id AND d.id = r.dataset_item_id
            WHERE r.project_id = $1 AND r.id = \(q.bind(id))
            """
        guard let row = try await rows(q).first else { return nil }
        var items = [try Self.readItem(row)]
        let runID = try row.text(14)!
        try await attachScores(to: &items)
        let item = items[0]
        guard let run = try await run(runID) else { return nil }
        // The evaluators' traces hold the observations their scores point at.
        var evaluationsQuery = query()
        evaluationsQuery.sql = """
            SELECT DISTINCT o.trace_id COLLATE "C" FROM scores s JOIN observations o ON o.project_id = s.project_id AND o.id = s.observation_id
            WHERE s.project_id = $1 AND s.run_item_id = \(evaluationsQuery.bind(id)) AND s.observation_id IS NOT NULL
                AND o.trace_id IS DISTINCT FROM \(evaluationsQuery.bind(item.traceID))
            ORDER BY 1
            """
        let evaluationIDs = try await rows(evaluationsQuery).map { try $0.text(0)! }
        let trace = try await item.traceID.asyncMap { try await traceView(id: $0) } ?? nil
        var evaluations: [TraceView] = []
        for evaluationID in evaluationIDs {
            if let t = try await traceView(id: evaluationID) { evaluations.append(t) }
        }
        return TraceDetail(trace: trace, run: run, item: item, evaluations: evaluations)
    }

    /// A trace of a committed run of the project, with its observations and scores, as the file's reader builds it.
    func traceView(id: String) async throws -> TraceView? {
        var q = query()
        q.sql = """
            SELECT t.id, t.name, t.run_id, t.input, t.output, t.metadata, t.started_us, t.ended_us, t.kind FROM traces t
            WHERE t.project_id = $1 AND t.id = \(q.bind(id)) AND EXISTS (
                SELECT 1 FROM experiment_runs r WHERE \(Self.visibleRun) AND r.id = t.run_id)
            """
        guard let t = try await rows(q).first else { return nil }
        var observationsQuery = query()
        observationsQuery.sql = """
            SELECT id, parent_id, kind, name, input, output, metadata, model, model_parameters,
                prompt_tokens, completion_tokens, total_tokens, cost, level, status_message, started_us, ended_us
            FROM observations WHERE project_id = $1 AND trace_id = \(observationsQuery.bind(id)) ORDER BY started_us, id COLLATE "C"
            """
        var scoresQuery = query()
        scoresQuery.sql = """
            SELECT name, data_type, value, string_value, comment, source, evaluator, observation_id FROM scores
            WHERE project_id = $1 AND trace_id = \(scoresQuery.bind(id)) ORDER BY id COLLATE "C"
            """
        async let observationRows = rows(observationsQuery)
        async let scoreRows = rows(scoresQuery)
        let observations = try await observationRows.map { s in
            let prompt = try s.int64(9).map { Int($0) }, completion = try s.int64(10).map { Int($0) }
            let usage = TokenUsage(promptTokens: prompt, completionTokens: completion, totalTokens: try s.int64(11).map { Int($0) })
            return ObservationView(
                id: try s.text(0)!, parentID: try s.text(1), kind: (ObservationKind(rawValue: try s.text(2) ?? "") ?? .span).rawValue,
                name: try s.text(3)!, input: XeroML.parseStoredJSON(try s.text(4)), output: XeroML.parseStoredJSON(try s.text(5)),
                metadata: XeroML.parseStoredJSON(try s.text(6)), model: try s.text(7), modelParameters: XeroML.parseStoredJSON(try s.text(8)),
                promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, totalTokens: usage.totalTokens,
                cost: try s.double(12), level: (ObservationLevel(rawValue: try s.text(13) ?? "") ?? .default).rawValue,
                statusMessage: try s.text(14), startedAt: date(try s.int64(15) ?? 0), endedAt: try s.int64(16).map(date))
        }
        // As a stored score reads back: booleans as 1 or 0, texts without a number.
        let scores = try await scoreRows.map { s -> ScoreView in
            let dataType = try s.text(1) ?? ""
            let value = try s.double(2), text = try s.text(3)
            let (kind, number, string): (String, Double?, String?) = switch dataType {
            case "boolean": ("boolean", (value ?? 0) != 0 ? 1 : 0, nil)
            case "categorical", "text", "unscored": (dataType, nil, text ?? "")
            default: ("numeric", value ?? 0, nil)
            }
            return ScoreView(name: try s.text(0)!, dataType: kind, value: number, text: string, comment: try s.text(4),
                             source: (ScoreSource(rawValue: try s.text(5) ?? "") ?? .sdk).rawValue, evaluator: try s.text(6),
                             observationID: try s.text(7))
        }
        return TraceView(id: try t.text(0)!, name: try t.text(1)!, kind: (TraceKind(rawValue: try t.text(8) ?? "") ?? .trace).rawValue,
                         runID: try t.text(2), input: XeroML.parseStoredJSON(try t.text(3)), output: XeroML.parseStoredJSON(try t.text(4)),
                         metadata: XeroML.parseStoredJSON(try t.text(5)), startedAt: date(try t.int64(6) ?? 0),
                         endedAt: try t.int64(7).map(date), observations: observations, scores: scores)
    }

    public func trace(id: String) async throws -> TraceDetail? {
        guard let trace = try await traceView(id: id) else { return nil }
        guard trace.kind != TraceKind.trace.rawValue, let runID = trace.runID else {
            return TraceDetail(trace: trace, run: nil, item: nil, evaluations: [])
        }
        var itemID: String?
        if trace.kind == TraceKind.evaluation.rawValue, case .object(let metadata)? = trace.metadata,
           case .string(let id)? = metadata["run_item_id"] {
            itemID = id
        }
        if itemID == nil {
            // Through the item's scores, else over the run's items.
            var q = query()
            q.sql = """
                SELECT run_item_id FROM scores WHERE project_id = $1 AND trace_id = \(q.bind(id)) AND run_item_id IS NOT NULL LIMIT 1
                """
            itemID = try await rows(q).first.flatMap { try $0.text(0) }
        }
        if itemID == nil {
            var q = query()
            q.sql = "SELECT id FROM run_items WHERE project_id = $1 AND run_id = \(q.bind(runID)) AND trace_id = \(q.bind(id)) LIMIT 1"
            itemID = try await rows(q).first.flatMap { try $0.text(0) }
        }
        guard let itemID, var detail = try await item(id: itemID) else {
            return TraceDetail(trace: trace, run: nil, item: nil, evaluations: [])
        }
        if trace.kind == TraceKind.evaluation.rawValue, !detail.evaluations.contains(where: { $0.id == id }) {
            detail.evaluations.insert(trace, at: 0)
        }
        return detail
    }

    // MARK: Comparison

    public func comparison(runIDs: [String], baseline: String?, query compareQuery: CompareQuery) async throws -> ComparisonPage? {
        let ids = try CompareSelection.ids(runIDs, baseline: baseline)
        var q = query()
        let condition = "r.id = ANY(\(q.bind(ids)))"
        let listed = try await runRows(where: condition, q)
        guard let runs = try CompareSelection.ordered(listed, ids: ids, baseline: baseline) else { return nil }
        // Committed runs never change: a comparison of them is cached as long as it is asked for.
        let key = "\(projectID.uuidString)/" + runs.map(\.id).joined(separator: ",")
        let comparison: RunComparison
        if let cached = cache.comparisons.withLock({ $0[key] }) {
            comparison = cached
        } else {
            let loaded = try await withThrowingTaskGroup(of: (Int, ComparisonRows).self) { group in
                for (index, run) in runs.enumerated() {
                    group.addTask { (index, try await self.comparisonRows(runID: run.id)) }
                }
                var loaded = [ComparisonRows?](repeating: nil, count: runs.count)
                for try await (index, rows) in group { loaded[index] = rows }
                return loaded.map { $0! }
            }
            let experimentRuns = runs.map { r in
                ExperimentRun(id: r.id, name: r.name, datasetID: r.datasetID, datasetName: r.datasetName, datasetVersion: r.datasetVersion,
                              description: r.description, metadata: r.metadata, status: RunStatus(rawValue: r.status) ?? .finished,
                              createdAt: r.createdAt, finishedAt: r.finishedAt, itemCount: r.itemCount, errorCount: r.errorCount)
            }
            comparison = XeroML.compare(runs: experimentRuns, rows: loaded)
            cache.comparisons.withLock { $0[key] = comparison }
        }
        let orderKey = "\(key)|\(compareQuery.filter.rawValue)|\(compareQuery.sort.rawValue)"
        let ordered: [SQLiteDashboardStore.MatchedItem]
        if let cached = cache.orders.withLock({ $0[orderKey] }) {
            ordered = cached
        } else {
            ordered = SQLiteDashboardStore.match(comparison, query: compareQuery)
            cache.orders.withLock { $0[orderKey] = ordered }
        }
        return try await SQLiteDashboardStore.comparisonPage(
            of: comparison, runs: runs, query: compareQuery, scores: SQLiteDashboardStore.scoreViews(comparison), ordered: ordered
        ) { datasetItemIDs, runItemIDs in
            try await comparisonTexts(datasetItemIDs: datasetItemIDs, runItemIDs: runItemIDs)
        }
    }

    /// A run's item outcomes and item score values, in the orders ``ComparisonRows`` asks for.
    func comparisonRows(runID: String) async throws -> ComparisonRows {
        var itemsQuery = query()
        itemsQuery.sql = """
            SELECT id, dataset_item_id, error, latency_ms, cost, output FROM run_items
            WHERE project_id = $1 AND run_id = \(itemsQuery.bind(runID)) AND dataset_item_id IS NOT NULL
            ORDER BY dataset_item_id COLLATE "C", repetition
            """
        var scoresQuery = query()
        scoresQuery.sql = """
            SELECT name, value, data_type, run_item_id FROM scores
            WHERE project_id = $1 AND run_id = \(scoresQuery.bind(runID)) AND run_item_id IS NOT NULL AND value IS NOT NULL
            ORDER BY name COLLATE "C", value, data_type COLLATE "C", run_item_id COLLATE "C"
            """
        var rows = ComparisonRows()
        let items = try await client.boundedRows(itemsQuery.postgres, as: (String, String, String?, Double, Double?, String?).self,
                                                 logger: logger)
        for (id, item, error, latency, cost, output) in items {
            rows.addRunItem(id: id, datasetItemID: item, error: error, latencyMs: latency, cost: cost, output: output)
        }
        let scores = try await client.boundedRows(scoresQuery.postgres, as: (String, Double, String, String).self, logger: logger)
        for (name, value, dataType, runItemID) in scores {
            rows.addScore(runItemID: runItemID, name: name, dataType: dataType, value: value)
        }
        return rows
    }

    func comparisonTexts(datasetItemIDs: [String], runItemIDs: [String]) async throws
        -> ([String: (JSONValue?, JSONValue?)], [String: String]) {
        var texts: [String: (JSONValue?, JSONValue?)] = [:]
        if !datasetItemIDs.isEmpty {
            var q = query()
            q.sql = "SELECT id, input, expected_output FROM dataset_items WHERE project_id = $1 AND id = ANY(\(q.bind(datasetItemIDs)))"
            for s in try await rows(q) {
                texts[try s.text(0)!] = (XeroML.parseStoredJSON(try s.text(1)), XeroML.parseStoredJSON(try s.text(2)))
            }
        }
        var outputs: [String: String] = [:]
        if !runItemIDs.isEmpty {
            var q = query()
            q.sql = "SELECT id, coalesce(output, 'null') FROM run_items WHERE project_id = $1 AND id = ANY(\(q.bind(runItemIDs)))"
            for s in try await rows(q) { outputs[try s.text(0)!] = try s.text(1)! }
        }
        return (texts, outputs)
    }
}

/// Whole-run figures of committed runs (summaries, score means, comparisons), shared by the stores of
/// every request; keyed by project and run.
public final class PostgresDashboardCache: Sendable {
    let details = Mutex(Cache<RunDetail>(capacity: 64))
    /// The run figures being computed, by cache key.
    let computing = Mutex<[String: Task<RunDetail?, any Error>]>([:])
    /// How many times run figures were computed (for tests).
    let computations = Atomic<Int>(0)
    let means = Mutex(Cache<[ScoreMean]>(capacity: 4096))
    let comparisons = Mutex(Cache<RunComparison>(capacity: 4))
    let orders = Mutex(Cache<[SQLiteDashboardStore.MatchedItem]>(capacity: 16))

    public init() {}
}

/// How long a dashboard read may wait for PostgreSQL (while it is down, the pool would keep a page
/// waiting for a connection for a minute).
let dashboardReadTimeout: Duration = .seconds(15)

/// A dashboard read within ``dashboardReadTimeout``; past it, the page answers 503 saying PostgreSQL
/// did not answer, and the read is cancelled in the background.
func boundedRead<T: Sendable>(logger: Logger, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    do {
        return try await TeamDatabase.withDeadline(dashboardReadTimeout, body)
    } catch TeamServerError.unavailable(let message) {
        logger.error("dashboard read failed: \(message)")
        throw HTTPError(.serviceUnavailable, message: "\(message). Try again in a moment; the server's log has the details.")
    }
}

extension PostgresClient {
    /// Every row of `query`, decoded as `columns`, read within ``dashboardReadTimeout``
    /// (``boundedRead(logger:_:)``).
    func boundedRows<each Column: PostgresDecodable & Sendable>(
        _ query: PostgresQuery, as columns: (repeat each Column).Type, logger: Logger
    ) async throws -> [(repeat each Column)] {
        try await boundedRead(logger: logger) { [self] in
            var rows: [(repeat each Column)] = []
            for try await row in try await self.query(query, logger: logger).decode(columns) { rows.append(row) }
            return rows
        }
    }
}

extension PostgresRandomAccessRow {
    func text(_ column: Int) throws -> String? { try self[column].decode(String?.self) }
    func int64(_ column: Int) throws -> Int64? { try self[column].decode(Int64?.self) }
    func int(_ column: Int) throws -> Int { Int(try self[column].decode(Int64?.self) ?? 0) }
    func double(_ column: Int) throws -> Double? { try self[column].decode(Double?.self) }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}
