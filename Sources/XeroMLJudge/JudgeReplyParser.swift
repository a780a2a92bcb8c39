import Foundation
public import XeroML

/// A judge's parsed answer: the score, normalised to its scale, and the reasoning.
public struct JudgeVerdict: Sendable, Hashable {
    /// The score: a number in 0…1, a boolean, or a category.
    public var value: ScoreValue
    /// The number the judge gave on a ``JudgeScale/range(_:)`` scale, before normalising.
    public var rawScore: Double?
    /// The judge's reasoning, when it gave one.
    public var reasoning: String?
}

/// Reads judge replies, for models that follow the requested JSON schema and those that do not,
/// with one rule per kind of scale and no guessing: a reply that states a score the scale cannot
/// take is a failure, never a clamped or silently converted score.
///
/// ## Where the score is looked for
///
/// The first of these that finds a score decides:
///
/// 1. **JSON**: the reply as a JSON object (`{"reasoning": "…", "score": 0.8}`), a JSON object in a
///    code fence, or one embedded in prose. Other keys are ignored. The score key may be `score`,
///    `rating`, `verdict`, `grade`, `label`, `category`, `value` or `result`; the reasoning key
///    `reasoning`, `explanation`, `reason`, `rationale`, `justification` or `comment`. Several JSON
///    objects with a score must agree.
/// 2. **Labelled lines**: `Score: 0.8`, `**Verdict:** yes`, `Rating = 4/5`, `"score": 0.8,`,
///    `Score (1-10): 8`, or a label alone on its line (`**Score:**`, `## Verdict`) with the value on
///    the next line. Labels are the score keys above, case-insensitive, optionally after `my` or
///    `the` and then `final` or `overall` (`My final verdict:`, `Overall rating:`, `Final answer:`). An optional `Reasoning: …` line (and the lines after it) is the reasoning; otherwise the
///    rest of the reply is.
/// 3. **A bare value**: the first or the last non-empty line of the reply is the value and nothing
///    else (`0.8`, `PASS`, `**8/10**`, `` `false` ``; trailing `.` or `!` allowed). For boolean and
///    category scales the first or last line may also *start* with the word followed by punctuation
///    and more text (`No, the response is polite.`). When both the first and the last line are values
///    they must agree.
///
/// ## Several score lines
///
/// A reply may state its score more than once, e.g. a draft score in its reasoning and a final one at
/// the end. The rule is:
///
/// - a line labelled **final** or **overall** (`Final score: 0.8`, `Overall rating: 4/5`,
///   `My final verdict: PASS`) decides; with several such lines the last one does;
/// - otherwise every score line must give the same score, which is then the score; two different
///   scores are a failure (`conflicting scores …`), because picking one would be a guess;
/// - a score line whose value is a number the scale refuses, or more than one number (`0,8` with a
///   decimal comma, `4-5`, `0.7 or 0.8`), makes the reply a failure even when another line is
///   readable; a score line whose value is prose (`Rating: mostly accurate`) is ignored when another
///   line gives a score.
///
/// ## Rules per scale
///
/// | Scale | Reads | Refuses (a failure, with the reason) |
/// |---|---|---|
/// | ``JudgeScale/boolean`` | `true`/`false`, `yes`/`no`, `pass`/`fail`, `passed`/`failed`, `y`/`n`, `1`/`0` (any case); JSON booleans | any other number: `0.8`, `80%`, `1/2`, `2` (never read as `false`) |
/// | ``JudgeScale/unitInterval`` | a number (`0.8`, `1`, `0`, `.5`), `N/M` (`8/10` → 0.8), `N%` (`80%` → 0.8) | a value outside 0…1, `1/0`, `NaN`, `inf`, `-inf` |
/// | ``JudgeScale/range(_:)`` | a number, `N/M` when `M` is the upper bound (`8/10` on 1…10 → 8), `N%` only on a 0…100 range | a value outside the range, another denominator, a percentage on another range, `1/0`, `NaN`, `inf` |
/// | ``JudgeScale/categories(_:)`` | one of the names, case-insensitive, possibly followed by more words | anything else |
///
/// Values outside the scale are never clamped. The evaluator records a failure as an unscored
/// evaluation carrying the reason and the reply (see ``JudgeEvaluator``).
///
/// ## Topics
/// - ``parse(_:scale:)``
/// - ``Failure``
public enum JudgeReplyParser {
    /// Why a reply could not be read.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// What was wrong: no score found, a score off the scale, or conflicting scores.
        public var reason: String
        public var description: String { reason }
    }

    static let scoreKeys = ["score", "rating", "verdict", "grade", "label", "category", "value", "result"]
    static let reasoningKeys = ["reasoning", "explanation", "reason", "rationale", "justification", "comment"]
    static let trueWords: Set<String> = ["true", "yes", "pass", "passed", "y"]
    static let falseWords: Set<String> = ["false", "no", "fail", "failed", "n"]

    /// The verdict in `reply` on `scale`, or why there is none.
    public static func parse(_ reply: String, scale: JudgeScale) -> Result<JudgeVerdict, Failure> {
        if let json = parseJSON(reply, scale: scale) { return json }
        let lines = reply.components(separatedBy: .newlines)
        // Labelled lines whose values are all prose ("Rating: mostly accurate") do not hide a bare
        // value; their reason is the answer when there is none.
        var prose: Failure?
        if let labelled = parseLabelledLines(lines, scale: scale, prose: &prose) { return labelled }
        if let bare = parseBareValue(lines, scale: scale) { return bare }
        return .failure(prose ?? Failure(reason: "no score found"))
    }

    // MARK: - Reading one value

    /// A value read on a scale: a verdict, a score the scale refuses, or text that is not a score.
    enum Reading {
        case verdict(JudgeVerdict)
        /// A score was given, but the scale cannot take it (off the range, undefined, a number for a boolean).
        case refused(Failure)
        /// Prose, not a score.
        case notAScore(Failure)

        var result: Result<JudgeVerdict, Failure> {
            switch self {
            case .verdict(let verdict): .success(verdict)
            case .refused(let failure), .notAScore(let failure): .failure(failure)
            }
        }
    }

    /// A score as written: a number, `N/M`, `N%`, a word, or an undefined value.
    enum Token {
        case number(Double)
        case fraction(Double, Double)
        case percent(Double)
        case word(String)
        case undefined
    }

    /// Text shown in a failure: the value as written, at most 80 characters.
    static func shown(_ text: some StringProtocol) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.count <= 80 ? trimmed : String(trimmed.prefix(80)) + "…"
    }

    /// Reads the score at the start of `text` (a labelled line's value or a bare line).
    ///
    /// - Parameter whole: the text must be the value and nothing else (trailing `.`/`!` allowed);
    ///   otherwise more words may follow a word, or a number after a space or punctuation.
    /// - Returns: `nil` when `whole` is set and the text is more than a value.
    static func read(_ raw: String, scale: JudgeScale, whole: Bool) -> Reading? {
        let text = raw.trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "\"'`*_")))
        if case .categories(let names) = scale {
            return readCategory(text, names: names, whole: whole)
        }
        guard let (token, written, rest) = scanToken(Substring(text)) else {
            return whole ? nil : .notAScore(Failure(reason: "score \"\(shown(text))\" is not \(scale.expected)"))
        }
        let tail = rest.trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "\"'`*_.!")))
        if whole, !tail.isEmpty { return nil }
        if let next = rest.first, next.isLetter || next.isNumber {
            // "3rd", "0.8abc": a number glued to letters is not a score.
            return .notAScore(Failure(reason: "score \"\(shown(text))\" is not \(scale.expected)"))
        }
        if case .word = token {} else if startsAnotherNumber(rest) {
            // "0,8" (a decimal comma), "4-5", "0.7 or 0.8": reading the first number would be a guess.
            return .refused(Failure(reason: "score \"\(shown(text))\" is not one number"))
        }
        return interpret(token, written: written, scale: scale)
    }

    /// Whether `rest` goes on with another number: `,8`, `-5`, ` – 5`, ` or 0.8`, ` to 5`, ` and 4`.
    static func startsAnotherNumber(_ rest: Substring) -> Bool {
        var text = rest.drop { $0 == " " }
        if let first = text.first, ",-–—".contains(first) {
            text = text.dropFirst()
        } else if let word = ["or ", "to ", "and "].first(where: { text.lowercased().hasPrefix($0) }) {
            text = text.dropFirst(word.count)
        } else {
            return false
        }
        return text.drop { $0 == " " }.first.map { $0.isASCII && $0.isNumber } ?? false
    }

    /// A category name at the start of `text`, matched case-insensitively, the longest name first.
    static func readCategory(_ text: String, names: [String], whole: Bool) -> Reading? {
        let lowered = text.lowercased()
        let bare = lowered.trimmingCharacters(in: CharacterSet(charactersIn: ".!"))
        if let match = names.first(where: { $0.lowercased() == bare }) {
            return .verdict(JudgeVerdict(value: .categorical(match)))
        }
        for name in names.sorted(by: { $0.count > $1.count }) {
            let key = name.lowercased()
            guard !key.isEmpty, lowered.hasPrefix(key) else { continue }
            let next = lowered.dropFirst(key.count).first
            // "good - because …", "bad, it is rude", "good (mostly)"; bare lines need punctuation.
            let boundary: Bool
            if whole {
                boundary = lowered.dropFirst(key.count).drop { $0 == " " }.first.map { ",.:;!—–-".contains($0) } ?? true
            } else {
                boundary = next.map { !($0.isLetter || $0.isNumber) } ?? true
            }
            if boundary { return .verdict(JudgeVerdict(value: .categorical(name))) }
        }
        if whole { return nil }
        return .notAScore(Failure(reason: "score \"\(shown(text))\" is not one of \(names.joined(separator: ", "))"))
    }

    /// The token at the start of `text`, how it was written, and what follows it.
    static func scanToken(_ text: Substring) -> (Token, String, Substring)? {
        var rest = text
        if let number = scanNumber(&rest) {
            let numberEnd = rest.startIndex
            let afterSpaces = rest.drop { $0 == " " }
            if afterSpaces.hasPrefix("%") {
                let end = afterSpaces.dropFirst()
                return (.percent(number), String(text[..<end.startIndex]), end)
            }
            var denominatorText: Substring?
            if afterSpaces.hasPrefix("/") {
                denominatorText = afterSpaces.dropFirst().drop { $0 == " " }
            } else if afterSpaces.lowercased().hasPrefix("out of ") {
                denominatorText = afterSpaces.dropFirst(7).drop { $0 == " " }
            }
            if var denominatorText, let denominator = scanNumber(&denominatorText) {
                return (.fraction(number, denominator), String(text[..<denominatorText.startIndex]), denominatorText)
            }
            return (.number(number), String(text[..<numberEnd]), rest)
        }
        // A word: letters, digits, '-', '/' and '_' (so "n/a" and "non-toxic" stay whole).
        let wordEnd = text.firstIndex { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "+" || $0 == "/" || $0 == "_") }
            ?? text.endIndex
        let word = String(text[..<wordEnd])
        guard !word.isEmpty else { return nil }
        let lowered = word.lowercased()
        let unsigned = lowered.hasPrefix("-") || lowered.hasPrefix("+") ? String(lowered.dropFirst()) : lowered
        if ["nan", "inf", "infinity", "∞"].contains(unsigned) { return (.undefined, word, text[wordEnd...]) }
        return (.word(lowered), word, text[wordEnd...])
    }

    /// A decimal number (`0.8`, `-1`, `.5`, `+3`) at the start of `text`; `text` then starts after it.
    /// A `.` belongs to the number only when a digit follows it, so `0.8.` reads 0.8.
    static func scanNumber(_ text: inout Substring) -> Double? {
        var end = text.startIndex
        if end < text.endIndex, text[end] == "-" || text[end] == "+" || text[end] == "−" { end = text.index(after: end) }
        var sawDigit = false
        var sawPoint = false
        while end < text.endIndex {
            let character = text[end]
            if character.isASCII, character.isNumber {
                sawDigit = true
            } else if character == ".", !sawPoint, let next = text[text.index(after: end)...].first, next.isASCII, next.isNumber {
                sawPoint = true
            } else {
                break
            }
            end = text.index(after: end)
        }
        guard sawDigit else { return nil }
        let literal = text[..<end].replacingOccurrences(of: "−", with: "-")
        guard let number = Double(literal) else { return nil }
        text = text[end...]
        return number
    }

    /// A token on `scale`.
    static func interpret(_ token: Token, written: String, scale: JudgeScale) -> Reading {
        let shownValue = shown(written)
        switch (token, scale) {
        case (.undefined, _):
            return .refused(Failure(reason: "score \(shownValue) is not a finite number"))
        case (.fraction(_, let denominator), _) where denominator == 0:
            return .refused(Failure(reason: "score \(shownValue) is undefined (division by zero)"))

        case (.word(let word), .boolean):
            if trueWords.contains(word) { return .verdict(JudgeVerdict(value: .boolean(true))) }
            if falseWords.contains(word) { return .verdict(JudgeVerdict(value: .boolean(false))) }
            return .notAScore(Failure(reason: "score \"\(shownValue)\" is not true or false"))
        case (.number(let number), .boolean) where number == 0 || number == 1:
            return .verdict(JudgeVerdict(value: .boolean(number == 1)))
        case (_, .boolean):
            return .refused(Failure(reason: "score \(shownValue) is a number other than 1 or 0, not true or false"))

        case (.word, _):
            return .notAScore(Failure(reason: "score \"\(shownValue)\" is not \(scale.expected)"))
        case (.number(let number), _):
            return interpret(number: number, shown: shownValue, scale: scale)
        case (.percent(let percent), .unitInterval):
            return interpret(number: percent / 100, shown: shownValue, scale: scale)
        case (.percent(let percent), .range(let range)):
            guard range.lowerBound == 0, range.upperBound == 100 else {
                return .refused(Failure(reason: "score \(shownValue) is a percentage; the scale is \(range.boundsText)"))
            }
            return interpret(number: percent, shown: shownValue, scale: scale)
        case (.fraction(let numerator, let denominator), .unitInterval):
            return interpret(number: numerator / denominator, shown: shownValue, scale: scale)
        case (.fraction(let numerator, let denominator), .range(let range)):
            guard denominator == range.upperBound else {
                return .refused(Failure(reason: "score \(shownValue) is not on the \(range.boundsText) scale"))
            }
            return interpret(number: numerator, shown: shownValue, scale: scale)
        case (_, .categories(let names)):
            return .refused(Failure(reason: "score \(shownValue) is not one of \(names.joined(separator: ", "))"))
        }
    }

    /// A number on a numeric scale; values off the scale are refused, never clamped.
    static func interpret(number: Double, shown: String, scale: JudgeScale) -> Reading {
        guard number.isFinite else { return .refused(Failure(reason: "score \(shown) is not a finite number")) }
        switch scale {
        case .unitInterval:
            guard (0...1).contains(number) else { return .refused(Failure(reason: "score \(shown) is outside 0…1")) }
            return .verdict(JudgeVerdict(value: .numeric(number)))
        case .range(let range):
            guard range.contains(number) else { return .refused(Failure(reason: "score \(shown) is outside \(range.boundsText)")) }
            let span = range.upperBound - range.lowerBound
            let normalised = span > 0 ? (number - range.lowerBound) / span : 1
            return .verdict(JudgeVerdict(value: .numeric(normalised), rawScore: number))
        case .boolean:
            if number == 1 || number == 0 { return .verdict(JudgeVerdict(value: .boolean(number == 1))) }
            return .refused(Failure(reason: "score \(shown) is a number other than 1 or 0, not true or false"))
        case .categories(let names):
            return .refused(Failure(reason: "score \(shown) is not one of \(names.joined(separator: ", "))"))
        }
    }

    /// A JSON score on `scale`.
    static func interpret(_ value: JSONValue, scale: JudgeScale) -> Reading {
        switch value {
        case .int, .double:
            let number = value.doubleValue ?? .nan
            return interpret(number: number, shown: formatBound(number), scale: scale)
        case .bool(let flag):
            if case .boolean = scale { return .verdict(JudgeVerdict(value: .boolean(flag))) }
            return .refused(Failure(reason: "score \(flag) is not \(scale.expected)"))
        case .string(let text):
            return read(text, scale: scale, whole: false)
                ?? .notAScore(Failure(reason: "score \"\(shown(text))\" is not \(scale.expected)"))
        default:
            return .refused(Failure(reason: "score \(shown(value.jsonString)) is not \(scale.expected)"))
        }
    }

    // MARK: - JSON

    /// The score of the JSON objects in `reply` that have a score key, or `nil` when there are none.
    static func parseJSON(_ reply: String, scale: JudgeScale) -> Result<JudgeVerdict, Failure>? {
        var found: [JudgeVerdict] = []
        for candidate in jsonCandidates(reply) {
            guard case .object(let members) = candidate else { continue }
            let lowered = Dictionary(members.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let key = scoreKeys.first(where: { lowered[$0] != nil }), let raw = lowered[key] else { continue }
            switch interpret(raw, scale: scale) {
            case .verdict(var verdict):
                verdict.reasoning = reasoningKeys.lazy.compactMap { lowered[$0]?.stringValue }.first
                    .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                found.append(verdict)
            case .refused(let failure), .notAScore(let failure):
                return .failure(failure)
            }
        }
        guard let first = found.first else { return nil }
        if let other = found.first(where: { $0.value != first.value }) {
            return .failure(Failure(reason: "conflicting scores in the reply's JSON: \(first.shownScore) and \(other.shownScore)"))
        }
        return .success(first)
    }

    /// JSON values found in `text`: the whole text, code-fenced blocks, and balanced `{…}` spans.
    static func jsonCandidates(_ text: String) -> [JSONValue] {
        var found: [JSONValue] = []
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let whole = try? JSONValue(parsing: trimmed) {
            found.append(whole)
            if case .object = whole { return found }
        }
        // Fenced blocks: ``` or ```json … ```.
        let fences = trimmed.components(separatedBy: "```")
        if fences.count >= 3 {
            for (index, block) in fences.enumerated() where index % 2 == 1 {
                var body = Substring(block)
                if let newline = body.firstIndex(of: "\n"), !body[..<newline].contains("{") {
                    body = body[body.index(after: newline)...]  // drop the language tag
                }
                if let value = try? JSONValue(parsing: String(body)) { found.append(value) }
            }
        }
        // Balanced braces in prose; strings are skipped so braces inside them do not count.
        let bytes = Array(trimmed.utf8)
        var start = 0
        var spans = 0
        while start < bytes.count, spans < 32 {
            guard let open = bytes[start...].firstIndex(of: UInt8(ascii: "{")) else { break }
            if let end = matchingBrace(bytes, from: open),
               let value = try? JSONValue(parsing: String(decoding: bytes[open...end], as: UTF8.self)) {
                found.append(value)
                spans += 1
                start = end + 1
            } else {
                start = open + 1
            }
        }
        return found
    }

    static func matchingBrace(_ bytes: [UInt8], from open: Int) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        for i in open..<bytes.count {
            let byte = bytes[i]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return i }
            default: break
            }
        }
        return nil
    }

    // MARK: - Labelled lines

    /// One line labelled with a score key, read on the scale.
    struct ScoreLine {
        var lines: [Int]
        var isFinal: Bool
        var reading: Reading
    }

    /// The score of the reply's labelled lines (see the rule in the type's documentation), or `nil`
    /// when no line labelled with a score key gives a score (the first prose value is then in `prose`).
    static func parseLabelledLines(_ lines: [String], scale: JudgeScale, prose: inout Failure?)
        -> Result<JudgeVerdict, Failure>?
    {
        let cleaned = lines.map(clean)
        var scoreLines: [ScoreLine] = []
        var reasoning: [String] = []
        var inReasoning = false
        var index = 0
        while index < cleaned.count {
            defer { index += 1 }
            guard let line = cleaned[index] else { continue }
            if let (label, value) = labelled(line) {
                if let isFinal = scoreLabel(label) {
                    inReasoning = false
                    if !value.isEmpty {
                        if let reading = read(value, scale: scale, whole: false) {
                            scoreLines.append(ScoreLine(lines: [index], isFinal: isFinal, reading: reading))
                        }
                    } else if let next = nextValueLine(after: index, in: cleaned), let reading = readAlone(cleaned[next], scale: scale) {
                        // "**Score:**" with the value alone on the next line.
                        scoreLines.append(ScoreLine(lines: [index, next], isFinal: isFinal, reading: reading))
                        index = next
                    }
                    continue
                }
                if reasoningKeys.contains(label) {
                    inReasoning = true
                    if !value.isEmpty { reasoning.append(value) }
                    continue
                }
            } else if let isFinal = scoreLabel(headingLabel(line)), let next = nextValueLine(after: index, in: cleaned),
                      let reading = readAlone(cleaned[next], scale: scale) {
                // "## Score" or "**Verdict**" alone, with the value alone on the next line.
                scoreLines.append(ScoreLine(lines: [index, next], isFinal: isFinal, reading: reading))
                index = next
                inReasoning = false
                continue
            }
            if inReasoning, !line.isEmpty { reasoning.append(line) }
        }
        let decided: Result<JudgeVerdict, Failure>
        if let final = scoreLines.last(where: \.isFinal) {
            decided = final.reading.result
        } else if let refused = scoreLines.lazy.compactMap({ line -> Failure? in
            if case .refused(let failure) = line.reading { return failure }
            return nil
        }).first {
            decided = .failure(refused)
        } else {
            let verdicts = scoreLines.compactMap { line -> (ScoreLine, JudgeVerdict)? in
                if case .verdict(let verdict) = line.reading { return (line, verdict) }
                return nil
            }
            guard let (firstLine, first) = verdicts.first else {
                prose = scoreLines.first?.reading.result.failure
                return nil
            }
            if let (otherLine, other) = verdicts.first(where: { $0.1.value != first.value }) {
                decided = .failure(Failure(reason: """
                    conflicting scores: \(first.shownScore) (line \(firstLine.lines[0] + 1)) and \
                    \(other.shownScore) (line \(otherLine.lines[0] + 1)); label the one that counts "Final score:"
                    """))
            } else {
                decided = .success(verdicts[verdicts.count - 1].1)
            }
        }
        guard case .success(var verdict) = decided else { return decided }
        if reasoning.isEmpty {
            // No labelled reasoning: the rest of the reply is the reasoning.
            verdict.reasoning = rest(of: lines, without: Set(scoreLines.flatMap(\.lines)))
        } else {
            verdict.reasoning = reasoning.joined(separator: " ")
        }
        return .success(verdict)
    }

    /// A value alone on its line (after a label or heading line): the whole line, or for boolean and
    /// category scales a word opening it; `nil` for anything else, including prose.
    static func readAlone(_ line: String?, scale: JudgeScale) -> Reading? {
        guard let line, let reading = read(line, scale: scale, whole: true) ?? leadingWord(line, scale: scale) else { return nil }
        if case .notAScore = reading { return nil }
        return reading
    }

    /// Whether `label` is a score label, and if so whether it marks the final score: `score`,
    /// `final score`, `overall rating`, `my final verdict`, `the score`… `nil` for other labels.
    static func scoreLabel(_ label: String?) -> Bool? {
        guard var words = label?.split(separator: " ").map(String.init), !words.isEmpty else { return nil }
        if words.first == "my" || words.first == "the" { words.removeFirst() }
        var isFinal = false
        if words.first == "final" || words.first == "overall" {
            isFinal = true
            words.removeFirst()
        }
        // "Final answer: PASS"; a bare "Answer:" is too common in prose to be a score.
        guard words.count == 1, scoreKeys.contains(words[0]) || (isFinal && words[0] == "answer") else { return nil }
        return isFinal
    }

    /// A line that is only a label, as a heading or in bold (`## Score`, `**Final verdict**`), lowercased.
    static func headingLabel(_ line: String) -> String? {
        let label = line.trimmingCharacters(in: CharacterSet(charactersIn: ":")).lowercased()
        guard !label.isEmpty, label.count <= 24, label.allSatisfy({ $0.isLetter || $0 == " " }) else { return nil }
        return label
    }

    /// The index of the next non-empty line after `index`, if it is within two lines.
    static func nextValueLine(after index: Int, in cleaned: [String?]) -> Int? {
        var next = index + 1
        while next < cleaned.count, next <= index + 2 {
            if let line = cleaned[next], !line.isEmpty { return next }
            next += 1
        }
        return nil
    }

    /// `("score", "0.8")` for `Score: 0.8`, `score = 0.8`, `"score": 0.8,` or `Score (0-1): 0.8`;
    /// labels are lowercased, values keep their case.
    static func labelled(_ line: String) -> (String, String)? {
        guard let separator = line.firstIndex(where: { $0 == ":" || $0 == "=" }) else { return nil }
        var label = line[..<separator].trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*_`\"")))
            .lowercased()
        if label.hasSuffix(")"), let open = label.lastIndex(of: "(") {
            // "Score (1-10)", "Rating (out of 5)".
            label = label[..<open].trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*_`\"")))
        }
        guard !label.isEmpty, label.count <= 24, label.allSatisfy({ $0.isLetter || $0 == " " }) else { return nil }
        let value = line[line.index(after: separator)...]
            .trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*_`,")))
        return (label, value)
    }

    // MARK: - A bare value

    /// The score given as the whole first or last line (or, for boolean and category scales, as the
    /// first word of it followed by punctuation), or `nil` when neither line is a value.
    static func parseBareValue(_ lines: [String], scale: JudgeScale) -> Result<JudgeVerdict, Failure>? {
        let cleaned = lines.map(clean)
        let nonEmpty = cleaned.indices.filter { cleaned[$0].map { !$0.isEmpty } ?? false }
        guard let firstIndex = nonEmpty.first, let lastIndex = nonEmpty.last else { return nil }
        var readings: [(Int, Reading)] = []
        for index in Set([firstIndex, lastIndex]).sorted() {
            if let reading = readAlone(cleaned[index], scale: scale) { readings.append((index, reading)) }
        }
        guard !readings.isEmpty else { return nil }
        for (_, reading) in readings {
            if case .refused(let failure) = reading { return .failure(failure) }
        }
        let verdicts = readings.compactMap { index, reading -> (Int, JudgeVerdict)? in
            if case .verdict(let verdict) = reading { return (index, verdict) }
            return nil
        }
        guard let (index, first) = verdicts.first else { return nil }
        if let (_, last) = verdicts.last, last.value != first.value {
            return .failure(Failure(reason: "conflicting scores: \(first.shownScore) (first line) and \(last.shownScore) (last line)"))
        }
        var verdict = first
        verdict.reasoning = rest(of: lines, without: Set(verdicts.map(\.0)).union([index]))
        return .success(verdict)
    }

    /// `No, the response …`, `PASS - …`, `good: …`: a boolean word or a category name opening a line,
    /// followed by punctuation. Numbers never count ("1. First point" is a list).
    static func leadingWord(_ line: String, scale: JudgeScale) -> Reading? {
        switch scale {
        case .categories(let names):
            return readCategory(line, names: names, whole: true)
        case .boolean:
            let wordEnd = line.firstIndex { !$0.isLetter } ?? line.endIndex
            let word = line[..<wordEnd].lowercased()
            let after = line[wordEnd...].drop { $0 == " " }  // "PASS - because …"
            // Single letters ("Y. Zhang wrote …") only count as a whole line.
            guard word.count > 1, let mark = after.first, ",.:;!—–-".contains(mark) else { return nil }
            if mark == "-", after.dropFirst().first?.isLetter == true { return nil }  // "non-toxic"
            if trueWords.contains(word) { return .verdict(JudgeVerdict(value: .boolean(true))) }
            if falseWords.contains(word) { return .verdict(JudgeVerdict(value: .boolean(false))) }
            return nil
        case .unitInterval, .range:
            return nil
        }
    }

    // MARK: - Lines

    /// A line without surrounding whitespace, markdown emphasis, heading marks, quote marks and list
    /// bullets; `nil` for a code fence line (` ``` `, ` ```json `).
    static func clean(_ line: String) -> String? {
        var text = Substring(line.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("```") { return nil }
        while let first = text.first, "#>".contains(first) { text = text.dropFirst().drop { $0 == " " } }
        for bullet in ["- ", "* ", "• ", "+ "] where text.hasPrefix(bullet) {
            text = text.dropFirst(bullet.count)
        }
        return text.trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*_`")))
    }

    /// The reply without the lines at `used`, trimmed; `nil` when nothing is left.
    static func rest(of lines: [String], without used: Set<Int>) -> String? {
        let text = lines.enumerated().filter { !used.contains($0.offset) }.map(\.element)
            .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

extension JudgeScale {
    /// What a score on this scale is, for failure messages: "a number in 0…1", "true or false".
    var expected: String {
        switch self {
        case .unitInterval: "a number in 0…1"
        case .boolean: "true or false"
        case .range(let range): "a number in \(range.boundsText)"
        case .categories(let names): "one of \(names.joined(separator: ", "))"
        }
    }
}

extension ClosedRange<Double> {
    /// `1…5`.
    var boundsText: String { "\(formatBound(lowerBound))…\(formatBound(upperBound))" }
}

extension Result {
    /// The error of a failure, or `nil`.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

extension JudgeVerdict {
    /// The score as written in failure messages: `0.8`, `true`, `good`, `4` (raw, on a range).
    var shownScore: String {
        if let rawScore { return formatBound(rawScore) }
        switch value {
        case .numeric(let number): return formatBound(number)
        case .boolean(let flag): return String(flag)
        case .categorical(let name): return name
        default: return "\(value)"
        }
    }
}
