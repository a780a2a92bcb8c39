import Foundation
import XeroML
import XeroMLSQLite
import XeroMLSync

/// Release-mode benchmarks with a raw-SQLite baseline measured in the same process, so the ratio holds
/// even on a noisy machine. Run: `swift run -c release xeroml-bench [core] [--items N] [--rounds R]`;
/// `xeroml-bench stats [--simulations N] [--seed S]` measures interval coverage and false positives.
@main
struct Benchmark {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String, default value: Int) -> Int {
            guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let n = Int(arguments[i + 1]) else { return value }
            arguments.removeSubrange(i...(i + 1))
            return n
        }
        func option(_ name: String) -> String? {
            guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
            defer { arguments.removeSubrange(i...(i + 1)) }
            return arguments[i + 1]
        }
        let items = option("--items", default: 100_000)
        let rounds = option("--rounds", default: 3)
        var core = CoreBenchmark(items: items, rounds: rounds)
        if let only = option("--only") { core.parts = Set(only.split(separator: ",").map(String.init)) }
        let readsItems = option("--reads-items", default: 5_000)
        let otherRuns = option("--other-runs", default: 50)
        let which = arguments.first { !$0.hasPrefix("--") } ?? "core"
        switch which {
        case "core": try await core.run()
        case "runner": try await core.runRunner()
        case "scheduler": try await SchedulerBenchmark(items: option("--scheduler-items", default: 10_000)).run()
        case "rss": try await MemoryBenchmark(items: option("--rss-items", default: 1_000_000)).run()
        case "compare": try await CompareBenchmark(items: items).run()
        case "reads": try await ReadsBenchmark(items: readsItems, otherRuns: otherRuns).run()
        case "http":
            var http = HTTPBenchmark(concurrencies: (option("--concurrencies") ?? "8,32,128").split(separator: ",").compactMap { Int($0) })
            if let transports = option("--transports") { http.transports = transports.split(separator: ",").map(String.init) }
            http.rounds = option("--http-rounds", default: 1)
            try await http.run()
        case "http-server": try HTTPBenchmark.serve(delayMilliseconds: option("--delay-ms", default: 20))
        case "stats":
            StatisticsBenchmark(simulations: option("--simulations", default: 40_000),
                                bootstrapSimulations: option("--bootstrap-simulations", default: 2_000),
                                seed: UInt64(option("--seed", default: 2026))).run()
        case "sync":
            try await SyncBenchmark(items: items, rounds: rounds, storePath: option("--store"),
                                    concurrency: option("--concurrency", default: SyncOptions().concurrency),
                                    chunkItems: option("--chunk-items", default: ChunkLimits().runItems)).run()
        case "sync-client":
            try await SyncBenchmark.client(path: option("--db") ?? "", server: option("--server") ?? "", run: option("--run") ?? "",
                                           chunkItems: option("--chunk-items", default: ChunkLimits().runItems),
                                           concurrency: option("--concurrency", default: SyncOptions().concurrency))
        case "dashboard":
            let keep = arguments.firstIndex(of: "--keep").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
            try await DashboardBenchmark(items: items, rounds: max(rounds, 7), keep: keep).run()
        default:
            FileHandle.standardError.write(Data("unknown benchmark \(which); available: core, runner, scheduler, rss, compare, reads, http, stats, dashboard, sync\n".utf8))
            exit(2)
        }
    }
}

func scratchDirectory() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-bench-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The 1, 5 and 15-minute load averages, as the system reports them.
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Full recording of a trivial-task experiment (trace, root span, run item, two scores per item),
/// beside two baselines measured in the same run, in alternating rounds, on the same disk:
/// - the C floor (``SQLiteFloor``): SQLite driven from C on a minimal schema, what SQLite itself can do;
/// - raw SQLite from Swift on XeroML's schema: the same rows XeroML writes, with prepared statements
///   in 256-item transactions.
/// XeroML / floor says what the whole stack costs; XeroML / raw what the layer above SQLite costs.
struct CoreBenchmark {
    let items: Int
    let rounds: Int
    /// Which parts to run (`--only floor,raw,xeroml`), e.g. a single one under a profiler.
    var parts: Set<String> = ["floor", "raw", "xeroml"]
    let clock = ContinuousClock()

    /// One measurement: items per second, CPU time per item (all threads), bytes on disk per item.
    struct Measure {
        var rate: Double
        var cpuMicroseconds: Double
        var bytesPerItem: Double
    }

    func run() async throws {
        try await compare(title: "core", subject: "XeroML") { path, datasetFile, round in
            try await xeromlRun(path: path, datasetFile: datasetFile, round: round)
        }
    }

    /// The same comparison through `runExperiment` with two heuristic evaluators producing the two scores.
    func runRunner() async throws {
        try await compare(title: "runner", subject: "runExperiment") { path, datasetFile, round in
            let xeroml = try XeroML(path: path)
            try await xeroml.importDataset(name: "bench", from: datasetFile)
            let setupBytes = try checkpointedSize(path)
            let cpu = processCPUSeconds()
            let start = clock.now
            let report = try await xeroml.runExperiment(
                name: "trivial", datasetName: "bench", evaluators: [ExactMatch(), LevenshteinSimilarity()],
                options: ExperimentOptions(maxConcurrency: 8)
            ) { run in run.setOutput(run.expectedOutput) }
            let elapsed = seconds(clock.now - start)
            let cpuUsed = processCPUSeconds() - cpu
            let writer = xeroml.writerStatistics
            print(String(format: "  (%d batches in %d transactions, %.1f per transaction)", writer.batches, writer.transactions,
                         Double(writer.batches) / Double(max(1, writer.transactions))))
            precondition(report.summary.itemCount == items && report.summary.scores.count == 2, "incomplete recording")
            return Measure(rate: Double(items) / elapsed, cpuMicroseconds: cpuUsed / Double(items) * 1e6,
                           bytesPerItem: Double(try checkpointedSize(path) - setupBytes) / Double(items))
        }
    }

    /// Runs the floor, the raw baseline and `subject` in each round, the order turned around every
    /// other round, and prints each round and the medians of the rates and of the per-round ratios.
    private func compare(title: String, subject: String,
                         _ body: (String, String, Int) async throws -> Measure) async throws {
        print("XeroML \(title) benchmark: \(items) items, \(rounds) rounds, SQLite \(Connection.libraryVersion)")
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let datasetFile = try writeDataset(in: dir)
        let floor = parts.contains("floor") ? await SQLiteFloor.locate(scratch: dir) : nil

        var results: [String: [Measure]] = [:]
        for round in 1...rounds {
            var order = ["floor", "raw", "xeroml"].filter { parts.contains($0) }
            if round % 2 == 0 { order.reverse() }
            var line: [String: Measure] = [:]
            for part in order {
                let path = dir.appendingPathComponent("\(part)-\(round).sqlite").path
                switch part {
                case "floor":
                    guard let floor else { continue }
                    let r = try await floor.run(path: path, items: items)
                    line[part] = Measure(rate: r.itemsPerSecond, cpuMicroseconds: r.cpuMicrosecondsPerItem,
                                         bytesPerItem: r.bytesPerItem)
                case "raw":
                    line[part] = try await rawBaseline(path: path, datasetFile: datasetFile.path)
                default:
                    line[part] = try await body(path, datasetFile.path, round)
                }
                results[part, default: []].append(line[part]!)
            }
            print("round \(round) (\(order.joined(separator: ", "))): " + describe(line, subject: subject))
        }
        var medians: [String: Measure] = [:]
        for (part, measures) in results {
            medians[part] = Measure(rate: median(measures.map(\.rate)), cpuMicroseconds: median(measures.map(\.cpuMicroseconds)),
                                    bytesPerItem: median(measures.map(\.bytesPerItem)))
        }
        print("median: " + describe(medians, subject: subject))
        func ratios(_ a: String, _ b: String) -> [Double] {
            guard let x = results[a], let y = results[b], x.count == y.count else { return [] }
            return zip(x, y).map { $0.rate / $1.rate }
        }
        let ofFloor = ratios("xeroml", "floor"), ofRaw = ratios("xeroml", "raw")
        let target = title == "core" ? "0.50" : "0.40"
        if !ofFloor.isEmpty {
            print(String(format: "\(subject) / C floor: %.2f (rounds: %@; target ≥ \(target))", median(ofFloor),
                         ofFloor.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
        }
        if !ofRaw.isEmpty {
            print(String(format: "\(subject) / raw Swift: %.2f (rounds: %@)", median(ofRaw),
                         ofRaw.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
        }
        let raw = ratios("raw", "floor")
        if !raw.isEmpty { print(String(format: "raw Swift / C floor: %.2f", median(raw))) }
        print(String(format: "load average at the end: %@", loadAverage()))
    }

    private func describe(_ line: [String: Measure], subject: String) -> String {
        let names = ["floor": "C floor", "raw": "raw Swift", "xeroml": subject]
        return ["floor", "raw", "xeroml"].compactMap { part in
            line[part].map {
                String(format: "%@ %.0f items/s (%.1f µs CPU, %.0f B/item)", names[part]!, $0.rate, $0.cpuMicroseconds, $0.bytesPerItem)
            }
        }.joined(separator: "   ")
    }

    func writeDataset(in dir: URL) throws -> URL {
        let datasetFile = dir.appendingPathComponent("items.jsonl")
        var text = ""
        text.reserveCapacity(items * 80)
        for i in 0..<items {
            text += #"{"id": "item-\#(i)", "input": {"question": "What is \#(i) + 1?"}, "expected_output": "\#(i + 1)"}"# + "\n"
        }
        try text.write(to: datasetFile, atomically: true, encoding: .utf8)
        return datasetFile
    }

    /// Imports the dataset, then runs every item through `runItem` with full recording and `finish()`.
    func xeromlRun(path: String, datasetFile: String, round: Int) async throws -> Measure {
        let xeroml = try XeroML(path: path)
        let importStart = clock.now
        try await xeroml.importDataset(name: "bench", from: datasetFile)
        let importTime = seconds(clock.now - importStart)
        let dataset = try await xeroml.dataset(named: "bench")
        let setupBytes = try checkpointedSize(path)
        let cpu = processCPUSeconds()
        let start = clock.now
        let experiment = try await xeroml.createExperiment(name: "trivial-\(round)", datasetName: "bench")
        for item in dataset.items {
            try await experiment.runItem(item) { run in
                let output = run.expectedOutput
                run.setOutput(output)
                run.score(name: "exact_match", value: output == run.expectedOutput)
                run.score(name: "length", value: Double(output?.displayText.count ?? 0))
            }
        }
        try await experiment.finish()
        let elapsed = seconds(clock.now - start)
        let cpuUsed = processCPUSeconds() - cpu
        let writer = xeroml.writerStatistics
        let bytes = Double(try checkpointedSize(path) - setupBytes) / Double(items)
        let results = try await xeroml.results(runID: experiment.id)
        precondition(results.count == items && results.allSatisfy { $0.scores.count == 2 }, "incomplete recording")
        print(String(format: "  (dataset import: %.0f items/s; %d batches in %d transactions, %.1f per transaction)",
                     Double(items) / importTime, writer.batches, writer.transactions,
                     Double(writer.batches) / Double(max(1, writer.transactions))))
        return Measure(rate: Double(items) / elapsed, cpuMicroseconds: cpuUsed / Double(items) * 1e6, bytesPerItem: bytes)
    }

    /// The size of the database file once its write-ahead log is folded in.
    func checkpointedSize(_ path: String) throws -> Int {
        let db = try Connection(path: path)
        try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// The same rows XeroML writes per item, inserted with prepared statements, 256 items per transaction.
    func rawBaseline(path: String, datasetFile: String) async throws -> Measure {
        // Same schema and dataset as the SDK run; the schema comes from opening the file once.
        try await XeroML(path: path).importDataset(name: "bench", from: datasetFile)

        let db = try Connection(path: path)
        let datasetItems = try db.query(
            "SELECT id, input, expected_output FROM dataset_items ORDER BY id") { s in (s.text(0)!, s.text(1)!, s.text(2)) }
        let setupBytes = try checkpointedSize(path)
        let cpu = processCPUSeconds()
        let start = clock.now
        let runID = UUIDv7.make()
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        try db.run("INSERT INTO experiment_runs(id, name, dataset_id, status, created_us) SELECT ?, 'raw', id, 'running', ? FROM datasets",
                   [.text(runID), .integer(now)])
        let trace = try db.prepare("INSERT INTO traces(id, name, run_id, input, output, metadata, started_us, ended_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let observation = try db.prepare("""
            INSERT INTO observations(id, trace_id, parent_id, kind, name, input, output, metadata, model, model_parameters,
                prompt_tokens, completion_tokens, total_tokens, cost, level, status_message, started_us, ended_us)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let runItem = try db.prepare("""
            INSERT INTO run_items(id, run_id, dataset_item_id, repetition, input, expected_output, metadata, output, error,
                latency_ms, trace_id, started_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let score = try db.prepare("""
            INSERT INTO scores(id, run_id, run_item_id, trace_id, observation_id, name, data_type, value, string_value,
                comment, source, evaluator, created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        var index = 0
        while index < datasetItems.count {
            let end = min(index + 256, datasetItems.count)
            try db.transaction {
                for (itemID, input, expected) in datasetItems[index..<end] {
                    let t = Int64(Date().timeIntervalSince1970 * 1_000_000)
                    let traceID = UUIDv7.make(), spanID = UUIDv7.make(), runItemID = UUIDv7.make()
                    let output: SQLValue = expected.map { .text($0) } ?? .null
                    try trace.run([.text(traceID), "raw", .text(runID), .text(input), output, .null, .integer(t), .integer(t)])
                    try observation.run([.text(spanID), .text(traceID), .null, "span", "raw", .text(input), output, .null,
                                         .null, .null, .null, .null, .null, .null, "default", .null, .integer(t), .integer(t)])
                    try runItem.run([.text(runItemID), .text(runID), .text(itemID), 0, .null, .null, .null, output, .null,
                                     .real(0.01), .text(traceID), .integer(t)])
                    try score.run([.text(UUIDv7.make()), .text(runID), .text(runItemID), .text(traceID), .null, "exact_match",
                                   "boolean", .real(1), .null, .null, "sdk", .null, .integer(t)])
                    try score.run([.text(UUIDv7.make()), .text(runID), .text(runItemID), .text(traceID), .null, "length",
                                   "numeric", .real(5), .null, .null, "sdk", .null, .integer(t)])
                }
            }
            index = end
        }
        try db.run("UPDATE experiment_runs SET status = 'finished', finished_us = ? WHERE id = ?", [.integer(now), .text(runID)])
        let elapsed = seconds(clock.now - start)
        let cpuUsed = processCPUSeconds() - cpu
        db.close()
        let n = Double(datasetItems.count)
        return Measure(rate: n / elapsed, cpuMicroseconds: cpuUsed / n * 1e6,
                       bytesPerItem: Double(try checkpointedSize(path) - setupBytes) / n)
    }
}

/// 10,000 items whose task sleeps 20 ms, at concurrency 100, with full recording: the ideal wall time
/// is items / concurrency × 20 ms = 2.0 s; the overhead is how much longer the run takes.
struct SchedulerBenchmark {
    let items: Int
    let concurrency = 100
    let latency: Duration = .milliseconds(20)

    func run() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let xeroml = try XeroML(path: dir.appendingPathComponent("scheduler.sqlite").path)
        let lines = (0..<items).map { #"{"id": "\#($0)", "input": \#($0)}"# }.joined(separator: "\n")
        let file = dir.appendingPathComponent("items.jsonl")
        try lines.write(to: file, atomically: true, encoding: .utf8)
        try await xeroml.importDataset(name: "sleepy", from: file.path)
        let ideal = Double(items) / Double(concurrency) * seconds(latency)
        print("XeroML scheduler benchmark: \(items) items × \(latency) at concurrency \(concurrency), ideal \(ideal) s")
        let clock = ContinuousClock()
        // The floor on this machine: a bare sliding window of sleeping tasks, no XeroML at all.
        let bareStart = clock.now
        await withTaskGroup(of: Void.self) { group in
            var started = 0
            while started < concurrency { group.addTask { try? await Task.sleep(for: latency) }; started += 1 }
            while await group.next() != nil {
                guard started < items else { continue }
                group.addTask { try? await Task.sleep(for: latency) }
                started += 1
            }
        }
        let bare = seconds(clock.now - bareStart)
        print(String(format: "floor: a bare task-group window takes %.3f s (%.1f%% over ideal: timer slack)",
                     bare, (bare / ideal - 1) * 100))
        for round in 1...3 {
            let start = clock.now
            let report = try await xeroml.runExperiment(
                name: "sleepy-\(round)", datasetName: "sleepy", options: ExperimentOptions(maxConcurrency: concurrency)
            ) { run in
                try await Task.sleep(for: latency)
                run.setOutput(run.input)
                run.score(name: "ok", value: true)
            }
            let wall = seconds(clock.now - start)
            precondition(report.summary.itemCount == items)
            print(String(format: "round %d: wall %.3f s, ideal %.3f s, overhead %.1f%% (target ≤ 5%%)",
                         round, wall, ideal, (wall / ideal - 1) * 100))
        }
    }
}

/// A 1,000,000-item dataset through `runExperiment`: peak resident memory must stay under 150 MB.
struct MemoryBenchmark {
    let items: Int

    func run() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("million.sqlite").path
        let xeroml = try XeroML(path: path)
        try await xeroml.createDataset(name: "million")
        // Insert the items with raw SQL, streaming, so the set-up itself stays small.
        let db = try Connection(path: path)
        let datasetID = try db.queryFirst("SELECT id FROM datasets WHERE name = 'million'") { $0.text(0)! }!
        let insert = try db.prepare("""
            INSERT INTO dataset_items(id, dataset_id, input, expected_output, created_version, created_us)
            VALUES (?, ?, ?, ?, 1, 0)
            """)
        var i = 0
        while i < items {
            try db.transaction {
                for j in i..<min(i + 10_000, items) {
                    try insert.run([.text(UUIDv7.make()), .text(datasetID), .text(#"{"question":"What is \#(j) + 1?"}"#),
                                    .text("\"\(j + 1)\"")])
                }
            }
            i += 10_000
        }
        try db.run("UPDATE datasets SET version = 1 WHERE id = ?", [.text(datasetID)])
        db.close()
        let before = peakResidentMegabytes()
        print("XeroML memory benchmark: \(items) items; peak RSS after set-up \(String(format: "%.1f", before)) MB")
        let clock = ContinuousClock()
        let start = clock.now
        let report = try await xeroml.runExperiment(
            name: "million", datasetName: "million", evaluators: [ExactMatch()],
            options: ExperimentOptions(maxConcurrency: 16)
        ) { run in run.setOutput(run.expectedOutput) }
        let wall = seconds(clock.now - start)
        let peak = peakResidentMegabytes()
        precondition(report.summary.itemCount == items)
        print(String(format: "ran %d items in %.1f s (%.0f items/s); peak RSS %.1f MB (target < 150 MB)",
                     items, wall, Double(items) / wall, peak))
    }

}

/// The process's peak resident set size (getrusage: kilobytes on Linux, bytes on macOS).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576
    #endif
}

/// Two runs of a 100,000-item dataset compared item by item: target < 300 ms.
struct CompareBenchmark {
    let items: Int

    /// A store with two finished runs of one `items`-item dataset, two scores each.
    static func makeStore(items: Int, in dir: URL) async throws -> (path: String, xeroml: XeroML) {
        let path = dir.appendingPathComponent("compare.sqlite").path
        let xeroml = try XeroML(path: path)
        let file = try CoreBenchmark(items: items, rounds: 1).writeDataset(in: dir)
        try await xeroml.importDataset(name: "bench", from: file.path)
        for (name, shift) in [("baseline", 0), ("candidate", 1)] {
            try await xeroml.runExperiment(name: name, datasetName: "bench", options: ExperimentOptions(maxConcurrency: 8)) { run in
                let n = Int(run.expectedOutput?.stringValue ?? "0") ?? 0
                run.setOutput(run.expectedOutput)
                run.score(name: "correct", value: (n + shift) % 10 != 0)
                run.score(name: "quality", value: Double((n * 7 + shift * 3) % 100) / 100)
            }
        }
        return (path, xeroml)
    }

    func run() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, xeroml) = try await Self.makeStore(items: items, in: dir)
        print("XeroML compare benchmark: two runs of \(items) items, 2 scores each")
        let clock = ContinuousClock()
        var totals: [Double] = []
        var queries: [Double] = []
        var bare: [Double] = []
        for round in 1...5 {
            // Without the items' external ids and inputs, in alternation with the default.
            var start = clock.now
            var options = ComparisonOptions()
            options.itemDetails = false
            _ = try await xeroml.compare(baseline: "baseline", candidates: ["candidate"], datasetName: "bench", options: options)
            bare.append(seconds(clock.now - start))
            start = clock.now
            let comparison = try await xeroml.compare(baseline: "baseline", candidates: ["candidate"], datasetName: "bench")
            let total = seconds(clock.now - start)
            precondition(comparison.items.count == items && comparison.scores.count == 2)
            // The SQL part alone: both runs' item and score scans.
            let db = try Connection(path: path, mode: .readOnly)
            start = clock.now
            for run in comparison.runs {
                _ = try db.query("SELECT id, dataset_item_id, error, latency_ms, cost, output FROM run_items WHERE run_id = ? AND dataset_item_id IS NOT NULL ORDER BY dataset_item_id, repetition", [.text(run.id)]) { $0.int64(3) }
                _ = try db.query("SELECT run_item_id, name, value, data_type FROM scores WHERE run_id = ? AND run_item_id IS NOT NULL AND value IS NOT NULL", [.text(run.id)]) { $0.double(2) }
            }
            let query = seconds(clock.now - start)
            totals.append(total)
            queries.append(query)
            print(String(format: "round %d: compare %.0f ms (without item details %.0f ms; SQL scans %.0f ms)", round,
                         total * 1000, bare.last! * 1000, query * 1000))
        }
        print(String(format: "median: compare %.0f ms, without item details %.0f ms, SQL scans %.0f ms (target < 300 ms)", median(totals) * 1000, median(bare) * 1000, median(queries) * 1000))
    }
}
