import Foundation
import Testing
import XeroML
import XeroMLJudge
import XeroMLTesting

/// The code of docs/guide.md, run end to end against a loopback model server. `GuideDocsTests`
/// checks that every code block of the guide appears here, line for line.
@Suite(.timeLimit(.minutes(2))) struct GuideExamplesTests {
    /// The model answers capitals; as a judge it gives 0.9.
    static let handler: FakeOpenAIServer.Handler = { request in
        if isJudgeRequest(request) { return .judge(score: 0.9, reasoning: "Helpful.") }
        let prompt = request.messages.last?.content ?? ""
        for (country, city) in [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Italy", "Rome")]
        where prompt.contains(country) { return .chat(city) }
        return .chat("I do not know")
    }

    @Test func theGuideRunsAsWritten() async throws {
        try await withFakeOpenAIServer(handler: Self.handler) { server in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-guide-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let storePath = directory.appendingPathComponent("evals.sqlite").path
            let datasetFile = repositoryRoot.appendingPathComponent("Fixtures/datasets/capitals.jsonl").path
            let model = server.configuration(model: "tiny-model")

        let xeroml = try XeroML(path: storePath)
        try await xeroml.importDataset(name: "capitals", from: datasetFile)
        let dataset = try await xeroml.dataset(named: "capitals")

        let chat = ChatClient(configuration: model)
        @Sendable func answer(_ question: String) async throws -> String {
            try await observe("answer") { span in
                span.setInput(.string(question))
                return try await chat.complete("Answer with the city only: \(question)").content
            }
        }

        let experiment = try await xeroml.createExperiment(
            name: XeroML.timestampedRunName("prompt-v1"), datasetName: "capitals",
            metadata: ["prompt": "Answer with the city only"],
            evaluators: try xeroml.evaluators.make(["exact_match"]))
        for item in dataset.items {
            try await experiment.runItem(item) { run in
                let reply = try await answer(run.input["question"]?.stringValue ?? run.input.displayText)
                run.setOutput(reply)
                run.score(name: "short", value: reply.count <= 20)
            }
        }
        try await experiment.runItemRaw(input: ["question": "Capital of Peru?"], expectedOutput: "Lima") { run in
            run.setOutput(try await answer("Capital of Peru?"))
        }
        print("Open it:", experiment.url)

        try await experiment.finish()
        let results = try await experiment.results()
        let accuracy = results.summary.score("exact_match")?.mean ?? 0
        let misses = results.filter { $0.score("exact_match") == 0 }.map(\.input)
        print(results.format())
        print("accuracy \(accuracy), missed: \(misses)")

        let scoped = try await xeroml.withExperiment(name: XeroML.timestampedRunName("prompt-v1-scoped"),
                                                     datasetName: "capitals") { experiment in
            for item in dataset.items {
                try await experiment.runItem(item) { run in
                    run.setOutput(try await answer(run.input["question"]?.stringValue ?? ""))
                }
            }
            return experiment
        }

        xeroml.registerJudges(configuration: model)
        let judged = try await xeroml.runExperiment(
            name: XeroML.timestampedRunName("prompt-v1-judged"), datasetName: "capitals",
            evaluators: try xeroml.evaluators.make(["exact_match", "helpfulness"]),
            options: ExperimentOptions(maxConcurrency: 4)
        ) { run in
            run.setOutput(try await answer(run.input["question"]?.stringValue ?? ""))
        }
        print(judged.format())

        let gate = try await xeroml.gate(run: judged.run.id, conditions: [.min("exact_match", 0.8), .max("error_rate", 0)])
        print(gate.format())
        if !gate.passed { print("the release is blocked") }

            // What the guide promises, checked.
            #expect(dataset.items.count == 26)
            #expect(results.count == 27)
            #expect(results.contains { $0.input == ["question": "Capital of Peru?"] && $0.output == "Lima" })
            #expect(accuracy > 0 && accuracy < 1)
            #expect(!misses.isEmpty)
            #expect(try await xeroml.run(id: scoped.id)?.status == .finished)
            #expect(abs((judged.summary.score("helpfulness")?.mean ?? 0) - 0.9) < 1e-9)
            #expect(gate.conditions.count == 2)
            let traceID = try #require(results.first?.traceID)
            let trace = try #require(try await xeroml.trace(id: traceID))
            #expect(trace.observations.contains { $0.name == "answer" })
            // The model call is a generation nested under the guide's "answer" span.
            let span = try #require(trace.observations.first { $0.name == "answer" })
            #expect(trace.observations.contains { $0.kind == .generation && $0.parentID == span.id })
        }
    }
}
