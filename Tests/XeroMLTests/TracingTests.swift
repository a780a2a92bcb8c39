import Foundation
import Testing
@testable import XeroML

@Suite(.timeLimit(.minutes(3))) struct TracingTests {
    struct Failure: Error, CustomStringConvertible { var description: String { "model unavailable" } }

    @Test func nestsAcrossAsyncLetAndTaskGroups() async throws {
        let xeroml = try temporaryClient()
        let experiment = try await xeroml.createExperiment(name: "nesting")
        let result = try await experiment.runItemRaw(input: "q") { run in
            let answer = await observe("pipeline") { _ in
                async let left = observe("left") { span in
                    try? await Task.sleep(for: .milliseconds(5))
                    span.setOutput("L")
                    return "L"
                }
                async let right = observe("right") { _ in
                    await observe("right-child") { _ in "R" }
                }
                let parts = await withTaskGroup(of: String.self) { group in
                    for i in 0..<3 {
                        group.addTask { await observe("worker-\(i)") { _ in "w\(i)" } }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                return await left + right + parts.sorted().joined()
            }
            run.setOutput(.string(answer))
        }
        try await xeroml.flush()
        let trace = try #require(try await xeroml.trace(id: result.traceID!))
        let byName = Dictionary(uniqueKeysWithValues: trace.observations.map { ($0.name, $0) })
        let root = try #require(byName["nesting"])
        let pipeline = try #require(byName["pipeline"])
        #expect(root.parentID == nil)
        #expect(pipeline.parentID == root.id)
        #expect(byName["left"]?.parentID == pipeline.id)
        #expect(byName["right"]?.parentID == pipeline.id)
        #expect(byName["right-child"]?.parentID == byName["right"]?.id)
        for i in 0..<3 { #expect(byName["worker-\(i)"]?.parentID == pipeline.id) }
        #expect(byName["left"]?.output == "L")
        #expect(trace.observations.count == 8)
        #expect(Set(trace.observations.map(\.traceID)) == [trace.id])
        #expect(result.output == "LRw0w1w2")
    }

    @Test func topLevelObserveWritesItsOwnTrace() async throws {
        let xeroml = try temporaryClient()
        let (traceID, childID) = await xeroml.withActive {
            await observe("handle-request", input: ["user": "u1"]) { span in
                let childID = await observe("lookup") { child -> String in
                    child.setOutput("found")
                    return child.id
                }
                span.setOutput("done")
                return (span.traceID, childID)
            }
        }
        try await xeroml.flush()
        let trace = try #require(try await xeroml.trace(id: traceID))
        #expect(trace.name == "handle-request")
        #expect(trace.runID == nil)
        #expect(trace.input == ["user": "u1"])
        #expect(trace.output == "done")
        #expect(trace.observations.map(\.name) == ["handle-request", "lookup"])
        #expect(trace.observations[1].id == childID)
        #expect(trace.observations[1].parentID == trace.observations[0].id)
    }

    @Test func aThrowingBodyIsRecordedAtErrorLevelAndRethrown() async throws {
        let xeroml = try temporaryClient()
        var traceID = ""
        await #expect(throws: Failure.self) {
            try await xeroml.withActive {
                try await observe("outer") { span in
                    traceID = span.traceID
                    try await observe("call-model", as: .generation) { _ in throw Failure() }
                }
            }
        }
        try await xeroml.flush()
        let trace = try #require(try await xeroml.trace(id: traceID))
        #expect(trace.observations.count == 2)
        for observation in trace.observations {
            #expect(observation.level == .error)
            #expect(observation.statusMessage == "model unavailable")
        }
    }

    @Test func aCapturedContextCrossesTaskDetached() async throws {
        let xeroml = try temporaryClient()
        let experiment = try await xeroml.createExperiment(name: "detached")
        let result = try await experiment.runItemRaw(input: "q") { _ in
            let context = TraceContext.current
            #expect(context != nil)
            await Task.detached {
                #expect(TraceContext.current == nil)  // task-locals do not cross Task.detached
                await withTraceContext(context) {
                    await observe("in-detached") { _ in }
                }
            }.value
        }
        try await xeroml.flush()
        let trace = try #require(try await xeroml.trace(id: result.traceID!))
        let detached = try #require(trace.observations.first { $0.name == "in-detached" })
        #expect(detached.parentID == trace.observations.first { $0.parentID == nil }?.id)
    }

    @Test func observeRunsUntracedWithoutAContextAndReturnsTheValue() async {
        let value = await observe("plain") { _ in 42 }
        #expect(value == 42)
    }
}
