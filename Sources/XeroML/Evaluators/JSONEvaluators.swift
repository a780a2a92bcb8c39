import Foundation

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
