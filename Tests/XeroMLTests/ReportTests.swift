import Foundation
import Testing
@testable import XeroML
import XeroMLTesting
#if canImport(FoundationXML)
import FoundationXML
#endif

// MARK: Checkers of each format

/// The cells of one Markdown table row, split where GitHub's table parser splits: at a `|` that no
/// backslash escapes (a backslash escapes whatever character follows it, a backslash included).
func markdownCells(_ line: String) -> [String] {
    var cells: [String] = [], current = ""
    var characters = Array(line.unicodeScalars)[...]
    if characters.first == "|" { characters = characters.dropFirst() }
    var escaped = false
    for c in characters {
        if escaped { current.unicodeScalars.append(c); escaped = false; continue }
        if c == "\\" { current.unicodeScalars.append(c); escaped = true; continue }
        if c == "|" { cells.append(current); current = ""; continue }
        current.unicodeScalars.append(c)
    }
    if !current.trimmingCharacters(in: .whitespaces).isEmpty { cells.append(current) }
    return cells
}

/// What is wrong with a Markdown report: a table row with the wrong number of cells, a line that
/// continues a table row, raw HTML other than the report's own tags, a control character.
func markdownProblems(_ md: String) -> [String] {
    var problems: [String] = []
    var width: Int?
    var previousWasRow = false
    for (n, line) in md.components(separatedBy: "\n").enumerated() {
        if line.hasPrefix("|") {
            let count = markdownCells(line).count
            if let width, count != width { problems.append("line \(n + 1): \(count) cells, the table has \(width)") }
            width = width ?? count
            if !line.hasSuffix("|") { problems.append("line \(n + 1) does not end its row") }
            previousWasRow = true
        } else {
            if previousWasRow && !line.isEmpty && !line.hasPrefix("…") { problems.append("line \(n + 1) continues a table row") }
            width = nil
            previousWasRow = false
            if line.hasPrefix("#") && !line.hasPrefix("### XeroML") { problems.append("line \(n + 1) is a heading") }
        }
        var rest = Substring(line)
        while let open = rest.firstIndex(of: "<") {
            let tail = rest[open...]
            if !["<br>", "<details>", "</details>", "<summary>", "</summary>"].contains(where: { tail.hasPrefix($0) }) {
                problems.append("line \(n + 1) has raw HTML: \(tail.prefix(20))")
                break
            }
            rest = rest[rest.index(after: open)...]
        }
        if line.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            problems.append("line \(n + 1) has a control character")
        }
    }
    return problems
}

/// Control characters left in terminal output, after removing the colour codes the report writes itself.
func terminalProblems(_ text: String) -> [String] {
    var stripped = text
    for code in ["\u{1B}[31m", "\u{1B}[32m", "\u{1B}[33m", "\u{1B}[0m"] { stripped = stripped.replacingOccurrences(of: code, with: "") }
    let bad = stripped.unicodeScalars.filter {
        ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || ReportEscaping.isInvisibleFormatting($0.value)
    }
    return bad.isEmpty ? [] : ["raw control or formatting characters: " + bad.map { String($0.value, radix: 16) }.joined(separator: " ")]
}

/// The records of an RFC 4180 CSV text, each a list of fields.
func csvRecords(_ text: String) -> [[String]] {
    var records: [[String]] = [], record: [String] = [], field = "", quoted = false
    var scalars = Array(text.unicodeScalars)[...]
    while let c = scalars.popFirst() {
        if quoted {
            if c == "\"" {
                if scalars.first == "\"" { field += "\""; scalars = scalars.dropFirst() } else { quoted = false }
            } else { field.unicodeScalars.append(c) }
        } else if c == "\"" { quoted = true
        } else if c == "," { record.append(field); field = ""
        } else if c == "\n" { record.append(field); records.append(record); record = []; field = ""
        } else { field.unicodeScalars.append(c) }
    }
    if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
    return records
}

/// `xmllint`, when installed (Debian: libxml2-utils).
let xmllintPath: String? = ["/usr/bin/xmllint", "/usr/local/bin/xmllint", "/opt/homebrew/bin/xmllint"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Validates `xml` against the JUnit schema in Fixtures/junit with xmllint: `nil` when it is valid,
/// else xmllint's complaint. Without xmllint, checks well-formedness only (with Foundation's parser).
func junitProblems(_ xml: String) async throws -> String? {
    guard let xmllintPath else {
        do { _ = try XMLDocument(xmlString: xml) } catch { return "not well-formed: \(error)" }
        return nil
    }
    let file = writeFile("report.xml", xml)
    let schema = repositoryRoot.appendingPathComponent("Fixtures/junit/junit.xsd").path
    let result = try await RunningProcess(executable: URL(fileURLWithPath: xmllintPath),
                                          arguments: ["--noout", "--schema", schema, file], directory: repositoryRoot).wait()
    return result.status == 0 ? nil : result.stderr
}

// MARK: Tests

@Suite struct ReportEscapingTests {
    @Test func markdownRendersTheLiteralTextOnOneLine() {
        let m = ReportEscaping.markdown
        #expect(m("a|b") == #"a\|b"#)
        #expect(m("one\ntwo\r\nthree") == "one<br>two<br>three")
        #expect(m("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(m("# title") == "\\# title")
        #expect(m("> quote") == "&gt; quote")
        #expect(m("- item") == #"\- item"#)
        #expect(m("1. first") == #"1\. first"#)
        #expect(m("a-b 2.5") == "a-b 2.5")
        #expect(m("0.4 over 75 items") == "0.4 over 75 items")
        #expect(m("3)") == #"3\)"#)
        #expect(m("`x` *y* [z](u)") == #"\`x\` \*y\* \[z\](u)"#)
        #expect(m(#"\|"#) == #"\\\|"#)
        #expect(m("\u{1B}[2J") == #"\\x1B\[2J"#)
        #expect(markdownCells("| " + m("a|b\\|c") + " | x |").count == 2)
    }

    @Test func theCheckersCatchBrokenOutput() {
        #expect(!markdownProblems("| a | b |\n|---|---|\n| c | d | e |\n").isEmpty)
        #expect(!markdownProblems("| a | b |\n| c\nd | e |\n").isEmpty)
        #expect(!markdownProblems("| <script>x</script> | b |\n").isEmpty)
        #expect(!markdownProblems("# spoofed heading\n").isEmpty)
        #expect(markdownProblems("### XeroML gate\n\n| a \\| b | c |\n|---|---|\n").isEmpty)
        #expect(!terminalProblems("clear \u{1B}[2J").isEmpty)
        #expect(!terminalProblems("\u{202E}").isEmpty)
        #expect(terminalProblems("\u{1B}[31mred\u{1B}[0m\n").isEmpty)
        #expect(csvRecords("a,\"b\nc\",d\n1,2,3\n") == [["a", "b\nc", "d"], ["1", "2", "3"]])
    }

    @Test func terminalShowsControlCharactersVisibly() {
        let t = ReportEscaping.terminal
        #expect(t("\u{1B}[2Jcleared") == #"\x1B[2Jcleared"#)
        #expect(t("a\nb\tc\r") == #"a\nb\tc\r"#)
        #expect(t("\u{0}\u{7F}\u{9B}") == #"\x00\x7F\x9B"#)
        #expect(t("abc\u{202E}fed") == #"abc\u{202E}fed"#)
        #expect(t("naïve 🚀") == "naïve 🚀")
    }

    @Test func xmlEscapesForAttributesAndText() {
        let x = ReportEscaping.xml
        #expect(x(#"<a href="x">&'</a>"#) == "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;")
        #expect(x("line\nbreak\r\ttab") == "line&#10;break&#13;&#9;tab")
        #expect(x("nul\u{0}\u{FFFE}") == #"nul\x00\u{FFFE}"#)
    }

    @Test func tablesEscapeEveryCellAndPadByWhatIsShown() {
        var table = TextTable(headers: ["A", "B"])
        table.append(["\u{1B}[2J", "x"])
        table.append(cells: [.init("red", color: .red), "y"])
        let plain = table.render()
        #expect(terminalProblems(plain).isEmpty)
        #expect(plain.contains(#"\x1B[2J"#))
        let colored = table.render(color: true)
        #expect(colored.contains("\u{1B}[31mred\u{1B}[0m"))
        #expect(terminalProblems(colored).isEmpty)
    }
}

@Suite(.timeLimit(.minutes(3))) struct HostileTextReportTests {
    static let corpus: [String] = [
        "a | b || c |", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "`code` ``` fence ```",
        "\u{1B}[2J\u{1B}[31mred\u{1B}]0;title\u{7}", "nul\u{0}byte", "line1\nline2\r\nline3\rline4",
        "\u{202E}evil\u{202C} \u{2066}isolate\u{2069}", "zero\u{200B}width\u{FEFF}", "# heading", "> quote", "- item",
        "1. list", "[link](http://evil.example)", "**bold** _it_ ~~s~~ $x$", "&amp; &lt; ]]> <![CDATA[x]]> <!-- c -->",
        "\"quoted\" 'single'", #"\|escaped pipe\"#, "\u{7F}\u{85}\u{9B}31m", "tab\there", "\u{FFFE}\u{FFFF}",
        "emoji 🚀 e\u{301} עברית العربية", "|", "\\", "\n", String(repeating: "x|<&\u{1B}", count: 2_500),
    ]

    func check(markdown: String, terminal: [String], junit: String?, context: String) async throws {
        #expect(markdownProblems(markdown).isEmpty, "\(context): \(markdownProblems(markdown).prefix(3))")
        for text in terminal { #expect(terminalProblems(text).isEmpty, "\(context): \(terminalProblems(text))") }
        if let junit {
            let problem = try await junitProblems(junit)
            #expect(problem == nil, "\(context): \(problem ?? "")")
        }
    }

    @Test func gateReportsOfHostileTextStayParseable() async throws {
        if xmllintPath == nil { print("xmllint not found (Debian: libxml2-utils): JUnit reports checked for well-formedness only") }
        let corpus = Self.corpus
        for (i, text) in corpus.enumerated() {
            let other = corpus[(i + 7) % corpus.count]
            let input: JSONValue = .object(["question": .string(text), other: .string(other)])
            let item = GateItem(datasetItemID: text, runItemID: other, repetition: i % 3, input: input,
                                output: .string(other), expectedOutput: .string(text), reason: text + other)
            let report = GateReport(
                runName: text, runID: other, baselineName: other,
                conditions: [
                    GateConditionResult(condition: .min(text, 0.5), passed: false, actual: 0.1, detail: other, items: [item, item]),
                    GateConditionResult(condition: .max(other, 2), passed: true, actual: 1, detail: text, items: []),
                    GateConditionResult(condition: .noSignificantRegression, passed: false, actual: nil, detail: text, items: [item]),
                ],
                itemVerdicts: [GateItemVerdict(item: item, failure: text), GateItemVerdict(item: item, failure: nil)])
            var unfinished = report
            unfinished.incomplete = [text, other]
            unfinished.partial = [other]
            #expect(!unfinished.passed && unfinished.markdown().contains("❌ incomplete"))
            try await check(markdown: unfinished.markdown(), terminal: [unfinished.format()], junit: unfinished.junitXML(),
                            context: "incomplete gate report #\(i)")
            try await check(markdown: report.markdown(), terminal: [report.format()], junit: report.junitXML(),
                            context: "gate report #\(i)")
        }
    }

    @Test func comparisonsAndGatesOverHostileRunsStayParseable() async throws {
        let xeroml = try temporaryClient()
        let corpus = Self.corpus
        _ = try await xeroml.createDataset(name: "hostile")
        for (i, text) in corpus.enumerated() {
            let id = "\(i) " + String(text.prefix(40))
            _ = try await xeroml.createDatasetItem(datasetName: "hostile", input: .string(text),
                                                   expectedOutput: .string(corpus[(i + 1) % corpus.count]), id: id)
        }
        // Run names from the corpus (names are at most 200 characters and not blank).
        func runName(_ k: Int) -> String { "\(k)" + String(corpus[k % corpus.count].prefix(150)) }
        let scoreName = "s|" + corpus[0].prefix(20) + corpus[4].prefix(12)
        for run in 0..<3 {
            try await xeroml.runExperiment(name: runName(run), datasetName: "hostile",
                                           options: ExperimentOptions(retry: .none)) { item in
                let i = corpus.firstIndex(of: item.input.stringValue ?? "") ?? 0
                let text = corpus[(i + run) % corpus.count]
                if (i + run) % 5 == 0 { throw HostileError(message: text) }
                item.setOutput(.string(text))
                item.score(name: scoreName, value: Double((i * 7 + run * 3) % 10) / 10)
                item.score(name: corpus[(i + 2) % 3], value: (i + run) % 3 != 0)
                if run == 2 { item.score(name: "only-" + corpus[1], value: 1.0) }
            }
        }
        let comparison = try await xeroml.compare(baseline: runName(0), candidates: [runName(1), runName(2)],
                                                  datasetName: "hostile")
        // Scores no run of a pair has are not listed: "only-…" exists in the second candidate only.
        #expect(comparison.scores.filter { $0.name.hasPrefix("only-") }.map(\.candidate) == [1])
        var options = ComparisonReportOptions(itemLimit: 100)
        options.itemLabels = try await xeroml.itemLabels(for: comparison.items)
        let markdown = comparison.markdown(options)
        // Every candidate is named in the items table's header.
        let header = try #require(markdown.components(separatedBy: "\n").first { $0.hasPrefix("| item |") })
        #expect(markdownCells(header).count == 2 + 3 + 1)
        #expect(header.contains("candidate 1: ") && header.contains("candidate 2: "))
        var colored = options
        colored.color = true
        try await check(markdown: markdown, terminal: [comparison.text(options), comparison.text(colored)], junit: nil,
                        context: "comparison")
        // CSV: every record has the header's number of fields; JSON parses.
        let records = csvRecords(comparison.csv(options))
        #expect(records.count == 1 + comparison.items.count * 2)
        #expect(records.allSatisfy { $0.count == records[0].count })
        let json = comparison.jsonValue(options).jsonString
        #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil)

        // The run summary printed by the CLI escapes names too.
        let results = try await xeroml.results(runID: runName(1))
        #expect(terminalProblems(results.format()).isEmpty)
        let gate = try await xeroml.gate(run: runName(1), conditions: [.min(scoreName, 0.9), .max("error_rate", 0),
                                                                       .noSignificantRegression],
                                         baseline: runName(0), datasetName: "hostile")
        #expect(!gate.passed)
        try await check(markdown: gate.markdown(), terminal: [gate.format()], junit: gate.junitXML(), context: "gate")
    }
}

struct HostileError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite(.timeLimit(.minutes(2))) struct GateReportFormatTests {
    @Test func junitValidatesAgainstTheSchemaAndKeepsNewlinesInMessages() async throws {
        if xmllintPath == nil { print("xmllint not found (Debian: libxml2-utils): JUnit schema validation skipped") }
        let item = GateItem(datasetItemID: "d", runItemID: "r", repetition: 0, input: "q", output: "a", expectedOutput: "b",
                            reason: "two\nlines")
        let report = GateReport(runName: "run", runID: "id", baselineName: nil,
                                conditions: [GateConditionResult(condition: .min("ok", 0.9), passed: false, actual: 0.5,
                                                                 detail: "0.5\nover 2 items", items: [item])],
                                itemVerdicts: [GateItemVerdict(item: item, failure: "ok = 0 (< 0.9)\nsecond line")])
        let xml = report.junitXML()
        #expect(xml.contains(#"message="0.5&#10;over 2 items""#))
        #expect(xml.contains(#"errors="0""#))
        #expect(!xml.split(separator: "\n").contains { $0.contains("message=") && !$0.contains("</failure>") && !$0.hasSuffix(">") })
        let problem = try await junitProblems(xml)
        #expect(problem == nil, "\(problem ?? "")")
        // The schema is strict enough to catch the missing count.
        if xmllintPath != nil {
            let broken = try await junitProblems(xml.replacingOccurrences(of: #" errors="0""#, with: ""))
            #expect(broken?.contains("errors") == true)
        }
    }

    @Test func aThresholdOutsideTheScoreRangeIsRefusedWithTheRange() async throws {
        let xeroml = try temporaryClient()
        try await makeNumbersDataset(xeroml, name: "n", count: 4)
        try await xeroml.runExperiment(name: "r", datasetName: "n") { run in
            run.score(name: "accuracy", value: true)
            run.score(name: "similarity", value: 0.9)
            run.score(name: "tokens", value: 1200.0)
        }
        await #expect(throws: XeroMLError.self) {
            try await xeroml.gate(run: "r", conditions: [.min("accuracy", 85)])
        }
        do {
            _ = try await xeroml.gate(run: "r", conditions: [.min("accuracy", 85)])
        } catch let error as XeroMLError {
            #expect(error.message.contains("[0, 1]") && error.message.contains("0.85"))
        }
        // A declared range is enforced too; an unknown one is not.
        let declared = ComparisonOptions(scoreRanges: ["similarity": 0...1])
        await #expect(throws: XeroMLError.self) {
            try await xeroml.gate(run: "r", conditions: [.min("similarity", 90)], options: declared)
        }
        let tokens = try await xeroml.gate(run: "r", conditions: [.max("tokens", 5000), .max("error_rate", 0)])
        #expect(tokens.passed)
        await #expect(throws: XeroMLError.self) { try await xeroml.gate(run: "r", conditions: [.max("error_rate", 5)]) }
        // In memory, the condition fails with the same message.
        let results = try await xeroml.results(runID: "r")
        let report = results.gate([.min("accuracy", 85)])
        #expect(!report.passed && report.conditions[0].detail.contains("[0, 1]"))
    }

    @Test func markdownWritesAndAppendMarkdownAppends() async throws {
        let dir = temporaryDirectory()
        let db = dir.appendingPathComponent("q.sqlite").path
        _ = try await runCLI(["quickstart", "--db", db])
        let written = dir.appendingPathComponent("written.md").path
        let appended = dir.appendingPathComponent("appended.md").path
        try "old content\n".write(toFile: written, atomically: true, encoding: .utf8)
        try "old content\n".write(toFile: appended, atomically: true, encoding: .utf8)
        for _ in 0..<2 {
            let result = try await runCLI(["gate", "lookup-v2", "--min", "exact_match=0.5", "--db", db,
                                           "--markdown", written, "--append-markdown", appended])
            #expect(result.status == 0, "\(result.stderr)")
        }
        let writtenText = try String(contentsOfFile: written, encoding: .utf8)
        let appendedText = try String(contentsOfFile: appended, encoding: .utf8)
        #expect(!writtenText.contains("old content") && writtenText.components(separatedBy: "### XeroML gate").count == 2)
        #expect(appendedText.hasPrefix("old content") && appendedText.components(separatedBy: "### XeroML gate").count == 3)
        let help = try await runCLI(["gate", "--help"])
        #expect(help.stdout.contains("replacing it") && help.stdout.contains("Append a Markdown summary"))
        let refused = try await runCLI(["gate", "lookup-v2", "--min", "exact_match=85", "--db", db])
        #expect(refused.status == 2 && refused.stderr.contains("[0, 1]"))
    }
}
