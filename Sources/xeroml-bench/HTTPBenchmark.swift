import Foundation
import XeroML
import XeroMLHTTP
import XeroMLJudge
import XeroMLTesting
#if canImport(Glibc)
import Glibc
#endif

/// `--concurrency N` against a loopback OpenAI-compatible server that answers after 20 ms: items per
/// second of a whole `runExperiment` (one chat call per item, recorded with its generation), beside
/// the ideal N / 20 ms, and the CPU time spent per request by XeroML (this process: client, runner,
/// store) and by the server (a process of its own, `xeroml-bench http-server`), on the same cores.
struct HTTPBenchmark {
    let concurrencies: [Int]
    /// The transports measured, in alternation at each concurrency: `nio` (``NIOTransport``, the
    /// default) and `urlsession` (``URLSessionTransport``).
    var transports = ["nio", "urlsession"]
    var rounds = 1
    let latency: Duration = .milliseconds(20)
    let clock = ContinuousClock()

    /// `xeroml-bench http-server MS`: a loopback server answering after MS milliseconds; prints its port,
    /// then serves until standard input closes.
    static func serve(delayMilliseconds: Int) throws {
        let delay = Duration.milliseconds(delayMilliseconds)
        // Keep-alive, as model servers do: connections are reused, as they would be in production.
        let server = try FakeOpenAIServer(handler: { _ in FakeReply.chat("Paris").delayed(by: delay) }, keepAlive: true)
        FileHandle.standardOutput.write(Data("\(server.port)\n".utf8))
        _ = FileHandle.standardInput.readDataToEndOfFile()
        server.stop()
    }

    func run() async throws {
        print("XeroML HTTP benchmark: one chat call per item, server latency \(latency), loopback")
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The server runs in a process of its own, so the CPU of each side can be told apart.
        let serverProcess = Process()
        serverProcess.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        serverProcess.arguments = ["http-server", "--delay-ms", "\(Int(seconds(latency) * 1000))"]
        let input = Pipe(), output = Pipe()
        serverProcess.standardInput = input
        serverProcess.standardOutput = output
        try serverProcess.run()
        defer { try? input.fileHandleForWriting.close(); serverProcess.waitUntilExit() }
        var portText = ""
        while !portText.hasSuffix("\n") {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { break }
            portText += String(decoding: byte, as: UTF8.self)
        }
        guard let port = Int(portText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BenchmarkFailure("the server process printed no port: \(portText)")
        }
        let baseURL = URL(string: "http://127.0.0.1:\(port)/v1")!
        let serverPID = serverProcess.processIdentifier
        let xeroml = try XeroML(path: dir.appendingPathComponent("http.sqlite").path)
        print("load average before: \(loadAverage())")
        print("| concurrency | transport | items | seconds | items/s | ideal items/s | of ideal | XeroML CPU ms per request | server CPU ms per request |")
        print("|---|---|---|---|---|---|---|---|---|")
        for concurrency in concurrencies {
          for round in 1...rounds {
           for transportName in transports {
            let items = max(1_000, concurrency * 200)  // about 200 rounds of 20 ms at the ideal rate: 4 s, start-up amortized
            let lines = (0..<items).map { #"{"input": {"question": "Capital of France? (\#($0))"}, "expected_output": "Paris"}"# }
            let file = dir.appendingPathComponent("items-\(concurrency).jsonl")
            try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            let dataset = "http-\(concurrency)-\(transportName)-\(round)"
            try await xeroml.importDataset(name: dataset, from: file.path)
            let transport: any HTTPTransport = transportName == "urlsession"
                ? URLSessionTransport(timeout: .seconds(30)) : NIOTransport(timeout: .seconds(30))
            let chat = ChatClient(configuration: ChatConfiguration(baseURL: baseURL, model: "bench-model", timeout: .seconds(30)),
                                  transport: transport, retry: .none)
            let cpuBefore = cpuSeconds()
            let serverBefore = processCPUSeconds(serverPID)
            let start = clock.now
            let report = try await xeroml.runExperiment(
                name: "c\(concurrency)-\(transportName)-\(round)", datasetName: dataset,
                options: ExperimentOptions(maxConcurrency: concurrency, timeout: .seconds(30))
            ) { run in
                let reply = try await chat.complete(run.input["question"]?.stringValue ?? "")
                run.setOutput(.string(reply.content))
            }
            let elapsed = seconds(clock.now - start)
            let cpu = cpuSeconds() - cpuBefore
            let serverCPU = processCPUSeconds(serverPID) - serverBefore
            let rate = Double(items) / elapsed
            let ideal = Double(concurrency) / seconds(latency)
            precondition(report.run.errorCount == 0, "\(report.run.errorCount) items failed")
            print(String(format: "| %d | %@ | %d | %.2f | %.0f | %.0f | %.1f%% | %.3f | %.3f |", concurrency, transportName, items, elapsed,
                         rate, ideal, rate / ideal * 100, cpu / Double(items) * 1000, serverCPU / Double(items) * 1000))
           }
          }
        }
        print("load average after: \(loadAverage())")
    }
}

/// User + system CPU time of process `pid` so far (fields 14 and 15 of `/proc/PID/stat`, in clock ticks).
func processCPUSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// User + system CPU time of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// A benchmark that could not be set up.
struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
