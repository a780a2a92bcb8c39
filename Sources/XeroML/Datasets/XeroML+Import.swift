import Foundation

/// The layout of a dataset file.
public enum DatasetFileFormat: String, Sendable, CaseIterable {
    /// One JSON object per line (`.jsonl`, `.ndjson`). Blank lines are skipped.
    case jsonl
    /// One JSON array of objects (`.json`).
    case json
    /// Comma-separated values with a header row (`.csv`). See ``XeroML/importDataset(name:from:format:description:csvColumnTypes:)``.
    case csv

    /// The format implied by a file's extension, or `nil`.
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "jsonl", "ndjson": self = .jsonl
        case "json": self = .json
        case "csv": self = .csv
        default: return nil
        }
    }
}

/// How the cells of a CSV column become JSON values. See
/// ``XeroML/importDataset(name:from:format:description:csvColumnTypes:)``.
///
/// Declare a column's type in the header with a suffix (`input:text`, `expected_output:json`,
/// `metadata.difficulty:json`), or with the `csvColumnTypes` argument (the CLI's `--text-columns` and
/// `--json-columns`), which overrides the header.
public enum CSVCellType: String, Sendable, Hashable, CaseIterable {
    /// The default of `input` and `expected_output`: a cell is text, except that one starting with `{`
    /// or `[` is read as a JSON object or array and must be valid JSON (a cell that is not is an error
    /// that says how to import it as text).
    case auto
    /// Every cell is text, as written (`[INST] hello` and `{"a": 1}` stay strings). The default of
    /// `metadata.KEY` columns.
    case text
    /// Every non-empty cell is one JSON value: `"quoted text"`, `4`, `true`, `null`, `{…}`, `[…]`.
    case json
}

/// What an import did.
public struct ImportReport: Sendable, Hashable, CustomStringConvertible {
    public var datasetName: String
    /// The dataset version after the import.
    public var version: Int
    /// Items added.
    public var created = 0
    /// Items whose `id` matched an existing item with different content: the old one was archived.
    public var updated = 0
    /// Items whose `id` matched an existing item with the same content: nothing written.
    public var unchanged = 0
    /// Whether the import created the dataset.
    public var createdDataset = false

    public var description: String {
        "\(datasetName): \(created) created, \(updated) updated, \(unchanged) unchanged (version \(version))"
    }
}

extension XeroML {
    /// The keys an item object may have. Anything else is refused, so a typo like `expected_ouput` is an
    /// error instead of silently missing data.
    static let itemKeys: Set<String> = ["id", "input", "expected_output", "expectedOutput", "metadata"]

    /// Imports a JSONL, JSON or CSV file into the dataset `name`, creating it when missing.
    ///
    /// Each item is an object with `input` (required, any JSON), and optionally `expected_output`
    /// (or `expectedOutput`), `metadata` (an object) and `id` (a string or number you choose; importing
    /// again with the same id updates the item instead of adding a copy). Numbers must fit a 64-bit
    /// floating-point value: `1e999` is an error, not `null`.
    ///
    /// A CSV file has a header row naming its columns: `input` (required), `expected_output` (or
    /// `expectedOutput`), `id`, `metadata` (a JSON object), and any number of `metadata.KEY` columns,
    /// each adding KEY to the item's metadata. How a column's cells become values is its
    /// ``CSVCellType``: by default an `input` or `expected_output` cell is text unless it starts with
    /// `{` or `[`, when it must be a JSON object or array (``CSVCellType/auto``), and `metadata.KEY`
    /// cells are text. A suffix in the header (`input:text`, `expected_output:json`) or
    /// `csvColumnTypes` (keyed by column name, overriding the header) declares another type. Empty
    /// optional cells are absent values. Other columns are refused, like unknown fields in JSON.
    ///
    /// The file is read, validated and written in one transaction, a thousand items at a time, so
    /// memory stays flat for large files; a malformed line anywhere rolls everything back: a malformed
    /// file changes nothing. `path` may also be standard input (`/dev/stdin`, named `<stdin>` in
    /// errors), a named pipe or another stream: it is first copied to a temporary file (removed
    /// afterwards), so the store is not locked while the stream is slow.
    /// - Throws: ``XeroMLError/Code/importFailed`` with a message that starts with `file:line:`.
    @discardableResult
    public func importDataset(name: String, from path: String, format: DatasetFileFormat? = nil,
                              description: String? = nil,
                              csvColumnTypes: [String: CSVCellType] = [:]) async throws -> ImportReport {
        try Self.validateName(name, what: "dataset")
        let source = try await ImportSource.open(path)
        defer { source.close() }
        return try await store.write { db in
            var created = false
            var row = try Self.datasetRow(db, name: name)
            if row == nil {
                let dataset = try Self.insertDataset(db, name: name, description: description, metadata: nil)
                row = DatasetRow(id: dataset.id, name: name, description: description, metadata: nil, version: 0,
                                 createdAt: dataset.createdAt)
                created = true
            }
            var report = ImportReport(datasetName: name, version: row!.version)
            report.createdDataset = created
            try Self.forEachDraft(inFile: source.readablePath, named: source.name, format: format,
                                  csvColumnTypes: csvColumnTypes) { drafts in
                _ = try Self.upsertItems(db, datasetID: row!.id, newVersion: row!.version + 1, drafts: drafts,
                                         report: &report)
            }
            if report.created + report.updated > 0 {
                report.version = try Self.bumpVersion(db, datasetID: row!.id)
            }
            return report
        }
    }

    /// Reads and validates a dataset file, handing its items to `body` a chunk at a time. Nothing is
    /// kept between chunks but the ids seen so far (to refuse duplicates).
    ///
    /// - Parameters:
    ///   - path: a regular file (it is memory-mapped).
    ///   - name: how errors name the file (by default `path`).
    static func forEachDraft(inFile path: String, named name: String? = nil, format: DatasetFileFormat?,
                             csvColumnTypes: [String: CSVCellType] = [:], chunkSize: Int = 1_000,
                             _ body: ([ItemDraft]) throws -> Void) throws {
        let name = name ?? path
        let data: Data
        do {
            // Mapped, not copied: pages are read as the parser reaches them.
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw XeroMLError(.importFailed, "\(name): cannot read the file (\(error.localizedDescription))")
        }
        let format = format ?? DatasetFileFormat(pathExtension: URL(fileURLWithPath: name).pathExtension)
            ?? sniffFormat(data)
        var chunk: [ItemDraft] = []
        chunk.reserveCapacity(chunkSize)
        // Where each id was first seen (a line, or a position in a JSON array), to refuse duplicates.
        var seen: [String: Int] = [:]
        var total = 0
        func describe(_ position: Int) -> String {
            format == .json ? "\(name): item \(position)" : "\(name):\(position)"
        }
        func add(_ draft: ItemDraft, at position: Int) throws {
            if let id = draft.externalID {
                if let first = seen[id] {
                    throw XeroMLError(.importFailed, "\(draft.location!): duplicate id \"\(id)\" (first at \(describe(first)))")
                }
                seen[id] = position
            }
            chunk.append(draft)
            total += 1
            if chunk.count >= chunkSize {
                try body(chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        switch format {
        case .jsonl:
            var lineNumber = 0
            var start = data.startIndex
            while start < data.endIndex {
                let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
                defer { start = end < data.endIndex ? end + 1 : end }
                lineNumber += 1
                var bytes = Array(data[start..<end])
                if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
                if lineNumber == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                let location = "\(name):\(lineNumber)"
                let value: JSONValue
                do {
                    var parser = JSONParser(bytes)
                    value = try parser.parseDocument()
                } catch {
                    throw XeroMLError(.importFailed, "\(location): invalid JSON at column \(error.column): \(error.reason)")
                }
                try add(try draft(from: value, location: location), at: lineNumber)
            }
        case .csv:
            var reader = CSVReader(Array(data))
            do {
                guard let header = try reader.next() else { break }
                let columns = try csvColumns(header.fields, types: csvColumnTypes, location: "\(name):\(header.line)")
                while let record = try reader.next() {
                    let location = "\(name):\(record.line)"
                    guard record.fields.count == columns.count else {
                        throw XeroMLError(.importFailed,
                            "\(location): \(record.fields.count) fields, but the header has \(columns.count)")
                    }
                    try add(try draft(fromCSV: record.fields, columns: columns, location: location), at: record.line)
                }
            } catch let failure as CSVReader.Failure {
                throw XeroMLError(.importFailed, "\(name):\(failure.line): \(failure.reason)")
            }
        case .json:
            let value: JSONValue
            do {
                var parser = JSONParser(Array(data))
                value = try parser.parseDocument()
            } catch {
                throw XeroMLError(.importFailed, "\(name):\(error.line): invalid JSON at column \(error.column): \(error.reason)")
            }
            guard case .array(let elements) = value else {
                throw XeroMLError(.importFailed, "\(name):1: expected a JSON array of item objects")
            }
            for (index, element) in elements.enumerated() {
                try add(try draft(from: element, location: describe(index + 1)), at: index + 1)
            }
        }
        if !chunk.isEmpty { try body(chunk) }
        guard total > 0 else { throw XeroMLError(.importFailed, "\(name): the file has no items") }
    }

    /// What a CSV column holds.
    enum CSVColumnKind {
        case input, expectedOutput, id, metadata
        case metadataKey(String)
    }

    /// A CSV column: what it holds, its name (without a type suffix) and how its cells are read.
    struct CSVColumn {
        var kind: CSVColumnKind
        var name: String
        var type: CSVCellType
    }

    static func csvColumns(_ names: [String], types: [String: CSVCellType] = [:],
                           location: String) throws -> [CSVColumn] {
        var columns: [CSVColumn] = []
        var seen = Set<String>()
        for raw in names {
            var name = raw.trimmingCharacters(in: .whitespaces)
            var declared: CSVCellType?
            if let colon = name.lastIndex(of: ":"), let type = CSVCellType(rawValue: String(name[name.index(after: colon)...])) {
                declared = type
                name = String(name[..<colon]).trimmingCharacters(in: .whitespaces)
            }
            guard seen.insert(name).inserted else {
                throw XeroMLError(.importFailed, "\(location): column \"\(name)\" appears twice")
            }
            let kind: CSVColumnKind
            switch name {
            case "input": kind = .input
            case "expected_output", "expectedOutput": kind = .expectedOutput
            case "id": kind = .id
            case "metadata": kind = .metadata
            case _ where name.hasPrefix("metadata.") && name.count > "metadata.".count:
                kind = .metadataKey(String(name.dropFirst("metadata.".count)))
            default:
                throw XeroMLError(.importFailed,
                    "\(location): unknown column \"\(raw.trimmingCharacters(in: .whitespaces))\" "
                    + "(allowed: id, input, expected_output, metadata, metadata.KEY; "
                    + "input, expected_output and metadata.KEY may end in :text or :json)")
            }
            let type: CSVCellType
            switch kind {
            case .id, .metadata:
                // An id is always text, and the metadata column always a JSON object.
                if declared != nil || types[name] != nil {
                    throw XeroMLError(.importFailed,
                        "\(location): column \"\(name)\" takes no type (only input, expected_output and metadata.KEY do)")
                }
                if case .id = kind { type = .text } else { type = .json }
            case .metadataKey: type = types[name] ?? declared ?? .text
            case .input, .expectedOutput: type = types[name] ?? declared ?? .auto
            }
            columns.append(CSVColumn(kind: kind, name: name, type: type))
        }
        if seen.contains("expected_output") && seen.contains("expectedOutput") {
            throw XeroMLError(.importFailed, "\(location): both \"expected_output\" and \"expectedOutput\" columns")
        }
        guard seen.contains("input") else { throw XeroMLError(.importFailed, "\(location): no \"input\" column") }
        if let unknown = types.keys.sorted().first(where: { !seen.contains($0) }) {
            throw XeroMLError(.importFailed,
                "\(location): a type is given for column \"\(unknown)\", which the file does not have "
                + "(its columns: \(columns.map(\.name).joined(separator: ", ")))")
        }
        return columns
    }

    /// An item from one CSV record, validated like a JSON item.
    static func draft(fromCSV fields: [String], columns: [CSVColumn], location: String) throws -> ItemDraft {
        func value(_ cell: String, _ column: CSVColumn) throws -> JSONValue {
            let trimmed = cell.trimmingCharacters(in: .whitespaces)
            switch column.type {
            case .text:
                return .string(cell)
            case .auto:
                guard trimmed.hasPrefix("{") || trimmed.hasPrefix("[") else { return .string(cell) }
                do {
                    return try JSONValue(parsing: trimmed)
                } catch {
                    throw XeroMLError(.importFailed,
                        "\(location): column \"\(column.name)\" looks like JSON but is not (\(error.errorDescription!)); "
                        + "to import the column as text, name it \"\(column.name):text\" in the header "
                        + "(CLI: --text-columns \(column.name))")
                }
            case .json:
                do {
                    return try JSONValue(parsing: trimmed)
                } catch {
                    throw XeroMLError(.importFailed,
                        "\(location): column \"\(column.name)\" is declared JSON but this cell is not "
                        + "(\(error.errorDescription!)); write text as a quoted JSON string, or import the column "
                        + "as text: name it \"\(column.name):text\" in the header (CLI: --text-columns \(column.name))")
                }
            }
        }
        var object: [String: JSONValue] = [:]
        var metadata: [String: JSONValue] = [:]
        for (column, cell) in zip(columns, fields) {
            switch column.kind {
            case .input: object["input"] = cell.isEmpty ? .null : try value(cell, column)
            case .expectedOutput: if !cell.isEmpty { object["expected_output"] = try value(cell, column) }
            case .id: if !cell.isEmpty { object["id"] = .string(cell) }
            case .metadata:
                guard !cell.isEmpty else { continue }
                let parsed: JSONValue
                do {
                    parsed = try JSONValue(parsing: cell)
                } catch {
                    throw XeroMLError(.importFailed, "\(location): \"metadata\" must be a JSON object (\(error.errorDescription!))")
                }
                guard case .object(let members) = parsed else {
                    throw XeroMLError(.importFailed, "\(location): \"metadata\" must be a JSON object")
                }
                metadata.merge(members) { _, new in new }
            case .metadataKey(let key): if !cell.isEmpty { metadata[key] = try value(cell, column) }
            }
        }
        if !metadata.isEmpty { object["metadata"] = .object(metadata) }
        return try draft(from: .object(object), location: location)
    }

    private static func sniffFormat(_ data: Data) -> DatasetFileFormat {
        let first = data.first { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }
        return first == UInt8(ascii: "[") ? .json : .jsonl
    }

    static func draft(from value: JSONValue, location: String) throws -> ItemDraft {
        guard case .object(let members) = value else {
            throw XeroMLError(.importFailed, "\(location): expected an object with an \"input\" field")
        }
        if let unknown = members.keys.sorted().first(where: { !itemKeys.contains($0) }) {
            throw XeroMLError(.importFailed,
                "\(location): unknown field \"\(unknown)\" (allowed: id, input, expected_output, metadata)")
        }
        guard let input = members["input"], !input.isNull else {
            throw XeroMLError(.importFailed, "\(location): missing field \"input\"")
        }
        if members["expected_output"] != nil && members["expectedOutput"] != nil {
            throw XeroMLError(.importFailed, "\(location): both \"expected_output\" and \"expectedOutput\" given")
        }
        let metadata = members["metadata"]
        if let metadata, !metadata.isNull, case .object = metadata {} else if let metadata, !metadata.isNull {
            throw XeroMLError(.importFailed, "\(location): \"metadata\" must be an object")
        }
        var externalID: String?
        switch members["id"] {
        case nil, .null?: externalID = nil
        case .string(let s)?:
            guard !s.isEmpty else { throw XeroMLError(.importFailed, "\(location): \"id\" is empty") }
            externalID = s
        case .int(let i)?: externalID = String(i)
        default: throw XeroMLError(.importFailed, "\(location): \"id\" must be a string or an integer")
        }
        let expected = members["expected_output"] ?? members["expectedOutput"]
        return ItemDraft(externalID: externalID, input: input, expectedOutput: expected?.isNull == true ? nil : expected,
                         metadata: metadata?.isNull == true ? nil : metadata, location: location)
    }
}
