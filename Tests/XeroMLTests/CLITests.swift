import Foundation
import Testing
@testable import XeroML
import XeroMLSQLite
import XeroMLTesting

@Suite(.timeLimit(.minutes(3))) struct CLITests {
    @Test func quickstartRunsTwoVariantsAndLeavesAStore() async throws {
        let path = temporaryDirectory().appendingPathComponent("quick.sqlite").path
        let result = try await runCLI(["quickstart", "--db", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Run \"lookup-v1\" on capitals"))
        #expect(result.stdout.contains("Run \"lookup-v2\" on capitals"))
        #expect(result.stdout.contains("exact_match:"))
        let xeroml = try XeroML(path: path)
        let runs = try await xeroml.runs(datasetName: "capitals")
        #expect(Set(runs.map(\.name)) == ["lookup-v1", "lookup-v2"])
        #expect(runs.allSatisfy { $0.status == .finished && $0.itemCount == 26 })
        let v1 = try #require(runs.first { $0.name == "lookup-v1" })
        #expect(v1.errorCount == 1)  // the French question
        let v2 = try await xeroml.results(runID: try #require(runs.first { $0.name == "lookup-v2" }).id)
        let v1Results = try await xeroml.results(runID: v1.id)
        #expect(v2.summary.score("exact_match")!.mean! > v1Results.summary.score("exact_match")!.mean!)

        // Running it again adds runs instead of failing on the names.
        let again = try await runCLI(["quickstart", "--db", path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try await xeroml.runs(datasetName: "capitals").count == 4)

        let list = try await runCLI(["runs", "list", "--db", path])
        #expect(list.status == 0)
        #expect(list.stdout.contains("lookup-v2 #2"))
        let show = try await runCLI(["runs", "show", v1.id, "--db", path, "--limit", "30"])
        #expect(show.status == 0)
        #expect(show.stdout.contains("items: 26, 1 failed"))
        #expect(show.stdout.contains("UnsupportedLanguage"))
    }

    @Test func twoProcessesWriteToOneFile() async throws {
        let path = temporaryDirectory().appendingPathComponent("shared.sqlite").path
        let first = try startCLI(["quickstart", "--db", path])
        let second = try startCLI(["quickstart", "--db", path])
        let (a, b) = (await first.wait(), await second.wait())
        #expect(a.status == 0, "\(a.stderr)")
        #expect(b.status == 0, "\(b.stderr)")
        let xeroml = try XeroML(path: path)
        let runs = try await xeroml.runs()
        #expect(runs.count == 4)
        #expect(runs.allSatisfy { $0.itemCount == 26 && $0.status == .finished })
        #expect(try await xeroml.dataset(named: "capitals").items.count == 26)
    }

    @Test func datasetCommandsImportListAndShow() async throws {
        let dir = temporaryDirectory()
        let db = dir.appendingPathComponent("cli.sqlite").path
        let file = writeFile("faq.jsonl", "{\"id\": \"1\", \"input\": \"hi\", \"expected_output\": \"hello\"}\n", in: dir)
        let imported = try await runCLI(["datasets", "import", file, "--db", db])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("Created dataset faq: 1 created"))
        let list = try await runCLI(["datasets", "list", "--db", db])
        #expect(list.stdout.contains("faq") && list.stdout.contains("1"))
        let show = try await runCLI(["datasets", "show", "faq", "--db", db])
        #expect(show.stdout.contains("hello"))

        let bad = writeFile("bad.jsonl", "{\"input\": \"ok\"}\n{\"input\": }\n", in: dir)
        let failed = try await runCLI(["datasets", "import", bad, "--name", "faq", "--db", db])
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("bad.jsonl:2: invalid JSON"))
        let after = try await runCLI(["datasets", "show", "faq", "--db", db])
        #expect(after.stdout.contains("version 1, 1 items"))

        let usesEnvironment = try await runCLI(["datasets", "list"], environment: ["XEROML_DB": db])
        #expect(usesEnvironment.stdout.contains("faq"))
    }
}

@Suite(.timeLimit(.minutes(3))) struct CrashRecoveryTests {
    func helperExecutable() -> URL {
        xeromlExecutable().deletingLastPathComponent().appendingPathComponent("xeroml-testhelper")
    }

    func committedCount(_ path: String) throws -> Int {
        let db = try XeroMLSQLite.Connection(path: path, mode: .readOnly)
        return try db.queryFirst("SELECT count(*) FROM run_items") { $0.int(0) } ?? 0
    }

    @Test func aRunKilledWithSIGKILLResumesWithNoLossAndNoDuplicates() async throws {
        let path = temporaryDirectory().appendingPathComponent("killed.sqlite").path
        let (items, repetitions) = (200, 2)
        // 400 pairs × 150 ms at concurrency 8: about 7.5 s, so the kill lands mid-run even on a busy machine.
        let process = try RunningProcess(executable: helperExecutable(),
                                         arguments: [path, "numbers", "killed", "\(items)", "150", "8", "\(repetitions)"])
        // Wait until part of the run is committed, then kill the process without warning.
        let deadline = ContinuousClock.now + .seconds(60)
        var before = 0
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            before = (try? committedCount(path)) ?? 0
            if before >= 40 { break }
        }
        process.signal(SIGKILL)
        let killed = try await process.wait(timeout: .seconds(30))
        #expect(killed.signal == SIGKILL)
        let afterKill = try committedCount(path)
        #expect(afterKill >= 40 && afterKill < items * repetitions, "the kill should land mid-run (\(afterKill))")

        let resumed = try await RunningProcess(
            executable: helperExecutable(),
            arguments: [path, "numbers", "killed", "\(items)", "0", "8", "\(repetitions)", "resume"]
        ).wait(timeout: .seconds(120))
        #expect(resumed.status == 0)
        let printed = resumed.stdout
        #expect(printed.contains("done \(items * repetitions - afterKill) skipped \(afterKill)"), "\(printed)")

        let xeroml = try XeroML(path: path)
        let run = try #require(try await xeroml.findRun("killed", datasetName: "numbers"))
        #expect(run.status == .finished)
        let results = try await xeroml.results(runID: run.id)
        #expect(results.count == items * repetitions)
        #expect(Set(results.map { "\($0.datasetItemID!)#\($0.repetition)" }).count == items * repetitions)
        #expect(results.allSatisfy { $0.error == nil && $0.output == .int(Int64($0.input.doubleValue!) * 2) })
        #expect(results.allSatisfy { $0.score("exact_match") == 1 })
        // Every committed item is whole: its trace, root span and score are there too.
        let db = try XeroMLSQLite.Connection(path: path, mode: .readOnly)
        let orphans = try db.queryFirst("""
            SELECT count(*) FROM run_items r LEFT JOIN traces t ON t.id = r.trace_id WHERE t.id IS NULL
            """) { $0.int(0) } ?? -1
        #expect(orphans == 0)
    }
}

@Suite(.timeLimit(.minutes(3))) struct InterruptTests {
    /// Ctrl-C, SIGTERM (CI runners, `kill`) and SIGHUP (a closed terminal) all stop the run cleanly.
    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func aSignalStopsTheRunCleanlyAndItCanBeResumed(_ signo: Int32) async throws {
        let path = temporaryDirectory().appendingPathComponent("interrupted.sqlite").path
        // 26 items × 300 ms at concurrency 2: about 4 s, interrupted after the first results.
        let process = try startCLI(["quickstart", "--db", path, "--latency-ms", "300", "--concurrency", "2"])
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            let committed = (try? XeroMLSQLite.Connection(path: path, mode: .readOnly)
                .queryFirst("SELECT count(*) FROM run_items") { $0.int(0) }) ?? 0
            if committed >= 2 { break }
        }
        let signalled = ContinuousClock.now
        kill(process.pid, signo)
        let result = await process.wait()
        #expect(ContinuousClock.now - signalled < .seconds(30), "the signal was answered late")
        #expect(result.status == 128 + signo, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("interrupted"))
        let xeroml = try XeroML(path: path)
        let run = try #require(try await xeroml.findRun("lookup-v1", datasetName: "capitals"))
        #expect(run.status == .interrupted)
        #expect(run.itemCount >= 2 && run.itemCount < 26)
        let results = try await xeroml.results(runID: run.id)
        #expect(results.allSatisfy { $0.output != nil || $0.error != nil })  // every committed item is whole
        // Resumed with another task and no evaluators: refused unless asked for, then recorded.
        await #expect(throws: XeroMLError.self) {
            try await xeroml.runExperiment(name: "lookup-v1", datasetName: "capitals",
                                           options: ExperimentOptions(resume: true)) { run in run.setOutput("x") }
        }
        var options = ExperimentOptions(resume: true)
        options.allowConfigurationChange = true
        let resumed = try await xeroml.runExperiment(name: "lookup-v1", datasetName: "capitals",
                                                     options: options) { run in run.setOutput("x") }
        #expect(resumed.run.status == .finished && resumed.run.itemCount == 26)
        #expect(resumed.progress.skipped == run.itemCount)
        let changes = try #require(resumed.run.configuration?["resumed_with_changes"]?.arrayValue?.first?["changes"])
        #expect(changes.jsonString.contains("evaluators"))
    }
}
