public import Foundation

extension SyncChunk {
    /// Reads a chunk from JSON about ten times faster than `JSONDecoder`, or answers nil.
    ///
    /// The reader takes the JSON a client writes (``jsonData()``, `JSONEncoder`, or any JSON of the
    /// same shape): keys in any order, whitespace, escapes, unknown keys (skipped). It answers nil for
    /// anything outside what it is sure of: malformed JSON, a missing or `null` required field, a wrong
    /// type, a repeated key, an integer written with a fraction or an exponent, a number out of range,
    /// invalid UTF-8, a lone surrogate, nesting deeper than 64. A caller then decodes the same bytes
    /// with `JSONDecoder`, which either reads them or names the problem; so whenever this answers a
    /// chunk, `JSONDecoder` answers the same one (the tests check it on generated and mutated chunks).
    public init?(fastJSON data: Data) {
        let chunk: SyncChunk? = data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, raw.count > 0 else { return nil }
            var reader = ChunkJSONReader(base: base.assumingMemoryBound(to: UInt8.self), count: raw.count)
            do throws(ChunkJSONReader.Bail) {
                let chunk = try reader.chunk()
                try reader.end()
                return chunk
            } catch {
                return nil
            }
        }
        guard let chunk else { return nil }
        self = chunk
    }
}

/// A strict reader of one ``SyncChunk`` in JSON. Every method throws ``Bail`` at the first byte it is
/// not sure of.
struct ChunkJSONReader {
    struct Bail: Error {}

    let base: UnsafePointer<UInt8>
    let count: Int
    var i = 0

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    // MARK: Structure

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), comma = UInt8(ascii: ",")

    mutating func skipWhitespace() {
        while i < count {
            switch base[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(Bail) {
        skipWhitespace()
        guard i < count, base[i] == byte else { throw Bail() }
        i += 1
    }

    /// Nothing but whitespace is left.
    mutating func end() throws(Bail) {
        skipWhitespace()
        guard i == count else { throw Bail() }
    }

    /// The next key of an object begun with `{` (its bytes, unescaped keys only), or nil after its `}`.
    mutating func nextKey(_ first: inout Bool) throws(Bail) -> UnsafeBufferPointer<UInt8>? {
        skipWhitespace()
        guard i < count else { throw Bail() }
        if first {
            first = false
            if base[i] == UInt8(ascii: "}") { i += 1; return nil }
        } else {
            if base[i] == UInt8(ascii: "}") { i += 1; return nil }
            guard base[i] == Self.comma else { throw Bail() }
            i += 1
            skipWhitespace()
        }
        guard i < count, base[i] == Self.quote else { throw Bail() }
        i += 1
        let start = i
        while i < count, base[i] != Self.quote {
            // Keys are ASCII: any other byte (an escape, a control, UTF-8 to validate) is JSONDecoder's.
            guard base[i] != Self.backslash, base[i] >= 0x20, base[i] < 0x80 else { throw Bail() }
            i += 1
        }
        guard i < count else { throw Bail() }
        let key = UnsafeBufferPointer(start: base + start, count: i - start)
        i += 1
        try expect(UInt8(ascii: ":"))
        return key
    }

    /// Whether another element follows in an array begun with `[` (false after its `]`).
    mutating func nextElement(_ first: inout Bool) throws(Bail) -> Bool {
        skipWhitespace()
        guard i < count else { throw Bail() }
        if base[i] == UInt8(ascii: "]") { i += 1; return false }
        if first {
            first = false
        } else {
            guard base[i] == Self.comma else { throw Bail() }
            i += 1
        }
        return true
    }

    /// Consumes `null` if it is next.
    mutating func null() -> Bool {
        skipWhitespace()
        guard i + 4 <= count, base[i] == UInt8(ascii: "n"), base[i + 1] == UInt8(ascii: "u"),
              base[i + 2] == UInt8(ascii: "l"), base[i + 3] == UInt8(ascii: "l") else { return false }
        i += 4
        return true
    }

    /// Skips any JSON value (an unknown key's).
    mutating func skipValue(depth: Int = 0) throws(Bail) {
        guard depth < 64 else { throw Bail() }
        skipWhitespace()
        guard i < count else { throw Bail() }
        switch base[i] {
        case Self.quote: _ = try string()
        case UInt8(ascii: "{"):
            i += 1
            var first = true
            while try nextKey(&first) != nil { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            i += 1
            var first = true
            while try nextElement(&first) { try skipValue(depth: depth + 1) }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): guard null() else { throw Bail() }
        default: _ = try number()
        }
    }

    private mutating func literal(_ word: StaticString) throws(Bail) {
        let length = word.utf8CodeUnitCount
        guard i + length <= count, memcmp(base + i, word.utf8Start, length) == 0 else { throw Bail() }
        i += length
    }

    // MARK: Values

    /// A string, unescaped and checked to be UTF-8.
    mutating func string() throws(Bail) -> String {
        try expect(Self.quote)
        let start = i
        var bits: UInt8 = 0
        while i < count {
            let byte = base[i]
            if byte == Self.quote || byte == Self.backslash || byte < 0x20 { break }
            bits |= byte
            i += 1
        }
        guard i < count else { throw Bail() }
        if base[i] == Self.quote {
            let bytes = UnsafeBufferPointer(start: base + start, count: i - start)
            i += 1
            // ASCII (the usual case) is valid UTF-8 as it is; anything else is checked.
            if bits < 0x80 { return String(decoding: bytes, as: UTF8.self) }
            guard let value = String(validating: bytes, as: UTF8.self) else { throw Bail() }
            return value
        }
        guard base[i] == Self.backslash else { throw Bail() }
        var bytes = Array(UnsafeBufferPointer(start: base + start, count: i - start))
        while true {
            guard i < count else { throw Bail() }
            let byte = base[i]
            if byte == Self.quote { i += 1; break }
            guard byte >= 0x20 else { throw Bail() }
            guard byte == Self.backslash else {
                bytes.append(byte)
                i += 1
                continue
            }
            i += 1
            guard i < count else { throw Bail() }
            switch base[i] {
            case Self.quote: bytes.append(Self.quote)
            case Self.backslash: bytes.append(Self.backslash)
            case UInt8(ascii: "/"): bytes.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(at: i + 1)
                i += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard i + 6 < count, base[i + 1] == Self.backslash, base[i + 2] == UInt8(ascii: "u") else { throw Bail() }
                    let low = try hex4(at: i + 3)
                    guard (0xDC00..<0xE000).contains(low) else { throw Bail() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw Bail()
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw Bail() }
                bytes.append(contentsOf: UTF8.encode(unicode)!)
            default: throw Bail()
            }
            i += 1
        }
        guard let value = String(validating: bytes, as: UTF8.self) else { throw Bail() }
        return value
    }

    private func hex4(at position: Int) throws(Bail) -> UInt32 {
        guard position + 4 <= count else { throw Bail() }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = base[position + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Bail()
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// The bytes of a number in JSON's grammar, and whether it is a plain integer.
    private mutating func number() throws(Bail) -> (UnsafeBufferPointer<UInt8>, integer: Bool) {
        skipWhitespace()
        let start = i
        func isDigit(_ position: Int) -> Bool {
            position < count && base[position] >= UInt8(ascii: "0") && base[position] <= UInt8(ascii: "9")
        }
        if i < count, base[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { throw Bail() }
        if base[i] == UInt8(ascii: "0") {
            i += 1
            guard !isDigit(i) else { throw Bail() }
        } else {
            while isDigit(i) { i += 1 }
        }
        var integer = true
        if i < count, base[i] == UInt8(ascii: ".") {
            integer = false
            i += 1
            guard isDigit(i) else { throw Bail() }
            while isDigit(i) { i += 1 }
        }
        if i < count, base[i] == UInt8(ascii: "e") || base[i] == UInt8(ascii: "E") {
            integer = false
            i += 1
            if i < count, base[i] == UInt8(ascii: "+") || base[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { throw Bail() }
            while isDigit(i) { i += 1 }
        }
        return (UnsafeBufferPointer(start: base + start, count: i - start), integer)
    }

    /// An integer written without fraction or exponent, in range.
    mutating func int64() throws(Bail) -> Int64 {
        let (bytes, integer) = try number()
        guard integer else { throw Bail() }
        let negative = bytes[0] == UInt8(ascii: "-")
        var value: Int64 = 0
        for byte in bytes.dropFirst(negative ? 1 : 0) {
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { throw Bail() }
            value = next
        }
        return value
    }

    mutating func int() throws(Bail) -> Int {
        let value = try int64()
        guard let exact = Int(exactly: value) else { throw Bail() }
        return exact
    }

    /// A finite number.
    mutating func double() throws(Bail) -> Double {
        let (bytes, integer) = try number()
        if integer, bytes.count <= 15 {
            // At most 15 digits: exact as a Double.
            var value: Int64 = 0
            let negative = bytes[0] == UInt8(ascii: "-")
            for byte in bytes.dropFirst(negative ? 1 : 0) { value = value * 10 + Int64(byte - UInt8(ascii: "0")) }
            if negative && value == 0 { return -0.0 }
            return Double(negative ? -value : value)
        }
        guard let text = String(validating: bytes, as: UTF8.self), let value = Double(text), value.isFinite else { throw Bail() }
        // A number too small for a Double reads as zero here, where JSONDecoder refuses it; a zero
        // is read only when spelled with zeros, a sign and a point (anything else is JSONDecoder's).
        if value == 0, !bytes.allSatisfy({ $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }) {
            throw Bail()
        }
        return value
    }

    mutating func optionalString() throws(Bail) -> String? { null() ? nil : try string() }
    mutating func optionalInt() throws(Bail) -> Int? { null() ? nil : try int() }
    mutating func optionalInt64() throws(Bail) -> Int64? { null() ? nil : try int64() }
    mutating func optionalDouble() throws(Bail) -> Double? { null() ? nil : try double() }
}

// MARK: - Rows

/// Which of a row's keys have been read: a repeated key bails, a missing required one too.
private struct Seen {
    var bits: UInt32 = 0
    mutating func mark(_ field: Int) throws(ChunkJSONReader.Bail) {
        let bit = UInt32(1) << UInt32(field)
        guard bits & bit == 0 else { throw ChunkJSONReader.Bail() }
        bits |= bit
    }
}

private func required<T>(_ value: T?) throws(ChunkJSONReader.Bail) -> T {
    guard let value else { throw ChunkJSONReader.Bail() }
    return value
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether these bytes spell `key`.
    fileprivate func `is`(_ key: StaticString) -> Bool {
        count == key.utf8CodeUnitCount && memcmp(baseAddress!, key.utf8Start, count) == 0
    }
}

extension ChunkJSONReader {
    mutating func chunk() throws(Bail) -> SyncChunk {
        try expect(UInt8(ascii: "{"))
        var seen = Seen()
        var runID: String?, index: Int?
        var datasetItems: [DatasetItemRow]?, traces: [TraceRow]?, observations: [ObservationRow]?
        var runItems: [RunItemRow]?, scores: [ScoreRow]?
        var first = true
        while let key = try nextKey(&first) {
            if key.is("runID") { try seen.mark(0); runID = try string() }
            else if key.is("index") { try seen.mark(1); index = try int() }
            else if key.is("datasetItems") { try seen.mark(2); datasetItems = try rows { (r: inout Self) throws(Bail) in try r.datasetItem() } }
            else if key.is("traces") { try seen.mark(3); traces = try rows { (r: inout Self) throws(Bail) in try r.trace() } }
            else if key.is("observations") { try seen.mark(4); observations = try rows { (r: inout Self) throws(Bail) in try r.observation() } }
            else if key.is("runItems") { try seen.mark(5); runItems = try rows { (r: inout Self) throws(Bail) in try r.runItem() } }
            else if key.is("scores") { try seen.mark(6); scores = try rows { (r: inout Self) throws(Bail) in try r.score() } }
            else { try skipValue() }
        }
        return SyncChunk(runID: try required(runID), index: try required(index), datasetItems: try required(datasetItems),
                         traces: try required(traces), observations: try required(observations), runItems: try required(runItems),
                         scores: try required(scores))
    }

    private mutating func rows<Row>(_ row: (inout Self) throws(Bail) -> Row) throws(Bail) -> [Row] {
        try expect(UInt8(ascii: "["))
        var result: [Row] = []
        var first = true
        while try nextElement(&first) { result.append(try row(&self)) }
        return result
    }

    mutating func datasetItem() throws(Bail) -> DatasetItemRow {
        try expect(UInt8(ascii: "{"))
        var seen = Seen()
        var id: String?, datasetID: String?, externalID: String?, input: String?, expectedOutput: String?, metadata: String?
        var createdUs: Int64?
        var first = true
        while let key = try nextKey(&first) {
            if key.is("id") { try seen.mark(0); id = try string() }
            else if key.is("datasetID") { try seen.mark(1); datasetID = try string() }
            else if key.is("externalID") { try seen.mark(2); externalID = try optionalString() }
            else if key.is("input") { try seen.mark(3); input = try string() }
            else if key.is("expectedOutput") { try seen.mark(4); expectedOutput = try optionalString() }
            else if key.is("metadata") { try seen.mark(5); metadata = try optionalString() }
            else if key.is("createdUs") { try seen.mark(6); createdUs = try int64() }
            else { try skipValue() }
        }
        return DatasetItemRow(id: try required(id), datasetID: try required(datasetID), externalID: externalID, input: try required(input),
                              expectedOutput: expectedOutput, metadata: metadata, createdUs: try required(createdUs))
    }

    mutating func trace() throws(Bail) -> TraceRow {
        try expect(UInt8(ascii: "{"))
        var seen = Seen()
        var id: String?, name: String?, kind: String?, input: String?, output: String?, metadata: String?
        var startedUs: Int64?, endedUs: Int64?
        var first = true
        while let key = try nextKey(&first) {
            if key.is("id") { try seen.mark(0); id = try string() }
            else if key.is("name") { try seen.mark(1); name = try string() }
            else if key.is("kind") { try seen.mark(2); kind = try string() }
            else if key.is("input") { try seen.mark(3); input = try optionalString() }
            else if key.is("output") { try seen.mark(4); output = try optionalString() }
            else if key.is("metadata") { try seen.mark(5); metadata = try optionalString() }
            else if key.is("startedUs") { try seen.mark(6); startedUs = try int64() }
            else if key.is("endedUs") { try seen.mark(7); endedUs = try optionalInt64() }
            else { try skipValue() }
        }
        return TraceRow(id: try required(id), name: try required(name), kind: try required(kind), input: input, output: output,
                        metadata: metadata, startedUs: try required(startedUs), endedUs: endedUs)
    }

    mutating func observation() throws(Bail) -> ObservationRow {
        try expect(UInt8(ascii: "{"))
        var seen = Seen()
        var id: String?, traceID: String?, parentID: String?, kind: String?, name: String?, input: String?, output: String?
        var metadata: String?, model: String?, modelParameters: String?, promptTokens: Int?, completionTokens: Int?
        var totalTokens: Int?, cost: Double?, level: String?, statusMessage: String?, startedUs: Int64?, endedUs: Int64?
        var first = true
        while let key = try nextKey(&first) {
            if key.is("id") { try seen.mark(0); id = try string() }
            else if key.is("traceID") { try seen.mark(1); traceID = try string() }
            else if key.is("parentID") { try seen.mark(2); parentID = try optionalString() }
            else if key.is("kind") { try seen.mark(3); kind = try string() }
            else if key.is("name") { try seen.mark(4); name = try string() }
            else if key.is("input") { try seen.mark(5); input = try optionalString() }
            else if key.is("output") { try seen.mark(6); output = try optionalString() }
            else if key.is("metadata") { try seen.mark(7); metadata = try optionalString() }
            else if key.is("model") { try seen.mark(8); model = try optionalString() }
            else if key.is("modelParameters") { try seen.mark(9); modelParameters = try optionalString() }
            else if key.is("promptTokens") { try seen.mark(10); promptTokens = try optionalInt() }
            else if key.is("completionTokens") { try seen.mark(11); completionTokens = try optionalInt() }
            else if key.is("totalTokens") { try seen.mark(12); totalTokens = try optionalInt() }
            else if key.is("cost") { try seen.mark(13); cost = try optionalDouble() }
            else if key.is("level") { try seen.mark(14); level = try string() }
            else if key.is("statusMessage") { try seen.mark(15); statusMessage = try optionalString() }
            else if key.is("startedUs") { try seen.mark(16); startedUs = try int64() }
            else if key.is("endedUs") { try seen.mark(17); endedUs = try optionalInt64() }
            else { try skipValue() }
        }
        return ObservationRow(id: try required(id), traceID: try required(traceID), parentID: parentID, kind: try required(kind),
                              name: try required(name), input: input, output: output, metadata: metadata, model: model,
                              modelParameters: modelParameters, promptTokens: promptTokens, completionTokens: completionTokens,
                              totalTokens: totalTokens, cost: cost, level: try required(level), statusMessage: statusMessage,
                              startedUs: try required(startedUs), endedUs: endedUs)
    }

    mutating func runItem() throws(Bail) -> RunItemRow {
        try expect(UInt8(ascii: "{"))
        var seen = Seen()
        var id: String?, datasetItemID: String?, repetition: Int?, input: String?, expectedOutput: String?, metadata: String?
        var output: String?, error: String?, latencyMs: Double?, attempts: Int?, generations: Int?, promptTokens: Int?
        var completionTokens: Int?, totalTokens: Int?, cost: Double?, traceID: String?, startedUs: Int64?
        var first = true
        while let key = try nextKey(&first) {
            if key.is("id") { try seen.mark(0); id = try string() }
            else if key.is("datasetItemID") { try seen.mark(1); datasetItemID = try optionalString() }
            else if key.is("repetition") { try seen.mark(2); repetition = try int() }
            else if key.is("input") { try seen.mark(3); input = try optionalString() }
            else if key.is("expectedOutput") { try seen.mark(4); expectedOutput = try optionalString() }
            else if key.is("metadata") { try seen.mark(5); metadata = try optionalString() }
            else if key.is("output") { try seen.mark(6); output = try optionalString() }
            else if key.is("error") { try seen.mark(7); error = try optionalString() }
            else if key.is("latencyMs") { try seen.mark(8); latencyMs = try double() }
            else if key.is("attempts") { try seen.mark(9); attempts = try int() }
            else if key.is("generations") { try seen.mark(10); generations = try int() }
            else if key.is("promptTokens") { try seen.mark(11); promptTokens = try int() }
            else if key.is("completionTokens") { try seen.mark(12); completionTokens = try int() }
            else if key.is("totalTokens") { try seen.mark(13); totalTokens = try int() }
            else if key.is("cost") { try seen.mark(14); cost = try optionalDouble() }
            else if key.is("traceID") { try seen.mark(15); traceID = try optionalString() }
            else if key.is("startedUs") { try seen.mark(16); startedUs = try int64() }
            else { try skipValue() }
        }
        return RunItemRow(id: try required(id), datasetItemID: datasetItemID, repetition: try required(repetition), input: input,
                          expectedOutput: expectedOutput, metadata: metadata, output: output, error: error,
                          latencyMs: try required(latencyMs), attempts: try required(attempts), generations: try required(generations),
                          promptTokens: try required(promptTokens), completionTokens: try required(completionTokens),
                          totalTokens: try required(totalTokens), cost: cost, traceID: traceID, startedUs: try required(startedUs))
    }

    mutating func score() throws(Bail) -> ScoreRow {
        try expect(UInt8(ascii: "{"))
        var seen = Seen()
        var id: String?, runItemID: String?, traceID: String?, observationID: String?, name: String?, dataType: String?
        var value: Double?, stringValue: String?, comment: String?, source: String?, evaluator: String?, createdUs: Int64?
        var first = true
        while let key = try nextKey(&first) {
            if key.is("id") { try seen.mark(0); id = try string() }
            else if key.is("runItemID") { try seen.mark(1); runItemID = try optionalString() }
            else if key.is("traceID") { try seen.mark(2); traceID = try optionalString() }
            else if key.is("observationID") { try seen.mark(3); observationID = try optionalString() }
            else if key.is("name") { try seen.mark(4); name = try string() }
            else if key.is("dataType") { try seen.mark(5); dataType = try string() }
            else if key.is("value") { try seen.mark(6); value = try optionalDouble() }
            else if key.is("stringValue") { try seen.mark(7); stringValue = try optionalString() }
            else if key.is("comment") { try seen.mark(8); comment = try optionalString() }
            else if key.is("source") { try seen.mark(9); source = try string() }
            else if key.is("evaluator") { try seen.mark(10); evaluator = try optionalString() }
            else if key.is("createdUs") { try seen.mark(11); createdUs = try int64() }
            else { try skipValue() }
        }
        return ScoreRow(id: try required(id), runItemID: runItemID, traceID: traceID, observationID: observationID,
                        name: try required(name), dataType: try required(dataType), value: value, stringValue: stringValue,
                        comment: comment, source: try required(source), evaluator: evaluator, createdUs: try required(createdUs))
    }
}
