import Foundation
import PostgresNIO
import Testing
@_spi(Dashboard) import XeroML
import XeroMLDashboard
import XeroMLSQLite
import XeroMLTeamServer

/// A local file with one dataset of twelve items and three finished runs: `v1` answers right, `v2`
/// answers `i2` wrong, fails on `i3` and leaves `i5`'s judge unscored, `v3` runs every item twice.
struct DashboardFixture {
    let directory: URL
    let xeroml: XeroML
    let datasetID: String
    let runs: [ExperimentRun]

    static func make() async throws -> DashboardFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-pgdash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let xeroml = try await XeroML.open(path: directory.appendingPathComponent("local.sqlite").path)
        let dataset = try await xeroml.createDataset(name: "capitals", description: "Capital cities", metadata: ["owner": "qa"])
        let countries = ["France", "Germany", "Italy", "Spain", "Japan", "Canada", "Peru", "Kenya", "Chile", "Egypt", "Nepal", "Fiji"]
        for (i, country) in countries.enumerated() {
            try await xeroml.createDatasetItem(datasetName: "capitals", input: ["question": .string("What is the capital of \(country)?")],
                                               expectedOutput: .string("capital \(i)"), metadata: ["n": .int(Int64(i))], id: "i\(i)")
        }
        let items = try await xeroml.dataset(named: "capitals").items
        var runs: [ExperimentRun] = []
        for version in 1...3 {
            let experiment = try await xeroml.createExperiment(name: "prompt-v\(version)", datasetName: "capitals",
                                                               description: "version \(version)", metadata: ["model": .string("m\(version)")])
            for item in items {
                let key = item.externalID!
                let n = Int(key.dropFirst())!
                for repetition in 0..<(version == 3 ? 2 : 1) {
                    _ = try await experiment.runItem(item, repetition: repetition) { run in
                        let wrong = version == 2 && key == "i2"
                        await observe("generate", as: .generation, input: .string("Answer: \(key)")) { span in
                            span.setModel("small-model", parameters: ["temperature": 0])
                            span.setUsage(promptTokens: 10 + n, completionTokens: 5)
                            if n % 3 != 0 { span.setCost(0.001 * Double(n + 1)) }
                            span.setOutput(.string("draft"))
                        }
                        if version == 2 && key == "i3" { throw DashboardFixtureError(message: "model failed: 429 Too Many Requests") }
                        if version == 2 && key == "i7" { throw DashboardFixtureError(message: "model failed: 429 Too Many Requests") }
                        let output = wrong ? "Milan" : (version == 3 && repetition == 1 && n % 4 == 0 ? "other \(n)" : "capital \(n)")
                        run.setOutput(.string(output))
                        run.score(name: "correct", value: !wrong, comment: wrong ? "expected capital \(n)" : "matches")
                        run.score(name: "quality", value: wrong ? 0.1 : 0.5 + Double((n * 7 + version + repetition) % 10) / 20)
                        run.score(name: "tone", value: .categorical(n % 2 == 0 ? "neutral" : "friendly"))
                        if version == 2 && key == "i5" {
                            run.score(name: "judge", value: .unscored("the judge's reply could not be parsed"))
                        } else {
                            run.score(name: "judge", value: Double(n % 5))
                        }
                    }
                }
            }
            try await experiment.score(name: "overall", value: .numeric(1 - Double(version) / 10), comment: "run level")
            try await experiment.finish()
            runs.append(try await xeroml.run(id: experiment.id)!)
        }
        return DashboardFixture(directory: directory, xeroml: xeroml, datasetID: dataset.id, runs: runs)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    func localIDs(_ sql: String) async throws -> [String] {
        try await xeroml.read { db in try db.query(sql) { $0.text(0)! } }
    }
}

struct DashboardFixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Whether two encodable values are the same, field by field; numbers within a relative 1e-12 (sums
/// that the two databases add in another order), dataset items' created version left out (the server
/// does not keep versions).
func expectSame<T: Encodable>(_ server: T?, _ local: T?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let a = try JSONSerialization.jsonObject(with: encoder.encode(server), options: [.fragmentsAllowed])
    let b = try JSONSerialization.jsonObject(with: encoder.encode(local), options: [.fragmentsAllowed])
    var differences: [String] = []
    compare(a, b, path: what, into: &differences)
    #expect(differences.isEmpty, "\(differences.prefix(5).joined(separator: "\n"))", sourceLocation: sourceLocation)
}

private func compare(_ a: Any, _ b: Any, path: String, into differences: inout [String]) {
    switch (a, b) {
    case (let x as [String: Any], let y as [String: Any]):
        for key in Set(x.keys).union(y.keys) where key != "createdVersion" {
            guard let xv = x[key], let yv = y[key] else { differences.append("\(path).\(key): only on one side"); continue }
            compare(xv, yv, path: "\(path).\(key)", into: &differences)
        }
    case (let x as [Any], let y as [Any]):
        guard x.count == y.count else { differences.append("\(path): \(x.count) elements against \(y.count)"); return }
        for i in x.indices { compare(x[i], y[i], path: "\(path)[\(i)]", into: &differences) }
    case (let x as NSNumber, let y as NSNumber):
        let (p, q) = (x.doubleValue, y.doubleValue)
        if p != q && abs(p - q) > 1e-12 * max(abs(p), abs(q)) { differences.append("\(path): \(p) against \(q)") }
    case (let x as String, let y as String):
        if x != y { differences.append("\(path): \(x) against \(y)") }
    case (is NSNull, is NSNull):
        break
    default:
        differences.append("\(path): \(a) against \(b)")
    }
}

@Suite(.enabled(if: DashboardCluster.available, DashboardCluster.skipReason), .timeLimit(.minutes(5)))
struct PostgresDashboardStoreTests {
    @Test("returns what the local store returns, for every page")
    func sameAsLocal() async throws {
        let f = try await DashboardFixture.make()
        defer { f.remove() }
        let local = SQLiteDashboardStore(xeroml: f.xeroml)
        try await DashboardCluster.withDatabase { client in
            let project = try await TeamSchema.addProject(client, name: "team")
            try await RowCopier.copy(f.xeroml, into: client, project: project)
            let server = PostgresDashboardStore(client: client, projectID: project)

            try expectSame(try await server.home(), try await local.home(), "home")
            #expect(try await server.home().runs.count == 3)

            for query in [DatasetItemsQuery(), DatasetItemsQuery(search: "CAPITAL OF peru"), DatasetItemsQuery(page: 2, pageSize: 5),
                          DatasetItemsQuery(version: f.runs[0].datasetVersion)] {
                try expectSame(try await server.dataset(id: f.datasetID, query: query), try await local.dataset(id: f.datasetID, query: query),
                               "dataset \(query)")
            }
            await #expect(throws: DashboardError.self) { try await server.dataset(id: f.datasetID, query: DatasetItemsQuery(version: 0)) }

            var queries: [ItemsQuery] = []
            func add(_ change: (inout ItemsQuery) -> Void) { var q = ItemsQuery(); change(&q); queries.append(q) }
            add { _ in }
            add { $0.filter = .errors }
            add { $0.filter = .unscored }
            add { $0.search = "PERU" }
            add { $0.search = "429" }
            add { $0.sort = .latency }
            add { $0.sort = .latency; $0.descending = true }
            add { $0.sort = .cost }
            add { $0.sort = .cost; $0.descending = true }
            add { $0.sort = .started; $0.descending = true; $0.page = 2; $0.pageSize = 5 }
            add { $0.sort = .score("quality"); $0.descending = true }
            add { $0.sort = .score("judge") }
            add { $0.scoreFilter = ("quality", true, 0.7) }
            add { $0.scoreFilter = ("quality", false, 0.6); $0.sort = .score("quality") }
            add { $0.scoreFilter = ("judge", false, 1); $0.sort = .score("quality"); $0.descending = true }
            add { $0.scoreFilter = ("quality", false, 0.5); $0.filter = .errors }
            add { $0.page = 3; $0.pageSize = 5 }
            for run in f.runs {
                try expectSame(try await server.run(id: run.id), try await local.run(id: run.id), "run \(run.name)")
                try expectSame(try await server.progress(runID: run.id), try await local.progress(runID: run.id), "progress \(run.name)")
                for query in queries {
                    try expectSame(try await server.items(runID: run.id, query: query), try await local.items(runID: run.id, query: query),
                                   "items of \(run.name) \(query.filter) \(query.sort) \(query.descending) \(query.scoreFilter.map { "\($0)" } ?? "") \(query.search ?? "") \(query.page)")
                }
            }
            let detail = try #require(try await server.run(id: f.runs[1].id))
            #expect(detail.errors.first?.count == 2 && detail.scores.map(\.name) == ["correct", "quality", "tone", "judge"])

            for id in try await f.localIDs("SELECT id FROM run_items ORDER BY id") {
                try expectSame(try await server.item(id: id), try await local.item(id: id), "item \(id)")
            }
            for id in try await f.localIDs("SELECT id FROM traces WHERE run_id IS NOT NULL ORDER BY id") {
                try expectSame(try await server.trace(id: id), try await local.trace(id: id), "trace \(id)")
            }

            let ids = f.runs.map(\.id)
            for filter in CompareQuery.Filter.allCases {
                for sort in CompareQuery.Sort.allCases {
                    let query = CompareQuery(filter: filter, sort: sort, pageSize: 5)
                    try expectSame(try await server.comparison(runIDs: [ids[0], ids[1]], baseline: nil, query: query),
                                   try await local.comparison(runIDs: [ids[0], ids[1]], baseline: nil, query: query), "compare \(filter) \(sort)")
                }
            }
            for page in 1...3 {
                let query = CompareQuery(page: page, pageSize: 5)
                try expectSame(try await server.comparison(runIDs: ids, baseline: ids[2], query: query),
                               try await local.comparison(runIDs: ids, baseline: ids[2], query: query), "compare three, page \(page)")
            }
            let page = try #require(try await server.comparison(runIDs: [ids[0], ids[1]], baseline: nil, query: CompareQuery(filter: .regressions)))
            #expect(page.items.map(\.label).contains("regressed") && page.items.map(\.label).contains("new error"))
            await #expect(throws: DashboardError.self) { try await server.comparison(runIDs: [ids[0]], baseline: nil, query: CompareQuery()) }

            // Unknown ids.
            let unknown = "01930000-0000-7000-8000-000000000000"
            #expect(try await server.run(id: unknown) == nil)
            #expect(try await server.items(runID: unknown, query: ItemsQuery()) == nil)
            #expect(try await server.item(id: unknown) == nil)
            #expect(try await server.trace(id: unknown) == nil)
            #expect(try await server.dataset(id: unknown, query: DatasetItemsQuery()) == nil)
            #expect(try await server.comparison(runIDs: [ids[0], unknown], baseline: nil, query: CompareQuery()) == nil)
        }
    }

    @Test("shows one project's committed runs only")
    func isolation() async throws {
        let f = try await DashboardFixture.make()
        defer { f.remove() }
        try await DashboardCluster.withDatabase { client in
            let a = try await TeamSchema.addProject(client, name: "a")
            let b = try await TeamSchema.addProject(client, name: "b")
            try await RowCopier.copy(f.xeroml, into: client, project: a)
            let pending = f.runs[2].id
            try await client.query("UPDATE experiment_runs SET committed_us = NULL WHERE project_id = \(a) AND id = \(pending)")
            let storeA = PostgresDashboardStore(client: client, projectID: a)
            let storeB = PostgresDashboardStore(client: client, projectID: b)

            #expect(try await storeA.home().runs.map(\.id) == [f.runs[1].id, f.runs[0].id], "the uncommitted run is not listed")
            #expect(try await storeA.run(id: pending) == nil)
            #expect(try await storeA.progress(runID: pending) == nil)
            #expect(try await storeA.items(runID: pending, query: ItemsQuery()) == nil)
            let pendingItem = try await f.localIDs("SELECT id FROM run_items WHERE run_id = '\(pending)' LIMIT 1")[0]
            let pendingTrace = try await f.localIDs("SELECT id FROM traces WHERE run_id = '\(pending)' LIMIT 1")[0]
            #expect(try await storeA.item(id: pendingItem) == nil)
            #expect(try await storeA.trace(id: pendingTrace) == nil)
            #expect(try await storeA.comparison(runIDs: [f.runs[0].id, pending], baseline: nil, query: CompareQuery()) == nil)
            #expect(try await storeA.dataset(id: f.datasetID, query: DatasetItemsQuery())?.runs.count == 2)

            let committed = f.runs[0].id
            let item = try await f.localIDs("SELECT id FROM run_items WHERE run_id = '\(committed)' LIMIT 1")[0]
            let trace = try await f.localIDs("SELECT id FROM traces WHERE run_id = '\(committed)' LIMIT 1")[0]
            #expect(try await storeA.run(id: committed) != nil)
            #expect(try await storeA.item(id: item) != nil)
            #expect(try await storeA.trace(id: trace) != nil)
            let home = try await storeB.home()
            #expect(home.runs.isEmpty && home.datasets.isEmpty)
            #expect(try await storeB.run(id: committed) == nil)
            #expect(try await storeB.progress(runID: committed) == nil)
            #expect(try await storeB.items(runID: committed, query: ItemsQuery()) == nil)
            #expect(try await storeB.item(id: item) == nil)
            #expect(try await storeB.trace(id: trace) == nil)
            #expect(try await storeB.dataset(id: f.datasetID, query: DatasetItemsQuery()) == nil)
            #expect(try await storeB.comparison(runIDs: [f.runs[0].id, f.runs[1].id], baseline: nil, query: CompareQuery()) == nil)
        }
    }
}
