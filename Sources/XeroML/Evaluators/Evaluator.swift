import Foundation
import Synchronization

/// What an item evaluator sees: the item, what the task produced, and the item's trace.
public struct EvaluationInput: Sendable {
    public var input: JSONValue
    /// The task's output; `nil` when it set none.
    public var output: JSONValue?
    public var expectedOutput: JSONValue?
    public var metadata: JSONValue?
    /// Wall time of the task.
    public var latency: Duration
    /// The item's trace id, and its observations (the root span first).
    public var traceID: String
    public var observations: [ObservationRecord]
    public var repetition: Int

    public init(input: JSONValue, output: JSONValue?, expectedOutput: JSONValue? = nil, metadata: JSONValue? = nil,
                latency: Duration = .zero, traceID: String = UUIDv7.make(), observations: [ObservationRecord] = [],
                repetition: Int = 0) {
        self.input = input
        self.output = output
        self.expectedOutput = expectedOutput
        self.metadata = metadata
        self.latency = latency
        self.traceID = traceID
        self.observations = observations
        self.repetition = repetition
    }

    /// The output as text: strings as they are, other JSON as compact JSON, `""` when there is none.
    public var outputText: String { output?.displayText ?? "" }
    /// The expected output as text, or `nil`.
    public var expectedText: String? { expectedOutput?.displayText }
}

/// One result of an evaluator: a named score, with an optional comment (e.g. a judge's reasoning).
public struct Evaluation: Sendable, Hashable {
    public var name: String
    public var value: ScoreValue
    public var comment: String?
    /// An observation the evaluation came from (e.g. a judge's generation), linked from the score.
    public var observationID: String?
    /// Who produced the score; `nil` records the evaluator's ``Evaluator/scoreSource``.
    public var source: ScoreSource?

    public init(name: String, value: ScoreValue, comment: String? = nil, observationID: String? = nil,
                source: ScoreSource? = nil) {
        self.name = name
        self.value = value
        self.comment = comment
        self.observationID = observationID
        self.source = source
    }
}

/// Scores one item after its task ran. Evaluators run automatically after each item of an experiment.
///
/// Throwing is safe: the item then gets an *unscored* score named after the evaluator, carrying the
/// reason (``ScoreValue/unscored(_:)``), never a crash and never a silent zero.
public protocol Evaluator: Sendable {
    /// The evaluator's name; also the score name of its single result unless it says otherwise.
    var name: String { get }
    /// Evaluates one item. Runs only for items whose task succeeded.
    func evaluate(_ input: EvaluationInput) async throws -> [Evaluation]
    /// The source recorded on this evaluator's scores, including the unscored one when it throws.
    /// Default: ``ScoreSource/evaluator``; LLM judges say ``ScoreSource/judge``.
    var scoreSource: ScoreSource { get }
    /// The values each numeric score of this evaluator can take, by score name (a similarity in
    /// [0, 1]): the run's summary clips its intervals to them. Default: none declared.
    var scoreRanges: [String: ClosedRange<Double>] { get }
}

extension Evaluator {
    public var scoreSource: ScoreSource { .evaluator }
    public var scoreRanges: [String: ClosedRange<Double>] { [:] }
}

/// Scores a whole run from all of its item results (e.g. an F1 over every item).
public protocol RunEvaluator: Sendable {
    var name: String { get }
    func evaluate(_ results: ExperimentResults) async throws -> [Evaluation]
}

/// An item evaluator made from a closure.
public struct ClosureEvaluator: Evaluator {
    public let name: String
    private let body: @Sendable (EvaluationInput) async throws -> [Evaluation]

    /// An evaluator returning several evaluations.
    public init(name: String, _ body: @escaping @Sendable (EvaluationInput) async throws -> [Evaluation]) {
        self.name = name
        self.body = body
    }

    /// An evaluator returning one score named `name`.
    public init(name: String, score: @escaping @Sendable (EvaluationInput) async throws -> ScoreValue) {
        self.name = name
        self.body = { [Evaluation(name: name, value: try await score($0))] }
    }

    public func evaluate(_ input: EvaluationInput) async throws -> [Evaluation] { try await body(input) }
}

/// A run evaluator made from a closure.
public struct ClosureRunEvaluator: RunEvaluator {
    public let name: String
    private let body: @Sendable (ExperimentResults) async throws -> [Evaluation]

    public init(name: String, _ body: @escaping @Sendable (ExperimentResults) async throws -> [Evaluation]) {
        self.name = name
        self.body = body
    }

    public func evaluate(_ results: ExperimentResults) async throws -> [Evaluation] { try await body(results) }
}

/// Evaluators by name, so `createExperiment(..., evaluators: ["exact_match"])` works.
///
/// ``standard`` holds the built-in heuristics. Each client has its own registry
/// (``XeroML/evaluators``), starting from the standard one; register your own evaluators (or judge
/// templates) there.
public struct EvaluatorRegistry: Sendable {
    private var factories: [String: @Sendable () -> any Evaluator] = [:]

    public init() {}

    /// Registers `make` under `name`, replacing an earlier registration.
    public mutating func register(_ name: String, _ make: @escaping @Sendable () -> any Evaluator) {
        factories[name] = make
    }

    /// The registered names, sorted.
    public var names: [String] { factories.keys.sorted() }

    /// A new evaluator for `name`.
    /// - Throws: ``XeroMLError/Code/invalidArgument`` naming the known evaluators.
    public func make(_ name: String) throws -> any Evaluator {
        guard let make = factories[name] else {
            if Self.judgeNames.contains(name) {
                throw XeroMLError(.invalidArgument, """
                    "\(name)" is an LLM judge, and judges are not registered in this client yet: `import XeroMLJudge` \
                    and call `xeroml.registerJudges()` once (it takes the endpoint from XEROML_JUDGE_BASE_URL, \
                    XEROML_JUDGE_MODEL and XEROML_JUDGE_API_KEY), or `registerJudges(configuration:)` with a \
                    ChatConfiguration; known now: \(names.joined(separator: ", "))
                    """)
            }
            throw XeroMLError(.invalidArgument, """
                unknown evaluator "\(name)"; known: \(names.joined(separator: ", ")); register your own with \
                `xeroml.evaluators.register("\(name)") { … }`
                """)
        }
        return make()
    }

    /// The names of the built-in LLM judges (registered by `registerJudges` of XeroMLJudge).
    static let judgeNames: Set<String> = [
        "helpfulness", "accuracy", "correctness", "relevance", "hallucination", "toxicity", "conciseness",
        "faithfulness", "context_relevance",
    ]

    /// Evaluators for several names.
    public func make(_ names: [String]) throws -> [any Evaluator] { try names.map(make) }
}
