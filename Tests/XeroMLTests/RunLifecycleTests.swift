import Foundation
import Synchronization
import Testing
@testable import XeroML
import XeroMLSQLite
import XeroMLTesting
#if canImport(Glibc)
import Glibc
#endif

/// Runs tell the truth: a lock held elsewhere is waited for once and then stops the run with a clear
/// error; a cancelled run stops waiting at once; a failed write stops new items; a run whose process
/// died reads as interrupted; resuming with another configuration is refused.
@Suite(.timeLimit(.minutes(2))) struct RunLifecycleTests {
    static let clock = ContinuousClock()

    /// A store with a dataset of `count` items (input i, expected 2·i), opened with `lockTimeout`.
    func store(items count: Int, lockTimeout: Duration = .seconds(30), payload: Int = 0) async throws -> XeroML {
        let path = temporaryDirectory().appendingPathComponent("lifecycle.sqlite").path
        let xeroml = try XeroML(path: path, lockTimeout: lockTimeout)
        let padding = String(repeating: "x", count: payload)
        let lines = (0..<count).map { #"{"id": "\#($0)", "input": {"n": \#($0), "text": "\#(padding)"}, "expected_output": \#($0 * 2)}"# }
        try await xeroml.importDataset(name: "numbers", from: writeFile("numbers.jsonl", lines.joined(separator: "\n")))
        return xeroml
    }

    /// Holds the write lock of `path` from another connection (as another process would) until released.
    final class LockHolder: @unchecked Sendable {
        let queue: DatabaseQueue
        init(path: String) throws {
            queue = try DatabaseQueue(path: path, label: "test.lock-holder")
            try queue.sync { db in try db.execute("BEGIN IMMEDIATE") }
        }
        func release() { queue.sync { db in try? db.execute("ROLLBACK") } }
    }

    final class HolderBox: Sendable {
        let value = Mutex<LockHolder?>(nil)
    }

    @Test func aLockHeldElsewhereStopsTheRunAfterOneBoundedWait() async throws {
        let xeroml = try await store(items: 200, lockTimeout: .seconds(2))
        let holder = try LockHolder(path: xeroml.path)
        defer { holder.release() }
        let calls = Atomic<Int>(0)
        let start = Self.clock.now
        let error = await #expect(throws: XeroMLError.self) {
            try await xeroml.runExperiment(name: "locked", datasetName: "numbers",
                                           options: ExperimentOptions(maxConcurrency: 4)) { run in
                calls.add(1, ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(20))
                run.setOutput(.int(1))
            }
        }
        let elapsed = Self.clock.now - start
        // Creating the run waits for the lock too, and fails with the same error.
        #expect(error?.code == .locked, "\(String(describing: error))")
        #expect(error?.message.contains("another process holds the write lock") == true)
        #expect(error?.message.contains("fuser") == true)
        // One wait of the 2 s lock timeout, not one per batch (dozens of batches); the bound leaves
        // room for the suite's start on two cores, where 10 s stalls have been seen.
        #expect(elapsed < .seconds(30), "took \(elapsed)")
        #expect(calls.load(ordering: .relaxed) < 200)
    }

    @Test func aLockTakenMidRunStopsNewItemsAndSaysWhatIsStored() async throws {
        let xeroml = try await store(items: 400, lockTimeout: .milliseconds(300))
        let calls = Atomic<Int>(0)
        let holder = HolderBox()
        defer { holder.value.withLock { $0?.release() } }
        let path = xeroml.path
        let error = await #expect(throws: XeroMLError.self) {
            try await xeroml.runExperiment(name: "midway", datasetName: "numbers",
                                           options: ExperimentOptions(maxConcurrency: 4)) { run in
                if calls.add(1, ordering: .relaxed).newValue == 40 {
                    // Another process takes the lock and keeps it past the lock timeout, then lets go.
                    holder.value.withLock { $0 = try? LockHolder(path: path) }
                    Task {
                        try await Task.sleep(for: .milliseconds(700))
                        holder.value.withLock { $0?.release(); $0 = nil }
                    }
                }
                try await Task.sleep(for: .milliseconds(20))
                run.setOutput(.int(1))
            }
        }
        #expect(error?.code == .locked || error?.code == .writeFailed, "\(String(describing: error))")
        #expect(error?.message.contains("stored in") == true, "\(String(describing: error))")
        // New items stopped soon after the failure instead of running to the end.
        #expect(calls.load(ordering: .relaxed) < 300, "\(calls.load(ordering: .relaxed)) tasks ran")
        holder.value.withLock { $0?.release(); $0 = nil }
        // The failed status is written as soon as the lock frees.
        var run = try #require(try await xeroml.findRun("midway", datasetName: "numbers"))
        let deadline = Self.clock.now + .seconds(20)
        while run.status != .failed, Self.clock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            run = try #require(try await xeroml.findRun("midway", datasetName: "numbers"))
        }
        #expect(run.status == .failed)
        #expect(error?.message.contains("results are stored") == true, "\(String(describing: error))")
        // Nothing half-written: it resumes to exactly one result per item.
        var options = ExperimentOptions(maxConcurrency: 8, resume: true)
        options.allowConfigurationChange = false
        let resumed = try await xeroml.runExperiment(name: "midway", datasetName: "numbers", options: options) { run in
            run.setOutput(.int(1))
        }
        #expect(resumed.run.status == .finished && resumed.run.itemCount == 400)
    }

    @Test func cancellingARunThatWaitsForALockEndsItAtOnce() async throws {
        let xeroml = try await store(items: 50, lockTimeout: .seconds(60))
        let started = try await xeroml.createExperiment(name: "waiting", datasetName: "numbers")
        let holder = try LockHolder(path: xeroml.path)
        defer { holder.release() }
        let dataset = try await xeroml.dataset(named: "numbers")
        let task = Task {
            for item in dataset.items {
                try await started.runItem(item) { run in run.setOutput(.int(1)) }
            }
            try await started.finish()
        }
        try await Task.sleep(for: .milliseconds(500))  // the writer is now waiting for the lock
        let cancelled = Self.clock.now
        task.cancel()
        _ = await task.result
        // The lock timeout is 60 s; a cancelled wait ends at once (slack for a loaded machine).
        #expect(Self.clock.now - cancelled < .seconds(30), "cancellation took \(Self.clock.now - cancelled)")
    }

    @Test func aFullFileStopsTheRunAndNothingIsCountedTwice() async throws {
        let xeroml = try await store(items: 2_000, payload: 200)
        let pages = try await xeroml.store.read { db in try db.queryFirst("PRAGMA page_count") { $0.int(0) } ?? 0 }
        // Room for a few hundred results, not 2,000.
        try await xeroml.store.configureWriter("PRAGMA max_page_count = \(pages + 60)")
        let calls = Atomic<Int>(0)
        let error = await #expect(throws: XeroMLError.self) {
            try await xeroml.runExperiment(name: "full", datasetName: "numbers",
                                           evaluators: [ExactMatch()],
                                           options: ExperimentOptions(maxConcurrency: 8)) { run in
                calls.add(1, ordering: .relaxed)
                run.setOutput(.string(String(repeating: "y", count: 400)))
            }
        }
        #expect(error?.code == .writeFailed, "\(String(describing: error))")
        #expect(error?.message.contains("could not be stored") == true, "\(String(describing: error))")
        let run = try #require(try await xeroml.findRun("full", datasetName: "numbers"))
        #expect(run.status == .failed)
        #expect(run.itemCount > 0 && run.itemCount < 2_000)
        // The model was not called for the whole dataset after the file filled up.
        #expect(calls.load(ordering: .relaxed) < 1_500, "\(calls.load(ordering: .relaxed)) tasks ran for \(run.itemCount) stored")
        #expect(error?.message.contains("\(run.itemCount) results are stored") == true, "\(String(describing: error))")
    }

    @Test func aRunWhoseProcessDiedReadsAsInterruptedAndCanBeClosedByHand() async throws {
        let xeroml = try await store(items: 10)
        let experiment = try await xeroml.createExperiment(name: "orphan", datasetName: "numbers")
        let dataset = try await xeroml.dataset(named: "numbers")
        try await experiment.runItem(dataset.items[0]) { run in run.setOutput(.int(0)) }
        try await xeroml.flush()
        // This process owns it and is alive: running, and closing it by hand is refused.
        var run = try #require(try await xeroml.run(id: experiment.id))
        #expect(run.status == .running)
        #expect(run.owner?.processID == Int(getpid()))
        await #expect(throws: XeroMLError.self) { try await xeroml.closeRun(experiment.id, status: .finished) }

        // Hand it to a process that has ended (a child that exited).
        let child = try RunningProcess(executable: URL(fileURLWithPath: "/bin/true"), arguments: [],
                                       directory: FileManager.default.temporaryDirectory)
        _ = await child.wait()
        let deadPID = Int64(child.pid)
        try await xeroml.store.write { db in
            try db.run("UPDATE experiment_runs SET owner_pid = ?, owner_process_start = NULL WHERE id = ?",
                       [.integer(deadPID), .text(experiment.id)])
        }
        run = try #require(try await xeroml.run(id: experiment.id))
        #expect(run.status == .interrupted)
        #expect(run.storedStatus == .running)
        #expect(try await xeroml.runs(datasetName: "numbers").first?.status == .interrupted)

        // Another machine's run with a stale heartbeat reads as interrupted; a fresh one as running.
        try await xeroml.store.write { db in
            try db.run("UPDATE experiment_runs SET owner_host = 'elsewhere', heartbeat_us = ? WHERE id = ?",
                       [.integer(nowMicroseconds() - 10_000_000), .text(experiment.id)])
        }
        #expect(try await xeroml.run(id: experiment.id)?.status == .running)
        try await xeroml.store.write { db in
            try db.run("UPDATE experiment_runs SET heartbeat_us = ? WHERE id = ?",
                       [.integer(nowMicroseconds() - 600_000_000), .text(experiment.id)])
        }
        #expect(try await xeroml.run(id: experiment.id)?.status == .interrupted)

        let closed = try await xeroml.closeRun("orphan", status: .finished)
        #expect(closed.status == .finished && closed.itemCount == 1)
        await #expect(throws: XeroMLError.self) { try await xeroml.closeRun("orphan", status: .failed) }
    }

    @Test func resumingWithOtherMetadataOrEvaluatorsIsRefusedUnlessAllowed() async throws {
        let xeroml = try await store(items: 20)
        let cancelAfter = Atomic<Int>(0)
        let first = Task {
            let options = ExperimentOptions(maxConcurrency: 2)
            return try await xeroml.runExperiment(name: "configured", datasetName: "numbers", metadata: ["model": "a", "t": 0.2],
                                           evaluators: [ExactMatch()], options: options) { run in
                if cancelAfter.add(1, ordering: .relaxed).newValue > 5 { try await Task.sleep(for: .seconds(30)) }
                run.setOutput(.int(1))
            }
        }
        while cancelAfter.load(ordering: .relaxed) < 6 { try await Task.sleep(for: .milliseconds(10)) }
        first.cancel()
        _ = await first.result
        var options = ExperimentOptions(maxConcurrency: 2, resume: true)
        let error = await #expect(throws: XeroMLError.self) {
            try await xeroml.runExperiment(name: "configured", datasetName: "numbers", metadata: ["model": "b", "t": 0.2],
                                           evaluators: [ExactMatch(), LevenshteinSimilarity()], options: options) { run in
                run.setOutput(.int(1))
            }
        }
        #expect(error?.message.contains(#"model: was "a", now "b""#) == true, "\(String(describing: error))")
        #expect(error?.message.contains("evaluators: were ExactMatch:exact_match, now ExactMatch:exact_match, LevenshteinSimilarity") == true,
                "\(String(describing: error))")
        // The same configuration resumes; an allowed change is recorded.
        options.allowConfigurationChange = true
        let report = try await xeroml.runExperiment(name: "configured", datasetName: "numbers", metadata: ["model": "b", "t": 0.2],
                                                    evaluators: [ExactMatch()], options: options) { run in
            run.setOutput(.int(1))
        }
        #expect(report.run.status == .finished && report.run.itemCount == 20)
        let changes = report.run.configuration?["resumed_with_changes"]?.arrayValue ?? []
        #expect(changes.count == 1)
        #expect(changes.first?["changes"]?.jsonString.contains("model") == true)
    }

    @Test func aProgramThatForgetsToFlushLosesNothing() async throws {
        let path = temporaryDirectory().appendingPathComponent("forgetful.sqlite").path
        let helper = xeromlExecutable().deletingLastPathComponent().appendingPathComponent("xeroml-testhelper")
        let result = try await RunningProcess(executable: helper, arguments: ["no-flush", path, "5000"],
                                              directory: FileManager.default.temporaryDirectory).wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("recorded 5000"))
        let xeroml = try XeroML(path: path)
        let run = try #require(try await xeroml.runs().first)
        #expect(run.itemCount == 5000)
        #expect(run.status == .interrupted && run.storedStatus == .interrupted)
        let results = try await xeroml.results(runID: run.id)
        #expect(results.filter { $0.score("ok") == 1 }.count == 5000)
    }

    @Test func withExperimentFinishesTheRunOrMarksItFailed() async throws {
        let xeroml = try await store(items: 5)
        let dataset = try await xeroml.dataset(named: "numbers")
        let count = try await xeroml.withExperiment(name: "scoped", datasetName: "numbers") { experiment in
            for item in dataset.items { try await experiment.runItem(item) { run in run.setOutput(.int(1)) } }
            return dataset.items.count
        }
        #expect(count == 5)
        #expect(try await xeroml.findRun("scoped", datasetName: "numbers")?.status == .finished)
        struct Broken: Error {}
        await #expect(throws: Broken.self) {
            try await xeroml.withExperiment(name: "broken", datasetName: "numbers") { experiment in
                try await experiment.runItem(dataset.items[0]) { run in run.setOutput(.int(1)) }
                throw Broken()
            }
        }
        let broken = try #require(try await xeroml.findRun("broken", datasetName: "numbers"))
        #expect(broken.status == .failed && broken.itemCount == 1)
    }

    struct CountItems: RunEvaluator {
        let name = "items"
        func evaluate(_ results: ExperimentResults) async throws -> [Evaluation] {
            [Evaluation(name: name, value: .numeric(Double(results.count)))]
        }
    }

    @Test func aRunWithRunEvaluatorsResumesWithTheSameOnes() async throws {
        let xeroml = try await store(items: 20)
        let started = Atomic<Int>(0)
        let first = Task {
            try await xeroml.runExperiment(name: "with-run-evaluators", datasetName: "numbers", runEvaluators: [CountItems()],
                                           options: ExperimentOptions(maxConcurrency: 2)) { run in
                if started.add(1, ordering: .relaxed).newValue > 5 { try await Task.sleep(for: .seconds(30)) }
                run.setOutput(.int(1))
            }
        }
        while started.load(ordering: .relaxed) < 6 { try await Task.sleep(for: .milliseconds(10)) }
        first.cancel()
        _ = await first.result
        let report = try await xeroml.runExperiment(name: "with-run-evaluators", datasetName: "numbers",
                                                    runEvaluators: [CountItems()],
                                                    options: ExperimentOptions(resume: true)) { run in run.setOutput(.int(1)) }
        #expect(report.run.status == .finished && report.run.itemCount == 20)
    }

    @Test func aRunFinishedByHandTakesNoMoreResults() async throws {
        let xeroml = try await store(items: 5)
        let experiment = try await xeroml.createExperiment(name: "closed-early", datasetName: "numbers")
        let items = try await xeroml.dataset(named: "numbers").items
        try await experiment.runItem(items[0]) { run in run.setOutput(.int(0)) }
        try await xeroml.flush()
        try await xeroml.closeRun("closed-early", status: .finished, force: true)
        // The process that ran it goes on, unaware: its next results are refused, not added.
        try await experiment.runItem(items[1]) { run in run.setOutput(.int(2)) }
        let error = await #expect(throws: XeroMLError.self) { try await xeroml.flush() }
        #expect(error?.message.contains("finished runs take no more results") == true, "\(String(describing: error))")
        let run = try #require(try await xeroml.findRun("closed-early", datasetName: "numbers"))
        #expect(run.status == .finished && run.itemCount == 1)
    }
}
