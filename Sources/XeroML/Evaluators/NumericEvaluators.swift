import Foundation

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
