import Foundation

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
