/// Minimal JSON Lines output: one object per line, fields in insertion order, strings
/// escaped per RFC 8259 (bytes that are not valid UTF-8 become U+FFFD).
struct JSONObject {
    private var fields: [String] = []

    mutating func add(_ name: String, _ value: String) { fields.append("\(quoted(name)):\(quoted(value))") }
    mutating func add(_ name: String, _ value: [UInt8]) { add(name, String(decoding: value, as: UTF8.self)) }
    mutating func add(_ name: String, _ value: Int) { fields.append("\(quoted(name)):\(value)") }
    mutating func add(_ name: String, _ value: Bool) { fields.append("\(quoted(name)):\(value)") }
    mutating func addNull(_ name: String) { fields.append("\(quoted(name)):null") }
    mutating func add(_ name: String, _ values: [String]) {
        fields.append("\(quoted(name)):[\(values.map(quoted).joined(separator: ","))]")
    }
    /// A nested value already in JSON form (an object or an array).
    mutating func add(_ name: String, raw json: String) { fields.append("\(quoted(name)):\(json)") }

    /// The object as text, without a newline.
    var text: String { "{" + fields.joined(separator: ",") + "}" }
    /// The object followed by a newline, as bytes.
    var line: [UInt8] { Array((text + "\n").utf8) }
}

/// A JSON string literal for `text`.
func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// One `-j` line exactly as Postfix 3.11 prints it: `{"KEY": "VALUE"}` and a newline.
///
/// Escaped byte by byte: `"` and `\` get a backslash, backspace, form feed, newline, return
/// and tab their two-letter escapes, every other byte below 0x20 and DEL `\u00XX` in
/// upper-case hex; `/` and bytes from 0x80 up (valid UTF-8 or not) are copied unchanged.
func postfixJSONLine(key: [UInt8], value: [UInt8]) -> [UInt8] {
    var line: [UInt8] = Array("{\"".utf8)
    appendPostfixJSONEscaped(key, to: &line)
    line += Array("\": \"".utf8)
    appendPostfixJSONEscaped(value, to: &line)
    line += Array("\"}\n".utf8)
    return line
}

private func appendPostfixJSONEscaped(_ bytes: [UInt8], to line: inout [UInt8]) {
    let hex = Array("0123456789ABCDEF".utf8)
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): line += [UInt8(ascii: "\\"), byte]
        case 0x08: line += Array("\\b".utf8)
        case 0x0C: line += Array("\\f".utf8)
        case 0x0A: line += Array("\\n".utf8)
        case 0x0D: line += Array("\\r".utf8)
        case 0x09: line += Array("\\t".utf8)
        case 0..<0x20, 0x7F:
            line += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
        default: line.append(byte)
        }
    }
}
