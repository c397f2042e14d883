import Glibc
import MapCompiler

/// Where a command writes: standard output (buffered by the caller) and messages.
public protocol CommandOutput: AnyObject {
    /// Bytes for standard output.
    func standardOutput(_ bytes: [UInt8])
    /// One message line, without the newline (program name already in it).
    func standardError(_ line: String)
    /// A fatal error ends the run: output not yet written is dropped, as postmap's buffered
    /// standard output is when it exits on a fatal error.
    func discardPendingOutput()
    /// Standard output is a terminal (`--lint` colours its findings there).
    var standardOutputIsTerminal: Bool { get }
    /// Standard error is a terminal (a long build shows a progress line there).
    var standardErrorIsTerminal: Bool { get }
    /// Shows `text` as the one progress line on standard error, replacing the previous one;
    /// `nil` erases it. A message written later erases it first.
    func showProgress(_ text: String?)
}

extension CommandOutput {
    /// Nothing to drop (for unbuffered outputs).
    public func discardPendingOutput() {}
    /// Not a terminal.
    public var standardOutputIsTerminal: Bool { false }
    /// Not a terminal.
    public var standardErrorIsTerminal: Bool { false }
    /// No progress line (only a terminal has one).
    public func showProgress(_ text: String?) {}
}

/// Reads standard input (the command line passes the real one; tests pass bytes).
public protocol CommandInput: AnyObject {
    /// Everything on standard input.
    func readAllInput() -> [UInt8]
}

/// Runs one postmap or postalias command line and returns its exit status.
///
/// This is the whole program behind `swiftpostmap`: option parsing, main.cf, then the
/// build, query, list or delete operation, with Postfix's messages and exit codes.
public struct PostmapCommand {
    /// The program name in messages.
    public let program: String
    /// postmap, or postalias when the program is named `postalias`.
    public let personality: Personality
    let output: CommandOutput
    let input: CommandInput
    let environment: [String: String]
    private let messages: MessagePrinter

    /// A command that reads `input`, writes to `output` and sees `environment`.
    ///
    /// - Parameters:
    ///   - program: the basename of `argv[0]`, used in every message; `postalias` selects
    ///     postalias behaviour.
    public init(program: String, environment: [String: String], input: CommandInput, output: CommandOutput) {
        self.program = program
        self.personality = program == "postalias" ? .postalias : .postmap
        self.environment = environment
        self.input = input
        self.output = output
        self.messages = MessagePrinter(program: program, output: output)
    }

    /// Runs the command line `arguments` (without the program name).
    ///
    /// - Returns: the exit status: postmap's (0, or 1 on a failure, a fatal error or a key
    ///   not found); `--diff` has diff(1)'s 0, 1, 2.
    public func run(_ arguments: [String]) -> Int32 {
        var personality = self.personality
        let options: CommandLineOptions
        do {
            if arguments.contains("--aliases") { personality = .postalias }
            options = try parseCommandLine(arguments, personality: personality)
        } catch {
            for line in error.lines(program: program, personality: personality) { output.standardError(line) }
            return 1
        }
        // A fatal error exits 1, as in Postfix; `--diff` keeps diff(1)'s convention instead
        // (0 equal, 1 different, 2 trouble), so a script can tell a difference from a failure.
        let troubleStatus: Int32 = options.extensions.mode == .diff ? 2 : 1
        do {
            return try execute(options, personality: options.aliasesMode ? .postalias : personality)
        } catch let error as FatalError {
            output.discardPendingOutput()
            output.standardError("\(program): \(error.rendered(utf8: messages.utf8))")
            return troubleStatus
        } catch {
            output.standardError("\(program): fatal: \(error)")
            return troubleStatus
        }
    }

    private func warn(_ diagnostic: Diagnostic) { messages.print(diagnostic) }

    private func execute(_ options: CommandLineOptions, personality: Personality) throws -> Int32 {
        let config: MainConfig
        if let file = options.extensions.mainCf {
            config = try MainConfig.load(file: file, warn: { warn($0) })
        } else {
            config = try MainConfig.load(
                explicitDirectory: options.configDirectory, environment: environment, warn: { warn($0) })
        }
        let smtputf8 = try config.smtputf8Enabled()
        messages.utf8 = smtputf8
        let defaultType = try config.defaultDatabaseType()

        if personality == .postmap {
            if options.bodyQuery || options.headerQuery || options.mime {
                if options.mode != .query("-") {
                    throw FatalError("specify -b -h or -m only with \"-q -\"")
                }
            }
            if options.mime && !options.bodyQuery && !options.headerQuery {
                warn(Diagnostic(.warning, "ignoring -m option without -b or -h"))
            }
        }
        // Postfix 3.11: -j only formats -q and -s output (so -j -d and -j -i are errors).
        if options.jsonShort && options.extensions.mode == .none {
            switch options.mode {
            case .query, .list: break
            case .build, .delete: throw FatalError("option -j requires -q or -s")
            }
        }
        var utf8 = smtputf8 && !options.disableUTF8
        if (options.bodyQuery || options.headerQuery) && !options.keepUTF8Checks { utf8 = false }
        let handling = KeyHandling(
            folding: options.fold ? (utf8 ? .unicode : .ascii) : .none, nul: options.nul, utf8: utf8)

        var context = OperationContext(
            options: options, personality: personality, config: config, defaultType: defaultType,
            handling: handling, warn: { warn($0) }, output: output, input: input)

        context.program = program
        context.sourceDateEpoch = environment["SOURCE_DATE_EPOCH"]
        context.postgresPassword = environment["PGPASSWORD"]
        context.colours = output.standardOutputIsTerminal && (environment["NO_COLOR"] ?? "").isEmpty
        context.configIsExplicit =
            options.configDirectory != nil || options.extensions.mainCf != nil || environment["MAIL_CONFIG"] != nil
        try checkOptionModes(options.extensions)
        if options.extensions.mode != .none {
            return try ExtensionCommands(context: context).run(options.extensions)
        }
        switch options.mode {
        case .build:
            guard !options.operands.isEmpty else { throw usage(personality) }
            for operand in options.operands { try context.build(MapArgument(operand)) }
            return 0
        case .query(let key):
            guard !options.operands.isEmpty else { throw usage(personality) }
            let maps = options.operands.map(MapArgument.init)
            return try key == "-" ? context.queryStandardInput(maps) : context.query(key, in: maps)
        case .list:
            guard let first = options.operands.first else { return 1 }
            try context.list(MapArgument(first))
            return 0
        case .delete(let key):
            guard !options.operands.isEmpty else { throw usage(personality) }
            return try context.delete(key, from: options.operands.map(MapArgument.init))
        }
    }

    /// Options that belong to one mode are refused elsewhere, rather than ignored.
    private func checkOptionModes(_ options: ExtensionOptions) throws(FatalError) {
        if options.compareBytes && options.mode != .verify { throw FatalError("--bytes works only with --verify") }
        if case .export = options.mode { return }
        if options.conninfo != nil { throw FatalError("--conninfo works only with --export") }
        if options.exportTable != nil { throw FatalError("--table works only with --export") }
    }

    private func usage(_ personality: Personality) -> FatalError {
        FatalError(personality.usage(program: program))
    }
}

/// Prints diagnostics with the program name; non-printable bytes become `?` (UTF-8 kept
/// when `smtputf8_enable` is on).
final class MessagePrinter {
    let program: String
    let output: CommandOutput
    var utf8 = true

    init(program: String, output: CommandOutput) {
        self.program = program
        self.output = output
    }

    func print(_ diagnostic: Diagnostic) {
        output.standardError("\(program): \(diagnostic.rendered(utf8: utf8))")
    }
}
