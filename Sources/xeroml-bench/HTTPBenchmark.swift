import Foundation
import XeroML
import XeroMLJudge
import XeroMLTesting
#if canImport(Glibc)
import Glibc
#endif

/// `--concurrency N` against a loopback OpenAI-compatible server that answers after 20 ms: items per
/// second of a whole `runExperiment` (one chat call per item, recorded with its generation), beside
/// the ideal N / 20 ms, and the CPU time this process spent per request (client, runner and store;
/// the server's threads run in this process too, so the figure is an upper bound).
struct HTTPBenchmark {
    let concurrencies: [Int]
    let latency: Duration = .milliseconds(20)
    let clock = ContinuousClock()

    func run() async throws {
        print("XeroML HTTP benchmark: one chat call per item, server latency \(latency), loopback")
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try FakeOpenAIServer(handler: { [latency] _ in FakeReply.chat("Paris").delayed(by: latency) })
        defer { server.stop() }
        let xeroml = try XeroML(path: dir.appendingPathComponent("http.sqlite").path)
        print("| concurrency | items | seconds | items/s | ideal items/s | of ideal | peak in flight | CPU ms per request |")
        print("|---|---|---|---|---|---|---|---|")
        for concurrency in concurrencies {
            let items = max(400, concurrency * 60)  // about 60 rounds of 20 ms at the ideal rate
            let lines = (0..<items).map { #"{"input": {"question": "Capital of France? (\#($0))"}, "expected_output": "Paris"}"# }
            let file = dir.appendingPathComponent("items-\(concurrency).jsonl")
            try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            let dataset = "http-\(concurrency)"
            try await xeroml.importDataset(name: dataset, from: file.path)
            let chat = ChatClient(configuration: server.configuration(), retry: .none)
            server.resetPeakConcurrency()
            let cpuBefore = cpuSeconds()
            let start = clock.now
            let report = try await xeroml.runExperiment(
                name: "c\(concurrency)", datasetName: dataset,
                options: ExperimentOptions(maxConcurrency: concurrency, timeout: .seconds(30))
            ) { run in
                let reply = try await chat.complete(run.input["question"]?.stringValue ?? "")
                run.setOutput(.string(reply.content))
            }
            let elapsed = seconds(clock.now - start)
            let cpu = cpuSeconds() - cpuBefore
            let rate = Double(items) / elapsed
            let ideal = Double(concurrency) / seconds(latency)
            precondition(report.run.errorCount == 0, "\(report.run.errorCount) items failed")
            print(String(format: "| %d | %d | %.2f | %.0f | %.0f | %.1f%% | %d | %.3f |", concurrency, items, elapsed, rate, ideal,
                         rate / ideal * 100, server.peakConcurrency, cpu / Double(items) * 1000))
        }
    }

    /// User + system CPU time of this process so far.
    func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
