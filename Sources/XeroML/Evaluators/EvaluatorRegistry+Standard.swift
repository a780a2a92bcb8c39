extension EvaluatorRegistry {
    /// The built-in heuristic evaluators, by name.
    public static var standard: EvaluatorRegistry {
        let registry = EvaluatorRegistry()
        return registry
    }
}
