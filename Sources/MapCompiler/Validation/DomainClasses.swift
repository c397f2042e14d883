/// Which domains a Postfix configuration treats as local, virtual alias, virtual mailbox or
/// relay domains (postconf(5) `mydestination`, `virtual_alias_domains`,
/// `virtual_mailbox_domains`, `relay_domains`), read from main.cf without Postfix.

/// One element of a Postfix domain list.
enum DomainListElement {
    /// A domain name (folded).
    case name([UInt8])
    /// `type:table`: a domain matches when it is a key of the table (the value is ignored).
    case table(MapContents)
}

struct DomainClasses {
    /// `true` when a main.cf was read; the multi-domain rules need one.
    let configured: Bool
    private var local: [DomainListElement] = []
    private var virtualAlias: [DomainListElement] = []
    private var virtualMailbox: [DomainListElement] = []
    private var relay: [DomainListElement] = []
    /// The files named by `hash:`/`btree:` entries of the map parameters.
    private(set) var virtualAliasMapFiles: [String] = []
    private(set) var virtualMailboxMapFiles: [String] = []
    private(set) var aliasMapFiles: [String] = []
    private let folding: KeyFolding

    init(config: MainConfig, explicit: Bool, handling: KeyHandling, warn: (Diagnostic) -> Void) throws(FatalError) {
        configured = explicit && config.directory != nil
        folding = handling.folding == .none ? .ascii : handling.folding
        guard configured else { return }
        let hostname = try config.myhostname()
        let domain =
            try config.expanded("mydomain")
            ?? (hostname.firstIndex(of: ".").map { String(hostname[hostname.index(after: $0)...]) } ?? "localdomain")
        var defaults = ["myhostname": hostname, "mydomain": domain]
        defaults["mydestination"] = "$myhostname, localhost.$mydomain, localhost"
        defaults["virtual_alias_maps"] = try config.expanded("virtual_maps") ?? ""
        defaults["virtual_mailbox_maps"] = ""
        defaults["virtual_alias_domains"] = "$virtual_alias_maps"
        defaults["virtual_mailbox_domains"] = "$virtual_mailbox_maps"
        defaults["alias_maps"] = "hash:/etc/aliases"
        let level = (try config.expanded("compatibility_level") ?? "0").split(separator: ".").first.flatMap { Int($0) }
        defaults["relay_domains"] = (level ?? 0) < 2 ? "$mydestination" : ""
        var effective = config
        for (name, value) in defaults where config.parameters[name] == nil { effective.set(name, value) }

        func list(_ name: String) throws(FatalError) -> [String] {
            (try effective.expanded(name) ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
                .map(String.init).filter { !$0.isEmpty }
        }
        func elements(_ name: String) throws(FatalError) -> [DomainListElement] {
            var result: [DomainListElement] = []
            for item in try list(name) {
                if let colon = item.firstIndex(of: ":") {
                    let type = String(item[..<colon])
                    let path = String(item[item.index(after: colon)...])
                    guard type == "hash" || type == "btree" else { continue }
                    if let contents = Self.load(path: path, handling: handling) {
                        result.append(.table(contents))
                    } else {
                        warn(Diagnostic(.warning, "\(name): cannot read \(item); its domains are not known"))
                    }
                } else if !item.hasPrefix("/") && !item.hasPrefix("!") {
                    result.append(.name(folding.fold(Array(item.lowercased().utf8))))
                }
            }
            return result
        }
        func files(_ name: String) throws(FatalError) -> [String] {
            try list(name).compactMap { item in
                guard let colon = item.firstIndex(of: ":") else { return nil }
                let type = item[..<colon]
                return type == "hash" || type == "btree" ? String(item[item.index(after: colon)...]) : nil
            }
        }
        local = try elements("mydestination")
        virtualAlias = try elements("virtual_alias_domains")
        virtualMailbox = try elements("virtual_mailbox_domains")
        relay = try elements("relay_domains")
        virtualAliasMapFiles = try files("virtual_alias_maps")
        virtualMailboxMapFiles = try files("virtual_mailbox_maps")
        aliasMapFiles = try files("alias_maps")
    }

    /// The table `path.db` when it exists, else the source `path` compiled in memory.
    private static func load(path: String, handling: KeyHandling) -> MapContents? {
        var ignored: [Diagnostic] = []
        if let table = try? readTableContents(
            tablePath: path + ".db", method: nil, typeName: "hash", handling: handling,
            warn: { ignored.append($0) })
        {
            return table
        }
        return try? compileSourceInMemory(
            path: path, format: .postmap, handling: handling, warn: { ignored.append($0) }
        ).contents
    }

    /// What main.cf uses the map at `path` for, if it names it.
    func kind(ofMapAt path: String) -> MapKind? {
        func same(_ a: String, _ b: String) -> Bool {
            a == b || a.hasSuffix("/" + b) || b.hasSuffix("/" + a)
        }
        if virtualAliasMapFiles.contains(where: { same($0, path) }) { return .virtual }
        if virtualMailboxMapFiles.contains(where: { same($0, path) }) { return .vmailbox }
        if aliasMapFiles.contains(where: { same($0, path) }) { return .aliases }
        return nil
    }

    func isLocal(_ domain: [UInt8]) -> Bool { matches(domain, local) }
    func isVirtualAlias(_ domain: [UInt8]) -> Bool { matches(domain, virtualAlias) }
    func isVirtualMailbox(_ domain: [UInt8]) -> Bool { matches(domain, virtualMailbox) }
    func isRelay(_ domain: [UInt8]) -> Bool { matches(domain, relay) }

    private func matches(_ domain: [UInt8], _ elements: [DomainListElement]) -> Bool {
        let folded = folding.fold(domain)
        for element in elements {
            switch element {
            case .name(let name): if name == folded { return true }
            case .table(let contents): if contents.record(forFoldedKey: folded) != nil { return true }
            }
        }
        return false
    }
}
