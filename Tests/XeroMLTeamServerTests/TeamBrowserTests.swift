import Foundation
import Testing
import XeroML
import XeroMLTesting

/// The team server's dashboard in a real headless Chromium, as a user signs in and browses it: the
/// quickstart's runs pushed with the CLI to `xeroml-server` on PostgreSQL. With
/// `XEROML_SCREENSHOTS=DIR`, a PNG of each page goes to DIR.
@Suite("Team dashboard in a browser", .serialized, .timeLimit(.minutes(4)),
       .enabled(if: postgresAvailable && WebDriver.available,
                "team browser tests skipped: PostgreSQL, chromium or chromium-driver is missing"))
struct TeamBrowserTests {
    static let screenshots = ProcessInfo.processInfo.environment["XEROML_SCREENSHOTS"]

    @Test("a wrong key is refused on the page, the project key signs in, the pushed runs and their items open, sign-out ends it")
    func signInAndBrowse() async throws {
        let databaseURL = try await freshDatabase()
        let key = try await SyncEndToEndTests.createKey(databaseURL, project: "browser")
        let file = SyncEndToEndTests.temporaryFile("quickstart.sqlite")
        let made = try await SyncEndToEndTests.xeroml(["quickstart", "--db", file], key: key)
        #expect(made.status == 0, "\(made.stderr)")
        let local = try XeroML(path: file, readOnly: true)
        let runs = try await local.runs()
        try await SyncEndToEndTests.withServerProcess(databaseURL) { _, base in
            let pushed = try await SyncEndToEndTests.xeroml(["sync", "push", "--all", "--db", file, "--server", base], key: key)
            #expect(pushed.status == 0, "\(pushed.stdout)\(pushed.stderr)")
            try await withHeadlessBrowser { browser in
                // Without a session, the dashboard sends the browser to the sign-in page.
                try await browser.open(base + "/")
                _ = try await browser.waitForURL("the sign-in page") { $0.hasSuffix("/login") }
                try await browser.screenshot("team-login", to: Self.screenshots)

                try await browser.type("xrml_abc_wrong", into: browser.element("input[name='key']"))
                try await browser.click(browser.element("form.login button[type='submit']"))
                try await browser.screenshot("team-login-refused", to: Self.screenshots)
                let refusal = try await browser.text(browser.element("p.bad[role='alert']"))
                #expect(refusal.contains("not a valid project key"), "\(refusal)")

                try await browser.type(key, into: browser.element("input[name='key']"))
                try await browser.click(browser.element("form.login button[type='submit']"))
                _ = try await browser.waitForURL("the home page") { !$0.contains("/login") }
                let listed = try await browser.text(browser.element("#runs table"))
                for run in runs { #expect(listed.contains(run.name), "\(run.name) is not listed: \(listed)") }
                try await browser.screenshot("team-home", to: Self.screenshots)

                // A run's page, from the URL the push printed, then one of its items.
                let run = try #require(runs.first)
                try await browser.open(base + "/runs/\(run.id)")
                #expect(try await browser.text(browser.element("h1")) == run.name)
                _ = try await browser.element("table.items tbody a[href^='/items/']")
                try await browser.screenshot("team-run", to: Self.screenshots)
                try await browser.click(browser.element("table.items tbody a[href^='/items/']"))
                _ = try await browser.waitForURL("an item") { $0.contains("/items/") }
                #expect(try await browser.text(browser.element("h1")).hasPrefix("Item #"))
                try await browser.screenshot("team-item", to: Self.screenshots)

                // Sign out: the session ends, and the run's page asks for a key again.
                try await browser.click(browser.element("form.sign-out button[type='submit']"))
                _ = try await browser.waitForURL("the sign-in page after sign-out") { $0.hasSuffix("/login") }
                try await browser.open(base + "/runs/\(run.id)")
                _ = try await browser.waitForURL("the sign-in page for a run") { $0.contains("/login") }
            }
        }
    }
}
