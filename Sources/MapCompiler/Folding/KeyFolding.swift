/// How lookup keys are folded to their case-insensitive form.
///
/// Postfix folds every key it writes, queries or deletes (unless `-f`). With UTF-8 handling
/// on (`smtputf8_enable = yes` and no `-u`) a key gets full Unicode case folding (ICU's
/// default folding: CaseFolding.txt status C and F, so `ß` becomes `ss` and `İ` becomes
/// `i` + U+0307); with it off, only `A`–`Z` are lowered and every other byte is kept.
public enum KeyFolding: Sendable, Equatable {
    /// Keys are stored and looked up exactly as written (`-f`).
    case none
    /// ASCII-only lowercasing (`-u`, or `smtputf8_enable = no`).
    case ascii
    /// Full Unicode case folding of UTF-8 keys.
    case unicode

    /// Folds `key`. A key handed to `.unicode` must be valid UTF-8 (callers check lines
    /// first); an invalid sequence is copied through unchanged.
    public func fold(_ key: [UInt8]) -> [UInt8] {
        switch self {
        case .none:
            return key
        case .ascii:
            return asciiLowercased(key)
        case .unicode:
            return asciiLowercased(key, unlessNonASCII: true) ?? unicodeFolded(key)
        }
    }
}

/// `key` with `A`–`Z` lowered and every other byte kept.
func asciiLowercased(_ key: [UInt8]) -> [UInt8] {
    asciiLowercased(key, unlessNonASCII: false) ?? key
}

/// `key` with `A`–`Z` lowered, in one pass and without a copy when nothing changes; `nil`
/// when `unlessNonASCII` and the key has a byte from 0x80 (it needs Unicode folding).
private func asciiLowercased(_ key: [UInt8], unlessNonASCII: Bool) -> [UInt8]? {
    let first: Int? = key.withUnsafeBufferPointer { bytes in
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte &- 0x41 < 26 || (unlessNonASCII && byte >= 0x80) { return index }
            index += 1
        }
        return nil
    }
    guard let first else { return key }
    var folded = key
    let complete = folded.withUnsafeMutableBufferPointer { bytes in
        for index in first..<bytes.count {
            let byte = bytes[index]
            if unlessNonASCII && byte >= 0x80 { return false }
            if byte &- 0x41 < 26 { bytes[index] = byte | 0x20 }
        }
        return true
    }
    return complete ? folded : nil
}

private func unicodeFolded(_ key: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(key.count + 4)
    var i = 0
    while i < key.count {
        let byte = key[i]
        if byte < 0x80 {
            out.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
            i += 1
            continue
        }
        guard let (scalar, length) = decodeUTF8Scalar(key, at: i) else {
            out.append(byte)
            i += 1
            continue
        }
        if let index = caseFoldingIndex(of: scalar) {
            appendUTF8(caseFoldingTargets0[index], to: &out)
            if caseFoldingTargets1[index] != 0 { appendUTF8(caseFoldingTargets1[index], to: &out) }
            if caseFoldingTargets2[index] != 0 { appendUTF8(caseFoldingTargets2[index], to: &out) }
        } else {
            out.append(contentsOf: key[i..<(i + length)])
        }
        i += length
    }
    return out
}

private func caseFoldingIndex(of scalar: UInt32) -> Int? {
    var low = 0
    var high = caseFoldingSources.count - 1
    while low <= high {
        let mid = (low + high) / 2
        let value = caseFoldingSources[mid]
        if value == scalar { return mid }
        if value < scalar { low = mid + 1 } else { high = mid - 1 }
    }
    return nil
}

/// Decodes one well-formed UTF-8 sequence starting at `index`.
func decodeUTF8Scalar(_ bytes: [UInt8], at index: Int) -> (UInt32, Int)? {
    let length = validUTF8SequenceLength(bytes, at: index)
    guard length > 0 else { return nil }
    let lead = UInt32(bytes[index])
    switch length {
    case 1:
        return (lead, 1)
    case 2:
        return ((lead & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F), 2)
    case 3:
        return (
            (lead & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6
                | UInt32(bytes[index + 2] & 0x3F), 3
        )
    default:
        return (
            (lead & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12
                | UInt32(bytes[index + 2] & 0x3F) << 6 | UInt32(bytes[index + 3] & 0x3F), 4
        )
    }
}

private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | (scalar >> 6)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | (scalar >> 12)))
        out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    default:
        out.append(UInt8(0xF0 | (scalar >> 18)))
        out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    }
}
