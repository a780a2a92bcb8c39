public import XeroML

extension EvaluatorRegistry {
    /// Registers every built-in judge template under its name, and `correctness` as an alias of
    /// `accuracy`: `helpfulness`, `accuracy`, `correctness`, `relevance`, `hallucination`,
    /// `toxicity`, `conciseness`, `faithfulness`, `context_relevance`.
    ///
    /// - Parameter client: the judge model; with `nil` the names still resolve, and every item is
    ///   unscored with a note on how to configure an endpoint (no request is ever made).
    public mutating func registerJudges(client: ChatClient?, cachePolicy: JudgeCachePolicy = .shared,
                                        contextKeyPath: String = "metadata.context") {
        var names = JudgeTemplate.builtIn.map { ($0.name, $0) }
        for (alias, target) in JudgeTemplate.aliases {
            if let template = JudgeTemplate.named(target) { names.append((alias, template)) }
        }
        for (name, template) in names {
            register(name) {
                JudgeEvaluator(template, client: client, name: name, cachePolicy: cachePolicy, contextKeyPath: contextKeyPath)
            }
        }
    }
}

extension XeroML {
    /// Makes the judge templates available by name, with the endpoint configured in the environment
    /// (`XEROML_JUDGE_BASE_URL`, `XEROML_JUDGE_MODEL`, `XEROML_JUDGE_API_KEY`, …; see
    /// ``ChatConfiguration/fromEnvironment(_:)``). Without those variables the judges resolve and leave
    /// items unscored with a note on how to configure them.
    ///
    /// ```swift
    /// xeroml.registerJudges()
    /// try await xeroml.runExperiment(name: "v2", datasetName: "qa", evaluators: try xeroml.evaluators.make(["helpfulness"])) { … }
    /// ```
    ///
    /// - Throws: ``ChatError`` when a variable is set but malformed.
    public func registerJudges() throws {
        registerJudges(configuration: try ChatConfiguration.fromEnvironment())
    }

    /// Makes the judge templates available by name in this client's ``XeroML/XeroML/evaluators``, so
    /// `createExperiment(…, evaluators: ["exact_match", "helpfulness"])` and `runExperiment` find them.
    ///
    /// ```swift
    /// xeroml.registerJudges(configuration: try ChatConfiguration.fromEnvironment())
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: the judge endpoint; `nil` (e.g. no environment variables set) registers
    ///     judges that make no request and leave items unscored, saying how to configure one.
    ///   - retry: retries of each judge call.
    ///   - limiter: a limiter shared with the experiment (``ExperimentOptions/limiter``); judges run
    ///     after the item's task has released its permit, so sharing it is safe.
    ///   - cachePolicy: see ``JudgeCachePolicy``.
    ///   - contextKeyPath: where `faithfulness`, `context_relevance` and `hallucination` find the
    ///     context (default `metadata.context`).
    public func registerJudges(configuration: ChatConfiguration?, retry: RetryPolicy = RetryPolicy(),
                               limiter: AdaptiveLimiter? = nil, cachePolicy: JudgeCachePolicy = .shared,
                               contextKeyPath: String = "metadata.context") {
        registerJudges(client: configuration.map { ChatClient(configuration: $0, retry: retry, limiter: limiter) },
                       cachePolicy: cachePolicy, contextKeyPath: contextKeyPath)
    }

    /// Registers the judge templates with an existing client (e.g. one with a custom transport).
    public func registerJudges(client: ChatClient?, cachePolicy: JudgeCachePolicy = .shared,
                               contextKeyPath: String = "metadata.context") {
        updateEvaluators { $0.registerJudges(client: client, cachePolicy: cachePolicy, contextKeyPath: contextKeyPath) }
    }

    /// Removes every cached judge answer; returns how many were removed.
    @discardableResult
    public func clearJudgeCache() async throws -> Int {
        try await clearCache(namespace: JudgeEvaluator.cacheNamespace)
    }
}
