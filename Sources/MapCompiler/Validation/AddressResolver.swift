import Glibc

/// A simulation of what Postfix 3.7 does with a recipient address at delivery time
/// (postmap-behavior.md §10): cleanup(8)'s canonicalization and recursive virtual alias
/// expansion, trivial-rewrite(8)'s domain classes, virtual(8)'s mailbox lookup and local(8)'s
/// aliases(5) lookup. Pure: the tables and the main.cf settings are given as data.

/// The main.cf parameters the resolver uses, already expanded
/// (``AddressResolver/init(configuration:configurationKnown:handling:maps:warn:)`` reads them
/// from main.cf with Postfix's defaults).
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
    /// `virtual_alias_recursion_limit`: how deep expansion may nest (the three limits are
    /// 1000 by default).
    public var recursionLimit = 1000
    /// `virtual_alias_expansion_limit`: at most this many final recipients.
    public var expansionLimit = 1000
    /// `virtual_alias_address_length_limit`: the longest address expansion produces.
    public var addressLengthLimit = 1000
    /// Whether `propagate_unmatched_extensions` names `virtual`.
    public var propagateToVirtual = true
    /// Whether `propagate_unmatched_extensions` names `alias`.
    public var propagateToAlias = false
    /// `owner_request_special`.
    public var ownerRequestSpecial = true
    /// `double_bounce_sender`, whose localpart is never split.
    public var doubleBounceSender = "double-bounce"
    /// `append_at_myorigin`: `@$myorigin` is appended to bare localparts.
    public var appendAtMyorigin = true
    /// `append_dot_mydomain`: `.$mydomain` is appended to dotless domains.
    public var appendDotMydomain = false
    /// `virtual_mailbox_base` (empty when not set).
    public var virtualMailboxBase = ""
    /// How table keys (and case-insensitive comparisons) are folded.
    public var folding: KeyFolding = .ascii
    /// `local_transport`, for local domains (this and the other transports expanded).
    public var localTransport = "local:localhost"
    /// `virtual_transport`, for virtual mailbox domains.
    public var virtualTransport = "virtual"
    /// `relay_transport`, for `relay_domains`.
    public var relayTransport = "relay"
    /// `default_transport`, for every other domain.
    public var defaultTransport = "smtp"
    /// `relayhost`, the next hop of `default_transport` when set.
    public var relayhost = ""
    /// master.cf: the command (delivery agent) of each service name, when known; a
    /// transport without an entry runs the command of its own name.
    public var serviceCommands: [String: String] = [:]
    /// Whether the settings are a real server's (a main.cf was named): then a missing or
    /// relative `virtual_mailbox_base` defers mail, as virtual(8) does, instead of only
    /// giving a warning.
    public var configurationKnown = false
    /// Whether local users are looked up in this machine's passwd (for smtpd's
    /// `local_recipient_maps` check and local(8)); otherwise every local user is assumed
    /// to exist.
    public var consultPasswd = false
    /// Whether `local_recipient_maps` is set (non-empty, as by default).
    public var localRecipientCheck = true

    /// Postfix's defaults for a host named `localhost` (see each setting).
    public init() {}
}

/// One thing the resolver looked up or rewrote, in order.
public struct ResolutionStep: Sendable, Equatable {
    /// Which Postfix component the step simulates.
    public enum Stage: String, Sendable {
        /// The input address canonicalized (`@$myorigin`, `.$mydomain`, trailing dot).
        case canonical
        /// A virtual_alias_maps search (cleanup(8)).
        case virtual
        /// A virtual_mailbox_maps search (virtual(8)).
        case vmailbox
        /// An aliases(5) search (local(8)).
        case alias
        /// A transport_maps search (trivial-rewrite(8)).
        case transport
    }

    /// The kind of lookup or rewrite.
    public var stage: Stage
    /// The address (external form) the step applies to.
    public var address: String
    /// Whether a map had an entry for the address.
    public var matched: Bool
    /// The key that matched (`nil` when nothing matched, as for ``map`` and ``value``).
    public var query: String? = nil
    /// The name of the map the key matched in.
    public var map: String? = nil
    /// The raw value of the matching entry.
    public var value: String? = nil
    /// Where the matching entry is written: the source file and its line, when the map was
    /// compiled from a source.
    public var source: EntryLocation? = nil
    /// The addresses (external form) the step produced: canonical and virtual stages.
    public var result: [String] = []
    /// Every key asked, in order, up to the match.
    public var tried: [String] = []
    /// Why something special happened (extension propagated, self-reference, …).
    public var note: String? = nil
    /// Tables of the searched list that cannot be read here: a lookup that found nothing
    /// might have found something there.
    public var unreadable: [String] = []
}

/// A line of a map source.
public struct EntryLocation: Sendable, Hashable {
    /// The source file.
    public var file: String
    /// The physical line the entry starts on (1-based).
    public var line: Int

    /// Line `line` of `file`.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }
}

/// An SMTP reply Postfix would give (`550 5.1.1 …`).
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    /// When the reply is given: to `RCPT TO` (smtpd's recipient checks) or at the end of
    /// `DATA` (cleanup(8) failed while the client waited).
    public enum Stage: String, Sendable {
        case rcpt = "RCPT"
        case data = "DATA"
    }

    /// To which command the reply is given.
    public var stage: Stage
    /// The three-digit reply code (`550`).
    public var code: Int
    /// The RFC 3463 enhanced status code (`5.1.1`).
    public var enhancedStatus: String
    /// The reply text.
    public var text: String

    /// Whether the client is told to try again later (a 4xx reply).
    public var isTemporary: Bool { code / 100 == 4 }

    /// The reply as a server sends it: `550 5.1.1 TEXT`.
    public var description: String { "\(code) \(enhancedStatus) \(text)" }
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

    /// What happens to the recipient once Postfix has accepted the mail.
    public enum Outcome: String, Sendable, CaseIterable {
        /// virtual(8) delivers it into a mailbox (``ResolvedRecipient/path``).
        case mailbox
        /// local(8) delivers it (through aliases(5) when an alias matched).
        case local
        /// A relay_domains destination, handed to relay_transport.
        case relay
        /// Any other domain, handed to default_transport (or relayhost).
        case remote
        /// Handed to a transport named by transport_maps or by a `*_transport` parameter
        /// that is not one of Postfix's own delivery agents (an LMTP server, a pipe, …).
        case transport
        /// Accepted, then bounced: a non-delivery notice goes to the sender (backscatter
        /// when the sender was forged).
        case bounced
        /// Accepted, then deferred: the mail stays in the queue.
        case deferred

        /// Whether the recipient gets the mail (or it leaves this Postfix for its next hop).
        public var isDelivery: Bool { self != .bounced && self != .deferred }
    }

    /// virtual(8)'s mailbox formats.
    public enum MailboxFormat: String, Sendable {
        case maildir
        case mbox
    }

    /// The recipient in external form.
    public var address: String
    /// The address class of the recipient's domain.
    public var domainClass: DomainClass
    /// What happens to the recipient.
    public var outcome: Outcome
    /// The transport (master.cf service) trivial-rewrite(8) chooses.
    public var transport: String? = nil
    /// The next hop of ``transport`` (a domain, `[host]`, or empty).
    public var nexthop: String? = nil
    /// The virtual_mailbox_maps value (relative to `virtual_mailbox_base`).
    public var mailbox: String? = nil
    /// `virtual_mailbox_base/value`, when the base is set.
    public var path: String? = nil
    /// Maildir (the value ends in `/`) or mbox, for a mailbox.
    public var format: MailboxFormat? = nil
    /// The aliases(5) value for a local recipient, when an alias matched.
    public var alias: String? = nil
    /// The local(8) user name (localpart without extension) when no alias matched.
    public var user: String? = nil
    /// How the domain class was decided (`local domain: mydestination (example.com)`).
    public var via: String = ""
    /// The explanation of a bounce or deferral.
    public var reason: String? = nil
    /// The steps (indices into ``Resolution/steps``) that led from the input address to
    /// this recipient, in order.
    public var chain: [Int] = []
}

/// The complete answer for one input address.
public struct Resolution: Sendable, Equatable {
    /// What the sender sees, worst case first.
    public enum Status: String, Sendable, CaseIterable {
        /// Accepted, and every final recipient is delivered (or handed to its next hop).
        case ok
        /// Refused at SMTP with a permanent error (`550` to `RCPT TO`): Postfix never takes
        /// the mail.
        case refused
        /// Not delivered now: refused with a temporary error (a `451` at the end of `DATA`,
        /// so the client keeps retrying), or accepted and deferred for some recipient.
        case deferred
        /// Accepted, then bounced for at least one final recipient (and none deferred).
        case bounced
    }

    /// The address as given.
    public var input: String
    /// The canonical address (external form) that virtual alias expansion started from.
    public var canonical: String
    /// Every lookup and rewrite, in order.
    public var steps: [ResolutionStep] = []
    /// The final recipients and their fates.
    public var recipients: [ResolvedRecipient] = []
    /// What the sender sees.
    public var status: Status = .ok
    /// The SMTP reply that refuses the mail, when Postfix does not accept it.
    public var smtpReply: SMTPReply? = nil
    /// The reason the mail is refused, or deferred as a whole (Postfix's log text).
    public var reason: String? = nil
    /// The steps that took part when the whole expansion failed (a loop, a limit).
    public var failedChain: [Int] = []
    /// Configuration problems that do not change the result (e.g. no virtual_mailbox_base).
    public var warnings: [String] = []
    /// Things the simulation cannot know and assumed (passwd users, relay permission).
    public var assumptions: [String] = []
    /// Whether the answer rests on tables or domain-list elements that cannot be read here
    /// (`mysql:`, `ldap:`, a missing file): then it is a guess, not a fact.
    public var uncertain = false
}

/// The resolver engine: settings and tables in, ``Resolution`` out.
public struct AddressResolver: Sendable {
    /// The main.cf settings in use.
    public var settings: ResolverSettings
    /// `virtual_alias_maps`, in search order.
    public var virtualMaps: [LookupMap]
    /// `virtual_mailbox_maps`, in search order.
    public var mailboxMaps: [LookupMap]
    /// `alias_maps` (aliases(5)), in search order.
    public var aliasMaps: [LookupMap]
    /// `transport_maps`, in search order.
    public var transportMaps: [LookupMap]
    /// `relay_recipient_maps`: the known recipients of relay domains (none: all are known).
    public var relayRecipientMaps: [LookupMap]

    /// A resolver over these settings and maps (see
    /// ``init(configuration:configurationKnown:handling:maps:warn:)`` to read them from main.cf).
    public init(
        settings: ResolverSettings, virtualMaps: [LookupMap] = [], mailboxMaps: [LookupMap] = [],
        aliasMaps: [LookupMap] = [], transportMaps: [LookupMap] = [], relayRecipientMaps: [LookupMap] = []
    ) {
        self.settings = settings
        self.virtualMaps = virtualMaps
        self.mailboxMaps = mailboxMaps
        self.aliasMaps = aliasMaps
        self.transportMaps = transportMaps
        self.relayRecipientMaps = relayRecipientMaps
    }

    // MARK: - Whole resolution

    /// Resolves one recipient given in internal form (see ``parseInputAddress(_:)``): what
    /// smtpd(8) answers to `RCPT TO`, what cleanup(8)'s virtual alias expansion makes of it,
    /// and what happens to each final recipient.
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
        if let refusal = recipientCheck(canonical, resolution: &resolution) {
            resolution.status = .refused
            resolution.smtpReply = refusal
            resolution.reason = refusal.text
            noteUncertainty(in: &resolution)
            return resolution
        }
        let expansion = expand(canonical, steps: &resolution.steps)
        if let failure = expansion.failure {
            resolution.status = .deferred
            resolution.reason = failure
            resolution.failedChain = expansion.failedChain
            // cleanup(8) fails while smtpd(8) waits for it: the client gets a temporary
            // error at the end of DATA and keeps the mail.
            resolution.smtpReply =
                expansion.lookupProblem
                ? SMTPReply(stage: .data, code: 451, enhancedStatus: "4.3.0", text: "Error: queue file write error")
                : SMTPReply(stage: .data, code: 451, enhancedStatus: "4.6.0", text: "Alias expansion error")
            noteUncertainty(in: &resolution)
            return resolution
        }
        for (recipient, chain) in zip(expansion.recipients, expansion.chains) {
            var resolved = deliver(recipient, steps: &resolution.steps, warnings: &resolution.warnings)
            resolved.chain = chain + resolved.chain
            resolution.recipients += followingAliases(
                resolved, steps: &resolution.steps, warnings: &resolution.warnings)
        }
        if resolution.recipients.contains(where: { $0.outcome == .deferred }) {
            resolution.status = .deferred
        } else if resolution.recipients.contains(where: { $0.outcome == .bounced }) {
            resolution.status = .bounced
        }
        for recipient in resolution.recipients
        where recipient.domainClass == .local && recipient.alias == nil && !settings.consultPasswd {
            let note = "local(8) user \(recipient.user ?? recipient.address): passwd is not checked"
            if !resolution.assumptions.contains(note) { resolution.assumptions.append(note) }
        }
        noteUncertainty(in: &resolution)
        return resolution
    }

    /// Marks a resolution that rests on what cannot be read here: domain-list elements and
    /// tables of a searched list that are unknown.
    private func noteUncertainty(in resolution: inout Resolution) {
        let lists = [
            ("mydestination", settings.mydestination), ("virtual_alias_domains", settings.virtualAliasDomains),
            ("virtual_mailbox_domains", settings.virtualMailboxDomains), ("relay_domains", settings.relayDomains),
        ]
        for (name, list) in lists where !list.unsupportedElements.isEmpty {
            resolution.uncertain = true
            resolution.assumptions.append(
                "\(name) has \(list.unsupportedElements.joined(separator: ", ")), which cannot be read here: "
                    + "assumed not to match")
        }
        let unread = Set(resolution.steps.flatMap(\.unreadable))
        if !unread.isEmpty {
            resolution.uncertain = true
            resolution.assumptions.append(
                "\(unread.sorted().joined(separator: ", ")) cannot be read here: assumed to have no entry where "
                    + "the tables that can be read have none")
        }
    }

    /// local(8) delivers an aliases(5) match to its targets: a command, a file or an
    /// `:include:` stays a local delivery, a target that names the alias itself is the
    /// user's mailbox, a local target is delivered in the same way (each alias name
    /// expanded once), and every other address is sent on in a new message (cleanup(8)
    /// expands it again, then each of its recipients is delivered).
    func followingAliases(
        _ recipient: ResolvedRecipient, steps: inout [ResolutionStep], warnings: inout [String]
    ) -> [ResolvedRecipient] {
        var expanded: Set<String> = []
        return followingAliases(recipient, steps: &steps, warnings: &warnings, expanded: &expanded)
    }

    private func followingAliases(
        _ recipient: ResolvedRecipient, steps: inout [ResolutionStep], warnings: inout [String],
        expanded: inout Set<String>
    ) -> [ResolvedRecipient] {
        guard recipient.outcome == .local, let alias = recipient.alias else { return [recipient] }
        let name = AddressParts(recipient.address).localpart.lowercased()
        // local(8) expands an alias name once per delivery; a second visit adds nothing.
        guard expanded.insert(name).inserted else { return [] }
        var out: [ResolvedRecipient] = []
        var keepSelf = false
        for item in alias.split(separator: ",") {
            let text = item.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            if text.hasPrefix("|") || text.hasPrefix("/") || text.lowercased().hasPrefix(":include:") {
                keepSelf = true
                continue
            }
            for target in parseAddressList(Array(text.utf8)) where !target.isEmpty {
                let parts = AddressParts(target)
                if parts.domain == nil || parts.domain.map({ isLocalForLookup($0) }) == true,
                    parts.localpart.lowercased() == name
                {
                    keepSelf = true
                    continue
                }
                let canonical = canonicalize(target)
                var local = deliver(canonical, steps: &steps, warnings: &warnings)
                if local.domainClass == .local && [.local, .bounced, .deferred].contains(local.outcome) {
                    // local(8) delivers a local target itself: no virtual alias expansion.
                    local.chain = recipient.chain + local.chain
                    out += followingAliases(local, steps: &steps, warnings: &warnings, expanded: &expanded)
                    continue
                }
                let expansion = expand(canonical, steps: &steps)
                if let failure = expansion.failure {
                    var deferred = recipient
                    deferred.address = externalAddress(canonical)
                    deferred.outcome = .deferred
                    deferred.reason = failure
                    out.append(deferred)
                    continue
                }
                for (next, chain) in zip(expansion.recipients, expansion.chains) {
                    var resolved = deliver(next, steps: &steps, warnings: &warnings)
                    resolved.chain = recipient.chain + chain + resolved.chain
                    out += followingAliases(resolved, steps: &steps, warnings: &warnings, expanded: &expanded)
                }
            }
        }
        if keepSelf || out.isEmpty { out.insert(recipient, at: 0) }
        var seen: Set<String> = []
        return out.filter { seen.insert($0.address.lowercased() + "|" + $0.outcome.rawValue).inserted }
    }

    // MARK: - smtpd(8)'s recipient check

    /// smtpd(8)'s unknown-recipient check (`smtpd_reject_unlisted_recipient = yes`): an
    /// address found in virtual_alias_maps is accepted in any domain; otherwise a virtual
    /// alias domain rejects it, a virtual mailbox domain needs it in virtual_mailbox_maps,
    /// and a relay domain in relay_recipient_maps (when set).
    ///
    /// - Returns: the rejection, or `nil` when the recipient is accepted.
    func recipientCheck(_ address: String, resolution: inout Resolution) -> SMTPReply? {
        guard !address.isEmpty else { return nil }
        let keys = searchKeys(address, internalToo: false)
        if case .found = search(keys, in: virtualMaps, title: "virtual_alias_maps") { return nil }
        let external = externalAddress(address)
        if let unknown = unreadableNames(virtualMaps) {
            resolution.uncertain = true
            resolution.assumptions.append("\(unknown) cannot be read here: assumed to accept \(external)")
            return nil
        }
        let parts = AddressParts(address)
        let (domainClass, _) = classify(parts.domain)
        func reject(_ table: String) -> SMTPReply {
            SMTPReply(
                stage: .rcpt, code: 550, enhancedStatus: "5.1.1",
                text: "<\(external)>: Recipient address rejected: User unknown in \(table)")
        }
        if domainClass == .virtualAlias { return reject("virtual alias table") }
        // An address trivial-rewrite sends to the error or retry transport is refused now.
        var (transport, nexthop) = classTransport(domainClass, domain: parts.domain ?? "")
        var ignoredSteps: [ResolutionStep] = []
        var ignoredChain: [Int] = []
        if let chosen = transportMapsEntry(address, steps: &ignoredSteps, chain: &ignoredChain) {
            if !chosen.transport.isEmpty { transport = chosen.transport }
            if !chosen.nexthop.isEmpty { nexthop = chosen.nexthop }
        }
        if (settings.serviceCommands[transport] ?? transport) == "error" {
            let retry = transport == "retry"
            var status = retry ? "4.3.0" : "5.1.1"
            var text = nexthop
            if let first = nexthop.split(separator: " ").first, first.split(separator: ".").count == 3,
                first.allSatisfy({ $0.isNumber || $0 == "." })
            {
                status = String(first)
                text = String(nexthop.dropFirst(first.count)).trimmingPrefix(while: { $0 == " " }).description
            }
            return SMTPReply(
                stage: .rcpt, code: retry ? 450 : 550, enhancedStatus: status,
                text: "<\(external)>: Recipient address rejected: \(text.isEmpty ? "Address rejected" : text)")
        }
        switch domainClass {
        case .virtualAlias:
            return reject("virtual alias table")
        case .virtualMailbox:
            // Checked only when virtual_mailbox_maps is set (an LMTP set-up may have none).
            if !mailboxMaps.isEmpty,
                case .notFound = search(searchKeys(address, internalToo: true), in: mailboxMaps, title: "")
            {
                if let unknown = unreadableNames(mailboxMaps) {
                    resolution.uncertain = true
                    resolution.assumptions.append("\(unknown) cannot be read here: assumed to have \(external)")
                    return nil
                }
                return reject("virtual mailbox table")
            }
        case .relay:
            if !relayRecipientMaps.isEmpty,
                case .notFound = search(keys, in: relayRecipientMaps, title: "relay_recipient_maps")
            {
                if let unknown = unreadableNames(relayRecipientMaps) {
                    resolution.uncertain = true
                    resolution.assumptions.append("\(unknown) cannot be read here: assumed to have \(external)")
                    return nil
                }
                return reject("relay recipient table")
            }
        case .local:
            let user = splitExtension(parts.localpart)?.user ?? parts.localpart
            // The postmaster, MAILER-DAEMON and the double-bounce address are always accepted.
            let special = ["postmaster", "mailer-daemon", settings.doubleBounceSender.lowercased()]
            if special.contains(parts.localpart.lowercased()) { return nil }
            var aliasKeys = [QueryKey(key: parts.localpart, unmatchedExtension: nil)]
            if user != parts.localpart { aliasKeys.append(QueryKey(key: user, unmatchedExtension: nil)) }
            if case .found = search(aliasKeys, in: aliasMaps, title: "alias_maps") { return nil }
            if settings.consultPasswd && settings.localRecipientCheck && !systemUserExists(user) {
                resolution.assumptions.append("local users are those of this machine's passwd")
                return reject("local recipient table")
            }
        case .default:
            resolution.assumptions.append(
                "\(parts.domain ?? "") is not a domain of this server: only clients allowed to relay "
                    + "(mynetworks, SASL) get past smtpd_relay_restrictions")
        }
        return nil
    }

    /// The names of the unreadable tables of a list, or `nil` when every one can be read.
    func unreadableNames(_ maps: [LookupMap]) -> String? {
        let names = maps.filter { !$0.readable }.map(\.name)
        return names.isEmpty ? nil : names.joined(separator: ", ")
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
        var source: EntryLocation?
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
                guard let record = map.record(forFoldedKey: folded) else { continue }
                if record.value.isEmpty {
                    return .failed(
                        "\(title) lookup of \(key.key) returns an empty string result (\(map.name))", tried: tried)
                }
                return .found(
                    Hit(key: key, map: map.name, value: record.value, source: map.location(of: record)), tried: tried)
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
                value: String(decoding: hit.value, as: UTF8.self), source: hit.source,
                result: results.map(externalAddress), tried: tried,
                note: notes.isEmpty ? nil : notes.joined(separator: "; "))
            return .found(results, step: step)
        }
    }

    /// `ext` inserted before the last `@` of `address` (or appended when it has none).
    func insertExtension(_ ext: String, into address: String) -> String {
        let parts = AddressParts(address)
        return parts.joined(localpart: parts.localpart + ext)
    }

    /// The outcome of recursive expansion: final recipients (each with the steps that led
    /// to it), or Postfix's deferral warning (with every step taken).
    struct Expansion {
        var recipients: [String] = []
        var chains: [[Int]] = []
        var failure: String? = nil
        var failedChain: [Int] = []
        /// The failure is a table lookup problem (cleanup answers "queue file write error"),
        /// not one of the limits ("Alias expansion error").
        var lookupProblem = false
    }

    /// cleanup(8)'s recursive expansion of one original recipient (§10.6): the list grows as
    /// results beyond the first are appended; each slot is re-expanded until it is final,
    /// expanded into itself, or the recursion limit is hit; the list may not grow beyond the
    /// expansion limit nor hold an address longer than the length limit. Final recipients
    /// are de-duplicated (case-insensitively), as the queue file writer does.
    func expand(_ original: String, steps: inout [ResolutionStep]) -> Expansion {
        let tail = " -- message not accepted, try again later"
        let first = steps.count
        var list = [original]
        var chains: [[Int]] = [[]]
        var expandedIntoItself: Set<[UInt8]> = []
        var index = 0
        func failed(_ text: String) -> Expansion {
            let taken = (first..<steps.count).filter { steps[$0].stage == .virtual && steps[$0].matched }
            return Expansion(failure: text + tail, failedChain: taken)
        }
        while index < list.count {
            if list.count > settings.expansionLimit {
                return failed("unreasonable virtual_alias_maps map expansion size for \(original)")
            }
            var depth = 0
            while true {
                if expandedIntoItself.contains(fold(list[index])) { break }
                if depth >= settings.recursionLimit {
                    return failed("unreasonable virtual_alias_maps map nesting for \(original)")
                }
                switch lookUpVirtualAlias(list[index]) {
                case .failed(let message):
                    steps.append(
                        ResolutionStep(
                            stage: .virtual, address: externalAddress(list[index]), matched: false, note: message))
                    var failure = failed("virtual_alias_maps map lookup problem for \(original)")
                    failure.failedChain = chains[index]
                    failure.lookupProblem = true
                    return failure
                case .notFound(let tried):
                    if !virtualMaps.isEmpty {
                        steps.append(
                            ResolutionStep(
                                stage: .virtual, address: externalAddress(list[index]), matched: false,
                                result: [externalAddress(list[index])], tried: tried,
                                unreadable: virtualMaps.filter { !$0.readable }.map(\.name)))
                    }
                case .found(let results, var step):
                    let lhs = list[index]
                    let chain = chains[index] + [steps.count]
                    for (position, result) in results.enumerated() {
                        if result.utf8.count > settings.addressLengthLimit {
                            steps.append(step)
                            let cut = String(decoding: Array(result.utf8.prefix(300)), as: UTF8.self)
                            return failed("unreasonable virtual_alias_maps result \(cut)...")
                        }
                        if position == 0 {
                            list[index] = result
                            chains[index] = chain
                        } else {
                            list.append(result)
                            chains.append(chain)
                        }
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
        var expansion = Expansion()
        for (recipient, chain) in zip(list, chains) where seen.insert(fold(recipient)).inserted {
            expansion.recipients.append(recipient)
            expansion.chains.append(chain)
        }
        return expansion
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

    /// What happens to one final recipient (internal form): trivial-rewrite(8) picks the
    /// transport from the domain class (or transport_maps), then that delivery agent decides.
    func deliver(_ address: String, steps: inout [ResolutionStep], warnings: inout [String]) -> ResolvedRecipient {
        let external = externalAddress(address)
        if address.isEmpty {
            return ResolvedRecipient(
                address: "<>", domainClass: .default, outcome: .bounced, via: "null address",
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
                let warning = "do not list domain \(bare) in BOTH virtual_alias_domains and virtual_mailbox_domains"
                if !warnings.contains(warning) { warnings.append(warning) }
            }
        }
        if domainClass == .virtualAlias {
            // trivial-rewrite(8) gives every virtual alias domain address the error transport.
            recipient.outcome = .bounced
            recipient.transport = "error"
            recipient.reason = "User unknown in virtual alias table"
            return recipient
        }
        var (transport, nexthop) = classTransport(domainClass, domain: parts.domain ?? "")
        if let chosen = transportMapsEntry(address, steps: &steps, chain: &recipient.chain) {
            if !chosen.transport.isEmpty { transport = chosen.transport }
            if !chosen.nexthop.isEmpty { nexthop = chosen.nexthop }
        }
        recipient.transport = transport
        recipient.nexthop = nexthop
        switch settings.serviceCommands[transport] ?? transport {
        case "error":
            recipient.outcome = transport == "retry" ? .deferred : .bounced
            recipient.reason = nexthop.isEmpty ? "delivered by the \(transport) transport" : nexthop
        case "discard":
            recipient.outcome = .transport
            recipient.reason = "discarded" + (nexthop.isEmpty ? "" : ": \(nexthop)")
        case "local":
            recipient.outcome = .local
            deliverLocally(parts, into: &recipient, steps: &steps)
        case "virtual":
            deliverToMailbox(address, into: &recipient, steps: &steps, warnings: &warnings)
        default:
            switch domainClass {
            case .relay: recipient.outcome = .relay
            case .default: recipient.outcome = .remote
            default: recipient.outcome = .transport
            }
            if transport != defaultTransportName(for: domainClass) { recipient.outcome = .transport }
        }
        return recipient
    }

    /// The transport and next hop of a domain class (`*_transport`, with relayhost for the
    /// default class and the recipient domain as the next hop when none is given).
    private func classTransport(
        _ domainClass: ResolvedRecipient.DomainClass, domain: String
    ) -> (transport: String, nexthop: String) {
        let setting: String
        switch domainClass {
        case .local: setting = settings.localTransport
        case .virtualMailbox: setting = settings.virtualTransport
        case .relay: setting = settings.relayTransport
        case .default, .virtualAlias: setting = settings.defaultTransport
        }
        var (transport, nexthop) = splitTransport(setting)
        if nexthop.isEmpty {
            // relayhost is the next hop of both the default and the relay class.
            let relayed = domainClass == .default || domainClass == .relay
            nexthop = relayed && !settings.relayhost.isEmpty ? settings.relayhost : domain
        }
        return (transport, nexthop)
    }

    private func defaultTransportName(for domainClass: ResolvedRecipient.DomainClass) -> String {
        switch domainClass {
        case .relay: return splitTransport(settings.relayTransport).transport
        case .default: return splitTransport(settings.defaultTransport).transport
        case .local: return splitTransport(settings.localTransport).transport
        case .virtualMailbox, .virtualAlias: return splitTransport(settings.virtualTransport).transport
        }
    }

    /// `transport:nexthop` split at the first colon (an empty part means "the default").
    private func splitTransport(_ value: String) -> (transport: String, nexthop: String) {
        let trimmed = value.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
        guard let colon = trimmed.firstIndex(of: ":") else { return (String(trimmed), "") }
        return (String(trimmed[..<colon]), String(trimmed[trimmed.index(after: colon)...]))
    }

    /// transport(5): the full address, the domain, its parent domains as `.parent`, then `*`.
    private func transportMapsEntry(
        _ address: String, steps: inout [ResolutionStep], chain: inout [Int]
    ) -> (transport: String, nexthop: String)? {
        guard !transportMaps.isEmpty else { return nil }
        let parts = AddressParts(address)
        var keys = [QueryKey(key: externalAddress(address), unmatchedExtension: nil)]
        if let split = splitExtension(parts.localpart) {
            keys.append(
                QueryKey(
                    key: AddressParts(address).joined(localpart: quotedLocalpart(split.user)), unmatchedExtension: nil))
        }
        if let domain = parts.domain {
            let bare = strippingOneTrailingDot(domain)
            keys.append(QueryKey(key: bare, unmatchedExtension: nil))
            var rest = Substring(bare)
            while let dot = rest.firstIndex(of: ".") {
                keys.append(QueryKey(key: String(rest[dot...]), unmatchedExtension: nil))
                rest = rest[rest.index(after: dot)...]
            }
        }
        keys.append(QueryKey(key: "*", unmatchedExtension: nil))
        switch search(keys, in: transportMaps, title: "transport_maps") {
        case .found(let hit, let tried):
            let value = String(decoding: hit.value, as: UTF8.self)
            chain.append(steps.count)
            steps.append(
                ResolutionStep(
                    stage: .transport, address: externalAddress(address), matched: true, query: hit.key.key,
                    map: hit.map, value: value, source: hit.source, tried: tried))
            return splitTransport(value)
        case .notFound(let tried):
            let unknown = transportMaps.filter { !$0.readable }.map(\.name)
            if !unknown.isEmpty {
                steps.append(
                    ResolutionStep(
                        stage: .transport, address: externalAddress(address), matched: false, tried: tried,
                        unreadable: unknown))
            }
            return nil
        case .failed:
            return nil
        }
    }

    /// local(8): aliases(5) is searched for the localpart with its extension, then without.
    private func deliverLocally(
        _ parts: AddressParts, into recipient: inout ResolvedRecipient, steps: inout [ResolutionStep]
    ) {
        let split = splitExtension(parts.localpart)
        recipient.user = split?.user ?? parts.localpart
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
            recipient.chain.append(steps.count)
            steps.append(
                ResolutionStep(
                    stage: .alias, address: recipient.address, matched: true, query: hit.key.key, map: hit.map,
                    value: value, source: hit.source, tried: tried, note: note))
        case .notFound(let tried):
            let unknown = aliasMaps.filter { !$0.readable }.map(\.name)
            steps.append(
                ResolutionStep(
                    stage: .alias, address: recipient.address, matched: false, tried: tried, unreadable: unknown))
            if !unknown.isEmpty { return }
            if settings.consultPasswd, let user = recipient.user, !systemUserExists(user) {
                recipient.outcome = .bounced
                recipient.reason = "unknown user: \"\(user.lowercased())\" (no alias, not in this machine's passwd)"
            }
        case .failed(let message, let tried):
            recipient.outcome = .deferred
            recipient.reason = message
            steps.append(
                ResolutionStep(stage: .alias, address: recipient.address, matched: false, tried: tried, note: message))
        }
    }

    /// virtual(8): the mailbox is `virtual_mailbox_base/VALUE`, Maildir when VALUE ends in `/`;
    /// an address without a mailbox bounces (`unknown user`).
    private func deliverToMailbox(
        _ address: String, into recipient: inout ResolvedRecipient, steps: inout [ResolutionStep],
        warnings: inout [String]
    ) {
        let keys = searchKeys(address, internalToo: true)
        switch search(keys, in: mailboxMaps, title: "virtual_mailbox_maps") {
        case .found(let hit, let tried):
            let value = String(decoding: hit.value, as: UTF8.self)
            recipient.chain.append(steps.count)
            steps.append(
                ResolutionStep(
                    stage: .vmailbox, address: recipient.address, matched: true, query: hit.key.key, map: hit.map,
                    value: value, source: hit.source, tried: tried))
            recipient.outcome = .mailbox
            recipient.mailbox = value
            recipient.format = value.hasSuffix("/") ? .maildir : .mbox
            if settings.virtualMailboxBase.hasPrefix("/") {
                recipient.path = settings.virtualMailboxBase + "/" + value
            } else {
                let problem =
                    settings.virtualMailboxBase.isEmpty
                    ? "virtual_mailbox_base is not set" : "virtual_mailbox_base is not absolute"
                if settings.configurationKnown {
                    recipient.outcome = .deferred
                    recipient.reason = problem + ": virtual(8) stops (do not specify relative pathname)"
                } else {
                    let warning = problem + ": virtual(8) refuses to deliver (do not specify relative pathname)"
                    if !warnings.contains(warning) { warnings.append(warning) }
                }
            }
        case .notFound(let tried):
            let unknown = mailboxMaps.filter { !$0.readable }.map(\.name)
            steps.append(
                ResolutionStep(
                    stage: .vmailbox, address: recipient.address, matched: false, tried: tried, unreadable: unknown))
            if !unknown.isEmpty {
                // The mailbox may be in a table that cannot be read here.
                recipient.outcome = .mailbox
                return
            }
            recipient.outcome = .bounced
            let names = mailboxMaps.map(\.name).joined(separator: ", ")
            recipient.reason =
                "unknown user: \"\(recipient.address)\": no mailbox in \(names.isEmpty ? "(none)" : names) (virtual_mailbox_maps)"
        case .failed(let message, let tried):
            steps.append(
                ResolutionStep(
                    stage: .vmailbox, address: recipient.address, matched: false, tried: tried, note: message))
            recipient.outcome = .deferred
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

/// Whether this machine's passwd has `user` (case-folded, as local(8) looks it up).
func systemUserExists(_ user: String) -> Bool {
    getpwnam(user.lowercased()) != nil
}

/// Parses an address as typed (external form, `Name <addr>` accepted) into internal form.
///
/// - Returns: `nil` unless the text holds exactly one non-null address.
public func parseInputAddress(_ text: String) -> String? {
    let addresses = parseAddressList(Array(text.utf8))
    guard addresses.count == 1, let address = addresses.first, !address.isEmpty else { return nil }
    return address
}
