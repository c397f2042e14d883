import Glibc

/// Building a new btree table in key order.
///
/// Inserted in source order, the keys of a large map land all over the tree: libdb splits
/// leaf pages in the middle and leaves them half full, and a tree larger than the memory pool
/// is written out and read back page by page. Inserted in libdb's own key order (its default
/// comparison: the bytes up to the shorter length, then the shorter key first), every key
/// goes to the rightmost leaf, which libdb checks first, and a split there leaves the full
/// page full: the file is written once and a small pool suffices.
///
/// The entries are held back as flat records in runs of up to ``memoryBudget`` bytes
/// (records and their sort index together). A full run is sorted and written to an unlinked
/// temporary file next to the table; when the table is written, the runs are merged. Records
/// of equal key stay in source order (within a run by their position, across runs by the
/// run's), so libdb keeps the first of two duplicates, or the last with `-r`, and the
/// warnings come out in source order, as in ``BucketOrderedEntries``.
final class KeyOrderedEntries: HeldBackEntries {
    let handling: KeyHandling
    var duplicates: DuplicatePolicy
    /// `NAME.db` as typed, for messages.
    let displayPath: String
    private(set) var count = 0
    /// The current run's records, in source order.
    private var run: [UInt8] = []
    private var runRecords = 0
    private var spill: SpillFile?
    /// The sorted runs in the spill file, in source order.
    private var runs: [(offset: Int, count: Int)] = []
    private var warnings = HeldWarnings()
    private let spillDirectory: String
    private let memoryBudget: Int
    /// The page size of the new file; 0 for libdb's choice.
    private let pageSize: UInt32

    /// - Parameter spillDirectory: where the temporary file goes (the table's directory).
    init(
        handling: KeyHandling, duplicates: DuplicatePolicy, displayPath: String, spillDirectory: String,
        memoryBudget: Int = 64 << 20, pageSize: UInt32 = 0
    ) {
        self.pageSize = pageSize
        self.handling = handling
        self.duplicates = duplicates
        self.displayPath = displayPath
        self.spillDirectory = spillDirectory
        self.memoryBudget = memoryBudget
    }

    func hold(_ diagnostic: Diagnostic) {
        warnings.hold(diagnostic, entriesBefore: count)
    }

    func releaseWarnings(warn: (Diagnostic) -> Void) {
        warnings.release(adding: [], warn: warn)
    }

    func insert(
        key: [UInt8], value: [UInt8], fold: Bool, nul: Bool?, lineNumber: Int?, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool {
        // The run never grows past the budget and one record: reserved once (untouched pages
        // cost nothing), it is never copied to a larger buffer.
        if run.capacity == 0 { run.reserveCapacity(memoryBudget + (1 << 16)) }
        let storedKey = fold ? handling.folding.fold(key) : key
        run.appendRecord(
            ordinal: UInt32(truncatingIfNeeded: count), hash: 0,
            flags: RecordFlag.of(nul: nul ?? handling.nul.writesNUL, duplicates: duplicates), key: storedKey,
            value: value)
        count += 1
        runRecords += 1
        if run.count + runRecords * MemoryLayout<SortEntry>.stride > memoryBudget { try spillRun() }
        return true
    }

    /// Sorts the current run and appends it to the temporary file.
    private func spillRun() throws(FatalError) {
        if spill == nil { spill = try SpillFile(directory: spillDirectory) }
        guard let file = spill else { return }
        let order = keyOrder(of: run, count: runRecords)
        let start = file.size
        var pending: [UInt8] = []
        pending.reserveCapacity(spillChunkSize)
        var failure: FatalError?
        run.withUnsafeBytes { raw in
            for entry in order {
                let size = StoredRecord.size(in: raw, at: entry.offset)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[entry.offset..<entry.offset + size]))
                guard pending.count >= spillChunkSize else { continue }
                do throws(FatalError) {
                    _ = try file.append(pending)
                } catch {
                    failure = error
                    return
                }
                pending.removeAll(keepingCapacity: true)
            }
        }
        if let failure { throw failure }
        if !pending.isEmpty { _ = try file.append(pending) }
        runs.append((start, run.count))
        run.removeAll(keepingCapacity: true)
        runRecords = 0
    }

    func write(
        path: String, method: AccessMethod, mode: mode_t, cacheSize: Int, warn: (Diagnostic) -> Void
    )
        throws(FatalError) -> Int
    {
        let handle = try createTable(path: path, method: method, mode: mode, cacheSize: cacheSize)
        var inserter = AscendingInserter(displayPath: displayPath)
        let cursor = try appendCursor(on: handle)
        // The cursor is closed before the table, whatever happened.
        var failure: FatalError?
        do throws(FatalError) {
            try insertAll(into: handle, through: cursor, inserter: &inserter)
        } catch {
            failure = error
        }
        do throws(FatalError) {
            try close(cursor)
        } catch {
            failure = failure ?? error
        }
        if let failure { throw failure }
        run = []
        try closeHeldBackTable(handle, displayPath: displayPath)
        warnings.release(adding: inserter.held.duplicateWarnings, warn: warn)
        return inserter.held.dropped
    }

    /// Inserts every held-back record in key order.
    private func insertAll(
        into handle: borrowing DatabaseHandle, through cursor: borrowing AppendCursor,
        inserter: inout AscendingInserter
    ) throws(FatalError) {
        guard spill == nil else {
            if runRecords > 0 { try spillRun() }
            run = []
            try mergeRuns(into: handle, through: cursor, inserter: &inserter)
            return
        }
        let order = keyOrder(of: run, count: runRecords)
        var failure: FatalError?
        run.withUnsafeBytes { raw in
            for entry in order {
                do throws(FatalError) {
                    try inserter.insert(StoredRecord(raw, at: entry.offset), into: handle, through: cursor)
                } catch {
                    failure = error
                    return
                }
            }
        }
        if let failure { throw failure }
    }

    private func createTable(
        path: String, method: AccessMethod, mode: mode_t, cacheSize: Int
    ) throws(FatalError) -> DatabaseHandle {
        do throws(BerkeleyDBError) {
            return try DatabaseHandle(
                path: path, method: method, intent: .createExclusive, cacheSize: cacheSize, mode: mode,
                pageSize: pageSize)
        } catch {
            throw openDatabaseError(error, tablePath: displayPath)
        }
    }

    private func appendCursor(on handle: borrowing DatabaseHandle) throws(FatalError) -> AppendCursor {
        do throws(BerkeleyDBError) {
            return try handle.makeAppendCursor()
        } catch {
            throw FatalError("table \(displayPath): write error: \(error.reason)")
        }
    }

    private func close(_ cursor: consuming AppendCursor) throws(FatalError) {
        do throws(BerkeleyDBError) {
            try cursor.close()
        } catch {
            throw FatalError("table \(displayPath): write error: \(error.reason)")
        }
    }

    /// Inserts the records of every run in key order, runs read a chunk at a time.
    private func mergeRuns(
        into handle: borrowing DatabaseHandle, through cursor: borrowing AppendCursor,
        inserter: inout AscendingInserter
    ) throws(FatalError) {
        guard let file = spill else { return }
        let chunk = max(4096, min(1 << 20, memoryBudget / max(runs.count, 1)))
        var cursors: [RunCursor] = []
        defer { for cursor in cursors { cursor.deallocate() } }
        for run in runs {
            cursors.append(RunCursor(offset: run.offset, count: run.count, chunk: chunk))
        }
        // A binary heap of cursors by current key; of equal keys, the earlier run first.
        var heap: [Int] = []
        for index in cursors.indices where try cursors[index].advance(in: file) {
            heap.append(index)
        }
        func precedes(_ a: Int, _ b: Int) -> Bool {
            let order = libdbKeyOrder(cursors[a].key, cursors[b].key)
            return order < 0 || (order == 0 && a < b)
        }
        heap.sort(by: precedes)
        while let top = heap.first {
            try inserter.insert(cursors[top].record, into: handle, through: cursor)
            if try !cursors[top].advance(in: file) {
                let last = heap.removeLast()
                guard !heap.isEmpty else { break }
                heap[0] = last
            }
            // Sift the root down.
            var parent = 0
            while true {
                var least = parent
                let left = 2 * parent + 1
                let right = left + 1
                if left < heap.count && precedes(heap[left], heap[least]) { least = left }
                if right < heap.count && precedes(heap[right], heap[least]) { least = right }
                if least == parent { break }
                heap.swapAt(parent, least)
                parent = least
            }
        }
    }
}

/// Puts records into a new btree table in key order. A key larger than the one before goes
/// in through the append cursor; a repeated key goes through ``HeldRecordInserter``, where
/// libdb decides about duplicates as in every other build.
private struct AscendingInserter {
    private(set) var held: HeldRecordInserter
    private var lastKey: [UInt8] = []
    private var hasLast = false

    init(displayPath: String) {
        held = HeldRecordInserter(displayPath: displayPath)
    }

    mutating func insert(
        _ record: StoredRecord, into handle: borrowing DatabaseHandle, through cursor: borrowing AppendCursor
    ) throws(FatalError) {
        if hasLast && lastKey.withUnsafeBytes({ libdbKeyOrder(record.key, $0) }) == 0 {
            try held.insert(record, into: handle)
            return
        }
        do throws(BerkeleyDBError) {
            try cursor.put(key: record.key, value: record.value)
        } catch {
            throw FatalError("table \(held.displayPath): write error: \(error.reason)")
        }
        lastKey.removeAll(keepingCapacity: true)
        lastKey.append(contentsOf: record.key)
        hasLast = true
    }
}

/// Sorted runs go to the temporary file in pieces of this size.
private let spillChunkSize = 1 << 20

/// A record of a run, for sorting: the first eight bytes of its key (big-endian, zero
/// padded: in the same order as the keys, unless equal) and where the record starts.
private struct SortEntry {
    var prefix: UInt64
    var offset: Int
}

/// The records of a run in libdb's key order; records of equal key in source order.
private func keyOrder(of records: [UInt8], count: Int) -> [SortEntry] {
    records.withUnsafeBytes { raw in
        var order: [SortEntry] = []
        order.reserveCapacity(count)
        var offset = 0
        while offset < raw.count {
            let key = StoredRecord.key(in: raw, at: offset)
            order.append(SortEntry(prefix: keyPrefix(key), offset: offset))
            offset += recordHeaderSize + key.count + StoredRecord.valueCount(in: raw, at: offset)
        }
        order.sort { a, b in
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            let keys = libdbKeyOrder(StoredRecord.key(in: raw, at: a.offset), StoredRecord.key(in: raw, at: b.offset))
            return keys < 0 || (keys == 0 && a.offset < b.offset)
        }
        return order
    }
}

/// The first eight bytes of `key` as a big-endian number, zeros after a shorter key.
private func keyPrefix(_ key: UnsafeRawBufferPointer) -> UInt64 {
    if key.count >= 8 { return UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)) }
    var prefix: UInt64 = 0
    for index in 0..<8 {
        prefix = prefix << 8 | UInt64(index < key.count ? key[index] : 0)
    }
    return prefix
}

/// libdb's default btree order (`bt_compare` unset): bytes up to the shorter length, then
/// the shorter key first. Negative, zero or positive.
func libdbKeyOrder(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let common = min(a.count, b.count)
    if common > 0, let first = a.baseAddress, let second = b.baseAddress {
        let order = memcmp(first, second, common)
        if order != 0 { return Int(order) }
    }
    return a.count - b.count
}

/// Reads one sorted run of the temporary file, record by record, through a buffer of its
/// own. ``key`` and ``record`` stay valid until the next ``advance(in:)``.
private struct RunCursor {
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes of the run in the buffer, from its start.
    private var filled = 0
    /// The current record: where it starts in the buffer, and its size.
    private var position = 0
    private var currentSize = 0
    /// The run's next byte in the file, and its end.
    private var next: Int
    private let end: Int
    private(set) var key = UnsafeRawBufferPointer(start: nil, count: 0)

    init(offset: Int, count: Int, chunk: Int) {
        buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 8)
        capacity = chunk
        next = offset
        end = offset + count
    }

    func deallocate() { buffer.deallocate() }

    var record: StoredRecord {
        StoredRecord(UnsafeRawBufferPointer(start: buffer, count: filled), at: position)
    }

    /// Moves to the next record; `false` at the end of the run.
    mutating func advance(in file: SpillFile) throws(FatalError) -> Bool {
        position += currentSize
        currentSize = 0
        key = UnsafeRawBufferPointer(start: nil, count: 0)
        guard position < filled || next < end else { return false }
        try load(recordHeaderSize, from: file)
        let size = StoredRecord.size(in: UnsafeRawBufferPointer(start: buffer, count: filled), at: position)
        try load(size, from: file)
        currentSize = size
        key = StoredRecord.key(in: UnsafeRawBufferPointer(start: buffer, count: filled), at: position)
        return true
    }

    /// Makes sure that `needed` bytes from the current record's start are in the buffer.
    private mutating func load(_ needed: Int, from file: SpillFile) throws(FatalError) {
        guard filled - position < needed else { return }
        let kept = filled - position
        if kept > 0 && position > 0 { memmove(buffer, buffer + position, kept) }
        filled = kept
        position = 0
        if needed > capacity {
            let larger = UnsafeMutableRawPointer.allocate(byteCount: max(needed, 2 * capacity), alignment: 8)
            larger.copyMemory(from: buffer, byteCount: kept)
            buffer.deallocate()
            buffer = larger
            capacity = max(needed, 2 * capacity)
        }
        let count = min(capacity - filled, end - next)
        guard filled + count >= needed else {
            throw FatalError("read temporary file: unexpected end of file")
        }
        try file.read(offset: next, count: count, into: buffer + filled)
        filled += count
        next += count
    }
}
