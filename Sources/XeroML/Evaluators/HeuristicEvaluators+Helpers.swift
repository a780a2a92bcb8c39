import Foundation

// MARK: - Helpers

enum HeuristicErrors {
    static func noExpectedOutput(_ evaluator: String) -> XeroMLError {
        XeroMLError(.invalidArgument, "\(evaluator) needs an expected output, and the item has none")
    }
}

/// Whether `haystack` contains `needle`, comparing characters; every text contains the empty text.
func textContains(_ haystack: String, _ needle: String) -> Bool {
    needle.isEmpty || haystack.firstRange(of: needle) != nil
}

/// The texts a contains-all or contains-any evaluator looks for: those given at creation, or the
/// expected output when it is a JSON array of strings.
func searchTexts(_ given: [String], _ input: EvaluationInput, evaluator: String) throws -> [String] {
    if !given.isEmpty { return given }
    guard let expected = input.expectedOutput else {
        throw XeroMLError(.invalidArgument,
                          "\(evaluator) needs a list of strings, given at creation or as the expected output, "
                          + "and the item has no expected output")
    }
    guard case .array(let elements) = expected else {
        throw XeroMLError(.invalidArgument,
                          "\(evaluator): the expected output must be a JSON array of strings, not \(quoted(expected.jsonString))")
    }
    guard !elements.isEmpty else {
        throw XeroMLError(.invalidArgument, "\(evaluator): the expected output is an empty array; nothing to look for")
    }
    return try elements.enumerated().map { index, element in
        guard let text = element.stringValue else {
            throw XeroMLError(.invalidArgument,
                              "\(evaluator): the expected output must be a JSON array of strings; "
                              + "element \(index) is \(element.jsonString)")
        }
        return text
    }
}

/// `text` in double quotes, shortened to about `limit` characters.
func quoted(_ text: String, limit: Int = 80) -> String {
    let shown = text.count > limit ? String(text.prefix(limit)) + "…" : text
    return JSONValue.string(shown).jsonString
}

/// Structural comparison of JSON values: object key order is ignored and numbers compare numerically.
enum JSONComparison {
    /// Whether `a` and `b` are the same JSON.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool { firstDifference(a, b) == nil }

    /// `nil` when `actual` equals `expected`; otherwise a description of the first difference, with its
    /// path (e.g. `$.items[2]: expected 3, got 4`).
    static func firstDifference(_ actual: JSONValue, _ expected: JSONValue, path: String = "$") -> String? {
        switch (actual, expected) {
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double):
            return numbersEqual(actual, expected) ? nil : mismatch(actual, expected, path)
        case (.array(let a), .array(let e)):
            for index in 0..<min(a.count, e.count) {
                if let difference = firstDifference(a[index], e[index], path: "\(path)[\(index)]") {
                    return difference
                }
            }
            return a.count == e.count ? nil : "\(path): expected \(e.count) elements, got \(a.count)"
        case (.object(let a), .object(let e)):
            if let key = e.keys.sorted().first(where: { a[$0] == nil }) {
                return "\(path): missing key \(quoted(key))"
            }
            if let key = a.keys.sorted().first(where: { e[$0] == nil }) {
                return "\(path): unexpected key \(quoted(key))"
            }
            for key in e.keys.sorted() {
                if let difference = firstDifference(a[key]!, e[key]!, path: member(path, key)) { return difference }
            }
            return nil
        default:
            return actual == expected ? nil : mismatch(actual, expected, path)
        }
    }

    /// Whether two JSON numbers are equal; an integer equals a double only when the double is exactly
    /// that integer.
    private static func numbersEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): x == y
        case (.double(let x), .double(let y)): x == y
        case (.int(let i), .double(let d)), (.double(let d), .int(let i)): Int64(exactly: d) == i
        default: false
        }
    }

    private static func mismatch(_ actual: JSONValue, _ expected: JSONValue, _ path: String) -> String {
        "\(path): expected \(abbreviated(expected)), got \(abbreviated(actual))"
    }

    private static func abbreviated(_ value: JSONValue) -> String {
        let text = value.jsonString
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }

    private static func member(_ path: String, _ key: String) -> String {
        let isIdentifier = key.first.map { $0.isLetter || $0 == "_" } == true
            && key.allSatisfy { ($0.isLetter || $0.isNumber || $0 == "_") && $0.isASCII }
        return isIdentifier ? "\(path).\(key)" : "\(path)[\(JSONValue.string(key).jsonString)]"
    }
}
