import Foundation
import NIOCore
import PostgresNIO

/// A one-dimensional PostgreSQL array whose elements may be NULL, in the binary format, so a whole
/// column of a chunk binds as one parameter (`UNNEST($n::text[])`).
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable {
    var values: [Element?]

    init(_ values: [Element?]) { self.values = values }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Dimensions, whether there are NULLs, the element type.
        buffer.writeInteger(values.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(values.contains { $0 == nil } ? 1 : 0, as: Int32.self)
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !values.isEmpty else { return }
        // Length and lower bound of the one dimension.
        buffer.writeInteger(Int32(values.count), as: Int32.self)
        buffer.writeInteger(1, as: Int32.self)
        for value in values {
            guard let value else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(0, as: Int32.self)
            let start = buffer.writerIndex
            value.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - start), at: lengthIndex, as: Int32.self)
        }
    }
}

/// Parameters `$1…$n` of one statement, appended in order.
struct Binds {
    var bindings = PostgresBindings(capacity: 24)

    mutating func add(_ value: some PostgresNonThrowingEncodable) {
        bindings.append(value)
    }

    mutating func add(_ values: [String?]) { bindings.append(NullableArray(values)) }
    mutating func add(_ values: [Int64?]) { bindings.append(NullableArray(values)) }
    mutating func add(_ values: [Double?]) { bindings.append(NullableArray(values)) }

    func query(_ sql: String) -> PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}

/// One `INSERT INTO table (…) SELECT … FROM UNNEST($3::type[], …) AS u(…) ON CONFLICT DO NOTHING` of a
/// run's rows, each column named once beside its values: the column lists, the array types and the
/// parameter numbers are derived from that one list, so they cannot disagree. `$1` is the project and
/// `$2` the run.
struct UnnestInsert {
    let table: String
    private(set) var binds = Binds()
    private var columns: [(name: String, type: String)] = []

    init(into table: String, project: UUID, runID: String) {
        self.table = table
        binds.add(project)
        binds.add(runID)
    }

    mutating func text(_ name: String, _ values: [String?]) { binds.add(values); columns.append((name, "text")) }
    mutating func int(_ name: String, _ values: [Int64?]) { binds.add(values); columns.append((name, "int8")) }
    mutating func double(_ name: String, _ values: [Double?]) { binds.add(values); columns.append((name, "float8")) }

    /// The statement.
    var sql: String {
        let names = columns.map(\.name)
        let arrays = columns.enumerated().map { "$\($0.offset + 3)::\($0.element.type)[]" }
        return """
            INSERT INTO \(table) (project_id, run_id, \(names.joined(separator: ", ")))
            SELECT $1, $2, \(names.map { "u." + $0 }.joined(separator: ", "))
            FROM UNNEST(\(arrays.joined(separator: ", "))) AS u(\(names.joined(separator: ", ")))
            ON CONFLICT DO NOTHING
            """
    }
}
