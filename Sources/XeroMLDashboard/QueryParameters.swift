import Foundation

/// The query string of a request, as name and value pairs in order, with typed readers that throw
/// ``DashboardError`` naming the parameter.
public struct QueryParameters: Sendable {
    public var pairs: [(String, String)]

    public init(_ pairs: [(String, String)]) { self.pairs = pairs }

    /// The first value of `name`, `nil` when absent or empty.
    public subscript(name: String) -> String? {
        pairs.first { $0.0 == name && !$0.1.isEmpty }?.1
    }

    /// Every non-empty value of `name`, in order.
    public func all(_ name: String) -> [String] { pairs.filter { $0.0 == name && !$0.1.isEmpty }.map(\.1) }

    public func int(_ name: String, default value: Int, range: ClosedRange<Int>) throws(DashboardError) -> Int {
        guard let text = self[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw DashboardError(parameter: name, "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text.prefix(40))\"")
        }
        return number
    }

    public func double(_ name: String) throws(DashboardError) -> Double? {
        guard let text = self[name] else { return nil }
        guard let number = Double(text), number.isFinite else {
            throw DashboardError(parameter: name, "expected a number, got \"\(text.prefix(40))\"")
        }
        return number
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ name: String, default value: T) throws(DashboardError) -> T
    where T.RawValue == String {
        guard let text = self[name] else { return value }
        guard let choice = T(rawValue: text) else {
            throw DashboardError(parameter: name, "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text.prefix(40))\"")
        }
        return choice
    }

    /// An id as XeroML makes them (a UUID), checked before any query.
    public func id(_ name: String) throws(DashboardError) -> String? {
        guard let text = self[name] else { return nil }
        return try Self.checkID(text, parameter: name)
    }

    /// `text` when it has the shape of a XeroML id: 36 characters, hexadecimal digits and dashes.
    public static func checkID(_ text: String, parameter: String) throws(DashboardError) -> String {
        let utf8 = Array(text.utf8)
        let dashes: Set<Int> = [8, 13, 18, 23]
        let ok = utf8.count == 36 && utf8.enumerated().allSatisfy { i, c in
            dashes.contains(i) ? c == UInt8(ascii: "-") : (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
        }
        guard ok else { throw DashboardError(parameter: parameter, "not a XeroML id (a UUID such as 0192f1a4-5b6c-7d8e-9f01-23456789abcd)") }
        return text.lowercased()
    }

    /// The page, filter, sort and search of a run's items.
    public func itemsQuery() throws(DashboardError) -> ItemsQuery {
        var query = ItemsQuery()
        query.page = try int("page", default: 1, range: 1...1_000_000)
        query.pageSize = try int("limit", default: 50, range: 1...500)
        query.filter = try choice("filter", default: ItemsQuery.Filter.all)
        query.search = self["q"]
        switch self["sort"] {
        case nil, "started": query.sort = .started
        case "latency": query.sort = .latency
        case "cost": query.sort = .cost
        case let text? where text.hasPrefix("score:") && text.count > 6: query.sort = .score(String(text.dropFirst(6)))
        case let text?:
            throw DashboardError(parameter: "sort", "expected started, latency, cost or score:NAME, got \"\(text.prefix(40))\"")
        }
        switch self["order"] {
        case nil, "asc": query.descending = false
        case "desc": query.descending = true
        case let text?: throw DashboardError(parameter: "order", "expected asc or desc, got \"\(text.prefix(40))\"")
        }
        if let name = self["score"] {
            guard let value = try double("value") else {
                throw DashboardError(parameter: "value", "a score filter needs a value (score=\(name.prefix(40))&op=below&value=0.5)")
            }
            let op = self["op"] ?? "below"
            guard ["below", "above"].contains(op) else {
                throw DashboardError(parameter: "op", "expected below or above, got \"\(op.prefix(40))\"")
            }
            query.scoreFilter = (name, op == "below", value)
        }
        return query
    }

    /// The page, filter and sort of a comparison.
    public func compareQuery() throws(DashboardError) -> CompareQuery {
        CompareQuery(filter: try choice("filter", default: CompareQuery.Filter.all),
                     sort: try choice("sort", default: CompareQuery.Sort.item),
                     page: try int("page", default: 1, range: 1...1_000_000),
                     pageSize: try int("limit", default: 50, range: 1...500))
    }

    /// The runs of a comparison: every `run`, then the `baseline`.
    public func compareRuns() throws(DashboardError) -> (runs: [String], baseline: String?) {
        var runs: [String] = []
        for text in all("run") { runs.append(try Self.checkID(text, parameter: "run")) }
        return (runs, try id("baseline"))
    }
}

extension QueryParameters {
    /// Parses a raw query string (`a=1&b=x+y`): `+` is a space, `%XX` escapes are decoded, and a name
    /// without `=` has an empty value. Text that is not valid percent-encoding is kept as it is.
    public init(queryString: String?) {
        guard let queryString, !queryString.isEmpty else { self.init([]); return }
        func decode(_ text: Substring) -> String {
            let spaced = text.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        self.init(queryString.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let equals = pair.firstIndex(of: "=") {
                return (decode(pair[..<equals]), decode(pair[pair.index(after: equals)...]))
            }
            return (decode(pair), "")
        })
    }
}
