#if canImport(XCTest)
import XCTest
public import XeroML

/// Where XCTest assertions of XeroML report failures: `XCTFail` unless a test overrides it for the
/// current task (used to test the assertions themselves, without global state).
public enum XeroMLXCTestFailure {
    /// Receives the failure message, file and line.
    public typealias Handler = @Sendable (String, StaticString, UInt) -> Void
    @TaskLocal public static var handler: Handler?

    static func fail(_ message: String, file: StaticString, line: UInt) {
        if let handler { handler(message, file, line) } else { XCTFail(message, file: file, line: line) }
    }
}

/// Fails the current XCTest with the gate's report when `report` did not pass.
public func XCTAssertGate(_ report: GateReport, file: StaticString = #filePath, line: UInt = #line) {
    if !report.passed { XeroMLXCTestFailure.fail(report.format(), file: file, line: line) }
}

/// Checks `conditions` against a finished run and fails the current XCTest with the report when one fails.
@discardableResult
public func XCTAssertGate(_ run: ExperimentReport, in client: XeroML, _ conditions: [GateCondition],
                          baseline: String? = nil, options: ComparisonOptions = ComparisonOptions(), allowPartial: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line) async throws -> GateReport {
    let report = try await client.gate(run: run.run.id, conditions: conditions, baseline: baseline,
                                       datasetName: run.run.datasetName, options: options, allowPartial: allowPartial)
    XCTAssertGate(report, file: file, line: line)
    return report
}

/// Checks `conditions` against the run of `experiment` and fails the current XCTest with the report
/// when one fails.
@discardableResult
public func XCTAssertGate(_ experiment: Experiment, _ conditions: [GateCondition], baseline: String? = nil,
                          options: ComparisonOptions = ComparisonOptions(), allowPartial: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line) async throws -> GateReport {
    let report = try await experiment.client.gate(run: experiment.id, conditions: conditions, baseline: baseline,
                                                  datasetName: experiment.datasetName, options: options,
                                                  allowPartial: allowPartial)
    XCTAssertGate(report, file: file, line: line)
    return report
}
#endif
