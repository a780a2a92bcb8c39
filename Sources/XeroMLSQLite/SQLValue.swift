/// A value SQLite can store: the five storage classes (https://www.sqlite.org/datatype3.html).
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The value as a string when it is text, else `nil`.
    public var text: String? { if case .text(let s) = self { s } else { nil } }
    /// The value as an integer when it is an integer, else `nil`.
    public var integer: Int64? { if case .integer(let i) = self { i } else { nil } }
    /// The value as a double when it is a number, else `nil`.
    public var real: Double? {
        switch self {
        case .real(let d): d
        case .integer(let i): Double(i)
        default: nil
        }
    }
    public var isNull: Bool { if case .null = self { true } else { false } }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension SQLValue {
    /// `.text(value)` or `.null`.
    public static func text(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    /// `.integer(value)` or `.null`.
    public static func integer(_ value: Int?) -> SQLValue { value.map { .integer(Int64($0)) } ?? .null }
    /// `.real(value)` or `.null`.
    public static func real(_ value: Double?) -> SQLValue { value.map(SQLValue.real) ?? .null }
}
