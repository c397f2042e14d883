import Glibc

/// Messages in Postfix's form, and the errors that end a run.

/// One warning or informational message. The text is bytes because it quotes source lines
/// that need not be valid UTF-8; ``rendered(utf8:)`` makes it printable the way Postfix does.
public struct Diagnostic: Error, Sendable, Equatable {
    /// How a message is introduced: nothing (`info`), `note:` or `warning:`.
    public enum Severity: String, Sendable {
        case info = ""
        case note
        case warning
    }

    /// The kind of message.
    public let severity: Severity
    /// The message, without the program name and severity.
    public let text: [UInt8]

    /// A message whose text is bytes (it may quote source lines that are not UTF-8).
    public init(_ severity: Severity, _ text: [UInt8]) {
        self.severity = severity
        self.text = text
    }

    /// A message with a text.
    public init(_ severity: Severity, _ text: String) {
        self.init(severity, Array(text.utf8))
    }

    /// The message as Postfix prints it, without the program name: `warning: TEXT`.
    public func rendered(utf8: Bool) -> String {
        let body = printable(text, keepUTF8: utf8)
        return severity == .info ? body : "\(severity.rawValue): \(body)"
    }
}

/// An error that ends the run: printed as `PROGRAM: fatal: TEXT`, exit status 1.
public struct FatalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message, without `fatal:`.
    public let text: [UInt8]

    /// A fatal error with a text.
    public init(_ text: String) { self.text = Array(text.utf8) }
    /// A fatal error whose text is bytes (it may quote input that is not UTF-8).
    public init(bytes: [UInt8]) { self.text = bytes }

    /// The text, non-printable bytes shown as `?`.
    public var description: String { printable(text, keepUTF8: true) }
    /// The message as Postfix prints it, without the program name: `fatal: TEXT`; with `utf8`,
    /// UTF-8 characters are kept, otherwise every non-ASCII byte is shown as `?`.
    public func rendered(utf8: Bool) -> String { "fatal: " + printable(text, keepUTF8: utf8) }
}

/// Replaces every byte that is not printable ASCII with `?`, except (when `keepUTF8`) byte
/// sequences shaped like UTF-8 characters: a lead byte 0xC2–0xFE followed by the number of
/// continuation bytes its high bits announce.
func printable(_ bytes: [UInt8], keepUTF8: Bool) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        let byte = bytes[i]
        if byte == 0 { break }
        if byte >= 0x20 && byte < 0x7F {
            out.append(byte)
            i += 1
            continue
        }
        if keepUTF8, byte >= 0xC2, byte <= 0xFE {
            var expected = 0
            var probe = byte << 1
            while probe & 0x80 != 0 {
                expected += 1
                probe <<= 1
            }
            var ok = i + expected < bytes.count + 0 && i + expected <= bytes.count - 1
            if ok {
                for j in 1...expected where bytes[i + j] & 0xC0 != 0x80 {
                    ok = false
                    break
                }
            }
            if ok {
                out.append(contentsOf: bytes[i...(i + expected)])
                i += expected + 1
                continue
            }
        }
        out.append(UInt8(ascii: "?"))
        i += 1
    }
    return String(decoding: out, as: UTF8.self)
}

/// An `errno` value as an error.
struct SystemErrno: Error, Sendable, Equatable {
    let code: Int32
    init(_ code: Int32) { self.code = code }
    var text: String { systemErrorText(code) }
}

/// The C library's text for an `errno` value (`No such file or directory`).
func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
