import Foundation
import Testing
@testable import XeroML

@Suite struct ImportTests {
    @Test func importsTheFixtureAndReimportsWithoutDuplicates() async throws {
        let xeroml = try temporaryClient()
        let path = repositoryRoot.appendingPathComponent("Fixtures/datasets/capitals.jsonl").path
        let report = try await xeroml.importDataset(name: "capitals", from: path)
        #expect(report.created == 26 && report.createdDataset && report.version == 1)
        let again = try await xeroml.importDataset(name: "capitals", from: path)
        #expect(again.created == 0 && again.unchanged == 26 && again.version == 1)
        let dataset = try await xeroml.dataset(named: "capitals")
        #expect(dataset.items.count == 26)
        let france = try #require(dataset.items.first { $0.externalID == "fr" })
        #expect(france.input == ["question": "What is the capital of France?"])
        #expect(france.expectedOutput == "Paris")
        #expect(france.metadata?["continent"] == "Europe")
    }

    @Test func updatesItemsByIdIntoANewVersion() async throws {
        let xeroml = try temporaryClient()
        let dir = temporaryDirectory()
        try await xeroml.importDataset(name: "d", from: writeFile("v1.jsonl", """
            {"id": "a", "input": "1", "expected_output": "one"}
            {"id": "b", "input": "2", "expected_output": "two"}
            """, in: dir))
        let report = try await xeroml.importDataset(name: "d", from: writeFile("v2.jsonl", """
            {"id": "a", "input": "1", "expected_output": "one"}
            {"id": "b", "input": "2", "expected_output": "TWO"}
            {"id": "c", "input": "3"}
            """, in: dir))
        #expect(report.created == 1 && report.updated == 1 && report.unchanged == 1 && report.version == 2)
        let dataset = try await xeroml.dataset(named: "d")
        #expect(dataset.items.count == 3)
        #expect(dataset.items.first { $0.externalID == "b" }?.expectedOutput == "TWO")
    }

    @Test func importsAJSONArrayWithEitherSpelling() async throws {
        let xeroml = try temporaryClient()
        let path = writeFile("items.json", """
            [
              {"input": {"q": "x"}, "expectedOutput": [1, 2]},
              {"input": "y", "expected_output": null, "metadata": {"m": true}, "id": 7}
            ]
            """)
        let report = try await xeroml.importDataset(name: "arr", from: path)
        #expect(report.created == 2)
        let items = try await xeroml.dataset(named: "arr").items
        #expect(items[0].expectedOutput == [1, 2])
        #expect(items[1].externalID == "7" && items[1].expectedOutput == nil && items[1].metadata == ["m": true])
    }

    @Test(arguments: [
        ("bad.jsonl", "{\"input\": 1}\n{\"input\": 2,}\n", "bad.jsonl:2: invalid JSON at column 13"),
        ("bad.jsonl", "{\"input\": 1}\n\n{\"expected_output\": 2}\n", "bad.jsonl:3: missing field \"input\""),
        ("bad.jsonl", "{\"input\": 1, \"expected_ouput\": 2}\n", "bad.jsonl:1: unknown field \"expected_ouput\""),
        ("bad.jsonl", "[1]\n", "bad.jsonl:1: expected an object"),
        ("bad.jsonl", "{\"id\": \"a\", \"input\": 1}\n{\"id\": \"a\", \"input\": 2}\n", "bad.jsonl:2: duplicate id \"a\" (first at"),
        ("bad.jsonl", "{\"input\": 1, \"metadata\": [1]}\n", "bad.jsonl:1: \"metadata\" must be an object"),
        ("bad.jsonl", "{\"input\": 1, \"id\": 1.5}\n", "bad.jsonl:1: \"id\" must be a string or an integer"),
        ("bad.jsonl", "\n\n", "the file has no items"),
        ("bad.json", "[{\"input\": 1},\n {\"input\": 2]", "bad.json:2: invalid JSON at column 13"),
        ("bad.json", "{\"input\": 1}", "bad.json:1: expected a JSON array"),
        ("bad.json", "[{\"input\": 1}, {\"output\": 2}]", "bad.json: item 2: unknown field \"output\""),
        // Numbers beyond a Double are errors, not null.
        ("bad.jsonl", "{\"input\": 1}\n{\"input\": 1e999}\n", "bad.jsonl:2: invalid JSON at column 11: number 1e999 is too large"),
        ("bad.jsonl", "{\"input\": {\"x\": -1e999}}\n", "bad.jsonl:1: invalid JSON at column 17: number -1e999 is too large"),
        ("bad.json", "[{\"input\": 1},\n {\"input\": 2e400}]", "bad.json:2: invalid JSON at column 12: number 2e400 is too large"),
    ])
    func malformedFilesNameTheLineAndWriteNothing(name: String, text: String, expected: String) async throws {
        let xeroml = try temporaryClient()
        try await xeroml.importDataset(name: "existing", from: writeFile("ok.jsonl", "{\"input\": \"keep\"}\n"))
        let path = writeFile(name, text)
        for target in ["existing", "new"] {
            do {
                try await xeroml.importDataset(name: target, from: path)
                Issue.record("\(name) should fail")
            } catch let error as XeroMLError {
                #expect(error.code == .importFailed)
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(error.message.hasPrefix(path) || expected == "the file has no items")
            }
        }
        let datasets = try await xeroml.datasets()
        #expect(datasets.map(\.name) == ["existing"])
        #expect(datasets[0].itemCount == 1 && datasets[0].version == 1)
    }

    @Test func aMissingFileIsAClearError() async throws {
        let xeroml = try temporaryClient()
        do {
            try await xeroml.importDataset(name: "x", from: "/no/such/file.jsonl")
            Issue.record("expected an error")
        } catch let error as XeroMLError {
            #expect(error.code == .importFailed)
            #expect(error.message.hasPrefix("/no/such/file.jsonl: cannot read the file"))
        }
    }
}

@Suite struct LargeImportTests {
    @Test func aBadLineAfterManyChunksStillWritesNothing() async throws {
        let xeroml = try temporaryClient()
        var lines = (0..<3_500).map { #"{"id": "\#($0)", "input": \#($0)}"# }
        lines.append(#"{"id": "bad", "input": }"#)
        let path = writeFile("late-error.jsonl", lines.joined(separator: "\n"))
        do {
            try await xeroml.importDataset(name: "big", from: path)
            Issue.record("the import should fail")
        } catch let error as XeroMLError {
            #expect(error.message.hasPrefix("\(path):3501: invalid JSON"))
        }
        #expect(try await xeroml.datasets().isEmpty)
        let ok = try await xeroml.importDataset(name: "big", from: writeFile("ok.jsonl", lines.dropLast().joined(separator: "\n")))
        #expect(ok.created == 3_500 && ok.version == 1)
        #expect(try await xeroml.dataset(named: "big").items.count == 3_500)
    }
}

@Suite struct CSVImportTests {
    @Test func importsQuotedFieldsJSONCellsAndMetadataColumns() async throws {
        let xeroml = try temporaryClient()
        let path = writeFile("qa.csv", "\u{FEFF}id,input,expected_output,metadata.topic,metadata\r\n"
            + "q1,\"What is 2+2?\",4,math,\r\n"
            + "q2,\"Say \"\"hi\"\", then\nstop\",\"{\"\"greeting\"\": \"\"hi\"\"}\",,\"{\"\"level\"\": 2}\"\r\n"
            + "\n"
            + "q3,\"[1, 2]\",,geo,\n")
        let report = try await xeroml.importDataset(name: "csv", from: path)
        #expect(report.created == 3)
        let items = try await xeroml.dataset(named: "csv").items
        let byID = Dictionary(uniqueKeysWithValues: items.map { ($0.externalID!, $0) })
        #expect(byID["q1"]?.input == "What is 2+2?")
        #expect(byID["q1"]?.expectedOutput == "4")
        #expect(byID["q1"]?.metadata == ["topic": "math"])
        #expect(byID["q2"]?.input == "Say \"hi\", then\nstop")
        #expect(byID["q2"]?.expectedOutput == ["greeting": "hi"])
        #expect(byID["q2"]?.metadata == ["level": 2])
        #expect(byID["q3"]?.input == [1, 2])
        #expect(byID["q3"]?.expectedOutput == nil)
        #expect(byID["q3"]?.metadata == ["topic": "geo"])
    }

    @Test(arguments: [
        ("question,answer\nhi,hello\n", "bad.csv:1: unknown column \"question\""),
        ("id,expected_output\n1,x\n", "bad.csv:1: no \"input\" column"),
        ("input,input\nx,y\n", "bad.csv:1: column \"input\" appears twice"),
        ("input,id\nx,1\ny\n", "bad.csv:3: 1 fields, but the header has 2"),
        ("input\n\"open\n", "bad.csv:2: a quoted field is not closed"),
        ("input\nab\"c\n", "bad.csv:2: a quote inside an unquoted field"),
        ("input,metadata\nx,[1]\n", "bad.csv:2: \"metadata\" must be a JSON object"),
        ("input,id\nx,a\ny,a\n", "bad.csv:3: duplicate id \"a\" (first at bad.csv:2)"),
        ("input\n{oops\n", "bad.csv:2: column \"input\" looks like JSON but is not"),
        ("input\n[INST] hi\n", "bad.csv:2: column \"input\" looks like JSON but is not (invalid JSON at line 1, column 2: "
            + "unexpected 'I', expected a value); to import the column as text, name it \"input:text\" in the header "
            + "(CLI: --text-columns input)"),
        ("input\n[1e999]\n", "bad.csv:2: column \"input\" looks like JSON but is not (invalid JSON at line 1, column 2: number 1e999 is too large"),
        ("input:json\nplain words\n", "bad.csv:2: column \"input\" is declared JSON but this cell is not"),
        ("input,expected_output:json\nx,1e999\n", "bad.csv:2: column \"expected_output\" is declared JSON but this cell is not (invalid JSON at line 1, column 1: number 1e999 is too large"),
        ("input,id:text\nx,1\n", "bad.csv:1: column \"id\" takes no type"),
        ("input:number\nx\n", "bad.csv:1: unknown column \"input:number\""),
        ("input\n", "the file has no items"),
    ])
    func malformedCSVNamesTheLineAndWritesNothing(text: String, expected: String) async throws {
        let xeroml = try temporaryClient()
        let dir = temporaryDirectory()
        let path = writeFile("bad.csv", text, in: dir)
        do {
            try await xeroml.importDataset(name: "csv", from: path)
            Issue.record("\(text) should fail")
        } catch let error as XeroMLError {
            #expect(error.code == .importFailed)
            #expect(error.message.replacingOccurrences(of: dir.path + "/", with: "").contains(expected), "\(error.message)")
        }
        #expect(try await xeroml.datasets().isEmpty)
    }
}

@Suite struct CSVCellTypeTests {
    /// `[INST] …` is plain text: refused by default with a message naming the way out, imported as text
    /// when the header says so, and JSON cells still work in other columns of the same file.
    @Test func aTextColumnKeepsJSONLookingCellsAsWritten() async throws {
        let xeroml = try temporaryClient()
        let path = writeFile("prompts.csv", """
            id,input:text,expected_output,metadata.tags:json,metadata.note
            a,[INST] Say hi [/INST],"{""greeting"": ""hi""}","[""x"", 2]",[draft]
            b,{not json either},[1],,
            """)
        let report = try await xeroml.importDataset(name: "prompts", from: path)
        #expect(report.created == 2)
        let items = Dictionary(uniqueKeysWithValues: try await xeroml.dataset(named: "prompts").items.map { ($0.externalID!, $0) })
        #expect(items["a"]?.input == "[INST] Say hi [/INST]")
        #expect(items["a"]?.expectedOutput == ["greeting": "hi"])
        #expect(items["a"]?.metadata == ["tags": ["x", 2], "note": "[draft]"])
        #expect(items["b"]?.input == "{not json either}")
        #expect(items["b"]?.expectedOutput == [1])
        #expect(items["b"]?.metadata == nil)
    }

    @Test func theArgumentOverridesTheHeader() async throws {
        let xeroml = try temporaryClient()
        let path = writeFile("o.csv", "input:json,expected_output\n[INST] hi,\"[1, 2]\"\n")
        await #expect(throws: XeroMLError.self) { try await xeroml.importDataset(name: "o", from: path) }
        #expect(try await xeroml.datasets().isEmpty)
        try await xeroml.importDataset(name: "o", from: path, csvColumnTypes: ["input": .text, "expected_output": .text])
        let item = try #require(try await xeroml.dataset(named: "o").items.first)
        #expect(item.input == "[INST] hi")
        #expect(item.expectedOutput == "[1, 2]")
    }

    @Test func aJSONColumnReadsEveryCellAsOneValue() async throws {
        let xeroml = try temporaryClient()
        let path = writeFile("j.csv", "input:json,expected_output:json\n\"\"\"quoted\"\"\",4\n\"{\"\"a\"\": 1}\",true\n")
        try await xeroml.importDataset(name: "j", from: path)
        let items = try await xeroml.dataset(named: "j").items
        #expect(items.map(\.input) == ["quoted", ["a": 1]])
        #expect(items.map(\.expectedOutput) == [4, true])
    }

    @Test func aTypeForAColumnTheFileDoesNotHaveIsRefused() async throws {
        let xeroml = try temporaryClient()
        let path = writeFile("t.csv", "input\nx\n")
        do {
            try await xeroml.importDataset(name: "t", from: path, csvColumnTypes: ["expected": .text])
            Issue.record("a type for a missing column must be refused")
        } catch let error as XeroMLError {
            #expect(error.message.contains("t.csv:1: a type is given for column \"expected\", which the file does not have"))
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct StreamImportTests {
    /// A named pipe cannot be memory-mapped: it is copied, then imported, and errors still name it.
    @Test func importsFromANamedPipe() async throws {
        let xeroml = try temporaryClient()
        let dir = temporaryDirectory()
        let fifo = dir.appendingPathComponent("items.jsonl").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let writer = Thread {
            // Opening a FIFO for writing blocks until the reader opens it.
            let handle = FileHandle(forWritingAtPath: fifo)!
            handle.write(Data("{\"id\": \"1\", \"input\": \"a\"}\n{\"id\": \"2\", \"input\": \"b\"}\n".utf8))
            try? handle.close()
        }
        writer.start()
        let report = try await xeroml.importDataset(name: "piped", from: fifo)
        #expect(report.created == 2)
        #expect(try await xeroml.dataset(named: "piped").items.map(\.input) == ["a", "b"])

        let bad = Thread {
            let handle = FileHandle(forWritingAtPath: fifo)!
            handle.write(Data("{\"input\": \"a\"}\n{\"input\": }\n".utf8))
            try? handle.close()
        }
        bad.start()
        do {
            try await xeroml.importDataset(name: "piped-bad", from: fifo)
            Issue.record("a bad line in a pipe must fail")
        } catch let error as XeroMLError {
            #expect(error.message.hasPrefix("\(fifo):2: invalid JSON"), "\(error.message)")
        }
        #expect(try await xeroml.datasets().map(\.name) == ["piped"])
        // The copy of a stream is removed once imported; a regular file is read in place.
        let writerAgain = Thread {
            let handle = FileHandle(forWritingAtPath: fifo)!
            handle.write(Data("{\"input\": \"c\"}\n".utf8))
            try? handle.close()
        }
        writerAgain.start()
        let source = try await ImportSource.open(fifo)
        #expect(source.name == fifo && source.readablePath != fifo)
        #expect(try String(contentsOfFile: source.readablePath, encoding: .utf8) == "{\"input\": \"c\"}\n")
        source.close()
        #expect(!FileManager.default.fileExists(atPath: source.readablePath))
        let regular = try await ImportSource.open(writeFile("r.jsonl", "{}", in: dir))
        #expect(regular.readablePath == regular.name)
        regular.close()
        #expect(FileManager.default.fileExists(atPath: regular.name))
    }
}
