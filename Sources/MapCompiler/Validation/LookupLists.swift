/// The lookup tables and domain lists the resolver consults, as plain data.

/// One table of a maps list (`virtual_alias_maps`, …): a name for messages and its records.
public struct LookupMap: Sendable {
    /// How the map is named in output: the operand as given (`Fixtures/virtual`) or the
    /// main.cf element (`hash:/etc/postfix/virtual`).
    public let name: String
    let contents: MapContents
    /// Whether the table could be read here. An unreadable one (`mysql:`, `ldap:`, a missing
    /// file) is still in its list: what it would answer is unknown, never "not found".
    public let readable: Bool

    /// A map named `name` (for output) holding `contents`, e.g. a source compiled with
    /// ``MapContents/compile(source:format:handling:duplicates:hostname:warn:)``.
    public init(name: String, contents: MapContents) {
        self.name = name
        self.contents = contents
        self.readable = true
    }

    /// A table that cannot be read here (its answers are unknown).
    public init(unreadable name: String) {
        self.name = name
        self.contents = MapContents(origin: .source(path: name))
        self.readable = false
    }

    /// A map from `key value` pairs, keys folded with `folding` (as a build would store them).
    public init(name: String, entries: [(String, String)], folding: KeyFolding = .ascii) {
        var records: [MapRecord] = []
        for (key, value) in entries {
            records.append(MapRecord(key: folding.fold(Array(key.utf8)), value: Array(value.utf8)))
        }
        self.init(name: name, contents: MapContents(origin: .source(path: name), records: records))
    }

    /// The value stored for `key` (already folded), if any.
    func value(forFoldedKey key: [UInt8]) -> [UInt8]? {
        contents.record(forFoldedKey: key)?.value
    }

    /// The record stored for `key` (already folded), if any.
    func record(forFoldedKey key: [UInt8]) -> MapRecord? {
        contents.record(forFoldedKey: key)
    }

    /// The source line a record came from, when the map was compiled from a source.
    func location(of record: MapRecord) -> EntryLocation? {
        guard case .source(let path) = contents.origin, let line = record.lineNumber else { return nil }
        return EntryLocation(file: path, line: line)
    }
}

/// A Postfix pattern list such as `mydestination`, `virtual_alias_domains` or
/// `relay_domains`, with its `type:table` elements already opened.
///
/// Elements are tried left to right; the first that matches decides (`!pattern` means "does
/// not match" and stops). In a *string list* (mydestination, virtual_alias_domains,
/// virtual_mailbox_domains) a name matches only itself, case-insensitively, and a table only
/// when the exact domain is a key. In a *host list* (relay_domains) a table is also asked for
/// the parent domains; with parent matching (the list's name is in
/// `parent_domain_matches_subdomains`, as relay_domains is by default) `example.com` matches
/// its subdomains and the table keys tried are the bare parents (`example.com`), without it
/// only `.example.com` matches subdomains and the keys tried are `.example.com`, `.com`.
public struct DomainList: Sendable {
    /// One element of the list.
    public enum Element: Sendable {
        /// A literal host or domain name.
        case name(String)
        /// A `type:table` whose keys are domains (the values are ignored).
        case table(LookupMap)
        /// An element that cannot be evaluated here (never matches).
        case unsupported(String)
    }

    /// How names and tables match (see the type's description).
    public enum Kind: Sendable, Equatable {
        case strings
        case hosts(parentMatchesSubdomains: Bool)
    }

    /// The elements in order; `negated` for `!element`.
    public var elements: [(element: Element, negated: Bool)]
    /// String list or host list.
    public var kind: Kind

    /// A list of these elements.
    public init(_ elements: [(element: Element, negated: Bool)] = [], kind: Kind = .strings) {
        self.elements = elements
        self.kind = kind
    }

    /// A list of literal names (for tests and simple settings).
    public init(names: [String], kind: Kind = .strings) {
        self.init(names.map { (Element.name($0), false) }, kind: kind)
    }

    /// A string list whose elements are the given tables (what `$virtual_alias_maps` gives).
    public init(tables: [LookupMap]) {
        self.init(tables.map { (Element.table($0), false) })
    }

    /// The decision of the first element that matches `domain`, with that element (its name,
    /// or the table's name), or `nil` when none does.
    func match(_ domain: String, folding: KeyFolding) -> (matched: Bool, by: String)? {
        let folded = folding.fold(Array(domain.utf8))
        for (element, negated) in elements {
            var description: String? = nil
            switch element {
            case .name(let pattern):
                if nameMatches(folded, pattern: folding.fold(Array(pattern.utf8))) { description = pattern }
            case .table(let map):
                if tableKeys(folded).contains(where: { map.value(forFoldedKey: $0) != nil }) {
                    description = map.name
                }
            case .unsupported:
                break
            }
            if let description { return (!negated, (negated ? "!" : "") + description) }
        }
        return nil
    }

    /// The elements that cannot be evaluated here (what they would match is unknown).
    var unsupportedElements: [String] {
        elements.compactMap { if case .unsupported(let text) = $0.element { return text } else { return nil } }
    }

    /// Whether `domain` is in the list.
    func contains(_ domain: String, folding: KeyFolding) -> Bool {
        match(domain, folding: folding)?.matched ?? false
    }

    private func nameMatches(_ domain: [UInt8], pattern: [UInt8]) -> Bool {
        if domain == pattern { return true }
        let dot = UInt8(ascii: ".")
        switch kind {
        case .strings:
            return false
        case .hosts(parentMatchesSubdomains: true):
            return domain.count > pattern.count + 1 && domain.suffix(pattern.count + 1).elementsEqual([dot] + pattern)
        case .hosts(parentMatchesSubdomains: false):
            return pattern.first == dot && domain.count > pattern.count
                && domain.suffix(pattern.count).elementsEqual(pattern)
        }
    }

    /// The keys a table is asked for: the domain; in a host list then each parent domain,
    /// bare with parent matching and with its leading `.` without.
    private func tableKeys(_ domain: [UInt8]) -> [[UInt8]] {
        guard case .hosts(let parentStyle) = kind else { return [domain] }
        var keys = [domain]
        var position = 0
        while position + 1 < domain.count, let dot = domain[(position + 1)...].firstIndex(of: UInt8(ascii: ".")) {
            keys.append(Array(domain[(parentStyle ? dot + 1 : dot)...]))
            position = dot
        }
        return keys.filter { !$0.isEmpty }
    }
}
