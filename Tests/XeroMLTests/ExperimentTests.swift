import Foundation
import Testing
@testable import XeroML

@Suite(.timeLimit(.minutes(3))) struct ExperimentTests {
    enum ModelError: Error { case rateLimited }

    @Test func aThrowingTaskIsRecordedAndTheExperimentGoesOn() async throws {
        let xeroml = try temporaryClient()
        try await xeroml.createDataset(name: "d")
        for i in 0..<5 { try await xeroml.createDatasetItem(datasetName: "d", input: .int(Int64(i)), expectedOutput: .int(Int64(i))) }
        let experiment = try await xeroml.createExperiment(name: "flaky", datasetName: "d")
        for item in try await xeroml.dataset(named: "d").items {
            let result = try await experiment.runItem(item) { run in
                if run.input == 2 { throw ModelError.rateLimited }
                run.setOutput(run.input)
                run.score(name: "exact", value: run.output == run.expectedOutput)
            }
            #expect((result.error != nil) == (item.input == 2))
        }
        try await experiment.finish()
        let results = try await experiment.results()
        #expect(results.count == 5)
        let failed = results.filter { $0.error != nil }
        #expect(failed.count == 1)
        #expect(failed[0].input == 2)
        #expect(failed[0].error == "ModelError.rateLimited")
        #expect(failed[0].output == nil)
        #expect(results.filter { $0.error == nil }.allSatisfy { $0.score("exact") == 1 })
        #expect(results.run.errorCount == 1)
        let summary = results.summary
        #expect(summary.itemCount == 5 && summary.errorCount == 1)
        #expect(summary.score("exact")?.count == 4)
        #expect(summary.score("exact")?.passRate == 1)
        let trace = try #require(try await xeroml.trace(id: failed[0].traceID!))
        #expect(trace.observations[0].level == .error)
        #expect(results.format().contains("items: 5, 1 failed"))
    }

    @Test func concurrentItemsAreAllRecorded() async throws {
        let xeroml = try temporaryClient()
        let experiment = try await xeroml.createExperiment(name: "parallel")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    try await experiment.runItemRaw(input: .int(Int64(i))) { run in
                        await observe("work") { _ in try? await Task.sleep(for: .milliseconds(1)) }
                        run.setOutput(.int(Int64(i) * Int64(i)))
                        run.score(name: "square", value: Double(i * i))
                    }
                }
            }
            try await group.waitForAll()
        }
        let results = try await experiment.results()
        #expect(results.count == 200)
        #expect(Set(results.map(\.input)) == Set((0..<200).map { JSONValue.int(Int64($0)) }))
        #expect(results.allSatisfy { $0.output == .int(Int64($0.input.doubleValue!) * Int64($0.input.doubleValue!)) })
        let stats = try #require(results.summary.score("square"))
        #expect(stats.mean == Double((0..<200).map { $0 * $0 }.reduce(0, +)) / 200)
    }

    @Test func cancellationRecordsNothingForTheCancelledItem() async throws {
        let xeroml = try temporaryClient()
        let experiment = try await xeroml.createExperiment(name: "cancel")
        let task = Task {
            try await experiment.runItemRaw(input: "slow") { _ in try await Task.sleep(for: .seconds(30)) }
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        let results = try await experiment.results()
        #expect(results.isEmpty)
    }
}
