public import Foundation
import XeroMLSQLite

/// A dataset as listed, without its items.
public struct DatasetSummary: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var description: String?
    public var version: Int
    /// Active items at the current version.
    public var itemCount: Int
    /// Archived items, kept for older versions.
    public var archivedCount: Int
    public var createdAt: Date
    public var updatedAt: Date
}

extension XeroML {
    /// Creates an empty dataset.
    /// - Throws: ``XeroMLError/Code/alreadyExists`` when a dataset of that name exists.
    @discardableResult
    public func createDataset(name: String, description: String? = nil, metadata: JSONValue? = nil) async throws -> Dataset {
        try Self.validateName(name, what: "dataset")
        return try await store.write { db in
            try Self.insertDataset(db, name: name, description: description, metadata: metadata)
        }
    }

    /// Adds one item to a dataset, creating a new dataset version.
    ///
    /// With an `id`, an existing active item of that id is replaced (archived in the new version) when
    /// its content differs, and left alone when it is the same.
    @discardableResult
    public func createDatasetItem(datasetName: String, input: JSONValue, expectedOutput: JSONValue? = nil,
                                  metadata: JSONValue? = nil, id: String? = nil) async throws -> DatasetItem {
        let draft = ItemDraft(externalID: id, input: input, expectedOutput: expectedOutput, metadata: metadata)
        return try await store.write { db in
            guard let dataset = try Self.datasetRow(db, name: datasetName) else {
                throw XeroMLError.notFound("dataset \"\(datasetName)\"")
            }
            let (report, ids) = try Self.upsert(db, datasetID: dataset.id, version: dataset.version, drafts: [draft])
            _ = report
            guard let item = try Self.item(db, id: ids[0]) else { throw XeroMLError.notFound("dataset item") }
            return item
        }
    }

    /// Archives an item: it stays in older dataset versions but is not part of new runs.
    public func archiveDatasetItem(id: String) async throws {
        try await store.write { db in
            guard let item = try Self.item(db, id: id) else { throw XeroMLError.notFound("dataset item \(id)") }
            guard item.status == .active else { return }
            let version = try Self.bumpVersion(db, datasetID: item.datasetID)
            try db.run("UPDATE dataset_items SET archived_version = ? WHERE id = ?", [.integer(Int64(version)), .text(id)])
        }
    }

    /// The dataset named `name` with its active items at the current version.
    ///
    /// Loads every item; for very large datasets, prefer ``datasetItems(datasetName:pageSize:)``.
    /// - Throws: ``XeroMLError/Code/notFound``.
    public func dataset(named name: String) async throws -> Dataset {
        try await store.read { db in
            guard let row = try Self.datasetRow(db, name: name) else { throw XeroMLError.notFound("dataset \"\(name)\"") }
            let items = try db.query(
                "SELECT \(Self.itemColumns) FROM dataset_items WHERE dataset_id = ? AND archived_version IS NULL ORDER BY id",
                [.text(row.id)], Self.readItem)
            return Dataset(id: row.id, name: row.name, description: row.description, metadata: row.metadata,
                           version: row.version, createdAt: row.createdAt, items: items)
        }
    }

    /// The active items of a dataset, read page by page as you iterate, so memory stays flat for any
    /// dataset size. The items are those of the dataset's version when iteration starts.
    public func datasetItems(datasetName: String, pageSize: Int = 1_000) -> DatasetItemSequence {
        DatasetItemSequence(store: store, datasetName: datasetName, pageSize: max(1, pageSize))
    }

    /// Every dataset, by name.
    public func datasets() async throws -> [DatasetSummary] {
        try await store.read { db in
            try db.query("""
                SELECT d.id, d.name, d.description, d.version, d.created_us, d.updated_us,
                    (SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.archived_version IS NULL),
                    (SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.archived_version IS NOT NULL)
                FROM datasets d ORDER BY d.name
                """) { s in
                DatasetSummary(id: s.text(0)!, name: s.text(1)!, description: s.text(2), version: s.int(3),
                               itemCount: s.int(6), archivedCount: s.int(7),
                               createdAt: date(microseconds: s.int64(4)), updatedAt: date(microseconds: s.int64(5)))
            }
        }
    }

    /// One dataset item by id, active or archived.
    public func datasetItem(id: String) async throws -> DatasetItem? {
        try await store.read { db in try Self.item(db, id: id) }
    }

    // MARK: - Internals shared with import

    struct DatasetRow {
        var id: String
        var name: String
        var description: String?
        var metadata: JSONValue?
        var version: Int
        var createdAt: Date
    }

    struct ItemDraft: Sendable, Equatable {
        var externalID: String?
        var input: JSONValue
        var expectedOutput: JSONValue?
        var metadata: JSONValue?
        /// Where the item came from, for error messages ("file.jsonl:12").
        var location: String?
    }

    static func validateName(_ name: String, what: String) throws {
        guard !name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, name.count <= 200 else {
            throw XeroMLError(.invalidArgument, "a \(what) name must be 1 to 200 characters and not blank")
        }
    }

    static func datasetRow(_ db: Connection, name: String) throws -> DatasetRow? {
        try db.queryFirst("SELECT id, name, description, metadata, version, created_us FROM datasets WHERE name = ?",
                          [.text(name)]) { s in
            DatasetRow(id: s.text(0)!, name: s.text(1)!, description: s.text(2), metadata: parseStored(s.text(3)),
                       version: s.int(4), createdAt: date(microseconds: s.int64(5)))
        }
    }

    static func insertDataset(_ db: Connection, name: String, description: String?, metadata: JSONValue?) throws -> Dataset {
        if try datasetRow(db, name: name) != nil {
            throw XeroMLError(.alreadyExists, "a dataset named \"\(name)\" already exists")
        }
        let id = UUIDv7.make()
        let now = nowMicroseconds()
        try db.run("""
            INSERT INTO datasets(id, name, description, metadata, version, created_us, updated_us)
            VALUES (?, ?, ?, ?, 0, ?, ?)
            """, [.text(id), .text(name), .text(description), metadata.sql, .integer(now), .integer(now)])
        return Dataset(id: id, name: name, description: description, metadata: metadata, version: 0,
                       createdAt: date(microseconds: now), items: [])
    }

    static func bumpVersion(_ db: Connection, datasetID: String) throws -> Int {
        try db.run("UPDATE datasets SET version = version + 1, updated_us = ? WHERE id = ?",
                   [.integer(nowMicroseconds()), .text(datasetID)])
        return try db.queryFirst("SELECT version FROM datasets WHERE id = ?", [.text(datasetID)]) { $0.int(0) } ?? 0
    }

    /// Inserts drafts as one new dataset version. Items with an external id replace the active item of
    /// that id when their content differs, and are skipped when equal.
    static func upsert(_ db: Connection, datasetID: String, version: Int, drafts: [ItemDraft]) throws
        -> (ImportReport, [String])
    {
        var report = ImportReport(datasetName: "", version: version)
        let ids = try upsertItems(db, datasetID: datasetID, newVersion: version + 1, drafts: drafts, report: &report)
        if report.created + report.updated > 0 {
            report.version = try bumpVersion(db, datasetID: datasetID)
        }
        return (report, ids)
    }

    /// Writes drafts into dataset version `newVersion`, counting into `report`; the caller bumps the
    /// dataset's version once when anything changed. Returns the item ids, in order.
    static func upsertItems(_ db: Connection, datasetID: String, newVersion: Int, drafts: [ItemDraft],
                            report: inout ImportReport) throws -> [String] {
        var ids: [String] = []
        ids.reserveCapacity(drafts.count)
        let now = nowMicroseconds()
        let insert = try db.cached("""
            INSERT INTO dataset_items(id, dataset_id, external_id, input, expected_output, metadata, created_version, created_us)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for draft in drafts {
            if let externalID = draft.externalID,
               let existing = try db.queryFirst("""
                    SELECT \(itemColumns) FROM dataset_items
                    WHERE dataset_id = ? AND external_id = ? AND archived_version IS NULL
                    """, [.text(datasetID), .text(externalID)], readItem) {
                if existing.input == draft.input && existing.expectedOutput == draft.expectedOutput
                    && existing.metadata == draft.metadata {
                    report.unchanged += 1
                    ids.append(existing.id)
                    continue
                }
                try db.run("UPDATE dataset_items SET archived_version = ? WHERE id = ?",
                           [.integer(Int64(newVersion)), .text(existing.id)])
                report.updated += 1
            } else {
                report.created += 1
            }
            let id = UUIDv7.make()
            try insert.run([
                .text(id), .text(datasetID), .text(draft.externalID), .text(draft.input.jsonString),
                draft.expectedOutput.sql, draft.metadata.sql, .integer(Int64(newVersion)), .integer(now),
            ])
            ids.append(id)
        }
        return ids
    }

    /// The items of dataset version `version` with ids after `after`, in id order: one page.
    static func itemsPage(_ db: Connection, datasetID: String, version: Int, after: String, limit: Int) throws -> [DatasetItem] {
        try db.query("""
            SELECT \(itemColumns) FROM dataset_items
            WHERE dataset_id = ? AND id > ? AND created_version <= ? AND (archived_version IS NULL OR archived_version > ?)
            ORDER BY id LIMIT ?
            """, [.text(datasetID), .text(after), .integer(Int64(version)), .integer(Int64(version)),
                  .integer(Int64(limit))], readItem)
    }

    static let itemColumns =
        "id, dataset_id, external_id, input, expected_output, metadata, created_version, archived_version, created_us"

    @Sendable static func readItem(_ s: Statement) -> DatasetItem {
        let archived = s.optionalInt64(7).map(Int.init)
        return DatasetItem(
            id: s.text(0)!, datasetID: s.text(1)!, externalID: s.text(2), input: parseStored(s.text(3)) ?? .null,
            expectedOutput: parseStored(s.text(4)), metadata: parseStored(s.text(5)),
            status: archived == nil ? .active : .archived, createdVersion: s.int(6), archivedVersion: archived,
            createdAt: date(microseconds: s.int64(8)))
    }

    static func item(_ db: Connection, id: String) throws -> DatasetItem? {
        try db.queryFirst("SELECT \(itemColumns) FROM dataset_items WHERE id = ?", [.text(id)], readItem)
    }
}

/// Parses JSON text read back from the store. Stored text was written by XeroML, so a failure means
/// the file was edited by hand; the raw text is kept as a string rather than dropped.
func parseStored(_ text: String?) -> JSONValue? {
    guard let text else { return nil }
    return (try? JSONValue(parsing: text)) ?? .string(text)
}

/// The items of a dataset, fetched from the store one page at a time when the consumer asks for them.
public struct DatasetItemSequence: AsyncSequence, Sendable {
    public typealias Element = DatasetItem
    let store: Store
    let datasetName: String
    let pageSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let sequence: DatasetItemSequence
        var dataset: (id: String, version: Int)?
        var buffer: [DatasetItem] = []
        var position = 0
        var cursor = ""
        var exhausted = false

        public mutating func next() async throws -> DatasetItem? {
            while position >= buffer.count {
                if exhausted { return nil }
                try await fetch()
            }
            defer { position += 1 }
            return buffer[position]
        }

        private mutating func fetch() async throws {
            let (name, pageSize, after, pinned) = (sequence.datasetName, sequence.pageSize, cursor, dataset)
            let (resolved, page) = try await sequence.store.read { db -> ((String, Int), [DatasetItem]) in
                var dataset = pinned
                if dataset == nil {
                    guard let row = try XeroML.datasetRow(db, name: name) else { throw XeroMLError.notFound("dataset \"\(name)\"") }
                    dataset = (row.id, row.version)
                }
                let (id, version) = dataset!
                return ((id, version), try XeroML.itemsPage(db, datasetID: id, version: version, after: after, limit: pageSize))
            }
            dataset = resolved
            buffer = page
            position = 0
            cursor = page.last?.id ?? cursor
            exhausted = page.count < pageSize
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(sequence: self) }
}
