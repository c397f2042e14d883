/// `--lint`: finding what is wrong with a map source before Postfix meets it.
///
/// Findings are printed as `FILE:LINE:COLUMN: error|warning|note: MESSAGE [RULE]`, the form
/// compilers use and editors and CI annotate, sorted by file, line and column. Columns count
/// bytes from 1. The exit status is 1 when any finding is an error (or, with `--werror`, a
/// warning), else 0.

/// One lint finding.
public struct LintFinding: Sendable, Equatable {
    public enum Severity: String, Sendable, Comparable {
        case error
        case warning
        case note

        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
    }

    public var file: String
    public var line: Int
    public var column: Int
    public var severity: Severity
    public var message: String
    public var rule: String

    public init(file: String, line: Int, column: Int, severity: Severity, message: String, rule: String) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
        self.rule = rule
    }

    /// `FILE:LINE:COLUMN: SEVERITY: MESSAGE [RULE]`.
    public var text: String { "\(file):\(line):\(column): \(severity.rawValue): \(message) [\(rule)]" }

    var json: JSONObject {
        var object = JSONObject()
        object.add("file", file)
        object.add("line", line)
        object.add("column", column)
        object.add("severity", severity.rawValue)
        object.add("message", message)
        object.add("rule", rule)
        return object
    }
}

func runLint(operands: [String], options: ExtensionOptions, context: OperationContext) throws(FatalError) -> Int32 {
    // The multi-domain rules apply only to a main.cf the user named: a Postfix installed on
    // the machine that runs the lint need not be the one the maps are for.
    let domains = try DomainClasses(
        config: context.config, explicit: context.configIsExplicit, handling: context.handling, warn: context.warn)
    var findings: [LintFinding] = []
    for operand in operands {
        let map = MapArgument(operand)
        let kind = options.mapKind ?? domains.kind(ofMapAt: map.name) ?? MapKind.guess(fromPath: map.name)
        let format: SourceFormat = kind == .aliases || context.personality == .postalias ? .postalias : .postmap
        let linter = MapLinter(
            path: map.name, kind: kind, format: format, handling: context.handling,
            duplicates: context.options.duplicates, domains: domains)
        findings += linter.run()
    }
    findings.sort {
        ($0.file, $0.line, $0.column, $0.severity) < ($1.file, $1.line, $1.column, $1.severity)
    }
    for finding in findings {
        context.output.standardOutput(options.json ? finding.json.line : Array((finding.text + "\n").utf8))
    }
    let failing = findings.filter {
        $0.severity == .error || (options.warningsAreErrors && $0.severity == .warning)
    }
    if !options.json {
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.filter { $0.severity == .warning }.count
        let notes = findings.count - errors - warnings
        context.output.standardError(
            "\(operands.count) map(s) checked: \(errors) error(s), \(warnings) warning(s), \(notes) note(s)")
    }
    return failing.isEmpty ? 0 : 1
}

extension MapKind {
    /// A guess from the file name: `virtual…` → virtual, `…mailbox…` → vmailbox,
    /// `aliases` → aliases, anything else generic.
    static func guess(fromPath path: String) -> MapKind {
        let base = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
        if base.contains("mailbox") { return .vmailbox }
        if base.hasPrefix("virtual") || base.contains("valias") { return .virtual }
        if base.hasPrefix("aliases") { return .aliases }
        return .generic
    }
}

/// One entry as the linter sees it: where it is and what it stores.
struct LintEntry {
    var rawKey: [UInt8]
    var key: [UInt8]
    var value: [UInt8]
    var line: Int
    var valueColumn: Int
}

/// Lints one source.
struct MapLinter {
    let path: String
    let kind: MapKind
    let format: SourceFormat
    let handling: KeyHandling
    let duplicates: DuplicatePolicy
    let domains: DomainClasses

    private func finding(
        _ line: Int, _ column: Int, _ severity: LintFinding.Severity, _ rule: String, _ message: String
    ) -> LintFinding {
        LintFinding(file: path, line: line, column: column, severity: severity, message: message, rule: rule)
    }

    func run() -> [LintFinding] {
        let bytes: [UInt8]
        switch readWholeFile(path) {
        case .success(let content): bytes = content
        case .failure(let error):
            return [finding(0, 0, .error, "unreadable", "cannot open \(path): \(error.text)")]
        }
        var findings: [LintFinding] = []
        var entries: [LintEntry] = []
        for line in PositionedLineReader(bytes: bytes) {
            findings += syntax(line, into: &entries)
        }
        let effective = duplicatesChecked(entries, into: &findings)
        switch kind {
        case .virtual: findings += VirtualAliasRules(linter: self, entries: effective).run()
        case .vmailbox: findings += mailboxRules(effective)
        case .aliases, .generic: break
        }
        findings += domainRules(effective)
        return findings
    }

    // MARK: Syntax

    private func syntax(_ line: PositionedLine, into entries: inout [LintEntry]) -> [LintFinding] {
        var out: [LintFinding] = []
        let first = line.lineNumber
        if let leading = line.text.first, isCSpace(leading) {
            return [
                finding(
                    first, 1, .error, "leading-whitespace",
                    "the first logical line starts with whitespace; postmap skips it (a continuation line needs a line to continue)"
                )
            ]
        }
        var text = line.text
        if let nul = text.firstIndex(of: 0) {
            let (l, c) = line.position(of: nul)
            out.append(finding(l, c, .error, "nul-byte", "NUL byte: postmap ignores the rest of the line"))
            text.removeSubrange(nul...)
        }
        if handling.utf8, let bad = firstInvalidUTF8Offset(text) {
            let (l, c) = line.position(of: bad)
            out.append(
                finding(
                    l, c, .error, "invalid-utf8", "not valid UTF-8: postmap skips this line (smtputf8_enable = yes)"))
            return out
        }
        var trimmed = text.count
        while trimmed > 0 && isCSpace(text[trimmed - 1]) { trimmed -= 1 }
        if let cr = text[..<trimmed].firstIndex(of: 0x0D) {
            let (l, c) = line.position(of: cr)
            out.append(
                finding(
                    l, c, .warning, "carriage-return",
                    "carriage return inside the entry (CRLF line endings with a continuation line): it is stored"))
        }
        if trimmed < text.count, text[trimmed...] != [0x0D] {
            let (l, c) = line.position(of: trimmed)
            out.append(finding(l, c, .note, "trailing-whitespace", "trailing whitespace is dropped"))
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
            return [finding(l, c, .error, "unbalanced-quote", "unbalanced '\"' in the key: postmap skips this line")]
        }
        guard split.hasValue else {
            return [
                finding(
                    line.lineNumber, split.end + 1 > 1 ? split.end + 1 : 1, .error, "missing-value",
                    "key without a value: postmap skips this line")
            ]
        }
        let key = Array(text[..<split.keyEnd])
        let value = Array(text[split.valueStart..<split.end])
        if key.last == UInt8(ascii: ":") {
            out.append(
                finding(
                    line.lineNumber, split.keyEnd, .warning, "alias-format",
                    "the key ends with ':' (aliases(5) syntax?): the colon becomes part of the key"))
        }
        if let hash = value.indices.first(where: { value[$0] == UInt8(ascii: "#") && $0 > 0 && isCSpace(value[$0 - 1]) }
        ) {
            let (l, c) = line.position(of: split.valueStart + hash)
            out.append(
                finding(
                    l, c, .warning, "comment-in-value",
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
                        line.lineNumber, 1, .error, "name-not-local",
                        "an alias name is a local part only ('@' or '%' before the colon): postalias skips this line")
                ]
            }
            return [
                finding(
                    line.lineNumber, 1, .error, "missing-value",
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

    // MARK: Duplicates

    /// Reports repeated keys (naming both lines) and returns the entries postmap keeps.
    private func duplicatesChecked(_ entries: [LintEntry], into findings: inout [LintFinding]) -> [LintEntry] {
        var kept: [LintEntry] = []
        var index: [[UInt8]: Int] = [:]
        for entry in entries {
            guard let existing = index[entry.key] else {
                index[entry.key] = kept.count
                kept.append(entry)
                continue
            }
            let first = kept[existing]
            let outcome =
                duplicates == .replace
                ? "this entry replaces it (-r)" : "postmap keeps that one and ignores this entry"
            if first.rawKey == entry.rawKey {
                findings.append(
                    finding(
                        entry.line, 1, .warning, "duplicate-key",
                        "duplicate key \"\(show(entry.rawKey))\", first defined at line \(first.line): \(outcome)"))
            } else {
                findings.append(
                    finding(
                        entry.line, 1, .warning, "duplicate-after-folding",
                        "key \"\(show(entry.rawKey))\" is the same as \"\(show(first.rawKey))\" (line \(first.line)) "
                            + "after case folding: \(outcome)"))
            }
            if duplicates == .replace { kept[existing] = entry }
        }
        return kept
    }

    // MARK: vmailbox

    private func mailboxRules(_ entries: [LintEntry]) -> [LintFinding] {
        var out: [LintFinding] = []
        var formats: [[UInt8]: (maildir: Int?, mbox: Int?)] = [:]
        var paths: [[UInt8]: LintEntry] = [:]
        for entry in entries {
            let value = entry.value
            if value.first == UInt8(ascii: "/") {
                out.append(
                    finding(
                        entry.line, entry.valueColumn, .error, "absolute-path",
                        "mailbox path is absolute: virtual(8) appends it to virtual_mailbox_base anyway "
                            + "(giving base//\(show(Array(value.dropFirst()))))"))
            }
            if value.split(separator: UInt8(ascii: "/")).contains(where: { $0.elementsEqual("..".utf8) }) {
                out.append(
                    finding(
                        entry.line, entry.valueColumn, .error, "dotdot-path",
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
                            entry.line, entry.valueColumn, .warning, "mixed-mailbox-format",
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
                        entry.line, entry.valueColumn, .warning, "shared-mailbox",
                        "mailbox \(show(value)) is also used by \(show(other.rawKey)) (line \(other.line))"))
            } else {
                paths[normalized] = entry
            }
        }
        return out
    }

    // MARK: main.cf

    /// The multi-domain rules; they need a main.cf.
    private func domainRules(_ entries: [LintEntry]) -> [LintFinding] {
        guard domains.configured, kind == .virtual || kind == .vmailbox else { return [] }
        var out: [LintFinding] = []
        var reported: Set<[UInt8]> = []
        for entry in entries {
            guard let domain = domainPart(of: entry.key) ?? (kind == .virtual ? bareDomain(entry.key) : nil),
                !reported.contains(domain)
            else { continue }
            reported.insert(domain)
            let name = show(domain)
            let isAlias = domains.isVirtualAlias(domain)
            let isMailbox = domains.isVirtualMailbox(domain)
            if domains.isLocal(domain) && (isAlias || isMailbox) {
                out.append(
                    finding(
                        entry.line, 1, .error, "domain-in-mydestination",
                        "\(name) is in mydestination and also a virtual \(isAlias ? "alias" : "mailbox") domain: "
                            + "list a domain in one place only"))
            }
            if isAlias && isMailbox {
                out.append(
                    finding(
                        entry.line, 1, .error, "domain-in-both",
                        "\(name) is in both virtual_alias_domains and virtual_mailbox_domains"))
            }
            if !isAlias && !isMailbox && !domains.isLocal(domain) && !domains.isRelay(domain) {
                let consequence =
                    kind == .vmailbox
                    ? "virtual(8) never delivers it, so these entries are never used"
                    : "Postfix does not accept mail for it from outside, so these entries rarely matter"
                out.append(
                    finding(
                        entry.line, 1, .warning, "domain-not-virtual",
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
