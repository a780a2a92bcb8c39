import Foundation
import Testing
import XeroMLSQLite
@testable import XeroML

@Suite struct StoreTests {
    @Test func datasetsAndItemsRoundTrip() async throws {
        let xeroml = try temporaryClient()
        let created = try await xeroml.createDataset(name: "qa", description: "questions", metadata: ["owner": "evals"])
        #expect(created.version == 0)
        let item = try await xeroml.createDatasetItem(
            datasetName: "qa", input: ["question": "2+2?", "lang": "en"], expectedOutput: 4,
            metadata: ["difficulty": "easy", "tags": ["math"]], id: "q1")
        try await xeroml.createDatasetItem(datasetName: "qa", input: "plain text input")
        let dataset = try await xeroml.dataset(named: "qa")
        #expect(dataset.id == created.id)
        #expect(dataset.description == "questions")
        #expect(dataset.metadata == ["owner": "evals"])
        #expect(dataset.version == 2)
        #expect(dataset.items.count == 2)
        let first = dataset.items[0]
        #expect(first == item)
        #expect(first.externalID == "q1")
        #expect(first.input == ["question": "2+2?", "lang": "en"])
        #expect(first.expectedOutput == 4)
        #expect(first.metadata == ["difficulty": "easy", "tags": ["math"]])
        #expect(first.status == .active)
        #expect(dataset.items[1].input == "plain text input")
        #expect(dataset.items[1].expectedOutput == nil)

        // Same id, same content: nothing changes. Different content: a new version, old row archived.
        try await xeroml.createDatasetItem(datasetName: "qa", input: ["question": "2+2?", "lang": "en"], expectedOutput: 4,
                                           metadata: ["difficulty": "easy", "tags": ["math"]], id: "q1")
        #expect(try await xeroml.dataset(named: "qa").version == 2)
        let updated = try await xeroml.createDatasetItem(datasetName: "qa", input: ["question": "2+2?", "lang": "en"],
                                                         expectedOutput: "four", id: "q1")
        let after = try await xeroml.dataset(named: "qa")
        #expect(after.version == 3)
        #expect(after.items.map(\.id).contains(updated.id))
        #expect(!after.items.map(\.id).contains(item.id))
        let old = try await xeroml.datasetItem(id: item.id)
        #expect(old?.status == .archived)
        #expect(old?.archivedVersion == 3)

        try await xeroml.archiveDatasetItem(id: updated.id)
        #expect(try await xeroml.dataset(named: "qa").items.count == 1)
        let summaries = try await xeroml.datasets()
        #expect(summaries.map(\.name) == ["qa"])
        #expect(summaries[0].itemCount == 1 && summaries[0].archivedCount == 2 && summaries[0].version == 4)

        await #expect(throws: XeroMLError.self) { try await xeroml.createDataset(name: "qa") }
        do { _ = try await xeroml.dataset(named: "missing") } catch let error as XeroMLError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("missing"))
        }
    }

    @Test func everyEntityOfAnExperimentRoundTrips() async throws {
        let xeroml = try temporaryClient()
        try await xeroml.createDataset(name: "d")
        let item = try await xeroml.createDatasetItem(datasetName: "d", input: ["q": "capital of France"],
                                                      expectedOutput: "Paris", metadata: ["k": 1])
        let experiment = try await xeroml.createExperiment(name: "v1", datasetName: "d", description: "first try",
                                                           metadata: ["model": "m"])
        #expect(experiment.datasetVersion == 1)
        let result = try await experiment.runItem(item) { run in
            #expect(run.input == ["q": "capital of France"])
            #expect(run.expectedOutput == "Paris")
            #expect(run.metadata == ["k": 1])
            await observe("generate", as: .generation, input: "prompt") { generation in
                generation.setModel("model-x", parameters: ["temperature": 0.5])
                generation.setUsage(promptTokens: 10, completionTokens: 3)
                generation.setCost(0.25)
                generation.setOutput("Paris")
                generation.setMetadata(["attempt": 1])
                generation.score(name: "fluency", value: .categorical("good"), comment: "reads well")
                event("cache-miss", input: ["key": "k"], level: .warning, message: "cold")
            }
            run.setOutput("Paris")
            run.score(name: "exact", value: true)
            run.score(name: "similarity", value: 0.75, comment: "close")
            run.score(name: "label", value: .categorical("correct"))
            run.score(name: "note", value: .text("free text"))
        }
        try await experiment.score(name: "overall", value: 0.9, comment: "run-level")
        try await experiment.finish()

        let results = try await experiment.results()
        #expect(results.run.status == .finished)
        #expect(results.run.description == "first try")
        #expect(results.run.metadata == ["model": "m"])
        #expect(results.run.finishedAt != nil)
        #expect(results.count == 1)
        let stored = results[0]
        #expect(stored.id == result.id)
        #expect(stored.datasetItemID == item.id)
        #expect(stored.input == ["q": "capital of France"])
        #expect(stored.expectedOutput == "Paris")
        #expect(stored.metadata == ["k": 1])
        #expect(stored.output == "Paris")
        #expect(stored.error == nil)
        #expect(stored.latency > .zero)
        #expect(stored.score("exact") == 1)
        #expect(stored.score("similarity") == 0.75)
        #expect(stored.scoreValue("label") == .categorical("correct"))
        #expect(stored.scoreValue("note") == .text("free text"))
        #expect(stored.scoreValue("fluency") == .categorical("good"))
        #expect(stored.scores.first { $0.name == "similarity" }?.comment == "close")
        #expect(results.runScores.map(\.name) == ["overall"])
        #expect(results.runScores[0].value == .numeric(0.9))
        #expect(results.usage.promptTokens == 10 && results.usage.completionTokens == 3 && results.usage.cost == 0.25)

        let traceID = try #require(stored.traceID)
        let trace = try #require(try await xeroml.trace(id: traceID))
        #expect(trace.runID == experiment.id)
        #expect(trace.output == "Paris")
        #expect(trace.observations.count == 3)
        let root = try #require(trace.observations.first { $0.parentID == nil })
        #expect(root.name == "v1" && root.kind == .span)
        let generation = try #require(trace.observations.first { $0.kind == .generation })
        #expect(generation.parentID == root.id)
        #expect(generation.model == "model-x")
        #expect(generation.modelParameters == ["temperature": 0.5])
        #expect(generation.usage == TokenUsage(promptTokens: 10, completionTokens: 3, totalTokens: 13))
        #expect(generation.cost == 0.25)
        #expect(generation.input == "prompt" && generation.output == "Paris")
        #expect(generation.metadata == ["attempt": 1])
        #expect(generation.duration != nil)
        let cacheMiss = try #require(trace.observations.first { $0.kind == .event })
        #expect(cacheMiss.parentID == generation.id)
        #expect(cacheMiss.level == .warning && cacheMiss.statusMessage == "cold")
        let fluency = try #require(trace.scores.first { $0.name == "fluency" })
        #expect(fluency.observationID == generation.id)
        #expect(fluency.comment == "reads well")

        let runs = try await xeroml.runs(datasetName: "d")
        #expect(runs.map(\.name) == ["v1"])
        #expect(runs[0].itemCount == 1 && runs[0].errorCount == 0 && runs[0].datasetName == "d")
    }

    @Test func rawItemsKeepTheirOwnInput() async throws {
        let xeroml = try temporaryClient()
        let experiment = try await xeroml.createExperiment(name: "local")
        try await experiment.runItemRaw(input: ["text": "hello"], expectedOutput: "HELLO", metadata: ["src": "inline"]) { run in
            run.setOutput(.string(run.input["text"]!.stringValue!.uppercased()))
            run.score(name: "exact", value: run.output == run.expectedOutput)
        }
        let results = try await experiment.results()
        #expect(results.count == 1)
        #expect(results[0].datasetItemID == nil)
        #expect(results[0].input == ["text": "hello"])
        #expect(results[0].expectedOutput == "HELLO")
        #expect(results[0].metadata == ["src": "inline"])
        #expect(results[0].score("exact") == 1)
        #expect(experiment.url.absoluteString.hasSuffix("/runs/\(experiment.id)"))
    }

    @Test func resultsSurviveClosingAndReopeningTheFile() async throws {
        let path = temporaryDirectory().appendingPathComponent("reopen.sqlite").path
        var runID = ""
        do {
            let xeroml = try XeroML(path: path)
            try await xeroml.createDataset(name: "d")
            for i in 0..<50 { try await xeroml.createDatasetItem(datasetName: "d", input: .int(Int64(i))) }
            let experiment = try await xeroml.createExperiment(name: "r", datasetName: "d")
            runID = experiment.id
            for item in try await xeroml.dataset(named: "d").items {
                try await experiment.runItem(item) { run in
                    run.setOutput(.int((run.input.doubleValue.map { Int64($0) } ?? 0) * 2))
                    run.score(name: "ok", value: true)
                }
            }
            try await xeroml.flush()
        }
        let reopened = try XeroML(path: path)
        let results = try await reopened.results(runID: runID)
        #expect(results.count == 50)
        #expect(results.allSatisfy { $0.output == .int(($0.input.doubleValue.map { Int64($0) } ?? 0) * 2) && $0.score("ok") == 1 })
        #expect(results.run.status == .running)  // never finished: stays resumable
    }

    @Test func aSecondResultForTheSameItemAndRepetitionIsRefused() async throws {
        let xeroml = try temporaryClient()
        try await xeroml.createDataset(name: "d")
        let item = try await xeroml.createDatasetItem(datasetName: "d", input: "x")
        let experiment = try await xeroml.createExperiment(name: "dup", datasetName: "d")
        try await experiment.runItem(item) { $0.setOutput("first") }
        try await experiment.runItem(item, repetition: 1) { $0.setOutput("second repetition") }
        try await experiment.runItem(item) { $0.setOutput("duplicate") }
        do {
            try await xeroml.flush()
            Issue.record("flush should report the duplicate")
        } catch let error as XeroMLError {
            #expect(error.code == .writeFailed)
            #expect(error.message.contains("already has a result for dataset item \(item.id) repetition 0"))
        }
        let results = try await experiment.results()
        #expect(results.map(\.output) == ["first", "second repetition"])
        #expect(results.map(\.repetition) == [0, 1])
    }

    @Test func runNamesAreUniquePerDataset() async throws {
        let xeroml = try temporaryClient()
        try await xeroml.createDataset(name: "a")
        try await xeroml.createDataset(name: "b")
        _ = try await xeroml.createExperiment(name: "same", datasetName: "a")
        _ = try await xeroml.createExperiment(name: "same", datasetName: "b")
        do {
            _ = try await xeroml.createExperiment(name: "same", datasetName: "a")
            Issue.record("expected alreadyExists")
        } catch let error as XeroMLError {
            #expect(error.code == .alreadyExists)
        }
        await #expect(throws: XeroMLError.self) { try await xeroml.createExperiment(name: "x", datasetName: "nope") }
        await #expect(throws: XeroMLError.self) { try await xeroml.createExperiment(name: "  ") }
    }

    @Test func itemsOfAnotherDatasetAndFinishedRunsAreRefused() async throws {
        let xeroml = try temporaryClient()
        try await xeroml.createDataset(name: "a")
        try await xeroml.createDataset(name: "b")
        let other = try await xeroml.createDatasetItem(datasetName: "b", input: "x")
        let experiment = try await xeroml.createExperiment(name: "r", datasetName: "a")
        await #expect(throws: XeroMLError.self) { try await experiment.runItem(other) { _ in } }
        try await experiment.finish()
        do {
            try await experiment.runItemRaw(input: "late") { _ in }
            Issue.record("a finished run must refuse results")
        } catch let error as XeroMLError {
            #expect(error.code == .runNotWritable)
        }
    }

    @Test func refusesAFileWrittenByANewerSchema() async throws {
        let path = temporaryDirectory().appendingPathComponent("newer.sqlite").path
        _ = try XeroML(path: path)
        let db = try Connection(path: path)
        try db.run("INSERT INTO xeroml_migrations(name) VALUES ('9999-from-the-future')")
        db.close()
        do {
            _ = try XeroML(path: path)
            Issue.record("a newer file must be refused")
        } catch let error as XeroMLError {
            #expect(error.code == .newerSchema)
            #expect(error.message.contains("newer version of XeroML"))
            #expect(error.message.contains("9999-from-the-future"))
        }
    }

    @Test func refusesAnSQLiteFileThatIsNotAStore() throws {
        let path = temporaryDirectory().appendingPathComponent("other.sqlite").path
        let db = try Connection(path: path)
        try db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        db.close()
        do {
            _ = try XeroML(path: path)
            Issue.record("expected notAXeroMLFile")
        } catch let error as XeroMLError {
            #expect(error.code == .notAXeroMLFile)
        }
        let garbage = writeFile("garbage.sqlite", String(repeating: "not a database ", count: 100))
        #expect(throws: XeroMLError.self) { try XeroML(path: garbage) }
    }

    @Test func streamsDatasetItemsPageByPage() async throws {
        let xeroml = try temporaryClient()
        let lines = (0..<2_500).map { #"{"id": "i\#($0)", "input": \#($0)}"# }.joined(separator: "\n")
        try await xeroml.importDataset(name: "big", from: writeFile("big.jsonl", lines))
        var seen: [Int] = []
        for try await item in xeroml.datasetItems(datasetName: "big", pageSize: 1_000) {
            seen.append(Int(item.input.doubleValue!))
        }
        #expect(seen.sorted() == Array(0..<2_500))
        #expect(Set(seen).count == 2_500)
    }
}

@Suite struct OpenTests {
    @Test func openingAsynchronouslyGivesTheSameStore() async throws {
        let path = temporaryDirectory().appendingPathComponent("async-open.sqlite").path
        let xeroml = try await XeroML.open(path: path)
        try await xeroml.createDataset(name: "d")
        let again = try await XeroML.open(path: path)
        #expect(try await again.datasets().map(\.name) == ["d"])
        await #expect(throws: XeroMLError.self) { try await XeroML.open(path: "/no/such/dir/x.sqlite") }
    }
}
