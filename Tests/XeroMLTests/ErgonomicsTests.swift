import Foundation
import Testing
@testable import XeroML
import XeroMLTesting

/// The API reads the way the guide's workflows are written: literals mean one thing, outputs take
/// strings and Encodable values, names clash with a way out, errors say what to do.
@Suite(.timeLimit(.minutes(1))) struct ErgonomicsTests {
    struct Answer: Encodable { var city: String; var confidence: Double }

    @Test func scoreLiteralsAndOutputsMeanOneThingEach() async throws {
        let xeroml = try temporaryClient()
        let experiment = try await xeroml.createExperiment(name: "literals")
        let answer = "Paris"
        try await experiment.runItemRaw(input: "Capital of France?") { run in
            run.setOutput(answer)
            run.score(name: "int", value: 1)
            run.score(name: "bool", value: true)
            run.score(name: "double", value: 0.5)
            run.score(name: "grade", value: "A")
        }
        try await experiment.runItemRaw(input: "structured") { run in
            try run.setOutput(encoding: Answer(city: "Lima", confidence: 0.9))
        }
        let results = try await experiment.results()
        let first = try #require(results.first { $0.input == "Capital of France?" })
        #expect(first.output == .string("Paris"))
        #expect(first.scoreValue("int") == .numeric(1))
        #expect(first.scoreValue("bool") == .boolean(true))
        #expect(first.scoreValue("double") == .numeric(0.5))
        #expect(first.scoreValue("grade") == .categorical("A"))
        let second = try #require(results.first { $0.input == "structured" })
        #expect(second.output == ["city": "Lima", "confidence": 0.9])
        #expect(results.datasetName == nil && results.runName == "literals")
    }

    @Test func aTakenRunNameSaysHowToGetAFreshOneOrContinue() async throws {
        let xeroml = try temporaryClient()
        _ = try await xeroml.createExperiment(name: "nightly")
        let error = await #expect(throws: XeroMLError.self) { try await xeroml.createExperiment(name: "nightly") }
        #expect(error?.code == .alreadyExists)
        #expect(error?.message.contains("timestampedRunName") == true)
        #expect(error?.message.contains("resume") == true)
        let fresh = XeroML.timestampedRunName("nightly", at: Date(timeIntervalSince1970: 1_764_593_043))
        #expect(fresh == "nightly 2025-12-01 12:44:03")
        _ = try await xeroml.createExperiment(name: XeroML.timestampedRunName("nightly"))
    }

    @Test func anUnregisteredJudgeNameSaysHowToRegisterIt() async throws {
        let xeroml = try temporaryClient()
        let error = #expect(throws: XeroMLError.self) { try xeroml.evaluators.make(["exact_match", "helpfulness"]) }
        #expect(error?.message.contains("registerJudges()") == true, "\(String(describing: error))")
        #expect(error?.message.contains("XEROML_JUDGE_BASE_URL") == true)
        let unknown = #expect(throws: XeroMLError.self) { try xeroml.evaluators.make(["politeness"]) }
        #expect(unknown?.message.contains("known: ") == true)
        #expect(unknown?.message.contains("evaluators.register") == true)
    }

    @Test func expectGateTakesTheExperimentTheTestRan() async throws {
        let xeroml = try temporaryClient()
        let report = try await xeroml.withExperiment(name: "gated") { experiment in
            try await experiment.runItemRaw(input: 1) { run in run.score(name: "accuracy", value: true) }
            return experiment
        }
        try await expectGate(report, [.min("accuracy", 0.5)])
    }

    @Test func theCLIPrintsItsVersionAndRecordsItWithEachRun() async throws {
        let result = try await runCLI(["--version"])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == XeroML.version)
        let xeroml = try temporaryClient()
        let run = try await xeroml.runExperiment(name: "versioned", items: [LocalItem(input: 1)]) { run in run.setOutput(1) }
        #expect(run.run.configuration?["xeroml_version"] == .string(XeroML.version))
    }

    @Test func declaredScoreRangesClipIntervalsForEveryReader() async throws {
        let xeroml = try temporaryClient()
        let items = (0..<12).map { LocalItem(input: .int(Int64($0)), expectedOutput: "Paris") }
        let report = try await xeroml.runExperiment(name: "similar", items: items, evaluators: [LevenshteinSimilarity()]) { run in
            run.setOutput(run.input == 3 ? "Lyon" : "Paris")
        }
        let stored = try await xeroml.summary(runID: report.run.id)
        let read = try await xeroml.results(runID: report.run.id).summary
        #expect(stored.runName == "similar" && report.summary.runName == "similar" && read.runName == "similar")
        for summary in [report.summary, stored, read] {
            let interval = try #require(summary.scores.first { $0.name == "levenshtein" }?.confidenceInterval95)
            #expect(interval.upperBound <= 1, "\(interval)")
        }
    }
}

/// A comparison can be reported without a second query: each item carries its external id and input.
@Suite(.timeLimit(.minutes(1))) struct ComparedItemDetailsTests {
    @Test func comparedItemsCarryTheirExternalIDAndInput() async throws {
        let xeroml = try temporaryClient()
        let lines = (0..<5).map { #"{"id": "q\#($0)", "input": {"n": \#($0)}, "expected_output": \#($0 * 2)}"# }
        try await xeroml.importDataset(name: "numbers", from: writeFile("numbers.jsonl", lines.joined(separator: "\n")))
        for name in ["a", "b"] {
            try await xeroml.runExperiment(name: name, datasetName: "numbers", evaluators: [ExactMatch()]) { run in
                run.setOutput(name == "a" ? 0 : Int((run.input["n"]?.doubleValue ?? 0) * 2))
            }
        }
        #expect(try await xeroml.summary(runID: "a").datasetName == "numbers")
        let comparison = try await xeroml.compare(baseline: "a", candidates: ["b"])
        #expect(comparison.items.count == 5)
        #expect(comparison.items.map(\.externalID) == ["q0", "q1", "q2", "q3", "q4"])
        #expect(comparison.items.map(\.input) == (0..<5).map { ["n": .int(Int64($0))] })
    }
}
