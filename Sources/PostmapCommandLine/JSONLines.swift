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
