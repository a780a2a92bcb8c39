import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing
import XeroML
import XeroMLSQLite
import XeroMLSync
import XeroMLSyncAPI
import XeroMLTesting

/// The sync client against the real team server on a real PostgreSQL: the quickstart's runs pushed by
/// the CLI, a client killed mid-push, a server stopped and restarted mid-push, errors and resets.
@Suite("Sync end to end", .serialized, .enabled(if: postgresAvailable, PostgresCluster.skipReason), .timeLimit(.minutes(5)))
struct SyncEndToEndTests {
    /// `xeroml-server` as a process on a free port over `databaseURL`; stopped at the end of `body`.
    static func withServerProcess<T: Sendable>(_ databaseURL: String, port: Int = 0,
                                               _ body: @Sendable (RunningProcess, String) async throws -> T) async throws -> T {
        let server = try RunningProcess(executable: builtExecutable("xeroml-server"),
                                        arguments: ["serve", "--database-url", databaseURL, "--port", "\(port)"])
        do {
            try await server.waitFor(.seconds(60), "the server's address") { out, _ in out.contains("listening on http://") }
            let base = try #require(firstMatch(#"http://127\.0\.0\.1:[0-9]+"#, in: server.output.stdout))
            let result = try await body(server, base)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    static func createKey(_ databaseURL: String, project: String) async throws -> String {
        let xerver = builtExecutable("xeroml-server")
        let made = try await RunningProcess(executable: xerver, arguments: ["projects", "create", project, "--database-url", databaseURL])
            .wait(timeout: .seconds(60))
        #expect(made.status == 0, "\(made.stderr)")
        let key = try await RunningProcess(executable: xerver, arguments: ["keys", "create", "--project", project, "--database-url", databaseURL])
            .wait(timeout: .seconds(60))
        #expect(key.status == 0, "\(key.stderr)")
        return try #require(key.stdout.split(separator: "\n").first.map(String.init), "keys create printed \(key.stdout)")
    }

    static func xeroml(_ arguments: [String], key: String, timeout: Duration = .seconds(120)) async throws -> ProcessResult {
        try await RunningProcess(executable: builtExecutable("xeroml"), arguments: arguments,
                                 environment: ["XEROML_API_KEY": key, "XEROML_SYNC_URL": ""]).wait(timeout: timeout)
    }

    static func temporaryFile(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-e2e-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test("the quickstart's two runs pushed with `xeroml sync push --all` appear once each; a second push sends nothing")
    func quickstart() async throws {
        let databaseURL = try await freshDatabase()
        let key = try await Self.createKey(databaseURL, project: "team")
        let file = Self.temporaryFile("quickstart.sqlite")
        let made = try await Self.xeroml(["quickstart", "--db", file], key: key)
        #expect(made.status == 0, "\(made.stderr)")
        try await Self.withServerProcess(databaseURL) { _, base in
            // The pushes go through a proxy that counts connections, to see that the second makes none.
            let proxy = try FaultProxy(upstreamPort: UInt16(URL(string: base)!.port!))
            defer { proxy.stop() }
            let first = try await Self.xeroml(["sync", "push", "--all", "--db", file, "--server", proxy.baseURL.absoluteString], key: key)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("2 pushed, 0 already synced, 0 skipped, 0 failed"), "\(first.stdout)")

            let endpoint = Endpoint(base: base)
            let runs = try await endpoint.get(SyncAPI.runsPath, token: key).decode(RunList.self).runs
            #expect(Set(runs.map(\.name)) == ["lookup-v1", "lookup-v2"])
            #expect(runs.count == 2)
            let local = try XeroML(path: file, readOnly: true)
            for run in try await local.runs() {
                let remote = try #require(runs.first { $0.id == run.id })
                #expect(remote.runItemCount == run.itemCount)
            }
            #expect(try await count("SELECT count(*) FROM experiment_runs WHERE committed_us IS NOT NULL", in: databaseURL) == 2)

            let connections = proxy.counts.connections
            #expect(connections > 0)
            let second = try await Self.xeroml(["sync", "push", "--all", "--db", file, "--server", proxy.baseURL.absoluteString], key: key)
            #expect(second.status == 0)
            #expect(second.stdout.contains("0 pushed, 2 already synced"), "\(second.stdout)")
            // One request asks the server which runs it holds (the list of committed runs); nothing is sent.
            #expect(proxy.counts.connections - connections <= 1)

            // The same address with another project's key: the runs are not there, so they are pushed there.
            let otherKey = try await Self.createKey(databaseURL, project: "other-team")
            let other = try await Self.xeroml(["sync", "push", "--all", "--db", file, "--server", proxy.baseURL.absoluteString],
                                              key: otherKey)
            #expect(other.status == 0, "\(other.stdout)\(other.stderr)")
            #expect(other.stdout.contains("2 pushed, 0 already synced"), "\(other.stdout)")
            #expect(other.stdout.contains("pushed again: it was synced with"), "\(other.stdout)")
            #expect(try await endpoint.get(SyncAPI.runsPath, token: otherKey).decode(RunList.self).runs.count == 2)
            let otherAgain = try await Self.xeroml(["sync", "push", "--all", "--db", file, "--server", proxy.baseURL.absoluteString],
                                                   key: otherKey)
            #expect(otherAgain.stdout.contains("0 pushed, 2 already synced"), "\(otherAgain.stdout)")

            let status = try await Self.xeroml(["sync", "status", "--db", file, "--server", proxy.baseURL.absoluteString], key: key)
            #expect(status.stdout.components(separatedBy: "synced").count - 1 >= 2, "\(status.stdout)")

            // The team dashboard: signed in with the project key, both runs are listed once and open.
            let form = "key=" + key.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let cookie = try #require(try await signIn(base: base, form: form), "sign-in set no cookie")
            let home = try await endpoint.send("GET", "/", headers: ["Cookie": cookie])
            #expect(home.status == 200)
            for run in runs {
                #expect(home.text.components(separatedBy: "/runs/\(run.id)\"").count - 1 == 1, "run \(run.name) listed once")
                let page = try await endpoint.send("GET", "/runs/\(run.id)", headers: ["Cookie": cookie])
                #expect(page.status == 200 && page.text.contains(run.name))
            }
        }
    }

    @Test("a named run that is not pushed is a failure of the command; a --db that names no file is an error and creates none")
    func namedRunsAndMissingFiles() async throws {
        let (xeroml, path, _) = try await Self.makeRun(items: 3, name: "done")
        _ = try await xeroml.createExperiment(name: "still-running", datasetName: "numbers")
        try await xeroml.flush()
        // Nothing listens there: neither case reaches a server.
        let server = "http://127.0.0.1:\(try PostgresCluster.freePort())"
        let named = try await Self.xeroml(["sync", "push", "still-running", "--db", path, "--server", server], key: "xrml_a_b")
        #expect(named.status == 1, "\(named.stdout)\(named.stderr)")
        #expect(named.stdout.contains("skipped  still-running: it is still running"), "\(named.stdout)")
        #expect(named.stderr.contains("1 of the named runs was not pushed"), "\(named.stderr)")

        let missing = Self.temporaryFile("nothing-here.sqlite")
        let typo = try await Self.xeroml(["sync", "push", "--all", "--db", missing, "--server", server], key: "xrml_a_b")
        #expect(typo.status == 1, "\(typo.stdout)\(typo.stderr)")
        #expect(typo.stderr.contains("no store at \(missing)"), "\(typo.stderr)")
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    /// A finished run of `items` items (trace, root span, run item, two scores each) in a new file.
    static func makeRun(items: Int, name: String = "big") async throws -> (XeroML, String, String) {
        let path = temporaryFile("run.sqlite")
        let xeroml = try XeroML(path: path)
        _ = try await xeroml.createDataset(name: "numbers")
        let lines = (0..<items).map { #"{"input": \#($0), "expected_output": \#($0 * 2)}"# }.joined(separator: "\n")
        let jsonl = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("numbers.jsonl")
        try lines.write(to: jsonl, atomically: true, encoding: .utf8)
        try await xeroml.importDataset(name: "numbers", from: jsonl.path)
        let report = try await xeroml.runExperiment(name: name, datasetName: "numbers", options: ExperimentOptions(maxConcurrency: 8)) { run in
            run.setOutput(run.expectedOutput)
            run.score(name: "exact", value: true)
            run.score(name: "quality", value: 0.5)
        }
        try await xeroml.flush()
        return (xeroml, path, report.run.id)
    }

    static func acknowledgedChunks(_ path: String) -> Int {
        guard let db = try? Connection(path: path, mode: .readOnly) else { return 0 }
        return (try? db.queryFirst("SELECT max(chunks_acknowledged) FROM sync_state") { $0.int(0) }) ?? 0
    }

    @Test("a client killed (SIGKILL) mid-push and run again: each row once, the run visible once")
    func killedClient() async throws {
        let databaseURL = try await freshDatabase()
        let key = try await Self.createKey(databaseURL, project: "kill")
        let items = 3_000
        let (_, path, runID) = try await Self.makeRun(items: items)
        try await Self.withServerProcess(databaseURL) { _, base in
            let push = try RunningProcess(executable: builtExecutable("xeroml"),
                                          arguments: ["sync", "push", "--all", "--db", path, "--server", base, "--chunk-items", "20"],
                                          environment: ["XEROML_API_KEY": key])
            let deadline = ContinuousClock.now + .seconds(60)
            while Self.acknowledgedChunks(path) < 5 && push.isRunning && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            push.signal(SIGKILL)
            let killed = try await push.wait(timeout: .seconds(30))
            #expect(killed.signal == SIGKILL, "the push ended before it was killed: \(killed.stdout)")
            let acknowledged = Self.acknowledgedChunks(path)
            #expect(acknowledged >= 5 && acknowledged < items / 20)
            // Not visible until committed.
            let endpoint = Endpoint(base: base)
            #expect(try await endpoint.get(SyncAPI.runsPath, token: key).decode(RunList.self).runs.isEmpty)

            let again = try await Self.xeroml(["sync", "push", "--all", "--db", path, "--server", base, "--chunk-items", "20"], key: key)
            #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
            #expect(again.stdout.contains("resumed at chunk \(acknowledged)"), "\(again.stdout)")
            let runs = try await endpoint.get(SyncAPI.runsPath, token: key).decode(RunList.self).runs
            #expect(runs.map(\.id) == [runID])
            #expect(runs.first?.runItemCount == items)
            #expect(try await count("SELECT count(*) FROM run_items", in: databaseURL) == items)
            #expect(try await count("SELECT count(*) FROM scores", in: databaseURL) == 2 * items)
            #expect(try await count("SELECT count(*) FROM traces", in: databaseURL) == items)
            #expect(try await count("SELECT count(*) FROM observations", in: databaseURL) == items)
            #expect(try await count("SELECT count(*) FROM dataset_items", in: databaseURL) == items)
        }
    }

    @Test("errors, resets and a server stopped and started again mid-push: the push completes; the state shows the attempts")
    func serverFaults() async throws {
        let databaseURL = try await freshDatabase()
        let key = try await Self.createKey(databaseURL, project: "faults")
        let items = 2_000
        let (xeroml, _, runID) = try await Self.makeRun(items: items)
        let first = try RunningProcess(executable: builtExecutable("xeroml-server"),
                                       arguments: ["serve", "--database-url", databaseURL, "--port", "0"])
        try await first.waitFor(.seconds(60), "the server's address") { out, _ in out.contains("listening on http://") }
        let firstPort = try #require(firstMatch(#"http://127\.0\.0\.1:([0-9]+)"#, in: first.output.stdout).flatMap { URL(string: $0)?.port })
        let proxy = try FaultProxy(upstreamPort: UInt16(firstPort))
        defer { proxy.stop() }
        // The first requests meet errors and resets.
        proxy.script([.status(503), .status(500), .reset, .status(429), .reset])
        let acknowledged = Mutex(0)
        let server = SyncServer(url: proxy.baseURL, apiKey: key)
        let options = SyncOptions(limits: ChunkLimits(runItems: 25),
                                  retry: SyncRetryPolicy(maxAttempts: 30, baseDelay: .milliseconds(20), maxDelay: .milliseconds(300)))
        async let pushed = xeroml.sync(to: server, options: options) { progress in
            acknowledged.withLock { $0 = max($0, progress.chunksAcknowledged) }
        }
        // Mid-push, the server goes away (its open connections dropped) and comes back on another port.
        let deadline = ContinuousClock.now + .seconds(60)
        while acknowledged.withLock({ $0 }) < 10 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        await first.stop()
        proxy.dropOpenConnections()
        try await Task.sleep(for: .milliseconds(500))
        let second = try RunningProcess(executable: builtExecutable("xeroml-server"),
                                        arguments: ["serve", "--database-url", databaseURL, "--port", "0"])
        defer { Task { await second.stop() } }
        try await second.waitFor(.seconds(60), "the server's address") { out, _ in out.contains("listening on http://") }
        let secondPort = try #require(firstMatch(#"http://127\.0\.0\.1:([0-9]+)"#, in: second.output.stdout).flatMap { URL(string: $0)?.port })
        proxy.setUpstream(port: UInt16(secondPort))

        let report = try await pushed
        #expect(report.results.map(\.outcome) == [.pushed])
        let state = try #require(try await xeroml.syncStatus().first)
        #expect(state.status == .synced && state.runItemsSent == items)
        #expect(state.attempts >= 5, "every injected fault is an attempt: \(state.attempts)")
        #expect(proxy.counts.faults == 5)
        let runs = try await Endpoint(base: "http://127.0.0.1:\(secondPort)").get(SyncAPI.runsPath, token: key).decode(RunList.self).runs
        #expect(runs.map(\.id) == [runID])
        #expect(try await count("SELECT count(*) FROM run_items", in: databaseURL) == items)
        #expect(try await count("SELECT count(*) FROM scores", in: databaseURL) == 2 * items)
        await second.stop()
    }
}

/// Posts the sign-in form without following the redirect that answers it; the session cookie it sets.
func signIn(base: String, form: String) async throws -> String? {
    final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(nil)
        }
    }
    var request = URLRequest(url: URL(string: base + "/login")!)
    request.httpMethod = "POST"
    request.timeoutInterval = 30
    request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
    request.httpBody = Data(form.utf8)
    let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
    defer { session.finishTasksAndInvalidate() }
    let (_, response) = try await session.data(for: request)
    let header = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Set-Cookie")
    return header?.split(separator: ";").first.map(String.init)
}

func firstMatch(_ pattern: String, in text: String) -> String? {
    guard let range = text.range(of: pattern, options: .regularExpression) else { return nil }
    return String(text[range])
}
