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
    let hostile: Bool
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

    /// Realistic values for the browser journey and the documentation's screenshots.
    static let capitals = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
                           ("Japan", "Tokyo"), ("Canada", "Ottawa")]

    /// With `hostile`, every user-controlled field holds ``Hostile`` payloads; without, plain capitals
    /// (the same shape: `i2` regresses, `i3` fails in the candidate).
    static func make(hostile: Bool = true) async throws -> Fixture {
        let h = hostile ? Hostile.all : ""
        let datasetName = hostile ? Self.datasetName : "capitals"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xeroml-ui-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("ui.sqlite").path
        let xeroml = try await XeroML.open(path: path)
        let dataset = try await xeroml.createDataset(name: datasetName, description: hostile ? "about " + Hostile.all : "Capital cities",
                                                     metadata: hostile ? [Hostile.image: .string(Hostile.all)] : nil)
        if hostile {
            try await xeroml.createDatasetItem(
                datasetName: datasetName, input: ["question": .string(Hostile.all), Hostile.image: .string(Hostile.textarea)],
                expectedOutput: .string(Hostile.all), metadata: [Hostile.script: .string(Hostile.all)], id: "i0")
        }
        for i in (hostile ? 1 : 0)...5 {
            let (country, capital) = capitals[i]
            try await xeroml.createDatasetItem(
                datasetName: datasetName, input: ["question": .string(hostile ? "question \(i)" : "What is the capital of \(country)?")],
                expectedOutput: .string(hostile ? "answer \(i)" : capital), metadata: ["n": .int(Int64(i))], id: "i\(i)")
        }
        let items = try await xeroml.dataset(named: datasetName).items
        func run(_ name: String, candidate: Bool) async throws -> (ExperimentRun, URL, [String: String]) {
            let experiment = try await xeroml.createExperiment(
                name: name, datasetName: datasetName, description: hostile ? "run " + Hostile.all : "Answers from a lookup table",
                metadata: hostile ? ["model": .string("model " + Hostile.script), Hostile.textarea: .string(Hostile.image)]
                    : ["model": .string(candidate ? "small-model-v2" : "small-model-v1"), "temperature": 0])
            var ids: [String: String] = [:]
            for item in items {
                let key = item.externalID!
                let result = try await experiment.runItem(item) { run in
                    let right = !(candidate && key == "i2")
                    let expected = run.expectedOutput?.stringValue ?? ""
                    let answer = right ? expected : (hostile ? "wrong " + Hostile.image : "Milan")
                    await observe("retrieve", input: run.input) { span in span.setOutput(["rows": 1]) }
                    await observe("generate " + (hostile ? Hostile.script : ""), as: .generation, input: .string("Answer briefly. " + h)) { span in
                        span.setModel(hostile ? "gpt " + Hostile.image : "small-model", parameters: hostile ? [Hostile.script: .string(Hostile.textarea)] : ["temperature": 0])
                        span.setUsage(promptTokens: 10, completionTokens: 5)
                        span.setCost(0.001)
                        span.setOutput(.string(hostile ? Hostile.all : answer))
                    }
                    if candidate && key == "i3" { throw ModelError(message: "model failed: " + (hostile ? Hostile.all : "429 Too Many Requests")) }
                    run.setOutput(.string(answer))
                    run.score(name: "correct", value: right, comment: hostile ? "judged " + Hostile.all : (right ? "matches" : "expected \(expected)"))
                    run.score(name: "quality", value: right ? 0.9 : 0.1, comment: hostile ? Hostile.textarea : nil)
                    run.score(name: "tone", value: .categorical(hostile ? "tone " + Hostile.script : "neutral"))
                }
                ids[key] = result.id
            }
            try await experiment.score(name: "overall" + (hostile ? " " + Hostile.script : ""), value: .numeric(candidate ? 0.8 : 1), comment: hostile ? Hostile.all : nil)
            try await experiment.finish()
            return (try await xeroml.run(id: experiment.id)!, experiment.url, ids)
        }
        let (baseline, baselineURL, baselineItems) = try await run(hostile ? "base " + Hostile.image : "prompt-v1", candidate: false)
        let (candidate, candidateURL, candidateItems) = try await run(hostile ? "cand " + Hostile.script : "prompt-v2", candidate: true)
        return Fixture(hostile: hostile, directory: directory, path: path, xeroml: xeroml, datasetID: dataset.id, baseline: baseline,
                       candidate: candidate, baselineURL: baselineURL, candidateURL: candidateURL,
                       baselineItems: baselineItems, candidateItems: candidateItems)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    var server: DashboardServer {
        DashboardServer(store: SQLiteDashboardStore(xeroml: xeroml), storeName: hostile ? "ui " + Hostile.script : "evals.sqlite")
    }

    func application() -> some ApplicationProtocol { server.application(host: "127.0.0.1", port: 0) }
}

struct ModelError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension TestResponse {
    var text: String { String(buffer: body) }
}
