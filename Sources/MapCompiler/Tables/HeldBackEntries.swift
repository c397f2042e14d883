import Glibc

/// What the builds of a new large table in an order of their own share: entries held back
/// as flat records (in memory, then in an unlinked ``SpillFile`` next to the table),
/// warnings held back with them, and the inserts that let libdb decide duplicates.
///
/// A hash table is filled in bucket order (``BucketOrderedEntries``), a btree table in key
/// order (``KeyOrderedEntries``). Both store what a build in source order stores and give
/// out the same messages in the same order, as long as entries of equal key are inserted in
/// source order.
protocol HeldBackEntries: AnyObject, EntryStore {
    /// Holds a warning back until the entries before it are stored.
    func hold(_ diagnostic: Diagnostic)

    /// Gives out the held-back warnings without storing anything (the build failed).
    func releaseWarnings(warn: (Diagnostic) -> Void)

    /// Creates the table at `path`, stores the held-back entries, closes it, and gives out
    /// the held-back warnings in source order.
    ///
    /// - Returns: how many entries were dropped as duplicates.
    func write(
        path: String, method: AccessMethod, mode: mode_t, cacheSize: Int, warn: (Diagnostic) -> Void
    )
        throws(FatalError) -> Int
}

/// Flags of a held-back record.
enum RecordFlag {
    static let nul: UInt8 = 1
    static let overwrite: UInt8 = 2
    static let warn: UInt8 = 4

    /// The flags of an entry stored with (`nul`) or without a trailing NUL under `duplicates`.
    static func of(nul: Bool, duplicates: DuplicatePolicy) -> UInt8 {
        var flags: UInt8 = nul ? RecordFlag.nul : 0
        if duplicates == .replace { flags |= RecordFlag.overwrite }
        if duplicates == .warn { flags |= RecordFlag.warn }
        return flags
    }
}

/// ordinal, hash, key count, value count (4 bytes each), flags (1 byte).
let recordHeaderSize = 17

extension [UInt8] {
    /// Appends one held-back record: `key` and `value` as given, each followed by a NUL when
    /// `flags` has ``RecordFlag/nul``.
    ///
    /// - Parameters:
    ///   - ordinal: the entry's position in the source, for its duplicate warning.
    ///   - hash: libdb's hash of the stored key for a hash table, 0 otherwise.
    mutating func appendRecord(ordinal: UInt32, hash: UInt32, flags: UInt8, key: [UInt8], value: [UInt8]) {
        let extra = flags & RecordFlag.nul != 0 ? 1 : 0
        appendWord(ordinal)
        appendWord(hash)
        appendWord(UInt32(truncatingIfNeeded: key.count + extra))
        appendWord(UInt32(truncatingIfNeeded: value.count + extra))
        append(flags)
        append(contentsOf: key)
        if extra > 0 { append(0) }
        append(contentsOf: value)
        if extra > 0 { append(0) }
    }

    private mutating func appendWord(_ word: UInt32) {
        Swift.withUnsafeBytes(of: word.littleEndian) { append(contentsOf: $0) }
    }
}

/// A view of one held-back record.
struct StoredRecord {
    let ordinal: UInt32
    let hash: UInt32
    let flags: UInt8
    /// As stored in the table: folded, with its NUL when it has one.
    let key: UnsafeRawBufferPointer
    let value: UnsafeRawBufferPointer

    /// The record's whole size: header, key and value.
    var size: Int { recordHeaderSize + key.count + value.count }

    init(_ raw: UnsafeRawBufferPointer, at offset: Int) {
        func word(_ at: Int) -> UInt32 {
            UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + at, as: UInt32.self))
        }
        ordinal = word(0)
        hash = word(4)
        let keyCount = Int(word(8))
        let valueCount = Int(word(12))
        flags = raw[offset + 16]
        let keyStart = offset + recordHeaderSize
        key = UnsafeRawBufferPointer(rebasing: raw[keyStart..<keyStart + keyCount])
        value = UnsafeRawBufferPointer(rebasing: raw[keyStart + keyCount..<keyStart + keyCount + valueCount])
    }

    /// The whole size of the record at `offset`.
    static func size(in raw: UnsafeRawBufferPointer, at offset: Int) -> Int {
        recordHeaderSize + keyCount(in: raw, at: offset) + valueCount(in: raw, at: offset)
    }

    /// The key of the record at `offset`.
    static func key(in raw: UnsafeRawBufferPointer, at offset: Int) -> UnsafeRawBufferPointer {
        let start = offset + recordHeaderSize
        return UnsafeRawBufferPointer(rebasing: raw[start..<start + keyCount(in: raw, at: offset)])
    }

    private static func keyCount(in raw: UnsafeRawBufferPointer, at offset: Int) -> Int {
        Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)))
    }

    static func valueCount(in raw: UnsafeRawBufferPointer, at offset: Int) -> Int {
        Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
    }
}

/// Calls `body` with every record in `records` and its offset.
func forEachRecord(in records: [UInt8], _ body: (StoredRecord, Int) -> Void) {
    records.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let record = StoredRecord(raw, at: offset)
            body(record, offset)
            offset += record.size
        }
    }
}

/// Warnings held back while the entries are: each one remembers how many entries came
/// before it.
struct HeldWarnings {
    private var held: [(ordinal: Int, diagnostic: Diagnostic)] = []

    /// Holds `diagnostic`, which came after `entriesBefore` entries.
    mutating func hold(_ diagnostic: Diagnostic, entriesBefore: Int) {
        held.append((entriesBefore, diagnostic))
    }

    /// Gives out the held warnings merged with `duplicateWarnings` (any order) in source
    /// order, and forgets them.
    mutating func release(
        adding duplicateWarnings: [(ordinal: Int, diagnostic: Diagnostic)], warn: (Diagnostic) -> Void
    ) {
        // A warning held at ordinal n came before entry n; entry n's duplicate warning comes
        // after it. Both lists are in order once the duplicates are sorted; merge them.
        var iterator = held.makeIterator()
        var nextHeld = iterator.next()
        for duplicate in duplicateWarnings.sorted(by: { $0.ordinal < $1.ordinal }) {
            while let current = nextHeld, current.ordinal <= duplicate.ordinal {
                warn(current.diagnostic)
                nextHeld = iterator.next()
            }
            warn(duplicate.diagnostic)
        }
        while let current = nextHeld {
            warn(current.diagnostic)
            nextHeld = iterator.next()
        }
        held = []
    }
}

/// Puts held-back records into a new table one at a time. libdb decides about duplicates
/// (`DB_NOOVERWRITE` unless the record was made under `-r`), so the records of one key must
/// come in source order; the dropped ones are counted and their warnings kept for
/// ``HeldWarnings/release(adding:warn:)``.
struct HeldRecordInserter {
    /// `NAME.db` as typed, for messages.
    let displayPath: String
    private(set) var dropped = 0
    private(set) var duplicateWarnings: [(ordinal: Int, diagnostic: Diagnostic)] = []

    init(displayPath: String) { self.displayPath = displayPath }

    mutating func insert(_ record: StoredRecord, into handle: borrowing DatabaseHandle) throws(FatalError) {
        let outcome: PutOutcome
        do throws(BerkeleyDBError) {
            outcome = try handle.put(
                key: record.key, value: record.value, overwrite: record.flags & RecordFlag.overwrite != 0)
        } catch {
            throw FatalError("table \(displayPath): write error: \(error.reason)")
        }
        guard outcome == .keyExists else { return }
        dropped += 1
        if record.flags & RecordFlag.warn != 0 {
            let shown = record.key.prefix(record.key.count - (record.flags & RecordFlag.nul != 0 ? 1 : 0))
            duplicateWarnings.append((Int(record.ordinal), duplicateEntryWarning(table: displayPath, key: shown)))
        }
    }
}

/// Flushes and closes a table built from held-back entries.
func closeHeldBackTable(_ handle: consuming DatabaseHandle, displayPath: String) throws(FatalError) {
    do throws(BerkeleyDBError) {
        try handle.close()
    } catch {
        throw FatalError("error writing \(displayPath): \(error.reason)")
    }
}

/// An unlinked temporary file: it disappears with the process whatever happens.
final class SpillFile {
    private let fd: Int32
    private var end = 0

    init(directory: String) throws(FatalError) {
        var template = Array("\(directory)/.swiftpostmap-spill.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { mkstemp($0) } ?? -1
        }
        guard fd >= 0 else {
            throw FatalError("create temporary file in \(directory): \(systemErrorText(errno))")
        }
        template.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { _ = unlink(base) }
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
    }

    deinit { close(fd) }

    /// How many bytes were appended so far.
    var size: Int { end }

    /// Appends `bytes`; returns where they start.
    func append(_ bytes: [UInt8]) throws(FatalError) -> Int {
        let start = end
        if let error = writeFully(fd, bytes, at: start) { throw FatalError("write temporary file: \(error.text)") }
        end += bytes.count
        return start
    }

    func read(offset: Int, count: Int, appendingTo buffer: inout [UInt8]) throws(FatalError) {
        let base = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: count))
        var failure: FatalError?
        buffer.withUnsafeMutableBytes { raw in
            guard let start = raw.baseAddress else { return }
            do throws(FatalError) {
                try read(offset: offset, count: count, into: start + base)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// Reads `count` bytes at `offset` into `destination`.
    func read(offset: Int, count: Int, into destination: UnsafeMutableRawPointer) throws(FatalError) {
        switch readFully(fd, into: UnsafeMutableRawBufferPointer(start: destination, count: count), at: offset) {
        case .success(let done) where done == count: return
        case .success: throw FatalError("read temporary file: unexpected end of file")
        case .failure(let error): throw FatalError("read temporary file: \(error.text)")
        }
    }
}
