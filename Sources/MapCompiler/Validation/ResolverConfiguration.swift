/// Reading the resolver's settings and tables from main.cf, with Postfix 3.7's defaults for
/// every parameter main.cf leaves out.

/// Opens the `type:name` elements of main.cf lists (maps lists and domain lists), once each.
///
/// Only `hash:` and `btree:` tables can be read (the file `NAME.db`); a `proxy:` prefix is
/// looked through. Maps given on the command line appear in lists as
/// ``optionMapType``:`KIND:INDEX` elements, so `$virtual_alias_maps` in a domain list means the
/// maps in use wherever they came from. Elements that cannot be read are reported once
/// through `warn` and then left out.
struct TableLoader {
    /// The element type standing for the command-line maps.
    static let optionMapType = "swiftpostmap-option"

    let handling: KeyHandling
    let warn: (Diagnostic) -> Void
    /// Maps from `--virtual`, `--vmailbox`, `--alias-map` by kind (`virtual`, …).
    var optionMaps: [String: [LookupMap]] = [:]
    /// Whether the option maps replace main.cf's lists (`--resolve`) or come first in
    /// them (`--lint`, for linted maps main.cf does not name).
    var optionMapsReplaceLists = true
    /// Maps to use for `type:NAME` elements instead of reading NAME.db, by NAME (the
    /// sources being linted, compiled in memory).
    var sources: [String: LookupMap] = [:]
    private var cache: [String: LookupMap?] = [:]

    init(handling: KeyHandling, warn: @escaping (Diagnostic) -> Void) {
        self.handling = handling
        self.warn = warn
    }

    /// The list value naming the command-line maps of `kind` (for a main.cf parameter).
    func placeholderList(_ kind: String) -> String {
        (optionMaps[kind] ?? []).indices.map { "\(Self.optionMapType):\(kind):\($0)" }.joined(separator: " ")
    }

    /// The table an element names; one that cannot be read is reported once through `warn`
    /// (naming `parameter`) and stands in its list as an unreadable map, or (with `quiet`, for
    /// Postfix's default `alias_maps`) is left out silently.
    mutating func table(_ element: String, parameter: String, quiet: Bool = false) -> LookupMap? {
        if let cached = cache[element] { return cached }
        var map = open(element, parameter: parameter, warn: quiet ? { _ in } : warn)
        if map == nil && !quiet && !element.hasPrefix(Self.optionMapType) { map = LookupMap(unreadable: element) }
        cache[element] = map
        return map
    }

    private func open(_ element: String, parameter: String, warn: (Diagnostic) -> Void) -> LookupMap? {
        var spec = element[...]
        while spec.hasPrefix("proxy:") { spec = spec.dropFirst("proxy:".count) }
        guard let colon = spec.firstIndex(of: ":") else {
            warn(Diagnostic(.warning, "\(parameter): skipping \(element): not a type:table"))
            return nil
        }
        let type = String(spec[..<colon])
        let name = String(spec[spec.index(after: colon)...])
        if type == Self.optionMapType {
            let fields = name.split(separator: ":")
            if fields.count == 2, let index = Int(fields[1]), let maps = optionMaps[String(fields[0])],
                maps.indices.contains(index)
            {
                return maps[index]
            }
            return nil
        }
        if let map = sources[name] { return map }
        let format: SourceFormat = parameter == "alias_maps" || parameter == "alias_database" ? .postalias : .postmap
        let indexed = if case .indexed = MapTypeSupport(type: type) { true } else { false }
        // pgsql: maps are read whole when --export wrote them (MapContents.load says so
        // when it did not).
        guard indexed || type == "texthash" || type == "pgsql" else {
            warn(
                Diagnostic(
                    .warning,
                    "\(parameter): \(element) cannot be read here (only hash:, btree:, lmdb:, cdb:, texthash:"
                        + " and exported pgsql: tables are): its answers are unknown"))
            return nil
        }
        // texthash: is read from its source file by Postfix itself.
        let map = type == "texthash" ? MapArgument(name) : MapArgument(type: type, name: name)
        do {
            let contents = try MapContents.load(map, format: format, handling: handling, warn: warn)
            return LookupMap(name: element, contents: contents)
        } catch {
            warn(
                Diagnostic(
                    .warning,
                    "\(parameter): \(element) cannot be read here (\(error.description)): its answers are unknown"))
            return nil
        }
    }

    /// The tables of a maps list (`virtual_alias_maps = hash:/a, btree:/b`); `quiet` skips
    /// unreadable elements without a warning (for Postfix's default `alias_maps`).
    mutating func maps(_ list: String, parameter: String, quiet: Bool = false) -> [LookupMap] {
        splitPostfixList(list).compactMap { table($0, parameter: parameter, quiet: quiet) }
    }

    /// A domain list: names, `!negated` elements, `/file/name` (its words), `type:table`.
    mutating func domainList(_ list: String, parameter: String, kind: DomainList.Kind) -> DomainList {
        var result = DomainList(kind: kind)
        for word in splitPostfixList(list) { addDomainElement(word, negated: false, parameter: parameter, to: &result) }
        return result
    }

    private mutating func addDomainElement(
        _ word: String, negated: Bool, parameter: String, to list: inout DomainList
    ) {
        var word = word[...]
        var negated = negated
        while word.hasPrefix("!") {
            negated.toggle()
            word = word.dropFirst()
        }
        let text = String(word)
        if text.hasPrefix("/") {
            switch readWholeFile(text) {
            case .success(let bytes):
                let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
                for line in lines where !line.trimmingPrefix(while: { $0 == " " || $0 == "\t" }).hasPrefix("#") {
                    for inner in splitPostfixList(String(line)) {
                        addDomainElement(inner, negated: negated, parameter: parameter, to: &list)
                    }
                }
            case .failure(let error):
                warn(Diagnostic(.warning, "\(parameter): skipping \(text): open: \(error.text)"))
            }
        } else if text.contains(":") && !text.hasPrefix("[") {
            if let map = table(text, parameter: parameter), map.readable {
                list.elements.append((.table(map), negated))
            } else {
                list.elements.append((.unsupported(text), negated))
            }
        } else if !text.isEmpty {
            list.elements.append((.name(text), negated))
        }
    }
}

/// Splits a main.cf list at whitespace and commas, keeping `{…}` groups together.
func splitPostfixList(_ value: String) -> [String] {
    var words: [String] = []
    var current = ""
    var depth = 0
    for character in value {
        if character == "{" { depth += 1 }
        if character == "}" { depth = max(0, depth - 1) }
        if depth == 0 && (character == "," || character.isWhitespace) {
            if !current.isEmpty { words.append(current) }
            current = ""
        } else {
            current.append(character)
        }
    }
    if !current.isEmpty { words.append(current) }
    return words
}

extension ResolverSettings {
    /// Reads the settings from main.cf. Parameters main.cf does not set take Postfix 3.7's
    /// defaults: `myhostname` (the system's name, made fully qualified with `.$mydomain`),
    /// `mydomain` (`myhostname` without its first label, or `localdomain`), `myorigin =
    /// $myhostname`, `mydestination = $myhostname, localhost.$mydomain, localhost`,
    /// `relay_domains` (`$mydestination` below compatibility level 2, else empty),
    /// `virtual_alias_domains = $virtual_alias_maps`, `virtual_mailbox_domains =
    /// $virtual_mailbox_maps`, `recipient_delimiter` empty, `propagate_unmatched_extensions =
    /// canonical, virtual`, `append_dot_mydomain` (`yes` below level 1), the three
    /// `virtual_alias_*_limit`s 1000, `inet_interfaces = all`.
    ///
    /// - Parameters:
    ///   - config: main.cf; the map lists in it (`virtual_alias_maps`, …) should already name
    ///     the maps in use (see ``effectiveResolverConfig(_:tables:)``).
    ///   - tables: opens `type:table` elements of the domain lists.
    static func load(from config: MainConfig, tables: inout TableLoader) throws(FatalError) -> ResolverSettings {
        var settings = ResolverSettings()
        let folding = tables.handling.folding
        settings.folding = folding == .none ? .ascii : folding
        func value(_ name: String) throws(FatalError) -> String { try config.expanded(name) ?? "" }

        settings.recipientDelimiters = Set(try value("recipient_delimiter"))
        settings.myorigin = try value("myorigin")
        settings.mydomain = try value("mydomain")
        settings.mydestination = tables.domainList(
            try value("mydestination"), parameter: "mydestination", kind: .strings)
        settings.virtualAliasDomains = tables.domainList(
            try value("virtual_alias_domains"), parameter: "virtual_alias_domains", kind: .strings)
        settings.virtualMailboxDomains = tables.domainList(
            try value("virtual_mailbox_domains"), parameter: "virtual_mailbox_domains", kind: .strings)
        let parentStyle = splitPostfixList(try value("parent_domain_matches_subdomains")).contains("relay_domains")
        settings.relayDomains = tables.domainList(
            try value("relay_domains"), parameter: "relay_domains", kind: .hosts(parentMatchesSubdomains: parentStyle))
        settings.interfaceAddresses = interfaceAddresses(
            splitPostfixList(try value("inet_interfaces")) + splitPostfixList(try value("proxy_interfaces")))
        settings.recursionLimit = try config.positiveIntegerParameter("virtual_alias_recursion_limit", default: 1000)
        settings.expansionLimit = try config.positiveIntegerParameter("virtual_alias_expansion_limit", default: 1000)
        settings.addressLengthLimit = try config.positiveIntegerParameter(
            "virtual_alias_address_length_limit", default: 1000)
        let propagate = splitPostfixList(try value("propagate_unmatched_extensions")).map { $0.lowercased() }
        settings.propagateToVirtual = propagate.contains("virtual")
        settings.propagateToAlias = propagate.contains("alias")
        settings.ownerRequestSpecial = try config.booleanParameter("owner_request_special") ?? false
        settings.doubleBounceSender = try value("double_bounce_sender")
        settings.appendAtMyorigin = try config.booleanParameter("append_at_myorigin") ?? false
        settings.appendDotMydomain = try config.booleanParameter("append_dot_mydomain") ?? false
        settings.virtualMailboxBase = try value("virtual_mailbox_base")
        settings.localTransport = try value("local_transport")
        settings.virtualTransport = try value("virtual_transport")
        settings.relayTransport = try value("relay_transport")
        settings.defaultTransport = try value("default_transport")
        settings.relayhost = try value("relayhost")
        settings.localRecipientCheck = !splitPostfixList(try value("local_recipient_maps")).isEmpty
        if let directory = config.directory, case .success(let bytes) = readWholeFile(directory + "/master.cf") {
            settings.serviceCommands = MasterConfig(text: String(decoding: bytes, as: UTF8.self)).transportCommands
        }
        return settings
    }

    /// The address literals of `inet_interfaces` and `proxy_interfaces`: listed IP addresses;
    /// `all` and `loopback-only` give the loopback addresses (this simulation does not know
    /// the interfaces of the machine that runs Postfix); host names are not resolved.
    private static func interfaceAddresses(_ words: [String]) -> Set<String> {
        var addresses: Set<String> = []
        for word in words {
            let lower = word.lowercased()
            if lower == "all" || lower == "loopback-only" {
                addresses.formUnion(["127.0.0.1", "::1"])
            } else if lower.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) {
                addresses.insert(lower)
            } else if lower.hasPrefix("["), lower.hasSuffix("]") {
                addresses.insert(String(lower.dropFirst().dropLast()))
            }
        }
        return addresses
    }
}

/// main.cf with Postfix 3.7's defaults filled in for every parameter the resolver reads, and
/// with the map lists replaced by the command-line maps when any were given.
func effectiveResolverConfig(_ base: MainConfig, tables: TableLoader) throws(FatalError) -> MainConfig {
    var config = try withPostfixDefaults(base)
    if !tables.optionMaps.isEmpty {
        for (parameter, kind) in [
            ("virtual_alias_maps", "virtual"), ("virtual_mailbox_maps", "vmailbox"), ("alias_maps", "alias"),
        ] {
            if tables.optionMapsReplaceLists {
                config.set(parameter, tables.placeholderList(kind))
            } else if !(tables.optionMaps[kind] ?? []).isEmpty {
                config.set(parameter, tables.placeholderList(kind) + " " + (config.parameters[parameter] ?? ""))
            }
        }
    }
    return config
}

/// main.cf with Postfix 3.7's defaults for the parameters swiftpostmap reads (the
/// resolver's, the transports, `config_directory`), so `$name` expands as in Postfix.
func withPostfixDefaults(_ base: MainConfig) throws(FatalError) -> MainConfig {
    var config = base
    func setDefault(_ name: String, _ value: String) {
        if config.parameters[name] == nil { config.set(name, value) }
    }
    let level = try base.expanded("compatibility_level") ?? "0"
    if base.parameters["myhostname"] == nil { config.set("myhostname", try base.myhostname()) }
    if base.parameters["mydomain"] == nil { config.set("mydomain", try base.mydomain()) }
    setDefault("config_directory", base.directory ?? MainConfig.defaultDirectory)
    setDefault("myorigin", "$myhostname")
    setDefault("mydestination", "$myhostname, localhost.$mydomain, localhost")
    setDefault("relay_domains", compatibilityLevel(level, atLeast: 2) ? "" : "$mydestination")
    setDefault(
        "parent_domain_matches_subdomains",
        "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,"
            + "relay_domains,smtpd_access_maps")
    setDefault("inet_interfaces", "all")
    setDefault("virtual_maps", "")
    setDefault("virtual_alias_maps", "$virtual_maps")
    setDefault("virtual_mailbox_maps", "")
    setDefault("alias_maps", "hash:/etc/aliases, nis:mail.aliases")
    setDefault("virtual_alias_domains", "$virtual_alias_maps")
    setDefault("virtual_mailbox_domains", "$virtual_mailbox_maps")
    setDefault("propagate_unmatched_extensions", "canonical, virtual")
    setDefault("owner_request_special", "yes")
    setDefault("double_bounce_sender", "double-bounce")
    setDefault("append_at_myorigin", "yes")
    setDefault("append_dot_mydomain", compatibilityLevel(level, atLeast: 1) ? "no" : "yes")
    setDefault("local_transport", "local:$myhostname")
    setDefault("virtual_transport", "virtual")
    setDefault("relay_transport", "relay")
    setDefault("default_transport", "smtp")
    setDefault("relayhost", "")
    setDefault("transport_maps", "")
    setDefault("relay_recipient_maps", "")
    setDefault("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps")
    return config
}

/// Whether a dotted `compatibility_level` is at least `major`.
private func compatibilityLevel(_ level: String, atLeast major: Int) -> Bool {
    (level.split(separator: ".").first.flatMap { Int($0) } ?? 0) >= major
}
