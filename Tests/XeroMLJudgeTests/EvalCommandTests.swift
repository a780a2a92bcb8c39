import Foundation
import Testing
import XeroML
import XeroMLJudge
import XeroMLTesting

@Suite struct EvalCommandTests {
    /// The model answers the capital from the question; the judge gives 0.8.
    static let handler: FakeOpenAIServer.Handler = { request in
        if isJudgeRequest(request) { return .judge(score: 0.8, reasoning: "Good enough.") }
        let prompt = request.messages.last?.content ?? ""
        let answer = prompt.contains("France") ? "Paris" : prompt.contains("Japan") ? "Tokyo" : "I don't know"
        return .chat(answer, model: "tiny-model", promptTokens: 12, completionTokens: 2)
    }

    @Test func evalRunsADatasetThroughAModelAndItsJudges() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: Self.handler) { server in
            let arguments = [
                "eval", "--db", xeroml.path, "--dataset", "capitals", "--name", "tiny",
                "--prompt", "Answer with the city only: {{input.question}}", "--system", "You know geography.",
                "--model", "tiny-model", "--base-url", server.baseURL.absoluteString,
                "--api-key-env", "TINY_KEY", "--temperature", "0.1",
                "--evaluator", "exact_match", "--evaluator", "helpfulness", "--concurrency", "2",
            ]
            let result = try await runCLI(arguments, environment: ["TINY_KEY": "sk-tiny"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("Run \"tiny\" on capitals"))
            #expect(result.stdout.contains("helpfulness"))
            #expect(result.stdout.contains("exact_match"))
            #expect(result.stderr.contains("tiny: 3/3"))

            let requests = server.requests
            let modelCalls = requests.filter { !isJudgeRequest($0) }
            let judgeCalls = requests.filter(isJudgeRequest)
            #expect(modelCalls.count == 3 && judgeCalls.count == 3)
            let france = try #require(modelCalls.first { $0.messages.last?.content.contains("France") == true })
            #expect(france.messages.map(\.role) == ["system", "user"])
            #expect(france.messages[0].content == "You know geography.")
            #expect(france.messages[1].content == "Answer with the city only: Capital of France?")
            #expect(france.json?["model"] == "tiny-model")
            #expect(france.json?["temperature"]?.doubleValue == 0.1)
            #expect(france.json?["response_format"] == nil)
            #expect(france.header("Authorization") == "Bearer sk-tiny")
            // Without XEROML_JUDGE_* variables, the judge is the model under test, at temperature 0.
            #expect(judgeCalls.allSatisfy { $0.json?["model"] == "tiny-model" && $0.json?["temperature"] == 0.0 })

            let run = try #require(try await xeroml.runs(datasetName: "capitals").first { $0.name == "tiny" })
            #expect(run.status == .finished && run.itemCount == 3 && run.errorCount == 0)
            #expect(run.metadata?["prompt"] == "Answer with the city only: {{input.question}}")
            let results = try await xeroml.results(runID: run.id)
            #expect(Set(results.compactMap { $0.output?.stringValue }) == ["Paris", "Tokyo", "I don't know"])
            #expect(abs((results.summary.score("exact_match")?.mean ?? 0) - 2.0 / 3) < 1e-9)
            #expect(abs((results.summary.score("helpfulness")?.mean ?? 0) - 0.8) < 1e-9)
            // The model's calls are generations of the items' traces.
            let item = try #require(results.first)
            let trace = try #require(try await xeroml.trace(id: item.traceID!))
            let generation = try #require(trace.observations.first { $0.name == "model" })
            #expect(generation.kind == .generation && generation.model == "tiny-model")
            #expect(generation.usage.totalTokens == 14)

            // A second run re-uses the judge's answers; `judge-cache clear` forgets them.
            let again = try await runCLI(arguments.map { $0 == "tiny" ? "tiny-2" : $0 }, environment: ["TINY_KEY": "sk-tiny"])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(server.requests.filter(isJudgeRequest).count == 3)
            #expect(server.requestCount == 9)
            let cleared = try await runCLI(["judge-cache", "clear", "--db", xeroml.path])
            #expect(cleared.status == 0, "\(cleared.stderr)")
            #expect(cleared.stdout.contains("Cleared 3 cached judge answers"))

            // Resuming a finished run runs nothing; reusing its name without --resume is refused.
            let resumed = try await runCLI(arguments + ["--resume"], environment: ["TINY_KEY": "sk-tiny"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(server.requestCount == 9)
            let taken = try await runCLI(arguments, environment: ["TINY_KEY": "sk-tiny"])
            #expect(taken.status != 0)
            #expect(taken.stderr.contains("--resume"))
        }
    }

    @Test func badPromptsAndMissingEndpointsFailBeforeAnyRequest() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: Self.handler) { server in
            let base = ["eval", "--db", xeroml.path, "--dataset", "capitals", "--name", "bad",
                        "--model", "tiny-model", "--base-url", server.baseURL.absoluteString]

            let unknownRoot = try await runCLI(base + ["--prompt", "Answer: {{question}}"])
            #expect(unknownRoot.status != 0)
            #expect(unknownRoot.stderr.contains("unknown placeholder {{question}}"), "\(unknownRoot.stderr)")

            let unknownKey = try await runCLI(base + ["--prompt", "Answer: {{input.qestion}}"])
            #expect(unknownKey.status != 0)
            #expect(unknownKey.stderr.contains("input.qestion"), "\(unknownKey.stderr)")

            let unknownEvaluator = try await runCLI(base + ["--prompt", "{{input.question}}", "--evaluator", "helpfullness"])
            #expect(unknownEvaluator.status != 0)
            #expect(unknownEvaluator.stderr.contains("unknown evaluator \"helpfullness\""), "\(unknownEvaluator.stderr)")

            let noEndpoint = try await runCLI(["eval", "--db", xeroml.path, "--dataset", "capitals", "--name", "bad",
                                         "--prompt", "{{input.question}}"])
            #expect(noEndpoint.status != 0)
            #expect(noEndpoint.stderr.contains("no model endpoint"), "\(noEndpoint.stderr)")

            let noDataset = try await runCLI(base + ["--dataset", "nope", "--prompt", "{{input}}"])
            #expect(noDataset.status != 0)
            #expect(noDataset.stderr.contains("nope"), "\(noDataset.stderr)")

            #expect(server.requestCount == 0)
            #expect(try await xeroml.runs().isEmpty)
        }
    }

    @Test func theEndpointCanComeFromTheEnvironment() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of Japan?", "Tokyo", nil)])
        try await withFakeOpenAIServer(handler: Self.handler) { server in
            let result = try await runCLI(
                ["eval", "--db", xeroml.path, "--dataset", "capitals", "--name", "env", "--prompt", "{{input.question}}",
                 "--evaluator", "correctness", "--judge-model", "big-judge"],
                environment: ["XEROML_JUDGE_BASE_URL": server.baseURL.absoluteString, "XEROML_JUDGE_MODEL": "tiny-model",
                              "XEROML_JUDGE_API_KEY": "sk-env"])
            #expect(result.status == 0, "\(result.stderr)")
            let requests = server.requests
            #expect(requests.count == 2)
            #expect(requests.allSatisfy { $0.header("Authorization") == "Bearer sk-env" })
            #expect(requests.first { !isJudgeRequest($0) }?.json?["model"] == "tiny-model")
            #expect(requests.first(where: isJudgeRequest)?.json?["model"] == "big-judge")
        }
    }
}
