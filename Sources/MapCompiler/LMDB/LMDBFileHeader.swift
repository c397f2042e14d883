/// The two meta pages at the start of an LMDB file, read as plain bytes (not through
/// liblmdb), for `--check`: LMDB 0.9's `MDB_meta` after the 16-byte page header, in the
/// writer's (little-endian) byte order.
struct LMDBFileHeader: Equatable {
    /// `MDB_MAGIC`.
    static let magic: UInt32 = 0xBEEF_C0DE
    /// The page header and the meta fields read here.
    static let minimumLength = 152

    /// The page size (kept in the free-page database's `md_pad`).
    let pageSize: UInt32
    /// The last page the newer meta page accounts for.
    let lastPage: UInt64
    /// Records in the main database, by the newer meta page.
    let entries: UInt64
    /// The map size recorded in the file.
    let mapSize: UInt64

    /// `true` for a page size LMDB can have: a power of two from 512 to 65536.
    var hasValidPageSize: Bool { pageSize >= 512 && pageSize <= 65536 && pageSize & (pageSize - 1) == 0 }

    /// Whether `bytes` (the start of a file) carries LMDB's magic number in its first page.
    static func hasMagic(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 24 && word32(bytes, 16) == magic
    }

    /// Parses the start of a file: the first meta page, and the second one (at `pageSize`)
    /// when `bytes` reaches it; the newer of the two (larger transaction id) counts.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= Self.minimumLength, Self.hasMagic(bytes) else { return nil }
        let pageSize = word32(bytes, 16 + 24)  // mm_dbs[0].md_pad
        var newest = Meta(bytes, at: 0)
        if pageSize >= 512, bytes.count >= Int(pageSize) + Self.minimumLength,
            word32(bytes, Int(pageSize) + 16) == Self.magic
        {
            let second = Meta(bytes, at: Int(pageSize))
            if second.transaction > newest.transaction { newest = second }
        }
        self.pageSize = pageSize
        lastPage = newest.lastPage
        entries = newest.entries
        mapSize = newest.mapSize
    }

    /// One meta page: `mm_magic`, `mm_version`, `mm_address`, `mm_mapsize`, two 48-byte
    /// `MDB_db`s (free pages, main), `mm_last_pg`, `mm_txnid`.
    private struct Meta {
        let mapSize: UInt64
        let entries: UInt64
        let lastPage: UInt64
        let transaction: UInt64

        init(_ bytes: [UInt8], at page: Int) {
            let meta = page + 16
            mapSize = word64(bytes, meta + 16)
            entries = word64(bytes, meta + 24 + 48 + 32)  // mm_dbs[1].md_entries
            lastPage = word64(bytes, meta + 24 + 96)
            transaction = word64(bytes, meta + 24 + 104)
        }
    }
}

private func word32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { littleEndianWord(bytes, at: offset) }

private func word64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    UInt64(littleEndianWord(bytes, at: offset)) | UInt64(littleEndianWord(bytes, at: offset + 4)) << 32
}
