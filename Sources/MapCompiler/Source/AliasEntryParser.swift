import Glibc

/// Turning the logical lines of a postalias(1) source (aliases(5) syntax) into entries, and
/// compiling such a source into a table.

/// Splits logical lines of an aliases(5) source: the line is read as RFC 822 tokens and the
/// first `:` operator separates the alias name (stored in internal, unquoted form) from its
/// value (stored in external, quoted form).
struct AliasEntryParser: Sendable {
    /// The name used in messages (the source path as typed, or `stdin`).
    let source: String
    /// Whether lines must be well-formed UTF-8 (UTF-8 mode).
    let checkUTF8: Bool

    init(source: String, checkUTF8: Bool) {
        self.source = source
        self.checkUTF8 = checkUTF8
    }

    /// Parses one logical line. A line without any token (possible when it starts with a NUL
    /// byte) is ignored silently.
    func parse(_ line: LogicalLine) -> ParseOutcome {
        let text: [UInt8]
        switch prepareLogicalLine(line, source: source, checkUTF8: checkUTF8) {
        case .failure(let warning): return .skipped(warning)
        case .success(let bytes): text = bytes
        }
        let tokens = tokenizeRFC822(text)
        if tokens.isEmpty { return .ignored }

        let colonKind = RFC822TokenKind.symbol(UInt8(ascii: ":"))
        guard let colon = tokens.firstIndex(where: { $0.kind == colonKind }), colon > 0,
            colon < tokens.count - 1
        else {
            return .skipped(warning(line, "need name:value pair"))
        }
        let name = tokens[..<colon]
        if name.contains(where: { $0.kind == .symbol(UInt8(ascii: ",")) }) {
            return .skipped(warning(line, "need name:value pair"))
        }
        if name.contains(where: { $0.kind == .symbol(UInt8(ascii: "@")) || $0.kind == .symbol(UInt8(ascii: "%")) }) {
            return .skipped(warning(line, "name must be local"))
        }
        let entry = Entry(
            key: internalForm(name), value: externalForm(tokens[(colon + 1)...]), lineNumber: line.lineNumber)
        return .entry(entry, warning: nil)
    }

    private func warning(_ line: LogicalLine, _ text: String) -> Diagnostic {
        Diagnostic(.warning, "\(source), line \(line.lineNumber): \(text)")
    }
}

/// The entries postalias adds after the source: `@` → `@` (with the run's NUL convention;
/// in `-i` mode duplicates are replaced from here on, so a rebuild refreshes it silently),
/// then the NIS entries `YP_LAST_MODIFIED` (the build time as ten zero-padded decimal
/// digits) and `YP_MASTER_NAME` (`myhostname`), both unfolded and without a trailing NUL.
func addAliasBookkeeping<Store: EntryStore & ~Copyable>(
    request: BuildRequest, into writer: inout Store, warn: (Diagnostic) -> Void
) throws(FatalError) {
    if request.incremental { writer.duplicates = .replace }
    let at = [UInt8(ascii: "@")]
    try writer.insert(key: at, value: at, warn: warn)
    let now = request.buildTime ?? Int(time(nil))
    try writer.insert(
        key: Array("YP_LAST_MODIFIED".utf8), value: Array(zeroPadded(now, width: 10).utf8), fold: false, nul: false,
        warn: warn)
    try writer.insert(
        key: Array("YP_MASTER_NAME".utf8), value: Array(request.hostname.utf8), fold: false, nul: false, warn: warn)
}

/// `n` in decimal, padded with zeros to `width` characters, as C's `%0*ld` prints it (a minus
/// sign counts towards the width).
func zeroPadded(_ n: Int, width: Int) -> String {
    let digits = String(n.magnitude)
    let sign = n < 0 ? "-" : ""
    let padding = max(0, width - sign.count - digits.count)
    return sign + String(repeating: "0", count: padding) + digits
}
