import Testing
@testable import XeroML

@Suite struct HeuristicEvaluatorTests {
    /// Runs `evaluator` on one item and returns its single evaluation.
    private static func score(_ evaluator: some Evaluator, output: JSONValue?, expected: JSONValue? = nil,
                              latency: Duration = .zero) async throws -> Evaluation {
        let input = EvaluationInput(input: "question", output: output, expectedOutput: expected, latency: latency)
        let evaluations = try await evaluator.evaluate(input)
        try #require(evaluations.count == 1)
        #expect(evaluations[0].name == evaluator.name)
        return evaluations[0]
    }

    /// The message of the `XeroMLError` that `evaluator` throws for the item, or `nil` when it does not throw one.
    private static func failure(_ evaluator: some Evaluator, output: JSONValue?,
                                expected: JSONValue? = nil) async -> XeroMLError? {
        await #expect(throws: XeroMLError.self) {
            _ = try await evaluator.evaluate(EvaluationInput(input: "question", output: output, expectedOutput: expected))
        }
    }

    // MARK: Normalization

    @Test func normalizationStepsEachDoOneThing() {
        let text = "  Café,  AU   lait!\n"
        #expect(TextNormalization().apply(to: text) == text)
        #expect(TextNormalization.trimWhitespace.apply(to: text) == "Café,  AU   lait!")
        #expect(TextNormalization.collapseWhitespace.apply(to: text) == " Café, AU lait! ")
        #expect(TextNormalization.caseInsensitive.apply(to: text) == "  café,  au   lait!\n")
        #expect(TextNormalization.stripPunctuation.apply(to: text) == "  Café  AU   lait\n")
        #expect(TextNormalization.ignoreDiacritics.apply(to: text) == "  Cafe,  AU   lait!\n")
        #expect(TextNormalization.ignoreDiacritics.apply(to: "Ångström naïve e\u{301}") == "Angstrom naive e")
    }

    @Test func normalizationStepsRunInAFixedOrder() {
        let all: TextNormalization = [.trimWhitespace, .collapseWhitespace, .stripPunctuation, .caseInsensitive,
                                      .ignoreDiacritics]
        #expect(all.apply(to: " Paris , FRANCE! ") == "paris france")
        #expect(all.apply(to: "  \n ") == "")
        #expect(TextNormalization.trimWhitespace.apply(to: " \t ") == "")
    }

    // MARK: Exact match

    @Test func exactMatchComparesTrimmedTextByDefault() async throws {
        let match = ExactMatch()
        #expect(match.name == "exact_match")
        #expect(try await Self.score(match, output: "Paris\n", expected: " Paris").value == .boolean(true))

        let miss = try await Self.score(match, output: "paris", expected: "Paris")
        #expect(miss.value == .boolean(false))
        #expect(miss.comment == #"expected "Paris", got "paris""#)

        #expect(try await Self.score(match, output: nil, expected: "Paris").value == .boolean(false))
        // Strings compare as text, so a number matches its spelling.
        #expect(try await Self.score(match, output: "42", expected: 42).value == .boolean(true))
    }

    @Test func exactMatchHonoursNormalization() async throws {
        let loose = ExactMatch(name: "loose", normalization: [.caseInsensitive, .trimWhitespace, .stripPunctuation,
                                                              .ignoreDiacritics, .collapseWhitespace])
        #expect(loose.name == "loose")
        #expect(try await Self.score(loose, output: "  SÃO   paulo. ", expected: "São Paulo").value == .boolean(true))
        #expect(try await Self.score(loose, output: "Rio", expected: "São Paulo").value == .boolean(false))

        let strict = ExactMatch(normalization: [])
        #expect(try await Self.score(strict, output: "Paris ", expected: "Paris").value == .boolean(false))
        #expect(try await Self.score(strict, output: "Paris", expected: "Paris").value == .boolean(true))
    }

    @Test func exactMatchComparesStructuredJSONStructurally() async throws {
        let match = ExactMatch()
        #expect(try await Self.score(match, output: ["b": 1, "a": [true, nil]], expected: ["a": [true, nil], "b": 1.0])
            .value == .boolean(true))
        let miss = try await Self.score(match, output: ["a": [1, 2]], expected: ["a": [1, 3]])
        #expect(miss.value == .boolean(false))
        #expect(miss.comment == "$.a[1]: expected 3, got 2")
        #expect(try await Self.score(match, output: 1.5, expected: 1.5).value == .boolean(true))
        #expect(try await Self.score(match, output: 1, expected: 2).value == .boolean(false))
    }

    @Test func exactMatchWithoutExpectedOutputThrows() async {
        let error = await Self.failure(ExactMatch(), output: "Paris")
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "exact_match needs an expected output, and the item has none")
    }

    // MARK: Contains

    @Test func containsLooksForTheExpectedOutput() async throws {
        let contains = Contains()
        #expect(contains.name == "contains")
        #expect(try await Self.score(contains, output: "The capital is Paris.", expected: " Paris ").value
            == .boolean(true))
        let miss = try await Self.score(contains, output: "The capital is Lyon.", expected: "Paris")
        #expect(miss.value == .boolean(false))
        #expect(miss.comment == #""Paris" not found in "The capital is Lyon.""#)
        #expect(try await Self.score(contains, output: "the capital is paris", expected: "Paris").value
            == .boolean(false))
    }

    @Test func containsHonoursASubstringAndNormalization() async throws {
        let fixed = Contains(name: "mentions_paris", substring: "PARIS", normalization: [.caseInsensitive])
        #expect(fixed.name == "mentions_paris")
        // The fixed substring wins over the expected output, and needs none.
        #expect(try await Self.score(fixed, output: "it is paris", expected: "Lyon").value == .boolean(true))
        #expect(try await Self.score(fixed, output: "it is paris").value == .boolean(true))
        #expect(try await Self.score(fixed, output: "it is lyon").value == .boolean(false))

        let accents = Contains(substring: "Sao Paulo", normalization: [.ignoreDiacritics])
        #expect(try await Self.score(accents, output: "in São Paulo").value == .boolean(true))
        #expect(try await Self.score(Contains(substring: "Sao Paulo"), output: "in São Paulo").value
            == .boolean(false))
        #expect(try await Self.score(Contains(substring: ""), output: "anything").value == .boolean(true))
    }

    @Test func containsWithoutAnythingToLookForThrows() async {
        let error = await Self.failure(Contains(), output: "Paris")
        #expect(error?.message.contains("needs a substring or an expected output") == true)
    }

    // MARK: Contains all / any

    @Test func containsAllListsWhatIsMissing() async throws {
        let all = ContainsAll(substrings: ["Paris", "France", "Seine"])
        #expect(all.name == "contains_all")
        let pass = try await Self.score(all, output: "Paris, France, on the Seine")
        #expect(pass.value == .boolean(true))
        #expect(pass.comment == "all 3 found")
        let miss = try await Self.score(all, output: "Paris is in France")
        #expect(miss.value == .boolean(false))
        #expect(miss.comment == #"missing: "Seine""#)
        let none = try await Self.score(all, output: "Berlin")
        #expect(none.comment == #"missing: "Paris", "France", "Seine""#)
    }

    @Test func containsAnyListsWhatMatched() async throws {
        let any = ContainsAny(substrings: ["Paris", "Lyon", "Nice"])
        #expect(any.name == "contains_any")
        let pass = try await Self.score(any, output: "Lyon or Nice")
        #expect(pass.value == .boolean(true))
        #expect(pass.comment == #"matched: "Lyon", "Nice""#)
        let miss = try await Self.score(any, output: "Berlin")
        #expect(miss.value == .boolean(false))
        #expect(miss.comment == "none of 3 found")
    }

    @Test func containsAllAndAnyReadTheExpectedOutputAndNormalize() async throws {
        let expected: JSONValue = ["paris", "france"]
        #expect(try await Self.score(ContainsAll(), output: "paris, france", expected: expected).value == .boolean(true))
        #expect(try await Self.score(ContainsAll(), output: "Paris, France", expected: expected).value
            == .boolean(false))
        let caseless = ContainsAll(name: "all_caseless", normalization: [.caseInsensitive])
        #expect(try await Self.score(caseless, output: "Paris, France", expected: expected).value == .boolean(true))

        #expect(try await Self.score(ContainsAny(), output: "France", expected: expected).value == .boolean(false))
        #expect(try await Self.score(ContainsAny(normalization: [.caseInsensitive]), output: "France",
                                     expected: expected).value == .boolean(true))
        // Strings given at creation win over the expected output.
        #expect(try await Self.score(ContainsAny(substrings: ["Berlin"]), output: "paris", expected: expected).value
            == .boolean(false))
    }

    @Test func containsAllAndAnyThrowWithoutStringsToLookFor() async {
        for evaluator in [ContainsAll() as any Evaluator, ContainsAny()] {
            let noExpected = await Self.failure(evaluator, output: "x")
            #expect(noExpected?.message.contains("needs a list of strings") == true)
            let notArray = await Self.failure(evaluator, output: "x", expected: "Paris")
            #expect(notArray?.message.contains("must be a JSON array of strings") == true)
            let notStrings = await Self.failure(evaluator, output: "x", expected: ["a", 2])
            #expect(notStrings?.message.contains("element 1 is 2") == true)
            let empty = await Self.failure(evaluator, output: "x", expected: [])
            #expect(empty?.message.contains("empty array") == true)
        }
    }

    // MARK: Regex

    @Test func regexMatchesAnywhereByDefault() async throws {
        let regex = try RegexMatch(pattern: #"\d{4}-\d{2}-\d{2}"#)
        #expect(regex.name == "regex")
        let pass = try await Self.score(regex, output: "It happened on 2024-05-17.")
        #expect(pass.value == .boolean(true))
        #expect(pass.comment == #"matched "2024-05-17""#)
        let miss = try await Self.score(regex, output: "It happened in May.")
        #expect(miss.value == .boolean(false))
        #expect(miss.comment?.hasPrefix("no match") == true)
        let caseless = try RegexMatch(name: "yes", pattern: "(?i)^yes\\b")
        #expect(try await Self.score(caseless, output: "YES, it is").value == .boolean(true))
        #expect(try await Self.score(caseless, output: "well, yes").value == .boolean(false))
    }

    @Test func regexCanRequireAWholeMatch() async throws {
        let whole = try RegexMatch(name: "is_number", pattern: #"-?\d+"#, wholeMatch: true)
        #expect(whole.name == "is_number")
        #expect(try await Self.score(whole, output: "-42").value == .boolean(true))
        #expect(try await Self.score(whole, output: "-42 apples").value == .boolean(false))
        #expect(try await Self.score(whole, output: 42).value == .boolean(true))
        let partial = try RegexMatch(pattern: #"-?\d+"#)
        #expect(try await Self.score(partial, output: "-42 apples").value == .boolean(true))
    }

    @Test func regexWithAnInvalidPatternThrows() {
        let error = #expect(throws: XeroMLError.self) { _ = try RegexMatch(pattern: "(unclosed") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix(#"invalid regular expression "(unclosed" for regex: "#) == true)
    }

    // MARK: Levenshtein

    @Test func levenshteinScoresSimilarity() async throws {
        let similarity = LevenshteinSimilarity()
        #expect(similarity.name == "levenshtein")
        #expect(try await Self.score(similarity, output: "kitten", expected: "sitting").value == .numeric(1 - 3.0 / 7))
        #expect(try await Self.score(similarity, output: " Paris ", expected: "Paris").value == .numeric(1))
        #expect(try await Self.score(similarity, output: "abc", expected: "xyz").value == .numeric(0))
        #expect(try await Self.score(similarity, output: "PARIS", expected: "Paris").value == .numeric(1 - 4.0 / 5))
        let caseless = LevenshteinSimilarity(name: "lev_ci", normalization: [.caseInsensitive])
        #expect(try await Self.score(caseless, output: "PARIS", expected: "Paris").value == .numeric(1))
    }

    @Test func levenshteinWithoutExpectedOutputThrows() async {
        let error = await Self.failure(LevenshteinSimilarity(), output: "Paris")
        #expect(error?.message == "levenshtein needs an expected output, and the item has none")
    }

    // MARK: JSON validity

    @Test func jsonValidityAcceptsStructuredOutputAndJSONText() async throws {
        let valid = JSONValidity()
        #expect(valid.name == "json_valid")
        for output: JSONValue in [["a": 1], [1, 2], 3.5, true, .null, #"{"a": [1, 2]}"#, " 42 ", #""text""#] {
            let evaluation = try await Self.score(valid, output: output)
            #expect(evaluation.value == .boolean(true), "\(output)")
            #expect(evaluation.comment == nil)
        }
    }

    @Test func jsonValidityReportsWhereParsingFailed() async throws {
        let valid = JSONValidity()
        let trailingComma = try await Self.score(valid, output: "{\"a\": 1,}")
        #expect(trailingComma.value == .boolean(false))
        #expect(trailingComma.comment == "not valid JSON: line 1, column 9: unexpected '}', expected a quoted object key")
        let prose = try await Self.score(valid, output: "Sure! Here is the JSON")
        #expect(prose.value == .boolean(false))
        #expect(prose.comment?.hasPrefix("not valid JSON: line 1, column 1:") == true)
        let none = try await Self.score(valid, output: nil)
        #expect(none.value == .boolean(false))
        #expect(none.comment == "the task produced no output")
    }

    // MARK: JSON equality

    @Test func jsonEqualityIgnoresKeyOrderAndNumberSpelling() async throws {
        let equal = JSONEquality()
        #expect(equal.name == "json_equal")
        #expect(try await Self.score(equal, output: #"{"b": [1, 2.0], "a": {"y": null, "x": "s"}}"#,
                                     expected: ["a": ["x": "s", "y": nil], "b": [1.0, 2]]).value == .boolean(true))
        #expect(try await Self.score(equal, output: ["n": 1], expected: #"{"n":1.0}"#).value == .boolean(true))
        #expect(try await Self.score(equal, output: "1e2", expected: 100).value == .boolean(true))
        // Plain strings that are not JSON are compared as strings.
        #expect(try await Self.score(equal, output: "Paris", expected: "Paris").value == .boolean(true))
    }

    @Test func jsonEqualityNamesTheFirstDifference() async throws {
        let equal = JSONEquality()
        let cases: [(JSONValue, JSONValue, String)] = [
            (["items": [1, 2, 4]], ["items": [1, 2, 3]], "$.items[2]: expected 3, got 4"),
            ([1, 2], [1, 2, 3], "$: expected 3 elements, got 2"),
            (["a": 1], ["a": 1, "b": 2], #"$: missing key "b""#),
            (["a": 1, "c": 3], ["a": 1], #"$: unexpected key "c""#),
            (["a b": ["x": true]], ["a b": ["x": false]], #"$["a b"].x: expected false, got true"#),
            ([1, 2], [2, 1], "$[0]: expected 2, got 1"),
            (["n": "1"], ["n": 1], #"$.n: expected 1, got "1""#),
        ]
        for (output, expected, comment) in cases {
            let evaluation = try await Self.score(equal, output: output, expected: expected)
            #expect(evaluation.value == .boolean(false), "\(output)")
            #expect(evaluation.comment == comment)
        }
        let notJSON = try await Self.score(equal, output: "{\"a\": ", expected: ["a": 1])
        #expect(notJSON.value == .boolean(false))
        #expect(notJSON.comment?.hasPrefix("the output is not valid JSON (line 1, column 7:") == true)
        let none = try await Self.score(equal, output: nil, expected: ["a": 1])
        #expect(none.value == .boolean(false))
    }

    @Test func jsonEqualityComparesLargeIntegersExactly() {
        #expect(JSONComparison.equal(.int(9_007_199_254_740_993), .double(9_007_199_254_740_992)) == false)
        #expect(JSONComparison.equal(.int(-3), .double(-3)))
        #expect(JSONComparison.equal(.int(3), .double(3.5)) == false)
    }

    @Test func jsonEqualityWithoutExpectedOutputThrows() async {
        let error = await Self.failure(JSONEquality(), output: ["a": 1])
        #expect(error?.message == "json_equal needs an expected output, and the item has none")
    }

    // MARK: Numeric closeness

    @Test func numericClosenessReadsNumbersAndStrings() async throws {
        let close = NumericCloseness()
        #expect(close.name == "numeric_close")
        #expect(close.absoluteTolerance == 1e-6)
        #expect(close.relativeTolerance == 0)
        let pass = try await Self.score(close, output: " 42.0 ", expected: 42)
        #expect(pass.value == .boolean(true))
        #expect(pass.comment == "output 42, expected 42, difference 0 ≤ tolerance 1e-06")
        #expect(try await Self.score(close, output: .double(0.1 + 0.2), expected: "0.3").value == .boolean(true))
        #expect(try await Self.score(close, output: "-1e3", expected: -1000).value == .boolean(true))
        let miss = try await Self.score(close, output: 42.5, expected: 42)
        #expect(miss.value == .boolean(false))
        #expect(miss.comment == "output 42.5, expected 42, difference 0.5 > tolerance 1e-06")
    }

    @Test func numericClosenessHonoursTolerances() async throws {
        let relative = NumericCloseness(name: "within_1pct", relativeTolerance: 0.01)
        #expect(relative.name == "within_1pct")
        #expect(try await Self.score(relative, output: 1009, expected: 1000).value == .boolean(true))
        #expect(try await Self.score(relative, output: 1011, expected: 1000).value == .boolean(false))
        // The absolute tolerance still applies near zero.
        let both = NumericCloseness(absoluteTolerance: 0.5, relativeTolerance: 0.01)
        #expect(try await Self.score(both, output: 0.4, expected: 0).value == .boolean(true))
        #expect(try await Self.score(both, output: 0.6, expected: 0).value == .boolean(false))
        #expect(try await Self.score(both, output: 1009, expected: 1000).value == .boolean(true))
    }

    @Test func numericClosenessFailsANonNumericOutputAndThrowsOnANonNumericExpectation() async throws {
        let close = NumericCloseness()
        // A model that answers with words is wrong, not unscorable.
        let words = try await Self.score(close, output: "about forty", expected: 42)
        #expect(words.value == .boolean(false))
        #expect(words.comment == #"the output "about forty" is not a number"#)
        #expect(try await Self.score(close, output: true, expected: 1).value == .boolean(false))
        #expect(try await Self.score(close, output: "nan", expected: 1).value == .boolean(false))
        let none = try await Self.score(close, output: nil, expected: 1)
        #expect(none.value == .boolean(false) && none.comment?.contains("no output") == true)
        // A broken expectation is a dataset problem: the item is unscored, with the reason.
        #expect(await Self.failure(close, output: 42, expected: ["n": 42])?.message
            == #"numeric_close: the expected output "{\"n\":42}" is not a number"#)
        #expect(await Self.failure(close, output: 42)?.message
            == "numeric_close needs an expected output, and the item has none")
    }

    // MARK: Latency

    @Test func latencyThresholdComparesWithTheMaximum() async throws {
        let fast = LatencyThreshold()
        #expect(fast.name == "latency_under")
        #expect(fast.maximum == .seconds(1))
        let pass = try await Self.score(fast, output: "x", latency: .milliseconds(250))
        #expect(pass.value == .boolean(true))
        #expect(pass.comment == "latency 250.0 ms ≤ maximum 1.00 s")
        #expect(try await Self.score(fast, output: "x", latency: .seconds(1)).value == .boolean(true))
        let slow = try await Self.score(fast, output: "x", latency: .milliseconds(1500))
        #expect(slow.value == .boolean(false))
        #expect(slow.comment == "latency 1.50 s > maximum 1.00 s")

        let strict = LatencyThreshold(name: "under_100ms", maximum: .milliseconds(100))
        #expect(try await Self.score(strict, output: "x", latency: .milliseconds(250)).value == .boolean(false))
        #expect(try await Self.score(strict, output: "x", latency: .milliseconds(99)).value == .boolean(true))
    }

    // MARK: Registry

    @Test func standardRegistryMakesEveryBuiltInByName() throws {
        let names = ["contains", "contains_all", "contains_any", "exact_match", "json_equal", "json_valid",
                     "latency_under", "levenshtein", "numeric_close"]
        let registry = EvaluatorRegistry.standard
        #expect(registry.names == names)
        for name in names {
            #expect(try registry.make(name).name == name)
        }
        #expect(try registry.make("exact_match") is ExactMatch)
        #expect(try registry.make("json_equal") is JSONEquality)
        #expect(try registry.make(["contains", "levenshtein"]).map(\.name) == ["contains", "levenshtein"])
    }

    @Test func standardRegistryEvaluatorsWork() async throws {
        let match = try EvaluatorRegistry.standard.make("exact_match")
        #expect(try await Self.score(match, output: "Paris", expected: "Paris").value == .boolean(true))
        #expect(try await Self.score(match, output: "Lyon", expected: "Paris").value == .boolean(false))
    }

    @Test func unknownEvaluatorNamesThrowListingTheKnownOnes() {
        let error = #expect(throws: XeroMLError.self) { _ = try EvaluatorRegistry.standard.make("regex") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix("unknown evaluator \"regex\"; known: contains, contains_all, contains_any, "
            + "exact_match, json_equal, json_valid, latency_under, levenshtein, numeric_close; ") == true)
        #expect(throws: XeroMLError.self) { _ = try EvaluatorRegistry.standard.make(["exact_match", "bleu"]) }
    }
}
