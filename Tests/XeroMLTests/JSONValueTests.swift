import Testing
@testable import XeroML

@Suite struct JSONValueTests {
    @Test func roundTripsThroughText() throws {
        let value: JSONValue = ["b": [1, 2.5, "x\n\"q\"", nil, true], "a": ["nested": ["é": "ü😀"]], "n": -0.125]
        let text = value.jsonString
        #expect(text == #"{"a":{"nested":{"é":"ü😀"}},"b":[1,2.5,"x\n\"q\"",null,true],"n":-0.125}"#)
        #expect(try JSONValue(parsing: text) == value)
    }

    @Test func keepsIntegersAndDoublesApart() throws {
        #expect(try JSONValue(parsing: "3") == .int(3))
        #expect(try JSONValue(parsing: "3.0") == .double(3))
        #expect(JSONValue.double(3).jsonString == "3.0")
        #expect(try JSONValue(parsing: "1e3") == .double(1000))
        #expect(try JSONValue(parsing: "12345678901234567890") == .double(Double("12345678901234567890")!))
    }

    @Test func decodesEscapes() throws {
        #expect(try JSONValue(parsing: #""\u00e9\ud83d\ude00\t\/""#) == .string("é😀\t/"))
    }

    @Test(arguments: [
        ("{\"a\": 1,}", 1, 9, "expected a quoted object key"),
        ("[1, 2", 1, 6, "expected ',' or ']'"),
        ("{\n  \"a\": tru\n}", 2, 8, "invalid literal"),
        ("\"abc", 1, 1, "unterminated string"),
        ("01", 1, 1, "leading zero"),
        ("{} x", 1, 4, "after the JSON value"),
        ("", 1, 1, "empty input"),
    ])
    func reportsWhereParsingFailed(text: String, line: Int, column: Int, reason: String) {
        do {
            _ = try JSONValue(parsing: text)
            Issue.record("\(text) should not parse")
        } catch {
            #expect(error.line == line)
            #expect(error.column == column)
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }

    @Test func convertsEncodableValues() throws {
        struct Answer: Codable, Equatable { var text: String; var confidence: Double }
        let value = try JSONValue(encoding: Answer(text: "Paris", confidence: 0.5))
        #expect(value["text"] == "Paris")
        #expect(try value.decode(Answer.self) == Answer(text: "Paris", confidence: 0.5))
    }
}

@Suite struct UUIDv7Tests {
    @Test func idsAreVersion7AndTimeOrdered() {
        let ids = (0..<10_000).map { _ in UUIDv7.make() }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(id.count == 36)
            let chars = Array(id)
            #expect(chars[14] == "7")
            #expect("89ab".contains(chars[19]))
        }
        let created = UUIDv7.date(of: ids[0])!
        #expect(abs(created.timeIntervalSinceNow) < 60)
    }
}

@Suite struct StatisticsTests {
    @Test func describesKnownSample() {
        // Sample 2,4,4,4,5,5,7,9: mean 5, sample variance 32/7, sd 2.13809; t(0.975, 7) = 2.364624252.
        let stats = Statistics.describe([2, 4, 4, 4, 5, 5, 7, 9])
        #expect(stats.mean == 5)
        #expect(abs(stats.standardDeviation! - 2.138090) < 1e-6)
        #expect(abs(stats.standardError! - 0.755929) < 1e-6)
        let ci = stats.confidenceInterval95!
        #expect(abs(ci.lowerBound - (5 - 2.364624252 * 0.755929)) < 1e-5)
        #expect(abs(ci.upperBound - (5 + 2.364624252 * 0.755929)) < 1e-5)
    }

    @Test func percentilesInterpolateLikeType7() {
        let sorted: [Double] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        #expect(Statistics.percentile(sorted, 0.5) == 5.5)
        #expect(abs(Statistics.percentile(sorted, 0.95)! - 9.55) < 1e-12)
        #expect(Statistics.percentile([], 0.5) == nil)
    }

    @Test func tQuantilesMatchTables() {
        #expect(Statistics.tQuantile975(degreesOfFreedom: 1) == 12.706204736)
        #expect(abs(Statistics.tQuantile975(degreesOfFreedom: 60) - 2.000) < 0.001)
        #expect(abs(Statistics.tQuantile975(degreesOfFreedom: 120) - 1.980) < 0.001)
    }

    @Test func levenshtein() {
        #expect(TextSimilarity.levenshteinDistance("kitten", "sitting") == 3)
        #expect(TextSimilarity.levenshteinSimilarity("", "") == 1)
        #expect(abs(TextSimilarity.levenshteinSimilarity("kitten", "sitting") - (1 - 3.0 / 7)) < 1e-12)
    }
}
