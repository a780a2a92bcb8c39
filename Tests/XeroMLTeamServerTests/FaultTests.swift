import Foundation
import Testing
import XeroMLSyncAPI
import XeroMLTesting
@testable import XeroMLTeamServer

/// Several servers, PostgreSQL going away, schema versions, the admin commands as a process.
@Suite("Team server faults", .enabled(if: postgresAvailable, PostgresCluster.skipReason), .timeLimit(.minutes(4)))
struct FaultTests {
    @Test("two servers on one database receiving the same run's chunks at once: each row once, the run visible once")
    func twoServers() async throws {
        let url = try await freshDatabase()
        let run = SyntheticRun.make(items: 400, itemsPerChunk: 50)
        let key = try await withDatabase(url) { database in try await makeProject(database) }
        try await withDatabase(url) { one in
            try await withDatabase(url) { two in
                try await withServer(one) { first in
                    try await withServer(two) { second in
                        async let a = first.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                        async let b = second.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token)
                        #expect(try await [a.status, b.status] == [200, 200])
                        // Every chunk to both servers at once.
                        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                            for chunk in run.chunks {
                                for server in [first, second] {
                                    group.addTask {
                                        try await server.put(SyncAPI.chunkPath(run.runID, index: chunk.index), chunk, token: key.token).status
                                    }
                                }
                            }
                            return try await group.reduce(into: [Int]()) { $0.append($1) }
                        }
                        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
                        async let c = first.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token)
                        async let d = second.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token)
                        let (left, right) = try await (c.decode(RunState.self), d.decode(RunState.self))
                        #expect(left.committed && right.committed)
                    }
                }
            }
        }
        for (table, rows) in [("traces", 400), ("observations", 400), ("run_items", 400), ("scores", 800), ("dataset_items", 400),
                              ("sync_chunks", 8), ("experiment_runs", 1)] {
            #expect(try await count("SELECT count(*) FROM \(table)", in: url) == rows, "\(table)")
        }
        let committed = try await count("SELECT count(*) FROM experiment_runs WHERE committed_us IS NOT NULL", in: url)
        #expect(committed == 1)
    }

    @Test("PostgreSQL restarted under the server: requests meanwhile fail with 5xx, later ones succeed without restarting the server")
    func postgresRestart() async throws {
        // A cluster of its own: the shared one stays up for the other tests.
        let cluster = try PostgresCluster()
        try await cluster.start()
        do {
            let url = try await freshDatabase(in: cluster)
            let run = SyntheticRun.make(items: 300, itemsPerChunk: 10)
            try await withDatabase(url) { database in
                let key = try await makeProject(database)
                try await withServer(database, requestTimeout: .seconds(3)) { server in
                    #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token).status == 200)
                    // Chunks in flight while PostgreSQL stops, stays down a moment, and starts again.
                    let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                        for chunk in run.chunks {
                            group.addTask {
                                try await server.put(SyncAPI.chunkPath(run.runID, index: chunk.index), chunk, token: key.token).status
                            }
                        }
                        group.addTask {
                            try await cluster.stopServer()
                            let down = try await server.get(SyncAPI.projectPath, token: key.token)
                            #expect(down.status == 503, "\(down.text)")
                            #expect(down.error?.code == "unavailable")
                            try await Task.sleep(for: .seconds(1))
                            try await cluster.start()
                            return 0
                        }
                        return try await group.reduce(into: [Int]()) { $0.append($1) }
                    }
                    #expect(statuses.allSatisfy { $0 == 0 || $0 == 200 || (500...599).contains($0) }, "\(statuses)")
                    let tally = Dictionary(grouping: statuses.filter { $0 != 0 }, by: { $0 }).mapValues(\.count)
                    print("◇ chunk answers while PostgreSQL restarted: \(tally.sorted { $0.key < $1.key })")

                    // The same server, without a restart: the pool reconnects on its own.
                    let deadline = ContinuousClock.now + .seconds(30)
                    var project = try await server.get(SyncAPI.projectPath, token: key.token)
                    while project.status != 200 && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(200))
                        project = try await server.get(SyncAPI.projectPath, token: key.token)
                    }
                    #expect(project.status == 200)
                    // A client resends what was not acknowledged; everything lands once.
                    let state = try await server.get(SyncAPI.runPath(run.runID), token: key.token).decode(RunState.self)
                    for chunk in run.chunks where !state.receivedChunks.contains(chunk.index) {
                        #expect(try await server.put(SyncAPI.chunkPath(run.runID, index: chunk.index), chunk, token: key.token).status == 200)
                    }
                    #expect(try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token).decode(RunState.self).committed)
                }
            }
            #expect(try await count("SELECT count(*) FROM run_items", in: url, cluster: cluster) == 300)
            #expect(try await count("SELECT count(*) FROM scores", in: url, cluster: cluster) == 600)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
    }

    @Test("PostgreSQL down under a signed-in dashboard: pages answer 503 by the read deadline, not a 500 a minute later")
    func dashboardWhilePostgresIsDown() async throws {
        let cluster = try PostgresCluster()
        try await cluster.start()
        do {
            let url = try await freshDatabase(in: cluster)
            try await withDatabase(url) { database in
                let key = try await makeProject(database)
                try await withServer(database) { server in
                    let form = "key=" + key.token.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                    let cookie = try #require(try await signIn(base: server.base, form: form), "sign-in set no cookie")
                    #expect(try await server.send("GET", "/", headers: ["Cookie": cookie]).status == 200)
                    try await cluster.stopServer()
                    for path in ["/", "/api/runs"] {
                        let start = ContinuousClock.now
                        let page = try await server.send("GET", path, headers: ["Cookie": cookie], timeout: 90)
                        let elapsed = ContinuousClock.now - start
                        #expect(page.status == 503, "\(path): \(page.status) \(page.text.prefix(300))")
                        #expect(page.text.contains("PostgreSQL did not answer"), "\(path): \(page.text.prefix(300))")
                        // The read deadline is 15 s; the pool alone waited about a minute.
                        #expect(elapsed < .seconds(40), "\(path) took \(elapsed)")
                    }
                }
            }
        } catch {
            try? await cluster.stop()
            throw error
        }
        try? await cluster.stop()
    }

    @Test("server commands say at once what PostgreSQL refused: a missing database, TLS it does not offer, nothing listening")
    func refusedConnections() async throws {
        let cluster = try await PostgresCluster.shared()
        let base = "postgres://postgres@127.0.0.1:\(await cluster.port)"
        let cases = [
            ("\(base)/no_such_database", #"database "no_such_database" does not exist"#),
            ("\(base)/postgres?sslmode=require", "does not offer TLS"),
            ("postgres://postgres@127.0.0.1:\(try PostgresCluster.freePort())/x", "connection refused"),
        ]
        for (url, expected) in cases {
            let start = ContinuousClock.now
            let result = try await RunningProcess(executable: builtExecutable("xeroml-server"),
                                                  arguments: ["projects", "list", "--database-url", url]).wait(timeout: .seconds(60))
            #expect(result.status == 1, "\(url): \(result.stderr)")
            #expect(result.stderr.contains(expected), "\(url): \(result.stderr)")
            // Not the pool's 30 s deadline.
            #expect(ContinuousClock.now - start < .seconds(20), "\(url)")
        }
    }

    @Test("migrations run once, concurrently too, and a database of a newer schema is refused naming both versions")
    func migrations() async throws {
        let url = try await freshDatabase()
        // Two servers starting at once on an empty database.
        async let a: Void = withDatabase(url) { _ in }
        async let b: Void = withDatabase(url) { _ in }
        _ = try await (a, b)
        #expect(try await count("SELECT count(*) FROM xeroml_schema_migrations", in: url) == TeamDatabase.schemaVersion)

        let cluster = try await PostgresCluster.shared()
        try await cluster.psql("INSERT INTO xeroml_schema_migrations VALUES (99, 'from the future', 0)", database: databaseName(url))
        let database = try TeamDatabase(url: url)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            do {
                try await database.migrate()
                Issue.record("a newer schema was accepted")
            } catch let error as TeamServerError {
                #expect(error.description.contains("99"))
                #expect(error.description.contains("version \(TeamDatabase.schemaVersion)"))
            } catch {
                Issue.record("unexpected \(error)")
            }
            group.cancelAll()
        }
    }

    @Test("xeroml-server projects and keys as a process: a key printed once, listed without its secret, revoked")
    func adminCommands() async throws {
        let url = try await freshDatabase()
        let executable = builtExecutable("xeroml-server")
        let directory = FileManager.default.temporaryDirectory
        @Sendable func server(_ arguments: [String]) async throws -> ProcessResult {
            try await PostgresCluster.run(executable, arguments, environment: ["DATABASE_URL": url], directory: directory, timeout: .seconds(60))
        }
        let created = try await server(["projects", "create", "evals"])
        #expect(created.status == 0, "\(created.stderr)")
        let duplicate = try await server(["projects", "create", "evals"])
        #expect(duplicate.status != 0)
        #expect(duplicate.stderr.contains("exists"))

        let key = try await server(["keys", "create", "--project", "evals"])
        #expect(key.status == 0, "\(key.stderr)")
        let token = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = token.split(separator: "_")
        try #require(token.wholeMatch(of: /xrml_[0-9a-f]{16}_[0-9a-f]{64}/) != nil && parts.count == 3, "\(token)")
        let keyID = String(parts[1])
        let secret = String(parts[2])

        let projects = try await server(["projects", "list"])
        #expect(projects.stdout.contains("evals"))

        try await withDatabase(url) { database in
            try await withServer(database) { endpoint in
                #expect(try await endpoint.get(SyncAPI.projectPath, token: token).status == 200)
                let list = try await server(["keys", "list", "--project", "evals"])
                #expect(list.status == 0)
                #expect(list.stdout.contains(keyID))
                #expect(!list.stdout.contains(secret))
                let revoke = try await server(["keys", "revoke", keyID])
                #expect(revoke.status == 0, "\(revoke.stderr)")
                #expect(try await endpoint.get(SyncAPI.projectPath, token: token).status == 401)
                let after = try await server(["keys", "list", "--project", "evals"])
                let line = after.stdout.split(separator: "\n").first { $0.hasPrefix(keyID) } ?? ""
                #expect(!line.hasSuffix("\t-"), "the key is listed as revoked: \(line)")
            }
        }
        let unknown = try await server(["keys", "create", "--project", "nope"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no project named nope"))
        let noDatabase = try await PostgresCluster.run(executable, ["projects", "list"], environment: ["DATABASE_URL": ""],
                                                       directory: directory, timeout: .seconds(30))
        #expect(noDatabase.status != 0)
        #expect(noDatabase.stderr.contains("--database-url"))
    }

    @Test("xeroml-server serve as a process: prints the bound port on one line, answers, stops on SIGTERM")
    func serveProcess() async throws {
        let url = try await freshDatabase()
        let key = try await withDatabase(url) { database in try await makeProject(database) }
        let process = try RunningProcess(executable: builtExecutable("xeroml-server"), arguments: ["--port", "0"],
                                         environment: ["DATABASE_URL": url])
        do {
            try await process.waitFor(.seconds(60), "the listening line") { out, _ in out.contains("listening on") }
            let line = try #require(process.output.stdout.split(separator: "\n").first { $0.hasPrefix("xeroml-server listening on http://127.0.0.1:") })
            let port = try #require(Int(line.split(separator: ":").last ?? ""))
            let endpoint = Endpoint(base: "http://127.0.0.1:\(port)")
            let project = try await endpoint.get(SyncAPI.projectPath, token: key.token)
            #expect(project.status == 200)
            #expect(try project.decode(ProjectInfo.self).name == key.name)
        } catch {
            await process.stop()
            throw error
        }
        process.signal(SIGTERM)
        let result = try await process.wait(timeout: .seconds(30))
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("ingestion rate: a run pushed over HTTP in gzip chunks (printed, not asserted)")
    func ingestionRate() async throws {
        let url = try await freshDatabase()
        let items = 10_000
        let run = SyntheticRun.make(items: items, itemsPerChunk: 2_000)
        let bodies = try run.chunks.map { try Gzip.compress(JSONEncoder().encode($0)) }
        try await withDatabase(url) { database in
            let key = try await makeProject(database)
            try await withServer(database) { server in
                let start = ContinuousClock.now
                #expect(try await server.put(SyncAPI.runPath(run.runID), run.manifest, token: key.token).status == 200)
                for (index, body) in bodies.enumerated() {
                    let answer = try await server.send("PUT", SyncAPI.chunkPath(run.runID, index: index), token: key.token, body: body,
                                                       headers: ["Content-Encoding": "gzip"])
                    #expect(answer.status == 200, "\(answer.text)")
                }
                #expect(try await server.post(SyncAPI.commitPath(run.runID), run.commit, token: key.token).status == 200)
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                print("◇ team server ingestion (debug build): \(items) items (\(items * 5) rows) in \(String(format: "%.2f", seconds)) s = \(Int(Double(items) / seconds)) items/s")
            }
        }
        #expect(try await count("SELECT count(*) FROM scores", in: url) == items * 2)
    }
}
