import Foundation
import Glibc
import Testing

/// Differential tests of the options and modes beyond a plain build: `-i`, `-d`, `-F`, several
/// operands per mode, and main.cf (`-c DIR`, `MAIL_CONFIG`). Every case runs the same command
/// lines with the real postmap/postalias in one copy of a directory and swiftpostmap (through a
/// symlink with the real program's name) in another: stdout, stderr and exit status must be
/// identical, and afterwards the real binaries must read both directories' tables the same way
/// (`-s`, sorted; `YP_LAST_MODIFIED` masked) and the directories must hold the same files with
/// the same modes.
///
/// Every fatal exit of the real programs sleeps about a second, so the cases that end in one
/// are few and the parameterized tests run in parallel.
@Suite("Options against the real postmap", .enabled(if: oracleAvailable, "Postfix is not installed"))
struct OptionDifferentialTests {
    /// The seed of the generated cases; override with SWIFTPOSTMAP_OPTION_SEED.
    static let seed = UInt64(ProcessInfo.processInfo.environment["SWIFTPOSTMAP_OPTION_SEED"] ?? "") ?? 20_260_307

    // MARK: -i

    static let incrementalCases: [TwinCase] = [
        TwinCase("-i adds stdin to an existing table; duplicates and bad lines name stdin") { twin in
            try twin.write("a 1\nb 2\nÄ 3\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            let input =
                "A 9\nc 3\nkeyonly\n\"unbalanced x\nd: colon\nä 4\n  cont\n# comment\ne 5\n\u{FF}bad\nB 7\n"
            try await twin.compare(.postmap, ["-i", "s"], input: input)
            try await twin.expectSameTables(.postmap, ["hash:s"])
        },
        TwinCase("-i whose stdin starts with an indented line") { twin in
            try twin.write("a 1\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.compare(.postmap, ["-i", "s"], input: "  lead 1\n  more\nx 2\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
        },
        TwinCase("-i -r replaces, -i -w keeps silently, the later of -r/-w wins") { twin in
            try twin.write("a 1\nb 2\nc 3\nd 4\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.compare(.postmap, ["-i", "-r", "s"], input: "a 10\nA 11\nnew 1\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
            try await twin.compare(.postmap, ["-i", "-w", "s"], input: "b 20\nnew 2\nnew 3\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
            try await twin.compare(.postmap, ["-w", "-r", "-i", "s"], input: "c 30\n")
            try await twin.compare(.postmap, ["-r", "-iw", "s"], input: "d 40\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
        },
        TwinCase("-i on a missing table creates it, also from empty stdin") { twin in
            try await twin.compare(.postmap, ["-i", "s"], input: "x 1\ny 2\nx 3\n")
            try await twin.compare(.postmap, ["-i", "btree:empty"], input: "")
            try await twin.expectSameTables(.postmap, ["hash:s", "btree:empty"])
            try await twin.compare(.postmap, ["-q", "x", "s"])
        },
        TwinCase("-i over a zero-length .db removes it with a warning") { twin in
            try twin.write("", to: "s.db")
            try await twin.compare(.postmap, ["-i", "s"], input: "k v\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
        },
        TwinCase("-i on a btree") { twin in
            try twin.write("m 1\nz 2\n", to: "s")
            try await twin.prepare(.postmap, ["btree:s"])
            try await twin.compare(.postmap, ["-i", "btree:s"], input: "a 0\nM 5\nzz 3\n")
            try await twin.expectSameTables(.postmap, ["btree:s"])
            try await twin.compare(.postmap, ["-s", "btree:s"])
        },
        TwinCase("-i on a .db that is not a table: open database X.db: Invalid argument") { twin in
            try twin.write("garbage\n", to: "s.db")
            let real = try await twin.compare(.postmap, ["-i", "s"], input: "k v\n")
            #expect(real.err.hasSuffix("postmap: fatal: open database s.db: Invalid argument\n"))
            try twin.expectSameFiles()
        },
        TwinCase("-i on a btree opened as hash") { twin in
            try twin.write("m 1\n", to: "s")
            try await twin.prepare(.postmap, ["btree:s"])
            try await twin.compare(.postmap, ["-i", "hash:s"], input: "k v\n")
            try await twin.expectSameTables(.postmap, ["btree:s"])
        },
        TwinCase("-i with several operands: the first takes all of stdin, the others are created") { twin in
            try twin.write("a 1\n", to: "s")
            try twin.write("t 1\n", to: "t")
            try await twin.prepare(.postmap, ["s", "t"])
            try await twin.compare(.postmap, ["-i", "s", "t", "u", "btree:v"], input: "a 2\nb 2\n")
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t", "hash:u", "btree:v"])
        },
        TwinCase("-i -n and -i -N: NUL conventions per write, same key twice") { twin in
            try twin.write("a 1\nb 2\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.compare(.postmap, ["-i", "-n", "s"], input: "a 10\nc 3\n")
            try await twin.compare(.postmap, ["-i", "-N", "s"], input: "c 30\nd 4\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
            try await twin.compare(.postmap, ["-q", "-", "s"], input: "c\na\nd\n")
            try await twin.compare(.postmap, ["-n", "-q", "-", "s"], input: "c\na\nd\n")
            try await twin.compare(.postmap, ["-N", "-q", "c", "s"])
        },
        TwinCase("-i -f, -i -u and -i -F") { twin in
            try twin.write("one\n", to: "f1")
            try twin.write("two", to: "f2")
            try await twin.compare(.postmap, ["-i", "-f", "s"], input: "MiXed 1\nmixed 2\nÄ 3\n")
            try await twin.compare(.postmap, ["-i", "-u", "s"], input: "Ü\u{FF} bad\nÖ 5\nÄ 6\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
            try await twin.expectSameTables(.postmap, ["hash:s"], options: ["-u"])
            try await twin.compare(.postmap, ["-i", "-F", "files"], input: "k1 f1,f2\nk2 missing\nk3 f2\n")
            try await twin.expectSameTables(.postmap, ["hash:files"], options: ["-F"])
        },
    ]

    @Test("-i", arguments: incrementalCases)
    func incremental(_ twinCase: TwinCase) async throws {
        try await twinCase.run()
    }

    // MARK: -d

    /// Tables for the delete cases: `s` (NUL-terminated), `t` (`-n`), `b` (btree).
    static func deleteFixture(_ twin: Twin) async throws {
        try twin.write("A 1\nb 2\nÄ 3\nc\\ d 4\n\"q k\" 5\n", to: "s")
        try twin.write("a 5\nc 6\nB 7\n", to: "t")
        try twin.write("a 8\nz 9\n", to: "b")
        try await twin.prepare(.postmap, ["s"])
        try await twin.prepare(.postmap, ["-n", "t"])
        try await twin.prepare(.postmap, ["btree:b"])
    }

    static let deleteCases: [TwinCase] = [
        TwinCase("-d key from several maps, keys in various cases, -f, -u, -n, -N") { twin in
            try await deleteFixture(twin)
            try await twin.compare(.postmap, ["-d", "a", "s", "t", "btree:b"])
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t", "btree:b"])
            try await twin.compare(.postmap, ["-f", "-d", "B", "s", "t"])
            try await twin.compare(.postmap, ["-d", "B", "s"])
            try await twin.compare(.postmap, ["-u", "-d", "ä", "s"])
            try await twin.compare(.postmap, ["-d", "ä", "s"])
            try await twin.compare(.postmap, ["-N", "-d", "c", "t"])
            try await twin.compare(.postmap, ["-n", "-d", "c", "t"])
            try await twin.compare(.postmap, ["-n", "-d", "c\\ d", "s"])
            try await twin.compare(.postmap, ["-d", "c\\ d", "s"])
            try await twin.compare(.postmap, ["-d", "\"Q K\"", "s"])
            try await twin.compare(.postmap, ["-d", "zz", "s", "t", "btree:b"])
            try await twin.compare(.postmap, ["-d", "", "s"])
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t", "btree:b"])
            try twin.expectSameFiles()
        },
        TwinCase("-d - from several maps: keys from stdin, CR and empty lines, misses") { twin in
            try await deleteFixture(twin)
            try await twin.compare(.postmap, ["-d", "-", "s", "t", "btree:b"], input: "a\nC\nzz\n\nz\r\nÄ\nz")
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t", "btree:b"])
            try await twin.compare(.postmap, ["-d", "-", "s"], input: "")
            try await twin.compare(.postmap, ["-d", "-", "s", "t"], input: "nothing\nhere\n")
            try await twin.compare(.postmap, ["-f", "-d", "-", "t"], input: "b\nB\n")
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t", "btree:b"])
        },
        TwinCase("-d in a mixed NUL table follows the sticky NUL rule") { twin in
            try twin.write("a 1\nb 2\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.prepare(.postmap, ["-i", "-n", "s"], input: Data("c 3\nd 4\n".utf8))
            try await twin.compare(.postmap, ["-d", "-", "s"], input: "c\na\nd\n")
            try await twin.expectSameTables(.postmap, ["hash:s"])
            try await twin.compare(.postmap, ["-d", "b", "s"])
            try await twin.expectSameTables(.postmap, ["hash:s"])
        },
        TwinCase("-q, -s and -d of a .db that is not a table: open database X.db: Invalid argument") { twin in
            try twin.write("garbage\n", to: "s.db")
            for arguments in [["-q", "a", "s"], ["-s", "s"], ["-d", "a", "s"]] {
                let real = try await twin.compare(.postmap, arguments)
                #expect(real.err == "postmap: fatal: open database s.db: Invalid argument\n")
            }
            try twin.expectSameFiles()
        },
        TwinCase("-d key with a missing map in the middle: earlier maps are changed") { twin in
            try await deleteFixture(twin)
            try await twin.compare(.postmap, ["-d", "a", "s", "nonexist", "t"])
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t"])
        },
        TwinCase("-d - with a missing map in the middle: all maps are opened first") { twin in
            try await deleteFixture(twin)
            try await twin.compare(.postmap, ["-d", "-", "s", "nonexist", "t"], input: "a\nc\n")
            try await twin.expectSameTables(.postmap, ["hash:s", "hash:t"])
        },
    ]

    @Test("-d", arguments: deleteCases)
    func delete(_ twinCase: TwinCase) async throws {
        try await twinCase.run()
    }

    // MARK: -F

    static let base64Cases: [TwinCase] = [
        TwinCase("-F build, -F -s, -F -q, -F -q -") { twin in
            try twin.write("hello\n", to: "f1")
            try twin.write("wo\nrld", to: "f2")
            try twin.write("", to: "empty")
            try twin.write(Data([0x00, 0x01, 0xFF, 0x0A, 0x41]), to: "bin")
            try twin.write(
                "k1 f1\nk2 f1,f2\nk3 f1 f2 empty\nk4 missing\nk5 empty\nk6 f2, missing\nK7 f2,,f1\nk8 bin\n"
                    + "k9 ./f1\t,\tf2\n", to: "s")
            try twin.write("b1 f1\nb2 f2 f1\nb3 empty\n", to: "bt")
            try await twin.compare(.postmap, ["-F", "s"])
            try await twin.compare(.postmap, ["-F", "btree:bt"])
            try await twin.expectSameTables(.postmap, ["hash:s", "btree:bt"])
            try await twin.expectSameTables(.postmap, ["hash:s", "btree:bt"], options: ["-F"])
            try await twin.compare(.postmap, ["-s", "btree:bt"])
            try await twin.compare(.postmap, ["-F", "-s", "btree:bt"])
            try await twin.compare(.postmap, ["-F", "-s", "s"], sorted: true)
            try await twin.compare(.postmap, ["-s", "s"], sorted: true)
            for key in ["k2", "K3", "k5", "k7", "k8", "k4"] {
                try await twin.compare(.postmap, ["-F", "-q", key, "s"])
            }
            // The empty-value warnings name the key as typed, not as folded.
            try await twin.compare(.postmap, ["-q", "K5", "s"])
            try await twin.compare(.postmap, ["-F", "-q", "K5", "s"])
            try await twin.compare(.postmap, ["-F", "-q", "-", "s", "btree:bt"], input: "k1\nK2\nk5\nzz\nk9\nk8\n")
        },
        TwinCase("-F -s and -F -q of values that are not all valid base64") { twin in
            let long = String(repeating: "x", count: 40)
            try twin.write(
                "k1 YWJj\nk2 Y\nk3 YW=j\nk4 YWJjZA\nk5 ab!cd\nk6 \(long)\nk7 AA==\nk8 YQ==YWJj\nk9 ====\n"
                    + "ka ÄÖÜ=\nkb \(String(repeating: "!", count: 44))\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.compare(.postmap, ["-F", "-s", "s"])
            for key in ["k1", "k3", "k6", "k7", "k8", "k9"] {
                try await twin.compare(.postmap, ["-F", "-q", key, "s"])
            }
            try await twin.compare(.postmap, ["-F", "-q", "-", "s"], input: "k1\nk3\nk7\nk8\nzz\n")
        },
        TwinCase("-F -q of a malformed value is a query error") { twin in
            try twin.write("k1 YWJj\nk2 Y\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.compare(.postmap, ["-F", "-q", "K2", "s"])
        },
        TwinCase("-F -q - stops at a malformed value") { twin in
            try twin.write("k1 YWJj\nk2 Y\n", to: "s")
            try await twin.prepare(.postmap, ["s"])
            try await twin.compare(.postmap, ["-F", "-q", "-", "s"], input: "k1\nk2\nk1\n")
        },
    ]

    @Test("-F", arguments: base64Cases)
    func base64(_ twinCase: TwinCase) async throws {
        try await twinCase.run()
    }

    // MARK: Several operands

    static let operandCases: [TwinCase] = [
        TwinCase("build of several operands, then -q with the key in the second map, -q -, -s") { twin in
            try twin.write("a 1\nshared s\n", to: "one")
            try twin.write("b 2\nshared t\nÄ x\n", to: "two")
            try twin.write("c 3\n", to: "three")
            try await twin.compare(.postmap, ["one", "btree:two", "hash:three"])
            try await twin.expectSameTables(.postmap, ["hash:one", "btree:two", "hash:three"])
            try await twin.compare(.postmap, ["-q", "b", "one", "btree:two", "three"])
            try await twin.compare(.postmap, ["-q", "SHARED", "one", "btree:two"])
            try await twin.compare(.postmap, ["-q", "ä", "btree:two", "nonexist"])
            try await twin.compare(.postmap, ["-q", "c", "one", "btree:two", "three"])
            try await twin.compare(.postmap, ["-q", "zz", "one", "btree:two", "three"])
            try await twin.compare(
                .postmap, ["-q", "-", "one", "btree:two", "three", "nonexist"], input: "c\nb\nshared\nA\nÄ\n")
            try await twin.compare(.postmap, ["-s", "btree:two", "one"])
            try await twin.compare(.postmap, ["-s", "btree:two", "nonexist"])
        },
        TwinCase("a fatal operand in the middle: earlier built, later untouched") { twin in
            try twin.write("a 1\n", to: "one")
            try twin.write("c 3\n", to: "three")
            try await twin.prepare(.postmap, ["three"])
            try twin.write("c 33\nd 4\n", to: "three")
            try await twin.compare(.postmap, ["one", "nonexist", "three"])
            try await twin.expectSameTables(.postmap, ["hash:one", "hash:three"])
            try twin.expectSameFiles()
        },
        TwinCase("an unsupported type in the middle of a build") { twin in
            try twin.write("a 1\n", to: "one")
            try twin.write("b 2\n", to: "two")
            try await twin.compare(.postmap, ["btree:one", "foo:two", "two"])
            try await twin.expectSameTables(.postmap, ["btree:one"])
            try twin.expectSameFiles()
        },
    ]

    @Test("several operands", arguments: operandCases)
    func operands(_ twinCase: TwinCase) async throws {
        try await twinCase.run()
    }

    // MARK: main.cf

    /// main.cf texts that must be read as postmap reads them: the build without a type, a
    /// query, `-q -`, a listing and a postalias build must all agree.
    static let configCases: [ConfigCase] = [
        ConfigCase("default_database_type = btree"),
        ConfigCase("smtputf8_enable = no\ncompatibility_level = 3.6"),
        ConfigCase("compatibility_level = 0"),
        ConfigCase("compatibility_level = 2"),
        ConfigCase("compatibility_level = 3.6"),
        ConfigCase("compatibility_level = 3.10.1\nsmtputf8_enable = No"),
        ConfigCase("compatibility_level = +2\nsmtputf8_enable = YES"),
        ConfigCase("x = btree\ndefault_database_type = $x"),
        ConfigCase("x = btree\ndefault_database_type = ${x}"),
        ConfigCase("default_database_type = bt$(r)\nr = ree"),
        ConfigCase("x = 1\ndefault_database_type = ${x?{btree}:{hash}}"),
        ConfigCase("default_database_type = ${x?{btree}:{hash}}"),
        ConfigCase("default_database_type = ${undefined:btree}"),
        ConfigCase("default_database_type = ${{a} == {a} ? {btree} : {hash}}"),
        ConfigCase("compatibility_level = 3.6\nsmtputf8_enable = ${{$compatibility_level} <level {1} ? {no} : {yes}}"),
        ConfigCase("smtputf8_enable = ${{$compatibility_level} <level {1} ? {no} : {yes}}"),
        ConfigCase("compatibility_level = 3.10\nsmtputf8_enable = ${{$compatibility_level} < {3.9} ? {yes} : {no}}"),
        ConfigCase("berkeley_db_create_buffer_size = 1048576\nberkeley_db_read_buffer_size = 65536"),
        ConfigCase("berkeley_db_create_buffer_size = +2097152\nberkeley_db_read_buffer_size = 1"),
        ConfigCase("# only a comment\n\n   # indented comment\n"),
        ConfigCase("default_database_type =\n    btree\n# comment between\n"),
        ConfigCase("h = yp.example\nmyhostname = $h\ndefault_database_type=btree"),
        ConfigCase("mydomain = example.org"),
        ConfigCase(
            "compatibility_level = ${lvl}\nlvl = 3.6\nsmtputf8_enable = ${{$compatibility_level} >=level {3} ? {no} : {yes}}"
        ),
        ConfigCase("default_database_type = $${x}\n", broken: true),
        ConfigCase(""),
    ]

    /// Broken main.cf files: each makes both programs exit 1 (a second each for the oracle).
    static let brokenConfigCases: [ConfigCase] = [
        ConfigCase("default_database_type btree", broken: true),
        ConfigCase("default_database_type = btree\n= hash", broken: true),
        ConfigCase("compatibility_level = 3.6\nsmtputf8_enable = true", broken: true),
        ConfigCase("berkeley_db_create_buffer_size = 10k", broken: true),
        ConfigCase("berkeley_db_read_buffer_size = 0", broken: true, arguments: ["-q", "a", "s"]),
        ConfigCase("default_database_type = ${x", broken: true),
        ConfigCase("x = $x\ndefault_database_type = $x", broken: true),
        ConfigCase("compatibility_level = 3.", broken: true),
        ConfigCase("default_database_type =", broken: true),
        ConfigCase("default_database_type = ${{a} = {a} ? {btree} : {hash}}", broken: true),
        ConfigCase("myhostname = bad!host", broken: true),
        ConfigCase("smtputf8_enable = ${{$compatibility_level} <lev {1} ? {no} : {yes}}", broken: true),
        ConfigCase(nil, broken: true),
    ]

    @Test("main.cf", arguments: configCases)
    func mainConfig(_ configCase: ConfigCase) async throws {
        try await configCase.run(usingEnvironment: false)
    }

    @Test("broken main.cf", arguments: brokenConfigCases)
    func brokenMainConfig(_ configCase: ConfigCase) async throws {
        try await configCase.run(usingEnvironment: (configCase.text?.utf8.count ?? 0) % 2 == 0)
    }

    @Test("generated main.cf variants, via -c and MAIL_CONFIG", arguments: 0..<16)
    func generatedMainConfig(_ index: Int) async throws {
        var generator = SeededGenerator(seed: Self.seed &+ UInt64(index) &* 104_729)
        let text = ConfigGenerator.make(using: &generator)
        try await ConfigCase(text, label: "generated #\(index) (seed \(Self.seed))").run(
            usingEnvironment: index % 2 == 0)
    }
}

// MARK: - Cases

/// One differential scenario: a body that drives a ``Twin``.
struct TwinCase: Sendable, CustomTestStringConvertible {
    let name: String
    let body: @Sendable (Twin) async throws -> Void

    init(_ name: String, _ body: @escaping @Sendable (Twin) async throws -> Void) {
        self.name = name
        self.body = body
    }

    var testDescription: String { name }

    func run() async throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        let twin = try Twin(label: name)
        defer { twin.remove() }
        try await body(twin)
    }
}

/// A main.cf text (`nil`: the config directory has no main.cf) and the command lines run with it.
struct ConfigCase: Sendable, CustomTestStringConvertible {
    let text: String?
    let broken: Bool
    let arguments: [String]
    let label: String

    init(_ text: String?, broken: Bool = false, arguments: [String] = ["s"], label: String? = nil) {
        self.text = text
        self.broken = broken
        self.arguments = arguments
        self.label = label ?? (text.map { $0.debugDescription } ?? "no main.cf")
    }

    var testDescription: String { label }

    /// Broken files: one command line. Others: a build without a type, queries, a listing, a
    /// postalias build and its listing (which shows `YP_MASTER_NAME`).
    func run(usingEnvironment: Bool) async throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        let twin = try Twin(label: label)
        defer { twin.remove() }
        let config = twin.root.appendingPathComponent("cf")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        if let text {
            try backdate(write(text + (text.isEmpty ? "" : "\n"), to: "main.cf", in: config))
        }
        let via = usingEnvironment ? "MAIL_CONFIG" : "-c"
        let environment = usingEnvironment ? ["MAIL_CONFIG": config.path] : [:]
        let prefix = usingEnvironment ? [] : ["-c", config.path]
        try twin.write("A 1\nÄ 2\nStraße 3\nb 4\nb 5\n", to: "s")
        try twin.write("Root: admin\nÄrger: x\n", to: "al")
        let context = "\(label) via \(via)"
        if broken {
            try await twin.compare(.postmap, prefix + arguments, environment: environment, context: context)
            try twin.expectSameFiles()
            return
        }
        try await twin.compare(.postmap, prefix + arguments, environment: environment, context: context)
        try await twin.compare(.postmap, prefix + ["-q", "ä", "s"], environment: environment, context: context)
        try await twin.compare(
            .postmap, prefix + ["-q", "-", "s"], input: "a\nÄ\nä\nSTRASSE\nstraße\nB\n", environment: environment,
            context: context)
        try await twin.compare(
            .postmap, prefix + ["-s", "s"], environment: environment, sorted: true, context: context)
        try await twin.compare(.postalias, prefix + ["al"], environment: environment, context: context)
        try await twin.compare(.postalias, prefix + ["-q", "ärger", "al"], environment: environment, context: context)
        for (tool, map) in [(Tool.postmap, "s"), (.postalias, "al")] {
            // List with the type postmap built (listing the other type would be a fatal).
            let type = try twin.tableType(map) ?? "hash"
            try await twin.expectSameTables(tool, ["\(type):\(map)"], options: prefix, environment: environment)
        }
        try twin.expectSameFiles()
    }
}

/// Random valid main.cf files: compatibility levels, smtputf8_enable spellings, the default
/// type written directly or through `$name` expansions, buffer sizes, comments, blank lines,
/// continuation lines and spacing around `=`.
enum ConfigGenerator {
    static func pick<T>(_ items: [T], _ generator: inout SeededGenerator) -> T {
        items[Int(generator.next() % UInt64(items.count))]
    }

    static func make(using generator: inout SeededGenerator) -> String {
        var lines: [String] = []
        func assign(_ name: String, _ value: String, _ generator: inout SeededGenerator) -> String {
            pick(
                ["\(name) = \(value)", "\(name)=\(value)", "\(name)   =\t\(value)  ", "\(name) =\n    \(value)"],
                &generator)
        }
        if let level = pick([nil, "0", "1", "2", "3.6", "3.10", "0.9", "3.6.1", "10"], &generator) {
            lines.append(assign("compatibility_level", level, &generator))
        }
        if let utf8 = pick(
            [nil, nil, "yes", "no", "YES", "No", "${{$compatibility_level} <level {1} ? {no} : {yes}}", "$flag"],
            &generator)
        {
            lines.append(assign("smtputf8_enable", utf8, &generator))
            if utf8 == "$flag" { lines.append(assign("flag", pick(["yes", "no"], &generator), &generator)) }
        }
        let type = pick(["btree", "hash"], &generator)
        switch generator.next() % 7 {
        case 0: lines.append(assign("default_database_type", type, &generator))
        case 1:
            lines.append(assign("default_database_type", "$t", &generator))
            lines.append(assign("t", type, &generator))
        case 2:
            lines.append(assign("t", type, &generator))
            lines.append(assign("default_database_type", pick(["${t}", "$(t)"], &generator), &generator))
        case 3:
            if type == "btree" { lines.append(assign("useb", "1", &generator)) }
            lines.append(assign("default_database_type", "${useb?{btree}:{hash}}", &generator))
        case 4:
            lines.append(assign("default_database_type", "${{\(type)} == {btree} ? {btree} : {hash}}", &generator))
        case 5: lines.append(assign("default_database_type", "${nothing:\(type)}", &generator))
        default: break
        }
        if let size = pick([nil, "1048576", "+4194304", "16777216"], &generator) {
            lines.append(assign("berkeley_db_create_buffer_size", size, &generator))
        }
        if let size = pick([nil, "65536", "131072", "1"], &generator) {
            lines.append(assign("berkeley_db_read_buffer_size", size, &generator))
        }
        lines.append(assign("myhostname", "vm.localdomain", &generator))
        var out: [String] = []
        for line in lines.shuffled(using: &generator) {
            switch generator.next() % 6 {
            case 0: out.append("# comment")
            case 1: out.append("")
            default: break
            }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }
}

// MARK: - Twin directories

/// The two programs being compared.
enum Tool: String, Sendable {
    case postmap
    case postalias

    var realPath: String { self == .postmap ? realPostmap : realPostalias }
}

/// Two copies of one directory: the real program runs in `theirs`, swiftpostmap (as the real
/// program's name) in `ours`. A shared config directory has the reference host's main.cf.
struct Twin: Sendable {
    let root: URL
    let theirs: URL
    let ours: URL
    let config: URL
    let label: String

    var environment: [String: String] { ["MAIL_CONFIG": config.path] }

    /// Creates the two copies (and the config directory) in a fresh temporary directory.
    init(label: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("swiftpostmap-twin-\(UUID().uuidString)")
        theirs = root.appendingPathComponent("theirs")
        ours = root.appendingPathComponent("ours")
        for directory in [theirs, ours] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        config = try makeConfigDirectory(in: root.appendingPathComponent("etc"))
        self.label = label
    }

    /// Removes both copies.
    func remove() { try? FileManager.default.removeItem(at: root) }

    func write(_ content: String, to name: String) throws {
        try write(Data(content.utf8), to: name)
    }

    func write(_ content: Data, to name: String) throws {
        for directory in [theirs, ours] { try MapCompilerTests.write(content, to: name, in: directory) }
    }

    /// Runs the real program in both copies: setup both sides must share.
    func prepare(_ tool: Tool, _ arguments: [String], input: Data = Data()) async throws {
        for directory in [theirs, ours] {
            try await spawn(tool.realPath, arguments, in: directory, input: input, environment: environment)
        }
    }

    /// Runs `arguments` with the real program in `theirs` and swiftpostmap in `ours` and
    /// expects the same stdout, stderr and status (as sorted lines, build time masked, when
    /// `sorted`: for listings of tables the two programs wrote themselves). `aliasesOption`
    /// runs swiftpostmap under its own name with `--aliases` instead of as `postalias`.
    ///
    /// - Returns: the real program's result.
    @discardableResult
    func compare(
        _ tool: Tool, _ arguments: [String], input: String = "", environment extra: [String: String]? = nil,
        sorted: Bool = false, aliasesOption: Bool = false, context: String? = nil
    ) async throws -> ProcessResult {
        try await compare(
            tool, arguments, input: Data(input.utf8), environment: extra, sorted: sorted, aliasesOption: aliasesOption,
            context: context)
    }

    @discardableResult
    func compare(
        _ tool: Tool, _ arguments: [String], input: Data, environment extra: [String: String]? = nil,
        sorted: Bool = false, aliasesOption: Bool = false, context: String? = nil
    ) async throws -> ProcessResult {
        let environment = extra ?? self.environment
        async let theirResult = spawn(tool.realPath, arguments, in: theirs, input: input, environment: environment)
        async let ourResult =
            aliasesOption
            ? spawn(swiftpostmapPath, ["--aliases"] + arguments, in: ours, input: input, environment: environment)
            : spawn(swiftpostmapPath, arguments, in: ours, input: input, environment: environment, argv0: tool.rawValue)
        let real = try await theirResult
        var mine = try await ourResult
        let what =
            "\(label): \(tool.rawValue) \(arguments)\(aliasesOption ? " (--aliases)" : "")"
            + "\(context.map { ", \($0)" } ?? "")"
        if aliasesOption {
            mine.stderr = Data(normalizingProgramName(mine.stderr, "swiftpostmap").utf8)
            mine.stderr = Data(
                String(decoding: mine.stderr, as: UTF8.self).replacingOccurrences(of: "PROG:", with: "postalias:").utf8)
        }
        #expect(mine.status == real.status, "status of \(what)\npostmap: \(real)\nours: \(mine)")
        if sorted {
            #expect(
                sortedLines(maskingBuildTime(mine.stdout)) == sortedLines(maskingBuildTime(real.stdout)),
                "stdout of \(what)\npostmap: \(real)\nours: \(mine)")
            #expect(
                sortedLines(mine.stderr) == sortedLines(real.stderr),
                "stderr of \(what)\npostmap: \(real)\nours: \(mine)")
        } else {
            #expect(mine.out == real.out, "stdout of \(what)")
            #expect(mine.err == real.err, "stderr of \(what)")
        }
        return real
    }

    /// The real program lists `maps` in both copies: same entries (sorted, build time masked),
    /// same messages and status.
    func expectSameTables(
        _ tool: Tool, _ maps: [String], options: [String] = [], environment extra: [String: String]? = nil
    ) async throws {
        let environment = extra ?? self.environment
        for map in maps {
            let arguments = options + ["-s", map]
            async let theirTable = spawn(tool.realPath, arguments, in: theirs, environment: environment)
            async let ourTable = spawn(tool.realPath, arguments, in: ours, environment: environment)
            let (real, mine) = try await (theirTable, ourTable)
            let what = "\(label): real \(tool.rawValue) \(arguments) on both tables"
            #expect(
                sortedLines(maskingBuildTime(mine.stdout)) == sortedLines(maskingBuildTime(real.stdout)),
                "\(what)\npostmap's: \(real.out.debugDescription)\nours: \(mine.out.debugDescription)")
            #expect(sortedLines(mine.stderr) == sortedLines(real.stderr), "messages of \(what)")
            #expect(mine.status == real.status, "status of \(what)")
        }
    }

    /// The real program runs the same query in both copies: same answer.
    func expectSameQueries(_ tool: Tool, _ arguments: [String], input: Data) async throws {
        async let theirAnswer = spawn(tool.realPath, arguments, in: theirs, input: input, environment: environment)
        async let ourAnswer = spawn(tool.realPath, arguments, in: ours, input: input, environment: environment)
        let (real, mine) = try await (theirAnswer, ourAnswer)
        #expect(mine == real, "\(label): real \(tool.rawValue) \(arguments) on both tables")
    }

    /// The type of the table `name.db` in the real program's copy (`nil` when there is none),
    /// from the Berkeley DB magic number.
    func tableType(_ name: String) throws -> String? {
        let url = theirs.appendingPathComponent(name + ".db")
        guard let bytes = FileManager.default.contents(atPath: url.path), bytes.count >= 16 else { return nil }
        let magic = bytes[12..<16].reversed().reduce(0) { $0 << 8 | Int($1) }
        return magic == 0x05_3162 ? "btree" : "hash"
    }

    /// Both copies hold the same files (apart from the symlinks the runner makes) with the
    /// same modes.
    func expectSameFiles() throws {
        #expect(try files(in: ours) == (try files(in: theirs)), "files after \(label)")
    }

    private func files(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".bin-") }.sorted()
            .map { name in
                let attributes = try FileManager.default.attributesOfItem(
                    atPath: directory.appendingPathComponent(name).path)
                return "\(name) \(String((attributes[.posixPermissions] as? Int) ?? -1, radix: 8))"
            }
    }
}

// MARK: - Running programs

/// Sets a file's modification time ten minutes back. Postfix re-reads a main.cf that changed
/// within the last second, pausing 300 ms each time, until it is a second old.
func backdate(_ url: URL) throws {
    try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -600)], ofItemAtPath: url.path)
}

/// `posix_spawn_file_actions_addchdir_np` (glibc 2.29), which the Glibc module does not
/// export.
private typealias AddChdir =
    @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?)
    -> Int32
private let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
    unsafeBitCast($0, to: AddChdir.self)
}

/// Like ``run(_:_:in:input:environment:argv0:)`` (same environment, same symlink for
/// `argv0`), but with `posix_spawn` and without blocking a thread while the program runs, so
/// that the real programs' one-second sleep before a fatal exit overlaps with other cases.
@discardableResult
func spawn(
    _ executable: String, _ arguments: [String], in directory: URL, input: Data = Data(),
    environment: [String: String] = [:], argv0: String? = nil
) async throws -> ProcessResult {
    guard let addChdir else {
        return try run(executable, arguments, in: directory, input: input, environment: environment, argv0: argv0)
    }
    var path = executable
    if let argv0 {
        let link = directory.appendingPathComponent(".bin-\(argv0)/\(argv0)")
        try? FileManager.default.createDirectory(
            at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: link.path) {
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: executable)
        }
        path = link.path
    }
    var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"]
    for (key, value) in environment { env[key] = value }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("swiftpostmap-io-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let inPath = scratch.appendingPathComponent("in").path
    let outPath = scratch.appendingPathComponent("out").path
    let errPath = scratch.appendingPathComponent("err").path
    try input.write(to: URL(fileURLWithPath: inPath))

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = addChdir(&actions, directory.path)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    // The child starts with no signal blocked and default dispositions, whatever this test
    // process's threads have set up.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let status = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
    guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
    var waitStatus: Int32 = 0
    while true {
        let result = waitpid(pid, &waitStatus, WNOHANG)
        if result == pid { break }
        if result < 0, errno != EINTR { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        try await Task.sleep(nanoseconds: 2_000_000)
    }
    let exitStatus = (waitStatus & 0x7F) == 0 ? (waitStatus >> 8) & 0xFF : 128 + (waitStatus & 0x7F)
    return ProcessResult(
        status: exitStatus, stdout: try Data(contentsOf: URL(fileURLWithPath: outPath)),
        stderr: try Data(contentsOf: URL(fileURLWithPath: errPath)))
}
