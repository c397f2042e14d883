import Glibc

/// Turning a logical line of a postmap source into an entry (key and value).

/// One key/value pair read from a source, before folding.
struct Entry: Sendable, Equatable {
    var key: [UInt8]
    var value: [UInt8]
    /// The first physical line of the logical line it came from.
    var lineNumber: Int

    init(key: [UInt8], value: [UInt8], lineNumber: Int) {
        self.key = key
        self.value = value
        self.lineNumber = lineNumber
    }
}

/// What parsing a logical line gave.
enum ParseOutcome: Sendable, Equatable {
    /// An entry to store, with a warning to print first when there is one.
    case entry(Entry, warning: Diagnostic?)
    /// The line is skipped; the warning says why.
    case skipped(Diagnostic)
    /// The line is skipped without a message.
    case ignored
}

/// The checks every table format makes before it splits a logical line: the leading
/// whitespace rule, truncation at the first NUL byte and (in UTF-8 mode) well-formedness.
/// Returns the bytes to split, or the reason the line is skipped.
func prepareLogicalLine(
    _ line: LogicalLine, source: String, checkUTF8: Bool
)
    -> Result<[UInt8], Diagnostic>
{
    if line.startsWithWhitespace {
        return .failure(leadingWhitespaceWarning(source: source, line: line))
    }
    var text = line.text
    let firstNUL = text.withUnsafeBytes { bytes -> Int? in
        guard let base = bytes.baseAddress, let found = memchr(base, 0, bytes.count) else { return nil }
        return UnsafeRawPointer(found) - base
    }
    if let nul = firstNUL {
        // C-string semantics: the rest is never seen. The UTF-8 check covers the whole
        // buffer only when the part before the NUL is not plain ASCII.
        if checkUTF8, !isASCII(text[..<nul]), !isValidUTF8(text) {
            return .failure(nonUTF8Warning(source: source, line: line, shown: Array(text[..<nul])))
        }
        text.removeSubrange(nul...)
    } else if checkUTF8, !isASCII(text), !isValidUTF8(text) {
        return .failure(nonUTF8Warning(source: source, line: line, shown: text))
    }
    return .success(text)
}

private func nonUTF8Warning(source: String, line: LogicalLine, shown: [UInt8]) -> Diagnostic {
    var text = Array("\(source), line \(line.lineNumber): non-UTF-8 input \"".utf8)
    text.append(contentsOf: shown)
    text.append(contentsOf: Array("\" -- ignoring this line".utf8))
    return Diagnostic(.warning, text)
}

/// Splits logical lines of a postmap(1) source: the key is the first whitespace-delimited
/// token (a backslash protects the next byte and double quotes protect whitespace, both kept
/// verbatim in the key), the value is the rest with surrounding whitespace removed.
struct PostmapEntryParser: Sendable {
    /// The name used in messages (the source path as typed, or `stdin`).
    let source: String
    /// Whether lines must be well-formed UTF-8 (UTF-8 mode).
    let checkUTF8: Bool

    init(source: String, checkUTF8: Bool) {
        self.source = source
        self.checkUTF8 = checkUTF8
    }

    func parse(_ line: LogicalLine) -> ParseOutcome {
        let text: [UInt8]
        switch prepareLogicalLine(line, source: source, checkUTF8: checkUTF8) {
        case .failure(let warning): return .skipped(warning)
        case .success(let bytes): text = bytes
        }
        let split = splitPostmapLine(text)
        let keyEnd = split.keyEnd
        let valueStart = split.valueStart
        let end = split.end
        if split.unbalancedQuote != nil {
            var message = Array("\(source), line \(line.lineNumber): unbalanced '\"' in '".utf8)
            message.append(contentsOf: text)  // the line as read, trailing whitespace included
            message.append(contentsOf: Array("' -- ignoring this line".utf8))
            return .skipped(Diagnostic(.warning, message))
        }
        if keyEnd == 0 || valueStart >= end {
            return .skipped(
                Diagnostic(.warning, "\(source), line \(line.lineNumber): expected format: key whitespace value"))
        }
        let key = Array(text[..<keyEnd])
        let entry = Entry(key: key, value: Array(text[valueStart..<end]), lineNumber: line.lineNumber)
        if key.last == UInt8(ascii: ":") {
            return .entry(
                entry,
                warning: Diagnostic(
                    .warning,
                    "\(source), line \(line.lineNumber): record is in \"key: value\" format; is this an alias file?"))
        }
        return .entry(entry, warning: nil)
    }
}

/// Where postmap splits a logical line (already cut at its first NUL).
struct PostmapLineSplit: Equatable {
    /// The key is `0..<keyEnd`.
    var keyEnd: Int
    /// The value is `valueStart..<end` (empty when there is none).
    var valueStart: Int
    /// The end of the line without its trailing whitespace.
    var end: Int
    /// The offset of the `"` that opened an unclosed quote, if any.
    var unbalancedQuote: Int?

    var hasValue: Bool { keyEnd > 0 && valueStart < end }
}

/// The key is the bytes up to the first whitespace that is neither inside double quotes nor
/// escaped by a backslash; the value is the rest without surrounding whitespace.
func splitPostmapLine(_ text: [UInt8]) -> PostmapLineSplit {
    text.withUnsafeBufferPointer { bytes in
        var end = bytes.count
        while end > 0 && isCSpace(bytes[end - 1]) { end -= 1 }
        var openQuote = -1
        var i = 0
        while i < end {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\\") {
                if i + 1 >= end {
                    i = end
                    break
                }
                i += 2
                continue
            }
            if openQuote < 0 && isCSpace(byte) { break }
            if byte == UInt8(ascii: "\"") { openQuote = openQuote < 0 ? i : -1 }
            i += 1
        }
        let keyEnd = min(i, end)
        var valueStart = keyEnd
        while valueStart < end && isCSpace(bytes[valueStart]) { valueStart += 1 }
        return PostmapLineSplit(
            keyEnd: keyEnd, valueStart: valueStart, end: end, unbalancedQuote: openQuote < 0 ? nil : openQuote)
    }
}
