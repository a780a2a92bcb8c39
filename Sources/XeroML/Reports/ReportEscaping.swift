/// Escaping of untrusted text (inputs, outputs, expected outputs, run and score names, error
/// messages) for each report format: one function per format, and every report writer of XeroML
/// goes through it. See docs/comparison.md#reports.
///
/// Characters that would change how a report displays are never passed through raw: control
/// characters (C0, DEL, C1) and the invisible formatting characters that reorder or hide text
/// (bidirectional overrides and isolates, zero-width characters, the byte-order mark) are written
/// visibly, as `\x1B` or `\u{202E}`.
public enum ReportEscaping {
    /// Text for one Markdown table cell or an inline run of Markdown (a heading, a list item).
    ///
    /// The result renders as the literal text and stays on one line: `|`, backslash, backtick and
    /// the emphasis, link and math characters are backslash-escaped; `&`, `<` and `>` become
    /// entities, so no HTML gets through; line breaks become `<br>`; a leading `#`, `>`, `-`, `+`,
    /// `=` or `1.` cannot start a heading, quote or list.
    public static func markdown(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var atStart = true
        var digitsOnly = true  // nothing but digits so far (a "1." would start a list)
        var previous: Unicode.Scalar?
        let scalars = Array(text.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            defer { previous = scalar }
            // "1." or "1)" followed by a space (or nothing) would open an ordered list.
            let listMarker = digitsOnly && !out.isEmpty && (index + 1 == scalars.count || scalars[index + 1] == " ")
            switch scalar {
            case "\n" where previous == "\r":
                continue  // \r\n is one break
            case "\n", "\r", "\u{2028}", "\u{2029}":
                out += "<br>"
                atStart = false
                continue
            case "\t":
                out += " "
                continue
            default: break
            }
            if let visible = visible(scalar) {
                out += visible.replacingBackslashes()
            } else {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\\", "|", "`", "*", "_", "[", "]", "~", "$", "!": out += "\\" + String(scalar)
                case "#" where atStart, "-" where atStart, "+" where atStart, "=" where atStart:
                    out += "\\" + String(scalar)
                case "." where listMarker, ")" where listMarker:
                    out += "\\" + String(scalar)
                default: out.unicodeScalars.append(scalar)
                }
            }
            if scalar != " " { atStart = false }
            if !("0"..."9").contains(scalar) { digitsOnly = false }
        }
        return out
    }

    /// Text for a terminal: every control character and escape sequence is shown visibly (`\x1B[2J`
    /// prints as those five characters and clears nothing), newlines and tabs included (`\n`, `\t`),
    /// so one value stays on one line.
    public static func terminal(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if let visible = visible(scalar) { out += visible } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// Text for XML, valid both as an attribute value and as element content: `& < > " '` become
    /// entities, newlines, carriage returns and tabs character references (`&#10;`, so attribute
    /// values keep them instead of having them normalized to spaces), and the characters XML 1.0
    /// cannot carry at all (other C0 controls, U+FFFE, U+FFFF) are written visibly, as are DEL, C1
    /// controls and the invisible formatting characters.
    public static func xml(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            case "\t": out += "&#9;"
            default:
                if let visible = visible(scalar) {
                    out += visible
                } else if scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// The visible form of a character that must not reach a report raw, or `nil` for any other.
    static func visible(_ scalar: Unicode.Scalar) -> String? {
        let v = scalar.value
        if v < 0x20 || (0x7F...0x9F).contains(v) {
            let hex = String(v, radix: 16, uppercase: true)
            return "\\x" + (hex.count < 2 ? "0" + hex : hex)
        }
        if isInvisibleFormatting(v) { return "\\u{\(String(v, radix: 16, uppercase: true))}" }
        return nil
    }

    /// Bidirectional marks, embeddings, overrides and isolates, zero-width characters, the word
    /// joiner family and the byte-order mark: characters that change or hide how text reads.
    static func isInvisibleFormatting(_ v: UInt32) -> Bool {
        v == 0x061C || v == 0x180E || (0x200B...0x200F).contains(v) || (0x202A...0x202E).contains(v)
            || (0x2060...0x2069).contains(v) || v == 0xFEFF || (0xFFF9...0xFFFB).contains(v)
    }
}

extension String {
    fileprivate func replacingBackslashes() -> String {
        var out = ""
        for character in self { if character == "\\" { out += "\\\\" } else { out.append(character) } }
        return out
    }
}
