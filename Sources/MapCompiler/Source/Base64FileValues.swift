/// postmap `-F`: a value is a list of file names (separated by commas or whitespace); the
/// entry stores the base64 encoding of the files' contents, joined with one newline between
/// files. Relative names are relative to the current directory.
struct Base64FileValues {
    let source: String

    func encodedValue(_ value: [UInt8], lineNumber: Int) -> Result<[UInt8], Diagnostic> {
        let names = value.split(whereSeparator: { $0 == UInt8(ascii: ",") || isCSpace($0) })
        var content: [UInt8] = []
        for (index, name) in names.enumerated() {
            let path = String(decoding: name, as: UTF8.self)
            switch readWholeFile(path) {
            case .success(let bytes):
                if index > 0 { content.append(0x0A) }
                content.append(contentsOf: bytes)
            case .failure(let error):
                return .failure(
                    Diagnostic(
                        .warning, "\(source), line \(lineNumber): open \(path): \(error.text): skipping this entry"))
            }
        }
        return .success(base64Encoded(content))
    }
}

private let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

/// Standard base64 with `=` padding and no line breaks.
func base64Encoded(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out.append(base64Alphabet[Int(n >> 18 & 63)])
        out.append(base64Alphabet[Int(n >> 12 & 63)])
        out.append(base64Alphabet[Int(n >> 6 & 63)])
        out.append(base64Alphabet[Int(n & 63)])
        i += 3
    }
    let rest = bytes.count - i
    if rest > 0 {
        let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
        out.append(base64Alphabet[Int(n >> 18 & 63)])
        out.append(base64Alphabet[Int(n >> 12 & 63)])
        out.append(rest == 2 ? base64Alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
        out.append(UInt8(ascii: "="))
    }
    return out
}

/// Decodes standard base64; `nil` when the text is not valid base64.
func base64Decoded(_ text: [UInt8]) -> [UInt8]? {
    var values: [UInt8] = []
    values.reserveCapacity(text.count)
    var padding = 0
    for byte in text {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - 65)
        case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - 71)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte + 4)
        case UInt8(ascii: "+"): values.append(62)
        case UInt8(ascii: "/"): values.append(63)
        case UInt8(ascii: "="):
            padding += 1
            continue
        default: return nil
        }
        if padding > 0 { return nil }
    }
    guard (values.count + padding) % 4 == 0, padding <= 2 else { return nil }
    var out: [UInt8] = []
    var i = 0
    while i + 4 <= values.count {
        let n =
            UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6 | UInt32(values[i + 3])
        out.append(UInt8(n >> 16 & 255))
        out.append(UInt8(n >> 8 & 255))
        out.append(UInt8(n & 255))
        i += 4
    }
    let rest = values.count - i
    if rest == 2 {
        out.append(values[i] << 2 | values[i + 1] >> 4)
    } else if rest == 3 {
        out.append(values[i] << 2 | values[i + 1] >> 4)
        out.append(values[i + 1] << 4 | values[i + 2] >> 2)
    }
    return out
}
