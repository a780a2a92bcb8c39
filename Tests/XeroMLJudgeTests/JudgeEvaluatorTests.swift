import Foundation
import Testing
import XeroML
import XeroMLJudge
import XeroMLTesting

@Suite struct JudgeEvaluatorTests {
    /// Answers judge calls with `score`, everything else with "Paris".
    static func judging(_ score: JSONValue, reasoning: String = "Looks right.") -> FakeOpenAIServer.Handler {
        { request in isJudgeRequest(request) ? .judge(score: score, reasoning: reasoning) : .chat("Paris") }
    }

    @Test func judgesAreSelectedByNameAndLinkedToTheirGenerations() async throws {
        let xeroml = try temporaryClient()
        let dataset = try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: Self.judging(0.9)) { server in
            xeroml.registerJudges(client: client(server, prices: true))
            #expect(Set(xeroml.evaluators.names).isSuperset(of: [
                "helpfulness", "accuracy", "correctness", "relevance", "hallucination", "toxicity", "conciseness",
                "faithfulness", "context_relevance", "exact_match",
            ]))
            let experiment = try await xeroml.createExperiment(name: "by-name", datasetName: "capitals",
                                                               evaluators: ["exact_match", "helpfulness"])
            for item in dataset.items {
                try await experiment.runItem(item) { run in run.setOutput("Paris") }
            }
            try await experiment.finish()
            let results = try await experiment.results()
            #expect(results.count == 3)
            #expect(server.requestCount == 3)
            for item in results {
                let score = try #require(item.scores.first { $0.name == "helpfulness" })
                #expect(score.value == .numeric(0.9))
                #expect(score.comment == "Looks right.")
                #expect(score.evaluator == "helpfulness")
                #expect(score.source == .judge)
                let generationID = try #require(score.observationID)
                let generation = try #require(try await xeroml.observation(id: generationID))
                #expect(generation.kind == .generation)
                #expect(generation.name == "judge:helpfulness")
                // Judge calls live in the item's evaluation trace, apart from the task's own trace.
                #expect(generation.traceID != item.traceID)
                let evaluationTrace = try #require(try await xeroml.trace(id: generation.traceID))
                #expect(evaluationTrace.runID == results.run.id)
                #expect(evaluationTrace.metadata?["run_item_id"] == .string(item.id))
                #expect(generation.parentID == nil)
                #expect(generation.model == "fake-model")
                #expect(generation.usage == TokenUsage(promptTokens: 10, completionTokens: 5, totalTokens: 15))
                #expect(generation.cost == 10.0 / 1000 * 0.5 + 5.0 / 1000 * 1.5)
                #expect(generation.output?.stringValue?.contains("\"score\":0.9") == true)
                #expect(generation.metadata?["template"] == "helpfulness@1")
                #expect(generation.metadata?["cached"] == nil)
            }

            // What the judge was asked.
            let request = try #require(server.requests.first { $0.messages.last?.content.contains("France") == true })
            let body = try #require(request.json)
            #expect(body["temperature"] == 0.0)
            #expect(body["response_format"]?["type"] == "json_schema")
            #expect(body["response_format"]?["json_schema"]?["schema"]?["required"] == ["reasoning", "score"])
            #expect(request.messages[0].role == "system")
            #expect(request.messages[0].content.contains("helpful"))
            #expect(request.messages[1].content == "<question>\n{\"question\":\"Capital of France?\"}\n</question>\n\n<response>\nParis\n</response>")
        }
    }

    @Test func runExperimentTakesJudgesFromTheRegistry() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: Self.judging(true, reasoning: "Invented a fact.")) { server in
            xeroml.registerJudges(client: client(server))
            let report = try await xeroml.runExperiment(
                name: "registry", datasetName: "capitals", evaluators: try xeroml.evaluators.make(["hallucination", "correctness"]),
                options: ExperimentOptions(maxConcurrency: 3)
            ) { run in run.setOutput("Paris") }
            #expect(report.summary.score("hallucination")?.mean == 1)
            // A boolean reply for a 0…1 template is not a score: unscored, never a silent zero.
            #expect(report.summary.score("correctness")?.unscored == 3)
            let results = try await xeroml.results(runID: report.run.id)
            let correctness = try #require(results.first?.scores.first { $0.name == "correctness" })
            #expect(correctness.value.isUnscored)
            #expect(correctness.observationID != nil)
            // Both templates show the reference answer: correctness needs it, hallucination uses it when present.
            #expect(server.requests.count == 6)
            #expect(server.requests.allSatisfy { $0.messages.last?.content.contains("<reference_answer>\nParis\n</reference_answer>") == true
                || $0.messages.last?.content.contains("<reference_answer>\nTokyo\n</reference_answer>") == true
                || $0.messages.last?.content.contains("<reference_answer>\nLima\n</reference_answer>") == true })
        }
    }

    @Test func unstructuredRepliesAreParsed() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        try await withFakeOpenAIServer(handler: { _ in .chat("Sure!\n**Score:** 0.75\nReasoning: Close, but terse.") }) { server in
            let judge = JudgeEvaluator(.relevance, client: client(server))
            let report = try await xeroml.runExperiment(name: "prose", datasetName: "capitals", evaluators: [judge]) { run in
                run.setOutput("Paris")
            }
            let score = try #require(try await xeroml.results(runID: report.run.id).first?.scores.first)
            #expect(score.value == .numeric(0.75))
            #expect(score.comment == "Close, but terse.")
        }
    }

    @Test func anUnparseableReplyIsUnscoredWithTheRawTextAndNotCached() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        try await withFakeOpenAIServer(handler: { _ in .chat("I would rather not grade this.") }) { server in
            let judge = JudgeEvaluator(.helpfulness, client: client(server))
            for name in ["first", "second"] {
                let report = try await xeroml.runExperiment(name: name, datasetName: "capitals", evaluators: [judge]) { run in
                    run.setOutput("Paris")
                }
                let score = try #require(try await xeroml.results(runID: report.run.id).first?.scores.first)
                #expect(score.value == .unscored("could not parse judge reply (no score found): I would rather not grade this."))
                #expect(score.comment?.contains("no score found") == true)
                #expect(score.observationID != nil)
                #expect(report.summary.score("helpfulness")?.unscored == 1)
            }
            #expect(server.requestCount == 2)  // nothing cached: the second run asked again
        }
    }

    @Test func reRunsHitTheCacheUntilItIsCleared() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: Self.judging(0.6)) { server in
            xeroml.registerJudges(client: client(server))
            let evaluators = try xeroml.evaluators.make(["helpfulness"])
            let first = try await xeroml.runExperiment(name: "first", datasetName: "capitals", evaluators: evaluators) { run in
                run.setOutput("Paris")
            }
            #expect(server.requestCount == 3)
            let second = try await xeroml.runExperiment(name: "second", datasetName: "capitals", evaluators: evaluators) { run in
                run.setOutput("Paris")
            }
            #expect(server.requestCount == 3, "a cache hit makes no request")
            #expect(second.summary.score("helpfulness")?.mean == first.summary.score("helpfulness")?.mean)
            // Cached answers are still linked to a generation, marked cached and free.
            let item = try #require(try await xeroml.results(runID: second.run.id).first)
            let score = try #require(item.scores.first)
            #expect(score.comment == "Looks right.")
            let generationID = try #require(score.observationID)
            let generation = try #require(try await xeroml.observation(id: generationID))
            #expect(generation.metadata?["cached"] == true)
            #expect(generation.cost == nil && generation.usage.totalTokens == nil)

            // A different output is a different prompt.
            _ = try await xeroml.runExperiment(name: "third", datasetName: "capitals", evaluators: evaluators) { run in
                run.setOutput("Lyon")
            }
            #expect(server.requestCount == 6)

            #expect(try await xeroml.clearJudgeCache() == 6)
            _ = try await xeroml.runExperiment(name: "fourth", datasetName: "capitals", evaluators: evaluators) { run in
                run.setOutput("Paris")
            }
            #expect(server.requestCount == 9)
        }
    }

    @Test func repetitionsCanOptOutOfSharing() async throws {
        let xeroml = try temporaryClient()
        let dataset = try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        let item = try #require(dataset.items.first)
        try await withFakeOpenAIServer(handler: Self.judging(1)) { server in
            let shared = try await xeroml.createExperiment(
                name: "shared", datasetName: "capitals", evaluators: [JudgeEvaluator(.conciseness, client: client(server))])
            for repetition in 0..<3 {
                try await shared.runItem(item, repetition: repetition) { run in run.setOutput("Paris") }
            }
            #expect(server.requestCount == 1)

            let judge = JudgeEvaluator(.conciseness, client: client(server), cachePolicy: .perRepetition)
            let perRepetition = try await xeroml.createExperiment(name: "per-repetition", datasetName: "capitals",
                                                                  evaluators: [judge])
            for repetition in 0..<3 {
                try await perRepetition.runItem(item, repetition: repetition) { run in run.setOutput("Paris") }
            }
            #expect(server.requestCount == 4)
            let again = try await xeroml.createExperiment(name: "again", datasetName: "capitals", evaluators: [judge])
            for repetition in 0..<3 {
                try await again.runItem(item, repetition: repetition) { run in run.setOutput("Paris") }
            }
            #expect(server.requestCount == 4)

            let uncached = try await xeroml.createExperiment(
                name: "uncached", datasetName: "capitals",
                evaluators: [JudgeEvaluator(.conciseness, client: client(server), cachePolicy: .disabled)])
            try await uncached.runItem(item) { run in run.setOutput("Paris") }
            try await uncached.runItem(item, repetition: 1) { run in run.setOutput("Paris") }
            #expect(server.requestCount == 6)
        }
    }

    @Test func noEndpointMeansNoRequest() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml)
        try await withFakeOpenAIServer(handler: Self.judging(1)) { server in
            // Only a key is set: no endpoint, so the judges stay offline.
            let configuration = try ChatConfiguration.fromEnvironment(["OPENAI_API_KEY": "sk-unused"])
            #expect(configuration == nil)
            xeroml.registerJudges(configuration: configuration)
            let report = try await xeroml.runExperiment(
                name: "offline", datasetName: "capitals", evaluators: try xeroml.evaluators.make(["exact_match", "helpfulness"])
            ) { run in run.setOutput("Paris") }
            #expect(server.requestCount == 0)
            #expect(report.summary.score("helpfulness")?.unscored == 3)
            #expect(report.summary.score("exact_match")?.count == 3)
            let score = try #require(try await xeroml.results(runID: report.run.id).first?.scores.first { $0.name == "helpfulness" })
            #expect(score.value.stringValue?.contains("XEROML_JUDGE_BASE_URL") == true)
        }
    }

    @Test func contextComesFromMetadataOrAKeyPath() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [
            ("Capital of France?", "Paris", ["context": ["Paris is the capital of France.", "Lyon is a city."]]),
            ("Capital of Japan?", "Tokyo", nil),
        ])
        try await withFakeOpenAIServer(handler: Self.judging(0.5)) { server in
            let faithfulness = JudgeEvaluator(.faithfulness, client: client(server))
            let report = try await xeroml.runExperiment(name: "context", datasetName: "capitals",
                                                        evaluators: [faithfulness],
                                                        options: ExperimentOptions(maxConcurrency: 1)) { run in
                run.setOutput("Paris")
            }
            #expect(server.requestCount == 1, "the item without context is not sent")
            let user = try #require(server.requests.first?.messages.last?.content)
            #expect(user.contains("<context>\n[1] Paris is the capital of France.\n\n[2] Lyon is a city.\n</context>"))
            #expect(user.hasPrefix("<question>"))
            let summary = try #require(report.summary.score("faithfulness"))
            #expect(summary.count == 1 && summary.unscored == 1)
            let results = try await xeroml.results(runID: report.run.id)
            #expect(results.contains { $0.scoreValue("faithfulness")?.stringValue?.contains("faithfulness needs a context") == true })

            // The context can live anywhere in the item, e.g. in the output of a RAG pipeline.
            let fromOutput = JudgeEvaluator(.contextRelevance, client: client(server), contextKeyPath: "output.passages")
            _ = try await xeroml.runExperiment(name: "rag", datasetName: "capitals", evaluators: [fromOutput],
                                               options: ExperimentOptions(maxConcurrency: 1)) { run in
                run.setOutput(["answer": "Paris", "passages": [["text": "France's capital is Paris."]]])
            }
            #expect(server.requestCount == 3)
            #expect(server.requests.last?.messages.last?.content.contains("<context>\n[1] France's capital is Paris.\n</context>") == true)
        }
    }

    @Test func accuracyNeedsAnExpectedOutput() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", nil, nil)])
        try await withFakeOpenAIServer(handler: Self.judging(1)) { server in
            let report = try await xeroml.runExperiment(
                name: "no-reference", datasetName: "capitals",
                evaluators: [JudgeEvaluator(.accuracy, client: client(server), name: "correctness")]
            ) { run in run.setOutput("Paris") }
            #expect(server.requestCount == 0)
            let score = try #require(try await xeroml.results(runID: report.run.id).first?.scores.first)
            #expect(score.name == "correctness")
            #expect(score.value == .unscored("accuracy needs an expected output"))
        }
    }

    @Test func aJudgeThatKeepsFailingLeavesTheItemUnscored() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        try await withFakeOpenAIServer(handler: { _ in .status(404, body: #"{"error": {"message": "model not found"}}"#) }) { server in
            let report = try await xeroml.runExperiment(
                name: "broken-judge", datasetName: "capitals", evaluators: [JudgeEvaluator(.toxicity, client: client(server))]
            ) { run in run.setOutput("Paris") }
            #expect(server.requestCount == 1)  // a 404 is not retried
            let score = try #require(try await xeroml.results(runID: report.run.id).first?.scores.first)
            #expect(score.value.isUnscored)
            #expect(score.value.stringValue?.contains("model not found") == true)
        }
    }

    @Test func judgesShareTheRunnersLimiterAndRetryRateLimits() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        try await withFakeOpenAIServer { server in
            server.enqueue(.rateLimited(retryAfter: "1"), .judge(score: 0.5))
            let limiter = AdaptiveLimiter(maximum: 4)
            let judge = JudgeEvaluator(.helpfulness, client: client(server, limiter: limiter))
            let clock = ContinuousClock()
            let start = clock.now
            let report = try await xeroml.runExperiment(name: "limited", datasetName: "capitals", evaluators: [judge],
                                                        options: ExperimentOptions(limiter: limiter)) { run in
                run.setOutput("Paris")
            }
            #expect(clock.now - start >= .milliseconds(950))
            #expect(report.summary.score("helpfulness")?.mean == 0.5)
            #expect(server.requestCount == 2)
            #expect(limiter.inUse == 0 && limiter.currentLimit == 2)
        }
    }

    @Test func rubricJudges() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        try await withFakeOpenAIServer { server in
            server.enqueue(.judge(score: 4, reasoning: "Polite."), .judge(score: "French", reasoning: "It is French."))
            let tone = RubricJudge(name: "tone", criteria: "Is the reply polite? 5 = exemplary, 1 = rude.",
                                   scale: .range(1...5), client: client(server))
            let language = RubricJudge(name: "language", criteria: "Which language is the response in?",
                                       scale: .categories(["english", "french", "other"]), inputs: [.output],
                                       optionalInputs: [], client: client(server))
            let report = try await xeroml.runExperiment(name: "rubric", datasetName: "capitals", evaluators: [tone, language],
                                                        options: ExperimentOptions(maxConcurrency: 1)) { run in
                run.setOutput("C'est Paris.")
            }
            let scores = try #require(try await xeroml.results(runID: report.run.id).first?.scores)
            let toneScore = try #require(scores.first { $0.name == "tone" })
            #expect(toneScore.value == .numeric(0.75))
            #expect(toneScore.comment == "(4 on 1…5) Polite.")
            #expect(scores.first { $0.name == "language" }?.value == .categorical("french"))

            let requests = server.requests
            #expect(requests[0].messages[0].content.contains("Is the reply polite?"))
            #expect(requests[0].messages[0].content.contains("from 1 (worst) to 5 (best)"))
            #expect(requests[0].messages[1].content.contains("<reference_answer>\nParis\n</reference_answer>"))
            #expect(requests[1].messages[1].content == "<response>\nC'est Paris.\n</response>")
            #expect(requests[1].json?["response_format"]?["json_schema"]?["schema"]?["properties"]?["score"]?["enum"]
                    == ["english", "french", "other"])
        }
    }

    @Test func everyBuiltInTemplateRendersAndIsVersioned() throws {
        let item = EvaluationInput(input: "Capital of France?", output: "Paris", expectedOutput: "Paris")
        for template in JudgeTemplate.builtIn {
            #expect(template.version >= 1)
            let context: String? = "Paris is the capital of France."
            let messages = try template.messages(for: item, context: context)
            #expect(messages.count == 2)
            #expect(messages[0].content.contains("\"score\""))
            for part in template.required {
                #expect(messages[1].content.contains("<\(part == .input ? "question" : part == .output ? "response" : part == .context ? "context" : "reference_answer")>"))
            }
        }
        #expect(JudgeTemplate.named("correctness") == JudgeTemplate.accuracy)
        #expect(JudgeTemplate.named("nope") == nil)
        #expect(JudgeTemplate.hallucination.scale == .boolean && JudgeTemplate.toxicity.scale == .boolean)
    }
}
