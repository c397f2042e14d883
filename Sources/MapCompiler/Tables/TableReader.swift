import Glibc

/// A table opened for lookups and listing, the way Postfix readers open it: a shared lock
/// (of the format's style) while the library opens the file and again around each access,
/// keys folded as the table was written, and the sticky trailing-NUL rule. The records
/// come from the table's ``TableFormat``.
final class TableReader {
    /// `TYPE:NAME` as typed (`hash:virtual`).
    let typedLabel: String
    /// `TYPE:NAME.db`, the name Postfix's lookup layer uses in its messages.
    let tableLabel: String
    let handling: KeyHandling
    /// The table's type, when it was named (`nil`: a `.db` file of either Berkeley type).
    let table: TableType?
    private var records: any TableRecords
    private var isOpen = true
    private let lock: FileLock
    private var nulState: NULLookupState
    /// Inside ``withLookupsLocked(_:)``: the shared lock is held, lookups do not take it.
    private var lockHeld = false

    /// Opens the `table` table of `name` (`name.db`, `name.lmdb`, `name.cdb`).
    ///
    /// - Parameters:
    ///   - table: the table type.
    ///   - typeName: the type as typed, for messages.
    ///   - name: the map name (the source `name` is checked for the stale-table warning).
    ///   - cacheSize: `berkeley_db_read_buffer_size`.
    ///   - writable: open for deletes.
    /// - Throws: `open database NAME.db: REASON`.
    convenience init(
        table: TableType, typeName: String, name: String, handling: KeyHandling, cacheSize: Int = 131_072,
        mapSize: Int = 16_777_216, writable: Bool = false, warn: (Diagnostic) -> Void
    ) throws(FatalError) {
        try self.init(
            tablePath: name + table.fileSuffix, sourcePath: name, table: table, typeName: typeName,
            handling: handling, cacheSize: cacheSize, mapSize: mapSize, writable: writable, warn: warn)
    }

    /// Opens the table file at `tablePath` (for the validation modes, which name table files
    /// directly); `sourcePath` is checked for the stale-table warning when given. With no
    /// `table`, the file is a Berkeley DB file of either type.
    init(
        tablePath: String, sourcePath: String?, table: TableType?, typeName: String, handling: KeyHandling,
        cacheSize: Int = 131_072, mapSize: Int = 16_777_216, writable: Bool = false, warn: (Diagnostic) -> Void
    ) throws(FatalError) {
        let name = sourcePath ?? tablePath
        typedLabel = "\(typeName):\(name)"
        tableLabel = "\(typeName):\(tablePath)"
        self.handling = handling
        self.table = table
        nulState = NULLookupState(policy: handling.nul)
        let style: FileLockStyle = table == .lmdb ? .fcntl : .flock
        let acquired: FileLock?
        do {
            acquired = try FileLock.acquire(path: tablePath, exclusive: false, writable: writable, style: style)
        } catch {
            // `-d` opens the table for writing before it replaces it: the same refusal as there.
            if error.step == .symlink { throw symbolicLinkRefusal(tablePath) }
            throw FatalError("open database \(tablePath): \(systemErrorText(error.code))")
        }
        guard let lock = acquired else {
            throw FatalError("open database \(tablePath): \(systemErrorText(ENOENT))")
        }
        self.lock = lock
        try refuseImpossibleBucketCount(descriptor: lock.descriptor, label: tableLabel)
        ReadProgress.tableWillOpen?(tableLabel)
        let settings = TableSettings(cacheSize: cacheSize, mapSize: mapSize)
        switch table {
        case nil, .hash?, .btree?:
            records = try BerkeleyRecords(
                path: tablePath, descriptor: lock.descriptor, method: table?.accessMethod, cacheSize: cacheSize,
                writable: writable)
        case let other?:
            records = try withTableFormat(other) { format throws(FatalError) in
                try format.openRecords(path: tablePath, descriptor: lock.descriptor, settings: settings)
            }
        }
        lock.unlock()
        if let sourcePath,
            let warning = staleTableWarning(
                sourcePath: sourcePath, tablePath: tablePath, tableDescriptor: lock.descriptor)
        {
            warn(warning)
        }
    }

    /// Looks `key` up as Postfix does: fold it, try the NUL forms the policy allows, and
    /// return the value up to its first NUL byte.
    ///
    /// - Parameter emptyValueLabel: the table name used if the value is empty (postmap uses
    ///   ``typedLabel`` for `-q key` and ``tableLabel`` for `-q -`).
    /// - Returns: `nil` when the key is not in the table (or, in UTF-8 mode, is not valid
    ///   UTF-8, which gets a warning).
    /// - Throws: `table TYPE:NAME.db: query error` for a stored value that is not UTF-8 in
    ///   UTF-8 mode, or a libdb failure.
    func lookup(
        _ key: [UInt8], emptyValueLabel: String? = nil, warn: (Diagnostic) -> Void
    ) throws(FatalError)
        -> [UInt8]?
    {
        guard isOpen else { return nil }
        if handling.utf8, !isASCII(key), !isValidUTF8(key) {
            warn(
                Diagnostic(
                    .warning,
                    Array("\(table == .lmdb ? typedLabel : tableLabel): non-UTF-8 key \"".utf8) + key
                        + Array("\": malformed UTF-8 or invalid codepoint".utf8)))
            return nil
        }
        let folded = handling.folding.fold(key)
        var found: [UInt8]? = nil
        let records = self.records
        do throws(TableAccessError) {
            for withNUL in nulState.candidates {
                var probe = folded
                if withNUL { probe.append(0) }
                let stored =
                    lockHeld
                    ? try records.get(probe)
                    : try lock.withSharedLock({ () throws(TableAccessError) -> [UInt8]? in
                        records.refresh()
                        return try records.get(probe)
                    })
                if let value = stored {
                    nulState.settle(withNUL: withNUL)
                    found = value
                    break
                }
            }
        } catch {
            throw FatalError(
                (table ?? .hash).accessErrorMessage(
                    .query, typedLabel: typedLabel, tableLabel: tableLabel, reason: error.reason))
        }
        guard var value = found else { return nil }
        if let nul = value.firstIndex(of: 0) { value.removeSubrange(nul...) }
        if handling.utf8, !isASCII(value), !isValidUTF8(value) {
            warn(
                Diagnostic(
                    .warning,
                    Array("\(tableLabel): key \"".utf8) + folded + Array("\": non-UTF-8 value \"".utf8) + value
                        + Array("\": malformed UTF-8 or invalid codepoint".utf8)))
            throw FatalError("table \(tableLabel): query error")
        }
        if value.isEmpty {
            let label = emptyValueLabel ?? typedLabel
            warn(
                Diagnostic(
                    .warning,
                    Array("table \(label): key ".utf8) + key + Array(": empty string result is not allowed".utf8)))
            warn(Diagnostic(.warning, "table \(label) should return NO RESULT in case of NOT FOUND"))
        }
        return value
    }

    /// Runs `body` under one shared lock for all its lookups (see ``LookupTable``).
    func withLookupsLocked(_ body: () throws(FatalError) -> Void) throws(FatalError) {
        guard isOpen, !lockHeld else { return try body() }
        try lock.withSharedLock { () throws(FatalError) in
            records.refresh()
            lockHeld = true
            defer { lockHeld = false }
            try body()
        }
    }

    /// Calls `body` with every record exactly as stored (trailing NUL included).
    ///
    /// A damaged file whose pages link in a loop makes libdb's cursor return the same records
    /// forever, each read making progress (so the stall watchdog never fires). Every record
    /// takes at least two 2-byte index slots on its page, so a file of N bytes holds at most
    /// N / 4 records: past that the listing stops with a fatal error.
    func forEachRawRecord(_ body: ([UInt8], [UInt8]) -> Void) throws(FatalError) {
        guard isOpen else { return }
        var info = stat()
        let limit = fstat(lock.descriptor, &info) == 0 ? max(Int(info.st_size) / 4, 1) : Int.max
        var count = 0
        let records = self.records
        do throws(TableAccessError) {
            try lock.withSharedLock { () throws(TableAccessError) in
                try records.forEachRecord { key, value in
                    count += 1
                    guard count <= limit else { return false }
                    body(key, value)
                    return true
                }
            }
        } catch {
            throw FatalError("table \(tableLabel): sequence error: \(error.reason)")
        }
        if count > limit {
            throw FatalError(
                "\(tableLabel): damaged file: it yields more records than a file of its size can hold (its pages"
                    + " link in a loop); swiftpostmap --check tells what is wrong with it")
        }
    }

    /// Calls `body` with every record (key and value cut at their first NUL) in the table's
    /// order. An empty key gets Postfix's warning and is still passed on.
    func forEachRecord(warn: (Diagnostic) -> Void, _ body: ([UInt8], [UInt8]) -> Void) throws(FatalError) {
        // Streamed: each record is printed as the cursor reaches it, as postmap does, so a
        // huge table needs no memory for the listing and `-s | head` answers at once.
        let label = typedLabel
        try forEachRawRecord { rawKey, rawValue in
            let key = rawKey.prefix(while: { $0 != 0 })
            let value = rawValue.prefix(while: { $0 != 0 })
            if key.isEmpty {
                warn(Diagnostic(.warning, "table \(label): empty lookup key value is not allowed"))
            }
            body(Array(key), Array(value))
        }
    }

    /// The access method of the open file, for a Berkeley DB table.
    var method: AccessMethod? { isOpen ? records.accessMethod : nil }

    /// Closes the table (read path: nothing to flush, so errors are not reported).
    func close() {
        guard isOpen else { return }
        isOpen = false
        records.close()
    }
}

/// Refuses a table file that ``impossibleBucketCount(descriptor:)`` finds, before libdb
/// opens it (`label` names it: `hash:virtual.db`).
func refuseImpossibleBucketCount(descriptor: Int32, label: String) throws(FatalError) {
    guard let claimed = impossibleBucketCount(descriptor: descriptor) else { return }
    throw FatalError(
        "\(label): damaged file: its meta-data page names \(claimed.buckets) buckets, more than a file of"
            + " \(claimed.pages) pages can hold; swiftpostmap --check tells what is wrong with it")
}

/// A hash table whose meta-data page names far more buckets than its file has pages.
///
/// libdb, asked only to read such a file, walks the buckets it names and writes a zero page
/// for each into the file (the real postmap too): a bit flip in `max_bucket` grows the
/// table by hundreds of megabytes a second until the disk is full. Every bucket has a page
/// of its own, so a sound file has at least about as many pages as buckets; the bound here
/// (16 times the pages, plus 65,536) leaves room for the pages libdb reserves ahead.
///
/// - Returns: the claimed bucket count and the file's pages, or `nil` when the file is not
///   such a table (another type, too short to tell; ``TableFileHeader`` reads the page).
func impossibleBucketCount(descriptor: Int32) -> (buckets: UInt64, pages: Int)? {
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { return nil }
    var start = [UInt8](repeating: 0, count: 76)
    guard start.withUnsafeMutableBytes({ pread(descriptor, $0.baseAddress, 76, 0) }) == 76,
        let header = TableFileHeader(start), header.hasValidPageSize, let buckets = header.hashBuckets
    else { return nil }
    let pages = Int(info.st_size) / Int(header.pageSize)
    guard buckets > UInt64(pages) * 16 + 65536 else { return nil }
    return (buckets, pages)
}

/// `database NAME.db is older than source file NAME`: the source exists, was changed after
/// the table, and more than 100 seconds ago (so a build that is under way does not trigger).
func staleTableWarning(sourcePath: String, tablePath: String, tableDescriptor: Int32) -> Diagnostic? {
    var source = stat()
    var table = stat()
    guard stat(sourcePath, &source) == 0, fstat(tableDescriptor, &table) == 0 else { return nil }
    guard source.st_mtim.tv_sec > table.st_mtim.tv_sec, source.st_mtim.tv_sec < time(nil) - 100 else {
        return nil
    }
    return Diagnostic(.warning, "database \(tablePath) is older than source file \(sourcePath)")
}
