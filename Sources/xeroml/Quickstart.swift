import ArgumentParser
import Foundation
import XeroML

/// The README's main job: import the capitals dataset, run two variants of a small deterministic
/// offline task with scores, and print a summary per run.
struct Quickstart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import the sample dataset, run two experiment variants offline, and summarise them.")

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("dataset-file"), help: "The dataset file to import (default: Fixtures/datasets/capitals.jsonl).")
    var datasetFile: String?

    @Option(name: .customLong("dataset"), help: "The dataset's name in the store.")
    var datasetName = "capitals"

    @OptionGroup var runOptions: RunOptions

    @Option(help: "Simulated model latency per answer, in milliseconds.")
    var latencyMs = 0

    func validate() throws {
        guard latencyMs >= 0 else { throw ValidationError("--latency-ms must not be negative") }
    }

    func run() async throws {
        let file = try datasetFile ?? Self.locateFixture()
        let dashboard = try XeroML.configuredDashboardBaseURL()
        let xeroml = try store.open()
        var urls: [URL] = []
        let report = try await xeroml.importDataset(name: datasetName, from: file,
                                                    description: "Capital cities: a sample dataset for the quickstart")
        print("Imported \(file) → \(report)")
        let existing = Set(try await xeroml.runs(datasetName: datasetName).map(\.name))
        let evaluators: [any Evaluator] = [
            ExactMatch(normalization: [.caseInsensitive, .trimWhitespace]),
            LevenshteinSimilarity(name: "similarity", normalization: [.caseInsensitive, .trimWhitespace]),
        ]
        for variant in CapitalsModel.Variant.allCases {
            let model = CapitalsModel(variant: variant, latency: .milliseconds(latencyMs))
            // Re-running the quickstart adds "lookup-v1 #2" and so on. Another process may take a name
            // between the listing and the creation: then try the next one.
            var n = 1
            var finished: ExperimentReport?
            while finished == nil {
                let name = n == 1 ? variant.rawValue : "\(variant.rawValue) #\(n)"
                n += 1
                if existing.contains(name) { continue }
                let (events, continuation) = AsyncStream.makeStream(of: ExperimentProgress.self,
                                                                    bufferingPolicy: .bufferingNewest(1))
                let printer = Task { await ProgressPrinter(label: name).consume(events) }
                let options = ExperimentOptions(maxConcurrency: runOptions.concurrency, repetitions: runOptions.repetitions, progress: continuation)
                do {
                    let datasetName = self.datasetName
                    finished = try await withInterruptHandling {
                        try await xeroml.runExperiment(
                            name: name, datasetName: datasetName, description: variant.summary,
                            metadata: ["model": .string(variant.modelName)], evaluators: evaluators, options: options
                        ) { run in
                            let question = run.input["question"]?.stringValue ?? run.input.displayText
                            let answer = try await model.answer(question)
                            run.setOutput(.string(answer))
                            run.score(name: "answered", value: answer != CapitalsModel.unknown)
                        }
                    }
                } catch let error as XeroMLError where error.code == .alreadyExists {
                    continuation.finish()
                    await printer.value
                    continue
                } catch is CancellationError {
                    await printer.value
                    print("Run \"\(name)\" interrupted; committed results are kept in \(xeroml.path).")
                    throw interruptedExitCode
                }
                await printer.value
            }
            guard let finished else { continue }
            print("")
            print(finished.format())
            let url = dashboard.appendingPathComponent("runs").appendingPathComponent(finished.run.id)
            urls.append(url)
            print("  url: \(url)")
        }
        print("")
        print("Stored in \(xeroml.path). Next:")
        print("  xeroml runs list --db \(xeroml.path)")
        print("  xeroml compare lookup-v1 lookup-v2 --dataset \(datasetName) --db \(xeroml.path)")
        print("  xeroml gate lookup-v2 --min exact_match=0.9 --baseline lookup-v1 --no-significant-regression "
              + "--dataset \(datasetName) --db \(xeroml.path)")
        print("")
        print("Open the runs in the dashboard: `xeroml ui --db \(xeroml.path)`, then")
        for url in urls { print("  \(url)") }
    }

    /// Finds the sample dataset from the working directory, else next to this source tree.
    static func locateFixture() throws -> String {
        let relative = "Fixtures/datasets/capitals.jsonl"
        if FileManager.default.fileExists(atPath: relative) { return relative }
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidate = sourceRoot.appendingPathComponent(relative).path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        throw ValidationError("cannot find \(relative); pass --dataset-file PATH")
    }
}

/// A deterministic offline stand-in for a model answering capital-city questions, traced like a real
/// one: a retrieval span and a generation with model name, token usage and cost.
struct CapitalsModel: Sendable {
    enum Variant: String, CaseIterable, Sendable {
        case lookupV1 = "lookup-v1"
        case lookupV2 = "lookup-v2"

        var modelName: String { "xeroml-quickstart-\(rawValue)" }
        var summary: String {
            switch self {
            case .lookupV1: "A small table of well-known capitals, English questions only."
            case .lookupV2: "A larger table with country aliases and French questions."
            }
        }
    }

    struct UnsupportedLanguage: Error, CustomStringConvertible {
        var question: String
        var description: String { "unsupported language in question \"\(question)\"" }
    }

    static let unknown = "I don't know"
    /// USD per 1,000 tokens, to show cost accounting.
    static let pricePerThousandTokens = 0.002

    let variant: Variant
    var latency: Duration = .zero

    private static let small: [String: String] = [
        "france": "Paris", "germany": "Berlin", "italy": "Rome", "spain": "Madrid", "japan": "Tokyo",
        "china": "Beijing", "egypt": "Cairo", "mexico": "Mexico City", "argentina": "Buenos Aires",
        "united states": "Washington", "portugal": "Lisbon", "australia": "Sydney",
    ]
    private static let large: [String: String] = small.merging([
        "united states": "Washington, D.C.", "australia": "Canberra", "netherlands": "Amsterdam",
        "switzerland": "Zurich", "new zealand": "Wellington", "canada": "Ottawa", "brazil": "Brasilia",
        "peru": "Lima", "india": "New Delhi", "turkey": "Ankara", "vietnam": "Hanoi", "nigeria": "Abuja",
        "kenya": "Nairobi", "south africa": "Pretoria", "morocco": "Rabat", "norvège": "Oslo",
    ]) { _, new in new }

    func answer(_ question: String) async throws -> String {
        let country = try await observe("parse-question", input: .string(question)) { span in
            let lowered = question.lowercased()
            let english = lowered.range(of: "capital of ")
            let french = lowered.range(of: "capitale de la ") ?? lowered.range(of: "capitale du ")
            guard let marker = english ?? (variant == .lookupV2 ? french : nil) else {
                throw UnsupportedLanguage(question: question)
            }
            var rest = String(lowered[marker.upperBound...])
            if rest.hasPrefix("the ") { rest.removeFirst(4) }
            let country = rest.trimmingCharacters(in: CharacterSet(charactersIn: "?  ").union(.whitespaces))
            span.setOutput(.string(country))
            return country
        }
        let facts = await observe("retrieve") { span in
            let table = variant == .lookupV1 ? Self.small : Self.large
            let fact = table[country]
            span.setOutput(fact.map { .string($0) } ?? .null)
            return fact
        }
        return try await observe("generate", as: .generation) { generation in
            if latency > .zero { try await Task.sleep(for: latency) }
            let answer = facts ?? Self.unknown
            let promptTokens = question.split(separator: " ").count + 12
            let completionTokens = answer.split(separator: " ").count
            generation.setModel(variant.modelName, parameters: ["temperature": 0])
            generation.setUsage(promptTokens: promptTokens, completionTokens: completionTokens)
            generation.setCost(Double(promptTokens + completionTokens) / 1000 * Self.pricePerThousandTokens)
            generation.setOutput(.string(answer))
            return answer
        }
    }
}
