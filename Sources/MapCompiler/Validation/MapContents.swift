import Glibc

/// Maps as data, for the validation modes: a source compiled in memory exactly as a build
/// would store it, or the records of an existing table.

/// One record as stored: the folded key and the value, without the trailing NUL.
public struct MapRecord: Sendable, Equatable {
    /// The key as stored (folded), without the trailing NUL.
    public var key: [UInt8]
    /// The value, without the trailing NUL.
    public var value: [UInt8]
    /// The source line the record came from (`nil` for tables, and for postalias's own
    /// `@`/`YP_*` entries).
    public var lineNumber: Int?
    /// Whether the record is (or would be) stored with a trailing NUL.
    public var hasNUL: Bool

    /// A record with an already folded key.
    public init(key: [UInt8], value: [UInt8], lineNumber: Int? = nil, hasNUL: Bool = true) {
        self.key = key
        self.value = value
        self.lineNumber = lineNumber
        self.hasNUL = hasNUL
    }
}

/// Where a map's contents came from.
public enum MapOrigin: Sendable, Equatable {
    case source(path: String)
    /// A table file; `method` is the Berkeley DB access method of a `.db` file (`nil` for
    /// lmdb and cdb, or a file that could not tell).
    case table(path: String, method: AccessMethod?)
}

/// The contents of a map: its records in source (or table) order, with an index by key.
public struct MapContents: Sendable {
    /// The source file or table file the contents came from.
    public let origin: MapOrigin
    /// The records in source (or table) order, one per key.
    public private(set) var records: [MapRecord] = []
    private var index: [[UInt8]: Int] = [:]

    /// Contents made of `records` (a later record replaces an earlier one with the same key).
    public init(origin: MapOrigin, records: [MapRecord] = []) {
        self.origin = origin
        for record in records { append(record) }
    }

    /// The record for an already folded key (without NUL).
    public func record(forFoldedKey key: [UInt8]) -> MapRecord? { index[key].map { records[$0] } }

    mutating func append(_ record: MapRecord) {
        if let existing = index[record.key] {
            records[existing] = record
        } else {
            index[record.key] = records.count
            records.append(record)
        }
    }

    mutating func replaceValue(at key: [UInt8], with record: MapRecord) {
        guard let existing = index[key] else { return append(record) }
        records[existing] = record
    }
}

/// An ``EntryStore`` in memory: the same folding and duplicate rules as a table file.
struct CompiledMapStore: EntryStore {
    var contents: MapContents
    var duplicates: DuplicatePolicy
    let handling: KeyHandling
    let displayPath: String
    /// Every duplicate seen: the folded key and the line of the dropped (or replacing) entry.
    private(set) var duplicateLines: [(key: [UInt8], line: Int?)] = []

    init(origin: MapOrigin, handling: KeyHandling, duplicates: DuplicatePolicy, displayPath: String) {
        contents = MapContents(origin: origin)
        self.handling = handling
        self.duplicates = duplicates
        self.displayPath = displayPath
    }

    mutating func insert(
        key: [UInt8], value: [UInt8], fold: Bool, nul: Bool?, lineNumber: Int?, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool {
        let storedKey = fold ? handling.folding.fold(key) : key
        let record = MapRecord(
            key: storedKey, value: value, lineNumber: lineNumber, hasNUL: nul ?? handling.nul.writesNUL)
        if let existing = contents.record(forFoldedKey: storedKey), existing.hasNUL == record.hasNUL {
            duplicateLines.append((storedKey, lineNumber))
            switch duplicates {
            case .replace:
                contents.replaceValue(at: storedKey, with: record)
                return true
            case .warn:
                warn(duplicateEntryWarning(table: displayPath, key: storedKey))
                return false
            case .ignore:
                return false
            }
        }
        contents.append(record)
        return true
    }
}

/// Compiles a source file in memory, as `buildTable` would store it.
///
/// - Returns: the contents and every duplicate key with the line that repeated it.
func compileSourceInMemory(
    path: String, format: SourceFormat, handling: KeyHandling, duplicates: DuplicatePolicy = .warn,
    hostname: String = "localhost", warn: (Diagnostic) -> Void
) throws(FatalError) -> (contents: MapContents, duplicates: [(key: [UInt8], line: Int?)]) {
    let fd = try openSourceFileOrFail(path)
    defer { close(fd) }
    let bytes: [UInt8]
    switch readAll(fd: fd) {
    case .success(let content): bytes = content
    case .failure(let error): throw FatalError("read \(path): \(error.text)")
    }
    return try compileSourceBytes(
        bytes, path: path, format: format, handling: handling, duplicates: duplicates, hostname: hostname, warn: warn)
}

/// Compiles source text in memory, as `buildTable` would store it (`path` names it in
/// messages).
func compileSourceBytes(
    _ bytes: [UInt8], path: String, format: SourceFormat, handling: KeyHandling, duplicates: DuplicatePolicy = .warn,
    hostname: String = "localhost", warn: (Diagnostic) -> Void
) throws(FatalError) -> (contents: MapContents, duplicates: [(key: [UInt8], line: Int?)]) {
    var request = BuildRequest(method: .hash, typeName: "hash", name: path, input: .file(path))
    request.format = format
    request.handling = handling
    request.duplicates = duplicates
    request.hostname = hostname
    var store = CompiledMapStore(
        origin: .source(path: path), handling: handling, duplicates: duplicates, displayPath: path + ".db")
    var summary = BuildSummary()
    var windows = SourceWindows(bytes: bytes)
    try compileEntries(
        from: &windows, sourceName: path, request: request, into: &store, summary: &summary, warn: warn)
    return (store.contents, store.duplicateLines)
}

extension MapContents {
    /// Compiles the source file at `path` in memory, exactly as a build would store it in a
    /// table (the same parser, folding, trailing-NUL and duplicate rules).
    ///
    /// - Parameters:
    ///   - format: postmap(1) `key value` lines or aliases(5) `name: value` lines.
    ///   - hostname: postalias's `YP_MASTER_NAME` value (main.cf `myhostname`).
    ///   - warn: the warnings a build would print (skipped lines, duplicates), in order.
    /// - Throws: `open PATH: REASON` when the source cannot be read.
    public static func compile(
        source path: String, format: SourceFormat = .postmap, handling: KeyHandling = KeyHandling(),
        duplicates: DuplicatePolicy = .warn, hostname: String = "localhost", warn: (Diagnostic) -> Void
    ) throws(FatalError) -> MapContents {
        try compileSourceInMemory(
            path: path, format: format, handling: handling, duplicates: duplicates, hostname: hostname, warn: warn
        ).contents
    }

    /// Reads every record of the table file at `path` (keys and values cut at their first
    /// NUL), under a shared lock.
    ///
    /// - Parameters:
    ///   - type: the table type the file must have; `nil` for a Berkeley DB file of
    ///     either type (what its header says).
    ///   - typeName: the map type for messages (`hash`).
    /// - Throws: `open database PATH: REASON`, or a sequence error.
    public static func read(
        table path: String, type: TableType? = nil, typeName: String = "hash",
        handling: KeyHandling = KeyHandling(), warn: (Diagnostic) -> Void
    ) throws(FatalError) -> MapContents {
        let reader = try TableReader(
            tablePath: path, sourcePath: nil, table: type, typeName: typeName, handling: handling, warn: warn)
        defer { reader.close() }
        var contents = MapContents(origin: .table(path: path, method: reader.method))
        try reader.forEachRawRecord { key, value in
            let hasNUL = key.last == 0
            contents.append(
                MapRecord(
                    key: Array(key.prefix(while: { $0 != 0 })), value: Array(value.prefix(while: { $0 != 0 })),
                    hasNUL: hasNUL))
        }
        return contents
    }

    /// Loads a map given in the operand syntax of the validation modes (``MapArgument``):
    ///
    /// * `NAME.db` (no type): that table file, hash or btree as its header says;
    /// * `NAME` (no type): the source file, compiled in memory exactly as a build would store it;
    /// * `TYPE:NAME` (`proxy:` looked through): the table `NAME.db` when it exists, else the
    ///   source `NAME` compiled in memory, with a note saying so (through `warn`).
    ///
    /// - Parameter preferSource: compile the source even when the table exists (lint checks
    ///   what the source says, not what was last built).
    /// - Throws: `unsupported dictionary type: TYPE` for a type other than hash and btree, and
    ///   the errors of ``compile(source:format:handling:duplicates:hostname:warn:)`` and
    ///   ``read(table:method:typeName:handling:warn:)``.
    public static func load(
        _ map: MapArgument, format: SourceFormat = .postmap, handling: KeyHandling = KeyHandling(),
        hostname: String = "localhost", preferSource: Bool = false, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> MapContents {
        var map = map
        while map.explicitType == "proxy" { map = MapArgument(map.name) }
        func source() throws(FatalError) -> MapContents {
            try compile(source: map.name, format: format, handling: handling, hostname: hostname, warn: warn)
        }
        guard let type = map.explicitType else {
            if map.name.hasSuffix(".db") {
                return try read(table: map.name, handling: handling, warn: warn)
            }
            for table in [TableType.lmdb, .cdb] where map.name.hasSuffix(table.fileSuffix) {
                return try read(table: map.name, type: table, typeName: table.rawValue, handling: handling, warn: warn)
            }
            return try source()
        }
        if type == "pgsql" { return try read(pgsql: map.name, handling: handling, warn: warn) }
        guard case .indexed(let table) = MapTypeSupport(type: type) else {
            throw FatalError("unsupported dictionary type: \(type)")
        }
        let tablePath = map.tablePath(for: table)
        if preferSource, fileExists(map.name) { return try source() }
        if !fileExists(tablePath), fileExists(map.name) {
            warn(Diagnostic(.note, "\(map): no \(tablePath); using its source \(map.name), compiled in memory"))
            return try source()
        }
        return try read(table: tablePath, type: table, typeName: type, handling: handling, warn: warn)
    }

    /// Every row of the table that `--export` wrote for the pgsql_table(5) file at `path`.
    public static func read(
        pgsql path: String, handling: KeyHandling = KeyHandling(), warn: (Diagnostic) -> Void
    ) throws(FatalError) -> MapContents {
        let table = try PgsqlTable(path: path, handling: handling)
        defer { table.close() }
        var contents = MapContents(origin: .table(path: "pgsql:\(path)", method: nil))
        try table.forEachRecord(warn: warn) { key, value in
            contents.append(MapRecord(key: key, value: value, hasNUL: false))
        }
        return contents
    }

    /// The value stored for `key` once folded with `folding` (as Postfix folds a lookup key;
    /// use the folding the map was compiled with), or `nil`.
    public func value(forKey key: [UInt8], folding: KeyFolding = .unicode) -> [UInt8]? {
        record(forFoldedKey: folding.fold(key))?.value
    }
}

/// Whether something exists at `path` (following symbolic links).
func fileExists(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0
}
