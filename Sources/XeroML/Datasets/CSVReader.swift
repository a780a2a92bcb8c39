/// A strict RFC 4180 reader: comma-separated fields, double-quoted fields may hold commas, quotes
/// (doubled) and line breaks; records end with LF or CRLF.
struct CSVReader {
    /// One record and the 1-based line where it starts.
    struct Record {
        var line: Int
        var fields: [String]
    }

    struct Failure: Error {
        var line: Int
        var reason: String
    }

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1

    init(_ bytes: [UInt8]) {
        var bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        self.bytes = bytes
    }

    /// The next record, or `nil` at the end. Blank lines are skipped.
    mutating func next() throws(Failure) -> Record? {
        while index < bytes.count, bytes[index] == 0x0A || bytes[index] == 0x0D {
            if bytes[index] == 0x0A { line += 1 }
            index += 1
        }
        guard index < bytes.count else { return nil }
        let start = line
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var wasQuoted = false
        while true {
            guard index < bytes.count else {
                if quoted { throw Failure(line: start, reason: "a quoted field is not closed") }
                fields.append(try decode(field, line: start))
                return Record(line: start, fields: fields)
            }
            let byte = bytes[index]
            index += 1
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                        field.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if byte == 0x0A { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: ","):
                fields.append(try decode(field, line: start))
                field = []
                wasQuoted = false
            case UInt8(ascii: "\""):
                guard field.isEmpty, !wasQuoted else {
                    throw Failure(line: line, reason: "a quote inside an unquoted field (quote the whole field and double the quote)")
                }
                quoted = true
                wasQuoted = true
            case 0x0D where index < bytes.count && bytes[index] == 0x0A:
                continue
            case 0x0A:
                line += 1
                fields.append(try decode(field, line: start))
                return Record(line: start, fields: fields)
            default:
                if wasQuoted { throw Failure(line: line, reason: "text after a closing quote") }
                field.append(byte)
            }
        }
    }

    private func decode(_ field: [UInt8], line: Int) throws(Failure) -> String {
        guard let text = String(validating: field, as: UTF8.self) else {
            throw Failure(line: line, reason: "invalid UTF-8")
        }
        return text
    }
}
