import Foundation
import XeroML

/// Per-run reads as the store grows: each read of one run (its summary, its results, a comparison of
/// two runs, the run itself, the listing of the dataset's runs) timed with only those two runs in the
/// store, then again with `otherRuns` runs of the same size beside them. A read that costs in
/// proportion to its run stays flat; one that scans a whole table grows with the store.
struct ReadsBenchmark {
    let items: Int
    let otherRuns: Int
    let repetitions = 15
    let clock = ContinuousClock()

    func run() async throws {
        print("XeroML reads benchmark: runs of \(items) items (2 scores each, 1 run-level score), alone and with \(otherRuns) other runs")
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("reads.sqlite").path
        let xeroml = try XeroML(path: path)
        let file = try CoreBenchmark(items: items, rounds: 1).writeDataset(in: dir)
        try await xeroml.importDataset(name: "bench", from: file.path)
        let baseline = try await record(xeroml, name: "baseline", shift: 0)
        let candidate = try await record(xeroml, name: "candidate", shift: 1)

        let alone = try await measure(xeroml, baseline: baseline, candidate: candidate)
        let start = clock.now
        for i in 0..<otherRuns { _ = try await record(xeroml, name: "other-\(i)", shift: i) }
        let fileSize = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print(String(format: "  (%d other runs recorded in %.1f s; file %.0f MB)", otherRuns, seconds(clock.now - start),
                     Double(fileSize) / 1e6))
        let crowded = try await measure(xeroml, baseline: baseline, candidate: candidate)

        // The fastest of the repetitions as well as the median: on a shared machine the minimum is the
        // figure least moved by other work.
        print("| read (\(repetitions) times) | 2 runs: median, fastest | \(otherRuns + 2) runs: median, fastest | ratio of medians, of fastest |")
        print("|---|---|---|---|")
        for time in alone {
            let name = time.name
            let other = crowded.first { $0.name == name }!
            print(String(format: "| %@ | %.2f ms, %.2f ms | %.2f ms, %.2f ms | %.2f, %.2f |", name, time.median * 1000,
                         time.fastest * 1000, other.median * 1000, other.fastest * 1000, other.median / time.median,
                         other.fastest / time.fastest))
        }
        print("load average at the end: \(loadAverage())")
    }

    /// Records a run with two item scores and one run-level score.
    func record(_ xeroml: XeroML, name: String, shift: Int) async throws -> String {
        let overall = ClosureRunEvaluator(name: "overall") { results in
            [Evaluation(name: "pass_rate", value: .numeric(Double(results.items.count)))]
        }
        let report = try await xeroml.runExperiment(
            name: name, datasetName: "bench", runEvaluators: [overall], options: ExperimentOptions(maxConcurrency: 8)
        ) { run in
            let n = Int(run.expectedOutput?.stringValue ?? "0") ?? 0
            run.setOutput(run.expectedOutput)
            run.score(name: "correct", value: (n + shift) % 10 != 0)
            run.score(name: "quality", value: Double((n * 7 + shift * 3) % 100) / 100)
        }
        precondition(report.summary.itemCount == items)
        return report.run.id
    }

    func measure(_ xeroml: XeroML, baseline: String, candidate: String)
        async throws -> [(name: String, median: Double, fastest: Double)] {
        let reads: [(String, () async throws -> Void)] = [
            ("summary(runID:)", { let s = try await xeroml.summary(runID: candidate); precondition(s.itemCount == items) }),
            ("results(runID:)", { let r = try await xeroml.results(runID: candidate); precondition(r.items.count == items) }),
            ("run(id:)", { _ = try await xeroml.run(id: candidate) }),
            ("compare (2 runs)", {
                let c = try await xeroml.compare(baseline: baseline, candidates: [candidate], datasetName: "bench")
                precondition(c.items.count == items)
            }),
            ("runs(datasetName:)", { _ = try await xeroml.runs(datasetName: "bench") }),
        ]
        var times: [(name: String, median: Double, fastest: Double)] = []
        for (name, read) in reads {
            try await read()  // warm the caches
            var samples: [Double] = []
            for _ in 0..<repetitions {
                let start = clock.now
                try await read()
                samples.append(seconds(clock.now - start))
            }
            times.append((name, median(samples), samples.min()!))
        }
        return times
    }
}
