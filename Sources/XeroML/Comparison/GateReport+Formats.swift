import Foundation

extension GateReport {
    /// JUnit XML: one test case per condition (suite "conditions") and one per item (suite "items"),
    /// for CI systems that show test reports. The document follows the common (Ant/Jenkins) JUnit
    /// schema: `tests`, `failures`, `errors` and `skipped` counts on every suite, a `failure` with a
    /// `message` and a `type` per failed case. Every value passes through ``ReportEscaping/xml(_:)``,
    /// so a newline in a message is `&#10;` and no text can break the document.
    public func junitXML() -> String {
        let x = ReportEscaping.xml
        // An incomplete run is one failed case per reason; an allowed partial one a passing case per reason.
        let conditionCases = conditions.count + incomplete.count + partial.count
        let conditionFailures = failures.count + incomplete.count
        let itemFailures = itemVerdicts.filter { $0.failure != nil }.count
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        xml += #"<testsuites name="\#(x("xeroml gate " + runName))" tests="\#(conditionCases + itemVerdicts.count)" "#
        xml += #"failures="\#(conditionFailures + itemFailures)" errors="0" skipped="0">"# + "\n"
        xml += #"  <testsuite name="conditions" tests="\#(conditionCases)" failures="\#(conditionFailures)" errors="0" skipped="0">"# + "\n"
        for reason in incomplete {
            xml += #"    <testcase classname="xeroml.gate.conditions" name="complete runs">"# + "\n"
            xml += #"      <failure message="\#(x(reason))" type="incomplete">\#(x(reason + " (finish or resume it, or allow partial runs on purpose)"))</failure>"# + "\n"
            xml += "    </testcase>\n"
        }
        for reason in partial {
            xml += #"    <testcase classname="xeroml.gate.conditions" name="\#(x("partial run (allowed): " + reason))"/>"# + "\n"
        }
        for result in conditions {
            let name = x(result.condition.description)
            if result.passed {
                xml += #"    <testcase classname="xeroml.gate.conditions" name="\#(name)"/>"# + "\n"
            } else {
                var body = result.detail
                for item in result.items { body += "\n- \(Gate.describe(item.input)): \(item.reason)" }
                xml += #"    <testcase classname="xeroml.gate.conditions" name="\#(name)">"# + "\n"
                xml += #"      <failure message="\#(x(result.detail))" type="condition">\#(x(body))</failure>"# + "\n"
                xml += "    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n"
        xml += #"  <testsuite name="items" tests="\#(itemVerdicts.count)" failures="\#(itemFailures)" errors="0" skipped="0">"# + "\n"
        for verdict in itemVerdicts {
            let repetition = verdict.item.repetition > 0 ? " #\(verdict.item.repetition + 1)" : ""
            let name = x("\(verdict.item.datasetItemID ?? verdict.item.runItemID)\(repetition): \(Gate.describe(verdict.item.input))")
            if let failure = verdict.failure {
                let body = "output: \(verdict.item.output?.displayText ?? "none")\n"
                    + "expected: \(verdict.item.expectedOutput?.displayText ?? "none")"
                xml += #"    <testcase classname="xeroml.gate.items" name="\#(name)">"# + "\n"
                xml += #"      <failure message="\#(x(failure))" type="item">\#(x(body))</failure>"# + "\n"
                xml += "    </testcase>\n"
            } else {
                xml += #"    <testcase classname="xeroml.gate.items" name="\#(name)"/>"# + "\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    /// A Markdown summary for a CI step summary or a pull-request comment. Every value passes through
    /// ``ReportEscaping/markdown(_:)``.
    public func markdown() -> String {
        let m = ReportEscaping.markdown
        let verdict = passed ? "✅ passed" : incomplete.isEmpty ? "❌ failed" : "❌ incomplete"
        var md = "### XeroML gate: \(verdict) — run \(m(runName))"
        if let baselineName { md += " vs \(m(baselineName))" }
        md += "\n\n| | condition | measured |\n|---|---|---|\n"
        for reason in incomplete {
            md += "| ❌ | complete runs | \(m(reason + " (finish or resume it, or allow partial runs on purpose)")) |\n"
        }
        for reason in partial { md += "| ⚠️ | partial run (allowed) | \(m(reason)) |\n" }
        for result in conditions {
            md += "| \(result.passed ? "✅" : "❌") | \(m(result.condition.description)) | \(m(result.detail)) |\n"
        }
        let failedItems = failures.flatMap(\.items)
        if !failedItems.isEmpty {
            md += "\n<details><summary>Items behind the failures (\(failedItems.count))</summary>\n\n"
            md += "| input | output | expected | why |\n|---|---|---|---|\n"
            for item in failedItems {
                let cells = [Gate.describe(item.input), item.output.map(Gate.describe) ?? "",
                             item.expectedOutput.map(Gate.describe) ?? "", item.reason]
                md += "| " + cells.map(m).joined(separator: " | ") + " |\n"
            }
            md += "\n</details>\n"
        }
        return md
    }
}
