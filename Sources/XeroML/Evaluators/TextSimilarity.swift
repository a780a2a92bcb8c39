/// String distances used by heuristic scores.
public enum TextSimilarity {
    /// The Levenshtein edit distance between `a` and `b`, over Unicode characters.
    public static func levenshteinDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// 1 − distance / max(length): 1 for equal strings, 0 for nothing in common. Two empty strings are equal.
    public static func levenshteinSimilarity(_ a: String, _ b: String) -> Double {
        let longest = max(a.count, b.count)
        guard longest > 0 else { return 1 }
        return 1 - Double(levenshteinDistance(a, b)) / Double(longest)
    }
}
