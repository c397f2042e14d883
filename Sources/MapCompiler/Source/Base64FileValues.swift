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

/// Decodes base64 as Postfix's `base64_decode` does (`-F` queries and listings): the length
/// must be a multiple of four; each group of four needs two valid characters, and decoding
/// stops (ignoring the rest) at the first `=` in the third or fourth place. `nil` when the
/// text is not valid in that sense.
public func base64Decoded(_ text: [UInt8]) -> [UInt8]? {
    guard text.count % 4 == 0 else { return nil }
    func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - 65
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - 71
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte + 4
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(text.count / 4 * 3)
    var index = 0
    while index < text.count {
        guard let first = sextet(text[index]), let second = sextet(text[index + 1]) else { return nil }
        out.append(first << 2 | second >> 4)
        if text[index + 2] == UInt8(ascii: "=") { break }
        guard let third = sextet(text[index + 2]) else { return nil }
        out.append(second << 4 | third >> 2)
        if text[index + 3] == UInt8(ascii: "=") { break }
        guard let fourth = sextet(text[index + 3]) else { return nil }
        out.append(third << 6 | fourth)
        index += 4
    }
    return out
}
