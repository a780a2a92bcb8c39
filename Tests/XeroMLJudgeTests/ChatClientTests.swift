import Foundation
import Testing
import XeroML
import XeroMLJudge
import XeroMLTesting

@Suite struct ChatClientTests {
    @Test func sendsAnOpenAICompatibleRequestAndReadsTheReply() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.chat("Paris", model: "fake-model-2024", promptTokens: 21, completionTokens: 3))
            var configuration = server.configuration(model: "judge-7b")
            configuration.apiKey = "sk-test"
            configuration.temperature = 0.2
            configuration.maxTokens = 64
            configuration.headers = ["OpenAI-Organization": "org-1"]
            let format = ChatResponseFormat.jsonSchema(name: "answer", schema: ["type": "object"])
            let reply = try await ChatClient(configuration: configuration).complete(
                messages: [.system("Be brief."), .user("Capital of France?")], options: ChatOptions(responseFormat: format))
            #expect(reply.content == "Paris")
            #expect(reply.model == "fake-model-2024")
            #expect(reply.usage == TokenUsage(promptTokens: 21, completionTokens: 3, totalTokens: 24))
            #expect(reply.finishReason == "stop")
            #expect(reply.cost == nil)
            #expect(reply.attempts == 1)
            #expect(reply.observationID == nil)  // no trace, nothing recorded

            let request = try #require(server.requests.first)
            #expect(request.method == "POST")
            #expect(request.path == "/v1/chat/completions")
            #expect(request.header("Authorization") == "Bearer sk-test")
            #expect(request.header("Content-Type") == "application/json")
            #expect(request.header("OpenAI-Organization") == "org-1")
            let body = try #require(request.json)
            #expect(body["model"] == "judge-7b")
            #expect(body["messages"] == [["role": "system", "content": "Be brief."], ["role": "user", "content": "Capital of France?"]])
            #expect(body["temperature"]?.doubleValue == 0.2)
            #expect(body["max_tokens"] == 64)
            #expect(body["stream"] == false)
            #expect(body["response_format"] == ["type": "json_schema",
                                                "json_schema": ["name": "answer", "schema": ["type": "object"], "strict": true]])
        }
    }

    @Test func optionalFieldsAreLeftOut() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.chat("ok"))
            var configuration = server.configuration()
            configuration.temperature = nil
            configuration.structuredOutput = false
            _ = try await ChatClient(configuration: configuration)
                .complete("hi", options: ChatOptions(responseFormat: .jsonObject))
            let request = try #require(server.requests.first)
            let body = try #require(request.json)
            #expect(request.header("Authorization") == nil)
            #expect(body["temperature"] == nil && body["max_tokens"] == nil && body["response_format"] == nil)
            #expect(request.messages.map(\.role) == ["user"])
        }
    }

    @Test func aBaseURLWithTheFullPathIsUsedAsItIs() {
        let base = ChatConfiguration(baseURL: URL(string: "http://127.0.0.1:8080/v1/")!, model: "m")
        #expect(base.completionsURL.absoluteString == "http://127.0.0.1:8080/v1/chat/completions")
        let full = ChatConfiguration(baseURL: URL(string: "http://127.0.0.1:8080/v1/chat/completions")!, model: "m")
        #expect(full.completionsURL.absoluteString == "http://127.0.0.1:8080/v1/chat/completions")
        // A query (Azure's api-version) stays after the path.
        let query = ChatConfiguration(baseURL: URL(string: "https://x.example/openai/deployments/d?api-version=2024-10-21")!, model: "m")
        #expect(query.completionsURL.absoluteString == "https://x.example/openai/deployments/d/chat/completions?api-version=2024-10-21")
        let fullWithQuery = ChatConfiguration(baseURL: URL(string: "http://h/v1/chat/completions/?a=1&b=%20")!, model: "m")
        #expect(fullWithQuery.completionsURL.absoluteString == "http://h/v1/chat/completions?a=1&b=%20")
        let root = ChatConfiguration(baseURL: URL(string: "http://h:9")!, model: "m")
        #expect(root.completionsURL.absoluteString == "http://h:9/chat/completions")
    }

    @Test(arguments: [
        (#"{"role": "assistant", "content": null}"#, "length", "no text (\"content\": null), finish_reason \"length\" (the reply hit its token limit"),
        (#"{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}"#, "tool_calls",
         "tool calls instead of text"),
    ])
    func aReplyWithoutTextIsAnErrorNotAnEmptyAnswer(message: String, reason: String, expected: String) async throws {
        let body = #"{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": \#(message), "finish_reason": "\#(reason)"}]}"#
        try await withFakeOpenAIServer(handler: { _ in .status(200, body: body) }) { server in
            let error = await #expect(throws: ChatError.self) {
                _ = try await ChatClient(configuration: server.configuration(model: "m")).complete("hi")
            }
            #expect(error?.code == .invalidResponse)
            #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        }
    }

    @Test func aRefusalIsTheAnswer() async throws {
        let body = #"{"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}, "finish_reason": "stop"}]}"#
        try await withFakeOpenAIServer(handler: { _ in .status(200, body: body) }) { server in
            let reply = try await ChatClient(configuration: server.configuration(model: "m")).complete("hi")
            #expect(reply.content == "I can't help with that.")
        }
    }

    @Test func aQueryInTheBaseURLReachesTheServerAfterThePath() async throws {
        try await withFakeOpenAIServer(handler: { _ in .chat("ok") }) { server in
            let base = URL(string: server.baseURL.absoluteString + "?api-version=2024-10-21")!
            let client = ChatClient(configuration: ChatConfiguration(baseURL: base, model: "m"))
            _ = try await client.complete("hi")
            #expect(server.requests.first?.path == "/v1/chat/completions?api-version=2024-10-21")
        }
    }

    @Test func a429IsRetriedAfterItsRetryAfter() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.rateLimited(retryAfter: "1"), .chat("ok"))
            let limiter = AdaptiveLimiter(maximum: 8)
            let clock = ContinuousClock()
            let start = clock.now
            let reply = try await client(server, limiter: limiter).complete("hi")
            let elapsed = clock.now - start
            #expect(reply.content == "ok")
            #expect(reply.attempts == 2)
            #expect(server.requestCount == 2)
            #expect(elapsed >= .milliseconds(950), "waited \(elapsed), the server asked for 1 s")
            #expect(limiter.inUse == 0)
            #expect(limiter.currentLimit == 4)  // halved by the rate limit
        }
    }

    @Test func serverErrorsAreRetriedAndClientErrorsAreNot() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.status(503), .status(502), .chat("third time"))
            let reply = try await client(server).complete("hi")
            #expect(reply.content == "third time" && reply.attempts == 3)
            #expect(server.requestCount == 3)

            server.enqueue(.status(400, body: #"{"error": {"message": "model 'nope' not found"}}"#))
            let rejected = await #expect(throws: ChatError.self) { try await client(server).complete("hi") }
            #expect(rejected?.code == .requestRejected)
            #expect(rejected?.isRetryable == false)
            #expect(rejected?.statusCode == 400)
            #expect(rejected?.message.contains("model 'nope' not found") == true)
            #expect(server.requestCount == 4)

            server.enqueue(.status(500), .status(500), .status(500))
            let exhausted = await #expect(throws: ChatError.self) { try await client(server).complete("hi") }
            #expect(exhausted?.code == .serverError)
            #expect(exhausted?.isRetryable == true)  // the experiment runner may still retry it
            #expect(server.requestCount == 7)
        }
    }

    @Test func rateLimitErrorsAreXeroMLRetryableErrors() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.rateLimited(retryAfter: "7"))
            let error = await #expect(throws: ChatError.self) { try await client(server, retry: .none).complete("hi") }
            let retryable = try #require(error as (any RetryableError)?)
            #expect(retryable.isRateLimit && retryable.isRetryable)
            #expect(retryable.retryAfter == .seconds(7))
        }
    }

    @Test func aReplyThatIsNotAChatCompletionIsAnError() async throws {
        try await withFakeOpenAIServer { server in
            server.enqueue(.status(200, body: "<html>gateway</html>"), .json(["object": "list", "data": []]))
            let notJSON = await #expect(throws: ChatError.self) { try await client(server).complete("hi") }
            #expect(notJSON?.code == .invalidResponse && notJSON?.isRetryable == false)
            let noChoices = await #expect(throws: ChatError.self) { try await client(server).complete("hi") }
            #expect(noChoices?.message.contains("choices[0].message") == true)
            #expect(server.requestCount == 2)
        }
    }

    @Test func callsInsideATraceAreRecordedAsGenerations() async throws {
        let xeroml = try temporaryClient()
        try await withFakeOpenAIServer { server in
            server.enqueue(.chat("Paris", promptTokens: 1000, completionTokens: 500))
            let chat = client(server, prices: true)
            let (traceID, rootID, reply) = try await xeroml.withActive {
                try await observe("answer") { span in
                    let reply = try await chat.complete(messages: [.user("Capital of France?")],
                                                        options: ChatOptions(name: "llm", metadata: ["app": "quiz"]))
                    return (span.traceID, span.id, reply)
                }
            }
            #expect(reply.cost == 0.5 + 0.75)
            try await xeroml.flush()
            let trace = try #require(try await xeroml.trace(id: traceID))
            let generation = try #require(trace.observations.first { $0.id == reply.observationID })
            #expect(generation.kind == .generation)
            #expect(generation.name == "llm")
            #expect(generation.parentID == rootID)
            #expect(generation.model == "fake-model")
            #expect(generation.modelParameters?["temperature"] == 0.0)
            #expect(generation.input == [["role": "user", "content": "Capital of France?"]])
            #expect(generation.output == "Paris")
            #expect(generation.usage == TokenUsage(promptTokens: 1000, completionTokens: 500, totalTokens: 1500))
            #expect(generation.cost == 1.25)
            #expect(generation.metadata?["app"] == "quiz")
            #expect(generation.metadata?["attempts"] == 1)
            #expect(generation.metadata?["latency_ms"]?.doubleValue != nil)
            #expect(generation.duration != nil)
        }
    }

    @Test func aFailedCallIsRecordedAtLevelError() async throws {
        let xeroml = try temporaryClient()
        try await withFakeOpenAIServer { server in
            server.enqueue(.status(401, body: #"{"error": {"message": "bad key"}}"#))
            let chat = client(server)
            let traceID = await xeroml.withActive {
                await observe("answer") { span in
                    _ = try? await chat.complete("hi")
                    return span.traceID
                }
            }
            try await xeroml.flush()
            let trace = try #require(try await xeroml.trace(id: traceID))
            let generation = try #require(trace.observations.first { $0.kind == .generation })
            #expect(generation.level == .error)
            #expect(generation.statusMessage?.contains("bad key") == true)
        }
    }

    @Test func theTaskOfAnExperimentRecordsItsCallsAndTheRunnerRetriesRateLimits() async throws {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        try await withFakeOpenAIServer { server in
            server.enqueue(.rateLimited(retryAfter: "1"), .chat("Paris", promptTokens: 2000, completionTokens: 1000))
            // The task's client does not retry: the runner does, honouring Retry-After.
            let chat = client(server, prices: true, retry: .none)
            let clock = ContinuousClock()
            let start = clock.now
            let report = try await xeroml.runExperiment(
                name: "with-model", datasetName: "capitals",
                options: ExperimentOptions(retry: quickRetry, limiter: AdaptiveLimiter(maximum: 8))
            ) { run in
                let reply = try await chat.complete(run.input["question"]!.displayText)
                run.setOutput(.string(reply.content))
            }
            #expect(clock.now - start >= .milliseconds(950))
            let results = try await xeroml.results(runID: report.run.id)
            let item = try #require(results.first)
            #expect(item.succeeded && item.attempts == 2)
            #expect(item.output == "Paris")
            let trace = try #require(try await xeroml.trace(id: item.traceID!))
            let generations = trace.observations.filter { $0.kind == .generation }
            #expect(generations.count == 1)
            #expect(generations.first?.usage.totalTokens == 3000)
            #expect(generations.first?.cost == 1.0 + 1.5)
        }
    }

    @Test func configurationComesFromTheEnvironment() throws {
        #expect(try ChatConfiguration.fromEnvironment([:]) == nil)
        #expect(try ChatConfiguration.fromEnvironment(["XEROML_JUDGE_MODEL": "m"]) == nil)
        #expect(try ChatConfiguration.fromEnvironment(["XEROML_JUDGE_BASE_URL": "http://127.0.0.1:1/v1",
                                                       "XEROML_JUDGE_MODEL": " "]) == nil)
        let configured = try #require(try ChatConfiguration.fromEnvironment([
            "XEROML_JUDGE_BASE_URL": "http://127.0.0.1:11434/v1", "XEROML_JUDGE_MODEL": "llama3.1:8b",
            "OPENAI_API_KEY": "sk-fallback", "XEROML_JUDGE_TEMPERATURE": "0.3", "XEROML_JUDGE_MAX_TOKENS": "256",
            "XEROML_JUDGE_TIMEOUT": "2.5", "XEROML_JUDGE_PRICE_PROMPT": "0.001", "XEROML_JUDGE_STRUCTURED_OUTPUT": "0",
        ]))
        #expect(configured.baseURL.absoluteString == "http://127.0.0.1:11434/v1")
        #expect(configured.model == "llama3.1:8b")
        #expect(configured.apiKey == "sk-fallback")
        #expect(configured.temperature == 0.3 && configured.maxTokens == 256)
        #expect(configured.timeout == .milliseconds(2500))
        #expect(configured.pricePer1KPromptTokens == 0.001 && configured.pricePer1KCompletionTokens == nil)
        #expect(!configured.structuredOutput)
        #expect(!configured.description.contains("sk-fallback"))

        let preferred = try ChatConfiguration.fromEnvironment([
            "XEROML_JUDGE_BASE_URL": "https://api.openai.com/v1", "XEROML_JUDGE_MODEL": "gpt-4o-mini",
            "XEROML_JUDGE_API_KEY": "sk-judge", "OPENAI_API_KEY": "sk-other",
        ])
        #expect(preferred?.apiKey == "sk-judge")

        let bad = #expect(throws: ChatError.self) {
            try ChatConfiguration.fromEnvironment(["XEROML_JUDGE_BASE_URL": "http://x/v1", "XEROML_JUDGE_MODEL": "m",
                                                   "XEROML_JUDGE_TEMPERATURE": "hot"])
        }
        #expect(bad?.code == .invalidConfiguration)
        #expect(bad?.message.contains("XEROML_JUDGE_TEMPERATURE") == true)
        #expect(throws: ChatError.self) {
            try ChatConfiguration.fromEnvironment(["XEROML_JUDGE_BASE_URL": "localhost:11434", "XEROML_JUDGE_MODEL": "m"])
        }
    }
}
