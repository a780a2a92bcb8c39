import Testing
import XeroML
@testable import XeroMLJudge

/// One judge reply and what the parser must make of it.
struct ReplyCase: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable {
        /// The score, and optionally the reasoning it must carry.
        case score(ScoreValue, reasoning: String? = nil)
        /// A failure whose reason contains every one of these fragments.
        case failure([String])
    }

    var reply: String
    var scale: JudgeScale
    var expected: Expected

    init(_ reply: String, _ scale: JudgeScale, _ expected: Expected) {
        self.reply = reply
        self.scale = scale
        self.expected = expected
    }

    var testDescription: String { "\(scale.label): \(reply.debugDescription.prefix(70))" }
}

extension ReplyCase.Expected {
    static func yes(_ reasoning: String? = nil) -> Self { .score(.boolean(true), reasoning: reasoning) }
    static func no(_ reasoning: String? = nil) -> Self { .score(.boolean(false), reasoning: reasoning) }
    static func number(_ value: Double, reasoning: String? = nil) -> Self { .score(.numeric(value), reasoning: reasoning) }
    static func category(_ name: String) -> Self { .score(.categorical(name)) }
    static func refused(_ fragments: String...) -> Self { .failure(fragments) }
}

private let verdicts = ["correct", "partially correct", "incorrect"]

/// Boolean judges: the usual words, bare, labelled or in JSON; any other number is a failure.
let booleanReplies: [ReplyCase] = [
    // Bare words, any case, with markdown or trailing punctuation.
    ReplyCase("true", .boolean, .yes()),
    ReplyCase("false", .boolean, .no()),
    ReplyCase("TRUE", .boolean, .yes()),
    ReplyCase("Yes", .boolean, .yes()),
    ReplyCase("no.", .boolean, .no()),
    ReplyCase("PASS", .boolean, .yes()),
    ReplyCase("FAIL", .boolean, .no()),
    ReplyCase("Passed!", .boolean, .yes()),
    ReplyCase("**FAIL**", .boolean, .no()),
    ReplyCase("`false`", .boolean, .no()),
    ReplyCase("1", .boolean, .yes()),
    ReplyCase("0", .boolean, .no()),
    ReplyCase("  \n\nyes\n\n", .boolean, .yes()),
    ReplyCase("```\nfalse\n```", .boolean, .no()),
    // After a label.
    ReplyCase("Score: PASS", .boolean, .yes()),
    ReplyCase("**Verdict:** yes", .boolean, .yes()),
    ReplyCase("VERDICT: FAIL", .boolean, .no()),
    ReplyCase("verdict = no", .boolean, .no()),
    ReplyCase("- **Score**: 1", .boolean, .yes()),
    ReplyCase("Result: Passed.", .boolean, .yes()),
    ReplyCase("Score: 0", .boolean, .no()),
    ReplyCase("Score: 1.0", .boolean, .yes()),
    ReplyCase("My final verdict: **PASS**", .boolean, .yes()),
    ReplyCase("Verdict: yes, the reply is rude.", .boolean, .yes()),
    ReplyCase("**Verdict:**\nFAIL", .boolean, .no()),
    ReplyCase("## Verdict\n\nPASS\n\nThe reply answers the question.", .boolean, .yes("The reply answers the question.")),
    // Reasoning before and after.
    ReplyCase("Let me check the claims.\nThe response invents a date.\n\nVerdict: true", .boolean,
              .yes("Let me check the claims.\nThe response invents a date.")),
    ReplyCase("Reasoning: it is polite and correct.\nVerdict: no\nThanks!", .boolean, .no("it is polite and correct.")),
    ReplyCase("The answer matches the reference in every fact.\n\nPASS", .boolean,
              .yes("The answer matches the reference in every fact.")),
    ReplyCase("No, the response is not toxic.", .boolean, .no()),
    ReplyCase("Yes. It states a founding year that appears nowhere.", .boolean, .yes()),
    ReplyCase("FAIL - the response insults the user.\nIt calls them names.", .boolean, .no()),
    ReplyCase("Y. Zhang is credited with the result, which is right.", .boolean, .refused("no score found")),
    ReplyCase("y", .boolean, .yes()),
    // JSON.
    ReplyCase(#"{"score": true, "reasoning": "Invented."}"#, .boolean, .yes("Invented.")),
    ReplyCase(#"{"reasoning": "fine", "score": false}"#, .boolean, .no("fine")),
    ReplyCase(#"{"verdict": "FAIL", "confidence": 0.9}"#, .boolean, .no()),
    ReplyCase(#"{"score": "yes"}"#, .boolean, .yes()),
    ReplyCase(#"{"score": 1}"#, .boolean, .yes()),
    ReplyCase(#"{"score": 0, "reasoning": "clean"}"#, .boolean, .no("clean")),
    ReplyCase("Here is my evaluation:\n```json\n{\"reasoning\": \"Polite.\", \"score\": false, \"notes\": []}\n```", .boolean,
              .no("Polite.")),
    // Several score lines.
    ReplyCase("Score: PASS\nThe facts check out.\nScore: PASS", .boolean, .yes()),
    ReplyCase("Score: FAIL\nOn reflection the date is right.\nFinal verdict: PASS", .boolean, .yes()),
    ReplyCase("Verdict: fail\nOverall verdict: pass\nFinal verdict: fail", .boolean, .no()),
    ReplyCase("Rating: clearly acceptable\nVerdict: PASS", .boolean, .yes()),

    // Refused: a number other than 1 or 0 is never read as false.
    ReplyCase("Score: 0.8", .boolean, .refused("0.8", "not true or false")),
    ReplyCase("0.8", .boolean, .refused("0.8", "not true or false")),
    ReplyCase(#"{"reasoning": "mostly", "score": 0.8}"#, .boolean, .refused("0.8", "not true or false")),
    ReplyCase(#"{"score": "0.2"}"#, .boolean, .refused("0.2", "not true or false")),
    ReplyCase("Score: 80%", .boolean, .refused("80%", "not true or false")),
    ReplyCase("Score: 1/2", .boolean, .refused("1/2", "not true or false")),
    ReplyCase("Score: 2", .boolean, .refused("2", "not true or false")),
    ReplyCase("Score: -1", .boolean, .refused("-1", "not true or false")),
    ReplyCase("Verdict: maybe", .boolean, .refused("maybe", "not true or false")),
    ReplyCase("Verdict: N/A", .boolean, .refused("N/A", "not true or false")),
    ReplyCase("Score: NaN", .boolean, .refused("NaN", "not a finite number")),
    ReplyCase("Score: PASS\nScore: FAIL", .boolean, .refused("conflicting scores", "true (line 1)", "false (line 2)")),
    ReplyCase("PASS\nThe response is fine, mostly.\nFAIL", .boolean, .refused("conflicting scores")),
    ReplyCase("Verdict: PASS\nScore: 0.3", .boolean, .refused("0.3", "not true or false")),
    ReplyCase("Final verdict: 0.9", .boolean, .refused("0.9", "not true or false")),
    ReplyCase("I cannot determine whether this is toxic.", .boolean, .refused("no score found")),
    ReplyCase("", .boolean, .refused("no score found")),
    ReplyCase("No score can be given without the context.", .boolean, .refused("no score found")),
    ReplyCase("1. The response is polite.\n2. It answers the question.", .boolean, .refused("no score found")),
]

/// 0…1 judges: a number, N/M and N%, labelled or in JSON; off the scale and undefined are failures.
let unitReplies: [ReplyCase] = [
    ReplyCase("0.8", .unitInterval, .number(0.8)),
    ReplyCase("1", .unitInterval, .number(1)),
    ReplyCase("0", .unitInterval, .number(0)),
    ReplyCase(".5", .unitInterval, .number(0.5)),
    ReplyCase("0.8.", .unitInterval, .number(0.8)),
    ReplyCase("**0.75**", .unitInterval, .number(0.75)),
    ReplyCase("80%", .unitInterval, .number(0.8)),
    ReplyCase("8/10", .unitInterval, .number(0.8)),
    ReplyCase("Score: 0.8", .unitInterval, .number(0.8)),
    ReplyCase("SCORE: 0.8", .unitInterval, .number(0.8)),
    ReplyCase("score = 0.25;", .unitInterval, .number(0.25)),
    ReplyCase("Score: 8/10", .unitInterval, .number(0.8)),
    ReplyCase("Score: 8 / 10", .unitInterval, .number(0.8)),
    ReplyCase("Score: 7.5/10", .unitInterval, .number(0.75)),
    ReplyCase("Score: 80%", .unitInterval, .number(0.8)),
    ReplyCase("Final score = 75%", .unitInterval, .number(0.75)),
    ReplyCase("Rating: 4 out of 5", .unitInterval, .number(0.8)),
    ReplyCase("Score (0-1): 0.6", .unitInterval, .number(0.6)),
    ReplyCase("Score: 0.9 (nearly complete)", .unitInterval, .number(0.9, reasoning: nil)),
    ReplyCase("**Score:**\n0.7", .unitInterval, .number(0.7)),
    ReplyCase("## Score\n0.9\n\nClear and complete.", .unitInterval, .number(0.9, reasoning: "Clear and complete.")),
    ReplyCase("\"score\": 0.4,", .unitInterval, .number(0.4)),
    ReplyCase("Score: 1.0/1.0", .unitInterval, .number(1)),
    // Chatty replies with reasoning before and after.
    ReplyCase("Sure! Let me evaluate the response.\n\nThe answer names the right city but skips the date.\n\nScore: 0.6\n\nLet me know if you need more.",
              .unitInterval,
              .number(0.6, reasoning: "Sure! Let me evaluate the response.\n\nThe answer names the right city but skips the date.\n\n\nLet me know if you need more.")),
    ReplyCase("The response is accurate but terse.\n\n0.7", .unitInterval, .number(0.7, reasoning: "The response is accurate but terse.")),
    ReplyCase("0.4\nIt misses half of the question.", .unitInterval, .number(0.4, reasoning: "It misses half of the question.")),
    // JSON, with extra keys, fenced or in prose.
    ReplyCase(#"{"reasoning": "Right city.", "score": 0.8, "confidence": "high", "tags": ["geo"]}"#, .unitInterval,
              .number(0.8, reasoning: "Right city.")),
    ReplyCase("```json\n{\"score\": 0.3, \"explanation\": \"Off topic.\"}\n```", .unitInterval, .number(0.3, reasoning: "Off topic.")),
    ReplyCase(#"After careful thought: {"score": "75%", "reasoning": "Mostly"} — done."#, .unitInterval, .number(0.75, reasoning: "Mostly")),
    ReplyCase(#"{"score": 1}"#, .unitInterval, .number(1)),
    // Several score lines.
    ReplyCase("Score: 0.6\nActually the date is right too.\nFinal score: 0.8", .unitInterval, .number(0.8)),
    ReplyCase("Score: 0.8\nThe answer is complete.\nScore: 0.8", .unitInterval, .number(0.8)),
    ReplyCase("Final score: 0.5\nOn second thought…\nFinal score: 0.9", .unitInterval, .number(0.9)),
    ReplyCase("Score: 0.6\nScore: 0.9", .unitInterval, .refused("conflicting scores", "0.6 (line 1)", "0.9 (line 2)", "Final score")),
    ReplyCase("Score: 0.8\nScore: 1.3", .unitInterval, .refused("1.3", "outside 0…1")),
    ReplyCase("0.3\nOn reflection the answer is better than that.\n0.9", .unitInterval, .refused("conflicting scores")),
    ReplyCase(#"{"score": 0.2} and also {"score": 0.9}"#, .unitInterval, .refused("conflicting scores", "0.2", "0.9")),

    // Refused: off the scale, undefined, never clamped.
    ReplyCase("Score: 1.2", .unitInterval, .refused("1.2", "outside 0…1")),
    ReplyCase("1.5", .unitInterval, .refused("1.5", "outside 0…1")),
    ReplyCase("-0.2", .unitInterval, .refused("-0.2", "outside 0…1")),
    ReplyCase("Score: 120%", .unitInterval, .refused("120%", "outside 0…1")),
    ReplyCase("Score: 9/5", .unitInterval, .refused("9/5", "outside 0…1")),
    ReplyCase("Score: 7", .unitInterval, .refused("7", "outside 0…1")),
    ReplyCase(#"{"reasoning": "great", "score": 7}"#, .unitInterval, .refused("score 7 is outside 0…1")),
    ReplyCase("Score: 1/0", .unitInterval, .refused("1/0", "undefined")),
    ReplyCase("0/0", .unitInterval, .refused("0/0", "undefined")),
    ReplyCase("NaN", .unitInterval, .refused("NaN", "not a finite number")),
    ReplyCase("Score: inf", .unitInterval, .refused("inf", "not a finite number")),
    ReplyCase("Score: -inf", .unitInterval, .refused("-inf", "not a finite number")),
    ReplyCase("Score: Infinity", .unitInterval, .refused("Infinity", "not a finite number")),
    ReplyCase(#"{"score": "NaN"}"#, .unitInterval, .refused("NaN", "not a finite number")),
    ReplyCase(#"{"score": null}"#, .unitInterval, .refused("null")),
    ReplyCase(#"{"score": true}"#, .unitInterval, .refused("true", "not a number in 0…1")),
    ReplyCase("Score: high", .unitInterval, .refused("high", "not a number in 0…1")),
    ReplyCase("Score: 3rd", .unitInterval, .refused("3rd")),
    ReplyCase("Score: 0,8", .unitInterval, .refused("0,8", "not one number")),
    ReplyCase("Score: 0.7 or 0.8", .unitInterval, .refused("0.7 or 0.8", "not one number")),
    ReplyCase("Score: 0.8, which is good", .unitInterval, .number(0.8)),
    ReplyCase("The answer is good.", .unitInterval, .refused("no score found")),
    ReplyCase("I would rather not grade this.", .unitInterval, .refused("no score found")),
]

/// Range judges: N/M only with M the upper bound, N% only on 0…100; off the range is a failure.
let rangeReplies: [ReplyCase] = [
    ReplyCase("8/10", .range(1...10), .score(.numeric(7.0 / 9))),
    ReplyCase("Score: 8", .range(1...10), .score(.numeric(7.0 / 9))),
    ReplyCase("Score: 10/10", .range(1...10), .number(1)),
    ReplyCase("1", .range(1...10), .number(0)),
    ReplyCase("Rating: 7 out of 10", .range(1...10), .score(.numeric(6.0 / 9))),
    ReplyCase(#"{"score": 8, "reasoning": "good"}"#, .range(1...10), .score(.numeric(7.0 / 9), reasoning: "good")),
    ReplyCase("**Rating:** 4/5\nPolite throughout.", .range(1...5), .number(0.75, reasoning: "Polite throughout.")),
    ReplyCase("Score: 3", .range(1...5), .number(0.5)),
    ReplyCase("80%", .range(0...100), .number(0.8)),
    ReplyCase("Score: 2\nOn reflection it deserves more.\nFinal score: 4", .range(1...5), .number(0.75)),

    ReplyCase("Score: 11", .range(1...10), .refused("11", "outside 1…10")),
    ReplyCase("Score: 0", .range(1...10), .refused("0", "outside 1…10")),
    ReplyCase("Score: 0.8", .range(1...10), .refused("0.8", "outside 1…10")),
    ReplyCase("Score: 9", .range(1...5), .refused("score 9 is outside 1…5")),
    ReplyCase("Score: 8/5", .range(1...10), .refused("8/5", "not on the 1…10 scale")),
    ReplyCase("8/10", .range(1...5), .refused("8/10", "not on the 1…5 scale")),
    ReplyCase("Score: 80%", .range(1...10), .refused("80%", "percentage")),
    ReplyCase("Score: 1/0", .range(1...10), .refused("1/0", "undefined")),
    ReplyCase("Score: inf", .range(1...10), .refused("inf", "not a finite number")),
    ReplyCase("Score: 4\nScore: 5", .range(1...5), .refused("conflicting scores", "4 (line 1)", "5 (line 2)")),
    ReplyCase("Score: 4-5", .range(1...5), .refused("4-5", "not one number")),
    ReplyCase("Rating: 3 to 4 out of 5", .range(1...5), .refused("not one number")),
    ReplyCase("Score: 7/10 - solid", .range(1...10), .score(.numeric(6.0 / 9))),
]

/// Category judges: a name, case-insensitive, possibly followed by more words.
let categoryReplies: [ReplyCase] = [
    ReplyCase("Correct", .categories(verdicts), .category("correct")),
    ReplyCase("INCORRECT.", .categories(verdicts), .category("incorrect")),
    ReplyCase("Category: partially correct - it misses the date", .categories(verdicts), .category("partially correct")),
    ReplyCase(#"{"label": "Incorrect", "reasoning": "Wrong city."}"#, .categories(verdicts), .category("incorrect")),
    ReplyCase("The answer misses the date.\n\n**Partially correct**", .categories(verdicts), .category("partially correct")),
    ReplyCase("incorrect, the city is wrong", .categories(verdicts), .category("incorrect")),
    ReplyCase("Category: good", .categories(["good", "bad"]), .category("good")),
    ReplyCase("Category: unsure", .categories(verdicts), .refused("unsure", "not one of correct, partially correct, incorrect")),
    ReplyCase("Label: 3", .categories(verdicts), .refused("3", "not one of")),
    ReplyCase("Category: correct\nCategory: incorrect", .categories(verdicts), .refused("conflicting scores")),
    ReplyCase("correctly answered, I think", .categories(verdicts), .refused("no score found")),
]

@Suite struct JudgeReplyRulesTests {
    func check(_ testCase: ReplyCase) {
        let result = JudgeReplyParser.parse(testCase.reply, scale: testCase.scale)
        switch (testCase.expected, result) {
        case (.score(let value, let reasoning), .success(let verdict)):
            #expect(verdict.value == value)
            if let reasoning { #expect(verdict.reasoning == reasoning) }
        case (.failure(let fragments), .failure(let failure)):
            for fragment in fragments {
                #expect(failure.reason.contains(fragment), "reason: \(failure.reason)")
            }
        case (.score(let value, _), .failure(let failure)):
            Issue.record("expected \(value), got the failure \(failure.reason)")
        case (.failure(let fragments), .success(let verdict)):
            Issue.record("expected a failure (\(fragments)), got \(verdict.value)")
        }
    }

    @Test(arguments: booleanReplies) func booleanJudges(_ testCase: ReplyCase) { check(testCase) }
    @Test(arguments: unitReplies) func unitIntervalJudges(_ testCase: ReplyCase) { check(testCase) }
    @Test(arguments: rangeReplies) func rangeJudges(_ testCase: ReplyCase) { check(testCase) }
    @Test(arguments: categoryReplies) func categoryJudges(_ testCase: ReplyCase) { check(testCase) }

    /// Whatever the number, a boolean judge never turns it into a silent `false`.
    @Test func numbersOtherThanOneOrZeroAreNeverBooleans() {
        for number in ["0.8", "0.2", "0.5", "2", "10", "-1", "0.0001", "80%", "1/2", "3/4", "4 out of 5"] {
            for reply in [number, "Score: \(number)", "**Verdict:** \(number)", #"{"score": "\#(number)"}"#] {
                guard case .failure = JudgeReplyParser.parse(reply, scale: .boolean) else {
                    Issue.record("\(reply.debugDescription) was read as a boolean")
                    continue
                }
            }
        }
    }
}
