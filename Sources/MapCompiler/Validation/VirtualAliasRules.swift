/// The virtual(5) rules of `--lint`: keys that can only match in local domains, catch-alls,
/// values that are not addresses, self-references, loops and chains longer than Postfix's
/// limits (`virtual_alias_recursion_limit`, `virtual_alias_expansion_limit`, both 1000).
struct VirtualAliasRules {
    let linter: MapLinter
    let entries: [LintEntry]
    var recursionLimit = 1000
    var expansionLimit = 1000

    private func finding(
        _ entry: LintEntry, _ severity: LintFinding.Severity, _ rule: String, _ message: String
    )
        -> LintFinding
    {
        LintFinding(
            file: linter.path, line: entry.line, column: 1, severity: severity, message: message, rule: rule)
    }

    func run() -> [LintFinding] {
        var out: [LintFinding] = []
        var byKey: [[UInt8]: LintEntry] = [:]
        for entry in entries { byKey[entry.key] = entry }
        var edges: [[UInt8]: [[UInt8]]] = [:]
        var finals: [[UInt8]: Int] = [:]
        for entry in entries {
            let key = entry.key
            if !key.contains(UInt8(ascii: "@")) {
                if bareDomain(key) == nil {
                    out.append(
                        finding(
                            entry, .warning, "local-only-key",
                            "\"\(show(entry.rawKey))\" has no domain: it matches only recipients in local domains "
                                + "(mydestination and the like), never in virtual domains"))
                }
                continue  // a domain line declares a virtual alias domain; its value is not used
            }
            if key.first == UInt8(ascii: "@") {
                out.append(
                    finding(
                        entry, .note, "catch-all",
                        "catch-all for \(show(Array(key.dropFirst()))): every address in the domain is accepted, "
                            + "which invites backscatter unless every valid user is also listed"))
            }
            let addresses = addressList(entry.value)
            for (index, address) in addresses.enumerated() {
                if let problem = addressProblem(address, isFirst: index == 0) {
                    out.append(
                        LintFinding(
                            file: linter.path, line: entry.line, column: entry.valueColumn, severity: .warning,
                            message: "\"\(show(address))\" \(problem)", rule: "invalid-address"))
                }
            }
            let folded = addresses.map { linter.handling.folding.fold($0) }
            if folded.contains(key) {
                if folded.count == 1 {
                    out.append(
                        finding(entry, .warning, "self-reference", "maps to itself only: the entry has no effect"))
                } else {
                    out.append(
                        finding(
                            entry, .note, "self-reference",
                            "also delivers to itself (Postfix keeps \(show(key)) without expanding it again)"))
                }
            }
            let others = folded.filter { $0 != key }
            let targets = others.compactMap { target(of: $0, in: byKey) }
            edges[key] = targets
            finals[key] = others.count - targets.count
        }
        out += loopsAndLimits(edges: edges, finals: finals, byKey: byKey)
        return out
    }

    /// The key a lookup of `address` would hit: the address itself, else the domain's catch-all.
    private func target(of address: [UInt8], in byKey: [[UInt8]: LintEntry]) -> [UInt8]? {
        if byKey[address] != nil { return address }
        if let domain = domainPart(of: address), byKey[[UInt8(ascii: "@")] + domain] != nil {
            return [UInt8(ascii: "@")] + domain
        }
        return nil
    }

    /// - Parameters:
    ///   - edges: for each key, the keys its addresses expand through.
    ///   - finals: for each key, how many of its addresses are final (not keys).
    private func loopsAndLimits(
        edges: [[UInt8]: [[UInt8]]], finals: [[UInt8]: Int], byKey: [[UInt8]: LintEntry]
    ) -> [LintFinding] {
        var out: [LintFinding] = []
        enum Mark { case visiting, done }
        var marks: [[UInt8]: Mark] = [:]
        var depth: [[UInt8]: Int] = [:]
        var fanOut: [[UInt8]: Int] = [:]
        var stack: [[UInt8]] = []
        var reportedCycles: Set<[[UInt8]]> = []

        func visit(_ key: [UInt8]) {
            marks[key] = .visiting
            stack.append(key)
            var longest = 0
            var total = 0
            let targets = edges[key] ?? []
            for next in targets {
                switch marks[next] {
                case .visiting:
                    if let start = stack.firstIndex(of: next) {
                        let cycle = Array(stack[start...])
                        let canonical = cycle.sorted { $0.lexicographicallyPrecedes($1) }
                        if !reportedCycles.contains(canonical), let entry = byKey[cycle[0]] {
                            reportedCycles.insert(canonical)
                            let lines = cycle.compactMap { byKey[$0]?.line }.map(String.init).joined(separator: ", ")
                            let path = (cycle + [cycle[0]]).map(show).joined(separator: " → ")
                            out.append(
                                finding(
                                    entry, .error, "alias-loop",
                                    "alias loop \(path) (lines \(lines)): Postfix defers such mail "
                                        + "(virtual_alias_recursion_limit)"))
                        }
                    }
                case .done:
                    longest = max(longest, (depth[next] ?? 0) + 1)
                    total += fanOut[next] ?? 1
                case nil:
                    visit(next)
                    longest = max(longest, (depth[next] ?? 0) + 1)
                    total += fanOut[next] ?? 1
                }
            }
            depth[key] = longest
            fanOut[key] = total + (finals[key] ?? 0)
            stack.removeLast()
            marks[key] = .done
        }

        for key in edges.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) where marks[key] == nil {
            visit(key)
        }
        for (key, value) in depth where value > recursionLimit {
            if let entry = byKey[key] {
                out.append(
                    finding(
                        entry, .warning, "recursion-limit",
                        "expands through \(value) levels, more than virtual_alias_recursion_limit (\(recursionLimit))"))
            }
        }
        for (key, value) in fanOut where value > expansionLimit {
            if let entry = byKey[key] {
                out.append(
                    finding(
                        entry, .warning, "expansion-limit",
                        "expands to about \(value) addresses, more than virtual_alias_expansion_limit "
                            + "(\(expansionLimit)): Postfix defers such mail"))
            }
        }
        return out
    }
}

/// Splits a virtual(5) value into its addresses: commas (and whitespace) separate them,
/// except inside double quotes or angle brackets; `Name <addr>` gives `addr`.
func addressList(_ value: [UInt8]) -> [[UInt8]] {
    var items: [[UInt8]] = []
    var current: [UInt8] = []
    var inQuotes = false
    var inAngle = false
    var i = 0
    func flush() {
        if let open = current.firstIndex(of: UInt8(ascii: "<")), let close = current.lastIndex(of: UInt8(ascii: ">")),
            open < close
        {
            current = Array(current[(open + 1)..<close])
        }
        if !current.isEmpty { items.append(current) }
        current = []
    }
    while i < value.count {
        let byte = value[i]
        if byte == UInt8(ascii: "\\"), i + 1 < value.count {
            current.append(byte)
            current.append(value[i + 1])
            i += 2
            continue
        }
        if byte == UInt8(ascii: "\"") { inQuotes.toggle() }
        if !inQuotes && byte == UInt8(ascii: "<") { inAngle = true }
        if !inQuotes && byte == UInt8(ascii: ">") { inAngle = false }
        if !inQuotes && !inAngle && (byte == UInt8(ascii: ",") || isCSpace(byte)) {
            if byte == UInt8(ascii: ",") || !current.contains(UInt8(ascii: "<")) { flush() }
            if byte != UInt8(ascii: ",") && current.contains(UInt8(ascii: "<")) { current.append(byte) }
        } else {
            current.append(byte)
        }
        i += 1
    }
    flush()
    return items
}

/// Why `address` is not a usable recipient address, or `nil` when it is.
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
