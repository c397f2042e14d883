import MapCompiler

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
            guard operands.count == 1 else { throw FatalError("usage: --verify [--bytes] [type:]file") }
            return try verify(operands[0], json: options.json, bytes: options.compareBytes)
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
            return TableChecker.runWorker(path: path)
        case .resolve:
            guard !operands.isEmpty else { throw FatalError("usage: --resolve address...") }
            return try runResolve(addresses: operands, options: options, context: context)
        case .test(let file):
            return try runExpectations(file: file, options: options, context: context)
        case .scanConfig:
            guard operands.isEmpty else { throw FatalError("usage: --scan-config [-c DIR]") }
            return try scanConfiguration(json: options.json)
        case .sync:
            guard operands.isEmpty else { throw FatalError("usage: --sync [--dry-run] [--to lmdb|cdb] [-c DIR]") }
            return try synchronize(dryRun: options.dryRun, target: options.syncTarget, json: options.json)
        case .export(let target):
            guard operands.count == 1 else {
                throw FatalError("usage: --export pgsql:FILE [--conninfo STRING] [--table NAME] [type:]source")
            }
            return try export(to: target, source: operands[0], options: options)
        case .help:
            context.output.standardOutput(Array(helpText(program: "swiftpostmap").utf8))
            return 0
        case .version:
            context.output.standardOutput(
                Array(
                    "swiftpostmap \(swiftpostmapVersion) (\(BerkeleyDBLibrary.version); \(LMDBLibrary.version); tinycdb)\n"
                        .utf8))
            return 0
        }
    }
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
      --verify [--bytes] [type:]file              the table holds what the source compiles to
                                                  (--bytes: and is byte for byte what a
                                                  reproducible build writes)
      --diff MAP MAP                              the records two maps differ in (0 same, 1 differ, 2 trouble)
      --check TABLE...                            integrity of table files (NAME.db, NAME.lmdb,
                                                  NAME.cdb, or type:NAME)
      --scan-config [-c DIR]                      the Berkeley DB tables main.cf and master.cf
                                                  name (exit 1 while any remains)
      --sync [--dry-run] [--to lmdb|cdb] [-c DIR] compile every table of the configuration
                                                  that does not hold what its source compiles to
      --export pgsql:FILE [--conninfo STRING] [--table NAME] [type:]source
                                                  load the source into a PostgreSQL table (replaced
                                                  in one transaction) and write FILE, its
                                                  pgsql_table(5) configuration
      --help, --version

    Options of builds:
      --progress               a progress line on standard error even when it is not a terminal
                               (on a terminal, a build that runs over a second shows one anyway)
      --reproducible           the same bytes for the same source and options, anywhere, any
                               time (also whenever SOURCE_DATE_EPOCH is set, which postalias's
                               YP_LAST_MODIFIED then takes)

    Options of the validation modes:
      -c DIR, --main-cf FILE   the server's configuration (else Postfix's defaults)
      --json                   one JSON object per result (JSON Lines)
      --passwd                 local users are this machine's passwd users (run on the server)
      --aliases                the maps are aliases(5) sources and postalias tables (as when
                               run as postalias): --verify and --diff of an aliases table need it
      --kind KIND              what a linted map is: \(MapKind.allCases.map(\.rawValue).joined(separator: ", "))

    A MAP is a source file (compiled in memory), NAME.db, or type:NAME (hash, btree, lmdb, cdb:
    the table NAME.db, NAME.lmdb or NAME.cdb, or the source NAME when there is no table;
    pgsql:FILE: queried through libpq with FILE's settings).
    Exit status: 0 fine, 1 a finding, failure or fatal error.

    """
}
