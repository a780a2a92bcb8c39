/// A fragment of HTML (or inline SVG) built by this module's builder, escaped by construction.
///
/// There is no way to make an `HTML` value from a string without escaping it: text goes through
/// ``text(_:)``, element and attribute names are static strings written in this module's code, attribute
/// values are escaped, and links (`href`, `action`, `src`) are ``Link`` values whose paths and query
/// strings are percent-encoded. So a dataset name, a model output or an error text that holds markup
/// is shown as text, never run.
///
/// ## Topics
/// - ``text(_:)``
/// - ``element(_:_:_:)``
/// - ``void(_:_:)``
/// - ``Attribute``
/// - ``Link``
public struct HTML: Sendable {
    /// The markup.
    public private(set) var rendered: String

    private init(rendered: String) { self.rendered = rendered }

    /// Nothing.
    public static let empty = HTML(rendered: "")

    /// Text, escaped for use between tags.
    public static func text(_ text: String) -> HTML { HTML(rendered: escapeText(text)) }

    /// An element with attributes and children.
    public static func element(_ name: StaticString, _ attributes: [Attribute] = [], _ children: [HTML] = []) -> HTML {
        var out = "<\(name)"
        for attribute in attributes { out += attribute.rendered }
        out += ">"
        for child in children { out += child.rendered }
        out += "</\(name)>"
        return HTML(rendered: out)
    }

    /// An element with attributes and one text child.
    public static func element(_ name: StaticString, _ attributes: [Attribute] = [], text: String) -> HTML {
        element(name, attributes, [.text(text)])
    }

    /// An element with no content and no closing tag (`<input>`, `<meta>`, `<link>`, `<br>`), or a
    /// self-closed SVG element.
    public static func void(_ name: StaticString, _ attributes: [Attribute] = []) -> HTML {
        var out = "<\(name)"
        for attribute in attributes { out += attribute.rendered }
        out += svgVoid.contains(name.description) ? "/>" : ">"
        return HTML(rendered: out)
    }

    /// Children side by side.
    public static func group(_ children: [HTML]) -> HTML {
        HTML(rendered: children.reduce(into: "") { $0 += $1.rendered })
    }

    /// A whole document: the doctype and the `html` element.
    public static func document(_ html: HTML) -> HTML { HTML(rendered: "<!DOCTYPE html>\n" + html.rendered) }

    private static let svgVoid: Set<String> = ["rect", "line", "circle", "path", "polyline"]

    static func escapeText(_ text: String) -> String { escape(text, quotes: false) }

    static func escapeAttribute(_ text: String) -> String { escape(text, quotes: true) }

    /// `&`, `<` and `>` as entities (and quotes too, for attribute values); NUL as U+FFFD.
    private static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where quotes: out += "&quot;"
            case "'" where quotes: out += "&#39;"
            case "\u{0}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// An attribute of an element: a static name and an escaped value.
///
/// Names that take a URL (`href`, `src`, `action`) are only made from a ``Link``; event handlers
/// (`on…`) and `style` cannot be made at all.
public struct Attribute: Sendable {
    let rendered: String

    private init(rendered: String) { self.rendered = rendered }

    /// `name="value"`, the value escaped.
    ///
    /// - Precondition: `name` is not a URL attribute, an event handler or `style`: those are refused
    ///   in code, never reached by data.
    public static func named(_ name: StaticString, _ value: String) -> Attribute {
        let text = name.description.lowercased()
        precondition(!text.hasPrefix("on") && !["href", "src", "action", "style", "formaction", "xlink:href"].contains(text),
                     "the attribute \(text) is built from a Link or not at all")
        return Attribute(rendered: " \(name)=\"\(HTML.escapeAttribute(value))\"")
    }

    /// A boolean attribute (`checked`, `selected`, `open`…), present or absent.
    public static func flag(_ name: StaticString, _ present: Bool = true) -> Attribute {
        Attribute(rendered: present ? " \(name)" : "")
    }

    /// `class="…"`.
    public static func `class`(_ value: String) -> Attribute { named("class", value) }
    /// `id="…"`.
    public static func id(_ value: String) -> Attribute { named("id", value) }
    /// `href="…"` from a link built by the server.
    public static func href(_ link: Link) -> Attribute { Attribute(rendered: " href=\"\(HTML.escapeAttribute(link.rendered))\"") }
    /// `src="…"` from a link built by the server.
    public static func src(_ link: Link) -> Attribute { Attribute(rendered: " src=\"\(HTML.escapeAttribute(link.rendered))\"") }
    /// `action="…"` from a link built by the server.
    public static func action(_ link: Link) -> Attribute { Attribute(rendered: " action=\"\(HTML.escapeAttribute(link.rendered))\"") }
}

/// A same-origin link: a path of segments and a query, percent-encoded when rendered.
///
/// Links always start with `/`, so no value can turn one into a `javascript:` or other-origin URL.
public struct Link: Sendable, Hashable {
    /// The encoded path and query.
    public let rendered: String

    /// A link to `/segment/segment…?name=value&…#fragment`, every part percent-encoded.
    public init(_ segments: [String], query: [(String, String)] = [], fragment: String? = nil) {
        var out = "/" + segments.map(Self.encode).joined(separator: "/")
        if !query.isEmpty {
            out += "?" + query.map { Self.encode($0.0) + "=" + Self.encode($0.1) }.joined(separator: "&")
        }
        if let fragment { out += "#" + Self.encode(fragment) }
        rendered = out
    }

    /// Characters left as they are in a path segment, a query name or value, or a fragment.
    private static let unreserved: Set<UInt8> = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8))

    /// `text` percent-encoded for a path segment, a query name or value, or a fragment.
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
