import Foundation
import Synchronization
import Testing
import XeroML
import XeroMLHTTP
@testable import XeroMLJudge
import XeroMLTesting

/// A transport that holds every request until the test opens it, and counts requests.
final class GatedTransport: HTTPTransport {
    private struct State {
        var requests = 0
        var answer: HTTPResponse?
    }

    private let state = Mutex(State())

    var requestCount: Int { state.withLock { $0.requests } }

    /// Answers the requests held and every later one with `response`.
    func open(with response: HTTPResponse) { state.withLock { $0.answer = response } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        state.withLock { $0.requests += 1 }
        while true {
            if let answer = state.withLock({ $0.answer }) { return answer }
            try await Task.sleep(for: .milliseconds(5))  // throws CancellationError when cancelled
        }
    }

    /// A chat completion whose content is a judge reply with `score`.
    static func judgeReply(score: Double) -> HTTPResponse {
        let content = JSONValue.object(["reasoning": "Right city.", "score": .double(score)]).jsonString
        let body: JSONValue = [
            "model": "gated-model",
            "choices": [["message": ["role": "assistant", "content": .string(content)], "finish_reason": "stop"]],
            "usage": ["prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15],
        ]
        return HTTPResponse(statusCode: 200, headers: ["Content-Type": "application/json"], body: Data(body.jsonString.utf8))
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` until it holds; fails after `timeout`.
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while !condition() {
        guard clock.now < deadline else { throw WaitTimedOut(description: "timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// The outcome of `body`, error included.
func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

@Suite struct JudgeSingleFlightTests {
    let item = EvaluationInput(input: "Capital of France?", output: "Paris")

    func gatedJudge(_ transport: GatedTransport, cachePolicy: JudgeCachePolicy = .shared) -> JudgeEvaluator {
        let configuration = ChatConfiguration(baseURL: URL(string: "http://127.0.0.1:9/v1")!, model: "gated-model")
        return JudgeEvaluator(.helpfulness, client: ChatClient(configuration: configuration, transport: transport, retry: .none),
                              cachePolicy: cachePolicy)
    }

    /// Starts `judge` on the item as the store's active client.
    func start(_ judge: JudgeEvaluator, on xeroml: XeroML) -> Task<[Evaluation], any Error> {
        let item = self.item
        return Task { try await xeroml.withActive { try await judge.evaluate(item) } }
    }

    @Test(.timeLimit(.minutes(1))) func waitersShareTheAnswerOfTheCallInFlight() async throws {
        let xeroml = try temporaryClient()
        let transport = GatedTransport()
        let judge = gatedJudge(transport)
        let store = ObjectIdentifier(xeroml)
        let tasks = (0..<4).map { _ in start(judge, on: xeroml) }
        try await waitUntil("one request is held and three callers wait") {
            transport.requestCount == 1 && JudgeFlights.shared.inFlight(store: store) == (1, 3)
        }
        transport.open(with: GatedTransport.judgeReply(score: 0.9))
        for task in tasks {
            #expect(try await task.value.first?.value == .numeric(0.9))
        }
        #expect(transport.requestCount == 1)
        #expect(JudgeFlights.shared.inFlight(store: store) == (0, 0))
    }

    @Test(.timeLimit(.minutes(1))) func aFailedCallFailsItsWaitersWithTheSameError() async throws {
        let xeroml = try temporaryClient()
        let transport = GatedTransport()
        let judge = gatedJudge(transport)
        let store = ObjectIdentifier(xeroml)
        let tasks = (0..<3).map { _ in start(judge, on: xeroml) }
        try await waitUntil("one request is held and two callers wait") {
            transport.requestCount == 1 && JudgeFlights.shared.inFlight(store: store) == (1, 2)
        }
        transport.open(with: HTTPResponse(statusCode: 404, body: Data(#"{"error": {"message": "model not found"}}"#.utf8)))
        for task in tasks {
            let result = await outcome { try await task.value }
            let error = try #require(result.failure as? ChatError, "\(result)")
            #expect(error.code == .requestRejected)
            #expect(error.description.contains("model not found"))
        }
        #expect(transport.requestCount == 1, "the waiters did not ask again")
        #expect(JudgeFlights.shared.inFlight(store: store) == (0, 0))
    }

    @Test(.timeLimit(.minutes(1))) func aCancelledCallerHandsTheRequestToAWaiter() async throws {
        let xeroml = try temporaryClient()
        let transport = GatedTransport()
        let judge = gatedJudge(transport)
        let store = ObjectIdentifier(xeroml)
        let leader = start(judge, on: xeroml)
        try await waitUntil("the first caller's request is held") { transport.requestCount == 1 }
        let waiters = (0..<2).map { _ in start(judge, on: xeroml) }
        try await waitUntil("two callers wait") { JudgeFlights.shared.inFlight(store: store) == (1, 2) }

        leader.cancel()
        // One waiter asks instead; the other waits for it.
        try await waitUntil("a waiter asks instead") {
            transport.requestCount == 2 && JudgeFlights.shared.inFlight(store: store) == (1, 1)
        }
        let cancelled = await outcome { try await leader.value }
        #expect(cancelled.failure is CancellationError, "\(cancelled)")

        transport.open(with: GatedTransport.judgeReply(score: 0.7))
        for waiter in waiters {
            #expect(try await waiter.value.first?.value == .numeric(0.7))
        }
        #expect(transport.requestCount == 2)
        #expect(JudgeFlights.shared.inFlight(store: store) == (0, 0))
    }

    @Test(.timeLimit(.minutes(1))) func aCancelledWaiterLeavesTheOthersAlone() async throws {
        let xeroml = try temporaryClient()
        let transport = GatedTransport()
        let judge = gatedJudge(transport)
        let store = ObjectIdentifier(xeroml)
        let leader = start(judge, on: xeroml)
        try await waitUntil("the first caller's request is held") { transport.requestCount == 1 }
        let waiters = (0..<2).map { _ in start(judge, on: xeroml) }
        try await waitUntil("two callers wait") { JudgeFlights.shared.inFlight(store: store) == (1, 2) }

        waiters[0].cancel()
        let cancelled = await outcome { try await waiters[0].value }
        #expect(cancelled.failure is CancellationError, "\(cancelled)")
        #expect(JudgeFlights.shared.inFlight(store: store) == (1, 1))

        transport.open(with: GatedTransport.judgeReply(score: 0.5))
        #expect(try await leader.value.first?.value == .numeric(0.5))
        #expect(try await waiters[1].value.first?.value == .numeric(0.5))
        #expect(transport.requestCount == 1)
    }

    @Test(.timeLimit(.minutes(1))) func nothingIsSharedWhenTheCacheIsDisabled() async throws {
        let xeroml = try temporaryClient()
        let transport = GatedTransport()
        let judge = gatedJudge(transport, cachePolicy: .disabled)
        let tasks = (0..<3).map { _ in start(judge, on: xeroml) }
        try await waitUntil("three requests are held") { transport.requestCount == 3 }
        #expect(JudgeFlights.shared.inFlight(store: ObjectIdentifier(xeroml)) == (0, 0))
        transport.open(with: GatedTransport.judgeReply(score: 1))
        for task in tasks {
            #expect(try await task.value.first?.value == .numeric(1))
        }
        #expect(transport.requestCount == 3)
    }

    @Test(.timeLimit(.minutes(1))) func twoStoresDoNotShare() async throws {
        let first = try temporaryClient()
        let second = try temporaryClient()
        let transport = GatedTransport()
        let judge = gatedJudge(transport)
        let tasks = [start(judge, on: first), start(judge, on: second), start(judge, on: first), start(judge, on: second)]
        try await waitUntil("one request per store is held, with one waiter each") {
            transport.requestCount == 2 && JudgeFlights.shared.inFlight(store: ObjectIdentifier(first)) == (1, 1)
                && JudgeFlights.shared.inFlight(store: ObjectIdentifier(second)) == (1, 1)
        }
        transport.open(with: GatedTransport.judgeReply(score: 0.25))
        for task in tasks {
            #expect(try await task.value.first?.value == .numeric(0.25))
        }
        #expect(transport.requestCount == 2)
    }
}

// MARK: - End to end, against the loopback server

/// A run of the single-flight experiment: a dataset of `distinct` questions, each `copies` times,
/// `repetitions` each, at `concurrency`, judged with `policy`; `expectedCalls` is the number of
/// distinct judge requests.
struct FlightRun: Sendable, CustomTestStringConvertible {
    var distinct: Int
    var copies: Int
    var repetitions = 3
    var concurrency: Int
    var policy: JudgeCachePolicy
    var expectedCalls: Int

    var evaluations: Int { distinct * copies * repetitions }
    var testDescription: String {
        "\(distinct) questions × \(copies) × \(repetitions) repetitions at \(concurrency), \(policy)"
    }
}

@Suite struct JudgeSingleFlightRunTests {
    /// Judge calls answer 0.9 after 100 ms, so identical requests overlap; anything else is "Paris".
    static let slowJudge: FakeOpenAIServer.Handler = { request in
        isJudgeRequest(request) ? .judge(score: 0.9, reasoning: "Right city.").delayed(by: .milliseconds(100)) : .chat("Paris")
    }

    static func makeQuestions(_ xeroml: XeroML, _ run: FlightRun) async throws {
        let items = (0..<run.copies).flatMap { _ in
            (0..<run.distinct).map { index -> (String, String?, JSONValue?) in ("Question \(index)?", "Paris", nil) }
        }
        try await makeDataset(xeroml, name: "questions", items: items)
    }

    @Test(.timeLimit(.minutes(2)), arguments: [
        FlightRun(distinct: 26, copies: 1, concurrency: 6, policy: .shared, expectedCalls: 26),
        FlightRun(distinct: 13, copies: 2, concurrency: 8, policy: .shared, expectedCalls: 13),
        FlightRun(distinct: 13, copies: 2, concurrency: 8, policy: .perRepetition, expectedCalls: 39),
        FlightRun(distinct: 13, copies: 2, concurrency: 8, policy: .disabled, expectedCalls: 78),
    ])
    func identicalRequestsInFlightMakeOneCall(_ run: FlightRun) async throws {
        let xeroml = try temporaryClient()
        try await Self.makeQuestions(xeroml, run)
        try await withFakeOpenAIServer(handler: Self.slowJudge) { server in
            let judge = JudgeEvaluator(.helpfulness, client: client(server, prices: true), cachePolicy: run.policy)
            let report = try await xeroml.runExperiment(
                name: "flights", datasetName: "questions", evaluators: [judge],
                options: ExperimentOptions(maxConcurrency: run.concurrency, repetitions: run.repetitions)
            ) { item in item.setOutput("Paris") }

            #expect(server.requestCount == run.expectedCalls)
            let summary = try #require(report.summary.score("helpfulness"))
            #expect(summary.count == run.evaluations && summary.unscored == 0)
            #expect(abs((summary.mean ?? 0) - 0.9) < 1e-9)

            // Tracing stays honest: one generation per evaluation, tokens and cost only on the calls.
            var called = 0
            var cached = 0
            var joined = 0
            for result in try await xeroml.results(runID: report.run.id) {
                let score = try #require(result.scores.first { $0.name == "helpfulness" })
                #expect(score.value == .numeric(0.9) && score.comment == "Right city.")
                let generationID = try #require(score.observationID)
                let generation = try #require(try await xeroml.observation(id: generationID))
                if generation.metadata?["cached"] == true {
                    cached += 1
                    #expect(generation.usage.totalTokens == nil && generation.cost == nil)
                    if generation.metadata?["in_flight"] == true {
                        joined += 1
                    }
                    if let origin = generation.metadata?["shared_from"]?.stringValue {
                        // The answer came from a call in flight: its generation carries the tokens.
                        #expect(generation.metadata?["in_flight"] == true)
                        let source = try #require(try await xeroml.observation(id: origin))
                        #expect(source.usage.totalTokens == 15 && source.metadata?["cached"] == nil)
                    }
                } else {
                    called += 1
                    #expect(generation.usage.totalTokens == 15 && generation.cost != nil)
                }
            }
            #expect(called == run.expectedCalls)
            #expect(cached == run.evaluations - run.expectedCalls)
            #expect(report.summary.evaluatorUsage.totalTokens == 15 * run.expectedCalls)
            if run.policy == .shared {
                // Repetitions of one item are judged at the same moment: most waited for a call in flight.
                #expect(joined > 0)
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func twoStoresRunningAtOnceEachAskOnce() async throws {
        let run = FlightRun(distinct: 13, copies: 2, concurrency: 8, policy: .shared, expectedCalls: 13)
        let first = try temporaryClient()
        let second = try temporaryClient()
        try await Self.makeQuestions(first, run)
        try await Self.makeQuestions(second, run)
        try await withFakeOpenAIServer(handler: Self.slowJudge) { server in
            let judge = JudgeEvaluator(.helpfulness, client: client(server))
            let options = ExperimentOptions(maxConcurrency: run.concurrency, repetitions: run.repetitions)
            async let a = first.runExperiment(name: "a", datasetName: "questions", evaluators: [judge], options: options) {
                $0.setOutput("Paris")
            }
            async let b = second.runExperiment(name: "b", datasetName: "questions", evaluators: [judge], options: options) {
                $0.setOutput("Paris")
            }
            let (reportA, reportB) = try await (a, b)
            #expect(reportA.summary.score("helpfulness")?.count == run.evaluations)
            #expect(reportB.summary.score("helpfulness")?.count == run.evaluations)
            #expect(server.requestCount == 2 * run.expectedCalls, "each store asks once per distinct request")
        }
    }
}
