import Glibc

/// A pgsql_table(5) file, read as Postfix's pgsql client reads it (main.cf syntax: `name =
/// value`, `#` comments, indented continuation lines), and the connection strings and
/// queries it stands for.
public struct PgsqlConfiguration: Sendable, Equatable {
    /// The file, as named in `pgsql:PATH`.
    public var path: String
    /// `hosts`: tried in order (`unix:/dir`, `inet:host:port`, `host:port`, `host`, or a
    /// `postgresql://` URI).
    public var hosts: [String]
    public var user: String?
    public var password: String?
    public var dbname: String?
    /// `query`, or the one the obsolete `select_field`/`table`/`where_field` settings make.
    public var query: String
    /// `result_format` (`%s`).
    public var resultFormat: String
    /// `domain`: only addresses in these domains are looked up (names only).
    public var domains: [String]
    /// `expansion_limit` (0: none).
    public var expansionLimit: Int
    /// `encoding` as the file says it (Postfix 3.7, and so swiftpostmap, always use LATIN1;
    /// later Postfix versions read this setting).
    public var encoding = "LATIN1"
    /// The table `--export` wrote, named in the file's `# swiftpostmap: table NAME` line, so
    /// the map can be listed (Postfix's pgsql client cannot list a map).
    public var exportedTable: String?
    /// The source `--export` read (`# swiftpostmap: source PATH`), for `--verify`.
    public var exportedSource: String?

    /// Reads the file at `path`.
    ///
    /// - Throws: Postfix's `open PATH: REASON` when it cannot be read; a fatal error when it
    ///   names no query.
    public static func load(path: String) throws(FatalError) -> PgsqlConfiguration {
        let text: [UInt8]
        switch readWholeFile(path) {
        case .success(let bytes): text = bytes
        case .failure(let error): throw FatalError("open \(path): \(systemErrorText(error.code))")
        }
        let parsed = try MainConfig(text: text, path: path, directory: nil, warn: { _ in })
        func value(_ name: String) -> String? {
            parsed.parameters[name].flatMap { $0.isEmpty ? nil : $0 }
        }
        /// A setting Postfix insists on, with its message when it is missing or empty.
        func required(_ name: String) throws(FatalError) -> String {
            guard let setting = value(name) else { throw FatalError("\(path): bad string length 0 < 1: \(name) = ") }
            return setting
        }
        let hosts = splitPostfixList(value("hosts") ?? "localhost")
        _ = try required("dbname")
        let query: String
        if let given = value("query") {
            query = given
        } else if let function = value("select_function") {
            query = "SELECT \(function)('%s')"
        } else {
            let table = try required("table")
            let select = try required("select_field")
            let whereField = try required("where_field")
            query = "SELECT \(select) FROM \(table) WHERE \(whereField) = '%s' \(value("additional_conditions") ?? "")"
        }
        var configuration = PgsqlConfiguration(
            path: path, hosts: hosts, user: value("user"), password: value("password"), dbname: value("dbname"),
            query: query, resultFormat: value("result_format") ?? "%s",
            domains: splitPostfixList(value("domain") ?? "").map { $0.lowercased() },
            expansionLimit: Int(value("expansion_limit") ?? "0") ?? 0)
        if let encoding = value("encoding") { configuration.encoding = encoding }
        try checkResultFormat(configuration.resultFormat, path: path)
        if parsed.parameters["result_format"] == "" {
            throw FatalError("db_common_parse: \(path): Invalid result template: ")
        }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            // Only a name --export could have written: it goes into the listing's SQL.
            if let table = line.dropping(prefix: exportTableMarker), table.count > 2, table.first == "\"",
                table.last == "\"", isPlainTableName(String(table.dropFirst().dropLast()))
            {
                configuration.exportedTable = table
            }
            if let source = line.dropping(prefix: exportSourceMarker) { configuration.exportedSource = source }
        }
        return configuration
    }

    /// libpq connection strings for each of ``hosts``, in order, with the file's user,
    /// password and database.
    public var connectionStrings: [String] {
        hosts.map { host in
            if host.hasPrefix("postgresql://") || host.hasPrefix("postgres://") { return host }
            var words: [String] = []
            var name = host
            if name.hasPrefix("unix:") {
                name.removeFirst(5)
                words.append("host=" + conninfoQuoted(name))
            } else {
                if name.hasPrefix("inet:") { name.removeFirst(5) }
                // HOST:PORT, split at the last colon (as Postfix does, so `inet:::1:5432` is
                // ::1 port 5432); `::1` alone, whose last colon ends an address, is a host.
                if let colon = name.lastIndex(of: ":"), colon != name.startIndex,
                    name[name.index(before: colon)] != ":",
                    name[name.index(after: colon)...].allSatisfy(\.isNumber),
                    name.index(after: colon) != name.endIndex
                {
                    words.append("host=" + conninfoQuoted(String(name[..<colon])))
                    words.append("port=" + conninfoQuoted(String(name[name.index(after: colon)...])))
                } else {
                    words.append("host=" + conninfoQuoted(name))
                }
            }
            if let dbname { words.append("dbname=" + conninfoQuoted(dbname)) }
            if let user { words.append("user=" + conninfoQuoted(user)) }
            if let password { words.append("password=" + conninfoQuoted(password)) }
            return words.joined(separator: " ")
        }
    }
}

/// Postfix refuses a `result_format` with a `%` that starts no expansion it knows.
private func checkResultFormat(_ format: String, path: String) throws(FatalError) {
    let bytes = Array(format.utf8)
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "%") {
            let known = Array("%sSuUdD123456789".utf8)
            guard index + 1 < bytes.count, known.contains(bytes[index + 1]) else {
                throw FatalError("db_common_parse: \(path): Invalid result template: \(format)")
            }
            index += 2
        } else {
            index += 1
        }
    }
}

/// The comment lines with which `--export` names its table and source in the file it
/// writes (Postfix skips comments).
let exportTableMarker = "# swiftpostmap: table "
let exportSourceMarker = "# swiftpostmap: source "

extension Substring {
    fileprivate func dropping(prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}

/// `value` as a libpq connection-string value: in single quotes, with `\` and `'` escaped.
func conninfoQuoted(_ value: String) -> String {
    var quoted = "'"
    for character in value {
        if character == "\\" || character == "'" { quoted.append("\\") }
        quoted.append(character)
    }
    return quoted + "'"
}
