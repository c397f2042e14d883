import Foundation
import Testing

/// Command lines run by the real postmap and by swiftpostmap (as `postmap`) in two copies of
/// the same directory: stdout, stderr and exit status must be identical, and so must the
/// mode of any table created.
@Suite(
    "Same command line, same answer as postmap", .serialized, .enabled(if: oracleAvailable, "Postfix is not installed"))
struct OracleCommandTests {
    static let commandLines: [[String]] = [
        [], ["-x"], ["-q"], ["-s"], ["-s", "-q", "a", "src"], ["-q", "a", "-s", "src"], ["-d", "a", "-q", "b", "src"],
        ["nonexist"], ["src", "nonexist", "other"], ["foo:src"], ["regexp:src"], ["cidr:src"], ["proxy:src"],
        ["fail:src"], [":src"], ["hash:"], ["lmdb2:src"], ["-q", "a", "foo:src"], ["-q", "a", ":src"],
        ["-q", "a", "hash:"], ["-s", "foo:src"], ["-q", "a", "nonexist"], ["-s", "nonexist"], ["-b", "src"],
        ["-b", "-q", "a", "src"], ["-fq", "A", "src"], ["-q", "A", "src"], ["-q", "zz", "src"],
        ["-q", "a", "src", "nonexist"], ["-q", "zz", "src", "nonexist"], ["-s", "src", "nonexist"],
        ["-N", "-q", "a", "src"],
        ["-n", "-q", "a", "src"], ["src", "-q", "a"], ["--", "src"], ["-r", "-w", "src"], ["-p", "src"],
        ["btree:src"], ["-u", "src"], ["-f", "src"], ["-m", "src"], ["-v", "src"],
        // In-memory types: answered, not written.
        ["-q", "a", "static:src"], ["-q", "zz", "static:hello"], ["-s", "static:x"], ["-d", "a", "static:x"],
        ["-q", "B", "texthash:src"], ["-q", "zz", "texthash:src"], ["-q", "a", "texthash:nonexist"],
        ["-d", "a", "texthash:src"], ["-q", "b", "inline:{a=1,b=2}"], ["-q", "a", "inline:{}"],
        ["-q", "a", "inline:{a}"], ["-q", "a", "static:{a"], ["texthash:src"], ["static:src"],
    ]

    /// lmdb and cdb tables (Debian's postfix-lmdb and postfix-cdb): builds, lookups,
    /// listings, `-i`/`-d` (cdb refuses both), trailing-NUL and duplicate options.
    static let lmdbAndCDBCommandLines: [[String]] = [
        ["lmdb:src"], ["cdb:src"], ["-q", "a", "lmdb:src"], ["-q", "A", "cdb:src"], ["-q", "zz", "lmdb:src"],
        ["-q", "zz", "cdb:src"], ["-s", "lmdb:src"], ["-s", "cdb:src"], ["-d", "a", "lmdb:src"],
        ["-d", "zz", "lmdb:src"], ["-d", "a", "cdb:src"], ["-i", "lmdb:src"], ["-i", "cdb:src"],
        ["-i", "lmdb:new"], ["-q", "a", "lmdb:nonexist"], ["-q", "a", "cdb:nonexist"], ["-s", "lmdb:nonexist"],
        ["-s", "cdb:nonexist"], ["-N", "-q", "a", "cdb:src"], ["-n", "-q", "a", "lmdb:src"],
        ["-n", "-q", "a", "cdb:src"],
        ["-r", "-w", "lmdb:src"], ["-p", "cdb:src"], ["-N", "cdb:src"], ["-n", "lmdb:src"], ["lmdb:nonexist"],
        ["-q", "x", "cdb:src", "lmdb:other"], ["-q", "-", "lmdb:src", "cdb:other"], ["-d", "a", "lmdb:nonexist"],
        ["-d", "a", "lmdb:src", "cdb:src"], ["-b", "-q", "-", "lmdb:src"],
    ]

    @Test("command line", arguments: commandLines)
    func sameAnswer(_ arguments: [String]) throws {
        try compare(arguments)
    }

    @Test("lmdb and cdb command line", arguments: lmdbAndCDBCommandLines)
    func sameAnswerLMDBAndCDB(_ arguments: [String]) throws {
        try compare(arguments)
    }

    /// main.cf's `default_database_type` picks the type of a bare name, as in Postfix.
    @Test(
        "command line with default_database_type",
        arguments: [
            ("lmdb", ["src"]), ("lmdb", ["-q", "a", "src"]), ("lmdb", ["-s", "src"]), ("cdb", ["src"]),
            ("cdb", ["-q", "b", "src"]), ("cdb", ["-s", "src"]), ("cdb", ["-d", "a", "src"]),
            ("lmdb", ["-d", "a", "src"]), ("lmdb", ["-i", "other"]),
        ])
    func sameAnswerWithDefaultType(_ type: String, _ arguments: [String]) throws {
        try compare(arguments, mainCf: "default_database_type = \(type)\n")
    }

    private func compare(_ arguments: [String], mainCf: String = "") throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root.appendingPathComponent("etc"), extra: mainCf)
            let env = ["MAIL_CONFIG": config.path]
            var results: [ProcessResult] = []
            var modes: [String] = []
            for side in ["theirs", "ours"] {
                let dir = root.appendingPathComponent(side)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                let src = try write("A 1\nb 2\nÄ 3\n", to: "src", in: dir)
                try write("x 9\n", to: "other", in: dir)
                try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: src.path)
                // Tables built by the real postmap, so both sides query the same thing.
                for map in ["hash:src", "lmdb:src", "cdb:src"] {
                    try run(realPostmap, ["-c", config.path, map], in: dir)
                }
                results.append(
                    side == "theirs"
                        ? try run(realPostmap, arguments, in: dir, environment: env)
                        : try swiftpostmap(arguments, in: dir, environment: env, argv0: "postmap"))
                let listing = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
                modes.append(
                    listing.filter { [".db", ".lmdb", ".cdb"].contains(where: $0.hasSuffix) }.sorted().map { name in
                        let attributes = try? FileManager.default.attributesOfItem(
                            atPath: dir.appendingPathComponent(name).path)
                        return "\(name) \(String((attributes?[.posixPermissions] as? Int) ?? -1, radix: 8))"
                    }.joined(separator: ","))
            }
            if arguments.contains("-v") {
                // -v adds implementation-specific lines; nothing else may change.
                #expect(results[1].status == results[0].status, "postmap \(arguments)")
                #expect(results[1].stdout == results[0].stdout, "postmap \(arguments)")
            } else {
                #expect(results[1] == results[0], "postmap \(arguments)")
            }
            #expect(modes[1] == modes[0], "tables and modes after postmap \(arguments)")
            // What each side's table answers now (after a build, -i or -d): the real postmap
            // lists the lmdb ones; cdb ones, which it cannot list, must be the same bytes.
            for name in ["src", "new", "other"] {
                let map = "lmdb:\(name)"
                // Only tables that exist (postmap pauses a second before a fatal exit).
                let present = ["theirs", "ours"].map { side in
                    FileManager.default.fileExists(
                        atPath: root.appendingPathComponent(side).appendingPathComponent("\(name).lmdb").path)
                }
                #expect(present[1] == present[0], "\(map) after postmap \(arguments)")
                guard present[0] && present[1] else { continue }
                let listings = try ["theirs", "ours"].map { side in
                    try run(realPostmap, ["-c", config.path, "-s", map], in: root.appendingPathComponent(side))
                }
                #expect(listings[1] == listings[0], "\(map) after postmap \(arguments)")
            }
            let cdbFiles = ["theirs", "ours"].map { side in
                try? Data(contentsOf: root.appendingPathComponent(side).appendingPathComponent("src.cdb"))
            }
            #expect(cdbFiles[1] == cdbFiles[0], "src.cdb after postmap \(arguments)")
        }
    }
}
