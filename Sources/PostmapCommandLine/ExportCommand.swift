import Glibc
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
        // Postfix takes a pgsql: name that starts with neither / nor . for a prefix of main.cf
        // parameters, not a file: the file is named by its absolute path.
        var path = map.name
        if !path.hasPrefix("/"), let directory = getcwd(nil, 0) {
            path = String(cString: directory) + "/" + path
            free(directory)
        }
        var request = PgsqlExportRequest(configurationPath: path, conninfo: conninfo, source: source)
        request.password =
            passwordGiven(inConninfo: conninfo) ?? context.postgresPassword.flatMap { $0.isEmpty ? nil : $0 }
        request.table = options.exportTable
        request.format = context.personality == .postalias ? .postalias : .postmap
        request.handling = context.handling
        request.duplicates = context.options.duplicates
        if context.personality == .postalias { request.hostname = try context.config.myhostname() }
        let summary = try exportToPostgreSQL(request, warn: context.warn)
        var line = "\(path): \(summary.rows) entries from \(source) in table \(summary.table) of database "
        line += "\(summary.database) at \(summary.host)"
        if request.password != nil { line += "; the file holds the password (mode 0640)" }
        context.output.standardError(line)
        return 0
    }
}
