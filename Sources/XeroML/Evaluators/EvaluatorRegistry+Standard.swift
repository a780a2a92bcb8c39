extension EvaluatorRegistry {
    /// The built-in heuristic evaluators, by name, each with its default options:
    ///
    /// | Name | Evaluator |
    /// |---|---|
    /// | `exact_match` | ``ExactMatch`` |
    /// | `contains` | ``Contains`` |
    /// | `contains_all` | ``ContainsAll`` |
    /// | `contains_any` | ``ContainsAny`` |
    /// | `levenshtein` | ``LevenshteinSimilarity`` |
    /// | `json_valid` | ``JSONValidity`` |
    /// | `json_equal` | ``JSONEquality`` |
    /// | `numeric_close` | ``NumericCloseness`` |
    /// | `latency_under` | ``LatencyThreshold`` |
    ///
    /// ``RegexMatch`` needs a pattern, so it is not registered; create one directly, or register it
    /// under a name of your own.
    public static var standard: EvaluatorRegistry {
        var registry = EvaluatorRegistry()
        registry.register("exact_match") { ExactMatch() }
        registry.register("contains") { Contains() }
        registry.register("contains_all") { ContainsAll() }
        registry.register("contains_any") { ContainsAny() }
        registry.register("levenshtein") { LevenshteinSimilarity() }
        registry.register("json_valid") { JSONValidity() }
        registry.register("json_equal") { JSONEquality() }
        registry.register("numeric_close") { NumericCloseness() }
        registry.register("latency_under") { LatencyThreshold() }
        return registry
    }
}
