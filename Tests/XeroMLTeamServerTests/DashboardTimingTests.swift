import Foundation
import PostgresNIO
import Testing
import XeroMLDashboard
import XeroMLTeamServer

/// Times the dashboard's reads over two 100,000-item runs in PostgreSQL and prints them (asserting only
/// what they return). Opt-in, as timings in a debug build: `XEROML_PGDASH_TIMING=1 swift test --filter DashboardTiming`.
@Suite(.enabled(if: DashboardCluster.available && ProcessInfo.processInfo.environment["XEROML_PGDASH_TIMING"] == "1",
                "set XEROML_PGDASH_TIMING=1 to time the team dashboard's reads"), .timeLimit(.minutes(10)))
struct DashboardTimingTests {
    static let items = 100_000

    static func id(_ prefix: String, _ n: String) -> String { "\(prefix)-0000-7000-8000-" + n }

    @Test func twoLargeRuns() async throws {
        try await DashboardCluster.withDatabase { client in
            let project = try await TeamSchema.addProject(client, name: "timing")
            let hex = "lpad(to_hex(n), 12, '0')"
            try await client.query("INSERT INTO datasets VALUES (\(project), 'ds', 'large', NULL, NULL, 1, 0)")
            try await client.query(PostgresQuery(unsafeSQL: """
                INSERT INTO dataset_items (project_id, id, dataset_id, item_key, external_id, input, expected_output, created_us)
                SELECT $1, '01930000-0000-7000-8000-' || \(hex), 'ds', 'id:' || n, n::text, '{"q":"question ' || n || '"}',
                    '"answer ' || n || '"', 0 FROM generate_series(1, \(Self.items)) n
                """, binds: { var b = PostgresBindings(); b.append(project); return b }()))
            var runIDs: [String] = []
            for r in 1...2 {
                let run = "0193000\(r)-0000-7000-8000-000000000000"
                runIDs.append(run)
                try await client.query("""
                    INSERT INTO experiment_runs (project_id, id, dataset_id, dataset_version, name, status, created_us, finished_us,
                        committed_us, chunk_count, run_item_count)
                    VALUES (\(project), \(run), 'ds', 1, \("run \(r)"), 'finished', \(r), \(r + 1), \(r + 2), 1, \(Self.items))
                    """)
                var binds = PostgresBindings()
                binds.append(project)
                binds.append(run)
                try await client.query(PostgresQuery(unsafeSQL: """
                    INSERT INTO run_items (project_id, id, run_id, dataset_item_id, repetition, output, error, latency_ms, attempts,
                        generations, prompt_tokens, completion_tokens, total_tokens, cost, started_us)
                    SELECT $1, '0193010\(r)-0000-7000-8000-' || \(hex), $2, '01930000-0000-7000-8000-' || \(hex), 0,
                        '"answer ' || (n + \(r) * (n % 7 = 0)::int) || '"', CASE WHEN n % (40 + \(r)) = 0 THEN 'timeout' END,
                        10 + (n * 7 + \(r)) % 100, 1, 1, 10, 5, 15, 0.001, n FROM generate_series(1, \(Self.items)) n
                    """, binds: binds))
                try await client.query(PostgresQuery(unsafeSQL: """
                    INSERT INTO scores (project_id, id, run_id, run_item_id, name, data_type, value, source, created_us)
                    SELECT $1, '0193020\(r)-0000-7000-8000-' || \(hex), $2, '0193010\(r)-0000-7000-8000-' || \(hex), 'quality', 'numeric',
                        ((n * 13 + \(r)) % 100) / 100.0, 'sdk', n FROM generate_series(1, \(Self.items)) n
                    UNION ALL
                    SELECT $1, '0193030\(r)-0000-7000-8000-' || \(hex), $2, '0193010\(r)-0000-7000-8000-' || \(hex), 'correct', 'boolean',
                        ((n + \(r)) % 3 > 0)::int, 'evaluator', n FROM generate_series(1, \(Self.items)) n
                    """, binds: binds))
            }
            try await client.query("ANALYZE")

            func time<T>(_ label: String, repeat count: Int = 5, _ body: () async throws -> T) async throws -> T {
                var result: T?
                var durations: [Duration] = []
                for _ in 0..<count {
                    let start = ContinuousClock.now
                    result = try await body()
                    durations.append(ContinuousClock.now - start)
                }
                let ms = durations.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1000 }
                print("pg dashboard timing: \(label): " + ms.map { String(format: "%.1f", $0) }.joined(separator: ", ") + " ms")
                return result!
            }
            // A new cache for each cold read: nothing computed before.
            let cold = try await time("run page summary, cold") {
                try await PostgresDashboardStore(client: client, projectID: project).run(id: runIDs[0])
            }
            #expect(cold?.run.itemCount == Self.items)
            let store = PostgresDashboardStore(client: client, projectID: project)
            _ = try await time("run page summary, cached", repeat: 3) { try await store.run(id: runIDs[0]) }
            let page = try await time("items page (first 50)") { try await store.items(runID: runIDs[0], query: ItemsQuery()) }
            #expect(page?.items.count == 50)
            var errors = ItemsQuery()
            errors.filter = .errors
            _ = try await time("items page, errors") { try await store.items(runID: runIDs[0], query: errors) }
            var below = ItemsQuery()
            below.scoreFilter = ("quality", true, 0.3)
            _ = try await time("items page, quality below 0.3") { try await store.items(runID: runIDs[0], query: below) }
            var sorted = ItemsQuery()
            sorted.sort = .score("quality")
            sorted.descending = true
            _ = try await time("items page, sorted by quality") { try await store.items(runID: runIDs[0], query: sorted) }
            var latency = ItemsQuery()
            latency.sort = .latency
            latency.page = 100
            _ = try await time("items page 100, sorted by latency") { try await store.items(runID: runIDs[0], query: latency) }
            var search = ItemsQuery()
            search.search = "question 99999"
            _ = try await time("items page, text search") { try await store.items(runID: runIDs[0], query: search) }
            let comparison = try await time("compare two runs, cold", repeat: 3) {
                try await PostgresDashboardStore(client: client, projectID: project).comparison(runIDs: runIDs, baseline: nil, query: CompareQuery())
            }
            #expect(comparison?.matchingItems == Self.items)
            _ = try await time("compare two runs, cached, regressions page") {
                try await store.comparison(runIDs: runIDs, baseline: nil, query: CompareQuery(filter: .regressions))
            }
        }
    }
}
