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
                FILE may be - (or /dev/stdin) to read standard input, or a named pipe; errors then name \
                the place <stdin>:LINE. Standard input needs --name, and --format csv for CSV.

                CSV: the header names the columns id, input, expected_output, metadata (a JSON object) \
                and metadata.KEY. A cell of input or expected_output is text, except that one starting \
                with { or [ is read as JSON and must be valid. metadata.KEY cells are text. To choose, \
                declare a column's type: in the header (input:text, expected_output:json, \
                metadata.KEY:json) or with --text-columns / --json-columns, which override the header. \
                A text column keeps every cell as written ([INST] hello stays text); in a JSON column \
                every non-empty cell is one JSON value ("text" quoted, 4, true, {…}, […]).
                """)
        @OptionGroup var store: StoreOptions
        @Argument(help: "The file to import (.jsonl, .ndjson, .json or .csv), or - for standard input.") var file: String
        @Option(help: "The dataset name (default: the file name without extension; required for standard input).")
        var name: String?
        @Option(help: "jsonl, json or csv (default: from the extension, else JSON when the input starts with [, else JSONL).")
        var format: String?
        @Option(help: ArgumentHelp("CSV columns read as text, every cell as written (comma-separated, repeatable).",
                                   valueName: "columns"))
        var textColumns: [String] = []
        @Option(help: ArgumentHelp("CSV columns whose cells are each one JSON value (comma-separated, repeatable).",
                                   valueName: "columns"))
        var jsonColumns: [String] = []

        var readsStandardInput: Bool { file == "-" || file == "/dev/stdin" }

        /// The types given with --text-columns and --json-columns, by column name.
        func columnTypes() throws -> [String: CSVCellType] {
            var types: [String: CSVCellType] = [:]
            for (option, type, lists) in [("--text-columns", CSVCellType.text, textColumns), ("--json-columns", .json, jsonColumns)] {
                for column in lists.flatMap({ $0.split(separator: ",") }).map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    guard !column.isEmpty else { throw ValidationError("\(option): a column name is empty") }
                    if let other = types[column], other != type {
                        throw ValidationError("column \"\(column)\" is given to both --text-columns and --json-columns")
                    }
                    types[column] = type
                }
            }
            return types
        }

        func validate() throws {
            if let format, DatasetFileFormat(rawValue: format) == nil {
                throw ValidationError("--format must be jsonl, json or csv")
            }
            if readsStandardInput && name == nil {
                throw ValidationError("reading standard input needs --name NAME for the dataset")
            }
            let types = try columnTypes()
            if !types.isEmpty, let format, format != "csv" {
                throw ValidationError("--text-columns and --json-columns apply to CSV files only")
            }
        }

        func run() async throws {
            let xeroml = try store.open()
            let datasetName = name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            let report = try await xeroml.importDataset(name: datasetName, from: readsStandardInput ? "/dev/stdin" : file,
                                                        format: format.flatMap(DatasetFileFormat.init(rawValue:)),
                                                        csvColumnTypes: try columnTypes())
            print(report.createdDataset ? "Created dataset \(report)" : "Updated dataset \(report)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List datasets.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let datasets = try await store.openReadOnly().datasets()
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
            let xeroml = try store.openReadOnly()
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
