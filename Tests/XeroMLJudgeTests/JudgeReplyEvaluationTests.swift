import Foundation
import Testing
import XeroML
import XeroMLJudge
import XeroMLTesting

/// How replies read by the parser end up in stored scores, through a run against the loopback server.
@Suite struct JudgeReplyEvaluationTests {
    /// Runs one item through `template` with every judge call answered `reply`; returns the stored
    /// score and how many requests the server got.
    func judge(_ reply: String, with template: JudgeTemplate, runs: Int = 1) async throws -> (Score, Int) {
        let xeroml = try temporaryClient()
        try await makeDataset(xeroml, items: [("Capital of France?", "Paris", nil)])
        return try await withFakeOpenAIServer(handler: { _ in .chat(reply) }) { server in
            let judge = JudgeEvaluator(template, client: client(server))
            var score: Score?
            for index in 0..<runs {
                let report = try await xeroml.runExperiment(name: "run-\(index)", datasetName: "capitals", evaluators: [judge]) {
                    $0.setOutput("Paris")
                }
                score = try await xeroml.results(runID: report.run.id).first?.scores.first
            }
            return (try #require(score), server.requestCount)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("PASS", JudgeTemplate.toxicity, ScoreValue.boolean(true)),
        ("false", .toxicity, .boolean(false)),
        ("**Verdict:** yes", .hallucination, .boolean(true)),
        ("0", .hallucination, .boolean(false)),
        ("0.8", .helpfulness, .numeric(0.8)),
        ("1", .helpfulness, .numeric(1)),
        ("0", .helpfulness, .numeric(0)),
        ("The answer is right.\n\nScore: 80%", .helpfulness, .numeric(0.8)),
    ])
    func clearRepliesAreScored(_ reply: String, _ template: JudgeTemplate, _ expected: ScoreValue) async throws {
        let (score, _) = try await judge(reply, with: template)
        #expect(score.value == expected)
        #expect(score.source == .judge)
    }

    @Test(.timeLimit(.minutes(1))) func aFractionToAPassFailJudgeIsAnErrorWithTheReplyNotFalse() async throws {
        let (score, requests) = try await judge("The reply is mostly polite.\nScore: 0.8", with: .toxicity, runs: 2)
        #expect(score.value == .unscored("""
            could not parse judge reply (score 0.8 is a number other than 1 or 0, not true or false): \
            The reply is mostly polite.
            Score: 0.8
            """))
        #expect(score.comment == score.value.stringValue, "the reason is the comment too")
        #expect(requests == 2, "an unreadable reply is not cached: the second run asked again")
    }

    @Test(.timeLimit(.minutes(1))) func offScaleAndUndefinedScoresAreErrorsNotClamped() async throws {
        for (reply, reason) in [("Score: 1.3", "score 1.3 is outside 0…1"), ("Score: 1/0", "score 1/0 is undefined"),
                                ("NaN", "score NaN is not a finite number"), ("Score: 0.2\nScore: 0.9", "conflicting scores")] {
            let (score, _) = try await judge(reply, with: .helpfulness)
            let text = try #require(score.value.stringValue)
            #expect(score.value.isUnscored)
            #expect(text.contains(reason), "\(text)")
            #expect(text.hasSuffix(reply), "the reply is quoted: \(text)")
        }
    }

    @Test(.timeLimit(.minutes(1))) func longRepliesAreQuotedByTheirStartAndEnd() async throws {
        let reply = String(repeating: "Let me weigh every sentence of the response. ", count: 200) + "\nScore: 7"
        let (score, _) = try await judge(reply, with: .helpfulness)
        let text = try #require(score.value.stringValue)
        #expect(score.value.isUnscored)
        #expect(text.hasPrefix("could not parse judge reply (score 7 is outside 0…1): Let me weigh"))
        #expect(text.hasSuffix("Score: 7"), "the end of the reply, where the score is, is kept")
        #expect(text.contains("[… \(reply.count - 2_000) characters left out …]"))
        #expect(text.count < 2_150 && reply.count > 9_000)

        let (empty, _) = try await judge("   ", with: .helpfulness)
        #expect(empty.value == .unscored("could not parse judge reply (no score found): (empty reply)"))
    }
}
