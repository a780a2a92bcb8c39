public import Foundation

/// A JSON writer for sync chunks, byte for byte what `JSONDecoder` reads back as the same
/// ``SyncChunk``; about ten times faster than `JSONEncoder` on chunks, which matters at 100,000-item
/// runs. Keys are the Codable property names; `nil` fields are left out; non-finite numbers (which
/// JSON cannot hold) are written as `null`.
struct JSONBytes {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    private var needsComma = false

    mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma = false }
    mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    mutating func beginArray(_ key: String) { self.key(key); bytes.append(UInt8(ascii: "[")); needsComma = false }
    mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma = true }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func key(_ key: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: key.utf8)  // keys are ASCII identifiers
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    mutating func field(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
        needsComma = true
    }

    mutating func field(_ name: String, _ value: Int?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: String(value).utf8)
        needsComma = true
    }

    mutating func field(_ name: String, _ value: Int64?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: String(value).utf8)
        needsComma = true
    }

    mutating func field(_ name: String, _ value: Double?) {
        guard let value else { return }
        key(name)
        if value.isFinite {
            bytes.append(contentsOf: value.description.utf8)
        } else {
            bytes.append(contentsOf: "null".utf8)
        }
        needsComma = true
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            for (i, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              Self.hex[Int(byte >> 4)], Self.hex[Int(byte & 0xF)]])
                }
                start = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension SyncChunk {
    /// The chunk as JSON, decodable with `JSONDecoder` into an equal chunk.
    public func jsonData() -> Data {
        var w = JSONBytes(capacity: 64 * 1024)
        w.beginObject()
        w.field("runID", runID)
        w.field("index", index)
        w.beginArray("datasetItems")
        for row in datasetItems {
            w.beginObject()
            w.field("id", row.id)
            w.field("datasetID", row.datasetID)
            w.field("externalID", row.externalID)
            w.field("input", row.input)
            w.field("expectedOutput", row.expectedOutput)
            w.field("metadata", row.metadata)
            w.field("createdUs", row.createdUs)
            w.endObject()
        }
        w.endArray()
        w.beginArray("traces")
        for row in traces {
            w.beginObject()
            w.field("id", row.id)
            w.field("name", row.name)
            w.field("kind", row.kind)
            w.field("input", row.input)
            w.field("output", row.output)
            w.field("metadata", row.metadata)
            w.field("startedUs", row.startedUs)
            w.field("endedUs", row.endedUs)
            w.endObject()
        }
        w.endArray()
        w.beginArray("observations")
        for row in observations {
            w.beginObject()
            w.field("id", row.id)
            w.field("traceID", row.traceID)
            w.field("parentID", row.parentID)
            w.field("kind", row.kind)
            w.field("name", row.name)
            w.field("input", row.input)
            w.field("output", row.output)
            w.field("metadata", row.metadata)
            w.field("model", row.model)
            w.field("modelParameters", row.modelParameters)
            w.field("promptTokens", row.promptTokens)
            w.field("completionTokens", row.completionTokens)
            w.field("totalTokens", row.totalTokens)
            w.field("cost", row.cost)
            w.field("level", row.level)
            w.field("statusMessage", row.statusMessage)
            w.field("startedUs", row.startedUs)
            w.field("endedUs", row.endedUs)
            w.endObject()
        }
        w.endArray()
        w.beginArray("runItems")
        for row in runItems {
            w.beginObject()
            w.field("id", row.id)
            w.field("datasetItemID", row.datasetItemID)
            w.field("repetition", row.repetition)
            w.field("input", row.input)
            w.field("expectedOutput", row.expectedOutput)
            w.field("metadata", row.metadata)
            w.field("output", row.output)
            w.field("error", row.error)
            w.field("latencyMs", row.latencyMs)
            w.field("attempts", row.attempts)
            w.field("generations", row.generations)
            w.field("promptTokens", row.promptTokens)
            w.field("completionTokens", row.completionTokens)
            w.field("totalTokens", row.totalTokens)
            w.field("cost", row.cost)
            w.field("traceID", row.traceID)
            w.field("startedUs", row.startedUs)
            w.endObject()
        }
        w.endArray()
        w.beginArray("scores")
        for row in scores {
            w.beginObject()
            w.field("id", row.id)
            w.field("runItemID", row.runItemID)
            w.field("traceID", row.traceID)
            w.field("observationID", row.observationID)
            w.field("name", row.name)
            w.field("dataType", row.dataType)
            w.field("value", row.value)
            w.field("stringValue", row.stringValue)
            w.field("comment", row.comment)
            w.field("source", row.source)
            w.field("evaluator", row.evaluator)
            w.field("createdUs", row.createdUs)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return Data(w.bytes)
    }
}
