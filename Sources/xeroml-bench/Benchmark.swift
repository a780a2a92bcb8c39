import Foundation
import XeroML
import XeroMLSQLite

/// Release-mode benchmarks with a raw-SQLite baseline measured in the same process, so the ratio holds
/// even on a noisy machine. Run: `swift run -c release xeroml-bench [core] [--items N] [--rounds R]`.
@main
struct Benchmark {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String, default value: Int) -> Int {
            guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let n = Int(arguments[i + 1]) else { return value }
            arguments.removeSubrange(i...(i + 1))
            return n
        }
        let items = option("--items", default: 100_000)
        let rounds = option("--rounds", default: 3)
        let which = arguments.first ?? "core"
        switch which {
        case "core": try await CoreBenchmark(items: items, rounds: rounds).run()
        default:
            FileHandle.standardError.write(Data("unknown benchmark \(which); available: core\n".utf8))
            exit(2)
        }
    }
}

func scratchDirectory() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-bench-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Full recording of a trivial-task experiment (trace, root span, run item, two scores per item)
/// against raw prepared-statement inserts of the same rows in 256-item transactions.
struct CoreBenchmark {
    let items: Int
    let rounds: Int
    let clock = ContinuousClock()

    func run() async throws {
        print("XeroML core benchmark: \(items) items, \(rounds) rounds, SQLite \(Connection.libraryVersion)")
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let datasetFile = dir.appendingPathComponent("items.jsonl")
        var text = ""
        text.reserveCapacity(items * 80)
        for i in 0..<items {
            text += #"{"id": "item-\#(i)", "input": {"question": "What is \#(i) + 1?"}, "expected_output": "\#(i + 1)"}"# + "\n"
        }
        try text.write(to: datasetFile, atomically: true, encoding: .utf8)

        var xeromlRates: [Double] = []
        var rawRates: [Double] = []
        for round in 1...rounds {
            let raw = try await rawBaseline(path: dir.appendingPathComponent("raw-\(round).sqlite").path,
                                      datasetFile: datasetFile.path)
            let sdk = try await xeromlRun(path: dir.appendingPathComponent("sdk-\(round).sqlite").path,
                                          datasetFile: datasetFile.path, round: round)
            rawRates.append(raw)
            xeromlRates.append(sdk)
            print(String(format: "round %d: raw SQLite %8.0f items/s   XeroML %8.0f items/s   ratio %.2f",
                         round, raw, sdk, sdk / raw))
        }
        let ratios = zip(xeromlRates, rawRates).map { $0 / $1 }
        print(String(format: "median: raw SQLite %.0f items/s, XeroML %.0f items/s, ratio %.2f (target ≥ 0.50)",
                     median(rawRates), median(xeromlRates), median(ratios)))
    }

    /// Imports the dataset, then runs every item through `runItem` with full recording and `finish()`.
    func xeromlRun(path: String, datasetFile: String, round: Int) async throws -> Double {
        let xeroml = try XeroML(path: path)
        let importStart = clock.now
        try await xeroml.importDataset(name: "bench", from: datasetFile)
        let importTime = seconds(clock.now - importStart)
        let dataset = try await xeroml.dataset(named: "bench")
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
        let results = try await xeroml.results(runID: experiment.id)
        precondition(results.count == items && results.allSatisfy { $0.scores.count == 2 }, "incomplete recording")
        if round == 1 {
            print(String(format: "  (dataset import: %.0f items/s; results read back: %d items)", Double(items) / importTime, results.count))
        }
        return Double(items) / elapsed
    }

    /// The same rows XeroML writes per item, inserted with prepared statements, 256 items per transaction.
    func rawBaseline(path: String, datasetFile: String) async throws -> Double {
        // Same schema and dataset as the SDK run; the schema comes from opening the file once.
        try await XeroML(path: path).importDataset(name: "bench", from: datasetFile)

        let db = try Connection(path: path)
        let datasetItems = try db.query(
            "SELECT id, input, expected_output FROM dataset_items ORDER BY id") { s in (s.text(0)!, s.text(1)!, s.text(2)) }
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
        return Double(datasetItems.count) / seconds(clock.now - start)
    }
}
