// LLM-as-a-judge evaluators: see JudgeEvaluator.swift.
