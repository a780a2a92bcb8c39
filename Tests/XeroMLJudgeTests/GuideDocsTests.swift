import Foundation
import Testing

/// The Swift code blocks of docs/guide.md and README.md are the code the suite compiles (and, for the
/// guide, runs): each block's lines appear, in order and contiguous, in the file that holds them.
@Suite struct GuideDocsTests {
    /// The ```swift blocks of a Markdown file, each as its trimmed non-empty lines, imports aside.
    static func swiftBlocks(_ markdown: String) -> [[String]] {
        var blocks: [[String]] = []
        var current: [String]?
        for line in markdown.components(separatedBy: "\n") {
            if current == nil, line.hasPrefix("```swift") { current = []; continue }
            if current != nil, line.hasPrefix("```") { blocks.append(current!); current = nil; continue }
            current?.append(line)
        }
        return blocks.map { block in
            block.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("import ") }
        }
    }

    static func lines(of file: URL) throws -> [String] {
        try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func contains(_ haystack: [String], _ needle: [String]) -> Bool {
        guard !needle.isEmpty, needle.count <= haystack.count else { return needle.isEmpty }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }

    @Test(arguments: [("docs/guide.md", "Tests/XeroMLJudgeTests/GuideExamplesTests.swift"),
                      ("README.md", "Tests/XeroMLJudgeTests/ReadmeExamples.swift")])
    func everyCodeBlockIsCompiledCode(_ document: String, _ code: String) throws {
        let markdown = try String(contentsOf: repositoryRoot.appendingPathComponent(document), encoding: .utf8)
        let blocks = Self.swiftBlocks(markdown)
        #expect(!blocks.isEmpty, "\(document) has no Swift blocks")
        let compiled = try Self.lines(of: repositoryRoot.appendingPathComponent(code))
        for (index, block) in blocks.enumerated() {
            #expect(Self.contains(compiled, block), "block \(index + 1) of \(document) is not in \(code): \(block.first ?? "")")
        }
    }
}
