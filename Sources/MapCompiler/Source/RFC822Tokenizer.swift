/// Splitting text into RFC 822 tokens and turning tokens back into text, the way postalias(1)
/// reads an aliases(5) line.
///
/// * Whitespace between tokens is space, tab, CR and LF only (not `\v` or `\f`) and is dropped.
/// * `(` starts a comment that runs to the matching `)` (comments nest; a backslash protects
///   the next byte). The comment is kept verbatim, parentheses and backslashes included.
/// * `"` starts a quoted string and `[` a domain literal; each runs to its closing byte or to
///   the end of the text (an unclosed one is no error). A backslash protects the next byte
///   and is dropped; space, tab, CR and LF inside become a space.
/// * Any other byte of ``rfc822Operators`` except the backslash is a one-byte operator.
/// * Everything else starts an atom, which runs to whitespace or an operator byte, with the
///   same backslash and whitespace rules as a quoted string. An atom that ends up holding an
///   operator byte, a space or an ASCII control byte is a quoted string instead.

/// The bytes that are operators (or start a comment, quoted string or domain literal).
let rfc822Operators: Set<UInt8> = Set("|%!()<>@,;:\\\".[]".utf8)

/// What kind of token a ``RFC822Token`` is.
enum RFC822TokenKind: Sendable, Equatable {
    /// A run of ordinary bytes (escapes removed).
    case atom
    /// The contents of `"..."`, without the quotes and escapes.
    case quotedString
    /// `(...)`, verbatim including the parentheses.
    case comment
    /// The contents of `[...]`, without the brackets and escapes.
    case domainLiteral
    /// A one-byte operator such as `:`, `,`, `@` or `<`.
    case symbol(UInt8)

    /// Atoms, quoted strings, comments and domain literals; operators are not.
    var isWordLike: Bool {
        if case .symbol = self { return false }
        return true
    }
}

/// One RFC 822 token.
struct RFC822Token: Sendable, Equatable {
    var kind: RFC822TokenKind
    /// The token's text in internal form (see ``RFC822TokenKind``); empty for operators.
    var text: [UInt8]

    init(_ kind: RFC822TokenKind, _ text: [UInt8] = []) {
        self.kind = kind
        self.text = text
    }

    /// A token from a string, for tests and literals.
    init(_ kind: RFC822TokenKind, _ text: String) {
        self.init(kind, Array(text.utf8))
    }
}

/// Space, tab, CR and LF: the bytes that separate RFC 822 tokens.
@inline(__always)
private func isTokenSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
}

/// Splits `bytes` into RFC 822 tokens. A NUL byte ends the text.
func tokenizeRFC822(_ bytes: [UInt8]) -> [RFC822Token] {
    var scanner = RFC822Scanner(bytes: bytes)
    return scanner.tokens()
}

/// The state of one tokenizing pass.
private struct RFC822Scanner {
    let bytes: [UInt8]
    /// The end of the text: the first NUL byte, or the end of `bytes`.
    let end: Int
    var position = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        self.end = bytes.firstIndex(of: 0) ?? bytes.count
    }

    mutating func tokens() -> [RFC822Token] {
        var result: [RFC822Token] = []
        while position < end {
            let byte = bytes[position]
            position += 1
            if isTokenSpace(byte) { continue }
            switch byte {
            case UInt8(ascii: "("):
                result.append(RFC822Token(.comment, comment()))
            case UInt8(ascii: "["):
                result.append(RFC822Token(.domainLiteral, collectClosed(by: UInt8(ascii: "]"))))
            case UInt8(ascii: "\""):
                result.append(RFC822Token(.quotedString, collectClosed(by: UInt8(ascii: "\""))))
            case let op where op != UInt8(ascii: "\\") && rfc822Operators.contains(op):
                result.append(RFC822Token(.symbol(op)))
            default:
                position -= 1  // the byte (possibly a backslash) belongs to the atom
                let text = collect { !isTokenSpace($0) && !rfc822Operators.contains($0) }
                result.append(RFC822Token(needsQuoting(text) ? .quotedString : .atom, text))
            }
        }
        return result
    }

    /// Collects bytes while `accept` holds for them. A backslash protects the next byte (and is
    /// dropped; one at the very end is dropped too); space, tab, CR and LF become a space.
    mutating func collect(while accept: (UInt8) -> Bool) -> [UInt8] {
        var text: [UInt8] = []
        while position < end {
            var byte = bytes[position]
            if byte == UInt8(ascii: "\\") {
                position += 1
                if position >= end { break }
                byte = bytes[position]
            } else if !accept(byte) {
                break
            }
            text.append(isTokenSpace(byte) ? 0x20 : byte)
            position += 1
        }
        return text
    }

    /// Collects up to the unescaped `terminator` and steps over it when it is there.
    mutating func collectClosed(by terminator: UInt8) -> [UInt8] {
        let text = collect { $0 != terminator }
        if position < end { position += 1 }
        return text
    }

    /// Collects a comment whose `(` has been read, verbatim, up to the matching `)` or the end.
    mutating func comment() -> [UInt8] {
        var text: [UInt8] = [UInt8(ascii: "(")]
        var depth = 1
        while position < end {
            let byte = bytes[position]
            text.append(byte)
            position += 1
            if byte == UInt8(ascii: "(") {
                depth += 1
            } else if byte == UInt8(ascii: ")") {
                depth -= 1
                if depth == 0 { break }
            } else if byte == UInt8(ascii: "\\") {
                if position >= end { break }
                text.append(bytes[position])
                position += 1
            }
        }
        return text
    }
}

/// `true` when atom text must be written as a quoted string: it holds an operator byte, a
/// space, or an ASCII control byte (bytes from 0x80 up are fine).
private func needsQuoting(_ text: [UInt8]) -> Bool {
    text.contains { $0 < 0x20 || $0 == 0x7F || $0 == 0x20 || rfc822Operators.contains($0) }
}

/// Whether one space goes after `tokens[index]` when tokens are turned back into text: before
/// a `<`, and between two word-like tokens (commas are handled by their caller).
private func spaceFollows<C: RandomAccessCollection>(_ tokens: C, at index: C.Index) -> Bool
where C.Element == RFC822Token {
    let next = tokens.index(after: index)
    guard next != tokens.endIndex else { return false }
    if tokens[next].kind == .symbol(UInt8(ascii: "<")) { return true }
    return tokens[index].kind.isWordLike && tokens[next].kind.isWordLike
}

/// Appends `text` to `out` with a backslash before every byte in `special`.
private func appendEscaped(_ text: [UInt8], to out: inout [UInt8], special: Set<UInt8>) {
    for byte in text {
        if special.contains(byte) { out.append(UInt8(ascii: "\\")) }
        out.append(byte)
    }
}

/// Tokens as text in *internal* (unquoted) form: quoted strings without quotes or escapes,
/// domain literals in brackets, comments verbatim, `, ` after a comma, one space between two
/// word-like tokens and before `<`, other operators glued to their neighbours. postalias
/// stores alias names in this form.
func internalForm<C: RandomAccessCollection>(_ tokens: C) -> [UInt8] where C.Element == RFC822Token {
    rendered(tokens, quoting: false)
}

/// Bytes escaped inside a quoted string in external form.
private let quotedStringSpecials: Set<UInt8> = [UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0D, 0x0A]
/// Bytes escaped inside a domain literal in external form.
private let domainLiteralSpecials: Set<UInt8> = [UInt8(ascii: "\\"), 0x0D, 0x0A]

/// Tokens as text in *external* (quoted) form: like ``internalForm(_:)``, except that quoted
/// strings get their quotes back with a backslash before `"`, `\`, CR and LF, and domain
/// literals a backslash before `\`, CR and LF. postalias stores alias values in this form.
func externalForm<C: RandomAccessCollection>(_ tokens: C) -> [UInt8] where C.Element == RFC822Token {
    rendered(tokens, quoting: true)
}

/// The one renderer behind both forms; `quoting` selects the external form.
private func rendered<C: RandomAccessCollection>(_ tokens: C, quoting: Bool) -> [UInt8]
where C.Element == RFC822Token {
    var out: [UInt8] = []
    for index in tokens.indices {
        let token = tokens[index]
        switch token.kind {
        case .atom, .comment:
            out.append(contentsOf: token.text)
        case .quotedString:
            if quoting {
                out.append(UInt8(ascii: "\""))
                appendEscaped(token.text, to: &out, special: quotedStringSpecials)
                out.append(UInt8(ascii: "\""))
            } else {
                out.append(contentsOf: token.text)
            }
        case .domainLiteral:
            out.append(UInt8(ascii: "["))
            if quoting {
                appendEscaped(token.text, to: &out, special: domainLiteralSpecials)
            } else {
                out.append(contentsOf: token.text)
            }
            out.append(UInt8(ascii: "]"))
        case .symbol(let op):
            out.append(op)
            if op == UInt8(ascii: ",") {
                out.append(0x20)
                continue
            }
        }
        if spaceFollows(tokens, at: index) { out.append(0x20) }
    }
    return out
}
