/// `--lint` as a library: which maps to check and as what, and the checks themselves.

/// Lints map sources as Postfix will use them.
///
/// Syntax and duplicate rules read each source as a build does. The delivery rules resolve
/// every entry of the virtual alias and virtual mailbox maps with the same
/// ``AddressResolver`` that `--resolve` uses, over the configuration's maps with the linted
/// sources in place of their tables; every outcome other than delivery is an error at the
/// line of each entry that takes part. Without a known configuration
/// (``configurationKnown`` false) the domain classes are a guess, and what depends on them
/// is a note.
public struct MapLinter: Sendable {
    /// The server's main.cf (or Postfix's defaults).
    public var configuration: MainConfig
    /// Whether ``configuration`` is the real server's.
    public var configurationKnown: Bool
    /// Key folding, NUL convention and UTF-8 mode, as for a build.
    public var handling: KeyHandling
    /// What a build would do with repeated keys (`-r`, `-w`).
    public var duplicates: DuplicatePolicy
    /// postalias syntax for every map (the program runs as postalias).
    public var aliasSyntax: Bool

    /// - Parameters:
    ///   - configuration: the server's main.cf (or the defaults when it is not known).
    ///   - configurationKnown: whether `configuration` is the real server's (a main.cf
    ///     was named); only then do domain-class outcomes become errors.
    public init(
        configuration: MainConfig, configurationKnown: Bool, handling: KeyHandling, duplicates: DuplicatePolicy = .warn,
        aliasSyntax: Bool = false
    ) {
        self.configuration = configuration
        self.configurationKnown = configurationKnown
        self.handling = handling
        self.duplicates = duplicates
        self.aliasSyntax = aliasSyntax
    }

    /// The kind of each operand: from the main.cf (or master.cf) parameter that names it,
    /// else `kind` when given (`--kind`), else a guess from its file name.
    public func targets(operands: [String], kind: MapKind?) -> [LintTarget] {
        let references = configurationKnown ? configurationReferences() : []
        return operands.map { operand in
            var map = MapArgument(operand)
            while map.explicitType == "proxy" { map = MapArgument(map.name) }
            if let reference = Self.deciding(references.filter { samePath($0.map.name, map.name) }) {
                return LintTarget(
                    map: map, kind: reference.kind,
                    kindSource: "\(reference.parameter) in \(reference.file):\(reference.line)")
            }
            if let kind { return LintTarget(map: map, kind: kind, kindSource: "--kind \(kind.rawValue)") }
            return LintTarget(map: map, kind: MapKind.guess(fromPath: map.name), kindSource: "its file name")
        }
    }

    /// Every map the configuration refers to whose source file exists, each as the kind of
    /// its first reference, for `--lint -c DIR` without operands.
    public func configurationTargets() -> [LintTarget] {
        var seen: Set<String> = []
        var targets: [LintTarget] = []
        let references = configurationReferences().filter { Self.lintableTypes.contains($0.map.explicitType ?? "") }
        for reference in references {
            guard fileExists(reference.map.name), seen.insert(reference.map.name).inserted,
                let deciding = Self.deciding(references.filter { $0.map.name == reference.map.name })
            else { continue }
            targets.append(
                LintTarget(
                    map: deciding.map, kind: deciding.kind,
                    kindSource: "\(deciding.parameter) in \(deciding.file):\(deciding.line)"))
        }
        return targets
    }

    /// Of the references to one map, the one that says most about it: the first whose kind
    /// is not generic (`virtual_mailbox_maps` over `smtpd_sender_login_maps`), else the first.
    static func deciding(_ references: [MapReference]) -> MapReference? {
        references.first { $0.kind != .generic } ?? references.first
    }

    /// The table types whose source is a postmap(1) (or aliases(5)) source.
    static let lintableTypes: Set<String> = ["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"]

    /// main.cf's and master.cf's map references.
    func configurationReferences() -> [MapReference] {
        let directory = configuration.directory ?? MainConfig.defaultDirectory
        var master: MasterConfig? = nil
        if case .success(let bytes) = readWholeFile(directory + "/master.cf") {
            master = MasterConfig(text: String(decoding: bytes, as: UTF8.self))
        }
        return mapReferences(
            main: configuration, mainPath: directory + "/main.cf", master: master,
            masterPath: directory + "/master.cf")
    }

    /// Lints the targets together (a chain from one map into another is followed), and
    /// returns the findings sorted by file, line, column and severity.
    ///
    /// - Parameter warn: problems with other tables of the configuration (unreadable, not
    ///   a type lint reads), and notes about sources used in place of missing tables.
    public func lint(
        _ targets: [LintTarget], warn: @escaping (Diagnostic) -> Void = { _ in }
    ) throws(FatalError)
        -> [LintFinding]
    {
        var findings: [LintFinding] = []
        var linted: [LintedMap] = []
        for target in targets {
            let path = target.map.name
            let format: SourceFormat = target.kind == .aliases || aliasSyntax ? .postalias : .postmap
            findings.append(
                LintFinding(
                    file: path, line: 0, column: 0, severity: .note,
                    message:
                        "checked as \(target.kind.rawValue.first.map { "aeiou".contains($0) } == true ? "an" : "a") \(target.kind.rawValue) map (from \(target.kindSource))",
                    rule: .mapKind))
            let syntax = SourceSyntaxRules(path: path, format: format, handling: handling)
            guard let entries = syntax.run(into: &findings) else { continue }
            let compiled = try compileSourceInMemory(
                path: path, format: format, handling: handling, duplicates: duplicates,
                hostname: format == .postalias ? (try configuration.myhostname()) : "localhost", warn: { _ in })
            findings += duplicateFindings(compiled.duplicates, entries: entries, path: path)
            linted.append(LintedMap(target: target, entries: entries, contents: compiled.contents))
        }
        for map in linted where map.target.kind == .vmailbox {
            findings += MailboxRules(path: map.target.map.name).run(map.keptEntries)
        }
        let delivery = linted.filter { $0.target.kind == .virtual || $0.target.kind == .vmailbox }
        if !delivery.isEmpty {
            let resolver = try deliveryResolver(for: linted, warn: warn)
            findings += DeliveryRules(resolver: resolver, assumed: !configurationKnown, maps: delivery).run()
            if configurationKnown {
                for map in delivery {
                    findings += DomainRules(resolver: resolver, path: map.target.map.name, kind: map.target.kind)
                        .run(map.keptEntries)
                }
            }
        }
        return findings.sorted {
            ($0.file, $0.line, $0.column, $0.severity, $0.message) < (
                $1.file, $1.line, $1.column, $1.severity, $1.message
            )
        }
    }

    /// The resolver lint uses: the configuration's maps, each linted source in place of the
    /// table the configuration names, and linted maps it does not name first in their
    /// kind's list. Without a known configuration: Postfix's defaults, with the domains of
    /// the virtual alias maps' keys as virtual alias domains and those of the virtual
    /// mailbox maps' keys as virtual mailbox domains (the guess the notes spell out).
    func deliveryResolver(
        for linted: [LintedMap], warn: @escaping (Diagnostic) -> Void
    ) throws(FatalError) -> AddressResolver {
        var tables = TableLoader(handling: handling, warn: warn)
        tables.optionMapsReplaceLists = false
        let references = configurationKnown ? configurationReferences() : []
        var base = configurationKnown ? configuration : MainConfig()
        for map in linted {
            let lookup = LookupMap(name: map.target.map.name, contents: map.contents)
            let named = references.filter { samePath($0.map.name, map.target.map.name) }
            for reference in named { tables.sources[reference.map.name] = lookup }
            if !named.isEmpty { continue }
            switch map.target.kind {
            case .virtual: tables.optionMaps["virtual", default: []].append(lookup)
            case .vmailbox: tables.optionMaps["vmailbox", default: []].append(lookup)
            case .aliases: tables.optionMaps["alias", default: []].append(lookup)
            default: break
            }
        }
        if !configurationKnown {
            func domains(_ kind: MapKind) -> [String] {
                var result: [String] = []
                for map in linted where map.target.kind == kind {
                    for record in map.contents.records {
                        let domain = domainPart(of: record.key) ?? (kind == .virtual ? bareDomain(record.key) : nil)
                        if let domain, case let name = String(decoding: domain, as: UTF8.self), !result.contains(name) {
                            result.append(name)
                        }
                    }
                }
                return result
            }
            let mailboxDomains = domains(.vmailbox)
            base.set("virtual_mailbox_domains", mailboxDomains.joined(separator: " "))
            base.set(
                "virtual_alias_domains",
                domains(.virtual).filter { !mailboxDomains.contains($0) }.joined(separator: " "))
            if tables.optionMaps["alias"] == nil { base.set("alias_maps", "") }
        }
        return try buildResolver(base: base, explicit: configurationKnown, tables: &tables)
    }

    /// Repeated keys (naming both lines), from the duplicates the in-memory build met: the
    /// detector a build uses.
    private func duplicateFindings(
        _ found: [(key: [UInt8], line: Int?)], entries: [LintEntry], path: String
    ) -> [LintFinding] {
        var first: [[UInt8]: LintEntry] = [:]
        var byLine: [Int: LintEntry] = [:]
        for entry in entries {
            if first[entry.key] == nil { first[entry.key] = entry }
            byLine[entry.line] = entry
        }
        let outcome =
            duplicates == .replace ? "this entry replaces it (-r)" : "postmap keeps that one and ignores this entry"
        var out: [LintFinding] = []
        for (key, line) in found {
            guard let line, let entry = byLine[line], let original = first[key], original.line != line else { continue }
            let sameSpelling = original.rawKey == entry.rawKey
            let message =
                sameSpelling
                ? "duplicate key \"\(show(entry.rawKey))\", first defined at line \(original.line): \(outcome)"
                : "key \"\(show(entry.rawKey))\" is the same as \"\(show(original.rawKey))\" (line \(original.line)) "
                    + "after case folding: \(outcome)"
            out.append(
                LintFinding(
                    file: path, line: line, column: 1, severity: .warning, message: message,
                    rule: sameSpelling ? .duplicateKey : .duplicateAfterFolding))
        }
        return out
    }
}

/// Whether two spellings name the same file (`virtual` and `/etc/postfix/virtual`).
func samePath(_ a: String, _ b: String) -> Bool {
    a == b || a.hasSuffix("/" + b) || b.hasSuffix("/" + a)
}

/// A linted source: its entries as written and its contents as a build stores them.
struct LintedMap {
    var target: LintTarget
    var entries: [LintEntry]
    var contents: MapContents

    /// The entries whose record the build keeps (the first of duplicates, or the last with -r).
    var keptEntries: [LintEntry] {
        entries.filter { contents.record(forFoldedKey: $0.key)?.lineNumber == $0.line }
    }
}
