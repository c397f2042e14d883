import Glibc

/// Reading and writing files whole: every loop that retries after `EINTR` and goes on after
/// a short read or write is here, once.

/// Reads a whole file; the error is the `errno` of the failing call.
func readWholeFile(_ path: String) -> Result<[UInt8], SystemErrno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(SystemErrno(errno)) }
    defer { close(fd) }
    return readAll(fd: fd)
}

/// Reads a descriptor to its end; a directory reads as empty, as it does for postmap.
func readAll(fd: Int32) -> Result<[UInt8], SystemErrno> {
    var info = stat()
    var capacity = 65536
    if fstat(fd, &info) == 0 {
        if (info.st_mode & S_IFMT) == S_IFDIR { return .success([]) }
        if info.st_size > 0 { capacity = Int(info.st_size) + 1 }
    }
    var bytes = [UInt8](repeating: 0, count: capacity)
    var used = 0
    while true {
        if used == bytes.count { bytes.append(contentsOf: repeatElement(0, count: bytes.count)) }
        let n = bytes.withUnsafeMutableBytes { buffer in
            read(fd, buffer.baseAddress.map { $0 + used }, buffer.count - used)
        }
        if n < 0 {
            if errno == EINTR { continue }
            if errno == EISDIR { return .success([]) }
            return .failure(SystemErrno(errno))
        }
        if n == 0 { break }
        used += n
    }
    bytes.removeSubrange(used...)
    return .success(bytes)
}

/// Writes all of `bytes` at `offset` (`pwrite`, so the file position stays where it is).
///
/// - Returns: `nil`, or the `errno` of the failing write.
func writeFully(_ fd: Int32, _ bytes: [UInt8], at offset: Int) -> SystemErrno? {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { raw in
            pwrite(fd, raw.baseAddress.map { $0 + done }, raw.count - done, off_t(offset + done))
        }
        if n < 0 {
            if errno == EINTR { continue }
            return SystemErrno(errno)
        }
        done += n
    }
    return nil
}

/// Reads into `buffer` from `offset` (`pread`) until it is full or the file ends.
///
/// - Returns: how many bytes were read, or the `errno` of the failing read.
func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Result<Int, SystemErrno> {
    guard let base = buffer.baseAddress else { return .success(0) }
    var done = 0
    while done < buffer.count {
        let n = pread(fd, base + done, buffer.count - done, off_t(offset + done))
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(SystemErrno(errno))
        }
        if n == 0 { break }
        done += n
    }
    return .success(done)
}

/// ``readFully(_:into:at:)`` into an array.
func readFully(_ fd: Int32, into buffer: inout [UInt8], at offset: Int) -> Result<Int, SystemErrno> {
    buffer.withUnsafeMutableBytes { readFully(fd, into: $0, at: offset) }
}
