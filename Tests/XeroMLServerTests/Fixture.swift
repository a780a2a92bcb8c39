import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import XeroML
import XeroMLDashboard
import XeroMLServer

/// Markup and script payloads put into every field a user, a model or a file controls.
enum Hostile {
    static let script = "<script>alert('x')</script>"
    static let image = #""><img src=x onerror=alert(1)>"#
    static let javascript = "javascript:alert(document.cookie)"
    static let textarea = "</textarea><svg onload=alert(2)>"
    static let all = script + image + javascript + textarea

    /// Raw fragments that must never reach a served page: each would run or inject markup.
    static let forbidden = ["<script>alert", "<img src=x", "<svg onload", "</textarea><svg", "onerror=alert(1)>"]

    /// Fails the test when `body` holds a raw payload or a `javascript:` link.
    static func assertEscaped(_ body: String, _ place: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for fragment in forbidden {
            #expect(!body.contains(fragment), "\(place) serves \(fragment) unescaped", sourceLocation: sourceLocation)
        }
        for attribute in ["href=\"javascript", "src=\"javascript", "action=\"javascript", "href='javascript"] {
            #expect(!body.lowercased().contains(attribute), "\(place) has a \(attribute) link", sourceLocation: sourceLocation)
        }
        // Scripts only from our own static file.
        let scripts = body.components(separatedBy: "<script").count - 1
        let ours = body.components(separatedBy: #"<script src="/assets/dashboard.js" defer></script>"#).count - 1
        #expect(scripts == ours, "\(place) has an inline script", sourceLocation: sourceLocation)
    }
}

/// A store with one dataset of six items and two finished runs, every user-controlled field hostile.
///
/// Items are known by their external ids `i0`…`i5`. The baseline answers every item right; the
/// candidate answers `i2` wrong (a regression), fails on `i3` (a new error) and fixes nothing.
struct Fixture {
    let directory: URL
    let path: String
    let xeroml: XeroML
    let datasetID: String
    let baseline: ExperimentRun
    let candidate: ExperimentRun
    /// `Experiment.url` of each run, as a user would copy it.
    let baselineURL: URL
    let candidateURL: URL
    /// Run item ids by external item id.
    let baselineItems: [String: String]
    let candidateItems: [String: String]

    static let datasetName = "capitals " + Hostile.all

    static func make() async throws -> Fixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-ui-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("ui.sqlite").path
        let xeroml = try await XeroML.open(path: path)
        let dataset = try await xeroml.createDataset(name: datasetName, description: "about " + Hostile.all,
                                                     metadata: [Hostile.image: .string(Hostile.all)])
        try await xeroml.createDatasetItem(
            datasetName: datasetName, input: ["question": .string(Hostile.all), Hostile.image: .string(Hostile.textarea)],
            expectedOutput: .string(Hostile.all), metadata: [Hostile.script: .string(Hostile.all)], id: "i0")
        for i in 1...5 {
            try await xeroml.createDatasetItem(datasetName: datasetName, input: ["question": .string("question \(i)")],
                                               expectedOutput: .string("answer \(i)"), metadata: ["n": .int(Int64(i))], id: "i\(i)")
        }
        let items = try await xeroml.dataset(named: datasetName).items
        func run(_ name: String, candidate: Bool) async throws -> (ExperimentRun, URL, [String: String]) {
            let experiment = try await xeroml.createExperiment(
                name: name, datasetName: datasetName, description: "run " + Hostile.all,
                metadata: ["model": .string("model " + Hostile.script), Hostile.textarea: .string(Hostile.image)])
            var ids: [String: String] = [:]
            for item in items {
                let key = item.externalID!
                let result = try await experiment.runItem(item) { run in
                    await observe("generate " + Hostile.script, as: .generation, input: .string(Hostile.all)) { span in
                        span.setModel("gpt " + Hostile.image, parameters: [Hostile.script: .string(Hostile.textarea)])
                        span.setUsage(promptTokens: 10, completionTokens: 5)
                        span.setCost(0.001)
                        span.setOutput(.string(Hostile.all))
                    }
                    if candidate && key == "i3" { throw FixtureError(message: "model failed: " + Hostile.all) }
                    let right = !(candidate && key == "i2")
                    let expected = run.expectedOutput?.stringValue ?? ""
                    run.setOutput(.string(right ? expected : "wrong " + Hostile.image))
                    run.score(name: "correct", value: right, comment: "judged " + Hostile.all)
                    run.score(name: "quality", value: right ? 0.9 : 0.1, comment: Hostile.textarea)
                    run.score(name: "tone", value: .categorical("tone " + Hostile.script))
                }
                ids[key] = result.id
            }
            try await experiment.score(name: "overall " + Hostile.script, value: .numeric(0.5), comment: Hostile.all)
            try await experiment.finish()
            return (try await xeroml.run(id: experiment.id)!, experiment.url, ids)
        }
        let (baseline, baselineURL, baselineItems) = try await run("base " + Hostile.image, candidate: false)
        let (candidate, candidateURL, candidateItems) = try await run("cand " + Hostile.script, candidate: true)
        return Fixture(directory: directory, path: path, xeroml: xeroml, datasetID: dataset.id, baseline: baseline,
                       candidate: candidate, baselineURL: baselineURL, candidateURL: candidateURL,
                       baselineItems: baselineItems, candidateItems: candidateItems)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    var server: DashboardServer {
        DashboardServer(store: SQLiteDashboardStore(xeroml: xeroml), storeName: "ui " + Hostile.script)
    }

    func application() -> some ApplicationProtocol { server.application(host: "127.0.0.1", port: 0) }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension TestResponse {
    var text: String { String(buffer: body) }
}
