import Foundation

// MARK: - Text normalization

/// How text is normalized before a heuristic evaluator compares it.
///
/// The steps run in a fixed order, whatever order the options are listed in: diacritics are removed,
/// then case is folded, then punctuation is stripped, then whitespace runs are collapsed, and finally
/// the ends are trimmed. So `[.stripPunctuation, .collapseWhitespace, .trimWhitespace]` turns
/// `" Paris , France! "` into `"Paris France"`.
///
/// ```swift
/// let match = ExactMatch(normalization: [.caseInsensitive, .trimWhitespace, .ignoreDiacritics])
/// ```
public struct TextNormalization: OptionSet, Sendable, Hashable {
    /// The raw bits of the option set.
    public let rawValue: Int

    /// Creates an option set from its raw bits.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Compare lowercased text, so `"PARIS"` equals `"paris"`.
    public static let caseInsensitive = TextNormalization(rawValue: 1 << 0)
    /// Remove leading and trailing whitespace and newlines.
    public static let trimWhitespace = TextNormalization(rawValue: 1 << 1)
    /// Replace every run of whitespace (including newlines) with a single space.
    public static let collapseWhitespace = TextNormalization(rawValue: 1 << 2)
    /// Remove punctuation characters (`.`, `,`, `!`, `?`, quotes, dashes, brackets, …).
    public static let stripPunctuation = TextNormalization(rawValue: 1 << 3)
    /// Remove combining accents, so `"Café"` equals `"Cafe"`.
    public static let ignoreDiacritics = TextNormalization(rawValue: 1 << 4)

    /// Applies the selected normalization steps to `text`.
    public func apply(to text: String) -> String {
        var text = text
        if contains(.ignoreDiacritics) {
            let stripped = text.decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { $0.properties.generalCategory != .nonspacingMark }
            text = String(stripped).precomposedStringWithCanonicalMapping
        }
        if contains(.caseInsensitive) { text = text.lowercased() }
        if contains(.stripPunctuation) { text = String(text.filter { !$0.isPunctuation }) }
        if contains(.collapseWhitespace) {
            var collapsed = ""
            collapsed.reserveCapacity(text.utf8.count)
            var inWhitespace = false
            for character in text {
                if character.isWhitespace {
                    if !inWhitespace { collapsed.append(" ") }
                    inWhitespace = true
                } else {
                    collapsed.append(character)
                    inWhitespace = false
                }
            }
            text = collapsed
        }
        if contains(.trimWhitespace) {
            let characters = Substring(text)
            let start = characters.firstIndex { !$0.isWhitespace } ?? characters.endIndex
            let end = characters.lastIndex { !$0.isWhitespace }.map(characters.index(after:)) ?? start
            text = String(characters[start..<end])
        }
        return text
    }
}

// MARK: - Text evaluators

/// Passes when the output equals the expected output (boolean score, default name `exact_match`).
///
/// Texts are compared after ``normalization``. When both the output and the expected output are
/// structured JSON (not strings), they are compared structurally instead: object key order does not
/// matter and numbers compare numerically (`1 == 1.0`); normalization does not apply then.
///
/// Throws when the item has no expected output, so the item is recorded as unscored.
public struct ExactMatch: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// How both texts are normalized before they are compared.
    public let normalization: TextNormalization

    /// Creates an exact-match evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - normalization: How both texts are normalized first; by default only the ends are trimmed.
    public init(name: String = "exact_match", normalization: TextNormalization = .trimWhitespace) {
        self.name = name
        self.normalization = normalization
    }

    /// Scores one item: `true` when output and expected output match.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let expected = input.expectedOutput else { throw HeuristicErrors.noExpectedOutput(name) }
        if let output = input.output, output.stringValue == nil, expected.stringValue == nil {
            let difference = JSONComparison.firstDifference(output, expected)
            return [Evaluation(name: name, value: .boolean(difference == nil), comment: difference)]
        }
        let outputText = normalization.apply(to: input.outputText)
        let expectedText = normalization.apply(to: expected.displayText)
        let matches = outputText == expectedText
        let comment = matches ? nil : "expected \(quoted(expectedText)), got \(quoted(outputText))"
        return [Evaluation(name: name, value: .boolean(matches), comment: comment)]
    }
}

/// Passes when the output contains a text (boolean score, default name `contains`).
///
/// The text looked for is ``substring`` when one is given, otherwise the item's expected output.
/// Both sides are normalized with ``normalization`` first. Every text contains the empty text.
///
/// Throws when no substring was given and the item has no expected output.
public struct Contains: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// A fixed text to look for; `nil` to look for each item's expected output.
    public let substring: String?
    /// How the output and the text looked for are normalized first.
    public let normalization: TextNormalization

    /// Creates a contains evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - substring: A fixed text to look for; `nil` (the default) looks for the expected output.
    ///   - normalization: How both texts are normalized first; by default only the ends are trimmed.
    public init(name: String = "contains", substring: String? = nil,
                normalization: TextNormalization = .trimWhitespace) {
        self.name = name
        self.substring = substring
        self.normalization = normalization
    }

    /// Scores one item: `true` when the output contains the text.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let needle = substring ?? input.expectedText else {
            throw XeroMLError(.invalidArgument,
                              "\(name) needs a substring or an expected output, and the item has no expected output")
        }
        let haystack = normalization.apply(to: input.outputText)
        let normalizedNeedle = normalization.apply(to: needle)
        let found = textContains(haystack, normalizedNeedle)
        let comment = found ? nil : "\(quoted(normalizedNeedle)) not found in \(quoted(haystack))"
        return [Evaluation(name: name, value: .boolean(found), comment: comment)]
    }
}

/// Passes when the output contains every one of several texts (boolean score, default name
/// `contains_all`). The comment lists the texts that are missing.
///
/// The texts are the ``substrings`` given at creation or, when none were given, the item's expected
/// output, which must then be a JSON array of strings. Throws when there is nothing to look for.
public struct ContainsAll: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// The texts to look for; empty to use each item's expected output (a JSON array of strings).
    public let substrings: [String]
    /// How the output and the texts are normalized first.
    public let normalization: TextNormalization

    /// Creates a contains-all evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - substrings: The texts to look for; empty (the default) uses the expected output.
    ///   - normalization: How the texts are normalized first; by default only the ends are trimmed.
    public init(name: String = "contains_all", substrings: [String] = [],
                normalization: TextNormalization = .trimWhitespace) {
        self.name = name
        self.substrings = substrings
        self.normalization = normalization
    }

    /// Scores one item: `true` when every text is in the output.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        let needles = try searchTexts(substrings, input, evaluator: name)
        let haystack = normalization.apply(to: input.outputText)
        let missing = needles.filter { !textContains(haystack, normalization.apply(to: $0)) }
        let comment = missing.isEmpty
            ? "all \(needles.count) found"
            : "missing: \(missing.map { quoted($0) }.joined(separator: ", "))"
        return [Evaluation(name: name, value: .boolean(missing.isEmpty), comment: comment)]
    }
}

/// Passes when the output contains at least one of several texts (boolean score, default name
/// `contains_any`). The comment lists the texts that matched.
///
/// The texts are the ``substrings`` given at creation or, when none were given, the item's expected
/// output, which must then be a JSON array of strings. Throws when there is nothing to look for.
public struct ContainsAny: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// The texts to look for; empty to use each item's expected output (a JSON array of strings).
    public let substrings: [String]
    /// How the output and the texts are normalized first.
    public let normalization: TextNormalization

    /// Creates a contains-any evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - substrings: The texts to look for; empty (the default) uses the expected output.
    ///   - normalization: How the texts are normalized first; by default only the ends are trimmed.
    public init(name: String = "contains_any", substrings: [String] = [],
                normalization: TextNormalization = .trimWhitespace) {
        self.name = name
        self.substrings = substrings
        self.normalization = normalization
    }

    /// Scores one item: `true` when at least one text is in the output.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        let needles = try searchTexts(substrings, input, evaluator: name)
        let haystack = normalization.apply(to: input.outputText)
        let matched = needles.filter { textContains(haystack, normalization.apply(to: $0)) }
        let comment = matched.isEmpty
            ? "none of \(needles.count) found"
            : "matched: \(matched.map { quoted($0) }.joined(separator: ", "))"
        return [Evaluation(name: name, value: .boolean(!matched.isEmpty), comment: comment)]
    }
}

/// Passes when a regular expression matches the output text (boolean score, default name `regex`).
///
/// The pattern uses Swift `Regex` syntax (which accepts the common PCRE-style syntax, including inline
/// options such as `(?i)` for case-insensitive matching). By default a match anywhere in the output
/// passes; with `wholeMatch` the pattern must match the whole output. The comment shows the matched text.
public struct RegexMatch: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// The regular expression, as given.
    public let pattern: String
    /// Whether the pattern must match the whole output rather than a part of it.
    public let wholeMatch: Bool

    /// Creates a regular-expression evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - pattern: The regular expression, in Swift `Regex` syntax.
    ///   - wholeMatch: Whether the pattern must match the whole output; by default a match anywhere passes.
    /// - Throws: ``XeroMLError/Code/invalidArgument`` when `pattern` is not a valid regular expression.
    public init(name: String = "regex", pattern: String, wholeMatch: Bool = false) throws {
        _ = try Self.compile(pattern, evaluator: name)
        self.name = name
        self.pattern = pattern
        self.wholeMatch = wholeMatch
    }

    /// Scores one item: `true` when the pattern matches.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        // `Regex` is not `Sendable`, so each evaluation compiles its own from the validated pattern.
        let regex = try Self.compile(pattern, evaluator: name)
        let text = input.outputText
        let match = try wholeMatch ? regex.wholeMatch(in: text) : regex.firstMatch(in: text)
        let comment = match.map { "matched \(quoted(String(text[$0.range])))" }
            ?? "no match for \(quoted(pattern)) in \(quoted(text))"
        return [Evaluation(name: name, value: .boolean(match != nil), comment: comment)]
    }

    private static func compile(_ pattern: String, evaluator: String) throws -> Regex<AnyRegexOutput> {
        do {
            return try Regex(pattern)
        } catch {
            throw XeroMLError(.invalidArgument,
                              "invalid regular expression \(quoted(pattern)) for \(evaluator): \(error)")
        }
    }
}

/// How similar the output is to the expected output, from 0 (nothing in common) to 1 (equal)
/// (numeric score, default name `levenshtein`).
///
/// The score is 1 − edit distance / length of the longer text, computed over characters after
/// ``normalization`` (see ``TextSimilarity/levenshteinSimilarity(_:_:)``). Throws when the item has no
/// expected output.
public struct LevenshteinSimilarity: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// How both texts are normalized before they are compared.
    public let normalization: TextNormalization

    /// Creates a Levenshtein-similarity evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - normalization: How both texts are normalized first; by default only the ends are trimmed.
    public init(name: String = "levenshtein", normalization: TextNormalization = .trimWhitespace) {
        self.name = name
        self.normalization = normalization
    }

    /// The similarity lies in [0, 1].
    public var scoreRanges: [String: ClosedRange<Double>] { [name: 0...1] }

    /// Scores one item with a similarity in [0, 1].
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let expected = input.expectedText else { throw HeuristicErrors.noExpectedOutput(name) }
        let similarity = TextSimilarity.levenshteinSimilarity(normalization.apply(to: input.outputText),
                                                              normalization.apply(to: expected))
        return [Evaluation(name: name, value: .numeric(similarity))]
    }
}

// MARK: - JSON evaluators

/// Passes when the output is valid JSON (boolean score, default name `json_valid`).
///
/// Structured output (an object, array, number, boolean or null) passes; a string output passes when
/// its text parses as JSON. When it does not, the comment says where parsing failed
/// (e.g. `line 1, column 9: unexpected '}', expected a quoted object key`). No output fails.
public struct JSONValidity: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String

    /// Creates a JSON-validity evaluator.
    /// - Parameter name: The evaluator and score name.
    public init(name: String = "json_valid") {
        self.name = name
    }

    /// Scores one item: `true` when the output is JSON.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let output = input.output else {
            return [Evaluation(name: name, value: false, comment: "the task produced no output")]
        }
        guard case .string(let text) = output else { return [Evaluation(name: name, value: true)] }
        do {
            _ = try JSONValue(parsing: text)
            return [Evaluation(name: name, value: true)]
        } catch {
            return [Evaluation(name: name, value: false, comment: "not valid JSON: \(error)")]
        }
    }
}

/// Passes when the output and the expected output are the same JSON (boolean score, default name
/// `json_equal`).
///
/// Strings whose text is JSON are parsed first, so an output of `"{\"b\": 2, \"a\": 1.0}"` equals an
/// expected output of `{"a": 1, "b": 2}`. Object key order does not matter, array order does, and
/// numbers compare numerically (`1 == 1.0`). When they differ, the comment names the first difference
/// (e.g. `$.items[2]: expected 3, got 4`). Throws when the item has no expected output.
public struct JSONEquality: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String

    /// Creates a JSON-equality evaluator.
    /// - Parameter name: The evaluator and score name.
    public init(name: String = "json_equal") {
        self.name = name
    }

    /// Scores one item: `true` when the two JSON values are equal.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let expectedOutput = input.expectedOutput else { throw HeuristicErrors.noExpectedOutput(name) }
        guard let rawOutput = input.output else {
            return [Evaluation(name: name, value: false, comment: "the task produced no output")]
        }
        let (output, outputError) = Self.parsed(rawOutput)
        let (expected, _) = Self.parsed(expectedOutput)
        guard let difference = JSONComparison.firstDifference(output, expected) else {
            return [Evaluation(name: name, value: true)]
        }
        let comment = outputError.map { "the output is not valid JSON (\($0))" } ?? difference
        return [Evaluation(name: name, value: false, comment: comment)]
    }

    /// A string holding JSON becomes that JSON; other values are kept. Also returns the parse error of
    /// a string that is not JSON.
    private static func parsed(_ value: JSONValue) -> (JSONValue, JSONParseError?) {
        guard case .string(let text) = value else { return (value, nil) }
        do {
            return (try JSONValue(parsing: text), nil)
        } catch {
            return (value, error)
        }
    }
}

// MARK: - Numbers and latency

/// Passes when the output is numerically close to the expected output (boolean score, default name
/// `numeric_close`).
///
/// Both sides are read as numbers: JSON numbers as they are, strings when their trimmed text is a
/// finite number (`" 42.0 "`, `"-1e3"`). The score is `|output − expected| ≤ max(absoluteTolerance,
/// relativeTolerance × |expected|)`. An output that is not a number fails. Throws (the item is then
/// unscored) when the item has no expected output or the expected output is not a number.
public struct NumericCloseness: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// The largest difference that always passes.
    public let absoluteTolerance: Double
    /// The largest difference that passes, as a fraction of the expected value's magnitude.
    public let relativeTolerance: Double

    /// Creates a numeric-closeness evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - absoluteTolerance: The largest difference that always passes (non-negative); default 1e-6.
    ///   - relativeTolerance: The largest difference as a fraction of |expected| (non-negative), e.g.
    ///     `0.01` for 1 %; default 0.
    public init(name: String = "numeric_close", absoluteTolerance: Double = 1e-6, relativeTolerance: Double = 0) {
        self.name = name
        self.absoluteTolerance = absoluteTolerance
        self.relativeTolerance = relativeTolerance
    }

    /// Scores one item: `true` when the two numbers are within tolerance.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        guard let expectedOutput = input.expectedOutput else { throw HeuristicErrors.noExpectedOutput(name) }
        guard let expected = Self.number(expectedOutput) else {
            throw XeroMLError(.invalidArgument,
                              "\(name): the expected output \(quoted(expectedOutput.displayText)) is not a number")
        }
        // A model that answers with something other than a number is wrong, not unscorable.
        guard let output = input.output.flatMap(Self.number) else {
            return [Evaluation(name: name, value: .boolean(false), comment: input.output == nil
                ? "the task produced no output, and a number was expected"
                : "the output \(quoted(input.outputText)) is not a number")]
        }
        let difference = abs(output - expected)
        let tolerance = max(absoluteTolerance, relativeTolerance * abs(expected))
        let close = difference <= tolerance
        let comment = "output \(formatNumber(output)), expected \(formatNumber(expected)), "
            + "difference \(formatNumber(difference)) \(close ? "≤" : ">") tolerance \(formatNumber(tolerance))"
        return [Evaluation(name: name, value: .boolean(close), comment: comment)]
    }

    /// The value as a finite number, or `nil`.
    static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .int, .double: return value.doubleValue
        case .string(let text):
            let trimmed = TextNormalization.trimWhitespace.apply(to: text)
            guard let number = Double(trimmed), number.isFinite else { return nil }
            return number
        case .null, .bool, .array, .object: return nil
        }
    }
}

/// Passes when the task ran within a time limit (boolean score, default name `latency_under`).
///
/// The score is `latency <= maximum`, where latency is the task's wall time
/// (``EvaluationInput/latency``). The comment shows the latency and the limit.
public struct LatencyThreshold: Evaluator {
    /// The name of the evaluator and of its score.
    public let name: String
    /// The longest latency that passes.
    public let maximum: Duration

    /// Creates a latency evaluator.
    /// - Parameters:
    ///   - name: The evaluator and score name.
    ///   - maximum: The longest latency that passes; default 1 second.
    public init(name: String = "latency_under", maximum: Duration = .seconds(1)) {
        self.name = name
        self.maximum = maximum
    }

    /// Scores one item: `true` when its latency is at most ``maximum``.
    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        let under = input.latency <= maximum
        let comment = "latency \(formatDuration(input.latency)) \(under ? "≤" : ">") maximum \(formatDuration(maximum))"
        return [Evaluation(name: name, value: .boolean(under), comment: comment)]
    }
}

// MARK: - Helpers

private enum HeuristicErrors {
    static func noExpectedOutput(_ evaluator: String) -> XeroMLError {
        XeroMLError(.invalidArgument, "\(evaluator) needs an expected output, and the item has none")
    }
}

/// Whether `haystack` contains `needle`, comparing characters; every text contains the empty text.
private func textContains(_ haystack: String, _ needle: String) -> Bool {
    needle.isEmpty || haystack.firstRange(of: needle) != nil
}

/// The texts a contains-all or contains-any evaluator looks for: those given at creation, or the
/// expected output when it is a JSON array of strings.
private func searchTexts(_ given: [String], _ input: EvaluationInput, evaluator: String) throws -> [String] {
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
private func quoted(_ text: String, limit: Int = 80) -> String {
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
