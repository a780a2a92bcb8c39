public import XeroML

/// A judge with your own criteria: a numeric range (normalised to 0…1), a boolean, or categories.
///
/// ```swift
/// let tone = RubricJudge(
///     name: "tone",
///     criteria: "Judge whether the reply is polite and professional. 5 = exemplary, 1 = rude.",
///     scale: .range(1...5), client: client)
/// let language = RubricJudge(
///     name: "language", criteria: "Which language is the response written in?",
///     scale: .categories(["english", "french", "other"]), inputs: [.output], client: client)
/// ```
///
/// A range score is recorded normalised (4 on 1…5 is 0.75) and the comment starts with the raw
/// score, e.g. `(4 on 1…5)`. Change ``JudgeTemplate/version`` when you change the criteria, so
/// cached answers to the old wording are not reused.
///
/// ## Topics
/// - ``init(name:criteria:scale:inputs:optionalInputs:version:client:cachePolicy:contextKeyPath:)``
/// - ``template``
public struct RubricJudge: Evaluator {
    /// The evaluator doing the work.
    public let judge: JudgeEvaluator

    /// Rubric scores are judge scores.
    public var scoreSource: ScoreSource { .judge }

    /// A rubric judge.
    ///
    /// - Parameters:
    ///   - criteria: what to judge and what the scale's values mean.
    ///   - scale: default 0…1.
    ///   - inputs: the parts shown to the judge that items must have (default: input and output).
    ///   - optionalInputs: parts shown when present (default: expected output and context).
    ///   - version: the criteria's version, part of the cache key.
    public init(name: String, criteria: String, scale: JudgeScale = .unitInterval,
                inputs: [JudgeInput] = [.input, .output], optionalInputs: [JudgeInput] = [.expectedOutput, .context],
                version: Int = 1, client: ChatClient?, cachePolicy: JudgeCachePolicy = .shared,
                contextKeyPath: String = "metadata.context") {
        let template = JudgeTemplate(name: name, version: version, summary: "Rubric: \(criteria)", criteria: criteria,
                                     scale: scale, required: inputs, optional: optionalInputs)
        judge = JudgeEvaluator(template, client: client, name: name, cachePolicy: cachePolicy,
                               contextKeyPath: contextKeyPath)
    }

    public var name: String { judge.name }
    /// The template built from the criteria.
    public var template: JudgeTemplate { judge.template }

    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] {
        try await judge.evaluate(input)
    }
}
