import Glibc

/// The indexed tables a whole Postfix configuration refers to (`--scan-config`, `--sync`):
/// every `hash:`, `btree:`, `dbm:`, `lmdb:` and `cdb:` element of main.cf and of master.cf's
/// `-o` overrides (`proxy:` looked through), with where it is named, what it becomes as an
/// lmdb or cdb table, and how its table stands against its source.

/// How a table stands against its source. Freshness is about content, never time stamps:
/// a table is fresh when it holds exactly what compiling its source now would store.
public enum TableState: Equatable, Sendable {
    /// The table holds what the source compiles to.
    case fresh
    /// The table differs from the source in this many records.
    case stale(differences: Int)
    /// The source is there, the table is not.
    case missing
    /// There is no source file (a table Postfix writes itself, or a source that is gone).
    case noSource
    /// The source or the table could not be read (the reason).
    case unreadable(String)

    /// A build would change the table (stale or missing).
    public var needsBuild: Bool {
        switch self {
        case .stale, .missing: return true
        case .fresh, .noSource, .unreadable: return false
        }
    }

    /// `fresh`, `stale (3 differences)`, `missing`, `no source`, `unreadable: …`.
    public var description: String {
        switch self {
        case .fresh: return "fresh"
        case .stale(let count): return "stale (\(count) difference\(count == 1 ? "" : "s"))"
        case .missing: return "missing"
        case .noSource: return "no source"
        case .unreadable(let reason): return "unreadable: \(reason)"
        }
    }

    /// `fresh`, `stale`, `missing`, `no-source`, `unreadable` (for JSON).
    public var name: String {
        switch self {
        case .fresh: return "fresh"
        case .stale: return "stale"
        case .missing: return "missing"
        case .noSource: return "no-source"
        case .unreadable: return "unreadable"
        }
    }
}

/// Compares the `table` table of `name` with what compiling the source `name` now would
/// store (the comparison `--verify` prints; `YP_LAST_MODIFIED` aside for postalias).
///
/// - Returns: the differences, or `nil` when there is no table; throws when either cannot
///   be read.
public func sourceTableDifferences(
    name: String, table: TableType, format: SourceFormat, handling: KeyHandling, duplicates: DuplicatePolicy = .warn,
    hostname: String, warn: (Diagnostic) -> Void = { _ in }
) throws(FatalError) -> (expected: MapContents, changes: [MapDifference])? {
    var ignored: [Diagnostic] = []
    let expected = try MapContents.compile(
        source: name, format: format, handling: handling, duplicates: duplicates, hostname: hostname,
        warn: { ignored.append($0) })
    let tablePath = name + table.fileSuffix
    guard access(tablePath, F_OK) == 0 else { return nil }
    let actual = try MapContents.read(
        table: tablePath, type: table, typeName: table.rawValue, handling: handling, warn: warn)
    let changes = MapDifference.compute(
        from: expected, to: actual, ignoringKeys: format == .postalias ? ["YP_LAST_MODIFIED"] : [])
    return (expected, changes)
}

/// How the `table` table of `name` stands against its source (see ``TableState``).
public func tableState(
    name: String, table: TableType, format: SourceFormat, handling: KeyHandling, hostname: String
) -> TableState {
    guard access(name, F_OK) == 0 else { return .noSource }
    do throws(FatalError) {
        guard
            let compared = try sourceTableDifferences(
                name: name, table: table, format: format, handling: handling, hostname: hostname)
        else { return .missing }
        return compared.changes.isEmpty ? .fresh : .stale(differences: compared.changes.count)
    } catch {
        return .unreadable(error.description)
    }
}

/// One indexed table named by a configuration.
public struct IndexedTableReference: Sendable, Equatable {
    /// The file that names it (`/etc/postfix/main.cf`) and the line (0 for a Postfix default).
    public let file: String
    public let line: Int
    /// The parameter whose value names it.
    public let parameter: String
    /// The master.cf service whose `-o` names it (`nil` for main.cf), and its type (`inet`).
    public let service: String?
    public let serviceType: String?
    /// The parameter's whole value as written (before `$name` expansion).
    public let value: String
    /// The element as it stands after `$name` expansion (`proxy:hash:/etc/postfix/virtual`).
    public let element: String
    /// The type as written (`hash`, `btree`, `dbm`, `lmdb`, `cdb`).
    public let type: String
    /// The table's name: its source file, and with the type's suffix its table file.
    public let name: String
    /// Wrapped in `proxy:`.
    public let proxied: Bool
    /// What the table is for.
    public let kind: MapKind
    /// Not set in main.cf: Postfix's default (`alias_maps`, `alias_database`).
    public let isDefault: Bool
    /// A table Postfix's daemons write themselves (a verify, postscreen, TLS session or
    /// similar cache): it has no source and is never compiled.
    public let isCache: Bool

    /// A Berkeley DB type (`hash`, `btree`, `dbm`): what a system without libdb cannot read.
    public var isBerkeleyDB: Bool { ["hash", "btree", "dbm"].contains(type) }

    /// The table type swiftpostmap writes for it, when it is one (`dbm` is not).
    public var tableType: TableType? {
        if case .indexed(let table) = MapTypeSupport(type: type) { return table }
        return nil
    }

    /// postalias semantics for the aliases tables (`alias_maps`, `alias_database`).
    public var sourceFormat: SourceFormat { kind == .aliases ? .postalias : .postmap }

    /// The element with the type replaced by `table` (`proxy:` kept): what to write instead.
    public func replacement(_ table: TableType) -> String {
        (proxied ? "proxy:" : "") + "\(table.rawValue):\(name)"
    }

    /// Where it is named: `main.cf:12`, `master.cf:25 (submission)`, `main.cf (default)`.
    public var location: String {
        let base = file.split(separator: "/").last.map(String.init) ?? file
        if isDefault { return "\(base) (Postfix's default)" }
        return "\(base):\(line)" + (service.map { " (\($0))" } ?? "")
    }
}

/// The indexed tables of the configuration in `configuration`'s directory: main.cf, and
/// master.cf when there is one. `alias_maps` and `alias_database` are listed with
/// Postfix's defaults (`hash:/etc/aliases`) when main.cf does not set them; the caches
/// Postfix uses by default (`address_verify_map`, `postscreen_cache_map`) only when
/// main.cf names them.
public func indexedTableReferences(in configuration: MainConfig) -> [IndexedTableReference] {
    let directory = configuration.directory ?? MainConfig.defaultDirectory
    var master: MasterConfig? = nil
    if case .success(let bytes) = readWholeFile(directory + "/master.cf") {
        master = MasterConfig(text: String(decoding: bytes, as: UTF8.self))
    }
    var main = configuration
    var defaulted: Set<String> = []
    for (parameter, value) in postfixDefaultTables where main.parameters[parameter] == nil {
        main.set(parameter, value)
        defaulted.insert(parameter)
    }
    let indexedTypes: Set<String> = ["hash", "btree", "dbm", "lmdb", "cdb"]
    return mapReferences(
        main: main, mainPath: directory + "/main.cf", master: master, masterPath: directory + "/master.cf"
    ).compactMap { reference in
        guard let type = reference.map.explicitType, indexedTypes.contains(type) else { return nil }
        let isDefault = reference.service == nil && defaulted.contains(reference.parameter)
        return IndexedTableReference(
            file: reference.file, line: isDefault ? 0 : reference.line, parameter: reference.parameter,
            service: reference.service, serviceType: reference.serviceType, value: reference.value,
            element: reference.element, type: type, name: reference.map.name,
            proxied: reference.proxied, kind: reference.kind, isDefault: isDefault,
            isCache: isCacheParameter(reference.parameter))
    }
}

/// Postfix's default values that name indexed tables a build is needed for.
private let postfixDefaultTables = [
    ("alias_maps", "hash:/etc/aliases, nis:mail.aliases"), ("alias_database", "hash:/etc/aliases"),
]

/// Parameters whose tables Postfix's daemons write themselves.
private func isCacheParameter(_ parameter: String) -> Bool {
    parameter == "address_verify_map" || parameter.hasSuffix("_cache_map") || parameter.hasSuffix("_cache_database")
        || parameter.hasSuffix("_cache_name")
}
