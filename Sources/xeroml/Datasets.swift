import ArgumentParser
import Foundation
import XeroML

struct Datasets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import, list and show datasets.",
        subcommands: [Import.self, List.self, Show.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a JSONL, JSON or CSV file into a dataset (created when missing).",
            discussion: """
                Each item is an object: {"id": "q1", "input": …, "expected_output": …, "metadata": {…}}.
                Only "input" is required. Items whose "id" already exists are updated when they differ.
                The file is read and written in one transaction: a bad line anywhere changes nothing.
                """)
        @OptionGroup var store: StoreOptions
        @Argument(help: "The file to import (.jsonl, .ndjson, .json or .csv).") var file: String
        @Option(help: "The dataset name (default: the file name without extension).") var name: String?
        @Option(help: "jsonl, json or csv (default: from the extension).") var format: String?

        func validate() throws {
            if let format, DatasetFileFormat(rawValue: format) == nil {
                throw ValidationError("--format must be jsonl, json or csv")
            }
        }

        func run() async throws {
            let xeroml = try store.open()
            let datasetName = name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            let report = try await xeroml.importDataset(name: datasetName, from: file,
                                                        format: format.flatMap(DatasetFileFormat.init(rawValue:)))
            print(report.createdDataset ? "Created dataset \(report)" : "Updated dataset \(report)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List datasets.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let datasets = try await store.open().datasets()
            guard !datasets.isEmpty else { print("No datasets in \(store.path)."); return }
            var table = Table(headers: ["NAME", "ITEMS", "VERSION", "UPDATED", "DESCRIPTION"])
            for d in datasets {
                table.append([d.name, "\(d.itemCount)", "\(d.version)", formatDate(d.updatedAt), d.description ?? ""])
            }
            print(table.render())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a dataset and its items.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The dataset name.") var name: String
        @Option(help: "How many items to show.") var limit = 20

        func validate() throws {
            guard limit >= 0 else { throw ValidationError("--limit must not be negative") }
        }

        func run() async throws {
            let xeroml = try store.open()
            let dataset = try await xeroml.dataset(named: name)
            print("Dataset \(dataset.name) (version \(dataset.version), \(dataset.items.count) items)")
            if let description = dataset.description { print(description) }
            var table = Table(headers: ["ID", "INPUT", "EXPECTED", "METADATA"])
            for item in dataset.items.prefix(limit) {
                table.append([item.externalID ?? item.id, item.input.displayText,
                              item.expectedOutput?.displayText ?? "", item.metadata?.jsonString ?? ""])
            }
            print(table.render())
            if dataset.items.count > limit { print("… \(dataset.items.count - limit) more (--limit)") }
        }
    }
}

func formatDate(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
    return formatter.string(from: date)
}
