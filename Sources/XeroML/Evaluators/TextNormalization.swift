import Foundation

// MARK: - Text normalization

/// How text is normalized before a heuristic evaluator compares it.
///
/// The steps run in a fixed order, whatever order the options are listed in: diacritics are removed,
/// then case is folded, then punctuation is stripped, then whitespace runs are collapsed, and finally
/// the ends are trimmed. So `[.stripPunctuation, .collapseWhitespace, .trimWhitespace]` turns
/// `" Paris , France! "` into `"Paris France"`.
///
/// ```swift
/// let match = ExactMatch(normalization: [.caseInsensitive, .trimWhitespace, .ignoreDiacritics])
/// ```
public struct TextNormalization: OptionSet, Sendable, Hashable {
    /// The raw bits of the option set.
    public let rawValue: Int

    /// Creates an option set from its raw bits.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Compare lowercased text, so `"PARIS"` equals `"paris"`.
    public static let caseInsensitive = TextNormalization(rawValue: 1 << 0)
    /// Remove leading and trailing whitespace and newlines.
    public static let trimWhitespace = TextNormalization(rawValue: 1 << 1)
    /// Replace every run of whitespace (including newlines) with a single space.
    public static let collapseWhitespace = TextNormalization(rawValue: 1 << 2)
    /// Remove punctuation characters (`.`, `,`, `!`, `?`, quotes, dashes, brackets, …).
    public static let stripPunctuation = TextNormalization(rawValue: 1 << 3)
    /// Remove combining accents, so `"Café"` equals `"Cafe"`.
    public static let ignoreDiacritics = TextNormalization(rawValue: 1 << 4)

    /// Applies the selected normalization steps to `text`.
    public func apply(to text: String) -> String {
        var text = text
        if contains(.ignoreDiacritics) {
            let stripped = text.decomposedStringWithCanonicalMapping.unicodeScalars
                .filter { $0.properties.generalCategory != .nonspacingMark }
            text = String(stripped).precomposedStringWithCanonicalMapping
        }
        if contains(.caseInsensitive) { text = text.lowercased() }
        if contains(.stripPunctuation) { text = String(text.filter { !$0.isPunctuation }) }
        if contains(.collapseWhitespace) {
            var collapsed = ""
            collapsed.reserveCapacity(text.utf8.count)
            var inWhitespace = false
            for character in text {
                if character.isWhitespace {
                    if !inWhitespace { collapsed.append(" ") }
                    inWhitespace = true
                } else {
                    collapsed.append(character)
                    inWhitespace = false
                }
            }
            text = collapsed
        }
        if contains(.trimWhitespace) {
            let characters = Substring(text)
            let start = characters.firstIndex { !$0.isWhitespace } ?? characters.endIndex
            let end = characters.lastIndex { !$0.isWhitespace }.map(characters.index(after:)) ?? start
            text = String(characters[start..<end])
        }
        return text
    }
}
