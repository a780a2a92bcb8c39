import Foundation
public import Testing
public import XeroML

/// Helpers to put evaluation quality under test: run an experiment in a test and fail the test with a
/// readable report when a threshold or a significant regression is hit.
///
/// ```swift
/// @Test func answersStayAccurate() async throws {
///     let xeroml = try XeroMLTest.temporaryClient()
///     try await xeroml.importDataset(name: "qa", from: "Fixtures/qa.jsonl")
///     let report = try await xeroml.runExperiment(name: "candidate", datasetName: "qa",
///                                                 evaluators: [ExactMatch()]) { run in … }
///     try await expectGate(report, in: xeroml, [.min("exact_match", 0.9)])
/// }
/// ```
public enum XeroMLTest {
    /// A client on a new file in a fresh temporary directory: one per test, nothing shared.
    public static func temporaryClient(named name: String = "xeroml.sqlite") throws -> XeroML {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("xeroml-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try XeroML(path: directory.appendingPathComponent(name).path)
    }
}

/// Records a Swift Testing issue with the gate's report (failed conditions and the items behind them)
/// when `report` did not pass. Returns whether it passed.
@discardableResult
public func expectGate(_ report: GateReport, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if !report.passed {
        Issue.record(Comment(rawValue: report.format()), sourceLocation: sourceLocation)
    }
    return report.passed
}

/// Checks `conditions` against a finished run (comparing with `baseline` when given) and records a
/// Swift Testing issue with the report when one fails.
@discardableResult
public func expectGate(_ run: ExperimentReport, in client: XeroML, _ conditions: [GateCondition],
                       baseline: String? = nil, options: ComparisonOptions = ComparisonOptions(), allowPartial: Bool = false,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws -> GateReport {
    let report = try await client.gate(run: run.run.id, conditions: conditions, baseline: baseline,
                                       datasetName: run.run.datasetName, options: options, allowPartial: allowPartial)
    expectGate(report, sourceLocation: sourceLocation)
    return report
}

/// Checks `conditions` against the run of `experiment` (which should be finished: see
/// ``XeroML/gate(run:conditions:baseline:datasetName:options:allowPartial:)``), comparing it with
/// `baseline` when given, and records a Swift Testing issue with the report when one fails.
@discardableResult
public func expectGate(_ experiment: Experiment, _ conditions: [GateCondition], baseline: String? = nil,
                       options: ComparisonOptions = ComparisonOptions(), allowPartial: Bool = false,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws -> GateReport {
    let report = try await experiment.client.gate(run: experiment.id, conditions: conditions, baseline: baseline,
                                                  datasetName: experiment.datasetName, options: options,
                                                  allowPartial: allowPartial)
    expectGate(report, sourceLocation: sourceLocation)
    return report
}
