import MapCompiler

/// postmap's and postalias's command line, parsed the way their getopt does it: options
/// stop at the first operand (or `--`), flags cluster (`-fq key`), an option's argument may
/// be attached (`-qkey`) or the next word. Errors carry glibc's and Postfix's exact texts.

/// Which program the command line belongs to.
public enum Personality: Sendable, Equatable {
    case postmap
    case postalias

    /// The option letters; a letter followed by `:` takes an argument.
    var optionString: String {
        switch self {
        case .postmap: return "bc:d:fFhijmnNopq:rsuUvw"
        case .postalias: return "Nc:d:fijnopq:rsuvw"
        }
    }

    func usage(program: String) -> String {
        switch self {
        case .postmap:
            return "usage: \(program) [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."
        case .postalias:
            return "usage: \(program) [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."
        }
    }
}

/// The operation a command line asks for.
public enum Mode: Sendable, Equatable {
    case build
    case query(String)
    case list
    case delete(String)
}

/// Extension modes reached only through long options (never a postmap spelling).
public enum ExtensionMode: Sendable, Equatable {
    case none
    /// `--lint MAP...`: diagnostics in `file:line:column: severity: message [rule]` form.
    case lint
    /// `--verify MAP`: the table holds exactly what compiling the source now would give.
    case verify
    /// `--check TABLE.db...`: integrity of table files.
    case check
    /// `--diff A B`: a semantic diff of two maps (sources or tables).
    case diff
    /// `--resolve ADDRESS...`: delivery-time address resolution.
    case resolve
    /// `--test FILE`: expectations checked against the maps.
    case test(String)
    /// `--scan-config`: the Berkeley DB tables a configuration refers to.
    case scanConfig
    /// `--sync`: compile every table of a configuration that does not hold what its source
    /// compiles to.
    case sync
    /// `--export pgsql:CF SOURCE`: the source's entries into a PostgreSQL table, and CF.
    case export(String)
    /// `--help`: a summary of the command line.
    case help
    /// `--version`: swiftpostmap's version and the Berkeley DB it is linked with.
    case version
    /// `--check-worker FILE` (internal, not documented): the child process that `--check`
    /// starts to run libdb's verifier and read the records of one untrusted table file,
    /// reporting to its parent on standard output.
    case checkWorker(String)
}

/// The options of the extension modes (all long options).
public struct ExtensionOptions: Sendable, Equatable {
    /// The extension mode selected (`.none`: a postmap command line).
    public var mode: ExtensionMode = .none
    /// `--json`: one JSON object per result (JSON Lines) instead of text.
    public var json = false
    /// `--werror`: warnings count as errors for the exit status of `--lint`.
    public var warningsAreErrors = false
    /// `--main-cf FILE`: read this main.cf instead of the usual one.
    public var mainCf: String? = nil
    /// `--virtual MAP` (repeatable), for `--resolve` and `--test`.
    public var virtualMaps: [String] = []
    /// `--vmailbox MAP` (repeatable).
    public var mailboxMaps: [String] = []
    /// `--alias-map MAP` (repeatable).
    public var aliasMaps: [String] = []
    /// `--passwd`: local users are the users of this machine's passwd (for `--resolve` and
    /// `--test` run on the mail server itself); otherwise every local user is assumed to exist.
    public var consultPasswd = false
    /// `--map-kind KIND` for `--lint`, instead of guessing from main.cf or the file name.
    public var mapKind: MapKind? = nil
    /// `--dry-run` for `--sync`: list what would be built, build nothing.
    public var dryRun = false
    /// `--to lmdb|cdb` for `--sync`: build the Berkeley DB tables as this type instead.
    public var syncTarget: TableType? = nil
    /// `--progress`: show a build's progress on standard error even when it is not a
    /// terminal (on a terminal, a build that takes more than a second shows it anyway).
    public var progress = false
    /// `--reproducible`: tables with the same bytes for the same source and options (also
    /// whenever `SOURCE_DATE_EPOCH` is set).
    public var reproducible = false
    /// `--bytes` for `--verify`: the table must also be byte for byte what a reproducible
    /// build writes.
    public var compareBytes = false
    /// `--conninfo STRING` for `--export`: libpq's connection string.
    public var conninfo: String? = nil
    /// `--table NAME` for `--export`.
    public var exportTable: String? = nil

    /// No extension options.
    public init() {}
}

/// A parsed command line.
public struct CommandLineOptions: Sendable, Equatable {
    /// Build (no mode option), `-q`, `-s` or `-d`.
    public var mode: Mode = .build
    /// `-c DIR`.
    public var configDirectory: String? = nil
    /// `false` with `-f`: keys keep their case.
    public var fold = true
    /// `-F`: values name files stored base64-encoded.
    public var base64Files = false
    /// `-b`: body lines of a message on stdin are keys.
    public var bodyQuery = false
    /// `-h`: header lines of a message on stdin are keys.
    public var headerQuery = false
    /// `-m`: MIME-aware `-b`/`-h`.
    public var mime = false
    /// `-i`: entries from stdin added to the table.
    public var incremental = false
    /// `-N` or `-n` (the last one given).
    public var nul: NULPolicy = .automatic
    /// `-o`: a root caller keeps ownership.
    public var keepCallerOwnership = false
    /// `false` with `-p`: new tables get mode 0644.
    public var derivePermissions = true
    /// `-r` or `-w` (the last one given).
    public var duplicates: DuplicatePolicy = .warn
    /// `-u`: no UTF-8 mode.
    public var disableUTF8 = false
    /// `-U`: UTF-8 checks kept with `-b`/`-h`.
    public var keepUTF8Checks = false
    /// How many `-v` (accepted, no effect).
    public var verbose = 0
    /// The maps (and for some extension modes addresses or files), in order.
    public var operands: [String] = []
    /// `--aliases`: postalias behaviour under any program name.
    public var aliasesMode = false
    /// `-j` (Postfix 3.11): JSON output for `-q` and `-s`.
    public var jsonShort = false
    /// Long-option extensions.
    public var extensions = ExtensionOptions()

    /// An empty command line: build, with postmap's defaults.
    public init() {}
}

/// What can go wrong while parsing; ``lines(program:personality:)`` gives the messages.
public enum CommandLineError: Error, Equatable, Sendable {
    /// An unknown option letter (glibc's message, then usage).
    case invalidOption(Character)
    /// An option that needs an argument came last (glibc's message, then usage).
    case missingArgument(Character)
    /// A mode option after another mode option: Postfix's fatal text.
    case conflictingModes(String)
    /// Other usage errors (no operand, …).
    case usage
    /// A long option that swiftpostmap does not know, or that lacks its argument.
    case badLongOption(String)

    /// The stderr lines, program name included, for `personality`.
    public func lines(program: String, personality: Personality) -> [String] {
        switch self {
        case .invalidOption(let c):
            return [
                "\(program): invalid option -- '\(c)'", "\(program): fatal: \(personality.usage(program: program))",
            ]
        case .missingArgument(let c):
            return [
                "\(program): option requires an argument -- '\(c)'",
                "\(program): fatal: \(personality.usage(program: program))",
            ]
        case .conflictingModes(let text):
            return ["\(program): fatal: \(text)"]
        case .usage:
            return ["\(program): fatal: \(personality.usage(program: program))"]
        case .badLongOption(let text):
            return ["\(program): fatal: \(text)", "\(program): fatal: \(personality.usage(program: program))"]
        }
    }
}

/// Parses `arguments` (without the program name).
///
/// Long options (`--lint`, …) are swiftpostmap's extensions. A command line that selects an
/// extension mode (`--lint`, `--resolve`, `--help`, …) before its first operand is parsed as
/// getopt_long permutes: after the mode, options and operands mix in any order and `--` ends
/// the options. Any other command line is parsed exactly as postmap's getopt does (options
/// stop at the first operand, so `postmap virtual --lint` builds two tables, as postmap
/// does): the extensions never change what a postmap command line means.
public func parseCommandLine(
    _ arguments: [String], personality: Personality
) throws(CommandLineError)
    -> CommandLineOptions
{
    let strict = try parseOptions(arguments, personality: personality, permute: false)
    guard strict.extensions.mode != .none else { return strict }
    return try parseOptions(arguments, personality: personality, permute: true)
}

private func parseOptions(
    _ arguments: [String], personality: Personality, permute: Bool
) throws(CommandLineError)
    -> CommandLineOptions
{
    var options = CommandLineOptions()
    let spec = personality.optionString
    var takesArgument: [Character: Bool] = [:]
    var chars = Array(spec)
    var index = 0
    while index < chars.count {
        let hasArgument = index + 1 < chars.count && chars[index + 1] == ":"
        takesArgument[chars[index]] = hasArgument
        index += hasArgument ? 2 : 1
    }
    chars.removeAll()

    var seenQuery = false
    var seenList = false
    var seenDelete = false
    var position = 0
    var operands: [String] = []
    while position < arguments.count {
        let word = arguments[position]
        if word == "--" {
            position += 1
            break
        }
        if word.hasPrefix("--") {
            try parseLongOption(word, arguments: arguments, position: &position, into: &options)
            position += 1
            continue
        }
        guard word.hasPrefix("-"), word.count > 1 else {
            guard permute else { break }
            operands.append(word)
            position += 1
            continue
        }
        let letters = Array(word.dropFirst())
        var i = 0
        while i < letters.count {
            let letter = letters[i]
            guard let needsArgument = takesArgument[letter] else {
                throw CommandLineError.invalidOption(letter)
            }
            var argument = ""
            if needsArgument {
                if i + 1 < letters.count {
                    argument = String(letters[(i + 1)...])
                } else if position + 1 < arguments.count {
                    position += 1
                    argument = arguments[position]
                } else {
                    throw CommandLineError.missingArgument(letter)
                }
                i = letters.count
            } else {
                i += 1
            }
            switch letter {
            case "b": options.bodyQuery = true
            case "c": options.configDirectory = argument
            case "d":
                if seenList || seenQuery || seenDelete {
                    throw CommandLineError.conflictingModes("specify only one of -s -q or -d")
                }
                seenDelete = true
                options.mode = .delete(argument)
            case "f": options.fold = false
            case "F": options.base64Files = true
            case "h": options.headerQuery = true
            case "i": options.incremental = true
            case "j": options.jsonShort = true
            case "m": options.mime = true
            case "N": options.nul = .withNUL
            case "n": options.nul = .withoutNUL
            case "o": options.keepCallerOwnership = true
            case "p": options.derivePermissions = false
            case "q":
                if seenList || seenQuery || seenDelete {
                    throw CommandLineError.conflictingModes("specify only one of -s -q or -d")
                }
                seenQuery = true
                options.mode = .query(argument)
            case "r": options.duplicates = .replace
            case "s":
                if seenQuery || seenDelete {
                    throw CommandLineError.conflictingModes("specify only one of -s or -q or -d")
                }
                seenList = true
                options.mode = .list
            case "u": options.disableUTF8 = true
            case "U": options.keepUTF8Checks = true
            case "v": options.verbose += 1
            case "w": options.duplicates = .ignore
            default: throw CommandLineError.invalidOption(letter)
            }
        }
        position += 1
    }
    options.operands = operands + Array(arguments[position...])
    return options
}

/// Parses one `--name` or `--name=value` word (and the value from the next word when the
/// option takes one and no `=` was given).
private func parseLongOption(
    _ word: String, arguments: [String], position: inout Int, into options: inout CommandLineOptions
) throws(CommandLineError) {
    var name = word
    var inlineValue: String? = nil
    if let equals = word.firstIndex(of: "=") {
        name = String(word[..<equals])
        inlineValue = String(word[word.index(after: equals)...])
    }
    func value() throws(CommandLineError) -> String {
        if let inlineValue { return inlineValue }
        guard position + 1 < arguments.count else {
            throw CommandLineError.badLongOption("option \(name) needs an argument")
        }
        position += 1
        return arguments[position]
    }
    func setMode(_ mode: ExtensionMode) throws(CommandLineError) {
        if options.extensions.mode != .none && options.extensions.mode != mode {
            throw CommandLineError.badLongOption(
                "specify only one of --lint --verify --check --diff --resolve --test --scan-config --sync --export --help"
                    + " --version")
        }
        options.extensions.mode = mode
    }
    switch name {
    case "--aliases": options.aliasesMode = true
    case "--lint": try setMode(.lint)
    case "--verify": try setMode(.verify)
    case "--check": try setMode(.check)
    case "--diff": try setMode(.diff)
    case "--resolve": try setMode(.resolve)
    case "--test": try setMode(.test(try value()))
    case "--check-worker": try setMode(.checkWorker(try value()))
    case "--scan-config": try setMode(.scanConfig)
    case "--sync": try setMode(.sync)
    case "--export": try setMode(.export(try value()))
    case "--conninfo": options.extensions.conninfo = try value()
    case "--table": options.extensions.exportTable = try value()
    case "--dry-run": options.extensions.dryRun = true
    case "--progress": options.extensions.progress = true
    case "--reproducible": options.extensions.reproducible = true
    case "--bytes": options.extensions.compareBytes = true
    case "--to":
        let text = try value()
        guard let target = TableType(rawValue: text), target == .lmdb || target == .cdb else {
            throw CommandLineError.badLongOption("--to takes lmdb or cdb, not \(text)")
        }
        options.extensions.syncTarget = target
    case "--help": try setMode(.help)
    case "--version": try setMode(.version)
    case "--json": options.extensions.json = true
    case "--werror": options.extensions.warningsAreErrors = true
    case "--passwd": options.extensions.consultPasswd = true
    case "--main-cf": options.extensions.mainCf = try value()
    case "--virtual": options.extensions.virtualMaps.append(try value())
    case "--vmailbox": options.extensions.mailboxMaps.append(try value())
    case "--alias-map": options.extensions.aliasMaps.append(try value())
    case "--kind", "--map-kind":
        let text = try value()
        guard let kind = MapKind(rawValue: text) else {
            throw CommandLineError.badLongOption(
                "\(name) takes one of \(MapKind.allCases.map(\.rawValue).joined(separator: " ")), not \(text)")
        }
        options.extensions.mapKind = kind
    default:
        throw CommandLineError.badLongOption("unknown option \(name)")
    }
}
