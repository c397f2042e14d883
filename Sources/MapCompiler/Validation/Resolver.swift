/// Building an ``AddressResolver`` from a Postfix configuration: main.cf's settings with
/// Postfix 3.7's defaults, and the maps main.cf names (or maps given instead).

/// Maps that stand in for main.cf's `virtual_alias_maps`, `virtual_mailbox_maps` and
/// `alias_maps` (each list in search order; an empty list means no such maps).
public struct ResolverMaps: Sendable {
    /// virtual(5) alias maps (`virtual_alias_maps`).
    public var virtual: [LookupMap]
    /// virtual(8) mailbox maps (`virtual_mailbox_maps`).
    public var mailbox: [LookupMap]
    /// aliases(5) maps (`alias_maps`).
    public var alias: [LookupMap]

    /// Maps for the three lists; a list not given is empty.
    public init(virtual: [LookupMap] = [], mailbox: [LookupMap] = [], alias: [LookupMap] = []) {
        self.virtual = virtual
        self.mailbox = mailbox
        self.alias = alias
    }
}

extension AddressResolver {
    /// The resolver a Postfix configuration describes: main.cf's settings (Postfix 3.7's
    /// defaults for what it leaves out, master.cf's services when its directory is known)
    /// and the maps it names, of which `hash:` and `btree:` elements are read from `NAME.db`
    /// (through `proxy:`) and other elements skipped with a warning.
    ///
    /// - Parameters:
    ///   - configuration: main.cf, or `MainConfig()` for Postfix's defaults.
    ///   - configurationKnown: whether `configuration` is the real server's; when not, what
    ///     depends on the domain classes is marked as an assumption in each ``Resolution``.
    ///   - handling: how table keys were folded (lookups fold the same way).
    ///   - maps: maps to use instead of all three of main.cf's map lists; `nil` reads main.cf's.
    ///   - warn: tables that cannot be read (and are left out), notes about sources compiled
    ///     in place of missing tables.
    /// - Throws: a main.cf value Postfix would reject (a bad number, boolean or macro).
    public init(
        configuration: MainConfig, configurationKnown: Bool = true, handling: KeyHandling = KeyHandling(),
        maps: ResolverMaps? = nil, warn: @escaping (Diagnostic) -> Void = { _ in }
    ) throws(FatalError) {
        var tables = TableLoader(handling: handling, warn: warn)
        if let maps {
            tables.optionMaps = ["virtual": maps.virtual, "vmailbox": maps.mailbox, "alias": maps.alias]
        }
        self = try buildResolver(base: configuration, explicit: configurationKnown, tables: &tables)
    }
}

/// The resolver for main.cf `base` (Postfix's defaults filled in) and the maps it names,
/// opened through `tables` (which may hold command-line maps and sources to use instead).
func buildResolver(base: MainConfig, explicit: Bool, tables: inout TableLoader) throws(FatalError) -> AddressResolver {
    let config = try effectiveResolverConfig(base, tables: tables)
    // The maps first, so that a problem is reported under the maps parameter's name.
    let virtualMaps = tables.maps(try config.expanded("virtual_alias_maps") ?? "", parameter: "virtual_alias_maps")
    let mailboxMaps = tables.maps(
        try config.expanded("virtual_mailbox_maps") ?? "", parameter: "virtual_mailbox_maps")
    // Postfix's default alias_maps (hash:/etc/aliases, nis:mail.aliases) is used quietly.
    let aliasMaps = tables.maps(
        try config.expanded("alias_maps") ?? "", parameter: "alias_maps", quiet: base.parameters["alias_maps"] == nil)
    let transportMaps = tables.maps(try config.expanded("transport_maps") ?? "", parameter: "transport_maps")
    let relayRecipientMaps = tables.maps(
        try config.expanded("relay_recipient_maps") ?? "", parameter: "relay_recipient_maps")
    var settings = try ResolverSettings.load(from: config, tables: &tables)
    settings.configurationKnown = explicit
    return AddressResolver(
        settings: settings, virtualMaps: virtualMaps, mailboxMaps: mailboxMaps, aliasMaps: aliasMaps,
        transportMaps: transportMaps, relayRecipientMaps: relayRecipientMaps)
}
