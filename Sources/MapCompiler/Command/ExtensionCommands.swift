/// The long-option modes (`--lint`, `--verify`, `--check`, `--diff`, `--resolve`, `--test`):
/// swiftpostmap's own validation features. They never change what a postmap command line
/// does; each returns its exit status and writes text or JSON Lines (`--json`).
struct ExtensionCommands {
    let context: OperationContext

    func run(_ options: ExtensionOptions) throws(FatalError) -> Int32 {
        let operands = context.options.operands
        switch options.mode {
        case .none:
            return 0
        case .verify:
            guard operands.count == 1 else { throw FatalError("usage: --verify [type:]file") }
            return try verify(operands[0], json: options.json)
        case .diff:
            guard operands.count == 2 else { throw FatalError("usage: --diff MAP MAP") }
            return try diff(operands[0], operands[1], json: options.json)
        case .lint:
            return try lint(operands, options: options)
        case .check:
            guard !operands.isEmpty else { throw FatalError("usage: --check [type:]file.db...") }
            return try runIntegrityCheck(operands: operands, options: options, context: context)
        case .checkWorker(let path):
            guard operands.isEmpty else { throw FatalError("usage: --check-worker file.db") }
            return runCheckWorker(path: path)
        case .resolve:
            guard !operands.isEmpty else { throw FatalError("usage: --resolve address...") }
            return try runResolve(addresses: operands, options: options, context: context)
        case .test(let file):
            return try runExpectations(file: file, options: options, context: context)
        case .help:
            context.output.standardOutput(Array(helpText(program: "swiftpostmap").utf8))
            return 0
        case .version:
            context.output.standardOutput(
                Array("swiftpostmap \(swiftpostmapVersion) (\(BerkeleyDBLibrary.version))\n".utf8))
            return 0
        }
    }

    // MARK: --lint

    /// Lints the operands, or with none every map of the named configuration; prints the
    /// findings (text or JSON Lines) and a summary on standard error. Exit status 1 when
    /// any finding is an error (or, with `--werror`, a warning).
    func lint(_ operands: [String], options: ExtensionOptions) throws(FatalError) -> Int32 {
        let linter = MapLinter(
            configuration: context.config, configurationKnown: context.configIsExplicit, handling: context.handling,
            duplicates: context.options.duplicates, aliasSyntax: context.personality == .postalias)
        let targets: [LintTarget]
        if operands.isEmpty {
            guard context.configIsExplicit else {
                throw FatalError("usage: --lint [type:]file... (or --lint -c DIR for every map of a configuration)")
            }
            targets = linter.configurationTargets()
            if targets.isEmpty {
                context.warn(
                    Diagnostic(
                        .warning,
                        "\(context.config.directory ?? MainConfig.defaultDirectory): no map source that main.cf or "
                            + "master.cf refers to exists"))
            }
        } else {
            targets = linter.targets(operands: operands, kind: options.mapKind)
        }
        let findings = try linter.lint(targets, warn: context.warn)
        for finding in findings {
            context.output.standardOutput(
                options.json ? lintFindingJSON(finding).line : Array((finding.text + "\n").utf8))
        }
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.filter { $0.severity == .warning }.count
        if !options.json {
            let notes = findings.count - errors - warnings
            context.output.standardError(
                "\(targets.count) map(s) checked: \(errors) error(s), \(warnings) warning(s), \(notes) note(s)")
        }
        return errors > 0 || (options.warningsAreErrors && warnings > 0) ? 1 : 0
    }

    // MARK: --verify

    /// The table `NAME.db` must hold exactly what compiling `NAME` now would store.
    func verify(_ operand: String, json: Bool) throws(FatalError) -> Int32 {
        let map = MapArgument(operand)
        let type = map.type(default: context.defaultType)
        guard case .berkeley(let method) = MapTypeSupport(type: type) else {
            throw FatalError("unsupported dictionary type: \(type)")
        }
        var ignored: [Diagnostic] = []
        let expected = try compileSourceInMemory(
            path: map.name, format: context.personality == .postalias ? .postalias : .postmap,
            handling: context.handling, duplicates: context.options.duplicates,
            hostname: context.personality == .postalias ? (try context.config.myhostname()) : "localhost",
            warn: { ignored.append($0) }
        ).contents
        let actual = try readTableContents(
            tablePath: map.tablePath, method: method, typeName: type, handling: context.handling,
            warn: context.warn)
        let changes = MapDifference.compute(
            from: expected, to: actual, ignoringKeys: context.personality == .postalias ? ["YP_LAST_MODIFIED"] : [])
        // Printed as a diff from the source (what a build would store) to the table.
        if !json && !changes.isEmpty {
            context.output.standardOutput(Array("--- \(map.name) (source)\n+++ \(map.tablePath) (table)\n".utf8))
        }
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        if !json {
            let verdict =
                changes.isEmpty
                ? "\(map.tablePath): up to date with \(map.name) (\(expected.records.count) entries)"
                : "\(map.tablePath): \(changes.count) difference(s) from \(map.name)"
            context.output.standardError(verdict)
        }
        return changes.isEmpty ? 0 : 1
    }

    // MARK: --diff

    /// A semantic diff of two maps, each a source or a table.
    func diff(_ first: String, _ second: String, json: Bool) throws(FatalError) -> Int32 {
        let format: SourceFormat = context.personality == .postalias ? .postalias : .postmap
        let left = try loadMap(MapArgument(first), format: format, handling: context.handling, warn: context.warn)
        let right = try loadMap(MapArgument(second), format: format, handling: context.handling, warn: context.warn)
        let changes = MapDifference.compute(
            from: left, to: right, ignoringKeys: format == .postalias ? ["YP_LAST_MODIFIED"] : [])
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        return changes.isEmpty ? 0 : 1
    }
}

/// One finding as a JSON object: `{file, line, column, severity, message, rule}`.
func lintFindingJSON(_ finding: LintFinding) -> JSONObject {
    var object = JSONObject()
    object.add("file", finding.file)
    object.add("line", finding.line)
    object.add("column", finding.column)
    object.add("severity", finding.severity.rawValue)
    object.add("message", finding.message)
    object.add("rule", finding.rule.rawValue)
    return object
}

/// This program's version.
let swiftpostmapVersion = "0.4.0"

/// `--help`: the command lines in brief (the README has the details).
func helpText(program: String) -> String {
    """
    usage: \(program) [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...
           (postmap's options, messages and exit codes; as postalias, or with --aliases, postalias's)

    Validation (options and operands in any order; -- ends the options):
      --lint [--kind KIND] [--werror] [MAP...]   check map sources as Postfix will use them;
                                                  with -c DIR and no MAP, every map DIR's main.cf
                                                  and master.cf refer to
      --resolve ADDRESS... [--virtual MAP] [--vmailbox MAP] [--alias-map MAP]
                                                  what Postfix does with mail to ADDRESS
      --test FILE [--virtual MAP] [--vmailbox MAP] [--alias-map MAP]
                                                  check an expectations file
      --verify [type:]file                        the table holds what the source compiles to
      --diff MAP MAP                              the records two maps differ in (0 same, 1 differ, 2 trouble)
      --check file.db...                          integrity of table files
      --help, --version

    Options of the validation modes:
      -c DIR, --main-cf FILE   the server's configuration (else Postfix's defaults)
      --json                   one JSON object per result (JSON Lines)
      --passwd                 local users are this machine's passwd users (run on the server)
      --kind KIND              what a linted map is: \(MapKind.allCases.map(\.rawValue).joined(separator: ", "))

    A MAP is a source file (compiled in memory), NAME.db, or type:NAME (NAME.db, or the source
    NAME when there is no table). Exit status: 0 fine, 1 a finding, failure or fatal error.

    """
}
