import Glibc

/// Read-only lookups in a Berkeley DB hash table file through a memory map of it.
///
/// libdb cannot map a hash table (its memory pool refuses files that need page conversion),
/// so each lookup through it copies a whole page out of the kernel's cache with `pread`, and
/// for a large table that copy is most of a lookup's cost. This reader answers from the
/// mapped file instead, for the layout libdb 5.3 writes on this machine: version 9 hash
/// files in native byte order, without checksums, encryption, partitions, duplicates or a
/// custom hash function. It never claims more than it can see: whenever the file is not
/// exactly that layout, or an offset, a page number or a chain of pages does not add up, the
/// answer is ``Answer/undecided`` and the caller asks libdb, so a damaged or unusual file
/// gets libdb's own answer.
///
/// The layout, as libdb documents and writes it:
/// - Page 0 is the meta-data page: magic `0x061561` at byte 12, version at 16, page size at
///   20, encryption at 24, page type 8 at 25, meta flags at 26, partitions at 36, hash
///   flags at 48, then `max_bucket`, `high_mask`, `low_mask` at 72, 76, 80, the hash of
///   libdb's check string at 92 and 32 `spares` from 96.
/// - A key hashes (``libdbHash(_:)``) to bucket `hash & high_mask`, or `hash & low_mask`
///   when that is past `max_bucket`; the bucket's first page is `bucket + spares[log2]`,
///   with `log2` the smallest power of two not below `bucket + 1`; further pages of the
///   bucket follow `next_pgno` (byte 16 of a page; 0 ends the chain).
/// - A hash page (type 13 at byte 25) has its number at byte 8, its entry count at byte 20
///   and a 16-bit offset per entry from byte 26; entries alternate key, value, and entry
///   `i` ends where entry `i - 1` starts (the page's end for entry 0); keys are in
///   ascending order (see ``compareKeys(_:_:)``). An entry's first
///   byte is its kind: 1, the bytes follow; 3, an off-page item (its first overflow page at
///   +4, its length at +8), stored on overflow pages (type 7) of which each holds
///   `hf_offset` (byte 22) bytes from byte 26, linked by `next_pgno`.
/// - A page of zeros (a bucket page libdb never wrote) is an empty bucket page.
final class MappedHashTable {
    /// What the mapped file says about a key.
    enum Answer: Equatable {
        case found([UInt8])
        case absent
        /// The file is not what this reader understands here: ask libdb.
        case undecided
    }

    private let descriptor: Int32
    private var base: UnsafeRawPointer?
    private var mappedSize = 0
    private var mappedIdentity: FileIdentity?
    private var layout: Layout?
    /// Lookups since the mapped pages were last let go (see ``lookup(_:)``).
    private var lookupsSinceRelease = 0

    /// The meta-data page's fields a lookup needs.
    private struct Layout {
        var pageSize: Int
        var pageCount: Int
        var maxBucket: UInt32
        var highMask: UInt32
        var lowMask: UInt32
        var spares: [UInt32]
    }

    /// What tells a changed file from the mapped one.
    private struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var seconds: Int
        var nanoseconds: Int
    }

    /// Maps the file open on `descriptor` (which stays the caller's); `nil` when it is not
    /// a hash table this reader understands. Call with the table's shared lock held.
    init?(descriptor: Int32) {
        self.descriptor = descriptor
        guard refresh() else { return nil }
    }

    deinit { unmap() }

    /// Makes the map follow the file after the shared lock was taken again: a file that
    /// changed size or time since it was mapped (a writer came in between) is mapped and
    /// read again. Cheap (one `fstat`) when nothing changed.
    ///
    /// - Returns: whether lookups can be answered from the map.
    @discardableResult
    func refresh() -> Bool {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            unmap()
            return false
        }
        let identity = FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int(info.st_size),
            seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
        if identity == mappedIdentity { return layout != nil }
        unmap()
        mappedIdentity = identity
        guard identity.size >= 512,
            let pointer = mmap(nil, identity.size, PROT_READ, MAP_SHARED, descriptor, 0), pointer != MAP_FAILED
        else { return false }
        base = UnsafeRawPointer(pointer)
        mappedSize = identity.size
        layout = readLayout()
        return layout != nil
    }

    private func unmap() {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedSize) }
        base = nil
        mappedSize = 0
        mappedIdentity = nil
        layout = nil
    }

    private func readLayout() -> Layout? {
        guard let base else { return nil }
        let magic = base.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        let version = base.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        let pageSize = Int(base.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        guard magic == 0x061561, version == 9, pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0,
            mappedSize >= pageSize
        else { return nil }
        let encryption = base.load(fromByteOffset: 24, as: UInt8.self)
        let pageType = base.load(fromByteOffset: 25, as: UInt8.self)
        let metaFlags = base.load(fromByteOffset: 26, as: UInt8.self)
        let partitions = base.loadUnaligned(fromByteOffset: 36, as: UInt32.self)
        let hashFlags = base.loadUnaligned(fromByteOffset: 48, as: UInt32.self)
        let charKey = base.loadUnaligned(fromByteOffset: 92, as: UInt32.self)
        guard encryption == 0, pageType == 8, metaFlags == 0, partitions == 0, hashFlags == 0,
            charKey == libdbHash(libdbHashCheckString)
        else { return nil }
        let maxBucket = base.loadUnaligned(fromByteOffset: 72, as: UInt32.self)
        let highMask = base.loadUnaligned(fromByteOffset: 76, as: UInt32.self)
        let lowMask = base.loadUnaligned(fromByteOffset: 80, as: UInt32.self)
        let spares = (0..<32).map { base.loadUnaligned(fromByteOffset: 96 + 4 * $0, as: UInt32.self) }
        return Layout(
            pageSize: pageSize, pageCount: mappedSize / pageSize, maxBucket: maxBucket, highMask: highMask,
            lowMask: lowMask, spares: spares)
    }

    /// Looks `key` up exactly as stored (folded, with or without its trailing NUL).
    func lookup(_ key: UnsafeRawBufferPointer) -> Answer {
        guard let base, let layout else { return .undecided }
        // Every page a lookup touches stays mapped and counts as this process's memory, and
        // the kernel maps up to 64 KB around each page it faults in. A table of up to
        // 192 MB may be mapped whole; for a larger one the mapped pages are let go every
        // 2048 lookups, which keeps them near 128 MB whatever the table's size (the kernel's
        // cache keeps the pages, so this costs a page fault, not a read).
        lookupsSinceRelease += 1
        if lookupsSinceRelease > 2048 {
            lookupsSinceRelease = 0
            if mappedSize > 192 << 20 {
                _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedSize, MADV_DONTNEED)
            }
        }
        let hash = libdbHash(key)
        var bucket = hash & layout.highMask
        if bucket > layout.maxBucket { bucket &= layout.lowMask }
        var log2 = 0
        while log2 < 32 && (UInt64(1) << log2) < UInt64(bucket) + 1 { log2 += 1 }
        guard log2 < 32 else { return .undecided }
        var pageNumber = Int(bucket) + Int(layout.spares[log2])
        // A chain longer than the file has pages is a loop.
        for _ in 0..<layout.pageCount {
            guard pageNumber > 0, pageNumber < layout.pageCount else { return .undecided }
            let page = PageView(base: base + pageNumber * layout.pageSize, size: layout.pageSize)
            if page.isZero { return .absent }
            guard page.number == pageNumber, page.type == 13 else { return .undecided }
            let entries = page.entryCount
            guard entries % 2 == 0, 26 + 2 * entries <= layout.pageSize else { return .undecided }
            switch search(page, entries: entries, for: key, base: base, layout: layout) {
            case .found(let index):
                guard let value = page.item(index + 1) else { return .undecided }
                return itemBytes(value, base: base, layout: layout).map { .found($0) } ?? .undecided
            case .notOnPage: break
            case .undecided: return .undecided
            }
            let next = page.nextPage
            if next == 0 { return .absent }
            pageNumber = next
        }
        return .undecided
    }

    private enum PageSearch {
        /// The key is entry `index`.
        case found(Int)
        case notOnPage
        case undecided
    }

    /// Finds `key` among a hash page's keys. libdb keeps them sorted (``compareKeys(_:_:)``)
    /// and looks them up by binary search, and so does this; a page with an off-page key on
    /// the search path is scanned instead.
    private func search(
        _ page: PageView, entries: Int, for key: UnsafeRawBufferPointer, base: UnsafeRawPointer, layout: Layout
    ) -> PageSearch {
        var low = 0
        var high = entries / 2
        while low < high {
            let middle = (low + high) / 2
            guard let stored = page.item(2 * middle) else { return .undecided }
            guard stored[0] == 1 else { return scan(page, entries: entries, for: key, base: base, layout: layout) }
            let order = compareKeys(UnsafeRawBufferPointer(rebasing: stored[1...]), key)
            if order == 0 { return .found(2 * middle) }
            if order < 0 { low = middle + 1 } else { high = middle }
        }
        return .notOnPage
    }

    /// Every key of the page in turn; only entries of the key's length (or off-page ones)
    /// are read, as their offsets give their length.
    private func scan(
        _ page: PageView, entries: Int, for key: UnsafeRawBufferPointer, base: UnsafeRawPointer, layout: Layout
    ) -> PageSearch {
        var index = 0
        while index < entries {
            let length = page.itemLength(index)
            if length == key.count + 1 || length == offPageItemSize {
                guard let stored = page.item(index) else { return .undecided }
                switch matches(stored, key, base: base, layout: layout) {
                case .some(true): return .found(index)
                case .some(false): break
                case .none: return .undecided
                }
            }
            index += 2
        }
        return .notOnPage
    }

    /// Whether the entry `item` is `key`; `nil` when the entry is of a kind not read here.
    private func matches(
        _ item: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer, base: UnsafeRawPointer, layout: Layout
    ) -> Bool? {
        switch item[0] {
        case 1:
            guard item.count - 1 == key.count else { return false }
            guard let stored = item.baseAddress, let wanted = key.baseAddress, !key.isEmpty else { return true }
            return memcmp(stored + 1, wanted, key.count) == 0
        case 3:
            guard item.count >= offPageItemSize else { return nil }
            guard Int(item.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == key.count else { return false }
            return itemBytes(item, base: base, layout: layout).map { $0.elementsEqual(key) }
        default:
            return nil
        }
    }

    /// The bytes of a key or value entry; `nil` for an entry that is not read here.
    private func itemBytes(_ item: UnsafeRawBufferPointer, base: UnsafeRawPointer, layout: Layout) -> [UInt8]? {
        switch item[0] {
        case 1:
            return Array(item[1...])
        case 3:
            guard item.count >= offPageItemSize else { return nil }
            var pageNumber = Int(item.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let length = Int(item.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard length <= mappedSize else { return nil }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(length)
            for _ in 0..<layout.pageCount {
                guard pageNumber > 0, pageNumber < layout.pageCount else { return nil }
                let page = PageView(base: base + pageNumber * layout.pageSize, size: layout.pageSize)
                guard page.number == pageNumber, page.type == 7 else { return nil }
                let count = page.freeOffset
                guard 26 + count <= layout.pageSize, bytes.count + count <= length else { return nil }
                bytes.append(contentsOf: UnsafeRawBufferPointer(start: page.base + 26, count: count))
                let next = page.nextPage
                if next == 0 { return bytes.count == length ? bytes : nil }
                pageNumber = next
            }
            return nil
        default:
            return nil
        }
    }
}

/// libdb's order of keys on a hash page, as its files show it: bytes compared up to the
/// shorter key, then the longer key first (`ab` before `a`, `a\0` before `a`; a btree's
/// order is the other way round).
private func compareKeys(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let common = min(a.count, b.count)
    if common > 0, let left = a.baseAddress, let right = b.baseAddress {
        let order = memcmp(left, right, common)
        if order != 0 { return Int(order) }
    }
    return b.count - a.count
}

/// The size of an off-page entry: kind, three unused bytes, first page, length.
private let offPageItemSize = 12

/// libdb's check string, whose hash (with its NUL) a hash table's meta-data page records.
let libdbHashCheckString: [UInt8] = Array("%$sniglet^&".utf8) + [0]

/// One page of a mapped table file.
private struct PageView {
    let base: UnsafeRawPointer
    let size: Int

    var number: Int { Int(base.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
    var nextPage: Int { Int(base.loadUnaligned(fromByteOffset: 16, as: UInt32.self)) }
    var entryCount: Int { Int(base.loadUnaligned(fromByteOffset: 20, as: UInt16.self)) }
    var freeOffset: Int { Int(base.loadUnaligned(fromByteOffset: 22, as: UInt16.self)) }
    var type: UInt8 { base.load(fromByteOffset: 25, as: UInt8.self) }

    /// A page header of zeros: a page libdb reserved and never wrote, which it reads as an
    /// empty hash page.
    var isZero: Bool {
        (0..<26).allSatisfy { base.load(fromByteOffset: $0, as: UInt8.self) == 0 }
    }

    /// The length of entry `index` as its offsets give it (not checked against the page).
    func itemLength(_ index: Int) -> Int {
        let start = Int(base.loadUnaligned(fromByteOffset: 26 + 2 * index, as: UInt16.self))
        let end =
            index == 0 ? size : Int(base.loadUnaligned(fromByteOffset: 26 + 2 * (index - 1), as: UInt16.self))
        return end - start
    }

    /// Entry `index`, its kind byte first; `nil` when its offsets are not within the page.
    func item(_ index: Int) -> UnsafeRawBufferPointer? {
        let start = Int(base.loadUnaligned(fromByteOffset: 26 + 2 * index, as: UInt16.self))
        let end =
            index == 0 ? size : Int(base.loadUnaligned(fromByteOffset: 26 + 2 * (index - 1), as: UInt16.self))
        guard start >= 26 + 2 * entryCount, start < end, end <= size else { return nil }
        return UnsafeRawBufferPointer(start: base + start, count: end - start)
    }
}
