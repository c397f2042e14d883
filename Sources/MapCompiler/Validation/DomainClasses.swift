/// Which domains a Postfix configuration treats as local, virtual alias, virtual mailbox or
/// relay domains, for the multi-domain rules of `--lint`. The lists are read exactly as the
/// resolver reads them (``ResolverSettings``, with Postfix 3.7's defaults), so `--lint` and
/// `--resolve` never disagree about a domain.
struct DomainClasses {
    /// `true` when the user named a main.cf; the multi-domain rules need one.
    let configured: Bool
    private var settings = ResolverSettings()
    /// The files named by `hash:`/`btree:` entries of the maps parameters.
    private(set) var virtualAliasMapFiles: [String] = []
    private(set) var virtualMailboxMapFiles: [String] = []
    private(set) var aliasMapFiles: [String] = []

    init(
        config: MainConfig, explicit: Bool, handling: KeyHandling, warn: @escaping (Diagnostic) -> Void
    )
        throws(FatalError)
    {
        configured = explicit && config.directory != nil
        guard configured else { return }
        var tables = TableLoader(handling: handling, warn: warn)
        let effective = try effectiveResolverConfig(config, tables: tables)
        settings = try ResolverSettings.load(from: effective, tables: &tables)
        func files(_ name: String) throws(FatalError) -> [String] {
            splitPostfixList(try effective.expanded(name) ?? "").compactMap { item in
                guard let colon = item.firstIndex(of: ":") else { return nil }
                let type = item[..<colon]
                return type == "hash" || type == "btree" ? String(item[item.index(after: colon)...]) : nil
            }
        }
        virtualAliasMapFiles = try files("virtual_alias_maps")
        virtualMailboxMapFiles = try files("virtual_mailbox_maps")
        aliasMapFiles = try files("alias_maps")
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

    func isLocal(_ domain: [UInt8]) -> Bool { contains(settings.mydestination, domain) }
    func isVirtualAlias(_ domain: [UInt8]) -> Bool { contains(settings.virtualAliasDomains, domain) }
    func isVirtualMailbox(_ domain: [UInt8]) -> Bool { contains(settings.virtualMailboxDomains, domain) }
    func isRelay(_ domain: [UInt8]) -> Bool { contains(settings.relayDomains, domain) }

    private func contains(_ list: DomainList, _ domain: [UInt8]) -> Bool {
        list.contains(String(decoding: domain, as: UTF8.self), folding: settings.folding)
    }
}
