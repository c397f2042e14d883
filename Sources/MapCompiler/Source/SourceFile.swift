import Glibc

/// Opens the source file of a build (or of an in-memory compile) for reading.
///
/// A source must be a regular file. postmap opens whatever the name points at: it waits
/// forever for a writer on a FIFO, compiles a directory or `/dev/null` into an empty table,
/// and reads a terminal or `/dev/zero` until it is stopped. None of these is a map anybody
/// keeps in git, and an empty table replacing a real one bounces mail, so they are refused
/// before anything is written. The open itself does not block (`O_NONBLOCK`, dropped again
/// once the file is known to be regular) and never makes a terminal the controlling one.
///
/// - Returns: the descriptor; the caller closes it.
/// - Throws: `open PATH: REASON` when the file cannot be opened, or is not a regular file.
func openSourceFile(_ path: String) throws(FatalError) -> Int32 {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
    guard fd >= 0 else { throw FatalError("open \(path): \(systemErrorText(errno))") }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
        let code = errno
        close(fd)
        throw FatalError("open \(path): \(systemErrorText(code))")
    }
    if let kind = nonRegularFileKind(info.st_mode) {
        close(fd)
        throw FatalError("open \(path): not a regular file but \(kind); a source must be a regular file")
    }
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    return fd
}

/// What a file of `mode` is, when it is not a regular file (`a FIFO`, `a directory`, …).
func nonRegularFileKind(_ mode: mode_t) -> String? {
    switch mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFIFO: return "a FIFO"
    case S_IFDIR: return "a directory"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    default: return "a special file"
    }
}
