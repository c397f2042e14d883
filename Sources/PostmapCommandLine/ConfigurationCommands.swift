import MapCompiler

/// `--scan-config` and `--sync`: the indexed tables a whole configuration refers to
/// (``indexedTableReferences(in:)``), listed with what each becomes as an lmdb or cdb table
/// and how it stands against its source, or compiled where it does not hold what its
/// source compiles to.

extension ExtensionCommands {
    /// `--scan-config [-c DIR]`: every Berkeley DB reference (`hash:`, `btree:`, `dbm:`,
    /// `proxy:` looked through) of main.cf and master.cf, one line each (or JSON Lines).
    ///
    /// - Returns: 1 while any Berkeley DB reference remains, else 0.
    func scanConfiguration(json: Bool) throws(FatalError) -> Int32 {
        let references = indexedTableReferences(in: context.config).filter(\.isBerkeleyDB)
        var states: [String: TableState] = [:]
        for reference in references {
            let state = states[reference.type + ":" + reference.name] ?? state(of: reference)
            states[reference.type + ":" + reference.name] = state
            if json {
                context.output.standardOutput(scanJSON(reference, state: state).line)
                continue
            }
            var line = "\(reference.location): \(reference.parameter): \(reference.element): "
            if reference.isCache {
                line += "\(reference.replacement(.lmdb)) (a cache Postfix writes itself; no source)"
            } else {
                line += "\(reference.replacement(.lmdb)) or \(reference.replacement(.cdb)); "
                switch state {
                case .noSource: line += "no source \(reference.name)"
                default:
                    line +=
                        "source \(reference.name), table \(reference.name)\(reference.type == "dbm" ? ".dir/.pag" : ".db") \(state.description)"
                }
            }
            context.output.standardOutput(Array((line + "\n").utf8))
        }
        let directory = context.config.directory ?? MainConfig.defaultDirectory
        if !json {
            let tables = Set(references.map { $0.type + ":" + $0.name }).count
            context.output.standardError(
                references.isEmpty
                    ? "scan: no Berkeley DB table in \(directory)'s configuration"
                    : "scan: \(references.count) Berkeley DB reference(s) to \(tables) table(s) in \(directory)'s"
                        + " configuration")
        }
        return references.isEmpty ? 0 : 1
    }

    /// `--sync [--dry-run] [--to lmdb|cdb] [-c DIR]`: compiles every table of the
    /// configuration whose table is missing or does not hold what its source compiles to,
    /// with the type Postfix would use (or `--to`'s), postalias semantics for the aliases
    /// tables; fresh tables are left alone. With `--to`, prints the `postconf` commands that
    /// switch the configuration to the new tables (and changes no configuration file).
    ///
    /// - Returns: 0 when every table is (now) fresh; 1 when a build failed, or with
    ///   `--dry-run` when anything would be built.
    func synchronize(dryRun: Bool, target: TableType?, json: Bool) throws(FatalError) -> Int32 {
        let references = indexedTableReferences(in: context.config).filter { !$0.isCache }
        var done: Set<String> = []
        var ready: Set<String> = []
        var pending = 0
        var failed = 0
        for reference in references {
            var table = reference.tableType
            if let target, reference.isBerkeleyDB { table = target }
            guard let table else {
                context.warn(
                    Diagnostic(
                        .warning,
                        "\(reference.location): \(reference.element): \(reference.type) tables are not written here;"
                            + " use --sync --to lmdb or --to cdb to leave them"))
                continue
            }
            let typed = "\(table.rawValue):\(reference.name)"
            guard done.insert(typed).inserted else { continue }
            let state = tableState(
                name: reference.name, table: table, format: reference.sourceFormat, handling: context.handling,
                hostname: try context.config.myhostname())
            var action = "fresh"
            switch state {
            case .fresh: ready.insert(typed)
            case .noSource:
                action = "skipped: no source \(reference.name)"
            case .unreadable(let reason):
                action = "failed: \(reason)"
                failed += 1
            case .stale, .missing:
                pending += 1
                if dryRun {
                    action = "would build (\(state.description))"
                } else {
                    do throws(FatalError) {
                        try build(reference, as: table)
                        ready.insert(typed)
                        action = "built (was \(state.description))"
                    } catch {
                        context.warn(Diagnostic(.warning, "\(typed): \(error.description)"))
                        action = "failed: \(error.description)"
                        failed += 1
                    }
                }
            }
            if json {
                var object = JSONObject()
                object.add("table", typed)
                object.add("format", reference.sourceFormat == .postalias ? "postalias" : "postmap")
                object.add("state", state.name)
                object.add("action", action.split(separator: " ").first.map(String.init) ?? action)
                context.output.standardOutput(object.line)
            } else {
                context.output.standardOutput(Array("\(typed): \(action)\n".utf8))
            }
        }
        if let target, !dryRun {
            printSwitchCommands(indexedTableReferences(in: context.config), to: target, ready: ready)
        }
        if failed > 0 { return 1 }
        return dryRun && pending > 0 ? 1 : 0
    }

    /// What `reference`'s table holds now against its source.
    private func state(of reference: IndexedTableReference) -> TableState {
        guard let table = reference.tableType, !reference.isCache else {
            return reference.isCache ? .noSource : .unreadable("\(reference.type) tables are not read here")
        }
        let hostname = (try? context.config.myhostname()) ?? "localhost"
        return tableState(
            name: reference.name, table: table, format: reference.sourceFormat, handling: context.handling,
            hostname: hostname)
    }

    /// Builds `reference`'s table as `table`, as `postmap` (or `postalias`) would.
    private func build(_ reference: IndexedTableReference, as table: TableType) throws(FatalError) {
        var request = try context.buildRequest(
            table: table, typeName: table.rawValue, name: reference.name, input: .file(reference.name))
        // The syntax is the table's (alias_maps are postalias's), whatever the command line;
        // a sync always compiles the whole source.
        request.format = reference.sourceFormat
        request.incremental = false
        if reference.sourceFormat == .postalias { request.hostname = try context.config.myhostname() }
        try context.buildWithProgress(request, label: "\(request.typeName):\(request.name)")
    }

    /// `postconf -e` (main.cf) and `postconf -P` (master.cf `-o`) commands that name the new
    /// tables, one per parameter, in the order the parameters are named.
    /// A parameter is switched only when every table it names exists in the new type
    /// (`ready`: fresh or just built); the others get a warning instead.
    private func printSwitchCommands(_ references: [IndexedTableReference], to target: TableType, ready: Set<String>) {
        var seen: Set<String> = []
        for reference in references where reference.isBerkeleyDB {
            let key = "\(reference.service ?? "")/\(reference.parameter)"
            guard seen.insert(key).inserted else { continue }
            let missing = references.filter {
                "\($0.service ?? "")/\($0.parameter)" == key && $0.isBerkeleyDB && !$0.isCache
                    && !ready.contains("\(target.rawValue):\($0.name)")
            }
            if let first = missing.first {
                context.warn(
                    Diagnostic(
                        .warning,
                        "\(first.location): not switching \(reference.parameter): there is no \(target.rawValue) table"
                            + " \(first.name)\(target.fileSuffix) (\(first.element))"))
                continue
            }
            // A cache is written by Postfix's daemons: lmdb, never cdb (which is read-only).
            let replaced = replacingBerkeleyTypes(in: reference.value, with: reference.isCache ? .lmdb : target)
            if let service = reference.service {
                let type = reference.serviceType ?? "inet"
                context.output.standardOutput(
                    Array("postconf -P '\(service)/\(type)/\(reference.parameter)=\(replaced)'\n".utf8))
            } else {
                context.output.standardOutput(Array("postconf -e '\(reference.parameter) = \(replaced)'\n".utf8))
            }
        }
    }
}

/// `value` with every `hash:`, `btree:` and `dbm:` table type (also after `proxy:`)
/// replaced by `target`; everything else as written.
func replacingBerkeleyTypes(in value: String, with target: TableType) -> String {
    var result = ""
    var word = ""
    func flush() {
        for old in ["hash:", "btree:", "dbm:"] {
            if word.hasPrefix(old) {
                word = target.rawValue + ":" + word.dropFirst(old.count)
            } else if word.hasPrefix("proxy:" + old) {
                word = "proxy:" + target.rawValue + ":" + word.dropFirst(("proxy:" + old).count)
            }
        }
        result += word
        word = ""
    }
    for character in value {
        if character == " " || character == "," || character == "\t" || character == "\n" {
            flush()
            result.append(character)
        } else {
            word.append(character)
        }
    }
    flush()
    return result
}

/// One scanned reference as JSON.
private func scanJSON(_ reference: IndexedTableReference, state: TableState) -> JSONObject {
    var object = JSONObject()
    object.add("file", reference.file)
    object.add("line", reference.line)
    object.add("parameter", reference.parameter)
    if let service = reference.service { object.add("service", service) } else { object.addNull("service") }
    object.add("element", reference.element)
    object.add("type", reference.type)
    object.add("name", reference.name)
    object.add("proxy", reference.proxied)
    object.add("default", reference.isDefault)
    object.add("cache", reference.isCache)
    object.add("lmdb", reference.replacement(.lmdb))
    if reference.isCache { object.addNull("cdb") } else { object.add("cdb", reference.replacement(.cdb)) }
    object.add("state", state.name)
    if case .stale(let count) = state { object.add("differences", count) }
    return object
}
