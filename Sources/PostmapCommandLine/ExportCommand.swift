import MapCompiler

/// `--export pgsql:FILE SOURCE`: the source into PostgreSQL (``exportToPostgreSQL``), and one
/// line on standard error saying where it went.

extension ExtensionCommands {
    func export(to target: String, source operand: String, options: ExtensionOptions) throws(FatalError) -> Int32 {
        let map = MapArgument(target)
        guard map.explicitType == "pgsql", !map.name.isEmpty else {
            throw FatalError("--export takes pgsql:FILE, not \(target)")
        }
        let source = MapArgument(operand).name
        let conninfo = options.conninfo ?? ""
        var request = PgsqlExportRequest(configurationPath: map.name, conninfo: conninfo, source: source)
        request.password =
            passwordGiven(inConninfo: conninfo) ?? context.postgresPassword.flatMap { $0.isEmpty ? nil : $0 }
        request.table = options.exportTable
        request.format = context.personality == .postalias ? .postalias : .postmap
        request.handling = context.handling
        request.duplicates = context.options.duplicates
        if context.personality == .postalias { request.hostname = try context.config.myhostname() }
        let summary = try exportToPostgreSQL(request, warn: context.warn)
        var line =
            "\(summary.configurationPath): \(summary.rows) entries from \(source) in table \(summary.table) of database "
        line += "\(summary.database) at \(summary.host)"
        if request.password != nil { line += "; the file holds the password (mode 0640)" }
        context.output.standardError(line)
        return 0
    }
}
