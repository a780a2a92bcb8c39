import Foundation

// Charts drawn on the server as inline SVG through the same escaping builder. Colours come from the
// style sheet's classes, so they follow the light and dark themes.

enum Charts {
    static func n(_ value: Double) -> String { String(format: "%.1f", value) }

    static func svg(width: Int, height: Int, label: String, _ children: [HTML]) -> HTML {
        .element("svg", [
            .named("xmlns", "http://www.w3.org/2000/svg"), .named("viewBox", "0 0 \(width) \(height)"),
            .named("width", "\(width)"), .named("height", "\(height)"), .named("role", "img"),
            .named("aria-label", label), .class("chart"),
        ], [.element("title", [], text: label)] + children)
    }

    static func text(_ x: Double, _ y: Double, _ content: String, anchor: String = "start", cls: String = "axis") -> HTML {
        .element("text", [.named("x", n(x)), .named("y", n(y)), .named("text-anchor", anchor), .class(cls)], text: content)
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cls: String) -> HTML {
        .void("line", [.named("x1", n(x1)), .named("y1", n(y1)), .named("x2", n(x2)), .named("y2", n(y2)), .class(cls)])
    }

    /// Bars of a histogram, with the range (or the labels) under them and each bar's count as a tooltip.
    static func histogram(_ h: Histogram, width: Int = 320, height: Int = 130) -> HTML {
        let top = 8.0, bottom = Double(height) - 22, left = 4.0, right = Double(width) - 4
        let peak = Double(h.counts.max() ?? 1)
        let barWidth = (right - left) / Double(max(1, h.counts.count))
        var children: [HTML] = []
        for (i, count) in h.counts.enumerated() {
            let barHeight = peak > 0 ? (bottom - top) * Double(count) / peak : 0
            let range: String
            if let labels = h.labels { range = labels[i] } else {
                let width = (h.high - h.low) / Double(h.counts.count)
                range = "\(formatValue(h.low + Double(i) * width))–\(formatValue(h.low + Double(i + 1) * width))"
            }
            children.append(.element("rect", [
                .named("x", n(left + Double(i) * barWidth + 1)), .named("y", n(bottom - barHeight)),
                .named("width", n(max(1, barWidth - 2))), .named("height", n(max(barHeight, count > 0 ? 1 : 0))), .class("bar"),
            ], [.element("title", [], text: "\(range): \(count)")]))
            if let labels = h.labels, labels.count <= 8 {
                children.append(text(left + (Double(i) + 0.5) * barWidth, bottom + 14, String(labels[i].prefix(14)), anchor: "middle"))
            }
        }
        children.append(line(left, bottom, right, bottom, cls: "axis-line"))
        if h.labels == nil {
            children.append(text(left, bottom + 14, formatValue(h.low)))
            children.append(text(right, bottom + 14, formatValue(h.high), anchor: "end"))
        }
        return svg(width: width, height: height, label: "Histogram of \(h.name)", children)
    }

    /// A score's mean with its 95% interval for each run, in time order.
    static func meanIntervals(name: String, points: [(label: String, mean: ScoreMean?)], width: Int = 560, height: Int = 170) -> HTML {
        let values = points.compactMap(\.mean).flatMap { [$0.low ?? $0.mean, $0.high ?? $0.mean, $0.mean] }
        guard var low = values.min(), var high = values.max() else { return .empty }
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.08
        (low, high) = (low - pad, high + pad)
        let top = 10.0, bottom = Double(height) - 24, left = 44.0, right = Double(width) - 10
        func y(_ v: Double) -> Double { bottom - (v - low) / (high - low) * (bottom - top) }
        let step = (right - left) / Double(max(1, points.count))
        var children: [HTML] = [
            line(left, top, left, bottom, cls: "axis-line"), line(left, bottom, right, bottom, cls: "axis-line"),
            text(left - 4, y(high - pad) + 4, formatValue(high - pad), anchor: "end"),
            text(left - 4, y(low + pad) + 4, formatValue(low + pad), anchor: "end"),
        ]
        var previous: (Double, Double)?
        for (i, point) in points.enumerated() {
            let x = left + (Double(i) + 0.5) * step
            guard let m = point.mean else { continue }
            if let (px, py) = previous { children.append(line(px, py, x, y(m.mean), cls: "trend")) }
            previous = (x, y(m.mean))
            if let lo = m.low, let hi = m.high {
                children.append(line(x, y(lo), x, y(hi), cls: "interval"))
                children.append(line(x - 4, y(lo), x + 4, y(lo), cls: "interval"))
                children.append(line(x - 4, y(hi), x + 4, y(hi), cls: "interval"))
            }
            let interval = m.low.map { "[\(formatValue($0)), \(formatValue(m.high ?? $0))]" } ?? "(one value)"
            children.append(.element("circle", [.named("cx", n(x)), .named("cy", n(y(m.mean))), .named("r", "4"), .class("point")],
                                     [.element("title", [], text: "\(point.label): mean \(formatValue(m.mean)) \(interval), n = \(m.count)")]))
            if points.count <= 12 {
                children.append(text(x, bottom + 15, String(point.label.prefix(12)), anchor: "middle"))
            }
        }
        return svg(width: width, height: height, label: "Mean of \(name) with its 95% interval, per run in time order", children)
    }

    /// A forest plot: each score's difference against the baseline with its 95% interval, a line at zero.
    static func forest(_ rows: [(label: String, difference: Double, low: Double?, high: Double?, cls: String)], width: Int = 520) -> HTML {
        guard !rows.isEmpty else { return .empty }
        let rowHeight = 26.0
        let height = Int(Double(rows.count) * rowHeight + 30)
        let extent = max(1e-9, rows.flatMap { [abs($0.difference), abs($0.low ?? 0), abs($0.high ?? 0)] }.max()! * 1.1)
        let left = 170.0, right = Double(width) - 12
        func x(_ v: Double) -> Double { left + (v + extent) / (2 * extent) * (right - left) }
        var children: [HTML] = [
            line(x(0), 4, x(0), Double(height) - 22, cls: "zero"),
            text(left, Double(height) - 6, formatValue(-extent), anchor: "start"),
            text(x(0), Double(height) - 6, "0", anchor: "middle"),
            text(right, Double(height) - 6, "+" + formatValue(extent), anchor: "end"),
        ]
        for (i, row) in rows.enumerated() {
            let y = 16 + Double(i) * rowHeight
            children.append(text(4, y + 4, String(row.label.prefix(26)), cls: "label"))
            if let lo = row.low, let hi = row.high { children.append(line(x(lo), y, x(hi), y, cls: "interval " + row.cls)) }
            let interval = row.low.map { " [\(formatValue($0)), \(formatValue(row.high ?? $0))]" } ?? ""
            children.append(.element("rect", [
                .named("x", n(x(row.difference) - 5)), .named("y", n(y - 5)), .named("width", "10"), .named("height", "10"),
                .class("point " + row.cls),
            ], [.element("title", [], text: "\(row.label): \(formatSigned(row.difference))\(interval)")]))
        }
        return svg(width: width, height: height, label: "Difference against the baseline with 95% intervals", children)
    }

    /// A timing waterfall row: a bar from `start` to `end` (fractions of the trace's duration).
    static func waterfallBar(start: Double, end: Double, cls: String, label: String) -> HTML {
        let width = 240.0, height = 14.0
        let x0 = max(0, min(1, start)) * width
        let x1 = max(x0 + 1.5, min(1, end) * width)
        return .element("svg", [
            .named("xmlns", "http://www.w3.org/2000/svg"), .named("viewBox", "0 0 \(Int(width)) \(Int(height))"),
            .named("width", "\(Int(width))"), .named("height", "\(Int(height))"), .class("waterfall"),
            .named("role", "img"), .named("aria-label", label),
        ], [
            .void("rect", [.named("x", "0"), .named("y", "0"), .named("width", n(width)), .named("height", n(height)), .class("track")]),
            .element("rect", [.named("x", n(x0)), .named("y", "2"), .named("width", n(x1 - x0)), .named("height", n(height - 4)),
                              .class("span-bar " + cls)], [.element("title", [], text: label)]),
        ])
    }
}
