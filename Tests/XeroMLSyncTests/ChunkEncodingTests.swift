import Foundation
import Testing
import XeroMLSyncAPI

@Suite("Chunk JSON")
struct ChunkEncodingTests {
    static let hostile = ["", "plain", "quote \" backslash \\ slash /", "new\nline\ttab\r", "\u{0}\u{1}\u{1F}\u{7F}",
                          "é 日本 🚀 \u{2028}\u{2029}", "{\"json\": [1, 2.5e-7, null]}", String(repeating: "x", count: 10_000)]

    func chunk(_ text: String, _ number: Double) -> SyncChunk {
        SyncChunk(
            runID: "run-\(text.prefix(3))", index: 7,
            datasetItems: [DatasetItemRow(id: "d1", datasetID: "ds", externalID: text, input: text, expectedOutput: nil,
                                          metadata: text, createdUs: 1_700_000_000_000_000)],
            traces: [TraceRow(id: "t1", name: text, kind: "item", input: text, output: nil, metadata: "{}", startedUs: -5, endedUs: nil)],
            observations: [ObservationRow(id: "o1", traceID: "t1", parentID: nil, kind: "generation", name: text, input: text,
                                          model: text, promptTokens: 3, completionTokens: nil, totalTokens: Int.max, cost: number,
                                          level: "warning", statusMessage: text, startedUs: Int64.min, endedUs: Int64.max)],
            runItems: [RunItemRow(id: "r1", datasetItemID: "d1", repetition: 2, input: text, expectedOutput: text, output: text,
                                  error: text, latencyMs: number, attempts: 1, cost: nil, traceID: "t1", startedUs: 0)],
            scores: [ScoreRow(id: "s1", runItemID: "r1", name: text, dataType: "numeric", value: number, stringValue: text,
                              comment: text, source: "judge", evaluator: text, createdUs: 1)])
    }

    @Test("what jsonData writes, JSONDecoder reads back as the same chunk", arguments: hostile)
    func roundTrip(text: String) throws {
        for number in [0, -0.0, 1, 0.1, 1e-7, 123456789.125, 1e300, -2.5e-300, Double.leastNonzeroMagnitude] {
            let original = chunk(text, number)
            let decoded = try JSONDecoder().decode(SyncChunk.self, from: original.jsonData())
            #expect(decoded == original)
        }
    }

    @Test("non-finite numbers are written as null, which an optional field reads as absent")
    func nonFinite() throws {
        var original = chunk("x", 1)
        original.scores[0].value = .nan
        original.observations[0].cost = .infinity
        let decoded = try JSONDecoder().decode(SyncChunk.self, from: original.jsonData())
        #expect(decoded.scores[0].value == nil && decoded.observations[0].cost == nil)
    }
}
