import CBerkeleyDB
import Glibc

/// The access method of a table file.
public enum AccessMethod: String, Sendable, CaseIterable {
    case hash
    case btree

    var cValue: DBTYPE { self == .hash ? DB_HASH : DB_BTREE }
}

/// How a table file is opened.
enum OpenIntent {
    /// Create a new file (it must not exist yet).
    case createExclusive
    /// Open an existing file for reading and writing, creating it when missing.
    case update
    /// Open an existing file read-only.
    case read
    /// Open an existing file for reading and writing; never create one.
    case readWrite

    var flags: UInt32 {
        switch self {
        case .createExclusive: return UInt32(DB_CREATE) | UInt32(DB_EXCL)
        case .update: return UInt32(DB_CREATE)
        case .read: return UInt32(DB_RDONLY)
        case .readWrite: return 0
        }
    }
}

/// Result of an insert.
enum PutOutcome {
    case stored
    case keyExists
}

/// The one owner of a Berkeley DB environment and database handle pair.
///
/// Everything in swiftpostmap that calls into libdb goes through this type. It is
/// `~Copyable`: exactly one value owns the `DB*`, and ``close()`` consumes it, so a closed
/// handle cannot be used again. ``close()`` reports libdb's close error (for a writer this is
/// the error of flushing the last pages to disk); `deinit` only runs on paths that already
/// failed and closes without reporting.
///
/// The environment is private (`DB_PRIVATE`, no region files) and rooted at the table's
/// directory, with a memory pool of `cacheSize` bytes, the way Postfix opens its tables.
struct DatabaseHandle: ~Copyable {
    // Set to nil by close(), so that deinit, which runs after it, has nothing left to do.
    private var environment: UnsafeMutablePointer<DB_ENV>?
    private var database: UnsafeMutablePointer<DB>?
    let path: String

    /// Opens (or creates) the table file at `path`.
    ///
    /// - Parameters:
    ///   - path: the `.db` file.
    ///   - method: hash or btree; `nil` to open an existing file of either type.
    ///   - intent: create, update or read.
    ///   - cacheSize: the memory pool size (Postfix's `berkeley_db_create_buffer_size` or
    ///     `berkeley_db_read_buffer_size`).
    ///   - mode: permission bits for a file libdb creates (the umask still applies).
    ///   - hashElementHint: `DB->set_h_nelem`, used when creating a hash table.
    ///   - hashFillFactor: `DB->set_h_ffactor`, 0 to leave libdb's default.
    ///   - pageSize: `DB->set_pagesize` for a new file, 0 for libdb's choice (the file
    ///     system's block size).
    /// - Throws: ``BerkeleyDBError`` with `.createEnvironment`, `.openEnvironment`, `.create`
    ///   or `.open`. Every handle made before the failure is closed again.
    init(
        path: String, method: AccessMethod?, intent: OpenIntent, cacheSize: Int,
        mode: mode_t = 0o644, hashElementHint: UInt32 = 4096, hashFillFactor: UInt32 = 0, pageSize: UInt32 = 0
    ) throws(BerkeleyDBError) {
        self.path = path
        let (directory, file) = splitPath(path)

        var envPointer: UnsafeMutablePointer<DB_ENV>?
        var rc = db_env_create(&envPointer, 0)
        guard rc == 0, let env = envPointer else {
            throw BerkeleyDBError(code: rc, operation: .createEnvironment, path: path)
        }
        configureCache(env, size: cacheSize)
        // libdb's messages go to stderr as they would without a callback (postmap prints
        // them too), until a write fails (`BDB0137 write: …`): then libdb repeats itself
        // for every page it cannot write or flush, thousands of lines on a full disk, and
        // the one fatal message (with the errno text) says it instead.
        env.pointee.set_errcall(env) { _, _, message in
            guard let message, !libraryWriteFailed else { return }
            if strncmp(message, "BDB0137 ", 8) == 0 {
                libraryWriteFailed = true
                return
            }
            let length = strlen(message)
            var line = [UInt8](repeating: 0x0A, count: length + 1)
            line.withUnsafeMutableBytes { bytes in
                guard let base = bytes.baseAddress else { return }
                memcpy(base, message, length)
                var offset = 0
                while offset < bytes.count {
                    let written = write(2, base + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
        rc = env.pointee.open(
            env, directory, UInt32(DB_INIT_MPOOL) | UInt32(DB_CREATE) | UInt32(DB_PRIVATE), 0)
        guard rc == 0 else {
            // A DB_ENV handle must be closed even when its open failed.
            _ = env.pointee.close(env, 0)
            throw BerkeleyDBError(code: rc, operation: .openEnvironment, path: path)
        }

        var dbPointer: UnsafeMutablePointer<DB>?
        rc = db_create(&dbPointer, env, 0)
        guard rc == 0, let db = dbPointer else {
            _ = env.pointee.close(env, 0)
            throw BerkeleyDBError(code: rc, operation: .create, path: path)
        }
        if intent == .createExclusive || intent == .update {
            if method == .hash {
                rc = db.pointee.set_h_nelem(db, hashElementHint)
                if rc == 0, hashFillFactor > 0 { rc = db.pointee.set_h_ffactor(db, hashFillFactor) }
            }
            if rc == 0, pageSize > 0 { rc = db.pointee.set_pagesize(db, pageSize) }
            guard rc == 0 else {
                _ = db.pointee.close(db, 0)
                _ = env.pointee.close(env, 0)
                throw BerkeleyDBError(code: rc, operation: .configure, path: path)
            }
        }
        // Postfix always adds DB_FCNTL_LOCKING; besides the locking it asks for, it keeps
        // libdb from printing "fop_read_meta: unexpected file type or format" for a file
        // that is not a database, so the only message is postmap's own.
        rc = db.pointee.open(
            db, nil, file, nil, method?.cValue ?? DB_UNKNOWN, intent.flags | UInt32(DB_FCNTL_LOCKING), Int32(mode))
        guard rc == 0 else {
            // The DB handle, too, is released only by DB->close, whatever open returned.
            _ = db.pointee.close(db, 0)
            _ = env.pointee.close(env, 0)
            throw BerkeleyDBError(code: rc, operation: .open, path: path)
        }
        self.environment = env
        self.database = db
    }

    /// The open database; only ``close()`` clears it, and nothing runs after that.
    private var db: UnsafeMutablePointer<DB> {
        guard let database else { preconditionFailure("Berkeley DB handle used after close") }
        return database
    }

    /// The access method of the open file (`DB->get_type`).
    var method: AccessMethod? {
        var type = DB_UNKNOWN
        guard db.pointee.get_type(db, &type) == 0 else { return nil }
        return type == DB_HASH ? .hash : type == DB_BTREE ? .btree : nil
    }

    /// Turns off the kernel's read-ahead on the table file (`DB->fd`, then
    /// `posix_fadvise(POSIX_FADV_RANDOM)`). A new hash table sized in advance is a file of
    /// holes that libdb reads page by page before filling each one; read-ahead there only
    /// zeroes memory that is thrown away. Advice: a failure changes nothing and is ignored.
    func adviseNoReadAhead() {
        var descriptor: Int32 = -1
        guard db.pointee.fd(db, &descriptor) == 0, descriptor >= 0 else { return }
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_RANDOM)
    }

    /// The size of the open file in bytes (`DB->fd`, then `fstat`); `nil` when unknown.
    func fileSize() -> Int? {
        var descriptor: Int32 = -1
        var info = stat()
        guard db.pointee.fd(db, &descriptor) == 0, descriptor >= 0, fstat(descriptor, &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    /// Cuts the open file to `size` bytes (`DB->fd`, then `ftruncate`).
    /// - Returns: `false` when the file could not be cut (`errno` says why).
    func truncateFile(to size: Int) -> Bool {
        var descriptor: Int32 = -1
        guard db.pointee.fd(db, &descriptor) == 0, descriptor >= 0 else { return false }
        return ftruncate(descriptor, off_t(size)) == 0
    }

    /// Stores `value` under `key`.
    ///
    /// - Parameter overwrite: when `false`, an existing key is left alone and the result is
    ///   `.keyExists` (`DB_NOOVERWRITE`).
    /// The corresponding Berkeley DB call is `DB->put`.
    func put(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, overwrite: Bool
    )
        throws(BerkeleyDBError) -> PutOutcome
    {
        var k = DBT(borrowing: key)
        var v = DBT(borrowing: value)
        let rc = ReadProgress.counting { db.pointee.put(db, nil, &k, &v, overwrite ? 0 : UInt32(DB_NOOVERWRITE)) }
        if rc == DB_KEYEXIST { return .keyExists }
        guard rc == 0 else { throw BerkeleyDBError(code: rc, operation: .put, path: path) }
        return .stored
    }

    /// A cursor for ``AppendCursor/put(key:value:)``; close it before the table.
    /// The corresponding Berkeley DB call is `DB->cursor`.
    func makeAppendCursor() throws(BerkeleyDBError) -> AppendCursor {
        var cursorPointer: UnsafeMutablePointer<DBC>?
        let db = self.db
        let rc = db.pointee.cursor(db, nil, &cursorPointer, 0)
        guard rc == 0, let cursor = cursorPointer else {
            throw BerkeleyDBError(code: rc, operation: .cursor, path: path)
        }
        return AppendCursor(cursor: cursor, path: path)
    }

    /// Looks `key` up; `nil` when the table has no such key.
    /// The corresponding Berkeley DB call is `DB->get`.
    func get(key: [UInt8]) throws(BerkeleyDBError) -> [UInt8]? {
        var rc: Int32 = 0
        let db = self.db
        let result: [UInt8]? = key.withUnsafeBytes { keyBytes in
            var k = DBT()
            k.data = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
            k.size = UInt32(keyBytes.count)
            var v = DBT()
            rc = ReadProgress.counting { db.pointee.get(db, nil, &k, &v, 0) }
            guard rc == 0 else { return nil }
            return bytes(of: v)
        }
        if rc == DB_NOTFOUND { return nil }
        guard rc == 0 else { throw BerkeleyDBError(code: rc, operation: .get, path: path) }
        return result
    }

    /// Removes `key`; `false` when it was not there.
    /// The corresponding Berkeley DB call is `DB->del`.
    func delete(key: [UInt8]) throws(BerkeleyDBError) -> Bool {
        let db = self.db
        let rc: Int32 = key.withUnsafeBytes { keyBytes in
            var k = DBT()
            k.data = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
            k.size = UInt32(keyBytes.count)
            return ReadProgress.counting { db.pointee.del(db, nil, &k, 0) }
        }
        if rc == DB_NOTFOUND { return false }
        guard rc == 0 else { throw BerkeleyDBError(code: rc, operation: .delete, path: path) }
        return true
    }

    /// Calls `body` with every record in the table's own order (hash bucket order, or
    /// ascending byte order for a btree). `body` returns `false` to stop early.
    /// The corresponding Berkeley DB calls are `DB->cursor` and `DBcursor->get(DB_NEXT)`.
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) -> Bool) throws(BerkeleyDBError) {
        var cursorPointer: UnsafeMutablePointer<DBC>?
        let db = self.db
        var rc = db.pointee.cursor(db, nil, &cursorPointer, 0)
        guard rc == 0, let cursor = cursorPointer else {
            throw BerkeleyDBError(code: rc, operation: .cursor, path: path)
        }
        while true {
            var k = DBT()
            var v = DBT()
            rc = ReadProgress.counting { cursor.pointee.get(cursor, &k, &v, UInt32(DB_NEXT)) }
            if rc != 0 { break }
            if !body(bytes(of: k), bytes(of: v)) {
                rc = 0
                break
            }
        }
        let closeRC = cursor.pointee.close(cursor)
        if rc != 0 && rc != DB_NOTFOUND {
            throw BerkeleyDBError(code: rc, operation: .cursor, path: path)
        }
        guard closeRC == 0 else { throw BerkeleyDBError(code: closeRC, operation: .cursor, path: path) }
    }

    /// Flushes the table to disk and releases both handles.
    ///
    /// Both handles are released whatever happens; the first failure is thrown. For a table
    /// that was written, a thrown error means the file on disk is not complete.
    /// The corresponding Berkeley DB calls are `DB->sync`, `DB->close` and `DB_ENV->close`.
    consuming func close() throws(BerkeleyDBError) {
        guard let db = database, let env = environment else { return }
        database = nil
        environment = nil
        let name = path
        let syncRC = db.pointee.sync(db, 0)
        let closeRC = db.pointee.close(db, 0)
        let envRC = env.pointee.close(env, 0)
        if syncRC != 0 { throw BerkeleyDBError(code: syncRC, operation: .sync, path: name) }
        if closeRC != 0 { throw BerkeleyDBError(code: closeRC, operation: .close, path: name) }
        if envRC != 0 { throw BerkeleyDBError(code: envRC, operation: .close, path: name) }
    }

    /// Releases a handle that was only read from. Nothing was written, so there is nothing
    /// to report; the handle must not be used afterwards.
    mutating func closeAfterReading() {
        if let database { _ = database.pointee.close(database, 0) }
        if let environment { _ = environment.pointee.close(environment, 0) }
        database = nil
        environment = nil
    }

    deinit {
        // Only reached when the owner did not call close(): an error path that is already
        // being reported. Release the handles; a close error here has nobody to go to.
        if let database { _ = database.pointee.close(database, 0) }
        if let environment { _ = environment.pointee.close(environment, 0) }
    }
}

/// A cursor on a btree table that stores keys larger than every key stored so far, one
/// after the other: libdb starts each search at the last leaf it wrote to.
struct AppendCursor: ~Copyable {
    private var cursor: UnsafeMutablePointer<DBC>?
    let path: String

    fileprivate init(cursor: UnsafeMutablePointer<DBC>, path: String) {
        self.cursor = cursor
        self.path = path
    }

    /// Stores `value` under `key`, which must be larger than every key in the table.
    /// The corresponding Berkeley DB call is `DBcursor->put(DB_KEYLAST)`.
    func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(BerkeleyDBError) {
        guard let cursor else { preconditionFailure("Berkeley DB cursor used after close") }
        var k = DBT(borrowing: key)
        var v = DBT(borrowing: value)
        let rc = cursor.pointee.put(cursor, &k, &v, UInt32(DB_KEYLAST))
        guard rc == 0 else { throw BerkeleyDBError(code: rc, operation: .put, path: path) }
    }

    /// The corresponding Berkeley DB call is `DBcursor->close`.
    consuming func close() throws(BerkeleyDBError) {
        guard let cursor else { return }
        self.cursor = nil
        let rc = cursor.pointee.close(cursor)
        guard rc == 0 else { throw BerkeleyDBError(code: rc, operation: .cursor, path: path) }
    }

    deinit {
        if let cursor { _ = cursor.pointee.close(cursor) }
    }
}

private func bytes(of dbt: DBT) -> [UInt8] {
    guard let data = dbt.data, dbt.size > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: data, count: Int(dbt.size)))
}

/// Set once libdb has reported a failed write: its later messages are all consequences.
nonisolated(unsafe) private var libraryWriteFailed = false

/// Sizes the memory pool as Postfix does: only grow it, and only below 1 GB.
private func configureCache(_ env: UnsafeMutablePointer<DB_ENV>, size: Int) {
    var gbytes: UInt32 = 0
    var bytes: UInt32 = 0
    var ncache: Int32 = 0
    guard env.pointee.get_cachesize(env, &gbytes, &bytes, &ncache) == 0 else { return }
    guard gbytes == 0, Int(bytes) < size, size < 1 << 30 else { return }
    _ = env.pointee.set_cache_max(env, 0, UInt32(size))
    _ = env.pointee.set_cachesize(env, 0, UInt32(size), ncache)
}

/// Splits `a/b/c.db` into (`a/b`, `c.db`); a bare name lives in `.`.
func splitPath(_ path: String) -> (directory: String, file: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
}

/// The Berkeley DB library this program runs with.
public enum BerkeleyDBLibrary {
    /// libdb's own version string (`Berkeley DB 5.3.28: (September  9, 2013)`).
    public static var version: String {
        guard let text = db_version(nil, nil, nil) else { return "Berkeley DB (unknown version)" }
        return String(cString: text)
    }
}

extension DBT {
    /// A `DBT` that points at `bytes` (libdb only reads through it on a put).
    fileprivate init(borrowing bytes: UnsafeRawBufferPointer) {
        self.init()
        data = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
        size = UInt32(bytes.count)
    }
}
