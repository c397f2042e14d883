import CTinyCDB
import Glibc

/// A failed tinycdb call: the `errno` it left, the operation and the table file.
struct CDBError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The tinycdb call that failed.
    enum Operation: String, Sendable {
        case open = "open database"
        case put = "write"
        case get = "query"
        case cursor = "sequence"
        case finish = "finish"
    }

    let code: Int32
    let operation: Operation
    let path: String

    /// The C library's text for ``code`` (`Invalid argument`).
    var reason: String { systemErrorText(code == 0 ? EPROTO : code) }

    var description: String { "\(operation.rawValue) \(path): \(reason)" }
}

/// What a cdb writer does with a key it has already written (tinycdb's put modes).
enum CDBPutMode {
    /// Keep the first record (`CDB_PUT_INSERT`): the duplicate is reported.
    case keepFirst
    /// Replace the earlier record (`CDB_PUT_REPLACE`).
    case replace
    /// Add the record anyway (`CDB_PUT_ADD`): lookups find the first.
    case add
}

/// The one owner of a cdb file being written: its descriptor and tinycdb's writer state
/// (`struct cdb_make`).
///
/// ``finish()`` writes the index, syncs and closes the file, reporting any error; `deinit`
/// only runs on paths that already failed, where the file is about to be removed.
struct CDBMaker: ~Copyable {
    private let state: UnsafeMutablePointer<cdb_make>
    private let descriptor: Int32
    private var finished = false
    let path: String

    /// Starts the cdb file `path` (created with `mode` if needed, emptied; the caller holds
    /// the file's lock through a descriptor of its own).
    init(path: String, mode: mode_t) throws(CDBError) {
        // Read and write: tinycdb reads records back to find duplicates.
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0, ftruncate(fd, 0) == 0 else {
            let code = errno
            if fd >= 0 { Glibc.close(fd) }
            throw CDBError(code: code, operation: .open, path: path)
        }
        let made = UnsafeMutablePointer<cdb_make>.allocate(capacity: 1)
        made.initialize(to: cdb_make())
        guard cdb_make_start(made, fd) == 0 else {
            let code = errno
            made.deallocate()
            Glibc.close(fd)
            throw CDBError(code: code, operation: .open, path: path)
        }
        self.path = path
        state = made
        descriptor = fd
    }

    /// Writes one record. Returns `.keyExists` when the key was written before (for
    /// ``CDBPutMode/keepFirst`` the new record is then dropped).
    func put(
        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, mode: CDBPutMode
    )
        throws(CDBError) -> PutOutcome
    {
        let putMode: cdb_put_mode
        switch mode {
        case .keepFirst: putMode = CDB_PUT_INSERT
        case .replace: putMode = CDB_PUT_REPLACE
        case .add: putMode = CDB_PUT_WARN
        }
        let rc = ReadProgress.counting {
            cdb_make_put(
                state, key.baseAddress, UInt32(clamping: key.count), value.baseAddress,
                UInt32(clamping: value.count), putMode)
        }
        guard rc >= 0 else { throw CDBError(code: errno, operation: .put, path: path) }
        return rc == 0 ? .stored : .keyExists
    }

    /// Writes the index and the buffered records, then syncs and closes the file; an error
    /// means the file is not complete on disk.
    consuming func finish() throws(CDBError) {
        finished = true
        var rc = cdb_make_finish(state)
        var code = errno
        if rc == 0, fsync(descriptor) != 0 {
            rc = -1
            code = errno
        }
        if Glibc.close(descriptor) != 0, rc == 0 {
            rc = -1
            code = errno
        }
        state.deallocate()
        guard rc == 0 else { throw CDBError(code: code, operation: .finish, path: path) }
    }

    deinit {
        guard !finished else { return }
        // Abandoned (the file is removed next): cdb_make_finish is also what frees tinycdb's
        // record lists, whatever happens to the index it writes.
        _ = cdb_make_finish(state)
        Glibc.close(descriptor)
        state.deallocate()
    }
}

/// The one owner of a cdb file opened for reading (tinycdb's `struct cdb`, which maps the
/// file). The descriptor belongs to the caller and must stay open while this value lives.
final class CDBReader {
    private let state: UnsafeMutablePointer<cdb>
    let path: String

    /// Maps the cdb file open on `descriptor`.
    ///
    /// - Throws: ``CDBError`` (`EPROTO` for a file that is not a cdb file).
    init(descriptor: Int32, path: String) throws(CDBError) {
        // Every property is set only once tinycdb has mapped the file: a throw before that
        // does not run deinit (which would free the state a second time).
        let mapped = UnsafeMutablePointer<cdb>.allocate(capacity: 1)
        mapped.initialize(to: cdb())
        guard cdb_init(mapped, descriptor) == 0 else {
            let code = errno
            mapped.deallocate()
            throw CDBError(code: code, operation: .open, path: path)
        }
        self.path = path
        state = mapped
    }

    /// The value of the first record with `key`, or `nil`.
    func get(key: [UInt8]) throws(CDBError) -> [UInt8]? {
        let rc = key.withUnsafeBytes { cdb_find(state, $0.baseAddress, UInt32(clamping: $0.count)) }
        if rc == 0 { return nil }
        guard rc > 0 else { throw CDBError(code: errno, operation: .get, path: path) }
        return bytes(length: state.pointee.cdb_vlen, at: state.pointee.cdb_vpos)
    }

    /// Calls `body` with every record in file order until it returns `false`.
    func forEachRecord(_ body: (_ key: [UInt8], _ value: [UInt8]) -> Bool) throws(CDBError) {
        var position: UInt32 = 2048  // the records start after the 256 table pointers
        while true {
            let rc = ReadProgress.counting { cdb_seqnext(&position, state) }
            if rc == 0 { return }
            guard rc > 0 else { throw CDBError(code: errno, operation: .cursor, path: path) }
            let key = bytes(length: state.pointee.cdb_klen, at: state.pointee.cdb_kpos)
            let value = bytes(length: state.pointee.cdb_vlen, at: state.pointee.cdb_vpos)
            guard let key, let value else { throw CDBError(code: EPROTO, operation: .cursor, path: path) }
            guard body(key, value) else { return }
        }
    }

    /// `length` bytes of the mapped file from `position` (tinycdb checks the bounds).
    private func bytes(length: UInt32, at position: UInt32) -> [UInt8]? {
        if length == 0 { return [] }
        guard let start = cdb_get(state, length, position) else { return nil }
        return Array(UnsafeRawBufferPointer(start: start, count: Int(length)))
    }

    deinit {
        cdb_free(state)
        state.deallocate()
    }
}
