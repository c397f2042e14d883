import Glibc

/// `--verify --bytes`: is a table the very file a reproducible build of its source writes?

/// Builds `request` reproducibly in a scratch directory of its own and compares the result
/// with the table file at `tablePath`, byte for byte. The request's own name only tells the
/// table type's suffix; its warnings are not given again (the comparison of records gave
/// them).
///
/// - Returns: `nil` when the files are the same bytes, else the offset of the first byte
///   that differs (or where the shorter file ends).
public func firstDifferenceFromReproducibleBuild(
    _ request: BuildRequest, tablePath: String
) throws(FatalError)
    -> Int?
{
    let directory = try ScratchDirectory()
    defer { directory.remove() }
    var build = request
    build.name = directory.path + "/table"
    build.reproducible = true
    // The table is the caller's in the scratch directory (no switch to the source's owner).
    build.keepCallerOwnership = true
    _ = try buildTable(build, warn: { _ in })
    return try firstDifference(tablePath, build.name + request.table.fileSuffix)
}

/// The offset of the first byte in which the files at `first` and `second` differ, `nil`
/// when they are the same.
private func firstDifference(_ first: String, _ second: String) throws(FatalError) -> Int? {
    let a = open(first, O_RDONLY | O_CLOEXEC)
    guard a >= 0 else { throw FatalError("open \(first): \(systemErrorText(errno))") }
    defer { close(a) }
    let b = open(second, O_RDONLY | O_CLOEXEC)
    guard b >= 0 else { throw FatalError("open \(second): \(systemErrorText(errno))") }
    defer { close(b) }
    var offset = 0
    var left = [UInt8](repeating: 0, count: 1 << 16)
    var right = [UInt8](repeating: 0, count: 1 << 16)
    func read(_ fd: Int32, into buffer: inout [UInt8], path: String) throws(FatalError) -> Int {
        switch readFully(fd, into: &buffer, at: offset) {
        case .success(let count): return count
        case .failure(let error): throw FatalError("read \(path): \(error.text)")
        }
    }
    while true {
        let n = try read(a, into: &left, path: first)
        let m = try read(b, into: &right, path: second)
        let common = min(n, m)
        if let index = (0..<common).first(where: { left[$0] != right[$0] }) { return offset + index }
        if n != m { return offset + common }
        if n == 0 { return nil }
        offset += n
    }
}

/// A private directory under `$TMPDIR` (or /tmp), removed with everything in it.
private struct ScratchDirectory {
    let path: String

    init() throws(FatalError) {
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/swiftpostmap-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        guard made != nil else { throw FatalError("create a directory in \(base): \(systemErrorText(errno))") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Removes the files in the directory, then the directory.
    func remove() {
        if let listing = opendir(path) {
            while let entry = readdir(listing) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(listing)
        }
        rmdir(path)
    }
}
