import ArgumentParser
import Foundation
import XeroML

struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and show experiment runs.",
        subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only the runs of this dataset.") var dataset: String?

        func run() async throws {
            let runs = try await store.open().runs(datasetName: dataset)
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

        func validate() throws {
            guard limit >= 0 else { throw ValidationError("--limit must not be negative") }
            guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        }

        func run() async throws {
            let xeroml = try store.open()
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
            print(summary.format(title: "Run \"\(found.name)\"" + (found.datasetName.map { " on \($0)" } ?? "")))
            print("  id: \(found.id)  status: \(found.status.rawValue)"
                  + (found.datasetVersion.map { "  dataset version: \($0)" } ?? ""))
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
}
