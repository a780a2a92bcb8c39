import Testing
import XeroML
@testable import XeroMLJudge

@Suite struct JudgeReplyParserTests {
    func verdict(_ reply: String, _ scale: JudgeScale = .unitInterval) -> JudgeVerdict? {
        try? JudgeReplyParser.parse(reply, scale: scale).get()
    }

    func failure(_ reply: String, _ scale: JudgeScale = .unitInterval) -> String? {
        if case .failure(let failure) = JudgeReplyParser.parse(reply, scale: scale) { return failure.reason }
        return nil
    }

    @Test func structuredReplies() {
        #expect(verdict(#"{"reasoning": "Right city.", "score": 0.8}"#) == JudgeVerdict(value: .numeric(0.8), reasoning: "Right city."))
        #expect(verdict(#"{"score": 1, "reasoning": "ok"}"#)?.value == .numeric(1))
        #expect(verdict(#"{"Score": "0.25", "Explanation": "weak"}"#) == JudgeVerdict(value: .numeric(0.25), reasoning: "weak"))
        #expect(verdict(#"{"reasoning": "uses {curly} braces and \"quotes\"", "score": 0.5}"#)?.reasoning
                == #"uses {curly} braces and "quotes""#)
        #expect(verdict(#"{"reasoning": "no", "score": false}"#, .boolean)?.value == .boolean(false))
        #expect(verdict(#"{"reasoning": "fine", "verdict": "yes"}"#, .boolean)?.value == .boolean(true))
        #expect(verdict(#"{"reasoning": "r", "score": "Good"}"#, .categories(["good", "bad"]))?.value == .categorical("good"))
    }

    @Test func jsonInsideCodeFencesOrProse() {
        let fenced = """
            Here is my evaluation:
            ```json
            {"reasoning": "Mostly right.", "score": 0.75}
            ```
            """
        #expect(verdict(fenced) == JudgeVerdict(value: .numeric(0.75), reasoning: "Mostly right."))
        let prose = #"I think the answer is right. {"score": 1, "reasoning": "matches"} That is all."#
        #expect(verdict(prose) == JudgeVerdict(value: .numeric(1), reasoning: "matches"))
        let noise = #"Considering {the context} carefully: {"reasoning": "partly", "score": 0.5}"#
        #expect(verdict(noise)?.value == .numeric(0.5))
    }

    @Test func labelledLines() {
        #expect(verdict("Score: 0.8\nReasoning: mostly right") == JudgeVerdict(value: .numeric(0.8), reasoning: "mostly right"))
        #expect(verdict("**Score:** 8/10\nThe answer is nearly complete.")
                == JudgeVerdict(value: .numeric(0.8), reasoning: "The answer is nearly complete."))
        #expect(verdict("Reasoning: polite and correct.\nVerdict: yes", .boolean)
                == JudgeVerdict(value: .boolean(true), reasoning: "polite and correct."))
        #expect(verdict("Final score = 75%")?.value == .numeric(0.75))
        #expect(verdict("Rating: 4 out of 5", .range(1...5)) == JudgeVerdict(value: .numeric(0.75), rawScore: 4, reasoning: nil))
        #expect(verdict("Category: bad - it is rude", .categories(["good", "bad"]))?.value == .categorical("bad"))
    }

    @Test func rangesAreNormalised() {
        #expect(verdict(#"{"reasoning": "r", "score": 1}"#, .range(1...5))?.value == .numeric(0))
        #expect(verdict(#"{"reasoning": "r", "score": 5}"#, .range(1...5))?.value == .numeric(1))
        #expect(verdict(#"{"reasoning": "r", "score": 3}"#, .range(1...5)) == JudgeVerdict(value: .numeric(0.5), rawScore: 3, reasoning: "r"))
    }

    @Test func unreadableRepliesSayWhy() {
        #expect(failure("I cannot evaluate this.") == "no score found")
        #expect(failure("") == "no score found")
        #expect(failure(#"{"reasoning": "great", "score": 7}"#) == "score 7 is outside 0…1")
        #expect(failure("Score: 9", .range(1...5)) == "score 9 is outside 1…5")
        #expect(failure(#"{"score": "maybe"}"#, .boolean) == "score \"maybe\" is not true or false")
        #expect(failure(#"{"score": "meh"}"#, .categories(["good", "bad"])) == "score \"meh\" is not one of good, bad")
        #expect(failure(#"{"reasoning": "a", "score": null}"#) != nil)
    }
}

@Suite struct PromptTemplateTests {
    @Test func fillsPlaceholdersFromTheItem() throws {
        let template = try PromptTemplate("Q: {{ input.question }} ({{input.tags.1}}) expected {{expected_output}}, lang {{metadata.lang}}; all: {{input}}")
        #expect(template.placeholders == ["input.question", "input.tags.1", "expected_output", "metadata.lang", "input"])
        let text = try template.render(input: ["question": "Capital of France?", "tags": ["geo", "europe"]],
                                       expectedOutput: "Paris", metadata: ["lang": "en"])
        #expect(text == #"Q: Capital of France? (europe) expected Paris, lang en; all: {"question":"Capital of France?","tags":["geo","europe"]}"#)
        #expect(try PromptTemplate("no placeholders").render([:]) == "no placeholders")
    }

    @Test func unknownOrMalformedPlaceholdersAreErrors() throws {
        let unknown = #expect(throws: PromptTemplateError.self) { try PromptTemplate("Answer {{question}}") }
        #expect(unknown?.message.contains("unknown placeholder {{question}}") == true)
        #expect(unknown?.message.contains("{{input}}") == true)
        #expect(throws: PromptTemplateError.self) { try PromptTemplate("Answer {{input.question") }
        #expect(throws: PromptTemplateError.self) { try PromptTemplate("Answer {{input..question}}") }
        #expect(throws: PromptTemplateError.self) { try PromptTemplate("Answer {{}}") }
        let missing = #expect(throws: PromptTemplateError.self) {
            try PromptTemplate("{{input.qestion}}").render(input: ["question": "?"], expectedOutput: nil, metadata: nil)
        }
        #expect(missing?.message == "the item has no input.qestion for the placeholder {{input.qestion}}")
    }
}

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func knownDigests(_ input: String, _ digest: String) {
        #expect(SHA256.hex(input) == digest)
    }
}
