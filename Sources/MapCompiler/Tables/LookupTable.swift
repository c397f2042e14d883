import Glibc

/// Opening a map for lookups and listing, whatever its type: the library side of postmap's
/// `-q`, `-s` and `-d`.

/// A map opened for reading: a hash or btree table file, or an in-memory map (`static:`,
/// `inline:`, `texthash:`). Close it when done; a closed map finds nothing.
public protocol LookupTable: AnyObject {
    /// `TYPE:NAME` as typed (`hash:virtual`).
    var typedLabel: String { get }
    /// The name Postfix's lookup layer uses in its messages (`hash:virtual.db`).
    var tableLabel: String { get }
    /// Looks `key` up as Postfix does (folded as the table was written, the trailing-NUL
    /// rule), returning the value up to its first NUL byte, or `nil` when the key is absent.
    ///
    /// - Parameter emptyValueLabel: the table name for the warnings about an empty value
    ///   (``typedLabel`` when `nil`).
    /// - Throws: a query error (a stored value that is not UTF-8 in UTF-8 mode, a libdb failure).
    func lookup(_ key: [UInt8], emptyValueLabel: String?, warn: (Diagnostic) -> Void) throws(FatalError) -> [UInt8]?
    /// Calls `body` with every record (key and value cut at their first NUL) in the map's order.
    ///
    /// - Throws: a sequence error, or for `static:` maps, which cannot be listed.
    func forEachRecord(warn: (Diagnostic) -> Void, _ body: ([UInt8], [UInt8]) -> Void) throws(FatalError)
    /// Releases the table file (nothing to do for in-memory maps).
    func close()
    /// Runs `body` with the table's shared lock held across every lookup it makes, instead
    /// of taking and releasing the lock around each one: for a run of lookups that should
    /// not cost two system calls each. A writer waits until `body` returns, so keep it short.
    func withLookupsLocked(_ body: () throws(FatalError) -> Void) throws(FatalError)
}

extension LookupTable {
    /// Looks `key` up; the warnings about an empty value name ``typedLabel``.
    public func lookup(_ key: [UInt8], warn: (Diagnostic) -> Void) throws(FatalError) -> [UInt8]? {
        try lookup(key, emptyValueLabel: nil, warn: warn)
    }
}

extension LookupTable {
    public func withLookupsLocked(_ body: () throws(FatalError) -> Void) throws(FatalError) { try body() }
}

extension TableReader: LookupTable {}

/// Opens `map` the way postmap opens a map for `-q`, `-s` and `-d`: `hash:` and `btree:`
/// read `NAME.db`, `lmdb:` `NAME.lmdb` and `cdb:` `NAME.cdb` (shared locks, the
/// stale-table warning); `static:`, `inline:` and
/// `texthash:` are answered in memory.
///
/// - Parameters:
///   - configuration: main.cf, for `default_database_type` (the type of a bare `NAME`) and
///     `berkeley_db_read_buffer_size`; Postfix's defaults when not given.
///   - writable: open for deletes (in-memory maps refuse).
///   - warn: warnings, as they happen.
/// - Throws: Postfix's messages: `open dictionary: expecting "type:name" form …`,
///   `open database NAME.db: …`, `unsupported dictionary type: TYPE`, and for `fail:` the
///   application error.
public func openLookupTable(
    _ map: MapArgument, configuration: MainConfig = MainConfig(), handling: KeyHandling = KeyHandling(),
    writable: Bool = false, warn: (Diagnostic) -> Void
) throws(FatalError) -> any LookupTable {
    let type = map.type(default: try configuration.defaultDatabaseType())
    guard !type.isEmpty, !map.name.isEmpty else {
        throw FatalError("open dictionary: expecting \"type:name\" form instead of \"\(map)\"")
    }
    switch MapTypeSupport(type: type) {
    case .indexed(let table):
        if writable && table == .cdb { throw FatalError(cdbIncrementalRefusal) }
        if writable && table == .lmdb && access(map.tablePath(for: table), F_OK) != 0 && errno == ENOENT {
            // Postfix's lmdb driver creates a table that `-d` opens and does not find.
            try createEmptyTable(table, tablePath: map.tablePath(for: table), warn: warn)
        }
        return try TableReader(
            table: table, typeName: type, name: map.name, handling: handling,
            cacheSize: try configuration.readBufferSize(), mapSize: try configuration.lmdbMapSize(),
            writable: writable, warn: warn)
    default:
        if type == "pgsql" {
            if writable { throw FatalError("pgsql:\(map.name) map requires O_RDONLY access mode") }
            return try PgsqlTable(path: map.name, handling: handling)
        }
        if let table = try MemoryTable.open(
            type: type, name: map.name, handling: handling, writable: writable, warn: warn)
        {
            return table
        }
        if type == "fail" {
            throw FatalError("table fail:\(map.name): \(writable ? "delete" : "query") error: Application error")
        }
        throw FatalError("unsupported dictionary type: \(type)")
    }
}
