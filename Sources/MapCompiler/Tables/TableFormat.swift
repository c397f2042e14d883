import Glibc

/// The indexed table types swiftpostmap writes and reads: Berkeley DB's hash and btree,
/// lmdb and cdb. Each is one ``TableFormat``.
public enum TableType: String, Sendable, CaseIterable {
    case hash
    case btree
    case lmdb
    case cdb

    /// The table file's suffix after the map name: `.db`, `.lmdb` or `.cdb`.
    public var fileSuffix: String {
        switch self {
        case .hash, .btree: return ".db"
        case .lmdb: return ".lmdb"
        case .cdb: return ".cdb"
        }
    }

    /// The Berkeley DB access method, for hash and btree.
    public var accessMethod: AccessMethod? {
        switch self {
        case .hash: return .hash
        case .btree: return .btree
        case .lmdb, .cdb: return nil
        }
    }

    /// The C library that reads and writes the type's files, for messages.
    var libraryName: String {
        switch self {
        case .hash, .btree: return "libdb"
        case .lmdb: return "liblmdb"
        case .cdb: return "tinycdb"
        }
    }

    /// Postfix's message for a failed lookup, update or delete in a table of this type:
    /// `table hash:NAME.db: query error: REASON` for Berkeley DB and cdb, `error reading
    /// lmdb:NAME: REASON` (`updating`, `deleting from`) for lmdb.
    ///
    /// - Parameters:
    ///   - typedLabel: the map as typed (`lmdb:NAME`).
    ///   - tableLabel: the table as Postfix's lookup layer names it (`hash:NAME.db`).
    func accessErrorMessage(
        _ operation: TableOperation, typedLabel: String, tableLabel: String, reason: String
    )
        -> String
    {
        if self == .lmdb {
            let verb = operation == .query ? "reading" : operation == .write ? "updating" : "deleting from"
            return "error \(verb) \(typedLabel): \(reason)"
        }
        return "table \(tableLabel): \(operation.rawValue) error: \(reason)"
    }

    /// Whether a new table stores keys and values with a trailing NUL when neither `-N` nor
    /// `-n` is given: yes except for cdb (Postfix's `DICT_FLAG_TRY1NULL` defaults).
    var writesNULByDefault: Bool { self != .cdb }
}

/// What was done to a table when it failed, for ``TableType/accessErrorMessage``.
enum TableOperation: String, Sendable {
    case query
    case write
    case delete
}

/// A table file operation failed; ``reason`` is the library's text (`Invalid argument`).
struct TableAccessError: Error, Sendable {
    let reason: String
}

/// Settings a format may use when it opens a file.
struct TableSettings: Sendable {
    /// `berkeley_db_create_buffer_size` or `berkeley_db_read_buffer_size`.
    var cacheSize = 16_777_216
    /// `lmdb_map_size`.
    var mapSize = 16_777_216
    /// The page size of a new Berkeley DB file; 0 lets libdb take the file system's block
    /// size, as postmap does (a reproducible build fixes it).
    var pageSize: UInt32 = 0
}

/// How Postfix locks a table file: `flock()` for Berkeley DB and cdb, `fcntl()` record
/// locks for lmdb (Postfix's own lmdb locking; LMDB's lock file is not used).
enum FileLockStyle: Sendable {
    case flock
    case fcntl
}

/// Writing the records of one table file (a new temporary file, or a copy for `-i`/`-d`).
/// One object owns the file's handle; ``completeTable()`` finishes it, and an object
/// dropped without it abandons the file (its caller removes it).
protocol TableRecordWriter: AnyObject {
    /// Stores one record; `.keyExists` when the key was already there (with `.replace` its
    /// value was replaced; otherwise the first one was kept, except that cdb with `.ignore`
    /// adds the record after the first, as postmap does).
    func putRecord(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, duplicates: DuplicatePolicy
    )
        throws(TableAccessError) -> PutOutcome
    /// Removes `key` (exactly as given); `false` when it is not there.
    func deleteRecord(key: [UInt8]) throws(TableAccessError) -> Bool
    /// Completes the file; an error means it is not complete on disk.
    func completeTable() throws(TableAccessError)
}

/// The records of a table file opened for reading.
protocol TableRecords: AnyObject {
    /// The value stored under `key` (exactly as given), or `nil`.
    func get(_ key: [UInt8]) throws(TableAccessError) -> [UInt8]?
    /// Every record exactly as stored, in the file's order, until `body` returns `false`.
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) -> Bool) throws(TableAccessError)
    /// Called before each access made under a fresh shared lock (a hash table's map is
    /// checked against the file then).
    func refresh()
    /// hash or btree, for a Berkeley DB file.
    var accessMethod: AccessMethod? { get }
    func close()
}

extension TableRecords {
    func refresh() {}
    var accessMethod: AccessMethod? { nil }
}

/// One table file format: how its files are locked, created, written and read.
protocol TableFormat {
    var type: TableType { get }
    var lockStyle: FileLockStyle { get }

    /// Creates the new (temporary) table file at `path` with `mode`; messages name the
    /// table `label` (`NAME.db`), not the temporary file.
    func createWriter(
        path: String, label: String, mode: mode_t, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    /// Opens the copy of an existing table at `path` for `-i` and `-d`.
    func updateWriter(
        path: String, label: String, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    /// Opens the table file at `path`, whose descriptor (locked) is `descriptor`, for reading.
    func openRecords(
        path: String, descriptor: Int32, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecords
}

extension TableFormat {
    /// `-i`: the copy of the existing table when there is one, else a new file.
    func updateOrCreateWriter(
        path: String, label: String, mode: mode_t, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        access(path, F_OK) == 0
            ? try updateWriter(path: path, label: label, settings: settings)
            : try createWriter(path: path, label: label, mode: mode, settings: settings)
    }
}

/// Runs `body` with the ``TableFormat`` of `type`.
func withTableFormat<R, E: Error>(_ type: TableType, _ body: (any TableFormat) throws(E) -> R) throws(E) -> R {
    switch type {
    case .hash: return try body(BerkeleyFormat(method: .hash))
    case .btree: return try body(BerkeleyFormat(method: .btree))
    case .lmdb: return try body(LMDBFormat())
    case .cdb: return try body(CDBFormat())
    }
}

// MARK: - Handles that write in place (Berkeley DB, lmdb)

/// A library error that carries the library's text for its code.
protocol LibraryError: Error {
    var reason: String { get }
}

extension BerkeleyDBError: LibraryError {}
extension LMDBError: LibraryError {}
extension CDBError: LibraryError {}

/// What ``HandleWriter`` needs of a boundary handle: libdb's `DatabaseHandle` and
/// `LMDBHandle` store, replace and delete records in place and report on close.
protocol RecordHandle: ~Copyable {
    associatedtype Failure: LibraryError
    mutating func put(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, overwrite: Bool
    )
        throws(Failure) -> PutOutcome
    mutating func delete(key: [UInt8]) throws(Failure) -> Bool
    consuming func close() throws(Failure)
}

extension DatabaseHandle: RecordHandle {}
extension LMDBHandle: RecordHandle {}

/// A Berkeley DB or lmdb table being written: the one owner of its handle, whose library
/// errors become ``TableAccessError``s.
final class HandleWriter<Handle: RecordHandle & ~Copyable>: TableRecordWriter {
    private var handle: Handle?

    init(_ handle: consuming Handle) { self.handle = consume handle }

    func putRecord(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, duplicates: DuplicatePolicy
    )
        throws(TableAccessError) -> PutOutcome
    {
        let outcome: PutOutcome?
        do throws(Handle.Failure) {
            outcome = try handle?.put(key: key, value: value, overwrite: duplicates == .replace)
        } catch {
            throw TableAccessError(reason: error.reason)
        }
        guard let outcome else { throw TableAccessError(reason: systemErrorText(EBADF)) }
        return outcome
    }

    func deleteRecord(key: [UInt8]) throws(TableAccessError) -> Bool {
        do throws(Handle.Failure) {
            return try handle?.delete(key: key) ?? false
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }

    func completeTable() throws(TableAccessError) {
        do throws(Handle.Failure) {
            try handle.take()?.close()
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }
}

// MARK: - Handles that only read (lmdb, cdb)

/// What ``ReaderRecords`` needs of a boundary handle opened for reading: `LMDBHandle` and
/// `CDBReader` look a key up and list their records.
protocol RecordReader: ~Copyable {
    associatedtype Failure: LibraryError
    func get(key: [UInt8]) throws(Failure) -> [UInt8]?
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) -> Bool) throws(Failure)
    /// Releases the handle; nothing was written, so there is nothing to report.
    consuming func closeAfterReading()
}

extension LMDBHandle: RecordReader {
    consuming func closeAfterReading() { try? close() }
}

extension CDBReader: RecordReader {
    func closeAfterReading() {}
}

/// An lmdb or cdb table opened for reading: the one owner of its handle, whose library
/// errors become ``TableAccessError``s.
final class ReaderRecords<Reader: RecordReader & ~Copyable>: TableRecords {
    private var reader: Reader?

    init(_ reader: consuming Reader) { self.reader = consume reader }

    func get(_ key: [UInt8]) throws(TableAccessError) -> [UInt8]? {
        do throws(Reader.Failure) {
            return try reader?.get(key: key)
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }

    func forEachRecord(_ body: ([UInt8], [UInt8]) -> Bool) throws(TableAccessError) {
        do throws(Reader.Failure) {
            try reader?.forEachRecord(body)
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }

    func close() { reader.take()?.closeAfterReading() }
}

// MARK: - Berkeley DB (hash, btree)

struct BerkeleyFormat: TableFormat {
    let method: AccessMethod
    var type: TableType { method == .hash ? .hash : .btree }
    var lockStyle: FileLockStyle { .flock }

    func createWriter(
        path: String, label: String, mode: mode_t, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        do throws(BerkeleyDBError) {
            return HandleWriter(
                try DatabaseHandle(
                    path: path, method: method, intent: .createExclusive, cacheSize: settings.cacheSize, mode: mode,
                    pageSize: settings.pageSize))
        } catch {
            throw openDatabaseError(error, tablePath: label)
        }
    }

    func updateWriter(
        path: String, label: String, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        do throws(BerkeleyDBError) {
            return HandleWriter(
                try DatabaseHandle(path: path, method: method, intent: .update, cacheSize: settings.cacheSize))
        } catch {
            throw openDatabaseError(error, tablePath: label)
        }
    }

    func openRecords(
        path: String, descriptor: Int32, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecords
    {
        try BerkeleyRecords(path: path, descriptor: descriptor, method: method, cacheSize: settings.cacheSize)
    }
}

/// A Berkeley DB table opened for reading: libdb, and for a read-only hash table the map of
/// its file that answers most lookups (``MappedHashTable``).
final class BerkeleyRecords: TableRecords {
    private var handle: DatabaseHandle
    private var mapped: MappedHashTable?

    /// - Parameter method: hash or btree; `nil` to take the file's own type.
    init(
        path: String, descriptor: Int32, method: AccessMethod?, cacheSize: Int, writable: Bool = false
    )
        throws(FatalError)
    {
        do throws(BerkeleyDBError) {
            handle = try DatabaseHandle(
                path: path, method: method, intent: writable ? .readWrite : .read, cacheSize: cacheSize)
        } catch {
            throw openDatabaseError(error, tablePath: path)
        }
        mapped = !writable && handle.method == .hash ? MappedHashTable(descriptor: descriptor) : nil
    }

    var accessMethod: AccessMethod? { handle.method }

    func refresh() { mapped?.refresh() }

    func get(_ key: [UInt8]) throws(TableAccessError) -> [UInt8]? {
        if let mapped {
            switch key.withUnsafeBytes({ mapped.lookup($0) }) {
            case .found(let value): return value
            case .absent: return nil
            case .undecided: break
            }
        }
        do throws(BerkeleyDBError) {
            return try handle.get(key: key)
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }

    func forEachRecord(_ body: ([UInt8], [UInt8]) -> Bool) throws(TableAccessError) {
        do throws(BerkeleyDBError) {
            try handle.forEachRecord(body)
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }

    func close() {
        mapped = nil
        handle.closeAfterReading()
    }
}

// MARK: - lmdb

struct LMDBFormat: TableFormat {
    var type: TableType { .lmdb }
    var lockStyle: FileLockStyle { .fcntl }

    func createWriter(
        path: String, label: String, mode: mode_t, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        do throws(LMDBError) {
            return HandleWriter(try LMDBHandle(path: path, intent: .create(mode: mode), mapSize: settings.mapSize))
        } catch {
            throw FatalError("open database \(label): \(error.reason)")
        }
    }

    func updateWriter(
        path: String, label: String, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        do throws(LMDBError) {
            return HandleWriter(try LMDBHandle(path: path, intent: .update, mapSize: settings.mapSize))
        } catch {
            throw FatalError("open database \(label): \(error.reason)")
        }
    }

    func openRecords(
        path: String, descriptor: Int32, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecords
    {
        do throws(LMDBError) {
            return ReaderRecords(try LMDBHandle(path: path, intent: .read, mapSize: settings.mapSize))
        } catch {
            throw FatalError("open database \(path): \(error.reason)")
        }
    }
}

// MARK: - cdb

struct CDBFormat: TableFormat {
    var type: TableType { .cdb }
    var lockStyle: FileLockStyle { .flock }

    func createWriter(
        path: String, label: String, mode: mode_t, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        do throws(CDBError) {
            return CDBWriter(try CDBMaker(path: path, mode: mode))
        } catch {
            throw FatalError("open database \(label): \(error.reason)")
        }
    }

    func updateWriter(
        path: String, label: String, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecordWriter
    {
        // A cdb file is written once, whole: postmap refuses -i and -d before this point.
        throw FatalError(cdbIncrementalRefusal)
    }

    func openRecords(
        path: String, descriptor: Int32, settings: TableSettings
    ) throws(FatalError)
        -> any TableRecords
    {
        do throws(CDBError) {
            return ReaderRecords(try CDBReader(descriptor: descriptor, path: path))
        } catch {
            // Postfix's cdb driver's words for a file tinycdb cannot map.
            throw FatalError("dict_cdbq_open: unable to init \(path): \(error.reason)")
        }
    }
}

/// postmap's refusal of `-i` and `-d` on a cdb table (Postfix 3.7's cdb driver opens a cdb
/// file only to read it or to write it whole).
public let cdbIncrementalRefusal =
    "dict_cdb_open: inappropriate open flags for cdb database - specify O_RDONLY or O_WRONLY|O_CREAT|O_TRUNC"

/// A cdb table being written. postmap's duplicate handling for cdb: keep the first and
/// warn, `-r` replace, and `-w` add the record after the first one (lookups find the first).
final class CDBWriter: TableRecordWriter {
    private var maker: CDBMaker?

    init(_ maker: consuming CDBMaker) { self.maker = consume maker }

    func putRecord(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, duplicates: DuplicatePolicy
    )
        throws(TableAccessError) -> PutOutcome
    {
        let mode: CDBPutMode
        switch duplicates {
        case .warn: mode = .keepFirst
        case .replace: mode = .replace
        case .ignore: mode = .add
        }
        let outcome: PutOutcome?
        do throws(CDBError) {
            outcome = try maker?.put(key: key, value: value, mode: mode)
        } catch {
            throw TableAccessError(reason: error.reason)
        }
        guard let outcome else { throw TableAccessError(reason: systemErrorText(EBADF)) }
        return outcome
    }

    func deleteRecord(key: [UInt8]) throws(TableAccessError) -> Bool {
        throw TableAccessError(reason: cdbIncrementalRefusal)
    }

    func completeTable() throws(TableAccessError) {
        do throws(CDBError) {
            try maker.take()?.finish()
        } catch {
            throw TableAccessError(reason: error.reason)
        }
    }
}
