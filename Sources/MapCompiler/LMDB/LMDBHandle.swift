import CLMDB
import Glibc

/// A failed LMDB call: the return code, the operation and the table file.
///
/// A positive ``code`` is a system `errno`; a negative one is one of LMDB's `MDB_*` codes.
struct LMDBError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The LMDB call that failed.
    enum Operation: String, Sendable {
        case createEnvironment = "create environment"
        case configure = "configure environment"
        case open = "open database"
        case begin = "begin transaction"
        case put = "write"
        case get = "query"
        case delete = "delete"
        case cursor = "sequence"
        case commit = "commit"
    }

    let code: Int32
    let operation: Operation
    let path: String

    /// LMDB's text for ``code`` (the C library's `strerror` text for an `errno`).
    var reason: String {
        guard let text = mdb_strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// The map is full (a writer grows it and carries on; see ``LMDBHandle``).
    var isMapFull: Bool { code == MDB_MAP_FULL }

    var description: String { "\(operation.rawValue) \(path): \(reason)" }
}

/// The one owner of an LMDB environment and its transaction: everything in swiftpostmap that
/// calls into liblmdb goes through this type.
///
/// A table is one file (`MDB_NOSUBDIR`) without LMDB's lock file (`MDB_NOLOCK`), as Postfix
/// opens it; Postfix and swiftpostmap lock the file itself (`fcntl` locks) instead.
///
/// A writer keeps one write transaction open and commits it in steps
/// (`commitStep`), growing the map between steps, so a table of any size fits
/// without starting over; its file is a temporary one that nobody reads until it is
/// complete. ``close()`` commits the last step and reports the error; `deinit` only runs
/// on paths that already failed and abandons the transaction.
struct LMDBHandle: ~Copyable {
    private var environment: OpaquePointer?
    private var transaction: OpaquePointer?
    private var database: MDB_dbi = 0
    let path: String
    let writable: Bool
    /// Bytes put or deleted since the last commit (keys, values and a record's overhead).
    private var pending = 0
    private var mapSize: Int

    /// How a table file is opened.
    enum Intent {
        /// A new (empty, temporary) file, created with `mode`.
        case create(mode: mode_t)
        /// An existing file, for `-i` and `-d` on a copy.
        case update
        /// An existing file, read-only.
        case read
    }

    /// Opens the table file at `path`.
    ///
    /// - Parameters:
    ///   - intent: create, update or read.
    ///   - mapSize: the initial map size (`lmdb_map_size`); a reader's map grows to the file
    ///     by itself, a writer's is doubled as the table grows.
    /// - Throws: ``LMDBError``; the environment is closed again first.
    init(path: String, intent: Intent, mapSize: Int) throws(LMDBError) {
        self.path = path
        var flags = UInt32(MDB_NOSUBDIR) | UInt32(MDB_NOLOCK) | UInt32(MDB_NOTLS)
        var mode: mode_t = 0o644
        switch intent {
        case .create(let requested):
            mode = requested
            flags |= UInt32(MDB_NOSYNC)  // the finished file is fsync'ed before its rename
            writable = true
        case .update:
            flags |= UInt32(MDB_NOSYNC)
            writable = true
        case .read:
            flags |= UInt32(MDB_RDONLY)
            writable = false
        }
        self.mapSize = max(mapSize, 1 << 20)
        var env: OpaquePointer?
        var rc = mdb_env_create(&env)
        guard rc == 0, let env else { throw LMDBError(code: rc, operation: .createEnvironment, path: path) }
        environment = env
        rc = mdb_env_set_mapsize(env, self.mapSize)
        guard rc == 0 else { throw LMDBError(code: rc, operation: .configure, path: path) }
        if case .create = intent {
            // LMDB creates the file itself; it must not exist yet (a temporary path).
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            guard fd >= 0 else { throw LMDBError(code: errno, operation: .open, path: path) }
            Glibc.close(fd)
        }
        rc = mdb_env_open(env, path, flags, mode)
        guard rc == 0 else { throw LMDBError(code: rc, operation: .open, path: path) }
        // An existing file's own map size counts when it is larger than the one asked for;
        // a writer starts with room for a step (see growIfNeeded).
        var info = MDB_envinfo()
        if mdb_env_info(env, &info) == 0 { self.mapSize = info.me_mapsize }
        if writable { try growIfNeeded(adding: 0) }
        try begin()
        rc = mdb_dbi_open(transaction, nil, 0, &database)
        guard rc == 0 else { throw LMDBError(code: rc, operation: .open, path: path) }
    }

    private mutating func begin() throws(LMDBError) {
        var txn: OpaquePointer?
        let rc = mdb_txn_begin(environment, nil, writable ? 0 : UInt32(MDB_RDONLY), &txn)
        guard rc == 0, let txn else { throw LMDBError(code: rc, operation: .begin, path: path) }
        transaction = txn
    }

    /// Stores one record; with `overwrite` false an existing key keeps its value.
    mutating func put(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, overwrite: Bool
    )
        throws(LMDBError) -> PutOutcome
    {
        let size = key.count + value.count + 64
        // A record that would not fit in what is left of the step: commit first, then grow.
        if pending > 0 && pending + size > stepLimit { try commitStep(adding: size) }
        if pending == 0 && size * 4 > mapSize / 2 - usedBytes() { try commitStep(adding: size) }
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_put(transaction, database, &k, &v, overwrite ? 0 : UInt32(MDB_NOOVERWRITE))
        if rc == MDB_KEYEXIST { return .keyExists }
        guard rc == 0 else { throw LMDBError(code: rc, operation: .put, path: path) }
        pending += size
        if pending > stepLimit { try commitStep(adding: 0) }
        return .stored
    }

    /// Deletes `key`; `false` when it is not there.
    mutating func delete(key: [UInt8]) throws(LMDBError) -> Bool {
        let rc = key.withUnsafeBytes { raw -> Int32 in
            var k = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return mdb_del(transaction, database, &k, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        guard rc == 0 else { throw LMDBError(code: rc, operation: .delete, path: path) }
        pending += key.count + 64
        if pending > stepLimit { try commitStep(adding: 0) }
        return true
    }

    /// A writer commits once the transaction holds an eighth of the map (at most 64 MB), and
    /// keeps the committed part under half of the map, doubling it between steps: a step
    /// never needs more than the room that is left, and a transaction never holds more
    /// dirty pages than LMDB allows.
    private var stepLimit: Int { min(mapSize / 8, 64 << 20) }

    /// The bytes of the pages the last commit left in use.
    private func usedBytes() -> Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        guard mdb_env_info(environment, &info) == 0, mdb_env_stat(environment, &stat) == 0 else { return 0 }
        return (info.me_last_pgno &+ 1) &* Int(stat.ms_psize)
    }

    /// Doubles the map (no transaction open) until the pages in use plus four times
    /// `upcoming` bytes fill at most half of it.
    private mutating func growIfNeeded(adding upcoming: Int) throws(LMDBError) {
        let needed = usedBytes() + upcoming * 4
        var size = mapSize
        while needed > size / 2 { size *= 2 }
        guard size != mapSize else { return }
        let rc = mdb_env_set_mapsize(environment, size)
        guard rc == 0 else { throw LMDBError(code: rc, operation: .configure, path: path) }
        mapSize = size
    }

    /// Commits the step, grows the map for what comes next, and begins the next step.
    private mutating func commitStep(adding upcoming: Int) throws(LMDBError) {
        pending = 0
        let rc = mdb_txn_commit(transaction)
        transaction = nil
        guard rc == 0 else { throw LMDBError(code: rc, operation: .commit, path: path) }
        try growIfNeeded(adding: upcoming)
        try begin()
    }

    /// The value stored under `key`, or `nil`. A reader renews its snapshot first, so it
    /// sees what the last writer committed (the caller holds the file's shared lock).
    func get(key: [UInt8]) throws(LMDBError) -> [UInt8]? {
        if !writable {
            mdb_txn_reset(transaction)
            let rc = mdb_txn_renew(transaction)
            guard rc == 0 else { throw LMDBError(code: rc, operation: .begin, path: path) }
        }
        var v = MDB_val()
        let rc = key.withUnsafeBytes { raw -> Int32 in
            var k = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return mdb_get(transaction, database, &k, &v)
        }
        if rc == MDB_NOTFOUND { return nil }
        guard rc == 0 else { throw LMDBError(code: rc, operation: .get, path: path) }
        return bytes(of: v)
    }

    /// Calls `body` with every record in key order until it returns `false`.
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) -> Bool) throws(LMDBError) {
        if !writable {
            mdb_txn_reset(transaction)
            let rc = mdb_txn_renew(transaction)
            guard rc == 0 else { throw LMDBError(code: rc, operation: .begin, path: path) }
        }
        var cursor: OpaquePointer?
        var rc = mdb_cursor_open(transaction, database, &cursor)
        guard rc == 0 else { throw LMDBError(code: rc, operation: .cursor, path: path) }
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        var step = MDB_FIRST
        while true {
            rc = ReadProgress.counting { mdb_cursor_get(cursor, &k, &v, step) }
            if rc == MDB_NOTFOUND { return }
            guard rc == 0 else { throw LMDBError(code: rc, operation: .cursor, path: path) }
            guard body(bytes(of: k), bytes(of: v)) else { return }
            step = MDB_NEXT
        }
    }

    /// Commits a writer's last step and closes the environment; an error means the table
    /// is not complete on disk. A reader's snapshot is simply released.
    consuming func close() throws(LMDBError) {
        let txn = transaction
        let env = environment
        transaction = nil
        environment = nil
        var rc: Int32 = 0
        if writable {
            rc = mdb_txn_commit(txn)
        } else {
            mdb_txn_abort(txn)
        }
        if rc == 0, writable { rc = mdb_env_sync(env, 1) }
        mdb_env_close(env)
        guard rc == 0 else { throw LMDBError(code: rc, operation: .commit, path: path) }
    }

    deinit {
        if let transaction { mdb_txn_abort(transaction) }
        if let environment { mdb_env_close(environment) }
    }
}

private func bytes(of value: MDB_val) -> [UInt8] {
    guard let data = value.mv_data, value.mv_size > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: data, count: value.mv_size))
}

/// The version of liblmdb swiftpostmap is linked with (`--version`).
public enum LMDBLibrary {
    /// `LMDB 0.9.24: (July 24, 2019)`.
    public static var version: String {
        guard let text = mdb_version(nil, nil, nil) else { return "LMDB" }
        return String(cString: text)
    }
}
