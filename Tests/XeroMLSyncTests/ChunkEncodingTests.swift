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

@Suite("Chunk JSON, the fast reader")
struct ChunkDecodingTests {
    let writer = ChunkEncodingTests()

    /// The JSONDecoder reading of `data`, or nil where it throws.
    func reference(_ data: Data) -> SyncChunk? { try? JSONDecoder().decode(SyncChunk.self, from: data) }

    @Test("it reads what jsonData writes as the same chunk", arguments: ChunkEncodingTests.hostile)
    func readsOwnWriting(text: String) throws {
        for number in [0, -0.0, 1, 0.1, 1e-7, 123456789.125, 1e300, -2.5e-300, Double.leastNonzeroMagnitude, 4503599627370497] {
            let original = writer.chunk(text, number)
            let read = try #require(SyncChunk(fastJSON: original.jsonData()))
            #expect(read == original)
        }
    }

    @Test("it reads JSONEncoder's JSON (escaped slashes, other key orders, pretty printing) as JSONDecoder does",
          arguments: ChunkEncodingTests.hostile)
    func readsEncoderOutput(text: String) throws {
        for formatting in [JSONEncoder.OutputFormatting(), .sortedKeys, [.prettyPrinted, .sortedKeys], .withoutEscapingSlashes] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = formatting
            let data = try encoder.encode(writer.chunk(text, 2.5e-7))
            let read = try #require(SyncChunk(fastJSON: data))
            #expect(read == reference(data))
        }
    }

    @Test("unknown keys are skipped, null optional fields are absent")
    func unknownKeysAndNulls() throws {
        let json = """
            {"extra": {"nested": [1, -2.5E+3, true, false, null, "s\\u00e9"]}, "runID": "r", "index": 0,
             "datasetItems": [], "traces": [{"id": "t", "name": "n", "kind": "item", "input": null, "startedUs": 5, "endedUs": null,
             "later": []}], "observations": [], "runItems": [], "scores": [], "zzz": "\\ud83d\\ude80"}
            """
        let data = Data(json.utf8)
        let read = try #require(SyncChunk(fastJSON: data))
        #expect(read == reference(data))
        #expect(read.traces == [TraceRow(id: "t", name: "n", kind: "item", startedUs: 5)])
    }

    @Test("it answers nil where it is not sure, and JSONDecoder then decides", arguments: [
        #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": []}"#,  // scores missing
        #"{"runID": null, "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "runID": "s", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "index": 1.0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "index": 1e2, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "index": 99999999999999999999, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "\ud800", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": [],}"#,
        #"{"runID": "r", "index": 01, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": []} x"#,
        #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [{"id": "t"}], "observations": [], "runItems": [], "scores": []}"#,
        #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": [{"value": 1e999}]}"#,
        // Too small for a Double: JSONDecoder refuses it, where Double("1e-400") reads zero.
        #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": [{"id": "s", "name": "n", "dataType": "numeric", "value": 1e-400, "source": "x", "createdUs": 1}]}"#,
    ])
    func bails(json: String) {
        #expect(SyncChunk(fastJSON: Data(json.utf8)) == nil)
    }

    @Test("zeros: the plain spellings are read as JSONDecoder reads them, the others left to it")
    func zeros() throws {
        for zero in ["0", "-0", "0.0", "-0.000", "0e5", "0.000e-400", "-0.0E+2", "1e-400"] {
            let json = #"{"runID": "r", "index": 0, "datasetItems": [], "traces": [], "observations": [], "runItems": [], "scores": [{"id": "s", "name": "n", "dataType": "numeric", "value": \#(zero), "source": "x", "createdUs": 1}]}"#
            let data = Data(json.utf8)
            let read = SyncChunk(fastJSON: data)
            if ["0", "-0", "0.0", "-0.000"].contains(zero) {
                #expect(read != nil, "\(zero)")
            }
            if let read { #expect(read == reference(data), "\(zero)") }
        }
    }

    @Test("on 20,000 mutated chunks, whatever it reads JSONDecoder reads the same")
    func mutations() async throws {
        var random = SplitMix(seed: 0x5eed)
        let bases = ChunkEncodingTests.hostile.prefix(7).map { Array(writer.chunk($0, 0.125).jsonData()) }
        let alphabet = Array(#"{}[],:"\\/u0123456789.eE+-nultrfase "#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF, 0xED, 0xA0, 0x80]
        var read = 0
        var refused = 0
        for round in 0..<20_000 {
            // Seconds of CPU in all: let the suite's other tests, which run beside this one on the
            // same few threads and some of which time their requests, take turns.
            if round % 200 == 0 { await Task.yield() }
            var bytes = bases[Int(random.next() % UInt64(bases.count))]
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let at = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: at)
                default: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: at)
                }
            }
            let data = Data(bytes)
            if let fast = SyncChunk(fastJSON: data) {
                read += 1
                #expect(fast == reference(data), "\(String(decoding: bytes, as: UTF8.self))")
            } else {
                refused += 1
            }
        }
        // Both outcomes occur, so the property is exercised both ways.
        #expect(read > 1_000 && refused > 1_000, "read \(read), refused \(refused)")
    }
}

/// A small deterministic generator (SplitMix64), so a failing case can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
