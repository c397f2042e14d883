import Foundation
import Testing

/// `--export pgsql:CF` and `pgsql:` maps, against a PostgreSQL server of the test's own and
/// Postfix's own pgsql client (the real `postmap -q … pgsql:CF`).
@Suite(
    "PostgreSQL export", .serialized,
    .enabled(if: postgresAvailable, "PostgreSQL, postfix-pgsql or Postfix is not installed"))
struct PostgreSQLExportTests {
    /// A seeded virtual map with what tends to go wrong: mixed case, quotes, backslashes,
    /// percent signs, catch-alls, duplicates, UTF-8 in keys and values.
    private func generatedMap(seed: UInt64, entries: Int) -> (source: String, keys: [String]) {
        var random = SeededGenerator(seed: seed)
        var lines = ["# seed \(seed)"]
        var keys: [String] = []
        let oddities = ["O'Brien", "back\\slash", "per%cent", "Ünïcödé", "日本語", "quote\"d", "semi;colon", "dash-_x"]
        for index in 0..<entries {
            let domain = "Example\(random.next() % 7).COM"
            let key: String
            switch random.next() % 6 {
            case 0: key = "@" + domain
            case 1: key = oddities[Int(random.next() % UInt64(oddities.count))] + "\(index)@" + domain
            case 2 where !keys.isEmpty: key = keys[Int(random.next() % UInt64(keys.count))]  // a duplicate
            default: key = "User\(index)@" + domain
            }
            let value = ["box\(index)@example.org", "a@x.test, b@y.test", "Wert-\(index)-ü", "it's%s"][
                Int(random.next() % 4)]
            lines.append("\(key)\t\(value)")
            keys.append(key)
        }
        return (lines.joined(separator: "\n") + "\n", keys)
    }

    /// Every key, its upper- and lower-case forms, and keys that are absent.
    private func probes(_ keys: [String]) -> String {
        var all: [String] = []
        for key in keys { all += [key, key.uppercased(), key.lowercased()] }
        all += ["absent@example0.com", "@nowhere.test", "o'brien@nowhere", "%s", "'; DROP TABLE x; --"]
        return all.joined(separator: "\n") + "\n"
    }

    @Test(
        "Postfix's pgsql client answers what the hash table answers, for every key", arguments: [1, 2, 3] as [UInt64])
    func sameAnswersAsHash(seed: UInt64) throws {
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                let config = try backdated(makeConfigDirectory(in: root))
                let map = generatedMap(seed: seed, entries: 400)
                try write(map.source, to: "virtual", in: root)
                let cf = root.appendingPathComponent("virtual.cf").path
                let exported = try swiftpostmap(
                    ["-c", config.path, "--export", "pgsql:\(cf)", "--conninfo", server.conninfo(), "virtual"], in: root
                )
                #expect(exported.status == 0, "\(exported)")
                #expect(exported.err.contains(" entries from virtual in table \"virtual\" of database mail"))
                // The duplicate warnings are a build's.
                let built = try run(realPostmap, ["-c", config.path, "hash:virtual"], in: root)
                #expect(built.status == 0)
                let warnings = exported.err.split(separator: "\n").filter { $0.contains("duplicate entry") }
                #expect(
                    warnings.map { $0.replacingOccurrences(of: "swiftpostmap:", with: "postmap:") }
                        == built.err.split(separator: "\n").filter { $0.contains("duplicate entry") }.map(String.init))

                let input = Data(probes(map.keys).utf8)
                let fromHash = try run(
                    realPostmap, ["-c", config.path, "-q", "-", "hash:virtual"], in: root, input: input)
                let fromPgsql = try run(
                    realPostmap, ["-c", config.path, "-q", "-", "pgsql:\(cf)"], in: root, input: input)
                #expect(fromPgsql.status == fromHash.status)
                #expect(fromPgsql.err.isEmpty, "\(fromPgsql.err)")
                #expect(fromPgsql.out == fromHash.out)
                #expect(fromHash.out.split(separator: "\n").count > 600, "the probes find most keys")
                // swiftpostmap's own pgsql reader answers the same.
                let ours = try swiftpostmap(["-c", config.path, "-q", "-", "pgsql:\(cf)"], in: root, input: input)
                #expect(ours.out == fromPgsql.out)
                // And the maps are equal, record by record.
                let diff = try swiftpostmap(["-c", config.path, "--diff", "hash:virtual", "pgsql:\(cf)"], in: root)
                #expect(diff.status == 0, "\(diff)")
            }
        }
    }

    @Test("the file Postfix reads, the table and its index; -s, --verify, --diff, --resolve, --lint read it back")
    func readingBack() throws {
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                let config = try backdated(
                    makeConfigDirectory(
                        in: root, extra: "virtual_alias_domains = example.com\nvirtual_alias_maps = hash:virtual\n"))
                try write(
                    "Info@Example.COM joe@example.net\n@example.com catchall@example.net\n", to: "virtual", in: root)
                let cf = root.appendingPathComponent("pgsql-virtual.cf")
                let exported = try swiftpostmap(
                    [
                        "-c", config.path, "--export", "pgsql:\(cf.path)", "--conninfo", server.conninfo(), "--table",
                        "aliases_v1", "hash:virtual",
                    ], in: root)
                #expect(exported.status == 0, "\(exported)")
                let text = try String(contentsOf: cf, encoding: .utf8)
                for line in [
                    "hosts = inet:127.0.0.1:\(server.port)", "user = postgres", "dbname = mail",
                    "query = SELECT value FROM \"aliases_v1\" WHERE key = '%s'", "encoding = LATIN1",
                ] {
                    #expect(text.contains(line + "\n"), "\(line) in \(text)")
                }
                #expect(!text.contains("password"))
                let mode = try FileManager.default.attributesOfItem(atPath: cf.path)[.posixPermissions] as? Int
                #expect(mode == 0o644)
                let index = try server.psql("SELECT indexdef FROM pg_indexes WHERE tablename = 'aliases_v1'").out
                #expect(index.contains("USING hash (key)"), "\(index)")

                let listed = try swiftpostmap(["-c", config.path, "-s", "pgsql:\(cf.path)"], in: root)
                #expect(listed.out == "@example.com\tcatchall@example.net\ninfo@example.com\tjoe@example.net\n")
                let verified = try swiftpostmap(["-c", config.path, "--verify", "pgsql:\(cf.path)"], in: root)
                #expect(verified.status == 0, "\(verified)")
                let resolved = try swiftpostmap(
                    ["-c", config.path, "--resolve", "--virtual", "pgsql:\(cf.path)", "INFO@example.com"], in: root)
                #expect(resolved.out.contains("joe@example.net"), "\(resolved)")
                try write("INFO@example.com  joe@example.net  remote\n", to: "expectations", in: root)
                let tested = try swiftpostmap(
                    ["-c", config.path, "--virtual", "pgsql:\(cf.path)", "--test", "expectations"], in: root)
                #expect(tested.status == 0, "\(tested)")
                let linted = try swiftpostmap(
                    ["-c", config.path, "--lint", "--kind", "virtual", "pgsql:\(cf.path)"], in: root)
                #expect(linted.status == 0, "\(linted)")

                // The source changes: --verify and --diff say so until the next export.
                try write(
                    "Info@Example.COM jane@example.net\n@example.com catchall@example.net\n", to: "virtual", in: root)
                let stale = try swiftpostmap(["-c", config.path, "--verify", "pgsql:\(cf.path)"], in: root)
                #expect(stale.status == 1)
                #expect(stale.out.contains("~ info@example.com jane@example.net → joe@example.net"), "\(stale)")
                let differ = try swiftpostmap(["-c", config.path, "--diff", "virtual", "pgsql:\(cf.path)"], in: root)
                #expect(differ.status == 1)
                // Through the server's socket (on a port that is not 5432: a URI in hosts).
                let socketFile = root.appendingPathComponent("socket.cf").path
                let viaSocket = try swiftpostmap(
                    [
                        "-c", config.path, "--export", "pgsql:\(socketFile)", "--conninfo",
                        "host=\(server.directory.path) port=\(server.port) dbname=mail user=postgres", "--table",
                        "aliases_v2", "virtual",
                    ], in: root)
                #expect(viaSocket.status == 0, "\(viaSocket)")
                let socketText = try String(contentsOfFile: socketFile, encoding: .utf8)
                #expect(socketText.contains("hosts = postgresql://postgres@"), "\(socketText)")
                let throughSocket = try run(
                    realPostmap, ["-c", config.path, "-q", "info@example.com", "pgsql:\(socketFile)"], in: root)
                #expect(throughSocket.out == "jane@example.net\n", "\(throughSocket)")
                // The real postmap cannot list a pgsql map; swiftpostmap can, through its marker.
                let real = try run(realPostmap, ["-c", config.path, "-s", "pgsql:\(cf.path)"], in: root)
                #expect(real.err.contains("sequence operation is not supported"))
            }
        }
    }

    @Test("a password given goes into the file, which is then mode 0640 and group postfix")
    func passwordFile() throws {
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                let config = try backdated(makeConfigDirectory(in: root))
                try server.psql("CREATE ROLE secured LOGIN PASSWORD 'right'; GRANT CREATE ON SCHEMA public TO secured")
                try write("a@example.com b\n", to: "virtual", in: root)
                let cf = root.appendingPathComponent("v.cf")
                let exported = try swiftpostmap(
                    [
                        "-c", config.path, "--export", "pgsql:\(cf.path)", "--conninfo",
                        server.conninfo(user: "secured", password: "right"), "virtual",
                    ], in: root)
                #expect(exported.status == 0, "\(exported)")
                let text = try String(contentsOf: cf, encoding: .utf8)
                #expect(text.contains("password = right\n") && text.contains("user = secured\n"))
                let attributes = try FileManager.default.attributesOfItem(atPath: cf.path)
                #expect(attributes[.posixPermissions] as? Int == 0o640)
                if getuid() == 0 { #expect(attributes[.groupOwnerAccountName] as? String == "postfix") }
                // Postfix logs in with it.
                let query = try run(
                    realPostmap, ["-c", config.path, "-q", "A@example.com", "pgsql:\(cf.path)"], in: root)
                #expect(query.out == "b\n", "\(query)")
                // PGPASSWORD counts as given too.
                let fromEnvironment = try swiftpostmap(
                    [
                        "-c", config.path, "--export", "pgsql:\(cf.path)", "--conninfo",
                        server.conninfo(user: "secured"),
                        "virtual",
                    ], in: root, environment: ["PGPASSWORD": "right"])
                #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
                #expect(try String(contentsOf: cf, encoding: .utf8).contains("password = right\n"))
            }
        }
    }

    @Test("a failed export changes nothing and says why")
    func failures() throws {
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                let config = try backdated(makeConfigDirectory(in: root))
                try write("a@example.com old\n", to: "virtual", in: root)
                let cf = root.appendingPathComponent("v.cf")
                #expect(
                    try swiftpostmap(
                        [
                            "-c", config.path, "--export", "pgsql:\(cf.path)", "--conninfo", server.conninfo(),
                            "virtual",
                        ],
                        in: root
                    ).status == 0)
                let before = try Data(contentsOf: cf)
                try write("a@example.com new\n", to: "virtual", in: root)
                func export(_ conninfo: String, table: [String] = []) throws -> ProcessResult {
                    try swiftpostmap(
                        ["-c", config.path, "--export", "pgsql:\(cf.path)", "--conninfo", conninfo] + table + [
                            "virtual"
                        ],
                        in: root)
                }
                func unchanged(_ what: String) throws {
                    #expect(try Data(contentsOf: cf) == before, "\(what): the file is unchanged")
                    #expect(
                        try server.psql("SELECT value FROM virtual").out == "old\n", "\(what): the table is unchanged")
                    let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.path).filter {
                        $0.contains("swiftpostmap-tmp")
                    }
                    #expect(leftovers.isEmpty, "\(what): \(leftovers)")
                }
                // Connection refused: a port nobody listens on.
                let refused = try export("host=127.0.0.1 port=1 dbname=mail user=postgres")
                #expect(refused.status == 1)
                #expect(
                    refused.err.hasPrefix(
                        "swiftpostmap: fatal: connect to pgsql server: connection to server at \"127.0.0.1\", port 1 failed: Connection refused"
                    ), "\(refused)")
                try unchanged("refused")
                // Authentication.
                try server.psql("CREATE ROLE secured LOGIN PASSWORD 'right'")
                let denied = try export(server.conninfo(user: "secured", password: "wrong"))
                #expect(denied.status == 1)
                #expect(denied.err.contains("password authentication failed for user \"secured\""), "\(denied)")
                try unchanged("authentication")
                // Permissions: a role that may log in but not create tables.
                try server.psql("CREATE ROLE reader LOGIN")
                let forbidden = try export(server.conninfo(user: "reader"))
                #expect(forbidden.status == 1)
                #expect(forbidden.err.contains("permission denied for schema public"), "\(forbidden)")
                try unchanged("permissions")
                // A table that is not an export's is never replaced.
                try server.psql("CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)")
                let foreign = try export(server.conninfo(), table: ["--table", "precious"])
                #expect(foreign.status == 1)
                #expect(foreign.err.contains("was not made by swiftpostmap --export"), "\(foreign)")
                #expect(try server.psql("SELECT id FROM precious").out == "1\n")
                try unchanged("foreign table")
                // Names that are not plain identifiers: no quoting games, no % for Postfix to expand.
                for name in ["%s", "a\"b", "Ümlaut", "9lives", String(repeating: "x", count: 41)] {
                    let refused = try export(server.conninfo(), table: ["--table", name])
                    #expect(
                        refused.status == 1 && refused.err.contains("--table: a name of 1 to 40"), "\(name): \(refused)"
                    )
                }
                // Another source whose file name gives the same table does not replace this one.
                try FileManager.default.createDirectory(
                    at: root.appendingPathComponent("other"), withIntermediateDirectories: true)
                try write("a@example.com mallory\n", to: "other/Virtual", in: root)
                let collision = try swiftpostmap(
                    [
                        "-c", config.path, "--export", "pgsql:\(root.path)/other.cf", "--conninfo", server.conninfo(),
                        "other/Virtual",
                    ], in: root)
                #expect(collision.status == 1 && collision.err.contains("name the table with --table"), "\(collision)")
                try unchanged("collision")
                // A table named like the staging table is someone else's.
                try server.psql("CREATE TABLE virtual__swiftpostmap_new (id int)")
                let staging = try export(server.conninfo())
                #expect(staging.status == 1 && staging.err.contains("it is not swiftpostmap's"), "\(staging)")
                try server.psql("DROP TABLE virtual__swiftpostmap_new")
                try unchanged("staging")
                // A transaction that holds the table: the export gives up instead of holding
                // Postfix's lookups up behind it.
                let holder = Process()
                holder.executableURL = URL(fileURLWithPath: "/bin/sh")
                let psql = PostgreSQLServer.binDirectory.map { "\($0)/psql" } ?? "psql"
                holder.arguments = [
                    "-c",
                    "(echo 'BEGIN; SELECT count(*) FROM virtual;'; sleep 8) | \(psql) -X -q -h 127.0.0.1 -p \(server.port) "
                        + "-U postgres -d mail > /dev/null",
                ]
                try holder.run()
                Thread.sleep(forTimeInterval: 1)
                let blocked = try export(server.conninfo())
                #expect(
                    blocked.status == 1 && blocked.err.contains("another transaction holds the table"), "\(blocked)")
                holder.terminate()
                holder.waitUntilExit()
                try unchanged("lock")
            }
        }
    }

    @Test("an export while Postfix is querying: every answer is the old map's or the new one's")
    func atomicReplacement() throws {
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                let config = try backdated(makeConfigDirectory(in: root))
                let keys = (0..<2000).map { "user\($0)@example.com" }
                let cf = root.appendingPathComponent("v.cf").path
                // One source, edited between exports, as in real life: the file Postfix reads
                // stays the same (Postfix waits for a changed one to settle for a second).
                func export(_ version: String) throws {
                    try write(
                        keys.map { "\($0) \(version)-\($0)" }.joined(separator: "\n") + "\n", to: "virtual", in: root)
                    let result = try swiftpostmap(
                        ["-c", config.path, "--export", "pgsql:\(cf)", "--conninfo", server.conninfo(), "virtual"],
                        in: root)
                    #expect(result.status == 0, "\(result)")
                }
                try export("v1")
                let settled = try FileManager.default.attributesOfItem(atPath: cf)[.modificationDate] as? Date
                try write(keys.joined(separator: "\n") + "\n", to: "keys", in: root)
                // Readers: Postfix's client, batch after batch, until told to stop.
                let reader = Process()
                reader.executableURL = URL(fileURLWithPath: "/bin/sh")
                reader.arguments = [
                    "-c",
                    "i=0; while [ ! -e stop ]; do i=$((i+1)); \(realPostmap) -c \(config.path) -q - pgsql:\(cf) "
                        + "< keys > answers.$i 2>&1; echo $? > status.$i; done",
                ]
                reader.currentDirectoryURL = root
                try reader.run()
                // Export, v2 and v1 in turn, until the readers have finished a few batches.
                var exports = 0
                while exports < 200 {
                    try export(exports % 2 == 0 ? "v2" : "v1")
                    exports += 1
                    Thread.sleep(forTimeInterval: 0.05)
                    let done = try FileManager.default.contentsOfDirectory(atPath: root.path).filter {
                        $0.hasPrefix("status.")
                    }
                    if exports >= 10 && done.count >= 6 { break }
                }
                try Data().write(to: root.appendingPathComponent("stop"))
                reader.waitUntilExit()
                let files = try FileManager.default.contentsOfDirectory(atPath: root.path)
                let batches = files.filter { $0.hasPrefix("answers.") }
                #expect(batches.count >= 6, "the readers ran during \(exports) exports: \(batches.count) batches")
                var answers = 0
                for batch in batches {
                    let text = try String(contentsOf: root.appendingPathComponent(batch), encoding: .utf8)
                    let lines = text.split(separator: "\n")
                    // A batch cut short by the stop is not an answer; every complete one is.
                    let status = try String(
                        contentsOf: root.appendingPathComponent("status." + batch.dropFirst("answers.".count)),
                        encoding: .utf8)
                    #expect(status == "0\n", "\(batch): \(text.prefix(300))")
                    #expect(lines.count == keys.count, "\(batch): every key answered")
                    for (key, line) in zip(keys, lines) {
                        answers += 1
                        #expect(line == "\(key)\tv1-\(key)" || line == "\(key)\tv2-\(key)", "\(batch): \(line)")
                    }
                }
                #expect(answers >= 3 * keys.count)
                let modified = try FileManager.default.attributesOfItem(atPath: cf)[.modificationDate] as? Date
                #expect(modified == settled, "an unchanged configuration file is not rewritten")
            }
        }
    }

    @Test("long keys, keys that are not UTF-8, and a configuration path given relative")
    func awkwardKeys() throws {
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                // UTF-8 mode off, so a Latin-1 key is a key like any other.
                let config = try backdated(makeConfigDirectory(in: root, extra: "smtputf8_enable = no\n"))
                var source = Data("long\(String(repeating: "k", count: 4000))@example.com longvalue\n".utf8)
                source.append(contentsOf: [0xE9, 0x74, 0xE9, 0x20] + Array("summer\n".utf8))
                try write(source, to: "virtual", in: root)
                let exported = try swiftpostmap(
                    ["-c", config.path, "--export", "pgsql:v.cf", "--conninfo", server.conninfo(), "virtual"], in: root)
                #expect(exported.status == 0, "\(exported)")
                #expect(
                    exported.err.contains("\(root.path)/v.cf: 2 entries"), "the file is named absolutely: \(exported)")
                let cf = root.appendingPathComponent("v.cf").path
                #expect(try run(realPostmap, ["-c", config.path, "hash:virtual"], in: root).status == 0)
                let keys =
                    Data("long\(String(repeating: "K", count: 4000))@example.com\n".utf8)
                    + Data([0xE9, 0x74, 0xE9, 0x0A])
                let fromHash = try run(
                    realPostmap, ["-c", config.path, "-q", "-", "hash:virtual"], in: root, input: keys)
                let fromPgsql = try run(
                    realPostmap, ["-c", config.path, "-q", "-", "pgsql:\(cf)"], in: root, input: keys)
                let ours = try swiftpostmap(["-c", config.path, "-q", "-", "pgsql:\(cf)"], in: root, input: keys)
                #expect(fromHash.stdout.count > 4000 && fromHash.out.contains("summer"), "\(fromHash.err)")
                #expect(fromPgsql.stdout == fromHash.stdout, "\(fromPgsql.err)")
                #expect(ours.stdout == fromHash.stdout, "\(ours.err)")
            }
        }
    }

    @Test(
        "the release binary, which links only glibc, loads libpq when a pgsql map is used",
        .enabled(if: releaseBinary != nil || runningUnderCI))
    func releaseBinaryLoadsLibpq() throws {
        let binary = try #require(releaseBinary, "make test must set SWIFTPOSTMAP_RELEASE_BIN")
        try withPostgreSQLServer { server in
            try withTemporaryDirectory { root in
                let config = try backdated(makeConfigDirectory(in: root))
                try write("a@example.com b\n", to: "virtual", in: root)
                let cf = root.appendingPathComponent("v.cf").path
                let exported = try run(
                    binary,
                    ["-c", config.path, "--export", "pgsql:\(cf)", "--conninfo", server.conninfo(), "virtual"], in: root
                )
                #expect(exported.status == 0, "\(exported)")
                let query = try run(binary, ["-c", config.path, "-q", "A@example.com", "pgsql:\(cf)"], in: root)
                #expect(query.out == "b\n", "\(query)")
            }
        }
    }

    @Test("the server stops and its files go when the test is over")
    func serverIsRemoved() throws {
        var directory: URL? = nil
        var port = 0
        try withPostgreSQLServer { server in
            directory = server.directory
            port = server.port
            let answer = try server.psql("SELECT 1")
            #expect(answer.out == "1\n")
        }
        let gone = try #require(directory)
        #expect(!FileManager.default.fileExists(atPath: gone.path))
        let probe = try run(
            PostgreSQLServer.binDirectory.map { "\($0)/pg_isready" } ?? "/bin/false",
            ["-h", "127.0.0.1", "-p", "\(port)"])
        #expect(probe.status != 0, "nothing listens on \(port) any more")
    }
}

/// The live Postfix case set with its virtual alias and virtual mailbox maps served from
/// PostgreSQL: exported by swiftpostmap, queried by Postfix's own pgsql client.
@Suite(
    "Live Postfix through pgsql: tables", .serialized,
    .enabled(if: liveOracleAvailable && postgresAvailable, "Postfix, PostgreSQL or root is missing"))
struct LivePostfixPgsqlTests {
    @Test("every probe of the case set has its recorded outcome with pgsql virtual maps")
    func caseSetThroughPgsql() throws {
        let file = try LiveCaseFile(contentsOf: liveFixtures.appendingPathComponent("cases"))
        try #require(!file.cases.isEmpty)
        try withPostgreSQLServer { server in
            let conninfo = server.conninfo()
            let exporter = LiveMapCompiler { map, source, config in
                guard map.type == "pgsql" else {
                    try LiveMapCompiler.swiftpostmap().compile(map, source, config)
                    return
                }
                let result = try run(
                    swiftpostmapPath,
                    [
                        "-c", config.path, "--export", "pgsql:\(source.path).cf", "--conninfo", conninfo, "--table",
                        map.name, source.path,
                    ], in: config)
                guard result.status == 0 else { throw LivePostfixError("export \(map.name) failed: \(result)") }
            }
            var configuration = try liveFixtureConfiguration(compiler: exporter)
            for name in ["routing", "vmailbox"] {
                let before = configuration.mainCF
                configuration.mainCF = before.replacingOccurrences(
                    of: "hash:$config_directory/\(name)\n", with: "pgsql:$config_directory/\(name).cf\n")
                try #require(configuration.mainCF != before, "main.cf names \(name)")
            }
            configuration.maps = configuration.maps.map { map in
                var map = map
                if map.name == "routing" || map.name == "vmailbox" { map.type = "pgsql" }
                return map
            }
            var ours: OfflineVerdicts? = nil
            let observed = try LivePostfix.with(configuration) { postfix in
                let run = try postfix.probe(file.cases.map(\.address))
                // What swiftpostmap's --resolve says, reading the same pgsql maps.
                ours = try OfflineVerdicts(
                    configDirectory: postfix.configDirectory, addresses: file.cases.map(\.address))
                return run
            }
            try expectRecordedOutcomes(file, observed, label: "pgsql")
            let verdicts = try #require(ours)
            for (item, probe) in zip(file.cases, observed.probes)
            where OfflineVerdicts.beyondTheModel[item.label] == nil {
                let resolution = try #require(
                    verdicts.resolutions[item.address.lowercased()], "no --resolve for \(item.address)")
                #expect(
                    OfflineVerdicts.outcome(probe.outcome) == resolution.outcome,
                    "pgsql: cases:\(item.line) \(item.label): Postfix \(probe.outcome); --resolve \(resolution.raw)")
            }
        }
    }
}
