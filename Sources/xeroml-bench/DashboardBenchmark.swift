import Foundation
import XeroML
import XeroMLDashboard
import XeroMLSQLite

/// The dashboard's pages over two finished 100,000-item runs (two scores each), timed from the query
/// through the rendered HTML (what a request costs apart from HTTP; `wrk` against `xeroml ui` measures
/// the HTTP side). Targets: run page and a later filtered, sorted items page < 50 ms, Compare Runs
/// < 400 ms, at the median.
///
/// "Cold" rounds use a new `SQLiteDashboardStore` each time (nothing cached in the process; SQLite's
/// page cache and the OS file cache are warm), "warm" rounds reuse one, as a running `xeroml ui` does:
/// what it computed over a finished run is kept.
struct DashboardBenchmark {
    let items: Int
    let rounds: Int
    /// Keep the store at this path (for `wrk` against `xeroml ui`).
    let keep: String?

    func run() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, xeroml) = try await CompareBenchmark.makeStore(items: items, in: dir)
        let runs = try await xeroml.runs(datasetName: "bench")
        let baseline = runs.first { $0.name == "baseline" }!.id
        let candidate = runs.first { $0.name == "candidate" }!.id
        let context = Pages.Context(storeName: "bench.sqlite")
        print("XeroML dashboard benchmark: two runs of \(items) items, 2 scores each, \(rounds) rounds, times from query to HTML")

        let clock = ContinuousClock()
        func time(_ body: () async throws -> Int) async throws -> (Double, Int) {
            let start = clock.now
            let bytes = try await body()
            return (seconds(clock.now - start) * 1000, bytes)
        }
        func runPage(_ store: SQLiteDashboardStore, _ query: QueryParameters) async throws -> Int {
            async let detail = store.run(id: candidate)
            async let page = store.items(runID: candidate, query: try query.itemsQuery())
            return try await Pages.run(detail!, items: page!, query: query, context: context).rendered.utf8.count
        }
        func itemsOnly(_ store: SQLiteDashboardStore, _ query: QueryParameters, _ detail: RunDetail) async throws -> Int {
            let page = try await store.items(runID: candidate, query: try query.itemsQuery())!
            return Pages.run(detail, items: page, query: query, context: context).rendered.utf8.count
        }
        func comparePage(_ store: SQLiteDashboardStore, _ query: QueryParameters) async throws -> Int {
            let (ids, base) = try query.compareRuns()
            let page = try await store.comparison(runIDs: ids, baseline: base, query: try query.compareQuery())!
            return Pages.compare(page, query: query, context: context).rendered.utf8.count
        }

        let first = QueryParameters([])
        // Page 20 of the items whose quality is below 0.5, highest quality first.
        let later = QueryParameters([("score", "quality"), ("op", "below"), ("value", "0.5"), ("sort", "score:quality"),
                                     ("order", "desc"), ("page", "20")])
        let compare = QueryParameters([("run", baseline), ("run", candidate)])
        let compareLater = QueryParameters([("run", baseline), ("run", candidate), ("filter", "regressions"), ("sort", "change"), ("page", "3")])
        let warm = SQLiteDashboardStore(xeroml: xeroml)
        let warmDetail = try await warm.run(id: candidate)!
        _ = try await comparePage(warm, compare)

        var results: [String: [Double]] = [:]
        var sizes: [String: Int] = [:]
        func record(_ name: String, _ measured: (Double, Int)) {
            results[name, default: []].append(measured.0)
            sizes[name] = measured.1
        }
        for round in 1...rounds {
            record("run page, cold", try await time { try await runPage(SQLiteDashboardStore(xeroml: xeroml), first) })
            record("run page, warm", try await time { try await runPage(warm, first) })
            record("later items page (filter + sort, page 20)", try await time { try await itemsOnly(warm, later, warmDetail) })
            record("later items page, whole request, warm", try await time { try await runPage(warm, later) })
            record("compare page, cold", try await time { try await comparePage(SQLiteDashboardStore(xeroml: xeroml), compare) })
            record("xeroml.compare alone (for reference)", try await time {
                try await xeroml.compare(baseline: baseline, candidates: [candidate]).items.count
            })
            record("compare page, warm (filtered, sorted, page 3)", try await time { try await comparePage(warm, compareLater) })
            print("round \(round): " + results.keys.sorted().map { String(format: "%@ %.1f ms", $0, results[$0]!.last!) }.joined(separator: "; "))
        }
        print("medians:")
        for name in results.keys.sorted() {
            print("  " + name.padding(toLength: 48, withPad: " ", startingAt: 0) + String(format: " %7.1f ms", median(results[name]!))
                  + (name.hasPrefix("xeroml.compare") ? "" : "  (\(sizes[name]!) bytes of HTML)"))
        }
        print("targets: run page < 50 ms, later items page < 50 ms, Compare Runs < 400 ms")
        if let keep {
            try await xeroml.flush()
            try? FileManager.default.removeItem(atPath: keep)
            // VACUUM INTO copies what is still in the WAL too.
            let db = try Connection(path: path, mode: .readOnly)
            try db.run("VACUUM INTO ?", [.text(keep)])
            db.close()
            print("kept the store at \(keep); candidate run \(candidate)")
        }
    }
}

