/// The delivery rules of `--lint`: each entry of a virtual alias or virtual mailbox map is
/// resolved by the ``AddressResolver`` (the model behind `--resolve` and `--test`), and
/// every outcome other than delivery is an error at each entry that takes part, with the
/// chain that leads there. The virtual(5) style and risk rules (catch-alls, addresses that
/// expand to themselves, keys without a domain, malformed addresses) are warnings and notes.
struct DeliveryRules {
    let resolver: AddressResolver
    /// No configuration was named: domain classes are a guess, so what depends on them is a
    /// note, not an error.
    let assumed: Bool
    let maps: [LintedMap]

    private static let guessSuffix =
        " (a guess: no main.cf was named, so the domains of the maps' keys are taken for virtual domains; "
        + "name the server's configuration with -c DIR)"
    private static let unreadableSuffix =
        " (a guess: it depends on tables that cannot be read here; see the warnings)"

    func run() -> [LintFinding] {
        var out: [LintFinding] = []
        var reported: Set<String> = []
        var catchAlls: [[UInt8]: (file: String, line: Int)] = [:]
        for map in maps where map.target.kind == .virtual {
            for entry in map.keptEntries where entry.key.first == UInt8(ascii: "@") {
                catchAlls[Array(entry.key.dropFirst())] = (map.target.map.name, entry.line)
            }
        }
        // Entries on the chain of a failed expansion: their line has its error, and probing
        // them again would only walk the same chain (1000 levels, say).
        var onFailedChain: Set<EntryLocation> = []
        // Addresses known to expand into an alias loop: a probe that reaches one fails the
        // same way, without walking the loop to the recursion limit again.
        var looping: [String: String] = [:]
        for map in maps {
            for entry in map.keptEntries {
                out += styleFindings(entry, in: map)
                let own = EntryLocation(file: map.target.map.name, line: entry.line)
                guard !onFailedChain.contains(own), let probe = probeAddress(for: entry, in: map),
                    let address = parseInputAddress(probe)
                else { continue }
                var found: [Failure]
                var delivered = false
                // Only worth a walk once a loop is known.
                let (reached, addresses) = looping.isEmpty ? ([], []) : reachableEntries(from: address)
                if let loop = addresses.lazy.compactMap({ looping[$0] }).first {
                    var places = [own]
                    for place in reached where !places.contains(place) { places.append(place) }
                    found = [
                        Failure(
                            rule: .aliasLoop,
                            message:
                                "mail to \(probe) is not accepted: it reaches the \(loop); Postfix answers 451 4.6.0 "
                                + "at the end of DATA and the sender retries until the mail expires (deferred)",
                            cause: LintRule.aliasLoop.rawValue, places: places, chain: [], dependsOnClasses: false,
                            uncertain: false)
                    ]
                } else {
                    let resolution = resolver.resolve(address, display: probe)
                    found = failures(of: resolution, entry: entry, in: map)
                    delivered = resolution.status == .ok
                    if let failure = found.first, failure.rule == .aliasLoop {
                        let cycle = resolution.failedChain.map { resolution.steps[$0].address.lowercased() }
                        for address in cycle { looping[address] = failure.cause }
                    }
                }
                for failure in found {
                    let severity: LintFinding.Severity =
                        failure.uncertain || (assumed && failure.dependsOnClasses) ? .note : .error
                    let message =
                        failure.message
                        + (severity == .error ? "" : failure.uncertain ? Self.unreadableSuffix : Self.guessSuffix)
                    let expansion = !failure.dependsOnClasses
                    onFailedChain.formUnion(failure.chain)
                    for place in failure.places {
                        let signature =
                            "\(place.file):\(place.line)|\(failure.rule.rawValue)|" + (expansion ? "" : failure.cause)
                        guard reported.insert(signature).inserted else { continue }
                        out.append(
                            LintFinding(
                                file: place.file, line: place.line, column: 1, severity: severity, message: message,
                                rule: failure.rule))
                    }
                }
                out += selfReference(entry, in: map, catchAlls: catchAlls, delivered: delivered)
            }
        }
        return out
    }

    // MARK: Probes

    /// The address whose mail the entry is about: the key itself; for `@domain`, an address
    /// of the domain that no key names; for a bare `user`, the user (at `$myorigin`).
    private func probeAddress(for entry: LintEntry, in map: LintedMap) -> String? {
        let key = entry.key
        if key.first == UInt8(ascii: "@") {
            let domain = String(decoding: key.dropFirst(), as: UTF8.self)
            var localpart = "no-such-user"
            var counter = 1
            while maps.contains(where: { $0.contents.record(forFoldedKey: Array("\(localpart)@\(domain)".utf8)) != nil }
            ) {
                counter += 1
                localpart = "no-such-user\(counter)"
            }
            return "\(localpart)@\(domain)"
        }
        if !key.contains(UInt8(ascii: "@")) {
            // A bare domain declares a virtual alias domain; a vmailbox key must have a domain.
            if map.target.kind == .vmailbox || bareDomain(key) != nil { return nil }
        }
        return String(decoding: entry.rawKey, as: UTF8.self)
    }

    // MARK: Failures

    /// One thing Postfix will not deliver, and the entries that take part.
    private struct Failure {
        var rule: LintRule
        var message: String
        /// What failed, for recognising the same failure reached from another entry.
        var cause: String
        var places: [EntryLocation]
        /// For a failed expansion, the entries Postfix walked (not probed again).
        var chain: Set<EntryLocation>
        var dependsOnClasses: Bool
        /// The outcome rests on tables that cannot be read here.
        var uncertain: Bool
    }

    private func failures(of resolution: Resolution, entry: LintEntry, in map: LintedMap) -> [Failure] {
        let own = EntryLocation(file: map.target.map.name, line: entry.line)
        let probe = resolution.input
        switch resolution.status {
        case .ok:
            return []
        case .refused:
            let reply = resolution.smtpReply.map { "\($0.code) \($0.enhancedStatus) \($0.text)" } ?? ""
            return [
                Failure(
                    rule: .refused, message: "mail to \(probe) is refused at SMTP: \(reply)", cause: reply,
                    places: [own], chain: [], dependsOnClasses: true, uncertain: resolution.uncertain)
            ]
        case .deferred where resolution.smtpReply?.stage == .data:
            let (rule, cause) = expansionFailure(resolution)
            let walked = locations(resolution.failedChain, in: resolution, adding: own)
            var places = walked
            // The whole expansion fails: every entry it reaches takes part, also those past
            // the point where Postfix gave up.
            if let start = parseInputAddress(resolution.canonical) {
                for place in reachableEntries(from: start).places where !places.contains(place) { places.append(place) }
            }
            let reply = resolution.smtpReply.map { "\($0.code) \($0.enhancedStatus)" } ?? "451"
            let ruleCause = rule == .aliasLoop ? cause : rule.rawValue
            return [
                Failure(
                    rule: rule,
                    message: "mail to \(probe) is not accepted: \(cause); Postfix answers \(reply) at the end of DATA "
                        + "and the sender retries until the mail expires (deferred)",
                    cause: ruleCause, places: places, chain: Set(walked), dependsOnClasses: false,
                    uncertain: resolution.uncertain)
            ]
        case .deferred, .bounced:
            return resolution.recipients.filter { !$0.outcome.isDelivery }.map { recipient in
                let path = chainText(recipient, in: resolution)
                let fate =
                    recipient.outcome == .bounced
                    ? "accepted, then bounced (the sender gets a non-delivery notice: backscatter when it was forged)"
                    : "accepted, then deferred (the mail waits in the queue)"
                return Failure(
                    rule: recipient.outcome == .bounced ? .bounced : .deferred,
                    message: "\(path): \(recipient.reason ?? recipient.outcome.rawValue): \(fate)",
                    cause: recipient.address.lowercased() + "|" + (recipient.reason ?? ""),
                    places: locations(recipient.chain, in: resolution, adding: own), chain: [],
                    dependsOnClasses: true, uncertain: resolution.uncertain)
            }
        }
    }

    /// The rule and words for a whole expansion that failed: a loop, a chain deeper than
    /// the recursion limit, a list longer than the expansion limit, a bad table value.
    private func expansionFailure(_ resolution: Resolution) -> (LintRule, String) {
        let reason = resolution.reason ?? ""
        let settings = resolver.settings
        let addresses = resolution.failedChain.map { resolution.steps[$0].address }
        if reason.contains("map nesting") {
            var seen: [String: Int] = [:]
            for (index, address) in addresses.enumerated() {
                if let start = seen[address.lowercased()] {
                    let cycle = addresses[start...index].joined(separator: " → ")
                    return (.aliasLoop, "alias loop \(cycle)")
                }
                seen[address.lowercased()] = index
            }
            let shown =
                addresses.count > 6
                ? (addresses.prefix(3) + ["…"] + addresses.suffix(2)).joined(separator: " → ")
                : addresses.joined(separator: " → ")
            return (
                .recursionLimit,
                "\(shown) is nested more than virtual_alias_recursion_limit (\(settings.recursionLimit)) levels deep"
            )
        }
        if reason.contains("expansion size") {
            return (
                .expansionLimit,
                "it expands to more than virtual_alias_expansion_limit (\(settings.expansionLimit)) addresses"
            )
        }
        if reason.contains("unreasonable virtual_alias_maps result") {
            return (
                .lookupError,
                "an address longer than virtual_alias_address_length_limit (\(settings.addressLengthLimit))"
            )
        }
        let note = resolution.steps.last(where: { $0.note != nil && !$0.matched })?.note ?? reason
        return (.lookupError, note)
    }

    /// Every entry of the linted maps that an expansion starting at `address` (internal
    /// form) reaches, and every address it reaches (lower case), each looked up once by the
    /// resolver's own lookup.
    private func reachableEntries(from address: String) -> (places: [EntryLocation], addresses: [String]) {
        let linted = Set(maps.map(\.target.map.name))
        let start = resolver.canonicalize(address)
        var queue = [start]
        var seen: Set<String> = [start.lowercased()]
        var addresses = [start.lowercased()]
        var places: [EntryLocation] = []
        var placed: Set<EntryLocation> = []
        while let next = queue.popLast(), seen.count < 100_000 {
            guard case .found(let results, let step) = resolver.lookUpVirtualAlias(next) else { continue }
            if let source = step.source, linted.contains(source.file), placed.insert(source).inserted {
                places.append(source)
            }
            for result in results where seen.insert(result.lowercased()).inserted {
                queue.append(result)
                addresses.append(result.lowercased())
            }
        }
        return (places, addresses)
    }

    /// `probe → intermediate → recipient`, the addresses a recipient was reached through.
    private func chainText(_ recipient: ResolvedRecipient, in resolution: Resolution) -> String {
        var addresses = [resolution.canonical]
        var keptItself = false
        for index in recipient.chain where resolution.steps[index].stage == .virtual {
            let step = resolution.steps[index]
            if addresses.last?.lowercased() != step.address.lowercased() { addresses.append(step.address) }
            if step.note?.contains("expands to itself") == true
                && step.result.contains(where: { $0.lowercased() == recipient.address.lowercased() })
            {
                keptItself = true
            }
        }
        if addresses.last?.lowercased() != recipient.address.lowercased() { addresses.append(recipient.address) }
        return addresses.joined(separator: " → ") + (keptItself ? " (expands to itself: kept)" : "")
    }

    /// The entries of the linted maps that the steps used, the probed entry first.
    private func locations(_ steps: [Int], in resolution: Resolution, adding own: EntryLocation) -> [EntryLocation] {
        let linted = Set(maps.map(\.target.map.name))
        var places = [own]
        var seen: Set<EntryLocation> = [own]
        for index in steps {
            guard let source = resolution.steps[index].source, linted.contains(source.file),
                seen.insert(source).inserted
            else { continue }
            places.append(source)
        }
        return places
    }

    // MARK: Style and risk

    private func styleFindings(
        _ entry: LintEntry, in map: LintedMap
    ) -> [LintFinding] {
        guard map.target.kind == .virtual else { return [] }
        let path = map.target.map.name
        var out: [LintFinding] = []
        func add(_ severity: LintFinding.Severity, _ rule: LintRule, _ message: String, column: Int = 1) {
            out.append(
                LintFinding(
                    file: path, line: entry.line, column: column, severity: severity, message: message, rule: rule))
        }
        let key = entry.key
        if !key.contains(UInt8(ascii: "@")) {
            if bareDomain(key) == nil {
                add(
                    .warning, .localOnlyKey,
                    "\"\(show(entry.rawKey))\" has no domain: it matches only recipients in local domains "
                        + "(mydestination, $myorigin), never in virtual domains")
            }
            return out
        }
        if key.first == UInt8(ascii: "@") {
            add(
                .note, .catchAll,
                "catch-all for \(show(Array(key.dropFirst()))): every address in the domain is accepted at SMTP, "
                    + "so mail for a user who does not exist further on is bounced after acceptance (backscatter)")
        }
        for (index, address) in parseAddressList(entry.value).enumerated() {
            // The internal form: what Postfix carries on (a stray `@` stays visible there).
            if let problem = addressProblem(Array(address.utf8), isFirst: index == 0) {
                add(.warning, .invalidAddress, "\"\(address)\" \(problem)", column: entry.valueColumn)
            }
        }
        return out
    }

    /// An entry whose value holds its own key: Postfix keeps the address without expanding
    /// it again (whether that address is then delivered is the delivery rules' business).
    private func selfReference(
        _ entry: LintEntry, in map: LintedMap, catchAlls: [[UInt8]: (file: String, line: Int)], delivered: Bool
    ) -> [LintFinding] {
        guard map.target.kind == .virtual, entry.key.contains(UInt8(ascii: "@")), entry.key.first != UInt8(ascii: "@")
        else { return [] }
        let folding = resolver.settings.folding
        let targets = parseAddressList(entry.value).map { folding.fold(Array(externalAddress($0).utf8)) }
        guard targets.contains(entry.key) else { return [] }
        let name = show(entry.rawKey)
        let message: String
        if let domain = domainPart(of: entry.key), let catchAll = catchAlls[domain] {
            message =
                "keeps \(name) out of the catch-all @\(show(domain)) (\(catchAll.file) line \(catchAll.line)): "
                + "its mail is delivered as \(name) itself"
        } else if targets.count == 1 && delivered {
            message = "maps to itself only: the entry changes nothing (Postfix keeps \(name) and delivers it as it is)"
        } else if targets.count == 1 {
            message = "maps to itself only: Postfix keeps \(name) as it is, without looking it up again"
        } else {
            message = "also delivers to itself (Postfix keeps \(name) without expanding it again)"
        }
        return [
            LintFinding(
                file: map.target.map.name, line: entry.line, column: 1, severity: .note, message: message,
                rule: .selfReference)
        ]
    }
}

/// Why `address` (external form) is not a usable recipient address, or `nil` when it is.
func addressProblem(_ address: [UInt8], isFirst: Bool) -> String? {
    if address.first == UInt8(ascii: "@") {
        guard isFirst else { return "is a bare domain: only the first item of a list may be '@domain'" }
        return domainProblem(Array(address.dropFirst()))
    }
    guard let at = address.lastIndex(of: UInt8(ascii: "@")) else {
        return nil  // a bare local part: Postfix appends @$myorigin
    }
    let local = Array(address[..<at])
    if local.isEmpty { return "has an empty local part" }
    if local.first != UInt8(ascii: "\""),
        local.contains(where: { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") })
    {
        return "is not one address (unquoted '@', '<' or '>' in the local part)"
    }
    return domainProblem(Array(address[(at + 1)...]))
}

private func domainProblem(_ domain: [UInt8]) -> String? {
    if domain.isEmpty { return "has no domain after '@'" }
    if domain.first == UInt8(ascii: "[") { return domain.last == UInt8(ascii: "]") ? nil : "has an unclosed '['" }
    if domain.first == UInt8(ascii: ".") || domain.last == UInt8(ascii: ".") && domain.count == 1
        || domain.contains(where: { $0 < 0x80 && !isDomainByte($0) })
    {
        return "has an invalid domain \"\(show(domain))\""
    }
    let labels = domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    if labels.dropLast().contains(where: { $0.isEmpty }) { return "has an empty label in its domain" }
    return nil
}

private func isDomainByte(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
}
