/// A plain-text table for terminals: columns padded to their widest cell, long cells clipped with
/// `…`, and every cell passed through ``ReportEscaping/terminal(_:)``, so no value can move the
/// cursor, clear the screen or break a row. Colour, when asked for, is added by the table itself
/// around the escaped text.
///
/// ```swift
/// var table = TextTable(headers: ["SCORE", "P"])
/// table.append(["accuracy", "0.031"])
/// table.append([.init("regressed", color: .red), "0.002"])
/// print(table.render(color: false))
/// ```
public struct TextTable: Sendable {
    /// A terminal colour (SGR codes 31, 32, 33).
    public enum Color: Sendable, Hashable {
        case red, green, yellow

        var code: String {
            switch self {
            case .red: "\u{1B}[31m"
            case .green: "\u{1B}[32m"
            case .yellow: "\u{1B}[33m"
            }
        }
    }

    /// One cell: its text (escaped when rendered) and an optional colour.
    public struct Cell: Sendable, Hashable, ExpressibleByStringLiteral {
        /// The text, shown escaped.
        public var text: String
        /// The colour, used when the table is rendered with colour.
        public var color: Color?

        /// A cell of `text`, optionally coloured.
        public init(_ text: String, color: Color? = nil) {
            self.text = text
            self.color = color
        }

        /// A plain cell.
        public init(stringLiteral value: String) { self.init(value) }
    }

    /// The column headers (their count is the number of columns).
    public var headers: [String]
    /// The rows, in order.
    public var rows: [[Cell]] = []

    /// An empty table with these columns.
    public init(headers: [String]) { self.headers = headers }

    /// Appends a row of plain cells.
    public mutating func append(_ row: [String]) { rows.append(row.map { Cell($0) }) }
    /// Appends a row of cells that may carry a colour.
    public mutating func append(cells row: [Cell]) { rows.append(row) }

    /// The table as lines: the headers, a rule, the rows. Cells wider than `maxColumnWidth`
    /// characters are clipped; colour codes are written only when `color` is true.
    public func render(maxColumnWidth: Int = 48, color: Bool = false) -> String {
        let width = Swift.max(2, maxColumnWidth)
        let cells = ([headers.map { Cell($0) }] + rows).map { row in
            row.map { Cell(Self.clip(ReportEscaping.terminal($0.text), width), color: $0.color) }
        }
        var widths = [Int](repeating: 0, count: headers.count)
        for row in cells { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = Swift.max(widths[i], cell.text.count) } }
        var lines: [String] = []
        for (n, row) in cells.enumerated() {
            let line = row.enumerated().map { i, cell in
                let padding = i == row.count - 1 || i >= widths.count ? "" : String(repeating: " ", count: widths[i] - cell.text.count)
                guard color, let c = cell.color, !cell.text.isEmpty else { return cell.text + padding }
                return c.code + cell.text + "\u{1B}[0m" + padding
            }.joined(separator: "  ")
            lines.append(line)
            if n == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        return lines.joined(separator: "\n")
    }

    static func clip(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }
}
