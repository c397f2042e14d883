/// A `pgsql:CF` map read as Postfix's pgsql client reads it: the lookup key folded as for
/// every other table, the `domain` filter, the `query` template with its `%` expansions
/// (each part escaped by libpq), every field of every row formatted with `result_format`
/// and joined with commas, `expansion_limit`. Listing needs the table a `--export` wrote.
public final class PgsqlTable: LookupTable {
    public let configuration: PgsqlConfiguration
    private let handling: KeyHandling
    private var connection: PostgreSQLConnection?
    /// The `hosts` entry the connection went to, for messages.
    private var connectedHost = ""

    /// `pgsql:PATH`.
    public var typedLabel: String { "pgsql:\(configuration.path)" }
    /// The same: Postfix names a pgsql map as typed.
    public var tableLabel: String { typedLabel }

    /// Reads the configuration at `path`; connects at the first lookup.
    public init(path: String, handling: KeyHandling) throws(FatalError) {
        configuration = try PgsqlConfiguration.load(path: path)
        self.handling = handling
    }

    public func close() {
        connection?.close()
        connection = nil
    }

    /// The connection, made on first use: each host in turn until one answers; a host that
    /// does not gets Postfix's warning.
    private func connected(warn: (Diagnostic) -> Void) throws(FatalError) -> PostgreSQLConnection {
        if let connection { return connection }
        for (host, conninfo) in zip(configuration.hosts, configuration.connectionStrings) {
            do throws(PostgreSQLError) {
                // Postfix 3.7 uses LATIN1 whatever `encoding` says (later versions read it).
                let made = try PostgreSQLConnection(conninfo: conninfo, clientEncoding: "LATIN1")
                connection = made
                connectedHost = host
                return made
            } catch {
                if error.operation == .loadLibrary { throw FatalError("table \(tableLabel): \(error.message)") }
                warn(Diagnostic(.warning, "connect to pgsql server \(host): \(error.rawMessage)"))
            }
        }
        throw FatalError("table \(tableLabel): query error: no pgsql server answered")
    }

    public func lookup(
        _ key: [UInt8], emptyValueLabel: String?, warn: (Diagnostic) -> Void
    ) throws(FatalError)
        -> [UInt8]?
    {
        let folded = handling.folding.fold(key)
        let parts = KeyParts(folded)
        if !configuration.domains.isEmpty {
            guard let domain = parts.domain, parts.local.map({ !$0.isEmpty }) ?? false,
                configuration.domains.contains(String(decoding: domain, as: UTF8.self).lowercased())
            else { return nil }
        }
        let database = try connected(warn: warn)
        func escaped(_ bytes: [UInt8]) throws(FatalError) -> [UInt8] {
            do throws(PostgreSQLError) {
                return try database.escapedString(bytes)
            } catch {
                throw FatalError("table \(tableLabel): lookup error: \(error.message)")
            }
        }
        guard let sql = try expand(Array(configuration.query.utf8), key: parts, value: nil, escape: escaped) else {
            return nil
        }
        let rows: PostgreSQLRows
        do throws(PostgreSQLError) {
            rows = try database.execute(bytes: sql)
        } catch {
            warn(
                Diagnostic(
                    .warning, "pgsql query failed: fatal error from host \(connectedHost): \(error.rawMessage)"))
            throw FatalError("table \(tableLabel): query error: Application error")
        }
        var results: [[UInt8]] = []
        for row in rows.rows {
            for field in row {
                guard let field, !field.isEmpty else { continue }
                let formatted = try expand(
                    Array(configuration.resultFormat.utf8), key: parts, value: field, escape: { $0 })
                if let formatted { results.append(formatted) }
            }
        }
        if configuration.expansionLimit > 0 && results.count > configuration.expansionLimit {
            warn(
                Diagnostic(
                    .warning,
                    "\(tableLabel): \(String(decoding: key, as: UTF8.self)): Expansion limit exceeded"))
            throw FatalError("table \(tableLabel): query error")
        }
        guard !results.isEmpty else {
            if !rows.rows.isEmpty {
                warn(
                    Diagnostic(
                        .warning,
                        Array("table \"\(tableLabel)\": empty lookup result for: \"".utf8) + key
                            + Array("\" -- ignored".utf8)))
            }
            return nil
        }
        return Array(results.joined(separator: [UInt8(ascii: ",")]))
    }

    /// Every record of the table `--export` wrote, in key order.
    public func forEachRecord(warn: (Diagnostic) -> Void, _ body: ([UInt8], [UInt8]) -> Void) throws(FatalError) {
        guard let table = configuration.exportedTable else {
            throw FatalError("table \(tableLabel): sequence operation is not supported")
        }
        let database = try connected(warn: warn)
        do throws(PostgreSQLError) {
            // Through a cursor, 10,000 rows at a time: a large map is never held twice.
            try database.execute("BEGIN READ ONLY")
            defer { _ = try? database.execute("ROLLBACK") }
            try database.execute(
                "DECLARE swiftpostmap_rows NO SCROLL CURSOR FOR SELECT key, value FROM \(table) ORDER BY key COLLATE \"C\""
            )
            while true {
                let batch = try database.execute("FETCH FORWARD 10000 FROM swiftpostmap_rows")
                if batch.rows.isEmpty { break }
                for row in batch.rows where row.count == 2 { body(row[0] ?? [], row[1] ?? []) }
            }
        } catch {
            throw FatalError("table \(tableLabel): sequence error: \(error.message)")
        }
    }
}

/// The parts of a lookup key the `%` expansions use: the whole key, and for an address
/// `local@domain` (split at the last `@`) its local part and domain.
struct KeyParts {
    let key: [UInt8]
    let local: [UInt8]?
    let domain: [UInt8]?

    init(_ key: [UInt8]) {
        self.key = key
        if let at = key.lastIndex(of: UInt8(ascii: "@")) {
            local = Array(key[..<at])
            domain = Array(key[(at + 1)...])
        } else {
            local = nil
            domain = nil
        }
    }

    /// The `n`th label of the domain, counted from the right (`%1` is the top level).
    func label(_ n: Int) -> [UInt8]? {
        guard let domain, !domain.isEmpty else { return nil }
        let labels = domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard n >= 1, n <= labels.count else { return nil }
        return Array(labels[labels.count - n])
    }
}

/// Expands Postfix's `%` template `template` (`query` or `result_format`): `%%`, `%s`/`%S`,
/// `%u`/`%U`, `%d`/`%D`, `%1`…`%9`. Lower-case letters take `value` when given (a result),
/// the key otherwise; upper-case letters and digits always take the key. `nil` when the
/// parts a template needs are missing (Postfix then makes no query, or skips the result).
func expand(
    _ template: [UInt8], key: KeyParts, value: [UInt8]?, escape: ([UInt8]) throws(FatalError) -> [UInt8]
) throws(FatalError) -> [UInt8]? {
    let subject = value.map(KeyParts.init) ?? key
    var output: [UInt8] = []
    var index = 0
    while index < template.count {
        let byte = template[index]
        index += 1
        guard byte == UInt8(ascii: "%"), index < template.count else {
            output.append(byte)
            continue
        }
        let code = template[index]
        index += 1
        let part: [UInt8]?
        switch code {
        case UInt8(ascii: "%"):
            output.append(code)
            continue
        case UInt8(ascii: "s"): part = subject.key
        case UInt8(ascii: "S"): part = key.key
        case UInt8(ascii: "u"): part = subject.local ?? subject.key
        case UInt8(ascii: "U"): part = key.local ?? key.key
        case UInt8(ascii: "d"): part = subject.domain
        case UInt8(ascii: "D"): part = key.domain
        case UInt8(ascii: "1")...UInt8(ascii: "9"): part = key.label(Int(code - UInt8(ascii: "0")))
        default:
            output.append(byte)
            output.append(code)
            continue
        }
        guard let part, !part.isEmpty else { return nil }
        output.append(contentsOf: try escape(part))
    }
    return output
}
