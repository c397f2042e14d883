import Glibc
import MapCompiler

/// The four operations of postmap and postalias, with their type checks and messages.
struct OperationContext {
    let options: CommandLineOptions
    let personality: Personality
    let config: MainConfig
    /// main.cf was named (`-c`, `--main-cf` or `MAIL_CONFIG`) rather than found by default.
    var configIsExplicit = false
    let defaultType: String
    let handling: KeyHandling
    let warn: (Diagnostic) -> Void
    let output: CommandOutput
    let input: CommandInput
    /// The program name in messages (and on the progress line).
    var program = "swiftpostmap"
    /// `--lint` findings may be coloured: standard output is a terminal and `NO_COLOR` is
    /// not set.
    var colours = false
    /// `SOURCE_DATE_EPOCH` from the environment, when set: builds are reproducible.
    var sourceDateEpoch: String? = nil
    /// `PGPASSWORD` from the environment (a password given for `--export`).
    var postgresPassword: String? = nil

    // MARK: Build

    func build(_ map: MapArgument) throws(FatalError) {
        let type = map.type(default: defaultType)
        let table: TableType
        switch MapTypeSupport(type: type) {
        case .indexed(let indexed):
            table = indexed
        case let other:
            // postmap opens the source before it looks at the type.
            if !options.incremental { try checkSourceReadable(map.name) }
            throw buildTypeError(type: type, map: map, support: other)
        }
        // A cdb file is written whole: postmap's cdb driver refuses to open one for -i.
        if table == .cdb && options.incremental { throw FatalError(cdbIncrementalRefusal) }
        let request = try buildRequest(
            table: table, typeName: type, name: map.name,
            input: options.incremental ? .standardInput : .file(map.name))
        try buildWithProgress(request, label: "\(type):\(map.name)")
    }

    /// The build of `name`'s `table` from `input` that this command line asks for (also
    /// what `--verify --bytes` rebuilds).
    func buildRequest(
        table: TableType, typeName type: String, name: String, input: SourceInput
    ) throws(FatalError) -> BuildRequest {
        var request = BuildRequest(table: table, typeName: type, name: name, input: input)
        request.format = personality == .postalias ? .postalias : .postmap
        request.handling = handling
        request.duplicates = options.duplicates
        request.incremental = options.incremental
        request.cacheSize = try config.createBufferSize()
        request.lmdbMapSize = try config.lmdbMapSize()
        request.deriveModeFromSource = options.derivePermissions
        request.keepCallerOwnership = options.keepCallerOwnership
        request.base64Files = options.base64Files
        if personality == .postalias { request.hostname = try config.myhostname() }
        if let time = try reproducibleBuildTime() {
            request.reproducible = true
            request.buildTime = time
        }
        return request
    }

    /// With `--reproducible` or `SOURCE_DATE_EPOCH`: the time a reproducible build writes
    /// into a table (postalias's `YP_LAST_MODIFIED`): `SOURCE_DATE_EPOCH`, else 0.
    /// `nil` for an ordinary build.
    ///
    /// - Throws: when `SOURCE_DATE_EPOCH` is not a number of seconds (the reproducible-builds
    ///   convention: a malformed value stops the build).
    func reproducibleBuildTime() throws(FatalError) -> Int? {
        if let text = sourceDateEpoch, !text.isEmpty {
            guard let seconds = Int(text), seconds >= 0 else {
                throw FatalError("SOURCE_DATE_EPOCH is not a number of seconds since 1970: \(text)")
            }
            return seconds
        }
        return options.extensions.reproducible ? 0 : nil
    }

    /// Builds `request`, with a progress line for `label` on a terminal or with `--progress`.
    func buildWithProgress(_ request: BuildRequest, label: String) throws(FatalError) {
        guard
            let line = BuildProgressLine(
                requested: options.extensions.progress, output: output, program: program, label: label)
        else {
            _ = try buildTable(request, warn: warn)
            return
        }
        do throws(FatalError) {
            _ = try buildTable(request, warn: warn, progress: line.report)
        } catch {
            line.finish(succeeded: false)
            throw error
        }
        line.finish(succeeded: true)
    }

    private func checkSourceReadable(_ path: String) throws(FatalError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FatalError("open \(path): \(String(cString: strerror(errno)))") }
        close(descriptor)
    }

    private func buildTypeError(type: String, map: MapArgument, support: MapTypeSupport) -> FatalError {
        if type == "proxy" { return FatalError("can't create maps via the proxy service") }
        if type == "fail" { return FatalError("table fail:\(map.name): write error: Application error") }
        if support == .noBulkCreate {
            return FatalError("unsupported dictionary type: \(type) does not support bulk-mode creation.")
        }
        return FatalError("unsupported dictionary type: \(type). Is the postfix-\(type) package installed?")
    }

    // MARK: Opening tables for reading

    func openTable(_ map: MapArgument, writable: Bool = false) throws(FatalError) -> any LookupTable {
        // A table file announces itself to MemoryFaultGuard (ReadProgress.tableWillOpen).
        try openLookupTable(map, configuration: config, handling: handling, writable: writable, warn: warn)
    }

    // MARK: Query

    /// `-q key`: the first map (in order) that has the key wins; later maps are not opened.
    func query(_ key: String, in maps: [MapArgument]) throws(FatalError) -> Int32 {
        let keyBytes = Array(key.utf8)
        for map in maps {
            let table = try openTable(map)
            defer { table.close() }
            if let value = try table.lookup(keyBytes, emptyValueLabel: nil, warn: warn) {
                let shown = try decodedFileValue(value, key: keyBytes, table: table)
                output.standardOutput(json ? jsonRecord(keyBytes, shown) : shown + [0x0A])
                return 0
            }
        }
        return 1
    }

    /// `-q -`: every line of standard input is a key (with `-b`/`-h`: every key derived from
    /// the message on standard input); maps are opened when first needed.
    func queryStandardInput(_ maps: [MapArgument]) throws(FatalError) -> Int32 {
        let messageOptions =
            options.bodyQuery || options.headerQuery
            ? try MessageKeyOptions(
                bodyLines: options.bodyQuery, headers: options.headerQuery, mime: options.mime, configuration: config)
            : nil
        let data = input.readAllInput()
        let keys = messageOptions.map { messageLookupKeys(data, options: $0) } ?? lookupKeyLines(data)
        var tables: [(any LookupTable)?] = Array(repeating: nil, count: maps.count)
        defer { for table in tables { table?.close() } }
        var found = false
        // postmap takes the shared lock around each lookup; holding it for a run of keys
        // answers the same (a writer still gets in between runs) for a fraction of the
        // system calls. Tables first opened inside a run lock per lookup until the next.
        var start = keys.startIndex
        while start < keys.endIndex {
            let run = keys[start..<min(start + queryRunLength, keys.endIndex)]
            start = run.endIndex
            // Answers are written after the locks are released: a reader blocked on its
            // output must not keep a writer of the same table waiting.
            var answers: [UInt8] = []
            defer { output.standardOutput(answers) }
            try holdingLocks(of: tables.compactMap { $0 }[...]) { () throws(FatalError) in
                for line in run {
                    for (index, map) in maps.enumerated() {
                        let table: any LookupTable
                        if let open = tables[index] {
                            table = open
                        } else {
                            table = try openTable(map)
                            tables[index] = table
                        }
                        if let value = try table.lookup(line, emptyValueLabel: table.tableLabel, warn: warn) {
                            if json {
                                answers.append(
                                    contentsOf: jsonRecord(
                                        line,
                                        try decodedFileValue(
                                            value, key: line, table: table, emptyValueLabel: table.tableLabel))
                                )
                                found = true
                                break
                            }
                            var out = line
                            if personality == .postalias { out.append(UInt8(ascii: ":")) }
                            out.append(0x09)
                            out.append(
                                contentsOf: try decodedFileValue(
                                    value, key: line, table: table, emptyValueLabel: table.tableLabel))
                            out.append(0x0A)
                            answers.append(contentsOf: out)
                            found = true
                            break
                        }
                    }
                }
            }
        }
        return found ? 0 : 1
    }

    /// Runs `body` with the shared locks of every table in `tables` held.
    private func holdingLocks(
        of tables: ArraySlice<any LookupTable>, _ body: () throws(FatalError) -> Void
    ) throws(FatalError) {
        guard let first = tables.first else { return try body() }
        try first.withLookupsLocked { () throws(FatalError) in try holdingLocks(of: tables.dropFirst(), body) }
    }

    // MARK: List

    /// `-s`: every record of the map, in the table's order.
    func list(_ map: MapArgument) throws(FatalError) {
        let table = try openTable(map)
        if case .indexed(.cdb) = MapTypeSupport(type: map.type(default: defaultType)) {
            // Postfix 3.7's cdb driver (Debian 12) cannot list a table.
            table.close()
            throw FatalError("table \(table.tableLabel): sequence operation is not supported")
        }
        defer { table.close() }
        let separator: [UInt8] = personality == .postalias ? [UInt8(ascii: ":"), 0x09] : [0x09]
        try table.forEachRecord(warn: warn) { key, value in
            if !key.isEmpty && value.isEmpty { warnEmptyValue(key: key, label: table.typedLabel) }
            var shown = value
            if options.base64Files && personality == .postmap {
                guard let decoded = base64Decoded(value) else {
                    warn(malformedBase64Warning(key: key, value: value, table: table))
                    return
                }
                shown = Array(decoded.prefix(while: { $0 != 0 }))
            }
            output.standardOutput(json ? jsonRecord(key, shown) : key + separator + shown + [0x0A])
        }
    }

    // MARK: Delete

    /// `-d key` / `-d -`: delete from every map; status 0 when anything was deleted.
    func delete(_ key: String, from maps: [MapArgument]) throws(FatalError) -> Int32 {
        let keys: [[UInt8]] = key == "-" ? lookupKeyLines(input.readAllInput()) : [Array(key.utf8)]
        if key == "-" {
            // postmap opens every map before it reads a key: a map that cannot be opened
            // stops the run before anything is deleted.
            for map in maps { try openTable(map, writable: true).close() }
        }
        var deletedAny = false
        for map in maps {
            deletedAny = try deleteKeys(keys, from: map) || deletedAny
        }
        return deletedAny ? 0 : 1
    }

    private func deleteKeys(_ keys: [[UInt8]], from map: MapArgument) throws(FatalError) -> Bool {
        // Open once to report a missing or foreign table exactly as a reader would.
        try openTable(map, writable: true).close()
        guard case .indexed(let table) = MapTypeSupport(type: map.type(default: defaultType)) else { return false }
        return try deleteFromTable(
            table: table, typeName: map.type(default: defaultType), name: map.name, keys: keys,
            handling: handling, cacheSize: try config.readBufferSize(), warn: warn)
    }

    // MARK: Helpers

    /// `-j` (as Postfix 3.11 spells it) or `--json`: `-q` and `-s` print JSON Lines.
    private var json: Bool { options.jsonShort || options.extensions.json }

    /// One result as a JSON Lines record: `{"KEY": "VALUE"}` as Postfix 3.11 prints it for
    /// `-j`, or with `--json` this project's `{"key":KEY,"value":VALUE}`.
    private func jsonRecord(_ key: [UInt8], _ value: [UInt8]) -> [UInt8] {
        if !options.extensions.json { return postfixJSONLine(key: key, value: value) }
        var object = JSONObject()
        object.add("key", key)
        object.add("value", value)
        return object.line
    }

    /// `-q` with `-F`: the value base64-decoded and cut at its first NUL, as postmap prints
    /// it (with the empty-value warnings, naming `emptyValueLabel` or else the table as typed,
    /// when nothing is left of a non-empty value).
    ///
    /// - Throws: `table TYPE:NAME.db: query error` after a warning when the value is not
    ///   base64.
    private func decodedFileValue(
        _ value: [UInt8], key: [UInt8], table: any LookupTable, emptyValueLabel: String? = nil
    ) throws(FatalError) -> [UInt8] {
        guard options.base64Files, personality == .postmap else { return value }
        guard let decoded = base64Decoded(value) else {
            warn(malformedBase64Warning(key: key, value: value, table: table))
            throw FatalError("table \(table.tableLabel): query error")
        }
        let shown = Array(decoded.prefix(while: { $0 != 0 }))
        // An empty stored value has had its warnings from the lookup already.
        if shown.isEmpty && !value.isEmpty { warnEmptyValue(key: key, label: emptyValueLabel ?? table.typedLabel) }
        return shown
    }

    /// `table TYPE:NAME.db: key KEY: malformed BASE64 value: FIRST-30-BYTES`.
    private func malformedBase64Warning(key: [UInt8], value: [UInt8], table: any LookupTable) -> Diagnostic {
        Diagnostic(
            .warning,
            Array("table \(table.tableLabel): key ".utf8) + key + Array(": malformed BASE64 value: ".utf8)
                + value.prefix(30))
    }

    /// Postfix's two warnings about a value that is empty.
    private func warnEmptyValue(key: [UInt8], label: String) {
        let text = Array("table \(label): key ".utf8) + key + Array(": empty string result is not allowed".utf8)
        warn(Diagnostic(.warning, text))
        warn(Diagnostic(.warning, "table \(label) should return NO RESULT in case of NOT FOUND"))
    }

}

/// How many `-q -` keys are looked up under one hold of the tables' shared locks.
private let queryRunLength = 512
