public import Foundation
import XeroMLSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process that runs (or last ran) an experiment run: recorded when the run is created or
/// resumed, so that a reader can tell a run in progress from one whose process died.
///
/// ## Topics
/// - ``host``
/// - ``processID``
/// - ``heartbeatAt``
public struct RunOwner: Sendable, Hashable {
    /// The host name of the machine.
    public var host: String
    /// The process id.
    public var processID: Int
    /// When the process last said it was still running the run (at least every
    /// ``RunOwner/heartbeatInterval`` while it runs), or `nil` if it never did.
    public var heartbeatAt: Date?
    /// The process's start time as the system counts it (on Linux, clock ticks since boot), so a
    /// reused process id is not taken for the owner.
    var processStart: Int64?

    /// How often a running run's owner refreshes its heartbeat.
    public static let heartbeatInterval: Duration = .seconds(5)
    /// A run on another machine whose heartbeat is older than this is shown as interrupted.
    public static let staleAfter: Duration = .seconds(120)

    /// This process.
    static let current = RunOwner(host: ProcessIdentity.host, processID: Int(getpid()), heartbeatAt: nil,
                                  processStart: ProcessIdentity.startTime(of: getpid()))

    /// Whether the owner is known to be gone: its process ended (same machine), or its heartbeat is
    /// older than ``staleAfter`` (another machine).
    func isGone(now: Date = Date()) -> Bool {
        if host == ProcessIdentity.host {
            if processID == Int(getpid()) { return processStart != nil && processStart != Self.current.processStart }
            guard ProcessIdentity.isAlive(pid_t(processID)) else { return true }
            if let processStart, let actual = ProcessIdentity.startTime(of: pid_t(processID)) { return actual != processStart }
            return false
        }
        guard let heartbeatAt else { return true }
        return now.timeIntervalSince(heartbeatAt) > Double(Self.staleAfter.components.seconds)
    }
}

/// Facts about processes on this machine.
enum ProcessIdentity {
    static let host: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// Whether a process with this id exists (signal 0 checks without sending anything).
    static func isAlive(_ pid: pid_t) -> Bool {
        if kill(pid, 0) == 0 { return true }
        return errno == EPERM  // exists, owned by someone else
    }

    /// The start time of `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`), or `nil`
    /// where there is no `/proc`.
    static func startTime(of pid: pid_t) -> Int64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces), starting at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return Int64(fields[19])
    }
}

extension XeroML {
    /// Records this process as the owner of run `runID`, with a fresh heartbeat. Runs on the writer.
    static func claimRun(_ db: Connection, runID: String) throws {
        let owner = RunOwner.current
        try db.run("""
            UPDATE experiment_runs SET owner_host = ?, owner_pid = ?, owner_process_start = ?, heartbeat_us = ?
            WHERE id = ?
            """, [.text(owner.host), .integer(Int64(owner.processID)), owner.processStart.map(SQLValue.integer) ?? .null,
                  .integer(nowMicroseconds()), .text(runID)])
    }

    /// Refreshes the heartbeat of run `runID` while it runs.
    func heartbeat(runID: String) async throws {
        try await store.write { db in
            try db.run("UPDATE experiment_runs SET heartbeat_us = ? WHERE id = ? AND status = 'running'",
                       [.integer(nowMicroseconds()), .text(runID)])
        }
    }

    /// Closes a run by hand: `finish` marks it finished, `abort` marks it failed. A run whose owner
    /// is still running it is refused unless `force`.
    ///
    /// - Throws: ``XeroMLError/Code/notFound``, or ``XeroMLError/Code/invalidArgument`` when the run
    ///   is still running in a live process, or is already finished.
    @discardableResult
    public func closeRun(_ reference: String, status: RunStatus, force: Bool = false) async throws -> ExperimentRun {
        guard status == .finished || status == .failed || status == .interrupted else {
            throw XeroMLError(.invalidArgument, "a run can be closed as finished, failed or interrupted, not \(status.rawValue)")
        }
        guard let run = try await store.read({ db in try Self.findRun(db, reference: reference, datasetName: nil) }) else {
            throw XeroMLError.notFound("run \"\(reference)\"")
        }
        if run.status == .finished {
            throw XeroMLError(.invalidArgument, "run \"\(run.name)\" is already finished; finished runs do not change")
        }
        if run.status == .running, !force {
            let owner = run.owner.map { "process \($0.processID) on \($0.host)" } ?? "another process"
            throw XeroMLError(.invalidArgument, """
                run "\(run.name)" is still running in \(owner); stop that process first, or pass --force
                """)
        }
        let id = run.id
        try await store.write { db in
            try db.run("UPDATE experiment_runs SET status = ?, finished_us = ? WHERE id = ?",
                       [.text(status.rawValue), .integer(nowMicroseconds()), .text(id)])
        }
        return try await self.run(id: id) ?? run
    }
}

// MARK: - How a run was made

extension Evaluator {
    /// What identifies this evaluator's configuration in a run's record: its type and name.
    /// ``XeroML/runExperiment(name:datasetName:description:metadata:evaluators:runEvaluators:options:task:)``
    /// compares it when a run is resumed, so a resume with other evaluators is refused.
    public var configurationFingerprint: String { "\(type(of: self)):\(name)" }
}

/// The record of how a run was made, kept with the run, and the comparison a resume makes.
struct RunConfiguration: Sendable {
    var metadata: JSONValue?
    var evaluators: [String]
    var runEvaluators: [String]
    /// The ranges the evaluators declare for their scores, kept so every reader clips intervals alike.
    var scoreRanges: [String: ClosedRange<Double>] = [:]

    static func ranges(of evaluators: [any Evaluator]) -> [String: ClosedRange<Double>] {
        evaluators.reduce(into: [:]) { $0.merge($1.scoreRanges) { first, _ in first } }
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [
            "evaluators": .array(evaluators.map(JSONValue.string)),
            "run_evaluators": .array(runEvaluators.map(JSONValue.string)),
            "xeroml_version": .string(XeroML.version),
        ]
        if !scoreRanges.isEmpty {
            object["score_ranges"] = .object(scoreRanges.mapValues { .array([.double($0.lowerBound), .double($0.upperBound)]) })
        }
        return .object(object)
    }

    /// Each difference between the run as recorded (`stored`, its `configuration` column, and
    /// `storedMetadata`) and as resumed now, as a sentence.
    func differences(fromMetadata storedMetadata: JSONValue?, configuration stored: JSONValue?) -> [String] {
        var found: [String] = []
        let before = storedMetadata?.objectValue ?? [:]
        let after = metadata?.objectValue ?? [:]
        if storedMetadata != nil && storedMetadata?.objectValue == nil || metadata != nil && metadata?.objectValue == nil {
            if storedMetadata != metadata {
                found.append("metadata: was \(Self.show(storedMetadata)), now \(Self.show(metadata))")
            }
        } else {
            for key in Set(before.keys).union(after.keys).sorted() where key != "resumed_with_changes" {
                let old = before[key], new = after[key]
                if old != new { found.append("\(key): was \(Self.show(old)), now \(Self.show(new))") }
            }
        }
        // Runs recorded before configurations were kept have none to compare.
        if let stored, case .array(let oldEvaluators)? = stored["evaluators"] {
            let old = oldEvaluators.compactMap(\.stringValue)
            if old != evaluators {
                // Said once: a metadata key "evaluators" (as `xeroml eval` records) is the same change.
                found.removeAll { $0.hasPrefix("evaluators: was ") }
                found.append("evaluators: were \(Self.list(old)), now \(Self.list(evaluators))")
            }
            let oldRun = stored["run_evaluators"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if oldRun != runEvaluators {
                found.append("run evaluators: were \(Self.list(oldRun)), now \(Self.list(runEvaluators))")
            }
        }
        return found
    }

    private static func show(_ value: JSONValue?) -> String {
        guard let value, !value.isNull else { return "unset" }
        let text = value.jsonString
        return text.count > 120 ? String(text.prefix(117)) + "…" : text
    }

    private static func list(_ names: [String]) -> String {
        names.isEmpty ? "none" : names.joined(separator: ", ")
    }
}

extension ExperimentRun {
    /// The score ranges the run's evaluators declared (recorded with the run), by score name.
    public var declaredScoreRanges: [String: ClosedRange<Double>] {
        guard case .object(let ranges)? = configuration?["score_ranges"] else { return [:] }
        return ranges.compactMapValues { value in
            guard case .array(let bounds) = value, bounds.count == 2, let low = bounds[0].doubleValue,
                  let high = bounds[1].doubleValue, low <= high else { return nil }
            return low...high
        }
    }
}

extension JSONValue {
    var objectValue: [String: JSONValue]? { if case .object(let members) = self { members } else { nil } }
    var arrayValue: [JSONValue]? { if case .array(let elements) = self { elements } else { nil } }
}

// MARK: - Scoped experiments

extension XeroML {
    /// Creates an experiment, runs `body` with it, and finishes it whatever happens: every result is
    /// committed and the run is marked finished when `body` returns, failed when it throws,
    /// interrupted when it is cancelled. The scoped form of
    /// ``createExperiment(name:datasetName:description:metadata:evaluators:)-(_,_,_,_,[any Evaluator])``
    /// plus ``Experiment/finish(status:)``, for code that must not forget either.
    ///
    /// ```swift
    /// let results = try await xeroml.withExperiment(name: "prompt-v2", datasetName: "capitals") { experiment in
    ///     for item in try await xeroml.dataset(named: "capitals").items {
    ///         try await experiment.runItem(item) { run in run.setOutput(.string(try await myModel(run.input))) }
    ///     }
    ///     return try await experiment.results()
    /// }
    /// ```
    ///
    /// Without it, a program that returns without ``flush()`` or ``Experiment/finish(status:)`` still
    /// loses nothing when it exits normally: pending results are written at exit and its unfinished
    /// runs are marked interrupted. A process killed by a signal it does not handle commits only what
    /// the writer had committed (within milliseconds of each result).
    public func withExperiment<T>(
        name: String, datasetName: String? = nil, description: String? = nil, metadata: JSONValue? = nil,
        evaluators: [any Evaluator] = [], _ body: (Experiment) async throws -> T
    ) async throws -> T {
        let experiment = try await createExperiment(name: name, datasetName: datasetName, description: description,
                                                    metadata: metadata, evaluators: evaluators)
        let value: T
        do {
            value = try await body(experiment)
        } catch {
            let status: RunStatus = error is CancellationError || Task.isCancelled ? .interrupted : .failed
            try? await experiment.finish(status: status)
            throw error
        }
        try await experiment.finish()
        return value
    }
}
