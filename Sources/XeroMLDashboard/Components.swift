import Foundation
import XeroML

// Small building blocks shared by the pages. Everything goes through `HTML`, so escaping is never
// a page's job.

extension HTML {
    static func div(_ cls: String, _ children: [HTML]) -> HTML { element("div", [.class(cls)], children) }
    static func span(_ cls: String, _ text: String) -> HTML { element("span", [.class(cls)], text: text) }
    static func p(_ text: String, cls: String? = nil) -> HTML { element("p", cls.map { [.class($0)] } ?? [], text: text) }
    static func h1(_ text: String) -> HTML { element("h1", [], text: text) }
    static func h2(_ text: String, id: String? = nil) -> HTML { element("h2", id.map { [.id($0)] } ?? [], text: text) }
    static func a(_ link: Link, _ text: String, cls: String? = nil) -> HTML {
        element("a", [.href(link)] + (cls.map { [.class($0)] } ?? []), text: text)
    }
    static func section(_ title: String, id: String? = nil, _ children: [HTML]) -> HTML {
        element("section", id.map { [.id($0), .named("aria-labelledby", $0 + "-title")] } ?? [],
                [element("h2", id.map { [.id($0 + "-title")] } ?? [], text: title)] + children)
    }

    /// A semantic table: a caption (for screen readers too), a header row and rows of cells.
    static func table(caption: String? = nil, headers: [String], rows: [[HTML]], cls: String = "data",
                      numeric: Set<Int> = []) -> HTML {
        var children: [HTML] = []
        if let caption { children.append(element("caption", [], text: caption)) }
        children.append(element("thead", [], [element("tr", [], headers.enumerated().map { i, h in
            element("th", [.named("scope", "col")] + (numeric.contains(i) ? [.class("num")] : []), text: h)
        })]))
        children.append(element("tbody", [], rows.map { cells in
            element("tr", [], cells.enumerated().map { i, cell in
                element("td", numeric.contains(i) ? [.class("num")] : [], [cell])
            })
        }))
        return element("div", [.class("table-wrap")], [element("table", [.class(cls)], children)])
    }

    /// A definition list of label and value pairs.
    static func facts(_ pairs: [(String, HTML)]) -> HTML {
        element("dl", [.class("facts")], pairs.flatMap { [element("dt", [], text: $0.0), element("dd", [], [$0.1])] })
    }

    /// A run's status, styled by what it says; any status text is shown as it is.
    static func status(_ status: String) -> HTML {
        let known = ["running", "finished", "interrupted", "failed"]
        return element("span", [.class("status status-" + (known.contains(status) ? status : "other"))], text: status)
    }

    /// A JSON value for reading: strings as text, other values as indented JSON; long values folded.
    static func json(_ value: JSONValue?, fold: Int = 400) -> HTML {
        guard let value else { return span("muted", "–") }
        let text = value.stringValue ?? value.prettyText
        return folded(text, fold: fold, pre: value.stringValue == nil)
    }

    /// Text cut at `fold` characters with the whole text one click away.
    static func folded(_ text: String, fold: Int = 400, pre: Bool = true) -> HTML {
        let body = pre ? element("pre", [], text: text) : element("div", [.class("text")], text: text)
        guard text.count > fold else { return body }
        return element("details", [.class("fold")], [
            element("summary", [], text: String(text.prefix(min(fold, 160))) + "…"),
            body,
        ])
    }

    /// Short text for a table cell: the first `limit` characters, the whole text in a tooltip.
    static func cell(_ value: JSONValue?, limit: Int = 160) -> HTML {
        guard let value else { return span("muted", "–") }
        let text = value.stringValue ?? value.jsonString
        if text.count <= limit { return element("span", [.class("cell-text")], text: text) }
        return element("details", [.class("fold")], [
            element("summary", [], text: String(text.prefix(limit)) + "…"),
            element("div", [.class("text")], text: value.stringValue ?? value.prettyText),
        ])
    }

    /// A score value as a table cell, shaded by where it falls between `low` and `high`.
    static func scoreCell(_ score: ScoreView?, low: Double? = 0, high: Double? = 1, lowerIsBetter: Bool = false) -> HTML {
        guard let score else { return span("muted", "–") }
        var cls = "score"
        if let value = score.value, let low, let high, high > low {
            var position = (value - low) / (high - low)
            if lowerIsBetter { position = 1 - position }
            cls += " heat-\(max(0, min(4, Int(position * 4.999))))"
        } else if score.dataType == "unscored" {
            cls += " unscored"
        }
        var attributes: [Attribute] = [.class(cls)]
        let title = [score.comment, score.text.flatMap { score.dataType == "unscored" ? $0 : nil }, "source: \(score.source)"]
            .compactMap { $0 }.joined(separator: " · ")
        attributes.append(.named("title", title))
        return element("span", attributes, text: score.display)
    }

    /// Previous and next page links, keeping the rest of the query.
    static func pager(page: Int, hasNext: Bool, link: (Int) -> Link, total: String? = nil) -> HTML {
        var parts: [HTML] = []
        if page > 1 { parts.append(a(link(page - 1), "← Previous", cls: "button")) }
        parts.append(span("page-number", "Page \(page)" + (total.map { " · \($0)" } ?? "")))
        if hasNext { parts.append(a(link(page + 1), "Next →", cls: "button")) }
        return element("nav", [.class("pager"), .named("aria-label", "Pages")], parts)
    }

    /// A `<select>` whose options keep `selected` chosen.
    static func select(name: String, label: String, options: [(value: String, label: String)], selected: String) -> HTML {
        element("label", [], [
            .text(label + " "),
            element("select", [.named("name", name)], options.map { option in
                element("option", [.named("value", option.value), .flag("selected", option.value == selected)], text: option.label)
            }),
        ])
    }

    static func input(name: String, label: String, value: String, type: String = "text", placeholder: String = "") -> HTML {
        element("label", [], [
            .text(label + " "),
            void("input", [.named("type", type), .named("name", name), .named("value", value), .named("placeholder", placeholder)]
                + (type == "number" ? [.named("step", "any")] : [])),
        ])
    }

    static func hidden(_ name: String, _ value: String) -> HTML {
        void("input", [.named("type", "hidden"), .named("name", name), .named("value", value)])
    }

    static func submit(_ label: String) -> HTML {
        element("button", [.named("type", "submit")], text: label)
    }
}

extension JSONValue {
    /// Indented JSON, keys sorted.
    var prettyText: String {
        var out = ""
        writePretty(to: &out, indent: 0)
        return out
    }

    private func writePretty(to out: inout String, indent: Int) {
        let pad = String(repeating: "  ", count: indent + 1)
        let closing = String(repeating: "  ", count: indent)
        switch self {
        case .array(let elements) where !elements.isEmpty:
            out += "[\n"
            for (i, element) in elements.enumerated() {
                out += pad
                element.writePretty(to: &out, indent: indent + 1)
                out += i < elements.count - 1 ? ",\n" : "\n"
            }
            out += closing + "]"
        case .object(let members) where !members.isEmpty:
            out += "{\n"
            let keys = members.keys.sorted()
            for (i, key) in keys.enumerated() {
                out += pad + JSONValue.string(key).jsonString + ": "
                members[key]!.writePretty(to: &out, indent: indent + 1)
                out += i < keys.count - 1 ? ",\n" : "\n"
            }
            out += closing + "}"
        default:
            out += jsonString
        }
    }
}

/// Date and time as shown: `2026-12-01 11:58:54 UTC`.
func formatDate(_ date: Date?) -> String {
    guard let date else { return "–" }
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    return String(format: "%04d-%02d-%02d %02d:%02d:%02d UTC", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
}

/// A duration between two dates: `1.24 s`, `3 min 05 s`.
func formatDuration(from start: Date, to end: Date?) -> String {
    guard let end else { return "–" }
    return formatMilliseconds(end.timeIntervalSince(start) * 1000)
}

func formatMilliseconds(_ ms: Double?) -> String {
    guard let ms else { return "–" }
    if ms < 1 { return String(format: "%.2f ms", ms) }
    if ms < 1000 { return String(format: "%.0f ms", ms) }
    if ms < 60_000 { return String(format: "%.2f s", ms / 1000) }
    let seconds = Int(ms / 1000)
    return String(format: "%d min %02d s", seconds / 60, seconds % 60)
}

func formatCost(_ cost: Double?) -> String {
    guard let cost else { return "–" }
    return cost == 0 ? "$0" : cost < 0.01 ? String(format: "$%.5f", cost) : String(format: "$%.4f", cost)
}

func formatOptional(_ value: Double?) -> String { value.map(formatValue) ?? "–" }

func formatPercent(_ value: Double?) -> String { value.map { String(format: "%.1f%%", $0 * 100) } ?? "–" }

func formatSigned(_ value: Double?) -> String {
    guard let value else { return "–" }
    return (value > 0 ? "+" : "") + formatValue(value)
}
