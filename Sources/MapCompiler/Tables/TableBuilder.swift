import Glibc

/// Where a build reads its entries from.
public enum SourceInput: Sendable, Equatable {
    /// The source file of the map (postmap's normal build).
    case file(String)
    /// Standard input (`-i`); messages name it `stdin`.
    case standardInput
}

/// The syntax of a source.
public enum SourceFormat: Sendable, Equatable {
    /// postmap(1): `key whitespace value`.
    case postmap
    /// postalias(1): aliases(5) `name: value, value`.
    case postalias
}

/// Everything a build needs to know.
public struct BuildRequest: Sendable {
    /// The table file format: hash, btree, lmdb or cdb.
    public var table: TableType
    /// The map type as typed on the command line (`hash`), for messages.
    public var typeName: String
    /// The map name; the table is `name` plus the type's suffix (`name.db`).
    public var name: String
    /// Where the entries come from: the source file or standard input.
    public var input: SourceInput
    /// postmap(1) or aliases(5) syntax.
    public var format: SourceFormat = .postmap
    /// Key folding, the trailing-NUL convention and UTF-8 mode.
    public var handling = KeyHandling()
    /// What a repeated key does (`-r`, `-w`).
    public var duplicates: DuplicatePolicy = .warn
    /// `-i`: add to the existing table instead of starting empty.
    public var incremental = false
    /// `berkeley_db_create_buffer_size`.
    public var cacheSize = 16_777_216
    /// `lmdb_map_size`: the initial map of a new lmdb table (it grows as needed).
    public var lmdbMapSize = 16_777_216
    /// `false` with `-p`: a new table gets mode 0644 whatever the source's mode.
    public var deriveModeFromSource = true
    /// `true` with `-o`: a root caller keeps ownership instead of giving the table to the
    /// source file's owner.
    public var keepCallerOwnership = false
    /// `-F`: values name files whose contents are stored base64-encoded.
    public var base64Files = false
    /// postalias: the value of `myhostname` for the `YP_MASTER_NAME` entry.
    public var hostname = "localhost"
    /// postalias: seconds since the epoch for `YP_LAST_MODIFIED` (now when `nil`).
    public var buildTime: Int? = nil
    /// Write the same bytes for the same entries and options, wherever and whenever the
    /// build runs: Berkeley DB files get 4096-byte pages, no stray bytes and a file id
    /// derived from their contents (lmdb and cdb files are that way already). Set
    /// ``buildTime`` too for postalias.
    public var reproducible = false

    /// A build of the `table` table of `name` from `input`, with postmap's defaults for
    /// everything else.
    public init(table: TableType, typeName: String, name: String, input: SourceInput) {
        self.table = table
        self.typeName = typeName
        self.name = name
        self.input = input
    }

    /// A build of the hash or btree table `name.db` from `input`.
    public init(method: AccessMethod, typeName: String, name: String, input: SourceInput) {
        self.init(table: method == .hash ? .hash : .btree, typeName: typeName, name: name, input: input)
    }
}

/// Counts from a finished build.
public struct BuildSummary: Sendable, Equatable {
    /// Entries stored in the table.
    public var stored = 0
    /// Entries dropped (or replacing an earlier one) because their key was already stored.
    public var duplicates = 0
    /// Source lines skipped with a warning.
    public var skippedLines = 0
}

/// How far a build is, for a progress display.
public struct BuildProgress: Sendable, Equatable {
    /// What the build is doing.
    public enum Phase: Sendable, Equatable {
        /// Reading the source and storing its entries.
        case reading
        /// All entries read; writing the table file from the entries held back.
        case writing
    }

    /// What the build is doing.
    public var phase: Phase
    /// Entries stored (or held back) so far.
    public var entries: Int
    /// Bytes of the source parsed so far.
    public var bytesRead: Int
    /// The size of the source, when known (not for standard input).
    public var sourceBytes: Int?

    /// A report of `entries` stored and `bytesRead` of `sourceBytes` parsed.
    public init(phase: Phase = .reading, entries: Int, bytesRead: Int, sourceBytes: Int?) {
        self.phase = phase
        self.entries = entries
        self.bytesRead = bytesRead
        self.sourceBytes = sourceBytes
    }

    /// The percentage of the source parsed (0 to 100), when its size is known.
    public var percentRead: Int? {
        guard let sourceBytes, sourceBytes > 0 else { return nil }
        return min(100, bytesRead * 100 / sourceBytes)
    }
}

/// Compiles a source into its table, as `postmap [type:]name` (or `postalias`) does.
///
/// The source is opened first (`open SRC: …` when that fails), then the table is written to
/// a temporary file next to `name.db` and renamed over it; warnings go to `warn` as they
/// happen. A fatal error leaves any existing table untouched. `progress`, when given, hears
/// on the calling thread, every few thousand entries, how far the build is.
public func buildTable(
    _ request: BuildRequest, warn: (Diagnostic) -> Void, progress: ((BuildProgress) -> Void)? = nil
) throws(FatalError) -> BuildSummary {
    // 1. The source, opened before anything else.
    let sourceName: String
    let fd: Int32
    switch request.input {
    case .file(let path):
        sourceName = path
        fd = try openSourceFileOrFail(path)
    case .standardInput:
        sourceName = "stdin"
        fd = dup(0)
        guard fd >= 0 else { throw FatalError("open stdin: \(systemErrorText(errno))") }
    }
    defer { close(fd) }
    var info = stat()
    let haveInfo = fstat(fd, &info) == 0
    let isRegular = haveInfo && (info.st_mode & S_IFMT) == S_IFREG

    // 2. Mode of a new table; as root, work as the source's owner (unless -o), as postmap
    //    does, so the table belongs to that owner and is made with that owner's rights.
    let mode = newTableMode(sourceMode: request.deriveModeFromSource && isRegular ? info.st_mode : nil)
    var identity: EffectiveIdentity? = nil
    if getuid() == 0, !request.keepCallerOwnership, haveInfo,
        info.st_uid != geteuid() || info.st_gid != getegid()
    {
        identity = try EffectiveIdentity.switchTo(uid: info.st_uid, gid: info.st_gid)
    }
    defer { identity?.restore() }

    let tablePath = request.name + request.table.fileSuffix
    return try withTableFormat(request.table) { format throws(FatalError) -> BuildSummary in
        try build(
            request, format: format, source: fd, sourceName: sourceName, sourceInfo: isRegular ? info : nil,
            tablePath: tablePath, mode: mode, warn: warn, progress: progress)
    }
}

/// The build itself, once the source is open: the table written through a temporary file.
private func build(
    _ request: BuildRequest, format: any TableFormat, source fd: Int32, sourceName: String, sourceInfo: stat?,
    tablePath: String, mode: mode_t, warn: (Diagnostic) -> Void, progress: ((BuildProgress) -> Void)?
) throws(FatalError) -> BuildSummary {
    let settings = TableSettings(
        cacheSize: buildCacheSize(configured: request.cacheSize, sourceBytes: sourceInfo.map { Int($0.st_size) } ?? 0),
        mapSize: request.lmdbMapSize, pageSize: request.reproducible ? reproduciblePageSize : 0)
    if request.incremental {
        // Open the existing table once under its own name, so that a foreign or damaged file
        // is reported (by its library, too) as NAME.db and not as the temporary copy.
        var info = stat()
        if stat(tablePath, &info) == 0, info.st_size > 0 {
            try checkExistingTable(tablePath, label: "\(request.typeName):\(tablePath)")
            let descriptor = open(tablePath, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            if descriptor >= 0 {
                defer { close(descriptor) }
                try format.openRecords(
                    path: tablePath, descriptor: descriptor, settings: TableSettings(cacheSize: 131_072)
                ).close()
            }
        }
    }
    let sourceBytes = sourceInfo.map { Int($0.st_size) }
    let duplicateLabel = duplicateWarningLabel(request.table, typeName: request.typeName, name: request.name)
    /// Writes the table at `temporaryPath` from the source (and, for a reproducible build,
    /// clears the bytes of a Berkeley DB file that libdb leaves to chance).
    func write(_ temporaryPath: String) throws(FatalError) -> BuildSummary {
        let summary = try writeRecords(temporaryPath)
        if request.reproducible, request.table.accessMethod != nil {
            try makeBerkeleyFileReproducible(path: temporaryPath, label: tablePath)
        }
        return summary
    }
    func writeRecords(_ temporaryPath: String) throws(FatalError) -> BuildSummary {
        let windows = SourceWindows(fd: fd, sourceName: sourceName)
        if !request.incremental && (sourceBytes ?? Int.max) > bucketOrderedBuildThreshold,
            let method = request.table.accessMethod
        {
            // A new large Berkeley DB table: entries held back and stored in bucket order
            // (hash) or key order (btree), next to the temporary table.
            let spillDirectory = splitPath(temporaryPath).directory
            switch method {
            case .hash:
                let entries = BucketOrderedEntries(
                    handling: request.handling, duplicates: request.duplicates, displayPath: tablePath,
                    expectedBytes: sourceBytes, spillDirectory: spillDirectory, pageSize: settings.pageSize)
                return try buildHeldBack(
                    entries, from: windows, sourceName: sourceName, request: request, path: temporaryPath,
                    mode: mode, warn: warn, sourceBytes: sourceBytes, progress: progress)
            case .btree:
                let entries = KeyOrderedEntries(
                    handling: request.handling, duplicates: request.duplicates, displayPath: tablePath,
                    spillDirectory: spillDirectory, pageSize: settings.pageSize)
                return try buildHeldBack(
                    entries, from: windows, sourceName: sourceName, request: request, path: temporaryPath,
                    mode: mode, warn: warn, sourceBytes: sourceBytes, progress: progress)
            }
        }
        let records =
            request.incremental
            ? try format.updateOrCreateWriter(path: temporaryPath, label: tablePath, mode: mode, settings: settings)
            : try format.createWriter(path: temporaryPath, label: tablePath, mode: mode, settings: settings)
        var writer = TableWriter(
            records: records, handling: request.handling, duplicates: request.duplicates,
            displayPath: duplicateLabel, table: request.table, typedLabel: "\(request.typeName):\(request.name)",
            nulByDefault: request.table.writesNULByDefault)
        let summary = try compileEntriesInParallel(
            from: windows, sourceName: sourceName, request: request, into: &writer, warn: warn,
            sourceBytes: sourceBytes, progress: progress)
        try writer.close()
        return summary
    }
    if request.table == .cdb {
        // postmap's own way for cdb: NAME.cdb.tmp, locked, written and renamed.
        return try replaceCDBTable(tablePath: tablePath, mode: mode) { path throws(FatalError) in try write(path) }
    }
    return try replaceTableAtomically(
        tablePath: tablePath, lockStyle: format.lockStyle,
        openFailureLabel: request.table == .lmdb ? "open database" : "open", copyExisting: request.incremental,
        attributes: TableFileAttributes(mode: mode, owner: nil), warn: warn
    ) { temporaryPath, _ throws(FatalError) -> (result: BuildSummary, commit: Bool) in
        (try write(temporaryPath), true)
    }
}

/// Creates an empty table of `table` at `tablePath` (mode 0644) when none is there, as
/// Postfix's lmdb driver does when `-d` opens a table that does not exist.
func createEmptyTable(_ table: TableType, tablePath: String, warn: (Diagnostic) -> Void) throws(FatalError) {
    try withTableFormat(table) { format throws(FatalError) in
        try replaceTableAtomically(
            tablePath: tablePath, lockStyle: format.lockStyle, openFailureLabel: "open database", copyExisting: true,
            attributes: TableFileAttributes(mode: 0o644, owner: nil), warn: warn
        ) { temporaryPath, existed throws(FatalError) -> (result: Void, commit: Bool) in
            guard !existed else { return ((), false) }
            let records = try format.createWriter(
                path: temporaryPath, label: tablePath, mode: 0o644, settings: TableSettings())
            do throws(TableAccessError) {
                try records.completeTable()
            } catch {
                throw FatalError("error writing \(tablePath): \(error.reason)")
            }
            return ((), true)
        }
    }
}

/// How postmap names a table in its duplicate-entry warning: `NAME.db` for Berkeley DB,
/// `lmdb:NAME` for lmdb and `NAME` for cdb (the names each of Postfix's writers gives).
func duplicateWarningLabel(_ table: TableType, typeName: String, name: String) -> String {
    switch table {
    case .hash, .btree: return name + table.fileSuffix
    case .lmdb: return "\(typeName):\(name)"
    case .cdb: return name
    }
}

/// The page size of a reproducible Berkeley DB table (the most common file system block
/// size, so such a table is usually laid out as postmap would lay it out).
let reproduciblePageSize: UInt32 = 4096

/// Sources up to this size (most maps) build in source order, exactly as postmap does, so the
/// file is postmap's down to its header; the memory pool holds all of such a table anyway.
/// Larger ones, and standard input, build in bucket order (hash) or key order (btree).
let bucketOrderedBuildThreshold = 4 << 20

/// Compiles the source into `entries`, which hold everything back, then writes the table at
/// `path` from them. The held-back warnings come out even when the source fails.
private func buildHeldBack<Entries: HeldBackEntries>(
    _ entries: Entries, from windows: consuming SourceWindows, sourceName: String, request: BuildRequest,
    path: String, mode: mode_t, warn: (Diagnostic) -> Void, sourceBytes: Int?,
    progress: ((BuildProgress) -> Void)?
) throws(FatalError) -> BuildSummary {
    var summary: BuildSummary
    var store = entries
    do throws(FatalError) {
        summary = try compileEntriesInParallel(
            from: windows, sourceName: sourceName, request: request, into: &store, warn: entries.hold,
            sourceBytes: sourceBytes, progress: progress)
    } catch {
        entries.releaseWarnings(warn: warn)
        throw error
    }
    guard let method = request.table.accessMethod else { return summary }
    progress?(
        BuildProgress(
            phase: .writing, entries: summary.stored, bytesRead: sourceBytes ?? 0, sourceBytes: sourceBytes))
    let dropped = try entries.write(
        path: path, method: method, mode: mode, cacheSize: request.cacheSize, warn: warn)
    summary.stored -= dropped
    summary.duplicates += dropped
    return summary
}

/// Deletes `keys` from the `table` table of `name` (postmap `-d`), through a copy that
/// replaces the table only when something was deleted.
///
/// - Returns: `true` when at least one key was deleted.
public func deleteFromTable(
    table: TableType, typeName: String, name: String, keys: [[UInt8]], handling: KeyHandling, cacheSize: Int,
    warn: (Diagnostic) -> Void
) throws(FatalError) -> Bool {
    let tablePath = name + table.fileSuffix
    return try withTableFormat(table) { format throws(FatalError) -> Bool in
        try replaceTableAtomically(
            tablePath: tablePath, lockStyle: format.lockStyle,
            openFailureLabel: table == .lmdb ? "open database" : "open", copyExisting: true,
            attributes: TableFileAttributes(mode: 0o644, owner: nil), warn: warn
        ) { temporaryPath, existed throws(FatalError) -> (result: Bool, commit: Bool) in
            guard existed else { throw FatalError("open database \(tablePath): \(systemErrorText(ENOENT))") }
            try checkExistingTable(temporaryPath, label: "\(typeName):\(tablePath)")
            let records = try format.updateWriter(
                path: temporaryPath, label: tablePath, settings: TableSettings(cacheSize: cacheSize))
            var writer = TableWriter(
                records: records, handling: handling, duplicates: .warn, displayPath: "\(typeName):\(tablePath)",
                table: table, typedLabel: "\(typeName):\(name)")
            var deleted = false
            for key in keys {
                if try writer.delete(key: handling.folding.fold(key)) { deleted = true }
            }
            try writer.close()
            return (deleted, deleted)
        }
    }
}

/// Deletes `keys` from the hash or btree table `name.db`.
public func deleteFromTable(
    method: AccessMethod, typeName: String, name: String, keys: [[UInt8]], handling: KeyHandling, cacheSize: Int,
    warn: (Diagnostic) -> Void
) throws(FatalError) -> Bool {
    try deleteFromTable(
        table: method == .hash ? .hash : .btree, typeName: typeName, name: name, keys: keys, handling: handling,
        cacheSize: cacheSize, warn: warn)
}

/// `open database NAME.db: REASON`, or the environment variant for a bad `DB_CONFIG`.
func openDatabaseError(_ error: BerkeleyDBError, tablePath: String) -> FatalError {
    switch error.operation {
    case .openEnvironment, .createEnvironment:
        return FatalError("open DB environment: \(error.reason)")
    default:
        return FatalError("open database \(tablePath): \(error.reason)")
    }
}

/// Before `-i` or `-d` hands the existing table at `path` to libdb: names it for the fault
/// and stall guard, and refuses a hash table that claims impossibly many buckets (libdb
/// would write pages for each of them).
private func checkExistingTable(_ path: String, label: String) throws(FatalError) {
    ReadProgress.tableWillOpen?(label)
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
    guard fd >= 0 else { return }  // libdb's open reports it
    defer { close(fd) }
    try refuseImpossibleBucketCount(descriptor: fd, label: label)
}

/// Parses a source (postmap or postalias syntax) and stores its entries, then, for postalias,
/// the entries postalias adds. Warnings go to `warn` in source order; `parsed`, when given,
/// hears now and then how many bytes of the source have been parsed.
func compileEntries<Store: EntryStore & ~Copyable>(
    from windows: inout SourceWindows, sourceName: String, request: BuildRequest, into writer: inout Store,
    summary: inout BuildSummary, warn: (Diagnostic) -> Void, parsed: ((Int) -> Void)? = nil
) throws(FatalError) {
    let checkUTF8 = request.handling.utf8
    let parse: (LogicalLine) -> ParseOutcome
    switch request.format {
    case .postmap: parse = PostmapEntryParser(source: sourceName, checkUTF8: checkUTF8).parse
    case .postalias: parse = AliasEntryParser(source: sourceName, checkUTF8: checkUTF8).parse
    }
    let files = request.base64Files && request.format == .postmap ? Base64FileValues(source: sourceName) : nil
    while let window = try windows.next() {
        try compileWindow(
            window, parse: parse, files: files, into: &writer, summary: &summary, warn: warn, parsed: parsed)
        parsed?(window.bytesBefore + window.bytes.count)
    }
    if request.format == .postalias { try addAliasBookkeeping(request: request, into: &writer, warn: warn) }
}

/// The entries of one window of the source.
private func compileWindow<Store: EntryStore & ~Copyable>(
    _ window: SourceWindows.Window, parse: (LogicalLine) -> ParseOutcome, files: Base64FileValues?,
    into writer: inout Store, summary: inout BuildSummary, warn: (Diagnostic) -> Void, parsed: ((Int) -> Void)?
) throws(FatalError) {
    var lines = LogicalLineReader(bytes: window.bytes, linesBefore: window.linesBefore)
    var count = 0
    while let line = lines.next() {
        count += 1
        if count & 4095 == 0, let parsed { parsed(window.bytesBefore + lines.bytesConsumed) }
        switch parse(line) {
        case .ignored:
            continue
        case .skipped(let warning):
            summary.skippedLines += 1
            warn(warning)
        case .entry(let entry, let warning):
            if let warning { warn(warning) }
            var value = entry.value
            if let files {
                switch files.encodedValue(entry.value, lineNumber: entry.lineNumber) {
                case .success(let encoded): value = encoded
                case .failure(let warning):
                    summary.skippedLines += 1
                    warn(warning)
                    continue
                }
            }
            if try writer.insert(key: entry.key, value: value, lineNumber: entry.lineNumber, warn: warn) {
                summary.stored += 1
            } else {
                summary.duplicates += 1
            }
        }
    }
}

/// The memory pool for a build: `berkeley_db_create_buffer_size` at least, and enough to hold
/// the whole new table (about three times the source) up to 1 GiB, so that libdb never
/// writes a page out and reads it back while the table grows. Only the page layout of the
/// file depends on it, never its contents; libdb touches the memory only as pages are used.
func buildCacheSize(configured: Int, sourceBytes: Int) -> Int {
    max(configured, min(sourceBytes.multipliedReportingOverflow(by: 3).partialValue, 1 << 30))
}
