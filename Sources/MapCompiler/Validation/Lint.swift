import Glibc

/// `--lint`: the syntax rules every source gets, and the virtual(8) mailbox rules.

/// One entry as the linter sees it: where it is and what it stores.
struct LintEntry {
    var rawKey: [UInt8]
    var key: [UInt8]
    var value: [UInt8]
    var line: Int
    var valueColumn: Int
}

/// The rules every source gets: the checks a build makes of each logical line, as findings
/// with positions, through the same line splitters a build uses.
struct SourceSyntaxRules {
    let path: String
    let format: SourceFormat
    let handling: KeyHandling

    private func finding(
        _ line: Int, _ column: Int, _ severity: LintFinding.Severity, _ rule: LintRule, _ message: String
    ) -> LintFinding {
        LintFinding(file: path, line: line, column: column, severity: severity, message: message, rule: rule)
    }

    /// Adds the syntax findings and returns the entries as written, or `nil` (after an
    /// `unreadable` finding) when the file cannot be read.
    func run(into findings: inout [LintFinding]) -> [LintEntry]? {
        let bytes: [UInt8]
        let fd: Int32
        switch openSourceFile(path) {  // a FIFO or a device is refused, not waited on
        case .success(let descriptor): fd = descriptor
        case .failure(let failure):
            findings.append(finding(0, 0, .error, .unreadable, "cannot open \(path): \(failure.reason)"))
            return nil
        }
        defer { close(fd) }
        switch readAll(fd: fd) {
        case .success(let content): bytes = content
        case .failure(let error):
            findings.append(finding(0, 0, .error, .unreadable, "cannot open \(path): \(error.text)"))
            return nil
        }
        var entries: [LintEntry] = []
        for line in PositionedLineReader(bytes: bytes) {
            findings += syntax(line, into: &entries)
        }
        return entries
    }

    // MARK: Syntax

    private func syntax(_ line: PositionedLine, into entries: inout [LintEntry]) -> [LintFinding] {
        var out: [LintFinding] = []
        let first = line.lineNumber
        if let leading = line.text.first, isCSpace(leading) {
            return [
                finding(
                    first, 1, .error, .leadingWhitespace,
                    "the first logical line starts with whitespace; postmap skips it (a continuation line needs a line to continue)"
                )
            ]
        }
        var text = line.text
        if let nul = text.firstIndex(of: 0) {
            let (l, c) = line.position(of: nul)
            out.append(finding(l, c, .error, .nulByte, "NUL byte: postmap ignores the rest of the line"))
            text.removeSubrange(nul...)
        }
        if handling.utf8, let bad = firstInvalidUTF8Offset(text) {
            let (l, c) = line.position(of: bad)
            out.append(
                finding(
                    l, c, .error, .invalidUTF8, "not valid UTF-8: postmap skips this line (smtputf8_enable = yes)"))
            return out
        }
        var trimmed = text.count
        while trimmed > 0 && isCSpace(text[trimmed - 1]) { trimmed -= 1 }
        if let cr = text[..<trimmed].firstIndex(of: 0x0D) {
            let (l, c) = line.position(of: cr)
            out.append(
                finding(
                    l, c, .warning, .carriageReturn,
                    "carriage return inside the entry (CRLF line endings with a continuation line): it is stored"))
        }
        if trimmed < text.count, text[trimmed...] != [0x0D] {
            let (l, c) = line.position(of: trimmed)
            out.append(finding(l, c, .note, .trailingWhitespace, "trailing whitespace is dropped"))
        }
        switch format {
        case .postmap: out += postmapSyntax(line, text, into: &entries)
        case .postalias: out += aliasSyntax(line, into: &entries)
        }
        return out
    }

    private func postmapSyntax(
        _ line: PositionedLine, _ text: [UInt8], into entries: inout [LintEntry]
    )
        -> [LintFinding]
    {
        var out: [LintFinding] = []
        let split = splitPostmapLine(text)
        if let quote = split.unbalancedQuote {
            let (l, c) = line.position(of: quote)
            return [finding(l, c, .error, .unbalancedQuote, "unbalanced '\"' in the key: postmap skips this line")]
        }
        guard split.hasValue else {
            return [
                finding(
                    line.lineNumber, split.end + 1 > 1 ? split.end + 1 : 1, .error, .missingValue,
                    "key without a value: postmap skips this line")
            ]
        }
        let key = Array(text[..<split.keyEnd])
        let value = Array(text[split.valueStart..<split.end])
        if key.last == UInt8(ascii: ":") {
            out.append(
                finding(
                    line.lineNumber, split.keyEnd, .warning, .aliasFormat,
                    "the key ends with ':' (aliases(5) syntax?): the colon becomes part of the key"))
        }
        if let hash = value.indices.first(where: { value[$0] == UInt8(ascii: "#") && $0 > 0 && isCSpace(value[$0 - 1]) }
        ) {
            let (l, c) = line.position(of: split.valueStart + hash)
            out.append(
                finding(
                    l, c, .warning, .commentInValue,
                    "'#' after the value is not a comment: it and the rest of the line are part of the value"))
        }
        let (vl, vc) = line.position(of: split.valueStart)
        entries.append(
            LintEntry(
                rawKey: key, key: handling.folding.fold(key), value: value, line: line.lineNumber,
                valueColumn: vl == line.lineNumber ? vc : 1))
        return out
    }

    private func aliasSyntax(_ line: PositionedLine, into entries: inout [LintEntry]) -> [LintFinding] {
        let parser = AliasEntryParser(source: path, checkUTF8: handling.utf8)
        switch parser.parse(LogicalLine(text: line.text, lineNumber: line.lineNumber)) {
        case .ignored:
            return []
        case .skipped(let diagnostic):
            let text = String(decoding: diagnostic.text, as: UTF8.self)
            if text.hasSuffix("name must be local") {
                return [
                    finding(
                        line.lineNumber, 1, .error, .nameNotLocal,
                        "an alias name is a local part only ('@' or '%' before the colon): postalias skips this line")
                ]
            }
            return [
                finding(
                    line.lineNumber, 1, .error, .missingValue,
                    "not a 'name: value' pair: postalias skips this line")
            ]
        case .entry(let entry, _):
            entries.append(
                LintEntry(
                    rawKey: entry.key, key: handling.folding.fold(entry.key), value: entry.value,
                    line: line.lineNumber, valueColumn: 1))
            return []
        }
    }

}

/// The virtual(8) mailbox rules: paths that leave or ignore virtual_mailbox_base, mixed
/// formats in one domain, one mailbox shared by several addresses.
struct MailboxRules {
    let path: String

    private func finding(
        _ line: Int, _ column: Int, _ severity: LintFinding.Severity, _ rule: LintRule, _ message: String
    ) -> LintFinding {
        LintFinding(file: path, line: line, column: column, severity: severity, message: message, rule: rule)
    }

    func run(_ entries: [LintEntry]) -> [LintFinding] {
        var out: [LintFinding] = []
        var formats: [[UInt8]: (maildir: Int?, mbox: Int?)] = [:]
        var paths: [[UInt8]: LintEntry] = [:]
        for entry in entries {
            let value = entry.value
            if value.first == UInt8(ascii: "/") {
                out.append(
                    finding(
                        entry.line, entry.valueColumn, .error, .absolutePath,
                        "mailbox path is absolute: virtual(8) appends it to virtual_mailbox_base anyway "
                            + "(giving base//\(show(Array(value.dropFirst()))))"))
            }
            if value.split(separator: UInt8(ascii: "/")).contains(where: { $0.elementsEqual("..".utf8) }) {
                out.append(
                    finding(
                        entry.line, entry.valueColumn, .error, .dotdotPath,
                        "mailbox path contains '..': it can leave virtual_mailbox_base"))
            }
            if let domain = domainPart(of: entry.key) {
                var seen = formats[domain] ?? (nil, nil)
                if value.last == UInt8(ascii: "/") {
                    seen.maildir = seen.maildir ?? entry.line
                } else {
                    seen.mbox = seen.mbox ?? entry.line
                }
                formats[domain] = seen
                if let maildir = seen.maildir, let mbox = seen.mbox, max(maildir, mbox) == entry.line {
                    let other = entry.line == maildir ? mbox : maildir
                    out.append(
                        finding(
                            entry.line, entry.valueColumn, .warning, .mixedMailboxFormat,
                            "\(value.last == UInt8(ascii: "/") ? "Maildir" : "mbox") mailbox in \(show(domain)), "
                                + "where line \(other) uses \(value.last == UInt8(ascii: "/") ? "mbox" : "Maildir") "
                                + "(a trailing '/' means Maildir)"))
                }
            }
            var normalized = value
            while normalized.count > 1 && normalized.last == UInt8(ascii: "/") { normalized.removeLast() }
            if let other = paths[normalized] {
                out.append(
                    finding(
                        entry.line, entry.valueColumn, .warning, .sharedMailbox,
                        "mailbox \(show(value)) is also used by \(show(other.rawKey)) (line \(other.line))"))
            } else {
                paths[normalized] = entry
            }
        }
        return out
    }

}

/// The multi-domain rules over main.cf's domain lists, read by the resolver (so `--lint`
/// and `--resolve` never disagree about a domain). They need a known configuration.
struct DomainRules {
    let resolver: AddressResolver
    let path: String
    let kind: MapKind

    private func finding(
        _ line: Int, _ column: Int, _ severity: LintFinding.Severity, _ rule: LintRule, _ message: String
    ) -> LintFinding {
        LintFinding(file: path, line: line, column: column, severity: severity, message: message, rule: rule)
    }

    private func contains(_ list: DomainList, _ domain: [UInt8]) -> Bool {
        list.contains(String(decoding: domain, as: UTF8.self), folding: resolver.settings.folding)
    }

    func run(_ entries: [LintEntry]) -> [LintFinding] {
        let settings = resolver.settings
        var out: [LintFinding] = []
        var reported: Set<[UInt8]> = []
        for entry in entries {
            guard let domain = domainPart(of: entry.key) ?? (kind == .virtual ? bareDomain(entry.key) : nil),
                !reported.contains(domain)
            else { continue }
            reported.insert(domain)
            let name = show(domain)
            let isAlias = contains(settings.virtualAliasDomains, domain)
            let isMailbox = contains(settings.virtualMailboxDomains, domain)
            let isLocal = resolver.isLocalDomain(String(decoding: domain, as: UTF8.self)) != nil
            if isLocal && (isAlias || isMailbox) {
                out.append(
                    finding(
                        entry.line, 1, .warning, .domainInMydestination,
                        "\(name) is in mydestination and also a virtual \(isAlias ? "alias" : "mailbox") domain: "
                            + "Postfix treats it as local (local(8), aliases); list a domain in one place only"))
            }
            if isAlias && isMailbox {
                out.append(
                    finding(
                        entry.line, 1, .warning, .domainInBoth,
                        "\(name) is in both virtual_alias_domains and virtual_mailbox_domains: Postfix warns "
                            + "and treats it as a virtual alias domain"))
            }
            if !isAlias && !isMailbox && !isLocal && !contains(settings.relayDomains, domain) {
                let consequence =
                    kind == .vmailbox
                    ? "virtual(8) never delivers it, so these entries are never used"
                    : "Postfix does not accept mail for it from outside, so these entries rarely matter"
                out.append(
                    finding(
                        entry.line, 1, .warning, .domainNotVirtual,
                        "\(name) is in neither virtual_alias_domains nor virtual_mailbox_domains: \(consequence)"))
            }
        }
        return out
    }
}

/// Text for messages: the bytes with non-printable ones as `?`.
func show(_ bytes: [UInt8]) -> String { printable(bytes, keepUTF8: true) }

/// The domain of `local@domain` (after the last `@`), or `nil`.
func domainPart(of key: [UInt8]) -> [UInt8]? {
    guard let at = key.lastIndex(of: UInt8(ascii: "@")), at + 1 < key.count else { return nil }
    return Array(key[(at + 1)...])
}

/// A bare key that looks like a domain name (`example.com`): a virtual alias domain line.
func bareDomain(_ key: [UInt8]) -> [UInt8]? {
    guard !key.contains(UInt8(ascii: "@")), key.contains(UInt8(ascii: ".")) else { return nil }
    return key
}

// MARK: - Logical lines with positions

/// A logical line and where each of its bytes came from.
struct PositionedLine {
    var text: [UInt8]
    var lineNumber: Int
    /// (offset in `text`, physical line) for every physical line joined in.
    var segments: [(offset: Int, line: Int)]

    /// The physical line and 1-based byte column of `offset`.
    func position(of offset: Int) -> (line: Int, column: Int) {
        var current = segments[0]
        for segment in segments where segment.offset <= offset { current = segment }
        return (current.line, offset - current.offset + 1)
    }
}

/// Logical lines as ``LogicalLineReader`` forms them, with positions for messages.
struct PositionedLineReader: Sequence, IteratorProtocol {
    private var reader: LogicalLineReader

    init(bytes: [UInt8]) {
        reader = LogicalLineReader(bytes: bytes)
        reader.recordsSegments = true
    }

    mutating func next() -> PositionedLine? {
        guard let line = reader.next() else { return nil }
        return PositionedLine(text: line.text, lineNumber: line.lineNumber, segments: reader.segments)
    }
}
