import Glibc

/// Locking, signal deferral and atomic replacement of table files.
///
/// Postfix serialises writers and readers of a table with `flock()`: a writer holds an
/// exclusive lock on `NAME.db`, a reader a shared one around each access. swiftpostmap takes
/// the same locks, so it waits for (and is waited for by) a running postmap or Postfix
/// daemon. Unlike postmap, it never rewrites a table in place: the new table is written to a
/// temporary file in the same directory, flushed, synced and renamed over the old one, so a
/// reader sees either the old table or the new one, never a partial one, and a failed build
/// leaves the old table as it was. Postfix daemons notice the replacement (the old file's
/// link count drops to zero) and reopen the table.

/// An open descriptor with a lock on it (a `flock()`, or for lmdb tables an `fcntl()`
/// record lock over the whole file, as Postfix takes them); the lock goes away with the
/// descriptor.
final class FileLock {
    let descriptor: Int32
    let style: FileLockStyle

    private init(descriptor: Int32, style: FileLockStyle) {
        self.descriptor = descriptor
        self.style = style
    }

    /// Opens `path` and locks it, waiting for other holders.
    ///
    /// - Returns: `nil` when the file does not exist.
    /// - Throws: the `errno` of the failing `open` or lock, with the step that failed.
    static func acquire(
        path: String, exclusive: Bool, writable: Bool, style: FileLockStyle = .flock
    )
        throws(FileLockError) -> FileLock?
    {
        while true {
            // Readers follow a symbolic link as Postfix does; writers refuse one (see
            // replaceTableAtomically), so O_NOFOLLOW only for them.
            let fd = open(path, (writable ? O_RDWR | O_NOFOLLOW : O_RDONLY) | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { return nil }
                throw FileLockError(step: errno == ELOOP ? .symlink : .open, code: errno)
            }
            while !lockFile(fd, style: style, exclusive ? .exclusive : .shared) {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                throw FileLockError(step: .lock, code: code)
            }
            // A writer that waited may now hold the lock of a table another swiftpostmap has
            // just replaced: lock the file that is at `path` now, or every writer would
            // build from (and then replace) its own stale copy.
            var locked = stat()
            var current = stat()
            if !exclusive || fstat(fd, &locked) != 0 || lstat(path, &current) != 0
                || (locked.st_ino == current.st_ino && locked.st_dev == current.st_dev)
            {
                return FileLock(descriptor: fd, style: style)
            }
            close(fd)
        }
    }

    /// Takes the shared lock again around one access (a lookup or a cursor step).
    func withSharedLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        while !lockFile(descriptor, style: style, .shared) && errno == EINTR {}
        defer { _ = lockFile(descriptor, style: style, .unlocked) }
        return try body()
    }

    func unlock() { _ = lockFile(descriptor, style: style, .unlocked) }

    deinit { close(descriptor) }
}

/// The state ``lockFile(_:style:_:)`` puts a lock in.
enum LockState {
    case shared
    case exclusive
    case unlocked
}

/// Locks or unlocks the whole file open on `descriptor`, waiting for other holders.
/// - Returns: `false` when the call failed (`errno` says why; `EINTR`: try again).
func lockFile(_ descriptor: Int32, style: FileLockStyle, _ state: LockState) -> Bool {
    switch style {
    case .flock:
        let operation: Int32
        switch state {
        case .shared: operation = LOCK_SH
        case .exclusive: operation = LOCK_EX
        case .unlocked: operation = LOCK_UN
        }
        return flock(descriptor, operation) == 0
    case .fcntl:
        var request = flock()
        switch state {
        case .shared: request.l_type = Int16(F_RDLCK)
        case .exclusive: request.l_type = Int16(F_WRLCK)
        case .unlocked: request.l_type = Int16(F_UNLCK)
        }
        request.l_whence = Int16(SEEK_SET)
        return fcntl(descriptor, F_SETLKW, &request) == 0
    }
}

struct FileLockError: Error {
    enum Step { case open, lock, symlink }
    let step: Step
    let code: Int32
}

/// Holds the signals that would end the process (SIGINT, SIGTERM, SIGHUP, SIGQUIT, …)
/// while a table is being replaced, so an interrupt arrives only after the temporary file
/// is gone or renamed. Restores the previous mask when `body` returns.
func withTerminationSignalsDeferred<T>(_ body: () throws(FatalError) -> T) throws(FatalError) -> T {
    var all = sigset_t()
    var previous = sigset_t()
    sigfillset(&all)
    sigprocmask(SIG_BLOCK, &all, &previous)
    defer { sigprocmask(SIG_SETMASK, &previous, nil) }
    return try body()
}

/// The permission bits postmap gives a new table: the owner can read and write, group and
/// others may read when they may read the source; nothing else carries over.
func newTableMode(sourceMode: mode_t?) -> mode_t {
    guard let mode = sourceMode else { return 0o644 }
    return 0o644 & ~(0o022 | (~mode & 0o077))
}

/// File attributes a replacement table is given.
struct TableFileAttributes {
    var mode: mode_t
    var owner: (uid: uid_t, gid: gid_t)?
}

/// The refusal of a writer (build, `-i`, `-d`) to open a table through a symbolic link.
func symbolicLinkRefusal(_ tablePath: String) -> FatalError {
    FatalError("\(tablePath) is a symbolic link: not writing through it; name the real table instead")
}

/// Writes a table through a temporary file and renames it into place.
///
/// - Parameters:
///   - tablePath: the final `NAME.db`.
///   - copyExisting: start from a copy of the current table (incremental updates and
///     deletes) instead of an empty file.
///   - attributes: mode and owner for a table that does not exist yet; an existing table's
///     mode and owner are kept.
///   - openFailureLabel: how Postfix words a table it cannot open for writing (`open` for
///     Berkeley DB, `open database` for lmdb).
///   - body: writes the table at the temporary path it is given. When `copyExisting` is set
///     and no table exists, the path does not exist yet either.
/// - Returns: whatever `body` returns.
func replaceTableAtomically<T>(
    tablePath: String, lockStyle: FileLockStyle = .flock, openFailureLabel: String = "open", copyExisting: Bool,
    attributes: TableFileAttributes,
    warn: (Diagnostic) -> Void,
    body: (_ temporaryPath: String, _ existed: Bool) throws(FatalError) -> (result: T, commit: Bool)
) throws(FatalError) -> T {
    // Serialise with other writers (and postmap) on the current table, as postmap does.
    let lock: FileLock?
    do {
        lock = try FileLock.acquire(path: tablePath, exclusive: true, writable: true, style: lockStyle)
    } catch {
        switch error.step {
        case .open: throw FatalError("\(openFailureLabel) \(tablePath): \(systemErrorText(error.code))")
        case .lock: throw FatalError("lock \(tablePath): \(systemErrorText(error.code))")
        case .symlink:
            // Writing through a link planted at the table's path is how a root-run build is
            // tricked into replacing another file; replacing the link would lose the table.
            throw symbolicLinkRefusal(tablePath)
        }
    }
    var existing = stat()
    var exists = false
    if let lock {
        if fstat(lock.descriptor, &existing) == 0 {
            exists = true
            if existing.st_size == 0 {
                warn(Diagnostic(.warning, "removing zero-length database file: \(tablePath)"))
                if unlink(tablePath) != 0 {
                    throw FatalError(
                        "cannot remove zero-length database file \(tablePath): \(systemErrorText(errno))")
                }
                exists = false
            }
        }
    }
    if lock != nil { removeAbandonedTemporaries(of: tablePath) }
    // When the directory cannot take a new file (a root caller working as the source's
    // owner, say) but the table itself is writable, postmap still succeeds, rewriting the
    // table in place. Then the new table is built in a private scratch directory and copied
    // over the old one's contents while the exclusive lock is held.
    let directory = directoryName(of: tablePath)
    var scratchDirectory: String? = nil
    if lock != nil, exists, faccessat(AT_FDCWD, directory, W_OK, AT_EACCESS) != 0 {
        scratchDirectory = try makeScratchDirectory()
    }
    let temporaryPath =
        scratchDirectory.map { $0 + "/" + (tablePath.split(separator: "/").last.map(String.init) ?? "table.db") }
        ?? temporaryName(for: tablePath)
    return try withTerminationSignalsDeferred { () throws(FatalError) -> T in
        // Removed while signals are still held, so an interrupt cannot leave it behind.
        defer { if let scratchDirectory { rmdir(scratchDirectory) } }
        var copied = false
        if copyExisting && exists, let lock {
            do throws(FatalError) {
                try copyFile(
                    from: tablePath, lock: lock, to: temporaryPath, mode: existing.st_mode & 0o7777, table: tablePath)
                copied = true
            } catch {
                discardTemporaryTable(temporaryPath)
                throw error
            }
        }
        let result: T
        do throws(FatalError) {
            let (value, commit) = try body(temporaryPath, copied)
            result = value
            guard commit else {
                discardTemporaryTable(temporaryPath)
                return result
            }
            var final = attributes
            if exists {
                final = TableFileAttributes(mode: existing.st_mode & 0o7777, owner: (existing.st_uid, existing.st_gid))
            }
            if let lock, scratchDirectory != nil {
                try overwrite(descriptor: lock.descriptor, tablePath: tablePath, with: temporaryPath)
                unlink(temporaryPath)
            } else if let lock, !(try finish(temporaryPath: temporaryPath, tablePath: tablePath, attributes: final)) {
                // The directory refused the rename (a sticky directory and a table owned by
                // someone else): rewrite the locked table in place, as postmap would. The
                // temporary file may have been given to the table's owner already.
                try overwrite(descriptor: lock.descriptor, tablePath: tablePath, with: temporaryPath)
                _ = withRootEffectiveUser { unlink(temporaryPath) == 0 }
            } else if lock == nil {
                guard try finish(temporaryPath: temporaryPath, tablePath: tablePath, attributes: final) else {
                    throw FatalError("rename \(temporaryPath) to \(tablePath): \(systemErrorText(EPERM))")
                }
            }
        } catch {
            discardTemporaryTable(temporaryPath)
            throw error
        }
        _ = lock
        return result
    }
}

/// Writes a cdb table the way postmap does: into `NAME.cdb.tmp`, created if needed and
/// exclusively `flock`ed (so writers of one table, postmap's included, take turns), emptied,
/// written by `body`, synced, and renamed over `NAME.cdb`. The existing table is neither
/// opened nor locked: the new one is a new file (a new table's mode, the caller's owner),
/// and the directory must let the caller create it, as for postmap. On failure the
/// temporary file is removed and the old table is untouched.
func replaceCDBTable<T>(
    tablePath: String, mode: mode_t, body: (_ temporaryPath: String) throws(FatalError) -> T
) throws(FatalError) -> T {
    let temporaryPath = tablePath + ".tmp"
    var descriptor: Int32 = -1
    while descriptor < 0 {
        let fd = open(temporaryPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == ELOOP { throw symbolicLinkRefusal(temporaryPath) }
            throw FatalError("open database \(temporaryPath): \(systemErrorText(errno))")
        }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let code = errno
                close(fd)
                throw FatalError("lock \(temporaryPath): \(systemErrorText(code))")
            }
        }
        // Another writer may have renamed (or removed) the file while this one waited.
        var locked = stat()
        var current = stat()
        if fstat(fd, &locked) == 0, lstat(temporaryPath, &current) == 0, locked.st_ino == current.st_ino,
            locked.st_dev == current.st_dev
        {
            descriptor = fd
        } else {
            close(fd)
        }
    }
    defer { close(descriptor) }
    return try withTerminationSignalsDeferred { () throws(FatalError) -> T in
        do throws(FatalError) {
            guard ftruncate(descriptor, 0) == 0, fchmod(descriptor, mode) == 0 else {
                throw FatalError("open database \(temporaryPath): \(systemErrorText(errno))")
            }
            let result = try body(temporaryPath)
            if fsync(descriptor) != 0 {
                throw FatalError("error writing \(temporaryPath): \(systemErrorText(errno))")
            }
            if rename(temporaryPath, tablePath) != 0 {
                throw FatalError("rename \(temporaryPath) to \(tablePath): \(systemErrorText(errno))")
            }
            let dfd = open(directoryName(of: tablePath), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                _ = fsync(dfd)
                close(dfd)
            }
            return result
        } catch {
            unlink(temporaryPath)
            throw error
        }
    }
}

/// A fresh private directory under `$TMPDIR` (or `/tmp`).
private func makeScratchDirectory() throws(FatalError) -> String {
    let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array("\(base)/swiftpostmap.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
        throw FatalError("create temporary directory in \(base): \(systemErrorText(errno))")
    }
    return String(cString: made)
}

/// Replaces the contents of the locked table file with the finished table at `source`
/// (used only when the table's directory does not allow a rename).
private func overwrite(descriptor: Int32, tablePath: String, with source: String) throws(FatalError) {
    let bytes: [UInt8]
    switch readWholeFile(source) {
    case .success(let content): bytes = content
    case .failure(let error): throw FatalError("open \(source): \(error.text)")
    }
    guard ftruncate(descriptor, 0) == 0 else {
        throw FatalError("error writing \(tablePath): \(systemErrorText(errno))")
    }
    if let error = writeFully(descriptor, bytes, at: 0) {
        throw FatalError("error writing \(tablePath): \(error.text)")
    }
    guard fsync(descriptor) == 0 else { throw FatalError("error writing \(tablePath): \(systemErrorText(errno))") }
}

/// Gives the temporary file its final mode and owner, syncs it, renames it over the table
/// and syncs the directory.
///
/// - Returns: `false` when the directory refused the rename (`EPERM`/`EACCES`, e.g. a sticky
///   directory and a table owned by someone else); the table is then unchanged.
private func finish(
    temporaryPath: String, tablePath: String, attributes: TableFileAttributes
) throws(FatalError)
    -> Bool
{
    let fd = open(temporaryPath, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
    guard fd >= 0 else { throw FatalError("open \(temporaryPath): \(systemErrorText(errno))") }
    defer { close(fd) }
    // Mode first, while the file is still ours; then the owner.
    if fchmod(fd, attributes.mode) != 0 {
        throw FatalError("change mode of \(tablePath): \(systemErrorText(errno))")
    }
    if let owner = attributes.owner {
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid != owner.uid || info.st_gid != owner.gid {
            // A root caller works as the source's owner here; giving the table back to its
            // previous owner needs root again.
            let changed = withRootEffectiveUser { fchown(fd, owner.uid, owner.gid) == 0 }
            if !changed && (geteuid() == 0 || getuid() == 0) {
                throw FatalError("change owner of \(tablePath): \(systemErrorText(errno))")
            }
        }
    }
    if fsync(fd) != 0 { throw FatalError("error writing \(tablePath): \(systemErrorText(errno))") }
    if rename(temporaryPath, tablePath) != 0 {
        if errno == EPERM || errno == EACCES { return false }
        throw FatalError("rename \(temporaryPath) to \(tablePath): \(systemErrorText(errno))")
    }
    let directory = directoryName(of: tablePath)
    let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
        _ = fsync(dfd)
        close(dfd)
    }
    return true
}

/// Runs `body` with effective user id 0 when the real user is root but the effective one is
/// not (during a build for a source's owner), then switches back.
private func withRootEffectiveUser(_ body: () -> Bool) -> Bool {
    let saved = geteuid()
    guard getuid() == 0, saved != 0, seteuid(0) == 0 else { return body() }
    defer { _ = seteuid(saved) }
    return body()
}

/// Copies the table at `source` to `destination`; messages name the table (`table`).
///
/// It reads through `lock`'s descriptor: closing any other descriptor of the table would
/// release the process's `fcntl` locks on it (lmdb tables).
private func copyFile(
    from source: String, lock: FileLock, to destination: String, mode: mode_t, table: String
)
    throws(FatalError)
{
    let input = lock.descriptor
    let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard output >= 0 else { throw FatalError("open database \(table): \(systemErrorText(errno))") }
    defer { close(output) }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var offset: off_t = 0
    while true {
        let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, $0.count, offset) }
        if n > 0 { offset += off_t(n) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FatalError("read \(source): \(systemErrorText(errno))")
        }
        if n == 0 { break }
        var written = 0
        while written < n {
            let w = buffer.withUnsafeBytes { write(output, $0.baseAddress.map { $0 + written }, n - written) }
            if w < 0 {
                if errno == EINTR { continue }
                throw FatalError("error writing \(table): \(systemErrorText(errno))")
            }
            written += w
        }
    }
}

/// `dir/.NAME.db.swiftpostmap-PID-RANDOM` next to the table.
private func temporaryName(for tablePath: String) -> String {
    let directory = directoryName(of: tablePath)
    let base = tablePath.split(separator: "/").last.map(String.init) ?? tablePath
    let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    let name = temporaryPrefix(for: base) + "\(getpid())-\(suffix)"
    return directory == "." && !tablePath.hasPrefix("./") ? name : "\(directory)/\(name)"
}

func directoryName(of path: String) -> String { splitPath(path).directory }

/// The prefix of a temporary table's name: `.NAME.db.swiftpostmap-` (then `PID-RANDOM`).
private func temporaryPrefix(for base: String) -> String { ".\(base).swiftpostmap-" }

/// libdb creates a new file as `__db.` + its name in the same directory and renames it
/// once it is set up; a failure in between (a full disk, a file-size limit) leaves it.
private func libdbCreationName(of path: String) -> String {
    let (directory, file) = splitPath(path)
    return directory == "." && !path.hasPrefix("./") ? "__db." + file : "\(directory)/__db.\(file)"
}

/// Removes a temporary table, and libdb's creation name for it.
private func discardTemporaryTable(_ path: String) {
    _ = withRootEffectiveUser { unlink(path) == 0 }
    _ = withRootEffectiveUser { unlink(libdbCreationName(of: path)) == 0 }
}

/// Removes the temporary tables that builds of `tablePath` killed before they finished left
/// in its directory (`.NAME.db.swiftpostmap-PID-…`, and libdb's `__db.` names for them),
/// when no process `PID` exists. Called with the table's exclusive lock held, which every
/// live writer of an existing table holds until its rename.
///
/// - Returns: the names removed.
@discardableResult
func removeAbandonedTemporaries(of tablePath: String) -> [String] {
    let (directory, base) = splitPath(tablePath)
    guard let stream = opendir(directory) else { return [] }
    defer { closedir(stream) }
    let prefix = temporaryPrefix(for: base)
    var removed: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let own = name.hasPrefix("__db.") ? String(name.dropFirst(5)) : name
        guard own.hasPrefix(prefix) else { continue }
        let fields = own.dropFirst(prefix.count).split(separator: "-")
        guard fields.count == 2, let pid = Int32(fields[0]), pid > 0, pid != getpid() else { continue }
        guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
        let path = directory == "." && !tablePath.hasPrefix("./") ? name : "\(directory)/\(name)"
        var info = stat()
        // Only regular files: never follow or remove anything else planted under that name.
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
        if withRootEffectiveUser({ unlink(path) == 0 }) { removed.append(name) }
    }
    return removed
}

/// The effective user and group a root process works as while it writes a table for the
/// source file's owner (postmap's rule: a root caller builds a table as the owner of its
/// source, unless `-o`). ``restore()`` returns to the previous identity.
struct EffectiveIdentity {
    private let uid: uid_t
    private let gid: gid_t
    private let groups: [gid_t]

    /// Switches the effective group to `gid` (with `gid` as the only supplementary group)
    /// and, when it differs, the effective user to `uid`.
    static func switchTo(uid: uid_t, gid: gid_t) throws(FatalError) -> EffectiveIdentity {
        let count = getgroups(0, nil)
        var groups = [gid_t](repeating: 0, count: Int(max(count, 0)))
        if count > 0 { _ = getgroups(count, &groups) }
        let saved = EffectiveIdentity(uid: geteuid(), gid: getegid(), groups: groups)
        var single = [gid]
        guard setgroups(1, &single) == 0, setegid(gid) == 0 else {
            throw FatalError("set_eugid: \(systemErrorText(errno))")
        }
        if uid != saved.uid, seteuid(uid) != 0 {
            throw FatalError("set_eugid: \(systemErrorText(errno))")
        }
        return saved
    }

    /// Back to the identity that was current before ``switchTo(uid:gid:)``.
    func restore() {
        _ = seteuid(uid)
        _ = setegid(gid)
        var list = groups
        _ = setgroups(list.count, &list)
    }
}
