/// The lookup tables a Postfix configuration uses: every `type:name` element of main.cf
/// and of master.cf's `-o` overrides, with the parameter that names it and so what the
/// table is for (its ``MapKind``).

/// What a map holds, which decides how Postfix uses it and so which lint rules apply.
public enum MapKind: String, Sendable, Equatable, CaseIterable {
    /// virtual(5) aliases (`virtual_alias_maps`).
    case virtual
    /// virtual(8) mailboxes (`virtual_mailbox_maps`).
    case vmailbox
    /// aliases(5) (`alias_maps`, `alias_database`).
    case aliases
    /// transport(5) (`transport_maps`).
    case transport
    /// relocated(5) (`relocated_maps`).
    case relocated
    /// canonical(5) (`canonical_maps`, `sender_canonical_maps`, `recipient_canonical_maps`).
    case canonical
    /// access(5) (a `check_*_access` table of an `smtpd_*_restrictions` list).
    case access
    /// Any other table: only the syntax and duplicate rules.
    case generic

    /// The kind of the maps a main.cf parameter names; `previous` is the list word before
    /// the element (`check_recipient_access` in a restriction list).
    static func of(parameter: String, previous: String?) -> MapKind {
        switch parameter {
        case "virtual_alias_maps", "virtual_maps": return .virtual
        case "virtual_mailbox_maps": return .vmailbox
        case "alias_maps", "alias_database": return .aliases
        case "transport_maps": return .transport
        case "relocated_maps": return .relocated
        case "canonical_maps", "sender_canonical_maps", "recipient_canonical_maps": return .canonical
        default:
            if let previous, previous.hasPrefix("check_"), previous.hasSuffix("_access") { return .access }
            return .generic
        }
    }

    /// A guess from the file name when no configuration says: `virtual…`/`valias…` →
    /// virtual, `…mailbox…` → vmailbox, `aliases…` → aliases, `transport…`, `relocated…`,
    /// `…canonical…`, `access…` → those kinds, anything else generic.
    static func guess(fromPath path: String) -> MapKind {
        let base = (path.split(separator: "/").last.map(String.init) ?? path).lowercased()
        if base.contains("mailbox") { return .vmailbox }
        if base.hasPrefix("virtual") || base.hasPrefix("valias") { return .virtual }
        if base.hasPrefix("aliases") { return .aliases }
        if base.hasPrefix("transport") { return .transport }
        if base.hasPrefix("relocated") { return .relocated }
        if base.contains("canonical") { return .canonical }
        if base.hasPrefix("access") || base.hasSuffix("_access") { return .access }
        return .generic
    }
}

extension MapKind {
    /// This kind, or `other` when this one says nothing (generic).
    func inherited(_ other: MapKind?) -> MapKind { self == .generic ? (other ?? self) : self }
}

/// One `type:name` element of a configuration.
struct MapReference: Sendable, Equatable {
    /// The parameter whose value names the table.
    var parameter: String
    /// The element as it stands after `$name` expansion (`proxy:hash:/etc/postfix/virtual`).
    var element: String
    /// The table itself (`proxy:` looked through).
    var map: MapArgument
    /// Whether the element is wrapped in `proxy:`.
    var proxied: Bool
    /// The file that names it (main.cf or master.cf) and the line.
    var file: String
    var line: Int
    /// The master.cf service whose `-o` names it (nil for main.cf).
    var service: String?
    /// What the table is for.
    var kind: MapKind
    /// That service's type (`inet`, `unix`, …).
    var serviceType: String? = nil
    /// The parameter's whole value as written (before `$name` expansion).
    var value: String = ""
}

/// The map references of main.cf and (when `master` is given) master.cf's overrides, in
/// file order. A list word that is only a `$parameter` reference is left out (the element
/// belongs to that parameter); other words are expanded, so `hash:$config_directory/virtual`
/// becomes `hash:/etc/postfix/virtual`.
func mapReferences(
    main: MainConfig, mainPath: String, master: MasterConfig?, masterPath: String
) -> [MapReference] {
    var references: [MapReference] = []
    func scan(
        parameter: String, value: String, file: String, line: Int, service: MasterService?,
        expand: (String) -> String?
    ) {
        var previous: String? = nil
        for word in splitPostfixList(value) {
            defer { previous = word }
            if isParameterReference(word) { continue }
            let expanded = word.contains("$") ? (expand(word) ?? word) : word
            for element in splitPostfixList(expanded) {
                var inner = MapArgument(element)
                var proxied = false
                while inner.explicitType == "proxy" {
                    proxied = true
                    inner = MapArgument(inner.name)
                }
                guard let type = inner.explicitType, !type.isEmpty, !inner.name.isEmpty,
                    type.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }),
                    !type.hasPrefix("[")
                else { continue }
                references.append(
                    MapReference(
                        parameter: parameter, element: element, map: inner, proxied: proxied, file: file, line: line,
                        service: service?.name,
                        kind: MapKind.of(parameter: parameter, previous: previous).inherited(inherited[parameter]),
                        serviceType: service?.type, value: value))
            }
        }
    }
    // A parameter named by another (`alias_maps = $my_aliases`) holds tables of that one's
    // kind: what they are for decides how they are compiled (postalias for aliases).
    var inherited: [String: MapKind] = [:]
    for (name, value) in main.parameters {
        var previous: String? = nil
        for word in splitPostfixList(value) {
            defer { previous = word }
            guard isParameterReference(word) else { continue }
            let kind = MapKind.of(parameter: name, previous: previous)
            let referenced = String(word.filter { !"${}()".contains($0) })
            if kind != .generic { inherited[referenced] = kind }
        }
    }
    let defaults = (try? withPostfixDefaults(main)) ?? main
    let expandMain: (String) -> String? = { text in try? defaults.expanding(text) }
    for (name, value) in main.parameters.sorted(by: {
        (main.lines[$0.key] ?? 0, $0.key) < (main.lines[$1.key] ?? 0, $1.key)
    }) {
        scan(
            parameter: name, value: value, file: mainPath, line: main.lines[name] ?? 0, service: nil, expand: expandMain
        )
    }
    for service in master?.services ?? [] {
        for override in service.overrides {
            scan(
                parameter: override.name, value: override.value, file: masterPath, line: override.line,
                service: service, expand: expandMain)
        }
    }
    return references
}

/// `$name`, `${name}` or `$(name)` and nothing else.
private func isParameterReference(_ word: String) -> Bool {
    guard word.hasPrefix("$") else { return false }
    var name = word.dropFirst()
    if name.hasPrefix("{") && name.hasSuffix("}") || name.hasPrefix("(") && name.hasSuffix(")") {
        name = name.dropFirst().dropLast()
    }
    return !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
}
