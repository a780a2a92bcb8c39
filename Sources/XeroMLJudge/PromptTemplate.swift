import Foundation
public import XeroML

/// A prompt with `{{placeholders}}` filled from a dataset item.
///
/// ```swift
/// let template = try PromptTemplate("Answer briefly: {{input.question}}")
/// let prompt = try template.render(input: item.input, expectedOutput: item.expectedOutput, metadata: item.metadata)
/// ```
///
/// A placeholder is a key path starting at one of ``roots``:
/// `{{input}}`, `{{input.key.sub}}`, `{{input.items.0}}` (array index), `{{expected_output}}`,
/// `{{metadata.key}}`. Strings are inserted as they are; other values as compact JSON. Whitespace
/// inside the braces is ignored.
///
/// ## Topics
/// - ``init(_:roots:)``
/// - ``placeholders``
/// - ``render(_:)``
/// - ``render(input:expectedOutput:metadata:)``
/// - ``PromptTemplateError``
public struct PromptTemplate: Sendable, Hashable {
    /// The roots placeholders may start at: `input`, `expected_output`, `metadata`.
    public static let defaultRoots: Set<String> = ["input", "expected_output", "metadata"]

    private enum Segment: Sendable, Hashable {
        case text(String)
        case placeholder([String])
    }

    /// The template text.
    public let text: String
    /// The roots allowed in this template.
    public let roots: Set<String>
    private let segments: [Segment]

    /// Parses `text`.
    /// - Throws: ``PromptTemplateError`` for an unclosed `{{`, an empty placeholder, or one whose root
    ///   is not in `roots`, naming the placeholder and what is allowed.
    public init(_ text: String, roots: Set<String> = PromptTemplate.defaultRoots) throws(PromptTemplateError) {
        self.text = text
        self.roots = roots
        var segments: [Segment] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { segments.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw PromptTemplateError("unclosed \"{{\" in the prompt template near \"\(rest[open.lowerBound...].prefix(30))\"")
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let path = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !name.isEmpty, path.allSatisfy({ !$0.isEmpty }) else {
                throw PromptTemplateError("malformed placeholder {{\(name)}} in the prompt template")
            }
            guard roots.contains(path[0]) else {
                throw PromptTemplateError(
                    "unknown placeholder {{\(name)}}: placeholders start with "
                        + roots.sorted().map { "{{\($0)}}" }.joined(separator: ", ")
                        + " (e.g. {{input.question}})")
            }
            segments.append(.placeholder(path))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { segments.append(.text(String(rest))) }
        self.segments = segments
    }

    /// The key paths of the placeholders, in order (`"input.question"`, …).
    public var placeholders: [String] {
        segments.compactMap { if case .placeholder(let path) = $0 { path.joined(separator: ".") } else { nil } }
    }

    /// Fills the placeholders from `values` (root name → value).
    /// - Throws: ``PromptTemplateError`` naming the first placeholder with no value.
    public func render(_ values: [String: JSONValue]) throws(PromptTemplateError) -> String {
        var out = ""
        for segment in segments {
            switch segment {
            case .text(let text): out += text
            case .placeholder(let path):
                guard let value = Self.resolve(path, in: values) else {
                    throw PromptTemplateError("the item has no \(path.joined(separator: ".")) for the placeholder {{\(path.joined(separator: "."))}}")
                }
                out += value.displayText
            }
        }
        return out
    }

    /// Fills the placeholders from a dataset item.
    public func render(input: JSONValue, expectedOutput: JSONValue?, metadata: JSONValue?) throws(PromptTemplateError) -> String {
        var values: [String: JSONValue] = ["input": input]
        if let expectedOutput { values["expected_output"] = expectedOutput }
        if let metadata { values["metadata"] = metadata }
        return try render(values)
    }

    /// The value at `path` (root first), or `nil`. Numeric segments index arrays.
    static func resolve(_ path: [String], in values: [String: JSONValue]) -> JSONValue? {
        guard let root = path.first, var value = values[root] else { return nil }
        for key in path.dropFirst() {
            if let member = value[key] {
                value = member
            } else if let index = Int(key), let element = value[index] {
                value = element
            } else {
                return nil
            }
        }
        return value.isNull ? nil : value
    }
}

/// A prompt template that cannot be parsed or filled.
public struct PromptTemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, naming the placeholder.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
