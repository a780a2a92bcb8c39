import Foundation
import Testing
import XeroML
import XeroMLJudge
import XeroMLTesting
#if canImport(Glibc)
import Glibc
#endif

/// `xeroml eval` against servers that misbehave: it never hangs, `--concurrency` is what reaches the
/// server, keys stay with their hosts, a resume with another configuration is refused, exit statuses
/// say what happened.
@Suite(.timeLimit(.minutes(3))) struct EvalFaultTests {
    static let clock = ContinuousClock()

    func arguments(_ xeroml: XeroML, _ server: FakeOpenAIServer, name: String, _ extra: [String] = []) -> [String] {
        ["eval", "--db", xeroml.path, "--dataset", "capitals", "--name", name,
         "--prompt", "Answer with the city only: {{input.question}}", "--model", "tiny-model",
         "--base-url", server.baseURL.absoluteString] + extra
    }

    /// Starts `xeroml` with `arguments` (no endpoint from the environment) and waits until `server`
    /// holds `requests` requests.
    func startEval(_ arguments: [String], holding requests: Int, on server: FakeOpenAIServer,
                   under wrapper: [String] = []) async throws -> RunningProcess {
        let command = wrapper.isEmpty ? (xeromlExecutable(), arguments)
            : (URL(fileURLWithPath: wrapper[0]), Array(wrapper.dropFirst()) + [xeromlExecutable().path] + arguments)
        let process = try RunningProcess(
            executable: command.0, arguments: command.1,
            environment: ["XEROML_JUDGE_BASE_URL": "", "XEROML_JUDGE_MODEL": "", "OPENAI_API_KEY": ""],
            directory: FileManager.default.temporaryDirectory)
        let deadline = Self.clock.now + .seconds(30)
        while server.requestCount < requests, Self.clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return process
    }

    @Test func aSilentServerFailsEveryItemByItsDeadlineAndTheExitStatusSaysSo() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("late").misbehaving(.neverAnswer) }) { server in
            let start = Self.clock.now
            let result = try await runCLI(arguments(xeroml, server, name: "silent",
                                                    ["--timeout", "1", "--max-attempts", "2", "--concurrency", "64"]))
            let elapsed = Self.clock.now - start
            #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("3 of 3 items failed"))
            #expect(result.stdout.contains("--errors"))
            // 2 attempts of 1 s plus a backoff; far from "forever", with room for a loaded machine.
            #expect(elapsed < .seconds(45), "took \(elapsed)")
            let run = try #require(try await xeroml.findRun("silent", datasetName: "capitals"))
            #expect(run.status == .finished && run.errorCount == 3)
            let results = try await xeroml.results(runID: run.id)
            #expect(results.allSatisfy { $0.error?.contains("did not answer within") == true && $0.attempts == 2 })

            // The errors in full, grouped.
            let shown = try await runCLI(["runs", "show", "silent", "--errors", "--db", xeroml.path])
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout.contains("3 × "))
            #expect(shown.stdout.contains("did not answer within"))

            // --max-errors tolerates them.
            let tolerated = try await runCLI(arguments(xeroml, server, name: "tolerated",
                                                       ["--timeout", "0.5", "--max-attempts", "1", "--max-errors", "3", "--verbose"]))
            #expect(tolerated.status == 0, "\(tolerated.stderr)")
            #expect(tolerated.stdout.contains("did not answer within"))
        }
    }

    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func aSignalEndsARunWaitingOnASilentServerAndItResumes(_ signo: Int32) async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("late").misbehaving(.stallAfterHeaders) }) { server in
            let process = try await startEval(arguments(xeroml, server, name: "stalled", ["--timeout", "60"]), holding: 3, on: server)
            #expect(server.requestCount == 3)
            let signalled = Self.clock.now
            kill(process.pid, signo)
            let result = await process.wait()
            #expect(Self.clock.now - signalled < .seconds(30), "the signal took \(Self.clock.now - signalled)")
            #expect(result.status == 128 + signo, "\(result.stdout)\(result.stderr)")
            let run = try #require(try await xeroml.findRun("stalled", datasetName: "capitals"))
            #expect(run.status == .interrupted && run.itemCount == 0)

            server.handler = EvalCommandTests.handler
            let resumed = try await runCLI(arguments(xeroml, server, name: "stalled", ["--timeout", "60", "--resume"]))
            #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
            #expect(try await xeroml.findRun("stalled", datasetName: "capitals")?.status == .finished)
        }
    }

    /// `timeout` and `make` pass a signal to the process and to its process group: it arrives twice,
    /// a moment apart (while the run is stopping, or once it has stopped and the CLI is saying so).
    /// Here under `timeout` (which passes the first on twice) and then once more, later.
    @Test(arguments: [30, 120, 220])
    func aSignalDeliveredTwiceIsOneInterruption(_ milliseconds: Int) async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("late").misbehaving(.stallAfterHeaders) }) { server in
            let process = try await startEval(arguments(xeroml, server, name: "twice", ["--timeout", "60"]), holding: 3, on: server,
                                              under: ["/usr/bin/timeout", "120"])
            kill(process.pid, SIGINT)
            try await Task.sleep(for: .milliseconds(milliseconds))
            kill(process.pid, SIGINT)
            let result = try await process.wait(timeout: .seconds(60))
            #expect(result.status == 130, "\(result.stdout)\(result.stderr)")
            // Written before the exit, to a pipe (buffered): the second signal did not cut it off.
            #expect(result.stdout.contains("Run \"twice\" interrupted"), "\(result.stdout)")
            #expect(try await xeroml.findRun("twice", datasetName: "capitals")?.status == .interrupted)
        }
    }

    @Test(arguments: [1, 8, 32])
    func concurrencyIsTheNumberOfRequestsInFlight(_ concurrency: Int) async throws {
        let xeroml = try temporaryClient()
        let questions = (0..<(concurrency * 2)).map { "Capital of country \($0)?" }
        try await makeDataset(xeroml, items: questions.map { ($0, "Paris", nil) })
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("Paris").delayed(by: .seconds(2)) }) { server in
            let result = try await runCLI(arguments(xeroml, server, name: "wide", ["--concurrency", "\(concurrency)"]))
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(server.peakConcurrency == concurrency, "peak \(server.peakConcurrency) at --concurrency \(concurrency)")
            // Latency is the time on the wire (2 s), not time queued in the client (behind a cap of 6
            // connections, 11 rounds of 2 s at 32); the bound leaves room for a loaded machine.
            let run = try #require(try await xeroml.findRun("wide", datasetName: "capitals"))
            let results = try await xeroml.results(runID: run.id)
            let slowest = results.map(\.latency).max() ?? .zero
            #expect(slowest < .seconds(15), "slowest item \(slowest)")
            #expect(results.allSatisfy { $0.attempts == 1 })
        }
    }

    @Test func keysGoOnlyToTheHostTheyWereGivenWith() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in .chat("Paris") }) { model in
            try await withFakeOpenAIServer(handler: { _ in .judge(score: 0.9) }) { judge in
                let base = arguments(xeroml, model, name: "keys-1", [
                    "--api-key-env", "MODEL_KEY", "--evaluator", "helpfulness",
                    "--judge-base-url", judge.baseURL.absoluteString,
                ])
                // The judge has a host of its own and no key of its own: it gets none of the model's.
                var result = try await runCLI(base, environment: ["MODEL_KEY": "sk-model"])
                #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
                #expect(model.requests.allSatisfy { $0.header("Authorization") == "Bearer sk-model" })
                #expect(!judge.requests.isEmpty)
                #expect(judge.requests.allSatisfy { $0.header("Authorization") == nil })
                // Judges made by eval ask for structured output, like the library's.
                #expect(judge.requests.allSatisfy { $0.json?["response_format"] != nil })

                // XEROML_JUDGE_API_KEY goes to the judge's host, not the model's.
                result = try await runCLI(base.map { $0 == "keys-1" ? "keys-2" : $0 } + ["--judge-cache", "off"],
                                          environment: ["MODEL_KEY": "sk-model", "XEROML_JUDGE_API_KEY": "sk-judge-env"])
                #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
                #expect(judge.requests.suffix(3).allSatisfy { $0.header("Authorization") == "Bearer sk-judge-env" })
                #expect(model.requests.allSatisfy { $0.header("Authorization") == "Bearer sk-model" })

                // --judge-api-key-env names the judge's key.
                result = try await runCLI(base.map { $0 == "keys-1" ? "keys-3" : $0 }
                                          + ["--judge-cache", "off", "--judge-api-key-env", "JUDGE_KEY"],
                                          environment: ["MODEL_KEY": "sk-model", "JUDGE_KEY": "sk-judge"])
                #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
                #expect(judge.requests.suffix(3).allSatisfy { $0.header("Authorization") == "Bearer sk-judge" })
            }
        }
    }

    @Test func aFinishedRunResumedSaysNothingRanAndRetryErrorsRunsItsFailures() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in .status(500, body: "{}") }) { server in
            let failed = try await runCLI(arguments(xeroml, server, name: "broken", ["--max-attempts", "1"]))
            #expect(failed.status == 3, "\(failed.stdout)\(failed.stderr)")

            server.handler = EvalCommandTests.handler
            let before = server.requestCount
            let resumed = try await runCLI(arguments(xeroml, server, name: "broken", ["--resume"]))
            #expect(resumed.status == 3)
            #expect(server.requestCount == before)
            #expect(resumed.stdout.contains("Run \"broken\" was finished already: nothing ran. Its 3 failed items are kept as they are; --retry-errors with --resume runs them again."),
                    "\(resumed.stdout)")

            let retried = try await runCLI(arguments(xeroml, server, name: "broken", ["--resume", "--retry-errors"]))
            #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
            #expect(server.requestCount == before + 3)
            let run = try #require(try await xeroml.findRun("broken", datasetName: "capitals"))
            #expect(run.status == .finished && run.errorCount == 0 && run.itemCount == 3)

            let alone = try await runCLI(arguments(xeroml, server, name: "broken", ["--retry-errors"]))
            #expect(alone.status == 64 && alone.stderr.contains("--retry-errors goes with --resume"), "\(alone.stderr)")
        }
    }

    @Test func eachJudgeVariableAppliesOnItsOwn() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in .chat("Paris") }) { model in
            try await withFakeOpenAIServer(handler: { _ in .judge(score: 0.9) }) { judge in
                // Only the judge's endpoint in the environment: the judge is asked there, with --model's name.
                var result = try await runCLI(arguments(xeroml, model, name: "env-1", ["--evaluator", "helpfulness"]),
                                              environment: ["XEROML_JUDGE_BASE_URL": judge.baseURL.absoluteString])
                #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
                #expect(model.requests.count == 3)
                #expect(judge.requests.count == 3)
                #expect(judge.requests.allSatisfy { $0.json?["model"]?.stringValue == "tiny-model" })
                let run = try #require(try await xeroml.findRun("env-1", datasetName: "capitals"))
                #expect(try await xeroml.results(runID: run.id).allSatisfy { $0.score("helpfulness") == 0.9 })

                // Only the judge's model in the environment: the judge is asked at --base-url, with that model.
                result = try await runCLI(arguments(xeroml, model, name: "env-2", ["--evaluator", "helpfulness", "--judge-cache", "off"]),
                                          environment: ["XEROML_JUDGE_MODEL": "judge-model"])
                #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
                #expect(model.requests.filter { $0.json?["model"]?.stringValue == "judge-model" }.count == 3)
                #expect(model.requests.filter { $0.json?["model"]?.stringValue == "tiny-model" }.count == 6)
                #expect(judge.requests.count == 3)
            }
        }
    }

    @Test func aResumeWithAnotherConfigurationIsRefusedUnlessAllowed() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: { _ in FakeReply.chat("late").misbehaving(.neverAnswer) }) { server in
            // A first attempt that is interrupted.
            let process = try await startEval(arguments(xeroml, server, name: "half", ["--temperature", "0.2"]), holding: 3, on: server)
            kill(process.pid, SIGINT)
            _ = await process.wait()

            server.handler = EvalCommandTests.handler
            let changed = arguments(xeroml, server, name: "half", ["--temperature", "0.7", "--resume"])
                .map { $0 == "tiny-model" ? "other-model" : $0 }
            let refused = try await runCLI(changed)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains(#"model: was "tiny-model", now "other-model""#), "\(refused.stderr)")
            #expect(refused.stderr.contains("temperature: was 0.2, now 0.7"), "\(refused.stderr)")
            #expect(refused.stderr.contains("--allow-changes"))
            #expect(server.requestCount == 3, "a refused resume calls nothing")

            // Another evaluator list is one difference, said once.
            let evaluators = try await runCLI(arguments(xeroml, server, name: "half", ["--temperature", "0.2", "--resume",
                                                                                         "--evaluator", "exact_match"]))
            #expect(evaluators.status != 0)
            #expect(evaluators.stderr.components(separatedBy: "evaluators: we").count == 2, "\(evaluators.stderr)")
            #expect(!evaluators.stderr.contains("evaluators: was"), "\(evaluators.stderr)")
            // The base URL with a trailing slash is the same endpoint: not a difference (the
            // temperature is, so that this refused resume runs nothing).
            let slash = arguments(xeroml, server, name: "half", ["--temperature", "0.7", "--resume"])
                .map { $0 == server.baseURL.absoluteString ? $0 + "/" : $0 }
            let sameEndpoint = try await runCLI(slash)
            #expect(sameEndpoint.stderr.contains("temperature: was 0.2, now 0.7"), "\(sameEndpoint.stderr)")
            #expect(!sameEndpoint.stderr.contains("base_url"), "\(sameEndpoint.stderr)")

            let allowed = try await runCLI(changed + ["--allow-changes"])
            #expect(allowed.status == 0, "\(allowed.stdout)\(allowed.stderr)")
            let shown = try await runCLI(["runs", "show", "half", "--db", xeroml.path])
            #expect(shown.stdout.contains("resumed with changes"), "\(shown.stdout)")
        }
    }

    @Test func aLongRetryAfterFailsTheItemInsteadOfPausingTheRun() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: EvalCommandTests.handler) { server in
            server.enqueue(.rateLimited(retryAfter: "600"))
            let start = Self.clock.now
            let result = try await runCLI(arguments(xeroml, server, name: "patient",
                                                    ["--concurrency", "1", "--max-retry-after", "2", "--max-errors", "1"]))
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(Self.clock.now - start < .seconds(60), "a 600 s Retry-After held the run")
            let run = try #require(try await xeroml.findRun("patient", datasetName: "capitals"))
            #expect(run.errorCount == 1)
            // The stored error says why it was not retried.
            let failed = try await xeroml.results(runID: run.id).compactMap(\.error)
            #expect(failed.count == 1)
            #expect(failed.first?.contains("429") == true, "\(failed)")
            #expect(failed.first?.contains("not retried: the server asked to wait 600 s, longer than the 2 s honoured") == true, "\(failed)")
        }
    }

    @Test func aShortRetryAfterPauseShowsOnTheProgressLine() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: EvalCommandTests.handler) { server in
            server.enqueue(.rateLimited(retryAfter: "3"))
            let result = try await runCLI(arguments(xeroml, server, name: "paused", ["--concurrency", "1"]))
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("paused"), "\(result.stderr)")
            #expect(result.stderr.contains("Retry-After"))
        }
    }
}
