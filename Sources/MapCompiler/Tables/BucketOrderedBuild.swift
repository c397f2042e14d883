import Glibc

/// Building a new hash table in the order of libdb's hash buckets.
///
/// Inserted in source order, a table that outgrows libdb's memory pool is written at random:
/// every insert lands on some bucket page, pages are evicted and read back, buckets split.
/// Here the entries are held back instead, grouped by destination bucket, and inserted only
/// when all of them are known: the table is created with its final number of buckets
/// (`DB->set_h_nelem`, `DB->set_h_ffactor`), and the entries go in bucket by bucket, so every
/// page is filled once while it is in the pool and written once. The pool stays small.
///
/// Held-back entries live in memory up to ``memoryBudget`` bytes, then in an unlinked
/// temporary file next to the table; both are bounded by the source, not by libdb.
///
/// What the table holds and every message are as in a build in source order: within a
/// bucket the entries go in in source order (so the first of two duplicates is kept, or the
/// last with `-r`), and warnings are held back too and given out in source order, the
/// duplicate warnings among them.
final class BucketOrderedEntries: HeldBackEntries {
    let handling: KeyHandling
    var duplicates: DuplicatePolicy
    /// `NAME.db` as typed, for messages.
    let displayPath: String
    private(set) var count = 0
    private var groups: [[UInt8]]
    private let groupMask: UInt32
    /// A record's group is its hash shifted right by this much, then masked: the bits just
    /// below the top of the expected bucket number, so that a group feeds one run of
    /// neighbouring buckets and the table file is written from start to end.
    private let groupShift: UInt32
    /// The number of buckets the groups are formed for (unknown for standard input).
    private let expectedBuckets: Int?
    private var buffered = 0
    /// Counted as entries arrive when the source size is known; otherwise counted from the
    /// held-back records once they are all there, at a resolution that fits their size.
    private var loads: BucketLoads?
    private var recordBytes = 0
    private var spill: SpillFile?
    private var chunks: [[(offset: Int, count: Int)]]
    private var warnings = HeldWarnings()
    private let spillDirectory: String
    private let memoryBudget: Int
    /// The smallest page size to consider; 0 for the file system's block size, as libdb.
    private let fixedPageSize: UInt32

    /// - Parameters:
    ///   - expectedBytes: the size of the source when known, to choose the number of groups.
    ///   - spillDirectory: where the temporary file goes (the table's directory).
    init(
        handling: KeyHandling, duplicates: DuplicatePolicy, displayPath: String, expectedBytes: Int?,
        spillDirectory: String, memoryBudget: Int = 64 << 20, pageSize: UInt32 = 0
    ) {
        self.fixedPageSize = pageSize
        self.handling = handling
        self.duplicates = duplicates
        self.displayPath = displayPath
        self.spillDirectory = spillDirectory
        self.memoryBudget = memoryBudget
        // About 512 KB of source per group, so that one group's records, visited in bucket
        // order, stay in the processor's cache; standard input (size unknown) gets 1024.
        let wanted = expectedBytes.map { $0 / (512 << 10) } ?? 1024
        var groupCount = 1
        while groupCount < wanted && groupCount < 4096 { groupCount <<= 1 }
        groups = Array(repeating: [], count: groupCount)
        chunks = Array(repeating: [], count: groupCount)
        groupMask = UInt32(groupCount - 1)
        // libdb's bucket is the low bits of the hash. Tables come to about 8 KB of source per
        // bucket; off by a power of two, a group feeds two runs, still in file order.
        // Standard input (size unknown) groups by the lowest bits.
        let groupBits = groupCount.trailingZeroBitCount
        let expectedBucketBits = expectedBytes.map { bytes in
            var bits = 0
            while bits < 31 && (1 << (bits + 1)) * 8192 <= bytes + bytes / 2 { bits += 1 }
            return bits
        }
        groupShift = UInt32(max(0, (expectedBucketBits ?? 0) - groupBits))
        expectedBuckets = expectedBucketBits.map { 1 << $0 }
        loads = expectedBytes.map { BucketLoads(sourceBytes: $0) }
    }

    func hold(_ diagnostic: Diagnostic) {
        warnings.hold(diagnostic, entriesBefore: count)
    }

    func insert(
        key: [UInt8], value: [UInt8], fold: Bool, nul: Bool?, lineNumber: Int?, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool {
        let storedKey = fold ? handling.folding.fold(key) : key
        let appendNUL = nul ?? handling.nul.writesNUL
        let extra = appendNUL ? 1 : 0
        var hash = libdbHash(storedKey)
        if appendNUL { hash = hash &* 16_777_619 }  // the NUL byte: multiply, then XOR with 0
        let group = Int((hash >> groupShift) & groupMask)
        let keyCount = storedKey.count + extra
        let valueCount = value.count + extra
        groups[group].appendRecord(
            ordinal: UInt32(truncatingIfNeeded: count), hash: hash,
            flags: RecordFlag.of(nul: appendNUL, duplicates: duplicates), key: storedKey, value: value)
        count += 1
        loads?.add(hash: hash, keyCount: keyCount, valueCount: valueCount)
        recordBytes += recordHeaderSize + keyCount + valueCount
        buffered += recordHeaderSize + keyCount + valueCount
        if buffered > memoryBudget { try spillGroups() }
        return true
    }

    /// Moves every group's buffered records to the temporary file.
    private func spillGroups() throws(FatalError) {
        if spill == nil { spill = try SpillFile(directory: spillDirectory) }
        guard let file = spill else { return }
        for index in groups.indices where !groups[index].isEmpty {
            let offset = try file.append(groups[index])
            chunks[index].append((offset, groups[index].count))
            groups[index].removeAll(keepingCapacity: true)
        }
        buffered = 0
    }

    /// Creates the table at `path` sized for the held-back entries, stores them bucket by
    /// bucket, closes it, and gives out the held-back warnings in source order.
    ///
    /// - Returns: how many entries were dropped as duplicates.
    func write(
        path: String, method: AccessMethod, mode: mode_t, cacheSize: Int, warn: (Diagnostic) -> Void
    )
        throws(FatalError) -> Int
    {
        let counted: BucketLoads
        if let loads { counted = loads } else { counted = try countLoads() }
        let sizing = counted.sizing(
            entries: count, defaultPageSize: fixedPageSize > 0 ? Int(fixedPageSize) : pageSize(for: spillDirectory),
            preferredBuckets: expectedBuckets)
        let handle = try createTable(path: path, method: method, mode: mode, cacheSize: cacheSize, sizing: sizing)
        handle.adviseNoReadAhead()
        // libdb creates the pre-sized file with its last bucket page written, so every other
        // bucket page is a hole that it reads (the kernel zeroes a page of its cache for
        // each) before filling it. Past the end of the file a read costs nothing and libdb
        // zeroes the page itself; the pages are then written in order and the file grows
        // as they are. Whatever bucket page stays unwritten at the end is made a hole again.
        let createdSize = handle.fileSize()
        if let createdSize, createdSize > Int(sizing.pageSize) { _ = handle.truncateFile(to: Int(sizing.pageSize)) }
        var inserter = HeldRecordInserter(displayPath: displayPath)
        // Groups are processed a set at a time, each set in bucket order: groups whose hash
        // bits differ only above the table's bucket bits feed the same buckets and go
        // together (group g with g + step, g + 2 step, …).
        let groupCount = groups.count
        let bucketBits = sizing.buckets.trailingZeroBitCount
        let span = min(max(bucketBits - Int(groupShift), 0), groupCount.trailingZeroBitCount)
        let step = 1 << span
        let bucketMask = UInt32(truncatingIfNeeded: sizing.buckets - 1)
        for first in 0..<step {
            var records: [UInt8] = []
            for index in stride(from: first, to: groupCount, by: step) {
                try loadGroup(index, into: &records)
            }
            var order = recordOrder(records, bucketMask: bucketMask)
            var failure: FatalError?
            records.withUnsafeBytes { raw in
                for position in order.indices {
                    do throws(FatalError) {
                        try inserter.insert(StoredRecord(raw, at: order[position].offset), into: handle)
                    } catch {
                        failure = error
                        return
                    }
                }
            }
            if let failure { throw failure }
            order = []
        }
        try closeHeldBackTable(handle, displayPath: displayPath)
        var written = stat()
        if let createdSize, stat(path, &written) == 0, Int(written.st_size) < createdSize,
            truncate(path, off_t(createdSize)) != 0
        {
            throw FatalError("error writing \(displayPath): \(systemErrorText(errno))")
        }
        warnings.release(adding: inserter.duplicateWarnings, warn: warn)
        return inserter.dropped
    }

    private func createTable(
        path: String, method: AccessMethod, mode: mode_t, cacheSize: Int, sizing: HashTableSizing
    ) throws(FatalError) -> DatabaseHandle {
        do throws(BerkeleyDBError) {
            return try DatabaseHandle(
                path: path, method: method, intent: .createExclusive, cacheSize: cacheSize, mode: mode,
                hashElementHint: sizing.elementHint, hashFillFactor: sizing.fillFactor, pageSize: sizing.pageSize)
        } catch {
            throw openDatabaseError(error, tablePath: displayPath)
        }
    }

    func releaseWarnings(warn: (Diagnostic) -> Void) {
        warnings.release(adding: [], warn: warn)
    }

    /// The bucket loads of every held-back record, read back from memory and the spill file.
    private func countLoads() throws(FatalError) -> BucketLoads {
        var counted = BucketLoads(sourceBytes: recordBytes)
        var buffer: [UInt8] = []
        for index in groups.indices {
            buffer.removeAll(keepingCapacity: true)
            if let file = spill {
                for chunk in chunks[index] {
                    try file.read(offset: chunk.offset, count: chunk.count, appendingTo: &buffer)
                }
            }
            for bytes in [buffer, groups[index]] {
                forEachRecord(in: bytes) { record, _ in
                    counted.add(hash: record.hash, keyCount: record.key.count, valueCount: record.value.count)
                }
            }
        }
        return counted
    }

    private func loadGroup(_ index: Int, into records: inout [UInt8]) throws(FatalError) {
        if let file = spill {
            for chunk in chunks[index] {
                try file.read(offset: chunk.offset, count: chunk.count, appendingTo: &records)
            }
        }
        chunks[index] = []
        records.append(contentsOf: groups[index])
        groups[index] = []
    }
}

/// The records of a loaded group, ordered by destination bucket and, within a bucket, by
/// source order.
private func recordOrder(_ records: [UInt8], bucketMask: UInt32) -> [(sortKey: UInt64, offset: Int)] {
    var order: [(sortKey: UInt64, offset: Int)] = []
    forEachRecord(in: records) { order.append((UInt64($0.hash & bucketMask) << 32 | UInt64($0.ordinal), $1)) }
    order.sort { $0.sortKey < $1.sortKey }
    return order
}

/// libdb's default hash function (`__ham_func5`): 32-bit FNV-1 from a zero basis.
func libdbHash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
    var hash: UInt32 = 0
    for byte in bytes { hash = (hash &* 16_777_619) ^ UInt32(byte) }
    return hash
}

/// The shape of a new hash table: page size, number of buckets and fill factor.
///
/// libdb makes `(nelem - 1) / ffactor + 1` buckets, rounded up to a power of two, when it
/// creates a table, and afterwards splits a bucket whenever an insert needs an overflow page
/// or leaves more than `ffactor` pairs on a page. A split past a power of two makes libdb
/// reserve the pages of the whole next doubling, so one unlucky bucket doubles the file.
/// The fill factor here is the most pairs a page can hold at all, so only a full page ever
/// splits (as with the fill factor of 0 postmap leaves, which libdb also reads as "split on
/// overflow only"), and the number of buckets is the smallest that leaves no bucket's pairs
/// larger than a page: the table is created at its final size and never splits.
struct HashTableSizing: Equatable {
    let pageSize: UInt32
    let buckets: Int
    var fillFactor: UInt32 { UInt32((Int(pageSize) - pageHeaderSize) / minimumPairCost) }
    var elementHint: UInt32 { UInt32(clamping: buckets * Int(fillFactor)) }
}

/// A hash page's header; every pair costs its bytes plus ``pairOverhead``.
private let pageHeaderSize = 26
/// Per pair: a type byte and a two-byte index slot for the key and for the value.
private let pairOverhead = 6
/// An empty key with an empty value.
private let minimumPairCost = pairOverhead

/// How many bytes of hash pages the entries take per bucket, for every power-of-two number
/// of buckets up to a limit, so that the table can be sized before it is created.
///
/// Bucket `b` of `n` holds the entries whose hash is `b` modulo `n`; the loads are kept at
/// the finest resolution and folded in halves for the coarser ones.
struct BucketLoads {
    private var fine: [UInt32]
    /// Some key or value is longer than a quarter of the smallest page: libdb stores it on
    /// pages of its own, and what it costs in a bucket depends on the page size.
    private var hasLargeItems = false
    private var totalCost = 0

    /// Loads for entries from about `sourceBytes` of source (or of held-back records).
    init(sourceBytes: Int) {
        // A table bucket holds at least a kilobyte of source: no finer resolution is needed.
        let wanted = sourceBytes / 1024
        var size = 1 << 10
        while size < wanted && size < 1 << 22 { size <<= 1 }
        fine = Array(repeating: 0, count: size)
    }

    mutating func add(hash: UInt32, keyCount: Int, valueCount: Int) {
        if keyCount > 1024 || valueCount > 1024 { hasLargeItems = true }
        // As stored on 4096-byte pages: larger items are replaced by a 12-byte reference.
        let cost = min(keyCount, 1024) + min(valueCount, 1024) + pairOverhead
        let slot = Int(hash & UInt32(truncatingIfNeeded: fine.count - 1))
        fine[slot] = fine[slot] &+ UInt32(truncatingIfNeeded: cost)
        totalCost += cost
    }

    /// The smallest table that holds every bucket on one page: pages of the default size or
    /// (when that is 4096 and no item is large) 8, 16, 32 or 64 KB, whichever makes the
    /// smaller file (a large table of short entries fills 64 KB pages best, since a bucket's
    /// load varies less around its mean the more entries it has). When no number of buckets within reach does it, a table of the default
    /// page size at about half full, which libdb then splits where it must.
    func sizing(entries: Int, defaultPageSize: Int, preferredBuckets: Int? = nil) -> HashTableSizing {
        var pageSizes = [defaultPageSize]
        if defaultPageSize == 4096 && !hasLargeItems { pageSizes += [8192, 16384, 32768, 65536] }
        // The largest bucket for each power-of-two number of buckets, finest first.
        var largest: [(buckets: Int, load: Int)] = []
        var folded = fine
        var size = folded.count
        while size >= 2 {
            largest.append((size, Int(folded[0..<size].max() ?? 0)))
            let half = size / 2
            for index in 0..<half { folded[index] = folded[index] &+ folded[index + half] }
            size = half
        }
        var fits: [HashTableSizing] = []
        for pageSize in pageSizes {
            let room = pageSize - pageHeaderSize
            guard let fit = largest.last(where: { $0.load <= room }) else { continue }
            fits.append(HashTableSizing(pageSize: UInt32(pageSize), buckets: fit.buckets))
        }
        if let smallest = fits.map({ $0.buckets * Int($0.pageSize) }).min() {
            // Among files of that size, the smallest page (what libdb's readers, Postfix's
            // daemons among them, read fastest) whose bucket count is within
            // `preferredBuckets`, the number the held-back groups were formed for: more
            // buckets than that and each group would feed several distant runs of them,
            // so the file would not be written from start to end. Otherwise the largest.
            let tied = fits.filter { $0.buckets * Int($0.pageSize) == smallest }
            if let preferredBuckets {
                if let within = tied.first(where: { $0.buckets <= preferredBuckets }) { return within }
                if let fewest = tied.last { return fewest }
            } else if let first = tied.first {
                return first
            }
        }
        let room = defaultPageSize - pageHeaderSize
        let wanted = max(totalCost * 2 / room, 2)
        var buckets = 2
        while buckets < wanted && buckets < 1 << 22 { buckets <<= 1 }
        return HashTableSizing(pageSize: UInt32(defaultPageSize), buckets: buckets)
    }
}

/// The page size libdb picks for a new file in `directory`: the file system's block size,
/// within libdb's limits.
private func pageSize(for directory: String) -> Int {
    var info = stat()
    guard stat(directory, &info) == 0 else { return 4096 }
    return min(max(Int(info.st_blksize), 512), 16384)
}
