import Foundation

extension GateReport {
    /// JUnit XML: one test case per condition (suite "conditions") and one per item (suite "items"),
    /// for CI systems that show test reports.
    public func junitXML() -> String {
        func escape(_ text: String) -> String {
            var out = ""
            out.reserveCapacity(text.count)
            for scalar in text.unicodeScalars {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case "'": out += "&apos;"
                case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
                // XML 1.0 forbids other control characters, even escaped.
                case _ where scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value): out += "\u{FFFD}"
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        let conditionFailures = failures.count
        let itemFailures = itemVerdicts.filter { $0.failure != nil }.count
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        xml += #"<testsuites name="xeroml gate \#(escape(runName))" tests="\#(conditions.count + itemVerdicts.count)" failures="\#(conditionFailures + itemFailures)">"# + "\n"
        xml += #"  <testsuite name="conditions" tests="\#(conditions.count)" failures="\#(conditionFailures)">"# + "\n"
        for result in conditions {
            let name = escape(result.condition.description)
            if result.passed {
                xml += #"    <testcase classname="xeroml.gate.conditions" name="\#(name)"/>"# + "\n"
            } else {
                var body = result.detail
                for item in result.items { body += "\n- \(Gate.describe(item.input)): \(item.reason)" }
                xml += #"    <testcase classname="xeroml.gate.conditions" name="\#(name)">"# + "\n"
                xml += #"      <failure message="\#(escape(result.detail))">\#(escape(body))</failure>"# + "\n"
                xml += "    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n"
        xml += #"  <testsuite name="items" tests="\#(itemVerdicts.count)" failures="\#(itemFailures)">"# + "\n"
        for verdict in itemVerdicts {
            let repetition = verdict.item.repetition > 0 ? " #\(verdict.item.repetition + 1)" : ""
            let name = escape("\(verdict.item.datasetItemID ?? verdict.item.runItemID)\(repetition): \(Gate.describe(verdict.item.input))")
            if let failure = verdict.failure {
                xml += #"    <testcase classname="xeroml.gate.items" name="\#(name)">"# + "\n"
                xml += #"      <failure message="\#(escape(failure))">output: \#(escape(verdict.item.output?.displayText ?? "none"))"#
                xml += escape("\nexpected: \(verdict.item.expectedOutput?.displayText ?? "none")") + "</failure>\n"
                xml += "    </testcase>\n"
            } else {
                xml += #"    <testcase classname="xeroml.gate.items" name="\#(name)"/>"# + "\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    /// A Markdown summary for a CI step summary or a pull-request comment.
    public func markdown() -> String {
        func cell(_ text: String) -> String {
            text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var md = "### XeroML gate: \(passed ? "✅ passed" : "❌ failed") — run `\(runName)`"
        if let baselineName { md += " vs `\(baselineName)`" }
        md += "\n\n| | condition | measured |\n|---|---|---|\n"
        for result in conditions {
            md += "| \(result.passed ? "✅" : "❌") | \(cell(result.condition.description)) | \(cell(result.detail)) |\n"
        }
        let failedItems = failures.flatMap(\.items)
        if !failedItems.isEmpty {
            md += "\n<details><summary>Items behind the failures (\(failedItems.count))</summary>\n\n"
            md += "| input | output | expected | why |\n|---|---|---|---|\n"
            for item in failedItems {
                md += "| \(cell(Gate.describe(item.input))) | \(cell(item.output.map(Gate.describe) ?? "")) | "
                md += "\(cell(item.expectedOutput.map(Gate.describe) ?? "")) | \(cell(item.reason)) |\n"
            }
            md += "\n</details>\n"
        }
        return md
    }
}
