import Glibc
import MapCompiler

/// `--verify` and `--diff`: differences between maps (``MapDifference``), printed as
/// `- key value`, `+ key value`, `~ key old → new` lines or as JSON Lines.

extension ExtensionCommands {
    /// The table `NAME.db` must hold exactly what compiling `NAME` now would store.
    func verify(_ operand: String, json: Bool, bytes: Bool = false) throws(FatalError) -> Int32 {
        let map = MapArgument(operand)
        let type = map.type(default: context.defaultType)
        if type == "pgsql" { return try verifyExport(map.name, json: json) }
        guard case .indexed(let table) = MapTypeSupport(type: type) else {
            throw FatalError("unsupported dictionary type: \(type)")
        }
        let tablePath = map.tablePath(for: table)
        guard
            let (expected, changes) = try sourceTableDifferences(
                name: map.name, table: table, format: context.personality == .postalias ? .postalias : .postmap,
                handling: context.handling, duplicates: context.options.duplicates,
                hostname: context.personality == .postalias ? (try context.config.myhostname()) : "localhost",
                warn: context.warn)
        else {
            throw FatalError("open database \(tablePath): \(String(cString: strerror(ENOENT)))")
        }
        // Printed as a diff from the source (what a build would store) to the table.
        if !json && !changes.isEmpty {
            context.output.standardOutput(Array("--- \(map.name) (source)\n+++ \(tablePath) (table)\n".utf8))
        }
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        var sameBytes: ByteComparison? = nil
        if bytes && changes.isEmpty {
            sameBytes = try compareWithReproducibleBuild(map, table: table, typeName: type, tablePath: tablePath)
        }
        if json {
            if let sameBytes {
                var object = JSONObject()
                object.add("table", tablePath)
                object.add("reproducible", sameBytes == .identical)
                if case .differ(let offset) = sameBytes { object.add("first_difference", offset) }
                context.output.standardOutput(object.line)
            }
        } else {
            var verdict =
                changes.isEmpty
                ? "\(tablePath): up to date with \(map.name) (\(expected.records.count) entries)"
                : "\(tablePath): \(changes.count) difference(s) from \(map.name)"
            switch sameBytes {
            case .identical: verdict += ", the bytes of a reproducible build"
            case .differ(let offset):
                verdict += ", but not the bytes of a reproducible build (first difference at byte \(offset))"
            case nil: break
            }
            context.output.standardError(verdict)
        }
        return changes.isEmpty && !(sameBytes?.differs ?? false) ? 0 : 1
    }

    /// Builds `map`'s table as a reproducible build would, in a directory of its own, and
    /// compares it with the table at `tablePath`, byte for byte.
    private func compareWithReproducibleBuild(
        _ map: MapArgument, table: TableType, typeName: String, tablePath: String
    ) throws(FatalError) -> ByteComparison {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        var request = try context.buildRequest(
            table: table, typeName: typeName, name: directory.path + "/table", input: .file(map.name))
        request.reproducible = true
        request.buildTime = try context.reproducibleBuildTime() ?? 0
        // The table is the caller's in the scratch directory (no switch to the source's owner),
        // and the source's warnings were given by the comparison of records already.
        request.keepCallerOwnership = true
        _ = try buildTable(request, warn: { _ in })
        return try compareFiles(tablePath, directory.path + "/table" + table.fileSuffix)
    }

    /// `--verify pgsql:FILE`: the table an `--export` wrote holds what its source (named in
    /// FILE) compiles to now.
    private func verifyExport(_ path: String, json: Bool) throws(FatalError) -> Int32 {
        let configuration = try PgsqlConfiguration.load(path: path)
        guard let source = configuration.exportedSource else {
            throw FatalError("\(path): not written by swiftpostmap --export (no source to verify against)")
        }
        let format: SourceFormat = context.personality == .postalias ? .postalias : .postmap
        let expected = try MapContents.compile(
            source: source, format: format, handling: context.handling, duplicates: context.options.duplicates,
            hostname: format == .postalias ? (try context.config.myhostname()) : "localhost", warn: context.warn)
        let actual = try MapContents.read(pgsql: path, handling: context.handling, warn: context.warn)
        let changes = MapDifference.compute(
            from: expected, to: actual, ignoringKeys: format == .postalias ? ["YP_LAST_MODIFIED"] : [])
        let label = "pgsql:\(path)"
        if !json && !changes.isEmpty {
            context.output.standardOutput(Array("--- \(source) (source)\n+++ \(label) (table)\n".utf8))
        }
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        if !json {
            context.output.standardError(
                changes.isEmpty
                    ? "\(label): up to date with \(source) (\(expected.records.count) entries)"
                    : "\(label): \(changes.count) difference(s) from \(source)")
        }
        return changes.isEmpty ? 0 : 1
    }

    // MARK: --diff

    /// A semantic diff of two maps, each a source or a table.
    func diff(_ first: String, _ second: String, json: Bool) throws(FatalError) -> Int32 {
        let format: SourceFormat = context.personality == .postalias ? .postalias : .postmap
        let left = try MapContents.load(
            MapArgument(first), format: format, handling: context.handling, warn: context.warn)
        let right = try MapContents.load(
            MapArgument(second), format: format, handling: context.handling, warn: context.warn)
        let changes = MapDifference.compute(
            from: left, to: right, ignoringKeys: format == .postalias ? ["YP_LAST_MODIFIED"] : [])
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        return changes.isEmpty ? 0 : 1
    }
}

/// Prints differences as `- key value`, `+ key value`, `~ key old → new`, or as JSON Lines
/// `{"change":"removed|added|changed","key":…,"value":…}` / `{"change":"changed","key":…,"old":…,"new":…}`.
struct DifferencePrinter {
    let json: Bool
    let output: CommandOutput

    mutating func print(_ change: MapDifference) {
        if json {
            var object = JSONObject()
            switch change {
            case .removed(let key, let value):
                object.add("change", "removed")
                object.add("key", key)
                object.add("value", value)
            case .added(let key, let value):
                object.add("change", "added")
                object.add("key", key)
                object.add("value", value)
            case .changed(let key, let old, let new):
                object.add("change", "changed")
                object.add("key", key)
                object.add("old", old)
                object.add("new", new)
            }
            output.standardOutput(object.line)
            return
        }
        var line: [UInt8]
        switch change {
        case .removed(let key, let value):
            line = Array("- ".utf8) + key + [0x20] + value
        case .added(let key, let value):
            line = Array("+ ".utf8) + key + [0x20] + value
        case .changed(let key, let old, let new):
            line = Array("~ ".utf8) + key + [0x20] + old + Array(" → ".utf8) + new
        }
        line.append(0x0A)
        output.standardOutput(line)
    }
}

/// Whether two files hold the same bytes.
enum ByteComparison: Equatable {
    case identical
    /// The offset of the first byte that differs (or where the shorter file ends).
    case differ(at: Int)

    var differs: Bool { self != .identical }
}

/// Compares the files at `first` and `second`, byte for byte.
func compareFiles(_ first: String, _ second: String) throws(FatalError) -> ByteComparison {
    let a = open(first, O_RDONLY | O_CLOEXEC)
    guard a >= 0 else { throw FatalError("open \(first): \(String(cString: strerror(errno)))") }
    defer { close(a) }
    let b = open(second, O_RDONLY | O_CLOEXEC)
    guard b >= 0 else { throw FatalError("open \(second): \(String(cString: strerror(errno)))") }
    defer { close(b) }
    var offset = 0
    var left = [UInt8](repeating: 0, count: 1 << 16)
    var right = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = try readChunk(a, into: &left, path: first)
        let m = try readChunk(b, into: &right, path: second)
        let common = min(n, m)
        for index in 0..<common where left[index] != right[index] { return .differ(at: offset + index) }
        if n != m { return .differ(at: offset + common) }
        if n == 0 { return .identical }
        offset += n
    }
}

/// Fills `buffer` from `fd` as far as the file goes; returns how much was read.
private func readChunk(_ fd: Int32, into buffer: inout [UInt8], path: String) throws(FatalError) -> Int {
    var done = 0
    while done < buffer.count {
        let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress.map { $0 + done }, raw.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FatalError("read \(path): \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        done += n
    }
    return done
}

/// A private directory under `$TMPDIR` (or /tmp), removed with everything in it.
struct ScratchDirectory {
    let path: String

    init() throws(FatalError) {
        let base = ProcessEnvironment.current["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/swiftpostmap-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }
        }
        guard made != nil else {
            throw FatalError("create a directory in \(base): \(String(cString: strerror(errno)))")
        }
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
