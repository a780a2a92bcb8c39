/// A word-level difference between two texts, as marked-up HTML.
public enum WordDiff {
    /// One run of words: kept, removed from the old text or added in the new one.
    public enum Part: Equatable, Sendable {
        case same(String), removed(String), added(String)
    }

    /// Above this many words on either side the texts are not diffed (the table of a longest common
    /// subsequence grows with the product of the lengths).
    public static let maximumWords = 1500

    /// The parts turning `old` into `new`, splitting at whitespace (kept with the word before it), or
    /// `nil` when either text is longer than ``maximumWords``.
    public static func parts(from old: String, to new: String) -> [Part]? {
        let a = words(old), b = words(new)
        guard a.count <= maximumWords, b.count <= maximumWords else { return nil }
        // Longest common subsequence lengths, suffix form: lcs[i][j] for a[i...] and b[j...].
        let width = b.count + 1
        var lcs = [Int32](repeating: 0, count: (a.count + 1) * width)
        if !a.isEmpty && !b.isEmpty {
            for i in stride(from: a.count - 1, through: 0, by: -1) {
                for j in stride(from: b.count - 1, through: 0, by: -1) {
                    lcs[i * width + j] = a[i] == b[j] ? lcs[(i + 1) * width + j + 1] + 1
                        : max(lcs[(i + 1) * width + j], lcs[i * width + j + 1])
                }
            }
        }
        var parts: [Part] = []
        func append(_ part: Part) {
            switch (parts.last, part) {
            case (.same(let x)?, .same(let y)): parts[parts.count - 1] = .same(x + y)
            case (.removed(let x)?, .removed(let y)): parts[parts.count - 1] = .removed(x + y)
            case (.added(let x)?, .added(let y)): parts[parts.count - 1] = .added(x + y)
            default: parts.append(part)
            }
        }
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                append(.same(a[i])); i += 1; j += 1
            } else if i < a.count, j == b.count || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                append(.removed(a[i])); i += 1
            } else {
                append(.added(b[j])); j += 1
            }
        }
        return parts
    }

    static func words(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inSpace = false
        for character in text {
            if character.isWhitespace {
                inSpace = true
                current.append(character)
            } else {
                if inSpace { out.append(current); current = ""; inSpace = false }
                current.append(character)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// The new text with removed words struck through and added words marked; the plain new text when
    /// the texts are too long to diff.
    public static func html(from old: String, to new: String) -> HTML {
        guard let parts = parts(from: old, to: new) else { return .element("div", [.class("text")], text: new) }
        return .element("div", [.class("text diff")], parts.map { part in
            switch part {
            case .same(let s): .text(s)
            case .removed(let s): .element("del", [], text: s)
            case .added(let s): .element("ins", [], text: s)
            }
        })
    }
}
