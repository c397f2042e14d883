/// A simulation of what Postfix 3.7 does with a recipient address at delivery time
/// (postmap-behavior.md §10): cleanup(8)'s canonicalization and recursive virtual alias
/// expansion, trivial-rewrite(8)'s domain classes, virtual(8)'s mailbox lookup and local(8)'s
/// aliases(5) lookup. Pure: the tables and the main.cf settings are given as data.

/// The main.cf parameters the resolver uses, already expanded (``ResolverSettings/load(from:tables:)``
/// reads them from main.cf with Postfix's defaults).
public struct ResolverSettings: Sendable {
    /// `recipient_delimiter`: the set of characters that start an address extension.
    public var recipientDelimiters: Set<Character> = []
    /// `myorigin`, appended to bare localparts (`append_at_myorigin`).
    public var myorigin = "localhost"
    /// `mydomain`, appended to dotless domains when `append_dot_mydomain = yes`.
    public var mydomain = "localdomain"
    /// `mydestination`: the local domains.
    public var mydestination = DomainList(names: ["localhost"])
    /// IP addresses (without brackets) of `inet_interfaces` and `proxy_interfaces`: an address
    /// literal `[ip]` naming one of them is a local domain.
    public var interfaceAddresses: Set<String> = ["127.0.0.1", "::1"]
    /// `virtual_alias_domains` (default: the keys of `$virtual_alias_maps`).
    public var virtualAliasDomains = DomainList()
    /// `virtual_mailbox_domains` (default: the keys of `$virtual_mailbox_maps`).
    public var virtualMailboxDomains = DomainList()
    /// `relay_domains` (a host list).
    public var relayDomains = DomainList(kind: .hosts(parentMatchesSubdomains: true))
    /// `virtual_alias_recursion_limit`, `virtual_alias_expansion_limit`,
    /// `virtual_alias_address_length_limit` (all 1000 by default).
    public var recursionLimit = 1000
    public var expansionLimit = 1000
    public var addressLengthLimit = 1000
    /// Whether `propagate_unmatched_extensions` names `virtual` (and `alias`).
    public var propagateToVirtual = true
    public var propagateToAlias = false
    /// `owner_request_special`.
    public var ownerRequestSpecial = true
    /// `double_bounce_sender`, whose localpart is never split.
    public var doubleBounceSender = "double-bounce"
    /// `append_at_myorigin`, `append_dot_mydomain`.
    public var appendAtMyorigin = true
    public var appendDotMydomain = false
    /// `virtual_mailbox_base` (empty when not set).
    public var virtualMailboxBase = ""
    /// How table keys (and case-insensitive comparisons) are folded.
    public var folding: KeyFolding = .ascii

    public init() {}
}

/// One thing the resolver looked up or rewrote, in order.
public struct ResolutionStep: Sendable, Equatable {
    public enum Stage: String, Sendable {
        /// The input address canonicalized (`@$myorigin`, `.$mydomain`, trailing dot).
        case canonical
        /// A virtual_alias_maps search (cleanup(8)).
        case virtual
        /// A virtual_mailbox_maps search (virtual(8)).
        case vmailbox
        /// An aliases(5) search (local(8)).
        case alias
    }

    public var stage: Stage
    /// The address (external form) the step applies to.
    public var address: String
    public var matched: Bool
    /// The key that matched, the map it matched in and the raw value (nil when not found).
    public var query: String? = nil
    public var map: String? = nil
    public var value: String? = nil
    /// The addresses (external form) the step produced: canonical and virtual stages.
    public var result: [String] = []
    /// Every key asked, in order, up to the match.
    public var tried: [String] = []
    /// Why something special happened (extension propagated, self-reference, …).
    public var note: String? = nil
}

/// Where a final recipient goes.
public struct ResolvedRecipient: Sendable, Equatable {
    /// trivial-rewrite(8)'s address class of the recipient's domain (§10.7).
    public enum DomainClass: String, Sendable {
        case local
        case virtualAlias = "virtual-alias"
        case virtualMailbox = "virtual-mailbox"
        case relay
        case `default`
    }

    /// What happens to the recipient.
    public enum Outcome: String, Sendable {
        /// local(8) delivery (through aliases(5) when an alias matched).
        case local
        /// virtual(8) delivery into a mailbox.
        case mailbox
        /// A relay_domains destination (relay_transport).
        case relay
        /// Any other domain (default_transport).
        case remote
        /// Unknown user in a virtual alias or virtual mailbox domain.
        case reject
        /// A temporary failure: the mail stays queued.
        case `defer`
    }

    /// virtual(8)'s mailbox formats.
    public enum MailboxFormat: String, Sendable {
        case maildir
        case mbox
    }

    /// The recipient in external form.
    public var address: String
    public var domainClass: DomainClass
    public var outcome: Outcome
    /// The virtual_mailbox_maps value (relative to `virtual_mailbox_base`).
    public var mailbox: String? = nil
    /// `virtual_mailbox_base/value`, when the base is set.
    public var path: String? = nil
    public var format: MailboxFormat? = nil
    /// The aliases(5) value for a local recipient, when an alias matched.
    public var alias: String? = nil
    /// The local(8) user name (localpart without extension) when no alias matched.
    public var user: String? = nil
    /// How the domain class was decided (`local domain: mydestination (example.com)`).
    public var via: String = ""
    /// The explanation of a reject or defer.
    public var reason: String? = nil
}

/// The complete answer for one input address.
public struct Resolution: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Every final recipient is deliverable.
        case ok
        /// At least one final recipient is unknown (and none deferred).
        case reject
        /// Expansion failed (loop, limit, bad table value) or a recipient deferred.
        case `defer`
    }

    /// The address as given.
    public var input: String
    /// The canonical address (external form) that virtual alias expansion started from.
    public var canonical: String
    public var steps: [ResolutionStep] = []
    public var recipients: [ResolvedRecipient] = []
    public var status: Status = .ok
    /// The reason of a deferral of the whole expansion (Postfix's warning text).
    public var reason: String? = nil
    /// Configuration problems that do not change the result (e.g. no virtual_mailbox_base).
    public var warnings: [String] = []
}

/// The resolver engine: settings and tables in, ``Resolution`` out.
public struct AddressResolver: Sendable {
    public var settings: ResolverSettings
    /// `virtual_alias_maps`, `virtual_mailbox_maps`, `alias_maps`, each in search order.
    public var virtualMaps: [LookupMap]
    public var mailboxMaps: [LookupMap]
    public var aliasMaps: [LookupMap]

    public init(
        settings: ResolverSettings, virtualMaps: [LookupMap] = [], mailboxMaps: [LookupMap] = [],
        aliasMaps: [LookupMap] = []
    ) {
        self.settings = settings
        self.virtualMaps = virtualMaps
        self.mailboxMaps = mailboxMaps
        self.aliasMaps = aliasMaps
    }

    // MARK: - Whole resolution

    /// Resolves one recipient given in internal form (see ``parseInputAddress(_:)``).
    ///
    /// - Parameter display: the address as the user typed it (kept in the result).
    public func resolve(_ address: String, display: String? = nil) -> Resolution {
        let canonical = canonicalize(address)
        var resolution = Resolution(input: display ?? externalAddress(address), canonical: externalAddress(canonical))
        if canonical != address {
            resolution.steps.append(
                ResolutionStep(
                    stage: .canonical, address: externalAddress(address), matched: true,
                    result: [externalAddress(canonical)], note: canonicalNote(from: address, to: canonical)))
        }
        let expansion = expand(canonical, steps: &resolution.steps)
        if let failure = expansion.failure {
            resolution.status = .defer
            resolution.reason = failure
            return resolution
        }
        for recipient in expansion.recipients {
            resolution.recipients.append(deliver(recipient, steps: &resolution.steps, warnings: &resolution.warnings))
        }
        if resolution.recipients.contains(where: { $0.outcome == .defer }) {
            resolution.status = .defer
        } else if resolution.recipients.contains(where: { $0.outcome == .reject }) {
            resolution.status = .reject
        }
        return resolution
    }

    // MARK: - Canonicalization (§10.5 step 3)

    /// The address as cleanup's "local" rewriting leaves it: one trailing dot of the domain
    /// dropped, `@$myorigin` appended to a bare localpart, `.$mydomain` to a dotless domain
    /// when `append_dot_mydomain = yes`. The null address stays empty.
    func canonicalize(_ address: String) -> String {
        if address.isEmpty { return address }
        var parts = AddressParts(address)
        guard var domain = parts.domain else {
            return settings.appendAtMyorigin ? address + "@" + settings.myorigin : address
        }
        if domain.hasSuffix("."), !domain.hasSuffix(".."), domain.count > 1 { domain.removeLast() }
        if settings.appendDotMydomain, !domain.isEmpty, !domain.contains("."), !domain.hasPrefix("[") {
            domain += "." + settings.mydomain
        }
        parts.domain = domain
        return parts.joined()
    }

    private func canonicalNote(from address: String, to canonical: String) -> String {
        if AddressParts(address).domain == nil { return "append_at_myorigin: @\(settings.myorigin)" }
        if canonical.hasSuffix("." + settings.mydomain) && !address.hasSuffix("." + settings.mydomain) {
            return "append_dot_mydomain: .\(settings.mydomain)"
        }
        return "trailing dot removed"
    }

    // MARK: - The search sequence (§10.4)

    /// One key of a search sequence.
    struct QueryKey: Equatable {
        var key: String
        /// The extension that this key leaves out (steps 2 and 3b), if any.
        var unmatchedExtension: String?
    }

    /// The localpart split at its first recipient delimiter, unless it must not be (§10.4).
    func splitExtension(_ localpart: String) -> (user: String, extension: String)? {
        guard !settings.recipientDelimiters.isEmpty,
            let index = localpart.firstIndex(where: { settings.recipientDelimiters.contains($0) }),
            index != localpart.startIndex
        else { return nil }
        let lower = localpart.lowercased()
        if lower == "postmaster" || lower == "mailer-daemon" || lower == settings.doubleBounceSender.lowercased() {
            return nil
        }
        if settings.recipientDelimiters.contains("-") && settings.ownerRequestSpecial
            && (lower.hasPrefix("owner-") || lower.hasSuffix("-request"))
        {
            return nil
        }
        return (String(localpart[..<index]), String(localpart[index...]))
    }

    /// Whether the localpart-only steps apply to `domain`: it is `myorigin`, in
    /// `mydestination`, or an address literal of this machine (one trailing dot ignored).
    func isLocalForLookup(_ domain: String) -> Bool {
        let bare = strippingOneTrailingDot(domain)
        if sameText(bare, settings.myorigin) { return true }
        return isLocalDomain(bare) != nil
    }

    /// How `domain` is local (mydestination element or interface address), or `nil`.
    func isLocalDomain(_ domain: String) -> String? {
        if domain.hasPrefix("["), domain.hasSuffix("]") {
            var inner = String(domain.dropFirst().dropLast()).lowercased()
            if inner.hasPrefix("ipv6:") { inner.removeFirst(5) }
            return settings.interfaceAddresses.contains(inner) ? "inet_interfaces/proxy_interfaces" : nil
        }
        if let match = settings.mydestination.match(domain, folding: settings.folding), match.matched {
            return "mydestination (\(match.by))"
        }
        return nil
    }

    /// The search sequence for `address` (internal form): `user+ext@domain`, `user@domain`,
    /// for local domains `user+ext` and `user`, then `@domain`; keys in external form, each
    /// followed by its internal form when `internalToo` and it differs.
    func searchKeys(_ address: String, internalToo: Bool) -> [QueryKey] {
        let parts = AddressParts(address)
        let split = splitExtension(parts.localpart)
        var keys: [QueryKey] = []
        func add(_ localpart: String, domain: String?, unmatched: String?) {
            let external = quotedLocalpart(localpart) + (domain.map { "@" + $0 } ?? "")
            keys.append(QueryKey(key: external, unmatchedExtension: unmatched))
            let internalKey = localpart + (domain.map { "@" + $0 } ?? "")
            if internalToo && internalKey != external {
                keys.append(QueryKey(key: internalKey, unmatchedExtension: unmatched))
            }
        }
        add(parts.localpart, domain: parts.domain, unmatched: nil)
        if let split { add(split.user, domain: parts.domain, unmatched: split.extension) }
        if let domain = parts.domain {
            if isLocalForLookup(domain) {
                add(parts.localpart, domain: nil, unmatched: nil)
                if let split { add(split.user, domain: nil, unmatched: split.extension) }
            }
            keys.append(QueryKey(key: "@" + domain, unmatchedExtension: nil))
        }
        return keys
    }

    /// A hit of a search.
    struct Hit {
        var key: QueryKey
        var map: String
        var value: [UInt8]
    }

    enum SearchOutcome {
        case found(Hit, tried: [String])
        case notFound(tried: [String])
        case failed(String, tried: [String])
    }

    /// Tries each key on every map in turn (table-minor), stopping at the first hit. An
    /// empty value is a table error (§10.2).
    func search(_ keys: [QueryKey], in maps: [LookupMap], title: String) -> SearchOutcome {
        var tried: [String] = []
        for key in keys where !key.key.isEmpty {
            tried.append(key.key)
            let folded = settings.folding.fold(Array(key.key.utf8))
            for map in maps {
                guard let value = map.value(forFoldedKey: folded) else { continue }
                if value.isEmpty {
                    return .failed(
                        "\(title) lookup of \(key.key) returns an empty string result (\(map.name))", tried: tried)
                }
                return .found(Hit(key: key, map: map.name, value: value), tried: tried)
            }
        }
        return .notFound(tried: tried)
    }

    // MARK: - Virtual alias expansion (§10.5, §10.6)

    /// The result of one virtual alias lookup of one address.
    enum AliasLookup {
        case notFound(tried: [String])
        case found([String], step: ResolutionStep)
        case failed(String)
    }

    /// Looks `address` up in virtual_alias_maps and turns the value into addresses (internal
    /// form): `@domain` values, RFC 822 list parsing, canonicalization, extension propagation.
    func lookUpVirtualAlias(_ address: String) -> AliasLookup {
        let keys = searchKeys(address, internalToo: false)
        switch search(keys, in: virtualMaps, title: "virtual_alias_maps") {
        case .notFound(let tried):
            return .notFound(tried: tried)
        case .failed(let message, _):
            return .failed(message)
        case .found(let hit, let tried):
            var value = hit.value
            var notes: [String] = []
            if value.first == UInt8(ascii: "@") {
                var localpart = AddressParts(address).localpart
                if let ext = hit.key.unmatchedExtension, localpart.hasSuffix(ext) {
                    localpart.removeLast(ext.count)
                }
                value = Array(quotedLocalpart(localpart).utf8) + value
                notes.append("@domain value: same user in the other domain")
            }
            var results = parseAddressList(value).map(canonicalize)
            if results.isEmpty {
                return .failed(
                    "virtual_alias_maps lookup of \(externalAddress(address)) returns non-address result \""
                        + String(decoding: hit.value, as: UTF8.self) + "\"")
            }
            if let ext = hit.key.unmatchedExtension, settings.propagateToVirtual {
                results = results.map { insertExtension(ext, into: $0) }
                notes.append("unmatched extension \(ext) propagated")
            }
            let step = ResolutionStep(
                stage: .virtual, address: externalAddress(address), matched: true, query: hit.key.key, map: hit.map,
                value: String(decoding: hit.value, as: UTF8.self), result: results.map(externalAddress), tried: tried,
                note: notes.isEmpty ? nil : notes.joined(separator: "; "))
            return .found(results, step: step)
        }
    }

    /// `ext` inserted before the last `@` of `address` (or appended when it has none).
    func insertExtension(_ ext: String, into address: String) -> String {
        let parts = AddressParts(address)
        return parts.joined(localpart: parts.localpart + ext)
    }

    /// The outcome of recursive expansion: final recipients, or Postfix's deferral warning.
    struct Expansion {
        var recipients: [String] = []
        var failure: String? = nil
    }

    /// cleanup(8)'s recursive expansion of one original recipient (§10.6): the list grows as
    /// results beyond the first are appended; each slot is re-expanded until it is final,
    /// expanded into itself, or the recursion limit is hit; the list may not grow beyond the
    /// expansion limit nor hold an address longer than the length limit. Final recipients
    /// are de-duplicated (case-insensitively), as the queue file writer does.
    func expand(_ original: String, steps: inout [ResolutionStep]) -> Expansion {
        let tail = " -- message not accepted, try again later"
        var list = [original]
        var expandedIntoItself: Set<[UInt8]> = []
        var index = 0
        while index < list.count {
            if list.count > settings.expansionLimit {
                return Expansion(failure: "unreasonable virtual_alias_maps map expansion size for \(original)" + tail)
            }
            var depth = 0
            while true {
                if expandedIntoItself.contains(fold(list[index])) { break }
                if depth >= settings.recursionLimit {
                    return Expansion(failure: "unreasonable virtual_alias_maps map nesting for \(original)" + tail)
                }
                switch lookUpVirtualAlias(list[index]) {
                case .failed(let message):
                    steps.append(
                        ResolutionStep(
                            stage: .virtual, address: externalAddress(list[index]), matched: false, note: message))
                    return Expansion(failure: "virtual_alias_maps map lookup problem for \(original)" + tail)
                case .notFound(let tried):
                    if !virtualMaps.isEmpty {
                        steps.append(
                            ResolutionStep(
                                stage: .virtual, address: externalAddress(list[index]), matched: false,
                                result: [externalAddress(list[index])], tried: tried))
                    }
                case .found(let results, var step):
                    let lhs = list[index]
                    for (position, result) in results.enumerated() {
                        if result.utf8.count > settings.addressLengthLimit {
                            steps.append(step)
                            let cut = String(decoding: Array(result.utf8.prefix(300)), as: UTF8.self)
                            return Expansion(failure: "unreasonable virtual_alias_maps result \(cut)..." + tail)
                        }
                        if position == 0 { list[index] = result } else { list.append(result) }
                        if fold(result) == fold(lhs) {
                            expandedIntoItself.insert(fold(lhs))
                            step.note = [step.note, "expands to itself: kept, not expanded again"]
                                .compactMap { $0 }.joined(separator: "; ")
                        }
                    }
                    steps.append(step)
                    depth += 1
                    continue
                }
                break
            }
            index += 1
        }
        var seen: Set<[UInt8]> = []
        return Expansion(recipients: list.filter { seen.insert(fold($0)).inserted })
    }

    // MARK: - Delivery (§10.7–§10.9)

    /// The class of `domain` (one trailing dot ignored) and the element that decided it.
    func classify(_ domain: String?) -> (ResolvedRecipient.DomainClass, String) {
        guard let domain else { return (.local, "no domain") }
        let bare = strippingOneTrailingDot(domain)
        if let how = isLocalDomain(bare) { return (.local, "local domain: \(how)") }
        if let match = settings.virtualAliasDomains.match(bare, folding: settings.folding), match.matched {
            return (.virtualAlias, "virtual alias domain: virtual_alias_domains (\(match.by))")
        }
        if let match = settings.virtualMailboxDomains.match(bare, folding: settings.folding), match.matched {
            return (.virtualMailbox, "virtual mailbox domain: virtual_mailbox_domains (\(match.by))")
        }
        if let match = settings.relayDomains.match(bare, folding: settings.folding), match.matched {
            return (.relay, "relay domain: relay_domains (\(match.by))")
        }
        return (.default, "default domain class")
    }

    /// What happens to one final recipient (internal form).
    func deliver(_ address: String, steps: inout [ResolutionStep], warnings: inout [String]) -> ResolvedRecipient {
        let external = externalAddress(address)
        if address.isEmpty {
            return ResolvedRecipient(
                address: "<>", domainClass: .default, outcome: .reject, via: "null address",
                reason: "null recipient address")
        }
        let parts = AddressParts(address)
        let (domainClass, how) = classify(parts.domain)
        var recipient = ResolvedRecipient(address: external, domainClass: domainClass, outcome: .remote, via: how)
        if let domain = parts.domain, domainClass == .virtualAlias || domainClass == .virtualMailbox {
            let bare = strippingOneTrailingDot(domain)
            if settings.virtualAliasDomains.contains(bare, folding: settings.folding)
                && settings.virtualMailboxDomains.contains(bare, folding: settings.folding)
            {
                warnings.append(
                    "do not list domain \(bare) in BOTH virtual_alias_domains and virtual_mailbox_domains")
            }
        }
        switch domainClass {
        case .local:
            recipient.outcome = .local
            deliverLocally(parts, into: &recipient, steps: &steps)
        case .virtualAlias:
            recipient.outcome = .reject
            recipient.reason = "User unknown in virtual alias table"
        case .virtualMailbox:
            deliverToMailbox(address, into: &recipient, steps: &steps, warnings: &warnings)
        case .relay:
            recipient.outcome = .relay
        case .default:
            recipient.outcome = .remote
        }
        return recipient
    }

    /// local(8): aliases(5) is searched for the localpart with its extension, then without.
    private func deliverLocally(
        _ parts: AddressParts, into recipient: inout ResolvedRecipient, steps: inout [ResolutionStep]
    ) {
        let split = splitExtension(parts.localpart)
        recipient.user = split?.user ?? parts.localpart
        guard !aliasMaps.isEmpty else { return }
        var keys = [QueryKey(key: parts.localpart, unmatchedExtension: nil)]
        if let split { keys.append(QueryKey(key: split.user, unmatchedExtension: split.extension)) }
        switch search(keys, in: aliasMaps, title: "alias_maps") {
        case .found(let hit, let tried):
            let value = String(decoding: hit.value, as: UTF8.self)
            var note: String? = nil
            if let ext = hit.key.unmatchedExtension, settings.propagateToAlias {
                note = "unmatched extension \(ext) is propagated to the alias's addresses"
            }
            recipient.alias = value
            recipient.user = nil
            steps.append(
                ResolutionStep(
                    stage: .alias, address: recipient.address, matched: true, query: hit.key.key, map: hit.map,
                    value: value, tried: tried, note: note))
        case .notFound(let tried):
            steps.append(ResolutionStep(stage: .alias, address: recipient.address, matched: false, tried: tried))
        case .failed(let message, let tried):
            recipient.outcome = .defer
            recipient.reason = message
            steps.append(
                ResolutionStep(stage: .alias, address: recipient.address, matched: false, tried: tried, note: message))
        }
    }

    /// virtual(8): the mailbox is `virtual_mailbox_base/VALUE`, Maildir when VALUE ends in `/`.
    private func deliverToMailbox(
        _ address: String, into recipient: inout ResolvedRecipient, steps: inout [ResolutionStep],
        warnings: inout [String]
    ) {
        let keys = searchKeys(address, internalToo: true)
        switch search(keys, in: mailboxMaps, title: "virtual_mailbox_maps") {
        case .found(let hit, let tried):
            let value = String(decoding: hit.value, as: UTF8.self)
            steps.append(
                ResolutionStep(
                    stage: .vmailbox, address: recipient.address, matched: true, query: hit.key.key, map: hit.map,
                    value: value, tried: tried))
            recipient.outcome = .mailbox
            recipient.mailbox = value
            recipient.format = value.hasSuffix("/") ? .maildir : .mbox
            if settings.virtualMailboxBase.hasPrefix("/") {
                recipient.path = settings.virtualMailboxBase + "/" + value
            } else {
                let problem =
                    settings.virtualMailboxBase.isEmpty
                    ? "virtual_mailbox_base is not set" : "virtual_mailbox_base is not absolute"
                let warning = problem + ": virtual(8) refuses to deliver (do not specify relative pathname)"
                if !warnings.contains(warning) { warnings.append(warning) }
            }
        case .notFound(let tried):
            steps.append(
                ResolutionStep(stage: .vmailbox, address: recipient.address, matched: false, tried: tried))
            recipient.outcome = .reject
            recipient.reason = "User unknown in virtual mailbox table"
        case .failed(let message, let tried):
            steps.append(
                ResolutionStep(
                    stage: .vmailbox, address: recipient.address, matched: false, tried: tried, note: message))
            recipient.outcome = .defer
            recipient.reason = message
        }
    }

    // MARK: - Helpers

    private func fold(_ text: String) -> [UInt8] {
        (settings.folding == .none ? KeyFolding.ascii : settings.folding).fold(Array(text.utf8))
    }

    private func sameText(_ a: String, _ b: String) -> Bool { fold(a) == fold(b) }

    private func strippingOneTrailingDot(_ domain: String) -> String {
        domain.hasSuffix(".") && domain.count > 1 ? String(domain.dropLast()) : domain
    }
}

/// Parses an address as typed (external form, `Name <addr>` accepted) into internal form.
///
/// - Returns: `nil` unless the text holds exactly one non-null address.
public func parseInputAddress(_ text: String) -> String? {
    let addresses = parseAddressList(Array(text.utf8))
    guard addresses.count == 1, let address = addresses.first, !address.isEmpty else { return nil }
    return address
}
