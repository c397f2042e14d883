import Glibc

/// Reading a source file into logical lines, the way Postfix's table readers do.
///
/// * Only `\n` ends a physical line; a final line without one still counts.
/// * A physical line is *ignorable* when it is empty, all whitespace, or its first
///   non-whitespace byte is `#`. Ignorable lines are dropped wherever they stand.
/// * A line that starts with whitespace continues the logical line before it (comment and
///   blank lines in between do not end it); the newline is dropped and the continuation's
///   leading whitespace is kept.
/// * A logical line reports the number of its first physical line.

/// One logical line of a source file.
struct LogicalLine: Sendable, Equatable {
    /// The joined bytes, without newlines.
    var text: [UInt8]
    /// The number of the first physical line (counting from 1).
    var lineNumber: Int

    init(text: [UInt8], lineNumber: Int) {
        self.text = text
        self.lineNumber = lineNumber
    }

    /// `true` for a logical line that begins with whitespace, which is only possible for the
    /// first line of a file; Postfix skips such a line with a warning.
    var startsWithWhitespace: Bool { text.first.map(isCSpace) ?? false }
}

/// Splits source bytes into logical lines.
struct LogicalLineReader: Sequence, IteratorProtocol {
    private let bytes: [UInt8]
    private var position = 0
    private var physicalLine = 0
    /// How many bytes the lines returned so far took (their newlines and the comments and
    /// blank lines among them included).
    var bytesConsumed: Int { position }
    /// When set, ``segments`` tells where each physical line of the last logical line starts.
    var recordsSegments = false
    /// For the logical line last returned: (offset in its text, physical line number) of
    /// every physical line joined into it (only with ``recordsSegments``).
    private(set) var segments: [(offset: Int, line: Int)] = []

    /// - Parameters:
    ///   - bytes: whole logical lines.
    ///   - linesBefore: physical lines that come before `bytes` in the source, so that line
    ///     numbers count from the start of the source.
    init(bytes: [UInt8], linesBefore: Int = 0) {
        self.bytes = bytes
        self.physicalLine = linesBefore
    }

    mutating func next() -> LogicalLine? {
        var current: [UInt8]? = nil
        var firstLine = 0
        let count = bytes.count
        if recordsSegments { segments.removeAll(keepingCapacity: true) }
        while position < count {
            if current != nil {
                let peek = bytes[position]
                if !(isCSpace(peek) || peek == UInt8(ascii: "#")) { break }
            }
            let start = position
            let end = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress, let found = memchr(base + start, 0x0A, count - start) else {
                    return count
                }
                return UnsafeRawPointer(found) - base
            }
            position = end < count ? end + 1 : end
            physicalLine += 1
            if isIgnorable(start, end) { continue }
            if recordsSegments { segments.append((current?.count ?? 0, physicalLine)) }
            if current == nil {
                current = Array(bytes[start..<end])
                firstLine = physicalLine
            } else {
                current?.append(contentsOf: bytes[start..<end])
            }
        }
        guard let text = current else { return nil }
        return LogicalLine(text: text, lineNumber: firstLine)
    }

    private func isIgnorable(_ start: Int, _ end: Int) -> Bool {
        var i = start
        while i < end && isCSpace(bytes[i]) { i += 1 }
        return i == end || bytes[i] == UInt8(ascii: "#")
    }
}

/// The warning for a logical line that starts with whitespace: the first 30 bytes, then
/// `...` when there were more. It names the source but carries no line number.
func leadingWhitespaceWarning(source: String, line: LogicalLine) -> Diagnostic {
    let shown = line.text.prefix(30)
    var text = Array("\(source): logical line must not start with whitespace: \"".utf8)
    text.append(contentsOf: shown)
    if line.text.count > 30 { text.append(contentsOf: Array("...".utf8)) }
    text.append(UInt8(ascii: "\""))
    return Diagnostic(.warning, text)
}
