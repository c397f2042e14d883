/// UTF-8 well-formedness as RFC 3629 defines it (and as Postfix checks it): no overlong
/// forms, no surrogates, nothing above U+10FFFF, and correct continuation bytes.

/// The length of the well-formed sequence at `index`, or 0 when it is not well formed.
func validUTF8SequenceLength(_ bytes: [UInt8], at index: Int) -> Int {
    let b0 = bytes[index]
    if b0 < 0x80 { return 1 }
    let count = bytes.count
    @inline(__always) func cont(_ i: Int) -> Bool { i < count && bytes[i] & 0xC0 == 0x80 }
    switch b0 {
    case 0xC2...0xDF:
        return cont(index + 1) ? 2 : 0
    case 0xE0:
        guard index + 1 < count, (0xA0...0xBF).contains(bytes[index + 1]), cont(index + 2) else { return 0 }
        return 3
    case 0xED:
        guard index + 1 < count, (0x80...0x9F).contains(bytes[index + 1]), cont(index + 2) else { return 0 }
        return 3
    case 0xE1...0xEC, 0xEE...0xEF:
        return cont(index + 1) && cont(index + 2) ? 3 : 0
    case 0xF0:
        guard index + 1 < count, (0x90...0xBF).contains(bytes[index + 1]), cont(index + 2), cont(index + 3)
        else { return 0 }
        return 4
    case 0xF1...0xF3:
        return cont(index + 1) && cont(index + 2) && cont(index + 3) ? 4 : 0
    case 0xF4:
        guard index + 1 < count, (0x80...0x8F).contains(bytes[index + 1]), cont(index + 2), cont(index + 3)
        else { return 0 }
        return 4
    default:
        return 0
    }
}

/// `true` when every byte is ASCII.
@inline(__always)
func isASCII<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
    // Contiguous bytes (every caller's case) are tested eight at a time.
    if let answer = bytes.withContiguousStorageIfAvailable({ isASCII(UnsafeRawBufferPointer($0)) }) { return answer }
    return bytes.allSatisfy { $0 < 0x80 }
}

/// `true` when every byte is ASCII; eight bytes at a time.
func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    var index = 0
    var high: UInt64 = 0
    while index + 8 <= bytes.count {
        high |= base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        index += 8
    }
    while index < bytes.count {
        high |= UInt64(base.load(fromByteOffset: index, as: UInt8.self))
        index += 1
    }
    return high & 0x8080_8080_8080_8080 == 0
}

/// `true` when `bytes` is well-formed UTF-8 throughout.
func isValidUTF8(_ bytes: [UInt8]) -> Bool { firstInvalidUTF8Offset(bytes) == nil }

/// The offset of the first byte that is not part of a well-formed UTF-8 sequence.
func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
    var i = 0
    while i < bytes.count {
        if bytes[i] < 0x80 {
            i += 1
            continue
        }
        let length = validUTF8SequenceLength(bytes, at: i)
        if length == 0 { return i }
        i += length
    }
    return nil
}

/// ASCII `isspace` in the C locale: space, tab, newline, vertical tab, form feed, return.
@inline(__always)
func isCSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
}
