/// postmap's message query modes: `postmap -b|-h [-m] -q - MAP < message` turns a message on
/// standard input into lookup keys, as body_checks(5) and header_checks(5) would see them.
///
/// The rules, as Postfix 3.7's postmap applies them (found by experiment):
///
/// * Input lines end at `\n` (a last line without one counts); nothing else is removed, so a
///   CRLF message gives keys that end in `\r`. There is no line length limit.
/// * A **header** line is a name of one or more bytes `!`…`~` other than `:`, optional
///   spaces or tabs, then `:`. The key drops the whitespace before the colon
///   (`Subject : x` → `Subject: x`). A line starting with a space or tab continues the
///   header before it and is appended after a `\n`; once a header holds
///   `header_size_limit` bytes (as stored: without the whitespace before the colon),
///   further continuation lines are dropped. The first line is never cut.
/// * A header block ends at an empty line or at any other line that is neither a header
///   nor a continuation; that line is a body line. When the *first* (primary) header block
///   ends at a non-empty line, an empty body line is produced first.
/// * Without MIME (`-m`), everything after the primary header block is body.
/// * With MIME, `Content-Type` headers of every header block are parsed (see
///   ``ContentTypeEffect``): `multipart/*` pushes each `boundary` parameter (part headers
///   default to `message/rfc822` under `multipart/digest`), and a block that ends at an
///   empty line with a `message/rfc822` or `message/global` type is followed by the nested
///   message's header block. In the body, a line that starts with `--` and, after that,
///   with a pushed boundary (innermost first, boundaries cut to
///   `mime_boundary_length_limit`, the line longer than two bytes) starts a part's header
///   block, or, when `--` follows the boundary, closes that multipart; boundaries pushed
///   after the matching one are dropped either way. At most `mime_nesting_limit` + 2
///   boundaries are active; further ones are ignored. Boundary lines and the line that ends
///   every header block are body lines; MIME and nested headers are not. Nothing is decoded
///   (Content-Transfer-Encoding does not matter).
/// * `-h` gives the header keys of every block (only the primary one without `-m`), `-b`
///   the body lines, both flags both, in message order. Lookups use C strings: a body key
///   ends at its line's first NUL byte, and each line of a header contributes only the
///   bytes before its first NUL.
public struct MessageKeyOptions: Sendable, Equatable {
    /// `-b`: body lines are keys.
    public var bodyLines: Bool
    /// `-h`: complete (logical) headers are keys.
    public var headers: Bool
    /// `-m`: parse MIME structure.
    public var mime: Bool
    /// `header_size_limit`: a header that holds this many bytes gets no more continuation
    /// lines.
    public var headerSizeLimit = 102_400
    /// `mime_nesting_limit`: at most this many + 2 multipart boundaries are active.
    public var mimeNestingLimit = 100
    /// `mime_boundary_length_limit`: boundaries are cut to this length before matching.
    public var mimeBoundaryLengthLimit = 2048

    /// The options for `-b` (`bodyLines`), `-h` (`headers`) and `-m` (`mime`), with Postfix's default limits.
    public init(bodyLines: Bool, headers: Bool, mime: Bool) {
        self.bodyLines = bodyLines
        self.headers = headers
        self.mime = mime
    }

    /// The options for `-b` (`bodyLines`), `-h` (`headers`) and `-m` (`mime`), with the
    /// limits from main.cf (`header_size_limit`, `mime_nesting_limit`,
    /// `mime_boundary_length_limit`).
    ///
    /// - Throws: postmap's fatal errors for a limit that is not a number or is below 1,
    ///   checked in postmap's order.
    public init(bodyLines: Bool, headers: Bool, mime: Bool, configuration config: MainConfig) throws(FatalError) {
        self.init(bodyLines: bodyLines, headers: headers, mime: mime)
        headerSizeLimit = try config.positiveIntegerParameter("header_size_limit", default: 102_400)
        mimeNestingLimit = try config.positiveIntegerParameter("mime_nesting_limit", default: 100)
        mimeBoundaryLengthLimit = try config.positiveIntegerParameter("mime_boundary_length_limit", default: 2048)
    }
}

/// The lookup keys that postmap derives from `message` for `options`, in order.
public func messageLookupKeys(_ message: [UInt8], options: MessageKeyOptions) -> [[UInt8]] {
    var scanner = MessageScanner(options: options)
    for line in lookupKeyLines(message) { scanner.consume(line) }
    scanner.finish()
    return scanner.keys
}

/// Splits text into lookup keys, one per line, as postmap reads the keys of `-q -` and
/// `-d -` from standard input (and message lines for `-b`/`-h`): split at `\n`, nothing
/// else removed; a last line without `\n` counts. Like postmap, a line ends at its first
/// NUL byte.
public func lookupKeyLines(_ data: [UInt8]) -> [[UInt8]] {
    var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map {
        Array($0.prefix(while: { $0 != 0 }))
    }
    if data.last == 0x0A || data.isEmpty { lines.removeLast() }
    return lines
}

// MARK: - Scanning

/// A line-by-line reader of one message that collects lookup keys.
struct MessageScanner {
    /// Which header block is being read.
    enum HeaderBlock {
        /// The message's own headers.
        case primary
        /// The headers of a multipart part.
        case part
        /// The headers of a `message/rfc822` attachment.
        case nested
    }

    /// One active multipart boundary.
    struct Boundary {
        /// The boundary parameter, cut to `mime_boundary_length_limit`.
        var text: [UInt8]
        /// `multipart/digest`: parts without a Content-Type are messages.
        var partsAreMessages: Bool
    }

    let options: MessageKeyOptions
    private(set) var keys: [[UInt8]] = []
    /// The header block being read, `nil` in a body.
    private var block: HeaderBlock? = .primary
    /// The header being collected (already normalized).
    private var header: [UInt8]? = nil
    /// Whether the current header block makes the next block a nested message's headers.
    private var nestedMessageFollows = false
    /// Active boundaries, outermost first.
    private var boundaries: [Boundary] = []

    init(options: MessageKeyOptions) {
        self.options = options
    }

    mutating func consume(_ line: [UInt8]) {
        if let current = block {
            if header != nil, let first = line.first, first == 0x20 || first == 0x09 {
                appendContinuation(line)
                return
            }
            if let name = headerName(line) {
                finishHeader()
                header = Array(line[..<name.end]) + cutAtNUL(Array(line[name.colon...]))
                return
            }
            finishHeader()
            if line.isEmpty {
                emitBody(line)
                block = options.mime && nestedMessageFollows ? .nested : nil
                nestedMessageFollows = false
                return
            }
            if current == .primary { emitBody([]) }
            block = nil
        }
        bodyLine(line)
    }

    /// Flushes a header still being collected at the end of the input.
    mutating func finish() {
        finishHeader()
    }

    private mutating func appendContinuation(_ line: [UInt8]) {
        guard var text = header else { return }
        header = nil
        if text.count < options.headerSizeLimit {
            text.append(0x0A)
            text.append(contentsOf: cutAtNUL(line))
        }
        header = text
    }

    private mutating func finishHeader() {
        guard let text = header else { return }
        header = nil
        if options.headers { keys.append(text) }
        if options.mime, isContentTypeHeader(text) { applyContentType(text) }
    }

    private mutating func bodyLine(_ line: [UInt8]) {
        if options.mime, line.count > 2, line[0] == 0x2D, line[1] == 0x2D {
            let rest = line[2...]
            if let index = boundaries.lastIndex(where: { rest.starts(with: $0.text) }) {
                let matched = boundaries[index]
                boundaries.removeSubrange((index + 1)...)
                if rest.dropFirst(matched.text.count).starts(with: [0x2D, 0x2D]) {
                    boundaries.removeLast()
                } else {
                    block = .part
                    nestedMessageFollows = matched.partsAreMessages
                }
            }
        }
        emitBody(line)
    }

    private mutating func emitBody(_ line: [UInt8]) {
        if options.bodyLines { keys.append(cutAtNUL(line)) }
    }

    // MARK: Content-Type

    private mutating func applyContentType(_ header: [UInt8]) {
        guard let colon = header.firstIndex(of: UInt8(ascii: ":")) else { return }
        let value = Array(header[(colon + 1)...])
        let segments = mimeParameterSegments(value)
        switch ContentTypeEffect(segments.first ?? []) {
        case .unchanged:
            break
        case .other:
            nestedMessageFollows = false
        case .nestedMessage:
            nestedMessageFollows = true
        case .multipart(let digest):
            nestedMessageFollows = false
            for segment in segments.dropFirst() {
                guard segment.count >= 3, segment[0].isAtom("boundary"), segment[1] == .special(0x3D) else {
                    continue
                }
                // Refused pushes leave the multipart's parts as plain body text.
                guard boundaries.count <= options.mimeNestingLimit + 1 else { continue }
                let text = Array(segment[2].text.prefix(options.mimeBoundaryLengthLimit))
                boundaries.append(Boundary(text: text, partsAreMessages: digest))
            }
        }
    }
}

/// What one `Content-Type` header does to the header block it is in.
///
/// Decided by the tokens before the first `;`: none → not a message; an atom `text` → not
/// a message; `message` → a nested message when followed by `/` and `rfc822` or `global`;
/// `multipart` → not a message, and its `boundary=` parameters are pushed (`/digest` makes
/// parts default to messages); anything else leaves the earlier decision alone.
enum ContentTypeEffect: Equatable {
    /// The block's type stays what earlier headers (or the default) made it.
    case unchanged
    /// Neither a nested message nor a multipart.
    case other
    /// `message/rfc822` or `message/global`: the nested message's headers follow.
    case nestedMessage
    /// `multipart/*`; `digest` when the subtype is `digest`.
    case multipart(digest: Bool)

    init(_ tokens: [MIMEToken]) {
        guard let first = tokens.first else {
            self = .other
            return
        }
        let subtype: MIMEToken? = tokens.count >= 3 && tokens[1] == .special(0x2F) ? tokens[2] : nil
        if first.isAtom("text") {
            self = .other
        } else if first.isAtom("message") {
            let nested = subtype.map { $0.isAtom("rfc822") || $0.isAtom("global") } ?? false
            self = nested ? .nestedMessage : .other
        } else if first.isAtom("multipart") {
            self = .multipart(digest: subtype?.isAtom("digest") ?? false)
        } else {
            self = .unchanged
        }
    }
}

// MARK: - Tokens

/// One token of a MIME header value.
enum MIMEToken: Equatable {
    /// A run of bytes that are not whitespace, specials or control characters.
    case atom([UInt8])
    /// A quoted string, quotes removed and quoted pairs resolved.
    case quoted([UInt8])
    /// One special or control byte.
    case special(UInt8)

    /// The token's bytes (a quoted string's contents).
    var text: [UInt8] {
        switch self {
        case .atom(let bytes), .quoted(let bytes): return bytes
        case .special(let byte): return [byte]
        }
    }

    /// `true` for an atom equal to `word` (ASCII case-insensitively).
    func isAtom(_ word: String) -> Bool {
        guard case .atom(let bytes) = self else { return false }
        return asciiLowercased(bytes) == Array(word.utf8)
    }
}

/// Splits a header value into `;`-separated segments of tokens. Space, tab, CR and LF
/// separate tokens; comments (nested, with quoted pairs) are skipped; an unterminated
/// comment or quoted string runs to the end.
func mimeParameterSegments(_ value: [UInt8]) -> [[MIMEToken]] {
    var segments: [[MIMEToken]] = [[]]
    var i = 0
    while i < value.count {
        let byte = value[i]
        switch byte {
        case 0x20, 0x09, 0x0D, 0x0A:
            i += 1
        case UInt8(ascii: ";"):
            segments.append([])
            i += 1
        case UInt8(ascii: "("):
            var depth = 0
            while i < value.count {
                let c = value[i]
                if c == UInt8(ascii: "\\") {
                    i += 1
                } else if c == UInt8(ascii: "(") {
                    depth += 1
                } else if c == UInt8(ascii: ")") {
                    depth -= 1
                    if depth == 0 {
                        i += 1
                        break
                    }
                }
                i += 1
            }
        case UInt8(ascii: "\""):
            var text: [UInt8] = []
            i += 1
            while i < value.count, value[i] != UInt8(ascii: "\"") {
                if value[i] == UInt8(ascii: "\\") {
                    i += 1
                    if i == value.count { break }
                }
                text.append(value[i])
                i += 1
            }
            i += 1
            segments[segments.count - 1].append(.quoted(text))
        default:
            if isMIMEAtomByte(byte) {
                let start = i
                while i < value.count, isMIMEAtomByte(value[i]) { i += 1 }
                segments[segments.count - 1].append(.atom(Array(value[start..<i])))
            } else {
                segments[segments.count - 1].append(.special(byte))
                i += 1
            }
        }
    }
    return segments
}

/// Bytes that make up atoms: everything but controls, DEL, space and the MIME specials
/// `()<>@,;:\"/[]?=` (bytes above 127 included).
private func isMIMEAtomByte(_ byte: UInt8) -> Bool {
    if byte <= 0x20 || byte == 0x7F { return false }
    return !"()<>@,;:\\\"/[]?=".utf8.contains(byte)
}

// MARK: - Helpers

/// The end of a header's name and the index of its colon, or `nil` when `line` is not a
/// header: a name of printable ASCII other than `:`, optional spaces and tabs, a colon.
func headerName(_ line: [UInt8]) -> (end: Int, colon: Int)? {
    var i = 0
    while i < line.count, line[i] > 0x20, line[i] < 0x7F, line[i] != UInt8(ascii: ":") { i += 1 }
    guard i > 0 else { return nil }
    let end = i
    while i < line.count, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
    guard i < line.count, line[i] == UInt8(ascii: ":") else { return nil }
    return (end, i)
}

/// Whether a (normalized) header is a `Content-Type` header, in any case.
private func isContentTypeHeader(_ header: [UInt8]) -> Bool {
    guard let colon = header.firstIndex(of: UInt8(ascii: ":")) else { return false }
    return asciiLowercased(Array(header[..<colon])) == Array("content-type".utf8)
}

/// A key as Postfix uses it: a C string, so it ends at the first NUL.
private func cutAtNUL(_ bytes: [UInt8]) -> [UInt8] {
    guard let nul = bytes.firstIndex(of: 0) else { return bytes }
    return Array(bytes[..<nul])
}
