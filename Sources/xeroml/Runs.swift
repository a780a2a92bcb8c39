import ArgumentParser
import Foundation
import XeroML

struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and close experiment runs.",
        subcommands: [List.self, Show.self, Finish.self, Abort.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only the runs of this dataset.") var dataset: String?

        func run() async throws {
            let runs = try await store.openReadOnly().runs(datasetName: dataset)
            guard !runs.isEmpty else { print("No runs in \(store.path)."); return }
            var table = Table(headers: ["ID", "NAME", "DATASET", "STATUS", "ITEMS", "ERRORS", "CREATED"])
            for r in runs {
                table.append([r.id, r.name, r.datasetName ?? "-", r.status.rawValue, "\(r.itemCount)",
                              "\(r.errorCount)", formatDate(r.createdAt)])
            }
            print(table.render())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run: its summary and item results.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The run: its id, an id prefix of 8+ characters, or its name.") var run: String
        @Option(help: "The dataset, when several datasets have runs of that name.") var dataset: String?
        @Option(help: "How many item results to list (0 for the summary only).") var limit = 20
        @Option(help: "text or json.") var format = "text"
        @Flag(help: "Print the full error text of every failed item (grouped by message), not the table.") var errors = false

        func validate() throws {
            guard limit >= 0 else { throw ValidationError("--limit must not be negative") }
            guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        }

        func run() async throws {
            let xeroml = try store.openReadOnly()
            guard let found = try await xeroml.findRun(run, datasetName: dataset) else {
                throw CommandError("no run \"\(run)\" in \(store.path); `xeroml runs list` shows the runs")
            }
            // The summary is computed in SQL, so it stays fast for runs of any size.
            let summary = try await xeroml.summary(runID: found.id)
            if format == "json" {
                var object: [String: JSONValue] = [
                    "id": .string(found.id), "name": .string(found.name), "status": .string(found.status.rawValue),
                    "dataset": found.datasetName.map(JSONValue.string) ?? .null,
                    "dataset_version": found.datasetVersion.map { .int(Int64($0)) } ?? .null,
                    "summary": summary.jsonValue,
                ]
                if let description = found.description { object["description"] = .string(description) }
                print(JSONValue.object(object).jsonString)
                return
            }
            if errors {
                try await printErrors(of: found, in: xeroml)
                return
            }
            print(summary.format(title: "Run \"\(found.name)\"" + (found.datasetName.map { " on \($0)" } ?? "")))
            print("  id: \(found.id)  status: \(describeStatus(found))"
                  + (found.datasetVersion.map { "  dataset version: \($0)" } ?? ""))
            if let resumes = found.configuration?["resumed_with_changes"], case .array(let list) = resumes, !list.isEmpty {
                for resume in list {
                    let changes = resume["changes"].flatMap { value -> [String]? in
                        guard case .array(let items) = value else { return nil }
                        return items.compactMap(\.stringValue)
                    } ?? []
                    print("  resumed with changes: \(changes.joined(separator: "; "))")
                }
            }
            if found.errorCount > 0 {
                print("  \(found.errorCount) failed item\(found.errorCount == 1 ? "" : "s"): `xeroml runs show \(found.name) --errors` prints their errors in full")
            }
            guard limit > 0 else { return }
            let results = try await xeroml.results(runID: found.id, limit: limit)
            guard !results.isEmpty else { return }
            let names = summary.scores.map(\.name)
            var table = Table(headers: ["INPUT", "OUTPUT", "EXPECTED"] + names.map { $0.uppercased() } + ["LATENCY", "ERROR"])
            for item in results.prefix(limit) {
                table.append([item.input.displayText, item.output?.displayText ?? "", item.expectedOutput?.displayText ?? ""]
                             + names.map { item.scoreValue($0)?.description ?? "" }
                             + [String(format: "%.1f ms", Double(item.latency.components.attoseconds) / 1e15
                                       + Double(item.latency.components.seconds) * 1000), item.error ?? ""])
            }
            print("")
            print(table.render(maxColumnWidth: 40))
            if summary.itemCount > limit { print("… \(summary.itemCount - limit) more (--limit)") }
        }
    }

    struct Finish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a run finished by hand (a run whose process died or never called finish).",
            discussion: "A finished run is complete and immutable: compare and gate take it as it is.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The run: its id, an id prefix of 8+ characters, or its name.") var run: String
        @Flag(help: "Close it even if its process still runs.") var force = false

        func run() async throws {
            let closed = try await store.open().closeRun(run, status: .finished, force: force)
            print("Run \"\(closed.name)\" is finished (\(closed.itemCount) results, \(closed.errorCount) failed).")
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a run failed by hand: it is not complete and the gate refuses it.",
            discussion: "It can still be resumed (`--resume`) to complete it.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The run: its id, an id prefix of 8+ characters, or its name.") var run: String
        @Flag(help: "Close it even if its process still runs.") var force = false

        func run() async throws {
            let closed = try await store.open().closeRun(run, status: .failed, force: force)
            print("Run \"\(closed.name)\" is marked failed (\(closed.itemCount) results kept).")
        }
    }
}

/// The status with what a reader should know: who runs it, or why a stored `running` reads otherwise.
func describeStatus(_ run: ExperimentRun) -> String {
    var text = run.status.rawValue
    if let owner = run.owner {
        if run.status == .running {
            text += " (process \(owner.processID) on \(owner.host))"
        } else if run.storedStatus == .running {
            text += " (its process \(owner.processID) on \(owner.host) is gone; resume it, or close it with `xeroml runs finish|abort`)"
        }
    }
    return text
}

/// Every failed item of `run`, grouped by error message, each message in full.
func printErrors(of run: ExperimentRun, in xeroml: XeroML) async throws {
    let results = try await xeroml.results(runID: run.id)
    let failed = results.filter { $0.error != nil }
    guard !failed.isEmpty else { print("Run \"\(run.name)\" has no failed items."); return }
    var groups: [String: [ExperimentItemResult]] = [:]
    for item in failed { groups[item.error!, default: []].append(item) }
    print("Run \"\(run.name)\": \(failed.count) failed item\(failed.count == 1 ? "" : "s"), \(groups.count) distinct error\(groups.count == 1 ? "" : "s")")
    for (message, items) in groups.sorted(by: { $0.value.count > $1.value.count }) {
        print("")
        print("\(items.count) × \(message)")
        for item in items.prefix(5) {
            print("    item \(item.datasetItemID ?? item.id) rep \(item.repetition), \(item.attempts) attempt\(item.attempts == 1 ? "" : "s"): \(item.input.displayText.prefix(100))")
        }
        if items.count > 5 { print("    … and \(items.count - 5) more") }
    }
}
