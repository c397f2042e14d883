import Glibc

/// `--export pgsql:CF`: a map's entries, compiled exactly as a build would store them, loaded
/// into a PostgreSQL table that replaces the previous one in one transaction, and a
/// pgsql_table(5) file that lets Postfix query it.
public struct PgsqlExportRequest: Sendable {
    /// The pgsql_table(5) file to write.
    public var configurationPath: String
    /// libpq's connection string (empty: libpq's defaults, `PG*` variables, `.pgpass`).
    public var conninfo: String
    /// The password to write into the file: one the user gave (in the connection string or
    /// `PGPASSWORD`), never one libpq found in `.pgpass`.
    public var password: String?
    /// The table; derived from the source's file name when `nil`.
    public var table: String?
    /// The source file.
    public var source: String
    /// postmap or aliases(5) syntax.
    public var format: SourceFormat = .postmap
    /// Folding and UTF-8 mode, as for a build.
    public var handling = KeyHandling()
    /// `-r`, `-w`.
    public var duplicates: DuplicatePolicy = .warn
    /// postalias's `YP_MASTER_NAME`.
    public var hostname = "localhost"

    public init(configurationPath: String, conninfo: String, source: String) {
        self.configurationPath = configurationPath
        self.conninfo = conninfo
        self.source = source
    }
}

/// What an export did.
public struct PgsqlExportSummary: Sendable, Equatable {
    /// The table, quoted (`"virtual"`).
    public var table: String
    /// Rows stored.
    public var rows: Int
    /// The pgsql_table(5) file, by its absolute path.
    public var configurationPath: String
    /// Where the rows went: the `hosts` value written, and the database.
    public var host: String
    public var database: String
}

/// The table name `--export` uses for `source` when none is given: its file name, in lower
/// case, with every character other than a-z, 0-9 and `_` made `_` (`pgsql-virtual` →
/// `pgsql_virtual`; one that would start with a digit gets `map_` in front).
public func defaultExportTable(forSource source: String) -> String {
    let base = source.split(separator: "/").last.map(String.init) ?? source
    var name = String(
        base.lowercased().map { character -> Character in
            character.isASCII && (character.isLetter || character.isNumber) ? character : "_"
        })
    if name.isEmpty || name.first?.isNumber == true { name = "map_" + name }
    return String(name.prefix(maximumExportTableLength))
}

/// The longest table name: PostgreSQL's 63-byte identifiers must also hold the staging
/// table's index name, `NAME__swiftpostmap_new_pkey`.
public let maximumExportTableLength = 40

/// Exports `request.source` into PostgreSQL and writes the pgsql_table(5) file.
///
/// The rows go into a new table in one transaction that then drops the previous table and
/// renames the new one into its place, so a reader sees either the whole old map or the
/// whole new one; a failure rolls everything back and leaves the file as it was. A table of
/// that name that `--export` did not make is never replaced.
public func exportToPostgreSQL(
    _ request: PgsqlExportRequest, warn: (Diagnostic) -> Void
) throws(FatalError) -> PgsqlExportSummary {
    let tableName = request.table ?? defaultExportTable(forSource: request.source)
    guard isPlainTableName(tableName) else {
        throw FatalError(
            "--table: a name of 1 to \(maximumExportTableLength) ASCII letters, digits and underscores, "
                + "not starting with a digit, not \"\(tableName)\"")
    }
    if let password = request.password, password.first?.isWhitespace == true || password.last?.isWhitespace == true {
        throw FatalError("the password starts or ends with a space, which a pgsql_table(5) file cannot hold")
    }
    var target = stat()
    if stat(request.configurationPath, &target) == 0, target.st_mode & S_IFMT == S_IFDIR {
        throw FatalError("pgsql:\(request.configurationPath) is a directory")
    }
    let source = absolutePath(request.source)
    // Postfix takes a pgsql: name that starts with neither / nor . for a prefix of main.cf
    // parameters, not a file: the file is named by its absolute path.
    var request = request
    request.configurationPath = absolutePath(request.configurationPath, resolvingLinks: false)
    let contents = try MapContents.compile(
        source: request.source, format: request.format, handling: request.handling,
        duplicates: request.duplicates, hostname: request.hostname, warn: warn)
    let connection: PostgreSQLConnection
    do throws(PostgreSQLError) {
        connection = try PostgreSQLConnection(conninfo: request.conninfo)
        try connection.execute("SET client_min_messages TO warning")
    } catch {
        if error.operation == .loadLibrary { throw FatalError("pgsql: \(error.message)") }
        throw FatalError("connect to pgsql server: \(error.message)")
    }
    defer { connection.close() }
    // COPY's text format: one row per line, fields separated by a tab, with backslash,
    // tab, newline and carriage return escaped. The connection's client encoding is
    // LATIN1, as Postfix's, so the bytes are stored as Postfix will ask for them.
    var data: [UInt8] = []
    for record in contents.records {
        appendCopyField(record.key, to: &data)
        data.append(0x09)
        appendCopyField(record.value, to: &data)
        data.append(0x0A)
    }
    let rows = contents.records.count

    let hostsValue = hostsSetting(
        host: connection.host, port: connection.port, user: connection.user, database: connection.database,
        password: request.password)
    do throws(PostgreSQLError) {
        let table = try connection.quotedIdentifier(tableName)
        let staging = try connection.quotedIdentifier(tableName + "__swiftpostmap_new")
        let index = try connection.quotedIdentifier(tableName + "_key")
        let stagingIndex = try connection.quotedIdentifier(tableName + "__swiftpostmap_new_key")
        let comment = exportComment + source
        try connection.execute("BEGIN")
        do throws(PostgreSQLError) {
            // One export of a table at a time (a second waits for the first to commit).
            try connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", [Array(table.utf8)])
            // A table of this name must be one an export made (its comment says so).
            let existing = try connection.execute(
                "SELECT obj_description(to_regclass($1), 'pg_class'), to_regclass($1) IS NOT NULL",
                [Array(table.utf8)])
            if let row = existing.rows.first, row.count == 2, row[1] == Array("t".utf8) {
                let description = row[0].map { String(decoding: $0, as: UTF8.self) } ?? ""
                guard description.hasPrefix(exportComment) else {
                    throw PostgreSQLError(
                        .query,
                        "table \(table) exists and was not made by swiftpostmap --export; choose another --table")
                }
                // Two sources whose file names give the same table (a/virtual, b/Virtual)
                // must not replace each other's rows unless --table says so.
                guard description == comment || request.table != nil else {
                    throw PostgreSQLError(
                        .query,
                        "table \(table) holds the export of \(description.dropFirst(exportComment.count)), not of "
                            + "\(source); name the table with --table")
                }
            }
            // The staging table exists only inside an export's transaction: one that is
            // there is someone else's.
            let stagingExists = try connection.execute("SELECT to_regclass($1) IS NOT NULL", [Array(staging.utf8)])
            guard stagingExists.rows.first?.first == Array("f".utf8) else {
                throw PostgreSQLError(.query, "a table \(staging) exists; it is not swiftpostmap's to replace")
            }
            try connection.execute("CREATE TABLE \(staging) (key text NOT NULL, value text NOT NULL)")
            try connection.copy("COPY \(staging) (key, value) FROM STDIN", data: data)
            // The index after the rows: one pass instead of a million inserts. A hash index,
            // because a btree index cannot hold keys over about 2.7 kB, and Postfix only
            // asks for equality; the keys are unique already (compiled as for a build).
            try connection.execute("CREATE INDEX \(stagingIndex) ON \(staging) USING hash (key)")
            try connection.execute("COMMENT ON TABLE \(staging) IS \(try literal(comment, on: connection))")
            // The file is written before the old table is locked and put in place after the
            // commit: a failed export leaves both the table and the file as they were, and
            // Postfix's queries wait only for the drop and the rename.
            let prepared = try prepareConfiguration(
                request, source: source, table: table, hosts: hostsValue, user: connection.user,
                database: connection.database)
            do throws(PostgreSQLError) {
                // Postfix's lookups wait while the old table is dropped: if another
                // transaction holds it, give up rather than hold every lookup up behind it.
                try connection.execute("SET LOCAL lock_timeout = '\(exportLockTimeout)'")
                try connection.execute("DROP TABLE IF EXISTS \(table)")
                try connection.execute("ALTER TABLE \(staging) RENAME TO \(table)")
                try connection.execute("ALTER INDEX \(stagingIndex) RENAME TO \(index)")
                try connection.execute("COMMIT")
            } catch {
                if let prepared { unlink(prepared) }
                throw error
            }
            if let prepared, rename(prepared, request.configurationPath) != 0 {
                let reason = systemErrorText(errno)
                unlink(prepared)
                throw PostgreSQLError(
                    .query,
                    "table \(table) committed, but rename \(prepared) to \(request.configurationPath): \(reason)")
            }
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
        return PgsqlExportSummary(
            table: table, rows: rows, configurationPath: request.configurationPath, host: hostsValue,
            database: connection.database)
    } catch {
        let reason =
            error.sqlState == "55P03"
            ? "another transaction holds the table; gave up after \(exportLockTimeout) so as not to hold up "
                + "Postfix's lookups (nothing changed)"
            : error.message
        throw FatalError("pgsql export to \(hostsValue) database \(connection.database): \(reason)")
    }
}

/// How long an export waits for the old table (see above).
let exportLockTimeout = "5s"

/// The comment on every table an export makes, followed by the source's absolute path.
let exportComment = "swiftpostmap --export of "

/// `name` can be a table name: 1 to ``maximumExportTableLength`` ASCII letters, digits and
/// underscores, not starting with a digit (nothing that needs quoting, nothing that means
/// something in a pgsql_table(5) query template, the same bytes in every client encoding).
func isPlainTableName(_ name: String) -> Bool {
    guard let first = name.utf8.first, name.utf8.count <= maximumExportTableLength,
        !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
    else { return false }
    return name.utf8.allSatisfy { byte in
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
    }
}

/// The password a libpq connection string gives (`password=…`, or in a URI), if any.
public func passwordGiven(inConninfo conninfo: String) -> String? {
    guard !conninfo.isEmpty, let pq = try? LibPQ.loaded() else { return nil }
    guard let options = pq.conninfoParse(conninfo, nil) else { return nil }
    defer { pq.conninfoFree(options) }
    var option = options
    while let keyword = option.pointee.keyword {
        if String(cString: keyword) == "password" { return option.pointee.val.map { String(cString: $0) } }
        option += 1
    }
    return nil
}

/// `text` as an SQL string literal.
private func literal(_ text: String, on connection: PostgreSQLConnection) throws(PostgreSQLError) -> String {
    "'" + String(decoding: try connection.escapedString(Array(text.utf8)), as: UTF8.self) + "'"
}

private func appendCopyField(_ bytes: [UInt8], to data: inout [UInt8]) {
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "\\"): data += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
        case 0x09: data += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        case 0x0A: data += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case 0x0D: data += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
        default: data.append(byte)
        }
    }
}

/// The `hosts` value that reaches the server a connection went to, in the forms Postfix's
/// pgsql client knows: `inet:HOST:PORT`, `unix:/DIR` for the default port's socket, or a
/// URI for a socket on another port (Postfix hands a URI to libpq as it is, so it names the
/// user and the database too).
func hostsSetting(
    host: String, port: String, user: String = "", database: String = "", password: String? = nil
) -> String {
    if host.hasPrefix("/") {
        if port.isEmpty || port == "5432" { return "unix:\(host)" }
        let directory = percentEncoded(host)
        var login = user.isEmpty ? "" : percentEncoded(user)
        // Postfix uses a URI as it is: the file's password line would not reach libpq.
        if let password, !user.isEmpty { login += ":" + percentEncoded(password) }
        if !login.isEmpty { login += "@" }
        return "postgresql://\(login)\(directory):\(port)/\(percentEncoded(database))"
    }
    return "inet:\(host):\(port.isEmpty ? "5432" : port)"
}

/// Writes the pgsql_table(5) file to a temporary file next to it, to be renamed over it:
/// mode 0644, or 0640 with a password (group `postfix` when the caller is root and the group
/// exists).
///
/// - Returns: the temporary file's path, or `nil` when the file already says this.
private func prepareConfiguration(
    _ request: PgsqlExportRequest, source: String, table: String, hosts: String, user: String, database: String
) throws(PostgreSQLError) -> String? {
    // One setting per line: a newline (or any control character) in a value would end it
    // and start another line of the file.
    for (what, value) in [
        ("the table name", table), ("the source's path", source), ("the server", hosts), ("the user", user),
        ("the database", database), ("the password", request.password ?? ""),
    ] where value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
        throw PostgreSQLError(
            .query, "\(what) contains a control character and cannot be written to a pgsql_table(5) file")
    }
    var text = """
        # Postfix pgsql_table(5) lookup table, written by swiftpostmap --export.
        # Keys are stored as postmap folds them; Postfix folds each lookup key the same way.
        \(exportTableMarker)\(table)
        \(exportSourceMarker)\(source)
        # Postfix 3.7 talks LATIN1 to the server whatever this says; the rows are stored so.
        encoding = LATIN1
        hosts = \(hosts)
        user = \(user)
        dbname = \(database)

        """
    if let password = request.password { text += "password = \(password)\n" }
    text += "query = SELECT value FROM \(table) WHERE key = '%s'\n"
    let path = request.configurationPath
    let mode: mode_t = request.password == nil ? 0o644 : 0o640
    // The same file as before is left alone: Postfix waits until a configuration file has
    // not changed for a second before it reads it, so rewriting an unchanged file at every
    // export would hold up the very lookups the export must not disturb.
    var existing = stat()
    if case .success(let old) = readWholeFile(path), old == Array(text.utf8), stat(path, &existing) == 0,
        existing.st_mode & 0o7777 == mode
    {
        return nil
    }
    let temporary = path + ".swiftpostmap-tmp"
    unlink(temporary)
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
    guard fd >= 0 else { throw PostgreSQLError(.query, "create \(temporary): \(systemErrorText(errno))") }
    var failure: String? = writeFully(fd, Array(text.utf8), at: 0).map { "write \(temporary): \($0.text)" }
    if failure == nil, fchmod(fd, mode) != 0 { failure = "chmod \(temporary): \(systemErrorText(errno))" }
    if failure == nil, request.password != nil, geteuid() == 0, let group = getgrnam("postfix") {
        if fchown(fd, 0, group.pointee.gr_gid) != 0 { failure = "chown \(temporary): \(systemErrorText(errno))" }
    }
    if failure == nil, fsync(fd) != 0 { failure = "write \(temporary): \(systemErrorText(errno))" }
    if close(fd) != 0 && failure == nil { failure = "close \(temporary): \(systemErrorText(errno))" }
    if let failure {
        unlink(temporary)
        throw PostgreSQLError(.query, failure)
    }
    return temporary
}

/// `path` made absolute: joined to the current directory, or with `resolvingLinks` and
/// when it exists, with symbolic links resolved (so `--verify pgsql:FILE` finds the source
/// from any directory).
private func absolutePath(_ path: String, resolvingLinks: Bool = true) -> String {
    if resolvingLinks, let resolved = realpath(path, nil) {
        defer { free(resolved) }
        return String(cString: resolved)
    }
    guard !path.hasPrefix("/"), let directory = getcwd(nil, 0) else { return path }
    defer { free(directory) }
    return String(cString: directory) + "/" + path
}

/// `text` with every byte other than letters, digits and `-._~` percent-encoded (RFC 3986).
private func percentEncoded(_ text: String) -> String {
    var result = ""
    for byte in text.utf8 {
        let character = Character(Unicode.Scalar(byte))
        if byte < 0x80 && (character.isLetter || character.isNumber || "-._~".contains(character)) {
            result.append(character)
        } else {
            let digits = Array("0123456789ABCDEF")
            result += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
        }
    }
    return result
}
