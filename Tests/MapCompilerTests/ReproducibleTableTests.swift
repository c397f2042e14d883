import Foundation
import Testing

@testable import MapCompiler

/// `--reproducible` and `SOURCE_DATE_EPOCH`: the same source and options give the same bytes,
/// in another directory, at another time, under another umask; a different table gets
/// different bytes and a different file id; Postfix reads them, alone and together.
@Suite("Reproducible tables", .serialized, .enabled(if: oracleAvailable, "the real postmap is not installed"))
struct ReproducibleTableTests {
    /// A seeded source: mixed case, a catch-all, a long value (an overflow item), UTF-8.
    private func source(entries: Int, seed: UInt64, changed: Int? = nil) -> String {
        var random = SeededGenerator(seed: seed)
        var lines = [
            "# generated", "@Example.NET catchall@example.org", "Ünïcode@example.com u",
            "long@example.com " + String(repeating: "x", count: 3000),
        ]
        for index in 0..<entries {
            let value = index == changed ? "changed@example.org" : "box\(random.next() % 1_000_000)@example.org"
            lines.append("User\(index)@Example\(index % 37).COM \(value)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static let suffixes = ["hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"]

    /// Builds `type:map` from `text` in a new directory under `root` (through a shell, so
    /// that the umask is the one given) and returns the table's bytes.
    private func build(
        _ type: String, _ text: String, in root: URL, directory: String, umask: String,
        arguments: [String] = ["--reproducible"], environment: [String: String] = [:], config: URL
    ) throws -> Data {
        let place = root.appendingPathComponent(directory)
        try FileManager.default.createDirectory(at: place, withIntermediateDirectories: true)
        try write(text, to: "map", in: place)
        let words = ([swiftpostmapPath, "-c", config.path] + arguments + ["\(type):map"]).joined(separator: " ")
        let result = try run("/bin/sh", ["-c", "umask \(umask); exec \(words)"], in: place, environment: environment)
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        return try Data(contentsOf: place.appendingPathComponent("map" + (Self.suffixes[type] ?? "")))
    }

    /// The Berkeley DB file id: bytes 52-71 of the meta-data page.
    private func fileID(_ table: Data) -> Data { table.subdata(in: 52..<72) }

    @Test(
        "two builds in other directories, at other times, under other umasks, give the same bytes",
        arguments: [
            ("hash", 2_000), ("btree", 2_000), ("lmdb", 2_000), ("cdb", 2_000), ("hash", 160_000),
            ("btree", 160_000),
        ])
    func identicalBytes(type: String, entries: Int) throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            let text = source(entries: entries, seed: 12)
            let first = try build(type, text, in: root, directory: "one", umask: "022", config: config)
            // A second later (libdb's file id carries the time), in another place.
            Thread.sleep(forTimeInterval: 1.1)
            let second = try build(
                type, text, in: root, directory: "two/deeper", umask: "077", arguments: [],
                environment: ["SOURCE_DATE_EPOCH": "1700000000"], config: config)
            #expect(first == second, "\(type), \(entries) entries: \(first.count) and \(second.count) bytes")
            #expect(first.count > 0)

            // Without the option, as postmap: a Berkeley DB file id differs every time.
            if (type == "hash" || type == "btree") && entries < 10_000 {
                let ordinary = try build(
                    type, text, in: root, directory: "three", umask: "022", arguments: [], config: config)
                #expect(fileID(ordinary) != fileID(first), "an ordinary build keeps libdb's own file id")
                // One entry changed: other bytes and another file id.
                let changed = try build(
                    type, source(entries: entries, seed: 12, changed: entries / 2), in: root, directory: "four",
                    umask: "022", config: config)
                #expect(changed != first)
                #expect(fileID(changed) != fileID(first))
                #expect(fileID(changed) != Data(count: 20) && fileID(first) != Data(count: 20))
                // libdb's own verifier accepts the rewritten file.
                let verified = try run(
                    "/usr/bin/db5.3_verify", [root.appendingPathComponent("one/map.db").path])
                #expect(verified.status == 0, "\(verified)")
            }
        }
    }

    @Test("Postfix reads two reproducible tables, alone and together in one query")
    func postfixReadsThem() throws {
        try withTemporaryDirectory { root in
            let config = try backdated(makeConfigDirectory(in: root))
            try write(source(entries: 500, seed: 3), to: "a", in: root)
            try write(
                source(entries: 500, seed: 4).replacingOccurrences(of: "@Example.NET", with: "@example.info"), to: "b",
                in: root)
            let built = try swiftpostmap(["-c", config.path, "--reproducible", "hash:a", "hash:b"], in: root)
            #expect(built == ProcessResult(status: 0, stdout: Data(), stderr: Data()))
            let a = try Data(contentsOf: root.appendingPathComponent("a.db"))
            let b = try Data(contentsOf: root.appendingPathComponent("b.db"))
            #expect(fileID(a) != fileID(b))
            let expectations = [
                (
                    "user7@example7.com",
                    try swiftpostmap(["-c", config.path, "-q", "user7@example7.com", "a"], in: root).out
                ),
                ("@example.net", "catchall@example.org\n"),  // only in a
                ("@example.info", "catchall@example.org\n"),  // only in b
            ]
            for (key, answer) in expectations {
                let together = try run(realPostmap, ["-c", config.path, "-q", key, "hash:a", "hash:b"], in: root)
                #expect(together.status == 0 && together.out == answer, "\(key): \(together)")
            }
            let keys = Data("User1@Example1.com\n@example.info\nnobody@nowhere\n".utf8)
            let batch = try run(realPostmap, ["-c", config.path, "-q", "-", "hash:b", "hash:a"], in: root, input: keys)
            #expect(batch.out.split(separator: "\n").count == 2, "\(batch)")
            for name in ["a", "b"] {
                let listed = try run(realPostmap, ["-c", config.path, "-s", "hash:\(name)"], in: root)
                #expect(listed.status == 0 && listed.out.split(separator: "\n").count == 503, "\(listed.err)")
            }
        }
    }

    @Test("postalias: YP_LAST_MODIFIED from SOURCE_DATE_EPOCH, and the same bytes every time")
    func aliases() throws {
        try withTemporaryDirectory { root in
            let config = try backdated(makeConfigDirectory(in: root))
            let text = "postmaster: root\nroot: admin@example.com\nteam: a, b, \"c d\"\n"
            let environment = ["SOURCE_DATE_EPOCH": "1700000000"]
            let one = try build(
                "hash", text, in: root, directory: "one", umask: "022", arguments: ["--aliases"],
                environment: environment, config: config)
            Thread.sleep(forTimeInterval: 1.1)
            let two = try build(
                "hash", text, in: root, directory: "two", umask: "027", arguments: ["--aliases"],
                environment: environment, config: config)
            #expect(one == two)
            // (postalias -q folds the key it is given, so the entry is read with -s.)
            let stamp = try run(
                realPostalias, ["-c", config.path, "-s", "hash:map"], in: root.appendingPathComponent("one"))
            #expect(stamp.out.contains("YP_LAST_MODIFIED:\t1700000000\n"), "\(stamp)")
            // --reproducible alone: no time at all rather than the time of the build.
            let bare = try build(
                "hash", text, in: root, directory: "three", umask: "022", arguments: ["--aliases", "--reproducible"],
                config: config)
            #expect(bare != one)
            let zero = try run(
                realPostalias, ["-c", config.path, "-s", "hash:map"], in: root.appendingPathComponent("three"))
            #expect(zero.out.contains("YP_LAST_MODIFIED:\t0000000000\n"), "\(zero)")
        }
    }

    @Test("--verify --bytes: 0 for a reproducible table, 1 with the first differing byte otherwise")
    func verifyBytes() throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            try write(source(entries: 300, seed: 9), to: "virtual", in: root)
            for type in ["hash", "btree", "lmdb", "cdb"] {
                #expect(
                    try swiftpostmap(["-c", config.path, "--reproducible", "\(type):virtual"], in: root).status == 0)
                let same = try swiftpostmap(["-c", config.path, "--verify", "--bytes", "\(type):virtual"], in: root)
                #expect(same.status == 0, "\(type): \(same)")
                #expect(same.err.hasSuffix("(303 entries), the bytes of a reproducible build\n"), "\(same)")
                let json = try swiftpostmap(
                    ["-c", config.path, "--verify", "--bytes", "--json", "\(type):virtual"], in: root)
                #expect(json.status == 0 && json.out.contains("\"reproducible\":true"), "\(json)")
            }
            // Built as postmap builds it: the same entries, not the same bytes.
            #expect(try swiftpostmap(["-c", config.path, "hash:virtual"], in: root).status == 0)
            let ordinary = try swiftpostmap(["-c", config.path, "--verify", "--bytes", "hash:virtual"], in: root)
            #expect(ordinary.status == 1, "\(ordinary)")
            #expect(ordinary.err.contains("up to date with virtual (303 entries), but not the bytes"), "\(ordinary)")
            #expect(ordinary.err.contains("(first difference at byte 5"), "the file id: \(ordinary)")
            // Without --bytes the same table verifies.
            #expect(try swiftpostmap(["-c", config.path, "--verify", "hash:virtual"], in: root).status == 0)
            // The real postmap's table: the same entries, other bytes.
            #expect(try run(realPostmap, ["-c", config.path, "hash:virtual"], in: root).status == 0)
            let real = try swiftpostmap(["-c", config.path, "--verify", "--bytes", "hash:virtual"], in: root)
            #expect(real.status == 1, "\(real)")
        }
    }

    @Test("a malformed SOURCE_DATE_EPOCH stops a build and leaves no table")
    func malformedEpoch() throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            try write("a b\n", to: "map", in: root)
            let result = try swiftpostmap(
                ["-c", config.path, "hash:map"], in: root, environment: ["SOURCE_DATE_EPOCH": "yesterday"])
            #expect(
                result
                    == ProcessResult(
                        status: 1, stdout: Data(),
                        stderr: Data(
                            "swiftpostmap: fatal: SOURCE_DATE_EPOCH is not a number of seconds since 1970: yesterday\n"
                                .utf8)))
            #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("map.db").path))
            // Queries do not care.
            let query = try swiftpostmap(
                ["-c", config.path, "-q", "a", "inline:{a=b}"], in: root, environment: ["SOURCE_DATE_EPOCH": "x"])
            #expect(query.out == "b\n", "\(query)")
        }
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("the FIPS 180-4 examples, and the same digest fed in pieces")
    func knownAnswers() {
        let cases = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
            (
                String(repeating: "a", count: 1000),
                "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
            ),
        ]
        for (message, expected) in cases {
            var whole = SHA256()
            whole.update(Array(message.utf8))
            #expect(hex(whole.finish()) == expected, "\(message.prefix(10))")
            var pieces = SHA256()
            var rest = Array(message.utf8)[...]
            var size = 1
            while !rest.isEmpty {
                pieces.update(rest.prefix(size))
                rest = rest.dropFirst(size)
                size = size * 3 % 67 + 1
            }
            #expect(hex(pieces.finish()) == expected, "in pieces: \(message.prefix(10))")
        }
    }
}
