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
        var firstDifference: Int? = nil
        if bytes && changes.isEmpty {
            var request = try context.buildRequest(table: table, typeName: type, name: map.name, input: .file(map.name))
            request.buildTime = try context.reproducibleBuildTime() ?? 0
            firstDifference = try firstDifferenceFromReproducibleBuild(request, tablePath: tablePath)
        }
        return report(
            changes, entries: expected.records.count, source: map.name, table: tablePath, json: json,
            bytes: bytes && changes.isEmpty ? .some(firstDifference) : nil)
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
        return report(
            changes, entries: expected.records.count, source: source, table: "pgsql:\(path)", json: json, bytes: nil)
    }

    /// `--verify`'s output: the differences as a diff from the source (what a build would
    /// store) to the table, then the verdict on standard error (with `--json`, only the
    /// byte comparison's object); the exit status. `bytes` is the byte comparison, when one
    /// was made: the offset of the first difference, `nil` when none.
    private func report(
        _ changes: [MapDifference], entries: Int, source: String, table: String, json: Bool, bytes: Int??
    ) -> Int32 {
        if !json && !changes.isEmpty {
            context.output.standardOutput(Array("--- \(source) (source)\n+++ \(table) (table)\n".utf8))
        }
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        let bytesDiffer = bytes.map { $0 != nil } ?? false
        if json {
            if let bytes {
                var object = JSONObject()
                object.add("table", table)
                object.add("reproducible", bytes == nil)
                if let offset = bytes { object.add("first_difference", offset) }
                context.output.standardOutput(object.line)
            }
        } else {
            var verdict =
                changes.isEmpty
                ? "\(table): up to date with \(source) (\(entries) entries)"
                : "\(table): \(changes.count) difference(s) from \(source)"
            switch bytes {
            case .some(nil): verdict += ", the bytes of a reproducible build"
            case .some(.some(let offset)):
                verdict += ", but not the bytes of a reproducible build (first difference at byte \(offset))"
            case nil: break
            }
            context.output.standardError(verdict)
        }
        return changes.isEmpty && !bytesDiffer ? 0 : 1
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
