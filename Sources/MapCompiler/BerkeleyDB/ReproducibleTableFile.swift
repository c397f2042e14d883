import Glibc

/// Making a finished Berkeley DB file the same bytes every time its contents are the same.
///
/// libdb leaves three kinds of chance in a file: the 20-byte file id in the meta-data page
/// (made from the inode, device, process id, time and a random number), bytes nobody wrote
/// (the free space of pages, the padding after items, the unused fields of item headers, the
/// tail of overflow pages: whatever the page buffer held before), and the page size, which
/// it takes from the file system's block size unless told. The build fixes the page size;
/// this pass, on the closed file, zeroes every byte that is not part of the table and then
/// sets the file id to the first 20 bytes of a SHA-256 over the result, so two files share
/// an id only when their bytes are the same. Only pages that change are written back, so
/// holes stay holes.

/// libdb's on-page layout (db_page.h, as Berkeley DB 5.3 writes it in host byte order).
private enum PageLayout {
    static let headerSize = 26
    static let entriesOffset = 20
    static let freeSpaceOffset = 22
    static let typeOffset = 25
    // The meta-data page (DBMETA).
    static let magicOffset = 12
    static let pageSizeOffset = 20
    static let encryptionOffset = 24
    static let metaFlagsOffset = 26
    static let fileIDOffset = 52
    static let fileIDSize = 20
    static let checksumFlag: UInt8 = 0x01
    static let hashMagic: UInt32 = 0x061561
    static let btreeMagic: UInt32 = 0x053162
    // Page types.
    static let invalidPage: UInt8 = 0
    static let unsortedHashPage: UInt8 = 2
    static let internalBtreePage: UInt8 = 3
    static let leafRecnoPage: UInt8 = 6
    static let leafBtreePage: UInt8 = 5
    static let overflowPage: UInt8 = 7
    static let leafDuplicatePage: UInt8 = 12
    static let hashPage: UInt8 = 13
    // Item types (the low seven bits; the high bit marks a deleted item).
    static let keyData: UInt8 = 1
    static let duplicateTree: UInt8 = 2
    static let overflow: UInt8 = 3
    static let offPageDuplicates: UInt8 = 4
}

/// Zeroes the bytes of the Berkeley DB file at `path` that hold no data and gives it a file
/// id derived from its contents. `label` names the table in messages.
///
/// - Throws: `error writing LABEL: …` when the file cannot be read or written, or is not a
///   plain (unencrypted, unchecksummed) hash or btree file.
func makeBerkeleyFileReproducible(path: String, label: String) throws(FatalError) {
    let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
    guard fd >= 0 else { throw FatalError("error writing \(label): \(systemErrorText(errno))") }
    defer { close(fd) }
    func failure(_ reason: String) -> FatalError { FatalError("error writing \(label): \(reason)") }

    func read(_ buffer: inout [UInt8], at offset: Int) throws(FatalError) -> Int {
        switch readFully(fd, into: &buffer, at: offset) {
        case .success(let count): return count
        case .failure(let error): throw failure(error.text)
        }
    }
    func write(_ bytes: [UInt8], at offset: Int) throws(FatalError) {
        if let error = writeFully(fd, bytes, at: offset) { throw failure(error.text) }
    }
    var meta = [UInt8](repeating: 0, count: 512)
    guard try read(&meta, at: 0) == meta.count else { throw failure("not a Berkeley DB file") }
    let magic = meta.load(UInt32.self, at: PageLayout.magicOffset)
    let pageSize = Int(meta.load(UInt32.self, at: PageLayout.pageSizeOffset))
    guard magic == PageLayout.hashMagic || magic == PageLayout.btreeMagic,
        pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0,
        meta[PageLayout.encryptionOffset] == 0, meta[PageLayout.metaFlagsOffset] & PageLayout.checksumFlag == 0
    else {
        throw failure("not a plain Berkeley DB hash or btree file")
    }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw failure(systemErrorText(errno)) }
    let pageCount = Int(info.st_size) / pageSize

    var digest = SHA256()
    digest.update(Array("swiftpostmap file id 1\0".utf8))
    var page = [UInt8](repeating: 0, count: pageSize)
    for number in 0..<pageCount {
        let offset = number * pageSize
        guard try read(&page, at: offset) == pageSize else { throw failure("short read") }
        var changed = false
        if number == 0 {
            for index in PageLayout.fileIDOffset..<(PageLayout.fileIDOffset + PageLayout.fileIDSize) {
                page[index] = 0
            }
        } else {
            changed = clearUnusedBytes(&page)
        }
        digest.update(page)
        if changed { try write(page, at: offset) }
    }
    var fileID = Array(digest.finish().prefix(PageLayout.fileIDSize))
    // An all-zero id would make libdb fall back to the inode and device.
    if fileID.allSatisfy({ $0 == 0 }) { fileID[0] = 1 }
    try write(fileID, at: PageLayout.fileIDOffset)
}

/// Zeroes the bytes of one page (not the meta-data page) that belong to no item.
///
/// - Returns: whether anything changed.
private func clearUnusedBytes(_ page: inout [UInt8]) -> Bool {
    let size = page.count
    let type = page[PageLayout.typeOffset]
    var changed = false
    func zero(_ range: Range<Int>) {
        let range = range.clamped(to: 0..<size)
        for index in range where page[index] != 0 {
            page[index] = 0
            changed = true
        }
    }
    func align4(_ n: Int) -> Int { (n + 3) & ~3 }

    let entries = Int(page.load(UInt16.self, at: PageLayout.entriesOffset))
    let freeStart = PageLayout.headerSize + 2 * entries
    let freeEnd = Int(page.load(UInt16.self, at: PageLayout.freeSpaceOffset))
    func items() -> [Int] {
        guard freeStart <= size else { return [] }
        return (0..<entries).map { Int(page.load(UInt16.self, at: PageLayout.headerSize + 2 * $0)) }
            .filter { $0 >= freeStart && $0 < size }
    }

    switch type {
    case PageLayout.hashPage, PageLayout.unsortedHashPage:
        if freeStart <= freeEnd { zero(freeStart..<freeEnd) }
        for item in items() {
            let kind = page[item]
            if kind == PageLayout.overflow || kind == PageLayout.offPageDuplicates {
                zero((item + 1)..<(item + 4))  // HOFFPAGE/HOFFDUP unused[3]
            }
        }
    case PageLayout.leafBtreePage, PageLayout.leafDuplicatePage, PageLayout.leafRecnoPage:
        if freeStart <= freeEnd { zero(freeStart..<freeEnd) }
        for item in items() where item + 3 <= size {
            let kind = page[item + 2] & 0x7F
            if kind == PageLayout.keyData {
                let length = Int(page.load(UInt16.self, at: item))
                zero((item + 3 + length)..<(item + align4(3 + length)))
            } else if kind == PageLayout.overflow || kind == PageLayout.duplicateTree {
                zero(item..<(item + 2))  // BOVERFLOW unused1
                zero((item + 3)..<(item + 4))  // unused2
            }
        }
    case PageLayout.internalBtreePage:
        if freeStart <= freeEnd { zero(freeStart..<freeEnd) }
        for item in items() where item + 12 <= size {
            let length = Int(page.load(UInt16.self, at: item))
            let kind = page[item + 2] & 0x7F
            zero((item + 3)..<(item + 4))  // BINTERNAL unused
            zero((item + 12 + length)..<(item + align4(12 + length)))
            if kind == PageLayout.overflow || kind == PageLayout.duplicateTree {
                zero((item + 12)..<(item + 14))
                zero((item + 15)..<(item + 16))
            }
        }
    case PageLayout.overflowPage:
        // hf_offset holds the bytes of data on an overflow page.
        zero((PageLayout.headerSize + freeEnd)..<size)
    case PageLayout.invalidPage:
        // A free page (or one never used): only its header means anything.
        zero(PageLayout.headerSize..<size)
    default:
        break
    }
    return changed
}

extension [UInt8] {
    /// The `T` at byte `offset`, in host byte order (libdb's).
    fileprivate func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        guard offset + MemoryLayout<T>.size <= count else { return 0 }
        return withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
