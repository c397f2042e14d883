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
/// - Returns: the descriptor (the caller closes it), or why there is none.
func openSourceFile(_ path: String) -> Result<Int32, SourceOpenFailure> {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
    guard fd >= 0 else { return .failure(.system(errno)) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
        let code = errno
        close(fd)
        return .failure(.system(code))
    }
    if let kind = nonRegularFileKind(info.st_mode) {
        close(fd)
        return .failure(.notRegular(kind))
    }
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    return .success(fd)
}

/// Why a source could not be opened; each caller puts the reason in its own message.
enum SourceOpenFailure: Error {
    /// open(2) or fstat(2) failed with this errno.
    case system(Int32)
    /// The file is a FIFO, a directory, a device…
    case notRegular(String)

    /// `No such file or directory`, or `not a regular file but a FIFO; …`.
    var reason: String {
        switch self {
        case .system(let code): return systemErrorText(code)
        case .notRegular(let kind): return "not a regular file but \(kind); a source must be a regular file"
        }
    }
}

/// ``openSourceFile(_:)`` for a build: `open PATH: REASON` when it fails.
func openSourceFileOrFail(_ path: String) throws(FatalError) -> Int32 {
    switch openSourceFile(path) {
    case .success(let fd): return fd
    case .failure(let failure): throw FatalError("open \(path): \(failure.reason)")
    }
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
