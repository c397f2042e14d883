import Foundation
import Testing

/// Differential tests with the real postmap as the oracle: seeded random sources are
/// compiled by both programs with the same options; then real `postmap -s` and `postmap -q -`
/// must answer identically on both tables, and swiftpostmap's `-q -` on postmap's table must
/// equal postmap's own. Build messages and exit codes must match too (program name aside).
@Suite("Differential against the real postmap", .serialized, .enabled(if: oracleAvailable, "Postfix is not installed"))
struct DifferentialTests {
    /// Sources per run, and the seed; override with SWIFTPOSTMAP_DIFF_COUNT / _SEED.
    static let count = Int(ProcessInfo.processInfo.environment["SWIFTPOSTMAP_DIFF_COUNT"] ?? "") ?? 300
    static let seed = UInt64(ProcessInfo.processInfo.environment["SWIFTPOSTMAP_DIFF_SEED"] ?? "") ?? 20_261_125

    @Test("random sources compile to tables postmap reads identically")
    func randomSources() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        var generator = SeededGenerator(seed: Self.seed)
        var compared = 0
        try withTemporaryDirectory { root in
            let utf8Config = try makeConfigDirectory(in: root.appendingPathComponent("utf8"))
            let asciiConfig = root.appendingPathComponent("ascii")
            try FileManager.default.createDirectory(at: asciiConfig, withIntermediateDirectories: true)
            try write("compatibility_level = 0\n", to: "main.cf", in: asciiConfig)
            for index in 0..<Self.count {
                let source = SourceGenerator.makeSource(using: &generator)
                let options = SourceGenerator.makeOptions(using: &generator)
                let type = Bool.random(using: &generator) ? "hash" : "btree"
                let config = generator.next() % 4 == 0 ? asciiConfig : utf8Config
                let keys = SourceGenerator.queryKeys(for: source, using: &generator)
                try compare(
                    index: index, source: source, options: options, type: type, config: config, keys: keys, root: root)
                compared += 1
            }
        }
        #expect(compared == Self.count)
    }

    /// The same comparison for lmdb and cdb tables (Debian's postfix-lmdb and postfix-cdb are
    /// the oracle): real `postmap -s` (lmdb) and `postmap -q -` read both tables alike, and a
    /// cdb file is byte for byte the one postmap writes (both go through tinycdb in source
    /// order).
    @Test("random sources compile to lmdb and cdb tables postmap reads identically")
    func randomSourcesLMDBAndCDB() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        var generator = SeededGenerator(seed: Self.seed &+ 1)
        var compared = 0
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root.appendingPathComponent("utf8"))
            for index in 0..<max(Self.count / 3, 1) {
                let source = SourceGenerator.makeSource(using: &generator)
                let options = SourceGenerator.makeOptions(using: &generator)
                let type = Bool.random(using: &generator) ? "lmdb" : "cdb"
                let keys = SourceGenerator.queryKeys(for: source, using: &generator)
                try compare(
                    index: index, source: source, options: options, type: type, config: config, keys: keys, root: root)
                compared += 1
            }
        }
        #expect(compared == max(Self.count / 3, 1))
    }

    /// `-q -` holds the tables' shared locks for runs of keys instead of around each lookup.
    /// Thousands of keys across many runs, a second map first needed in the middle of a run
    /// (and then, missing, stopping the query there), empty values and absent keys: stdout,
    /// stderr and status as postmap's.
    @Test("-q - over many runs of keys and a map first opened mid-run")
    func queryRuns() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { root in
            let config = try backdated(makeConfigDirectory(in: root))
            var first = "", second = "", keys = ""
            for index in 0..<3000 {
                if index < 700 { first += "k\(index)@Example.com\tfirst\(index)\n" }
                if index >= 600 && index % 7 != 0 {
                    second += index % 500 == 3 ? "k\(index)@example.com\n" : "k\(index)@example.com\tsecond\(index)\n"
                }
                keys += index % 11 == 5 ? "nobody\(index)\n" : "K\(index)@example.COM\n"
            }
            try write(first, to: "first", in: root)
            try write(second, to: "second", in: root)
            for map in ["first", "second"] {
                let built = try run(realPostmap, ["-c", config.path, "hash:\(map)"], in: root)
                #expect(built.status == 0, "postmap hash:\(map)")
            }
            for maps in [["hash:first", "hash:second"], ["hash:first", "hash:missing"], ["hash:second"]] {
                let arguments = ["-c", config.path, "-q", "-"] + maps
                let theirs = try run(realPostmap, arguments, in: root, input: Data(keys.utf8))
                let ours = try swiftpostmap(arguments, in: root, input: Data(keys.utf8), argv0: "postmap")
                #expect(ours.status == theirs.status, "\(maps)")
                #expect(ours.stdout == theirs.stdout, "\(maps)")
                #expect(ours.stderr == theirs.stderr, "\(maps)")
                // With a map that cannot be opened, postmap dies before its output is flushed.
                #expect((theirs.stdout.count > 10_000) == !maps.contains("hash:missing"), "\(maps): answers")
            }
        }
    }

    private func compare(
        index: Int, source: Data, options: [String], type: String, config: URL, keys: Data, root: URL
    ) throws {
        let context = "source #\(index) (seed \(Self.seed)), options \(options), \(type)"
        let theirs = root.appendingPathComponent("postmap-\(index)")
        let ours = root.appendingPathComponent("swiftpostmap-\(index)")
        for directory in [theirs, ours] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try write(source, to: "map", in: directory)
        }
        defer {
            try? FileManager.default.removeItem(at: theirs)
            try? FileManager.default.removeItem(at: ours)
        }
        let buildArguments = ["-c", config.path] + options + ["\(type):map"]
        let realBuild = try run(realPostmap, buildArguments, in: theirs)
        let ourBuild = try swiftpostmap(buildArguments, in: ours, argv0: "postmap")
        #expect(ourBuild.status == realBuild.status, "build status, \(context)")
        #expect(ourBuild.err == realBuild.err, "build messages, \(context)")

        let readOptions = options.filter { ["-f", "-u", "-n", "-N"].contains($0) }
        let list = ["-c", config.path] + readOptions + ["-s", "\(type):map"]
        let realListOfTheirs = try run(realPostmap, list, in: theirs)
        let realListOfOurs = try run(realPostmap, list, in: ours)
        #expect(sortedLines(realListOfOurs.stdout) == sortedLines(realListOfTheirs.stdout), "-s, \(context)")
        #expect(realListOfOurs.status == realListOfTheirs.status, "-s status, \(context)")

        let query = ["-c", config.path] + readOptions + ["-q", "-", "\(type):map"]
        let realQueryOfTheirs = try run(realPostmap, query, in: theirs, input: keys)
        let realQueryOfOurs = try run(realPostmap, query, in: ours, input: keys)
        #expect(realQueryOfOurs == realQueryOfTheirs, "real -q - on both tables, \(context)")
        let ourQueryOfTheirs = try swiftpostmap(query, in: theirs, input: keys, argv0: "postmap")
        #expect(ourQueryOfTheirs == realQueryOfTheirs, "our -q - on postmap's table, \(context)")
        if type == "cdb" {
            let theirFile = try? Data(contentsOf: theirs.appendingPathComponent("map.cdb"))
            let ourFile = try? Data(contentsOf: ours.appendingPathComponent("map.cdb"))
            #expect(ourFile == theirFile, "cdb file bytes, \(context)")
        }
    }
}

/// Random postmap sources with the features that matter: case, UTF-8 (including keys whose
/// folding changes length), tabs, continuation lines, comments, blank lines, duplicates,
/// long keys and values, CRLF, quoted keys, key-only lines and the odd invalid byte.
enum SourceGenerator {
    static let localParts = [
        "info", "Sales", "POSTMASTER", "joe.user", "a+b", "Jürgen", "STRASSE", "straße", "Ärger",
        "İstanbul", "ΣΑΣ", "σας", "ǅemal", "ﬀoo", "user_1", "x", "\"quoted local\"", "a\\ b", "k:",
    ]
    static let domains = [
        "example.com", "Example.COM", "example.net", "EXAMPLE.org", "bücher.example", "ΠΑΡΆΔΕΙΓΜΑ.δοκιμή",
    ]
    static let values = [
        "joe", "jane, sales-archive@example.org", "example.com/info", "example.com/sales/", "Bob <bob@x>",
        "  padded value  ", "with # hash", "Ünïcödé value", "\"quoted\"", "smtp:[mail.example.org]:25", "a\tb",
    ]

    static func pick<T>(_ items: [T], _ generator: inout SeededGenerator) -> T {
        items[Int(generator.next() % UInt64(items.count))]
    }

    static func key(_ generator: inout SeededGenerator) -> String {
        switch generator.next() % 6 {
        case 0: return "@" + pick(domains, &generator)
        case 1: return pick(domains, &generator)
        case 2: return pick(localParts, &generator)
        default: return pick(localParts, &generator) + "@" + pick(domains, &generator)
        }
    }

    static func makeSource(using generator: inout SeededGenerator) -> Data {
        var out = Data()
        let crlf = generator.next() % 8 == 0
        let eol = crlf ? "\r\n" : "\n"
        if generator.next() % 20 == 0 { out += Data("  leading whitespace line\(eol)".utf8) }
        let lines = 1 + Int(generator.next() % 25)
        for _ in 0..<lines {
            let separator = pick([" ", "\t", "  ", " \t "], &generator)
            switch generator.next() % 20 {
            case 0: out += Data("# a comment\(eol)".utf8)
            case 1: out += Data(eol.utf8)
            case 2: out += Data((key(&generator) + eol).utf8)  // key only
            case 3:
                out += Data((key(&generator) + separator + pick(values, &generator) + eol).utf8)
                out += Data(("\t" + pick(values, &generator) + eol).utf8)  // continuation
            case 4:
                out += Data((key(&generator) + separator).utf8) + Data([0xC3, 0x28]) + Data(eol.utf8)
            case 5:
                out += Data(
                    (key(&generator) + " " + String(repeating: "v", count: 2000 + Int(generator.next() % 3000)) + eol)
                        .utf8)
            case 6:
                out += Data((String(repeating: "k", count: 300) + "@example.com x" + eol).utf8)
            case 7:
                out += Data(("\"unbalanced key" + separator + "v" + eol).utf8)
            default:
                out += Data((key(&generator) + separator + pick(values, &generator) + eol).utf8)
            }
        }
        if generator.next() % 10 == 0, out.last == 0x0A { out.removeLast() }
        return out
    }

    static func makeOptions(using generator: inout SeededGenerator) -> [String] {
        let choices: [[String]] = [
            [], [], [], ["-f"], ["-u"], ["-n"], ["-N"], ["-r"], ["-w"], ["-f", "-r"], ["-n", "-w"],
        ]
        return pick(choices, &generator)
    }

    /// Keys present in the source (as written and with their case changed) plus misses.
    static func queryKeys(for source: Data, using generator: inout SeededGenerator) -> Data {
        var keys: [String] = []
        for line in String(decoding: source, as: UTF8.self).split(separator: "\n") {
            guard let first = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first else { continue }
            let key = String(first)
            keys.append(key)
            keys.append(key.uppercased())
        }
        for _ in 0..<5 { keys.append(key(&generator)) }
        keys.append("missing@nowhere.example")
        return Data((keys.joined(separator: "\n") + "\n").utf8)
    }
}
