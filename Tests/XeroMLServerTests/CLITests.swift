import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import Testing
import XeroML
import XeroMLDashboard
import XeroMLSQLite
import XeroMLServer
import XeroMLTesting

/// A long-running process whose output is read as it comes (`xeroml ui`, a browser driver).
typealias ServerProcess = RunningProcess

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The address `xeroml ui` printed.
func printedBase(_ stdout: String) -> String? {
    guard let range = stdout.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return nil }
    return String(stdout[range])
}

func get(_ url: String) async throws -> (Int, String) {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = 20
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
}

func temporaryDirectory() -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-ui-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

@Suite(.timeLimit(.minutes(3))) struct UICommandTests {
    let xeroml = builtExecutable("xeroml")

    @Test func quickstartThenUIServesBothRunsAtThePrintedURLs() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("q.sqlite").path
        let quickstart = try RunningProcess(executable: xeroml, arguments: ["quickstart", "--db", path],
                                            environment: ["XEROML_UI_URL": ""], directory: repositoryRoot)
        let result = await quickstart.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Open the runs in the dashboard: `xeroml ui --db \(path)`, then"))
        let urls = result.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("http://127.0.0.1:7474/runs/") }
        #expect(Set(urls).count == 2)

        let ui = try ServerProcess(executable: xeroml, arguments: ["ui", "--db", path, "--port", "0"])
        defer { Task { await ui.stop() } }
        try await ui.waitFor(.seconds(30), "the dashboard's address") { out, _ in printedBase(out) != nil }
        let base = printedBase(ui.output.stdout)!
        for url in Set(urls) {
            let (status, body) = try await get(url.replacingOccurrences(of: "http://127.0.0.1:7474", with: base))
            #expect(status == 200)
            #expect(body.contains("lookup-v1") || body.contains("lookup-v2"))
            #expect(body.contains(">finished</span>"))
        }
        let (status, _) = try await get(base + "/runs/01930000-0000-7000-8000-000000000000")
        #expect(status == 404)
        await ui.stop()
    }

    @Test func uiRefusesFilesItCannotServe() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.sqlite").path
        var result = try await RunningProcess(executable: xeroml, arguments: ["ui", "--db", missing], directory: directory).wait()
        #expect(result.status != 0 && result.stderr.contains("no store at \(missing)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: missing), "nothing is created")

        let text = directory.appendingPathComponent("notes.txt").path
        try String(repeating: "not a database\n", count: 100).write(toFile: text, atomically: true, encoding: .utf8)
        result = try await RunningProcess(executable: xeroml, arguments: ["ui", "--db", text], directory: directory).wait()
        #expect(result.status != 0 && result.stderr.contains("not a XeroML store"), "\(result.stderr)")

        let newer = directory.appendingPathComponent("newer.sqlite").path
        _ = try await XeroML.open(path: newer)
        let connection = try Connection(path: newer)
        try connection.run("INSERT INTO xeroml_migrations(name) VALUES ('9999-from-the-future')")
        connection.close()
        result = try await RunningProcess(executable: xeroml, arguments: ["ui", "--db", newer], directory: directory).wait()
        #expect(result.status != 0 && result.stderr.contains("newer version of XeroML"), "\(result.stderr)")
        #expect(result.stderr.contains("9999-from-the-future"))

        // A store that needs a migration is not migrated by the dashboard: it says how to upgrade it.
        let older = directory.appendingPathComponent("older.sqlite").path
        _ = try await XeroML.open(path: older)
        let writer = try Connection(path: older)
        let appliedBefore = try writer.query("SELECT count(*) FROM xeroml_migrations") { $0.int(0) }[0]
        try writer.run("DELETE FROM xeroml_migrations WHERE name = (SELECT name FROM xeroml_migrations ORDER BY rowid DESC LIMIT 1)")
        writer.close()
        result = try await RunningProcess(executable: xeroml, arguments: ["ui", "--db", older], directory: directory).wait()
        #expect(result.status != 0 && result.stderr.contains("xeroml migrate --db \(older)"), "\(result.stderr)")
        let migrations = try Connection(path: older, mode: .readOnly)
        #expect(try migrations.query("SELECT count(*) FROM xeroml_migrations") { $0.int(0) } == [appliedBefore - 1], "nothing was migrated")
        migrations.close()
    }

    @Test func aHostOtherThanLoopbackStartsWithAWarning() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("w.sqlite").path
        _ = try await XeroML.open(path: path)
        let ui = try ServerProcess(executable: xeroml, arguments: ["ui", "--db", path, "--host", "0.0.0.0", "--port", "0"])
        try await ui.waitFor(.seconds(30), "the warning and the address") { out, err in
            err.contains("warning: listening on 0.0.0.0") && err.contains("can read the whole file") && out.contains("http://0.0.0.0:")
        }
        await ui.stop()
        #expect(DashboardServer.isLoopback("127.0.0.1") && DashboardServer.isLoopback("localhost") && DashboardServer.isLoopback("::1"))
        #expect(!DashboardServer.isLoopback("0.0.0.0") && !DashboardServer.isLoopback("192.168.1.2") && !DashboardServer.isLoopback("127.0.0.1.evil"))
    }

    @Test func theDashboardAddressMustBeHTTP() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("u.sqlite").path
        for bad in ["ftp://127.0.0.1:7474", "javascript:alert(1)", "not a url"] {
            let result = try await RunningProcess(executable: xeroml, arguments: ["quickstart", "--db", path],
                                                  environment: ["XEROML_UI_URL": bad], directory: repositoryRoot).wait()
            #expect(result.status != 0)
            #expect(result.stderr.contains("XEROML_UI_URL must be an http(s) URL"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: path), "refused before anything is written")
        }
        #expect(try XeroML.dashboardBaseURL(parsing: "https://evals.example:8443/base").host == "evals.example")
    }
}

@Suite(.timeLimit(.minutes(3))) struct LiveRunTests {
    /// Another process writes a run into the file the dashboard has open: the run shows as running with
    /// a growing count, its page polls, and once it ends it shows finished with every item. The run
    /// takes about 15 s (60 items of 250 ms, one at a time), so a test scheduled late on a busy machine
    /// still sees it running.
    @Test func aRunWrittenByAnotherProcessShowsLive() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("live.sqlite").path
        _ = try await XeroML.open(path: path)  // creates the store; the dashboard only reads it
        let xeroml = try await XeroML.open(path: path, readOnly: true)
        let app = DashboardServer(store: SQLiteDashboardStore(xeroml: xeroml), storeName: path).application(host: "127.0.0.1", port: 0)
        try await app.test(.router) { client in
            let helper = try ServerProcess(executable: builtExecutable("xeroml-testhelper"),
                                           arguments: [path, "numbers", "live-run", "60", "250", "1", "1"])
            defer { Task { await helper.stop() } }
            func json(_ uri: String) async throws -> Any {
                try await client.execute(uri: uri, method: .get) { response in
                    try JSONSerialization.jsonObject(with: Data(buffer: response.body))
                }
            }
            // The run appears, running, with some items and not all.
            let deadline = ContinuousClock.now + .seconds(60)
            var runID: String?
            var seen: [Int] = []
            while ContinuousClock.now < deadline {
                let runs = try await json("/api/runs") as? [[String: Any]] ?? []
                if let run = runs.first, let id = run["id"] as? String {
                    runID = id
                    let progress = try await json("/api/runs/\(id)/progress") as! [String: Any]
                    let count = progress["itemCount"] as! Int
                    if progress["status"] as? String == "running", count > 0, count < 60 {
                        seen.append(count)
                        if seen.count == 1 {
                            let page = try await client.execute(uri: "/runs/\(id)", method: .get) { String(buffer: $0.body) }
                            #expect(page.contains(#"id="live""#) && page.contains(#"<script src="/assets/dashboard.js" defer></script>"#))
                            #expect(page.contains(">running</span>"))
                        }
                    }
                    if progress["status"] as? String == "finished" { break }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await helper.waitFor(.seconds(30), "the helper to finish") { out, _ in out.contains("done 60") }
            let id = try #require(runID)
            #expect(!seen.isEmpty, "the run was seen running")
            #expect(seen == seen.sorted(), "the count only grows")
            let progress = try await json("/api/runs/\(id)/progress") as! [String: Any]
            #expect(progress["status"] as? String == "finished" && progress["itemCount"] as? Int == 60)
            let page = try await client.execute(uri: "/runs/\(id)", method: .get) { String(buffer: $0.body) }
            #expect(!page.contains(#"id="live""#) && page.contains(">finished</span>"))
        }
    }
}

/// The repository's top directory, found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
