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

/// Reads judge replies leniently, for models that follow the requested JSON schema and those that
/// do not.
///
/// In order, it accepts:
/// 1. the reply as a JSON object (`{"reasoning": "…", "score": 0.8}`);
/// 2. a JSON object inside a code fence or embedded in prose;
/// 3. labelled lines such as `Score: 0.8`, `**Verdict:** yes` or `Rating = 4/5`, with an optional
///    `Reasoning: …` line.
///
/// The score key may also be `rating`, `verdict`, `grade`, `label`, `category` or `value`; the
/// reasoning key `explanation`, `reason`, `rationale` or `justification`. Numbers may be strings,
/// fractions (`8/10`) or percentages; booleans may be `yes`/`no` or `pass`/`fail`.
public enum JudgeReplyParser {
    /// Why a reply could not be read.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// What was wrong: no score found, or a score off the scale.
        public var reason: String
        public var description: String { reason }
    }

    static let scoreKeys = ["score", "rating", "verdict", "grade", "label", "category", "value", "result"]
    static let reasoningKeys = ["reasoning", "explanation", "reason", "rationale", "justification", "comment"]

    /// The verdict in `reply` on `scale`.
    public static func parse(_ reply: String, scale: JudgeScale) -> Result<JudgeVerdict, Failure> {
        var offScale: Failure?
        for candidate in jsonCandidates(reply) {
            guard case .object(let members) = candidate else { continue }
            let lowered = Dictionary(members.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let key = scoreKeys.first(where: { lowered[$0] != nil }), let raw = lowered[key] else { continue }
            let reasoning = reasoningKeys.lazy.compactMap { lowered[$0]?.stringValue }.first
            switch interpret(raw, scale: scale) {
            case .success(var verdict):
                verdict.reasoning = reasoning.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                return .success(verdict)
            case .failure(let failure):
                offScale = offScale ?? failure
            }
        }
        if let verdict = parseLines(reply, scale: scale, offScale: &offScale) { return .success(verdict) }
        return .failure(offScale ?? Failure(reason: "no score found"))
    }

    // MARK: - JSON

    /// JSON values found in `text`: the whole text, code-fenced blocks, and balanced `{…}` spans.
    static func jsonCandidates(_ text: String) -> [JSONValue] {
        var found: [JSONValue] = []
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let whole = try? JSONValue(parsing: trimmed) { found.append(whole) }
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

    // MARK: - Scores

    static func interpret(_ value: JSONValue, scale: JudgeScale) -> Result<JudgeVerdict, Failure> {
        switch value {
        case .int, .double: return interpret(number: value.doubleValue!, text: nil, scale: scale)
        case .bool(let flag):
            if case .boolean = scale { return .success(JudgeVerdict(value: .boolean(flag))) }
            return .failure(Failure(reason: "score \(flag) is not a number"))
        case .string(let text): return interpret(text: text, scale: scale)
        default: return .failure(Failure(reason: "score \(value.jsonString) is not a \(scale.label) score"))
        }
    }

    static func interpret(number: Double, text: String?, scale: JudgeScale) -> Result<JudgeVerdict, Failure> {
        let shown = text ?? formatBound(number)
        switch scale {
        case .unitInterval:
            guard (0...1).contains(number) else { return .failure(Failure(reason: "score \(shown) is outside 0…1")) }
            return .success(JudgeVerdict(value: .numeric(number)))
        case .range(let range):
            guard range.contains(number) else {
                return .failure(Failure(reason: "score \(shown) is outside \(formatBound(range.lowerBound))…\(formatBound(range.upperBound))"))
            }
            let span = range.upperBound - range.lowerBound
            let normalised = span > 0 ? (number - range.lowerBound) / span : 1
            return .success(JudgeVerdict(value: .numeric(normalised), rawScore: number))
        case .boolean:
            if number == 1 || number == 0 { return .success(JudgeVerdict(value: .boolean(number == 1))) }
            return .failure(Failure(reason: "score \(shown) is not true or false"))
        case .categories(let names):
            return .failure(Failure(reason: "score \(shown) is not one of \(names.joined(separator: ", "))"))
        }
    }

    static func interpret(text raw: String, scale: JudgeScale) -> Result<JudgeVerdict, Failure> {
        let text = raw.trimmingCharacters(in: CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"'`*_.,;!")))
        let lowered = text.lowercased()
        switch scale {
        case .boolean:
            let word = lowered.prefix { $0.isLetter || $0.isNumber }
            if ["true", "yes", "pass", "passed", "1", "y"].contains(String(word)) { return .success(JudgeVerdict(value: .boolean(true))) }
            if ["false", "no", "fail", "failed", "0", "n"].contains(String(word)) { return .success(JudgeVerdict(value: .boolean(false))) }
            return .failure(Failure(reason: "score \"\(raw)\" is not true or false"))
        case .categories(let names):
            if let match = names.first(where: { $0.lowercased() == lowered }) {
                return .success(JudgeVerdict(value: .categorical(match)))
            }
            // A label followed by more words ("good - because …").
            let word = String(lowered.prefix { !$0.isWhitespace && $0 != "," && $0 != "-" && $0 != "(" })
            if let match = names.first(where: { $0.lowercased() == word }) {
                return .success(JudgeVerdict(value: .categorical(match)))
            }
            return .failure(Failure(reason: "score \"\(raw)\" is not one of \(names.joined(separator: ", "))"))
        case .unitInterval, .range:
            guard let number = leadingNumber(text, scale: scale) else {
                return .failure(Failure(reason: "score \"\(raw)\" is not a number"))
            }
            return interpret(number: number, text: text, scale: scale)
        }
    }

    /// The number a score text starts with: `0.8`, `80%`, `8/10`, `4 out of 5`.
    static func leadingNumber(_ text: String, scale: JudgeScale) -> Double? {
        var scanner = Substring(text)
        guard let first = scanNumber(&scanner) else { return nil }
        let rest = scanner.drop { $0 == " " }
        if rest.hasPrefix("%") { return first / 100 }
        var denominatorText: Substring?
        if rest.hasPrefix("/") { denominatorText = rest.dropFirst().drop { $0 == " " } }
        else if rest.lowercased().hasPrefix("out of") { denominatorText = rest.dropFirst(6).drop { $0 == " " } }
        if var denominatorText, let denominator = scanNumber(&denominatorText), denominator > 0 {
            if case .range(let range) = scale, denominator == range.upperBound { return first }
            if case .unitInterval = scale { return first / denominator }
            return nil
        }
        return first
    }

    static func scanNumber(_ text: inout Substring) -> Double? {
        var end = text.startIndex
        var sawDigit = false
        if end < text.endIndex, text[end] == "-" || text[end] == "+" { end = text.index(after: end) }
        while end < text.endIndex, text[end].isASCII, text[end].isNumber || text[end] == "." {
            if text[end].isNumber { sawDigit = true }
            end = text.index(after: end)
        }
        guard sawDigit, let number = Double(text[..<end]) else { return nil }
        text = text[end...]
        return number
    }

    // MARK: - Labelled lines

    static func parseLines(_ reply: String, scale: JudgeScale, offScale: inout Failure?) -> JudgeVerdict? {
        let lines = reply.components(separatedBy: .newlines)
        var verdict: JudgeVerdict?
        var scoreLine: Int?
        var reasoning: [String] = []
        var inReasoning = false
        for (index, line) in lines.enumerated() {
            let cleaned = line.trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*#_`>-")))
            if let (label, value) = labelled(cleaned) {
                if verdict == nil, scoreKeys.contains(label) || label == "final score" || label == "overall score" {
                    switch interpret(text: value, scale: scale) {
                    case .success(let found):
                        verdict = found
                        scoreLine = index
                    case .failure(let failure):
                        offScale = offScale ?? failure
                    }
                    inReasoning = false
                    continue
                }
                if reasoningKeys.contains(label) {
                    inReasoning = true
                    if !value.isEmpty { reasoning.append(value) }
                    continue
                }
            }
            if inReasoning, !cleaned.isEmpty { reasoning.append(cleaned) }
        }
        guard var verdict else { return nil }
        if reasoning.isEmpty {
            // No labelled reasoning: the rest of the reply is the reasoning.
            let rest = lines.enumerated().filter { $0.offset != scoreLine }.map(\.element)
                .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            verdict.reasoning = rest.isEmpty ? nil : rest
        } else {
            verdict.reasoning = reasoning.joined(separator: " ")
        }
        return verdict
    }

    /// `("score", "0.8")` for `Score: 0.8` or `score = 0.8`; labels are lowercased.
    static func labelled(_ line: String) -> (String, String)? {
        guard let separator = line.firstIndex(where: { $0 == ":" || $0 == "=" }) else { return nil }
        let label = line[..<separator].trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*_`\"")))
            .lowercased()
        guard !label.isEmpty, label.count <= 20, label.allSatisfy({ $0.isLetter || $0 == " " }) else { return nil }
        let value = line[line.index(after: separator)...].trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: "*_`")))
        return (label, value)
    }
}
