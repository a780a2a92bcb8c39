import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XeroML
import XeroMLDashboard
import XeroMLServer
import XeroMLTesting

enum Browser {
    static let skipMessage: Comment = "browser tests skipped: \(WebDriver.chromium) or \(WebDriver.chromedriver) is missing (apt-get install chromium chromium-driver)"
    /// Whether the browser and its driver are installed; says so on one line when they are not.
    static let ready: Bool = {
        if !WebDriver.available { print("◇ " + skipMessage.rawValue) }
        return WebDriver.available
    }()
}

/// A headless Chromium, driven over WebDriver as a user would use the dashboard.
///
/// Needs Debian's `chromium` and `chromium-driver` (CI installs both); without them the tests say so
/// on one line and are skipped. With `XEROML_SCREENSHOTS=DIR` they write a PNG of each page to DIR.
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: Browser.ready, Browser.skipMessage))
struct BrowserTests {
    static let screenshots = ProcessInfo.processInfo.environment["XEROML_SCREENSHOTS"]

    /// A headless browser for `body` (``withHeadlessBrowser(_:)``).
    func withBrowser(_ body: (WebDriver) async throws -> Void) async throws {
        try await withHeadlessBrowser(body)
    }

    @Test func fromARunsURLToTheRegressionsOfACompareRuns() async throws {
        let f = try await Fixture.make(hostile: false)
        defer { f.remove() }
        try await f.application().test(.live) { client in
            let base = "http://127.0.0.1:\(client.port!)"
            try await withBrowser { browser in
                try await browser.open(base + "/")
                _ = try await browser.element("#runs table")
                try await browser.screenshot("dashboard-home", to: Self.screenshots)

                // The URL the experiment printed opens its run.
                try await browser.open(base + f.candidateURL.path)
                #expect(try await browser.text(browser.element("h1")) == f.candidate.name)
                #expect(try await browser.text(browser.element("#errors")).contains("model failed: 429 Too Many Requests"))
                try await browser.screenshot("dashboard-run", to: Self.screenshots)

                // An item's trace.
                try await browser.click(browser.element("table.items tbody a[href^='/items/']"))
                _ = try await browser.waitForURL("an item") { $0.contains("/items/") }
                #expect(try await browser.text(browser.element("h1")).hasPrefix("Item #"))
                #expect(try await browser.text(browser.element(".trace-column h2")) == "Task trace")
                try await browser.screenshot("dashboard-trace", to: Self.screenshots)

                // Its dataset, two runs checked, Compare runs.
                try await browser.click(browser.element("header nav a[href^='/datasets/']"))
                _ = try await browser.waitForURL("the dataset") { $0.contains("/datasets/\(f.datasetID)") }
                try await browser.screenshot("dashboard-dataset", to: Self.screenshots)
                let boxes = try await browser.elements("input[name='run']")
                #expect(boxes.count == 2)
                for box in boxes { try await browser.click(box) }
                try await browser.click(browser.element("form.compare-form button[type='submit']"))
                let compareURL = try await browser.waitForURL("Compare runs") { $0.contains("/compare?") }
                #expect(compareURL.contains(f.baseline.id) && compareURL.contains(f.candidate.id), "the selection is in the URL")
                #expect(try await browser.text(browser.element("h1")) == "Compare runs")
                try await browser.screenshot("dashboard-compare", to: Self.screenshots)

                // Only regressions: the item the candidate got wrong, and the one it failed.
                try await browser.click(browser.element("select[name='filter'] option[value='regressions']"))
                try await browser.click(browser.element("form.filters button[type='submit']"))
                _ = try await browser.waitForURL("the regressions") { $0.contains("filter=regressions") }
                let table = try await browser.text(browser.element("table.compare tbody"))
                #expect(table.contains("capital of Italy") && table.contains("regressed") && table.contains("Milan"))
                #expect(table.contains("capital of Spain") && table.contains("new error"))
                for country in ["France", "Germany", "Japan", "Canada"] { #expect(!table.contains(country)) }
                try await browser.screenshot("dashboard-compare-regressions", to: Self.screenshots)
            }
        }
    }

    /// Hostile names, inputs and errors show as text in a real browser: nothing runs, no dialog opens.
    @Test func hostileValuesShowAsText() async throws {
        let f = try await Fixture.make()
        defer { f.remove() }
        try await f.application().test(.live) { client in
            let base = "http://127.0.0.1:\(client.port!)"
            try await withBrowser { browser in
                for path in ["/", "/datasets/\(f.datasetID)", f.candidateURL.path, "/items/\(f.candidateItems["i0"]!)",
                             "/compare?run=\(f.baseline.id)&run=\(f.candidate.id)&diff=expected"] {
                    try await browser.open(base + path)
                    _ = try await browser.element("main h1")
                    #expect(try await browser.elements("main img, main script, main iframe").isEmpty, "\(path) grew an element")
                    #expect(try await browser.alertText() == nil, "\(path) opened a dialog")
                }
                try await browser.open(base + f.candidateURL.path)
                #expect(try await browser.text(browser.element("h1")) == f.candidate.name)
                #expect(try await browser.text(browser.element("#errors")).contains("model failed: " + Hostile.script))
            }
        }
    }

    /// The one script: a running run's page counts up without being reloaded, then shows the run finished.
    @Test func aRunningRunsPageUpdatesItself() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("live.sqlite").path
        _ = try await XeroML.open(path: path)  // creates the store; the dashboard only reads it
        let xeroml = try await XeroML.open(path: path, readOnly: true)
        let app = DashboardServer(store: SQLiteDashboardStore(xeroml: xeroml), storeName: path).application(host: "127.0.0.1", port: 0)
        try await app.test(.live) { client in
            let base = "http://127.0.0.1:\(client.port!)"
            try await withBrowser { browser in
                let helper = try ServerProcess(executable: builtExecutable("xeroml-testhelper"),
                                               arguments: [path, "numbers", "slow-run", "80", "60", "1", "1"])
                defer { Task { await helper.stop() } }
                // Wait for the run to exist, then open its page once.
                var runID: String?
                let deadline = ContinuousClock.now + .seconds(30)
                while runID == nil, ContinuousClock.now < deadline {
                    runID = try await xeroml.runs().first.map(\.id)
                    try await Task.sleep(for: .milliseconds(50))
                }
                let id = try #require(runID)
                try await browser.open(base + "/runs/\(id)")
                let first = Int(try await browser.text(browser.element("#live-items"))) ?? -1
                try await browser.screenshot("dashboard-run-live", to: Self.screenshots)
                // The count grows in place, and the finished run replaces the live line.
                let end = ContinuousClock.now + .seconds(60)
                var grew = false
                while ContinuousClock.now < end {
                    if try await !browser.elements(".status-running").isEmpty,
                       let live = try? await browser.text(browser.element("#live-items", timeout: .seconds(1))),
                       let count = Int(live), count > first {
                        grew = true
                    }
                    if try await browser.elements(".status-finished").count > 0 { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(grew, "the item count rose without a reload")
                #expect(try await browser.elements(".status-finished").count == 1, "the page shows the run finished")
                #expect(try await browser.elements("#live").isEmpty)
                #expect(try await browser.text(browser.element("#live-items")) == "80")
            }
        }
    }
}
