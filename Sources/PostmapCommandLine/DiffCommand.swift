import Glibc
import MapCompiler

/// `--verify` and `--diff`: differences between maps (``MapDifference``), printed as
/// `- key value`, `+ key value`, `~ key old → new` lines or as JSON Lines.

extension ExtensionCommands {
    /// The table `NAME.db` must hold exactly what compiling `NAME` now would store.
    func verify(_ operand: String, json: Bool) throws(FatalError) -> Int32 {
        let map = MapArgument(operand)
        let type = map.type(default: context.defaultType)
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
        if !json {
            let verdict =
                changes.isEmpty
                ? "\(tablePath): up to date with \(map.name) (\(expected.records.count) entries)"
                : "\(tablePath): \(changes.count) difference(s) from \(map.name)"
            context.output.standardError(verdict)
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
