import Foundation
import XeroML

/// The code of README.md's examples, compiled with the tests so it cannot stop compiling
/// (`GuideDocsTests` checks the README's blocks are these lines). Not run: it reads a file and calls
/// a model of yours.
enum ReadmeExamples {
    /// A model reply, as `myModel` in the README returns it.
    struct Reply { var text: String; var promptTokens: Int; var completionTokens: Int }
    /// The README's stand-in for your model.
    static func myModel(_ input: JSONValue) async throws -> Reply { Reply(text: input.displayText, promptTokens: 1, completionTokens: 1) }

    /// README.md, block 1.
    static func block1() async throws {

        let xeroml = try XeroML(path: "evals.sqlite")            // or XeroML.shared(), configured by XEROML_DB
        try await xeroml.importDataset(name: "capitals", from: "capitals.jsonl")
        let dataset = try await xeroml.dataset(named: "capitals")

        let experiment = try await xeroml.createExperiment(name: "prompt-v2", datasetName: "capitals",
                                                           metadata: ["model": "gpt-4o-mini"])
        for item in dataset.items {
            try await experiment.runItem(item) { run in            // a thrown error is recorded; the run goes on
                let answer = try await observe("answer", as: .generation) { generation in
                    generation.setModel("gpt-4o-mini")
                    let reply = try await myModel(run.input)        // your code; nested observe() calls become spans
                    generation.setUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
                    return reply.text
                }
                run.setOutput(answer)
                run.score(name: "accuracy", value: answer == run.expectedOutput?.stringValue)
            }
        }
        try await experiment.finish()                              // flushes and marks the run finished
        let results = try await experiment.results()
        print(results.format())                                    // per-score mean, 95% CI, pass rates, latency
        print(results.filter { $0.score("accuracy") == 0 }.map(\.input), experiment.url)
    }

    /// README.md, block 2 (it goes on from block 1's `xeroml`).
    static func block2(xeroml: XeroML) async throws {
        let report = try await xeroml.runExperiment(
            name: "prompt-v3", datasetName: "capitals",
            evaluators: [ExactMatch(normalization: [.caseInsensitive, .trimWhitespace]), LevenshteinSimilarity()],
            options: ExperimentOptions(maxConcurrency: 8, timeout: .seconds(60), repetitions: 3)
        ) { run in
            run.setOutput(try await myModel(run.input).text)   // retried on RetryableError
        }
        let comparison = try await xeroml.compare(baseline: "prompt-v2", candidates: ["prompt-v3"])
        let gate = try await xeroml.gate(run: report.run.id, conditions: [.min("exact_match", 0.9), .noSignificantRegression],
                                         baseline: "prompt-v2")
        print(report.format(), comparison.significantRegressions.map(\.name), gate.format())
    }
}
