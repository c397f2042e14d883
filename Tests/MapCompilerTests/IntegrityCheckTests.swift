import Foundation
import Glibc
import Testing

@testable import MapCompiler

/// `--check`: good tables (ours and Postfix's) pass, every kind of damage is reported with
/// exit status 1, and no file, however hostile, crashes or hangs swiftpostmap or changes.

/// `db_load` from db-util, to make tables swiftpostmap and postmap never write.
private let dbLoad = "/usr/bin/db_load"
private let dbLoadAvailable = FileManager.default.isExecutableFile(atPath: dbLoad) || runningUnderCI

/// Runs the built swiftpostmap under `timeout -s KILL`: a hang ends the run (status 137)
/// instead of stalling the suite.
private func bounded(
    _ arguments: [String], in directory: URL, environment: [String: String] = [:], seconds: Int = 60
) throws -> ProcessResult {
    try run(
        "/usr/bin/timeout", ["-s", "KILL", String(seconds), swiftpostmapPath] + arguments, in: directory,
        environment: environment)
}

/// The bytes and modification time of a file, to prove a check left it alone.
private struct FileSnapshot: Equatable {
    let bytes: Data?
    let seconds: Int
    let nanoseconds: Int

    init(_ url: URL) {
        bytes = try? Data(contentsOf: url)
        var info = stat()
        if lstat(url.path, &info) == 0 {
            seconds = Int(info.st_mtim.tv_sec)
            nanoseconds = Int(info.st_mtim.tv_nsec)
        } else {
            seconds = -1
            nanoseconds = -1
        }
    }
}

/// Sets a file's modification time far in the past, so any write would show.
private func ageFile(_ url: URL) {
    var times = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
    _ = utimensat(AT_FDCWD, url.path, &times, 0)
}

/// Runs `--check` on files in `directory` and requires them unchanged afterwards and nothing
/// on standard error (libdb must not print).
private func checkLeavingFilesAlone(
    _ arguments: [String], files: [String], in directory: URL, environment: [String: String] = [:]
) throws -> ProcessResult {
    let urls = files.map { directory.appendingPathComponent($0) }
    for url in urls { ageFile(url) }
    let before = urls.map(FileSnapshot.init)
    let result = try bounded(arguments, in: directory, environment: environment)
    #expect(urls.map(FileSnapshot.init) == before, "a checked file changed: \(arguments)")
    #expect(result.err == "", "stderr of \(arguments)")
    #expect(result.status == 0 || result.status == 1, "no crash, no hang: \(arguments)\n\(result)")
    return result
}

/// One JSON Lines object per line.
private func jsonObjects(_ result: ProcessResult) throws -> [[String: Any]] {
    try result.out.split(separator: "\n").map { line in
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }
}

/// A source of `count` entries: mixed-case ASCII and non-ASCII keys, and every 40th value
/// long enough to need overflow pages.
private func tableSource(count: Int) -> String {
    (0..<count).map { i in
        let key = i % 7 == 0 ? "Ärger\(i)@Exämple.de" : "User\(i)@Example.COM"
        let value = i % 40 == 0 ? String(repeating: "v\(i)-", count: 500) : "box\(i)@example.org"
        return "\(key) \(value)\n"
    }.joined()
}

/// An aliases(5) source of `count` entries.
private func aliasSource(count: Int) -> String {
    "postmaster: root\n" + (0..<count).map { "User\($0): user\($0)@example.org, Other\($0)\n" }.joined()
}

/// Who builds a good table.
enum TableBuilder: String, Sendable, CaseIterable {
    case swiftpostmap
    case postfix
}

/// A good table: builder, type and build flags (passed to `--check` too).
struct GoodTable: Sendable, CustomTestStringConvertible {
    let builder: TableBuilder
    let type: String
    let flags: [String]

    var testDescription: String { "\(builder.rawValue) \(type) \(flags.joined(separator: " "))" }

    static func all(_ builder: TableBuilder) -> [GoodTable] {
        ["hash", "btree"].flatMap { type in
            [[], ["-n"], ["-f"], ["-N"]].map { GoodTable(builder: builder, type: type, flags: $0) }
        }
    }
}

@Suite("--check: table integrity")
struct IntegrityCheckTests {
    // MARK: Good tables pass

    @Test("good table written by swiftpostmap", arguments: GoodTable.all(.swiftpostmap))
    func goodTableBySwiftpostmap(_ table: GoodTable) throws {
        try checkGoodTable(table)
    }

    @Test(
        "good table written by postmap", .enabled(if: oracleAvailable, "Postfix is not installed"),
        arguments: GoodTable.all(.postfix))
    func goodTableByPostmap(_ table: GoodTable) throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try checkGoodTable(table)
    }

    private func checkGoodTable(_ table: GoodTable) throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            try write(tableSource(count: 300), to: "src", in: dir)
            let build =
                table.builder == .postfix
                ? try run(realPostmap, ["-c", config.path] + table.flags + ["\(table.type):src"], in: dir)
                : try swiftpostmap(table.flags + ["\(table.type):src"], in: dir, environment: env)
            try #require(build.status == 0, "\(build)")

            let text = try checkLeavingFilesAlone(
                ["--check"] + table.flags + ["\(table.type):src"], files: ["src.db"], in: dir, environment: env)
            #expect(text.status == 0, "\(text)")
            #expect(text.out == "check: 1 file, 1 ok, 0 with errors (0 errors, 0 warnings)\n")

            let json = try checkLeavingFilesAlone(
                ["--check", "--json"] + table.flags + ["src.db"], files: ["src.db"], in: dir, environment: env)
            let objects = try jsonObjects(json)
            try #require(objects.count == 1, "\(json)")
            #expect(objects[0]["file"] as? String == "src.db")
            #expect(objects[0]["ok"] as? Bool == true)
            #expect(objects[0]["type"] as? String == table.type)
            #expect(objects[0]["records"] as? Int == 300)
            #expect(objects[0]["nul"] as? String == (table.flags == ["-n"] ? "without" : "with"))
            #expect((objects[0]["findings"] as? [Any])?.isEmpty == true)
        }
    }

    @Test(
        "postalias tables (swiftpostmap and postalias) pass, with or without --aliases", arguments: ["hash", "btree"])
    func aliasTablesPass(_ type: String) throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            try write(aliasSource(count: 200), to: "aliases", in: dir)
            try write(aliasSource(count: 200), to: "theirs", in: dir)
            try #require(try swiftpostmap(["--aliases", "\(type):aliases"], in: dir, environment: env).status == 0)
            var tables = ["aliases"]
            if oracleInstalled {
                try #require(try run(realPostalias, ["-c", config.path, "\(type):theirs"], in: dir).status == 0)
                tables.append("theirs")
            } else {
                #expect(!runningUnderCI, "the real postalias must be installed under CI")
            }
            for name in tables {
                for aliases in [["--aliases"], []] {
                    let result = try checkLeavingFilesAlone(
                        aliases + ["--check", "--json", "\(type):\(name)"], files: ["\(name).db"], in: dir,
                        environment: env)
                    #expect(result.status == 0, "\(name) \(aliases): \(result)")
                    let object = try #require(try jsonObjects(result).first)
                    // The aliases, "@", YP_LAST_MODIFIED and YP_MASTER_NAME.
                    #expect(object["records"] as? Int == 201 + 3, "\(name)")
                    #expect(object["nul"] as? String == "with", "\(name): the YP_* entries do not count")
                }
            }
        }
    }

    @Test func aPostmapTableIsNotAnAliasTable() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            try write("a b\n", to: "map", in: dir)
            try #require(try swiftpostmap(["map"], in: dir, environment: env).status == 0)
            let result = try checkLeavingFilesAlone(
                ["--aliases", "--check", "map.db"], files: ["map.db"], in: dir, environment: env)
            #expect(result.status == 1)
            #expect(result.out.hasPrefix("map.db: error: no \"@\" entry: postalias writes one into every table"))
        }
    }

    // MARK: Our checks on the records

    @Test func unfoldedKeysAreReportedUnlessCheckedWithF() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(tableSource(count: 50), to: "src", in: dir)
            try #require(
                try swiftpostmap(["-f", "src"], in: dir, environment: ["MAIL_CONFIG": config.path]).status == 0)
            // UTF-8 mode (compatibility_level 3.6): Unicode folding.
            let unicode = try checkLeavingFilesAlone(
                ["--check", "src.db"], files: ["src.db"], in: dir, environment: ["MAIL_CONFIG": config.path])
            #expect(unicode.status == 1)
            #expect(
                unicode.out.contains(
                    "src.db: error: 50 keys not in folded form (Unicode case folding), as in a table built with -f:"
                        + " Postfix folds lookup keys, so these entries never match (first: \""))
            // An empty main.cf: Postfix's defaults, ASCII folding.
            let plain = dir.appendingPathComponent("plain")
            try FileManager.default.createDirectory(at: plain, withIntermediateDirectories: true)
            try write("", to: "main.cf", in: plain)
            let ascii = try checkLeavingFilesAlone(
                ["--check", "src.db"], files: ["src.db"], in: dir, environment: ["MAIL_CONFIG": plain.path])
            #expect(ascii.status == 1)
            #expect(ascii.out.contains("keys not in folded form (ASCII case folding)"), "\(ascii)")
            let withF = try checkLeavingFilesAlone(
                ["--check", "-f", "src.db"], files: ["src.db"], in: dir, environment: ["MAIL_CONFIG": config.path])
            #expect(withF.status == 0, "\(withF)")
        }
    }

    @Test func aTableOfTheOtherTypeIsReported() throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            try write("a b\n", to: "src", in: dir)
            try #require(try swiftpostmap(["btree:src"], in: dir, environment: env).status == 0)
            let wrong = try checkLeavingFilesAlone(
                ["--check", "hash:src"], files: ["src.db"], in: dir, environment: env)
            #expect(wrong.status == 1)
            #expect(wrong.out.hasPrefix("src.db: error: a btree table, not hash as stated (hash:src)\n"))
            let right = try checkLeavingFilesAlone(
                ["--check", "btree:src"], files: ["src.db"], in: dir, environment: env)
            #expect(right.status == 0)
            // A bare name is postmap's: NAME.db of default_database_type (hash).
            let bare = try checkLeavingFilesAlone(["--check", "src"], files: ["src.db"], in: dir, environment: env)
            #expect(bare.status == 1)
            let unsupported = try bounded(["--check", "mysql:src"], in: dir, environment: env)
            #expect(unsupported.status == 1)
            #expect(unsupported.out.hasPrefix("src.db: error: unsupported dictionary type: mysql"))
            let noTable = try bounded(["--check", "cdb:src"], in: dir, environment: env)
            #expect(noTable.status == 1)
            #expect(noTable.out.hasPrefix("src.cdb: error: cannot open: No such file or directory"), "\(noTable)")
        }
    }

    /// lmdb and cdb tables written by the real postmap: the records are read in the worker
    /// (LMDB and tinycdb have no verifier); a truncated file, a Berkeley DB file named as an
    /// lmdb table and a cdb pointer table that points outside the file are errors.
    @Test("lmdb and cdb tables, sound and damaged")
    func lmdbAndCDBTables() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            try write((0..<3000).map { "key\($0)@example.com value\($0)\n" }.joined(), to: "src", in: dir)
            for map in ["lmdb:src", "cdb:src", "hash:src"] {
                try #require(try run(realPostmap, ["-c", config.path, map], in: dir).status == 0)
            }
            let good = try checkLeavingFilesAlone(
                ["--check", "--json", "lmdb:src", "src.cdb"], files: ["src.lmdb", "src.cdb"], in: dir, environment: env)
            #expect(good.status == 0, "\(good)")
            let objects = good.out.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(objects.map { $0["type"] as? String } == ["lmdb", "cdb"])
            #expect(objects.map { $0["records"] as? Int } == [3000, 3000])
            #expect(objects.map { $0["nul"] as? String } == ["with", "without"])

            let lmdb = try Data(contentsOf: dir.appendingPathComponent("src.lmdb"))
            try lmdb.prefix(lmdb.count / 2).write(to: dir.appendingPathComponent("half.lmdb"))
            let cdb = try Data(contentsOf: dir.appendingPathComponent("src.cdb"))
            try cdb.prefix(cdb.count - 100).write(to: dir.appendingPathComponent("short.cdb"))
            try Data(contentsOf: dir.appendingPathComponent("src.db")).write(to: dir.appendingPathComponent("db.lmdb"))
            // Both meta pages claiming the largest page number (review finding: an overflow).
            var evil = lmdb
            for offset in [136, 4096 + 136] {
                evil.replaceSubrange(offset..<(offset + 8), with: [UInt8](repeating: 0xFF, count: 8))
            }
            try evil.write(to: dir.appendingPathComponent("evil.lmdb"))
            let hostile = try bounded(["--check", "evil.lmdb"], in: dir, environment: env)
            #expect(hostile.status == 1, "\(hostile)")
            #expect(hostile.out.hasPrefix("evil.lmdb: error: truncated"), "\(hostile)")
            let bad = try bounded(["--check", "half.lmdb", "short.cdb", "db.lmdb"], in: dir, environment: env)
            #expect(bad.status == 1)
            let lines = bad.out.split(separator: "\n").map(String.init)
            #expect(lines.count == 4, "\(bad)")
            #expect(lines.first?.hasPrefix("half.lmdb: error: truncated: the meta page accounts for") == true, "\(bad)")
            #expect(lines.dropFirst().first?.hasPrefix("short.cdb: error: hash table ") == true, "\(bad)")
            #expect(lines.dropFirst(2).first == "db.lmdb: error: a Berkeley DB file, not an lmdb table", "\(bad)")
        }
    }

    @Test(
        "mixed trailing-NUL convention (made with db_load)", .enabled(if: dbLoadAvailable, "db_load is not installed"),
        arguments: ["hash", "btree"])
    func mixedNULIsReported(_ type: String) throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            // The mixed-nul-lookup fixture of the recorded Postfix cases.
            try write(
                "VERSION=3\nformat=print\ntype=\(type)\ndb_pagesize=4096\nHEADER=END\n a\\00\n 1\\00\n b\n 2\n c\\00\n"
                    + " 3\\00\nDATA=END\n", to: "dump.txt", in: dir)
            try #require(try run(dbLoad, ["-f", "dump.txt", "mixed.db"], in: dir).status == 0)
            let text = try checkLeavingFilesAlone(
                ["--check", "mixed.db"], files: ["mixed.db"], in: dir, environment: env)
            #expect(text.status == 1)
            #expect(
                text.out.contains(
                    "mixed.db: error: mixed trailing-NUL convention: 2 records with a trailing NUL (first: \""))
            #expect(text.out.contains("1 without (first: \"b\")"), "\(text)")
            let json = try checkLeavingFilesAlone(
                ["--check", "--json", "mixed.db"], files: ["mixed.db"], in: dir, environment: env)
            let object = try #require(try jsonObjects(json).first)
            #expect(object["nul"] as? String == "mixed")
            #expect(object["ok"] as? Bool == false)
            #expect(object["records"] as? Int == 3)
        }
    }

    @Test func checkedAgainstNOrN() throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            try write("a b\n", to: "plain", in: dir)
            try #require(try swiftpostmap(["-n", "plain"], in: dir, environment: env).status == 0)
            let withN = try checkLeavingFilesAlone(
                ["--check", "-N", "plain.db"], files: ["plain.db"], in: dir,
                environment: env)
            #expect(withN.status == 1)
            #expect(
                withN.out.hasPrefix("plain.db: error: no record has a trailing NUL, but -N says every record has one"))
            let withn = try checkLeavingFilesAlone(
                ["--check", "-n", "plain.db"], files: ["plain.db"], in: dir,
                environment: env)
            #expect(withn.status == 0)
        }
    }

    @Test(
        "UTF-8, empty keys and values (made with db_load)", .enabled(if: dbLoadAvailable, "db_load is not installed"))
    func utf8AndEmptyEntries() throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            try write(
                "VERSION=3\nformat=print\ntype=hash\nHEADER=END\n good\\00\n v\\00\n \\ff\\fe\\00\n x\\00\n"
                    + " empty\\00\n \\00\n \\00\n v\\00\n val\\00\n \\c3\\00\nDATA=END\n", to: "dump.txt", in: dir)
            try #require(try run(dbLoad, ["-f", "dump.txt", "odd.db"], in: dir).status == 0)
            let utf8 = try checkLeavingFilesAlone(["--check", "odd.db"], files: ["odd.db"], in: dir, environment: env)
            #expect(utf8.status == 1)
            let lines = utf8.out.split(separator: "\n").map(String.init)
            #expect(
                lines.contains(
                    "odd.db: error: 1 key not valid UTF-8 (UTF-8 mode: Postfix never looks them up) (first: \"??\")"))
            #expect(
                lines.contains(
                    "odd.db: error: 1 value not valid UTF-8 (UTF-8 mode: looking up their keys fails with an error)"
                        + " (first key: \"val\")"))
            #expect(lines.contains("odd.db: warning: 1 record with an empty key (Postfix does not look up empty keys)"))
            #expect(
                lines.contains(
                    "odd.db: warning: 1 record with an empty value (Postfix answers \"not found\")"
                        + " (first key: \"empty\")"))
            #expect(lines.last == "check: 1 file, 0 ok, 1 with errors (2 errors, 2 warnings)")
            // Without UTF-8 mode only the warnings remain: exit 0, unless --werror.
            let ascii = try checkLeavingFilesAlone(
                ["--check", "-u", "odd.db"], files: ["odd.db"], in: dir,
                environment: env)
            #expect(ascii.status == 0, "\(ascii)")
            #expect(!ascii.out.contains("error:"))
            let werror = try checkLeavingFilesAlone(
                ["--check", "--werror", "-u", "odd.db"], files: ["odd.db"], in: dir, environment: env)
            #expect(werror.status == 1)
        }
    }

    // MARK: Files that are not tables

    @Test func emptyTextTruncatedMissingAndSpecialFilesAreErrorsAndTheRestIsStillChecked() throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            try write(tableSource(count: 300), to: "good", in: dir)
            try #require(try swiftpostmap(["good"], in: dir, environment: env).status == 0)
            let table = try Data(contentsOf: dir.appendingPathComponent("good.db"))
            let pageSize = 4096
            try #require(table.count >= 4 * pageSize)
            try write(Data(), to: "empty.db", in: dir)
            try write(tableSource(count: 300), to: "text.db", in: dir)
            try write(table.prefix(table.count / 2 + 100), to: "half.db", in: dir)
            try write(table.prefix(2 * pageSize), to: "twopages.db", in: dir)
            try write(table.prefix(20), to: "tiny.db", in: dir)
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent("dir.db"), withIntermediateDirectories: true)
            #expect(mkfifo(dir.appendingPathComponent("fifo.db").path, 0o644) == 0)
            let files = ["empty.db", "text.db", "half.db", "twopages.db", "tiny.db", "good.db"]
            let operands = files + ["missing.db", "dir.db", "fifo.db"]
            let result = try checkLeavingFilesAlone(["--check"] + operands, files: files, in: dir, environment: env)
            #expect(result.status == 1)
            let lines = result.out.split(separator: "\n").map(String.init)
            let expected = [
                "empty.db: error: empty file (0 bytes): not a Berkeley DB table",
                "text.db: error: not a Berkeley DB file (no hash or btree magic number); it looks like text: a source"
                    + " file rather than its table?",
                "half.db: error: truncated or padded: \(table.count / 2 + 100) bytes is not a whole number of 4096-byte"
                    + " pages",
                "half.db: error: truncated: the meta-data page accounts for \(table.count / pageSize) pages, the file"
                    + " holds \((table.count / 2 + 100) / pageSize)",
                "twopages.db: error: truncated: the meta-data page accounts for \(table.count / pageSize) pages, the"
                    + " file holds 2",
                "tiny.db: error: too short for a Berkeley DB table (20 bytes)",
                "missing.db: error: cannot open: No such file or directory",
                "dir.db: error: not a regular file",
                "fifo.db: error: not a regular file",
                "check: 9 files, 1 ok, 8 with errors (9 errors, 0 warnings)",
            ]
            #expect(lines == expected, "\(result)")

            let json = try checkLeavingFilesAlone(
                ["--check", "--json"] + operands, files: files, in: dir, environment: env)
            let objects = try jsonObjects(json)
            #expect(objects.map { $0["file"] as? String } == operands)
            #expect(objects.map { $0["ok"] as? Bool } == operands.map { $0 == "good.db" })
        }
    }

    @Test(
        "a recno or queue file is not a table", .enabled(if: dbLoadAvailable, "db_load is not installed"),
        arguments: ["recno", "queue"])
    func foreignBerkeleyDBFiles(_ type: String) throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            try write(
                "VERSION=3\nformat=print\ntype=\(type)\nre_len=8\nHEADER=END\n 1\n a\nDATA=END\n", to: "dump.txt",
                in: dir)
            try #require(try run(dbLoad, ["-f", "dump.txt", "foreign.db"], in: dir).status == 0)
            let result = try checkLeavingFilesAlone(
                ["--check", "foreign.db"], files: ["foreign.db"], in: dir,
                environment: env)
            #expect(result.status == 1)
            #expect(
                result.out.hasPrefix(
                    type == "queue"
                        ? "foreign.db: error: a Berkeley DB queue file, not a hash or btree table\n"
                        : "foreign.db: error: not a hash or btree table (libdb opens it as another access method, such"
                            + " as recno)\n"), "\(result)")
        }
    }

    // MARK: Corrupted tables

    /// Ways of damaging a table.
    enum Damage: String, CaseIterable, Sendable {
        case bitFlips, zeroedPage, truncation, garbageAfterMetaPage, pageHeaderNoise, pageCopy, metaPageNoise

        /// Damages `table` (pages of `pageSize` bytes) with randomness from `random`.
        func apply(to table: [UInt8], pageSize: Int, random: inout SeededGenerator) -> [UInt8] {
            var bytes = table
            let pages = table.count / pageSize
            switch self {
            case .bitFlips:
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                    bytes[bit / 8] ^= UInt8(1 << (bit % 8))
                }
            case .zeroedPage:
                let page = Int.random(in: 0..<pages, using: &random)
                bytes.replaceSubrange(
                    (page * pageSize)..<((page + 1) * pageSize), with: repeatElement(0, count: pageSize))
            case .truncation:
                bytes.removeSubrange(Int.random(in: 0..<bytes.count, using: &random)...)
            case .garbageAfterMetaPage:
                for index in pageSize..<bytes.count { bytes[index] = UInt8.random(in: 0...255, using: &random) }
            case .pageHeaderNoise:
                let page = Int.random(in: 1..<pages, using: &random)
                for _ in 0..<4 {
                    bytes[page * pageSize + Int.random(in: 0..<26, using: &random)] = UInt8.random(
                        in: 0...255, using: &random)
                }
            case .pageCopy:
                let from = Int.random(in: 1..<pages, using: &random)
                var to = Int.random(in: 1..<pages, using: &random)
                if to == from { to = to % (pages - 1) + 1 }
                bytes.replaceSubrange(
                    (to * pageSize)..<((to + 1) * pageSize), with: table[(from * pageSize)..<((from + 1) * pageSize)])
            case .metaPageNoise:
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    bytes[Int.random(in: 24..<512, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            return bytes
        }

        /// Damage that no table survives (the rest may hit unused bytes or, in a hash
        /// table, zero a page libdb takes for an empty bucket).
        var alwaysDetected: Bool { self == .truncation || self == .garbageAfterMetaPage }
    }

    /// One kind of damage, one table type.
    struct DamageCase: Sendable, CustomTestStringConvertible {
        let damage: Damage
        let type: String
        var testDescription: String { "\(damage.rawValue) of a \(type) table" }
    }

    static let damageCases = Damage.allCases.flatMap { damage in
        ["hash", "btree"].map { DamageCase(damage: damage, type: $0) }
    }
    /// Variants per case: 7 kinds × 2 types × 16 = 224 corrupted tables.
    static let variantsPerCase = 16

    @Test("corrupted tables: exit 1 (or harmless), never a crash, a hang or a change", arguments: damageCases)
    func corruptedTables(_ damageCase: DamageCase) throws {
        try withTemporaryDirectory { dir in
            let env = ["MAIL_CONFIG": try makeConfigDirectory(in: dir).path]
            try write(tableSource(count: 300), to: "src", in: dir)
            try #require(try swiftpostmap(["\(damageCase.type):src"], in: dir, environment: env).status == 0)
            let table = [UInt8](try Data(contentsOf: dir.appendingPathComponent("src.db")))
            let pageSize = 4096
            try #require(table.count % pageSize == 0 && table.count / pageSize >= 4)
            var random = SeededGenerator(
                seed: UInt64(Damage.allCases.firstIndex(of: damageCase.damage) ?? 0) * 7919
                    + (damageCase.type == "hash" ? 1 : 2))
            var detected = 0
            var crashesCaught = 0
            for variant in 0..<Self.variantsPerCase {
                let name = "v\(variant)"
                let damaged = damageCase.damage.apply(to: table, pageSize: pageSize, random: &random)
                try write(Data(damaged), to: name + ".db", in: dir)
                let result = try checkLeavingFilesAlone(
                    ["--check", "\(damageCase.type):\(name)"], files: [name + ".db"], in: dir, environment: env)
                if result.status == 1 {
                    detected += 1
                    #expect(result.out.contains("\(name).db: error: "), "\(result)")
                    if result.out.contains("libdb crashed") { crashesCaught += 1 }
                } else {
                    #expect(!damageCase.damage.alwaysDetected, "undetected \(damageCase.damage) variant \(variant)")
                    // libdb's verifier passed it: reading it must be safe too.
                    let listing = try bounded(["-s", "\(damageCase.type):\(name)"], in: dir, environment: env)
                    #expect(listing.status == 0 || listing.status == 1, "-s after a passing check: \(listing)")
                }
            }
            print(
                "--check \(damageCase.testDescription): \(detected)/\(Self.variantsPerCase) reported as errors, "
                    + "\(crashesCaught) libdb crashes caught in the worker")
        }
    }

    // MARK: The worker and its supervision, in process

    @Test func aWorkerKilledByASignalIsReportedAsSuch() {
        let ending = superviseWorker(
            executable: "/bin/sh", arguments: ["sh", "-c", "printf x; kill -SEGV $$"], inactivityTimeout: 10
        ) { _ in true }
        #expect(ending == .signaled(SIGSEGV))
    }

    @Test func aSilentWorkerIsKilledAfterTheTimeout() {
        let start = Date()
        let ending = superviseWorker(
            executable: "/bin/sleep", arguments: ["sleep", "30"], inactivityTimeout: 0.3
        ) { _ in true }
        #expect(ending == .timedOut)
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func outputIsStreamedAndARefusedReportStopsTheWorker() {
        var received: [UInt8] = []
        let ending = superviseWorker(
            executable: "/bin/sh", arguments: ["sh", "-c", "printf hello; exit 3"], inactivityTimeout: 10
        ) { bytes in
            received += bytes
            return true
        }
        #expect(ending == .exited(3))
        #expect(received == Array("hello".utf8))
        let stopped = superviseWorker(
            executable: "/bin/sh", arguments: ["sh", "-c", "printf x; sleep 30"], inactivityTimeout: 10
        ) { _ in false }
        #expect(stopped == .stopped)
        let missing = superviseWorker(executable: "/nonexistent/worker", arguments: ["w"], inactivityTimeout: 1) { _ in
            true
        }
        #expect(missing == .notStarted(ENOENT))
    }

    @Test func framesSplitAcrossReadsAndBrokenStreams() throws {
        var frames: [UInt8] = []
        frames += [WorkerFrameTag.hello.rawValue] + littleEndianBytes(3) + Array("abc".utf8)
        frames += [WorkerFrameTag.record.rawValue] + littleEndianBytes(6) + littleEndianBytes(1) + [0x6B, 0x76]
        var reader = WorkerFrameReader()
        var seen: [(WorkerFrameTag, [UInt8])] = []
        for byte in frames {
            reader.append([byte][...])
            while let frame = try reader.next() { seen.append((frame.tag, Array(frame.payload))) }
        }
        #expect(seen.map(\.0) == [.hello, .record])
        #expect(seen.map(\.1) == [Array("abc".utf8), littleEndianBytes(1) + [0x6B, 0x76]])
        #expect(!reader.hasPartialFrame)

        var garbage = WorkerFrameReader()
        garbage.append(Array("not a frame".utf8)[...])
        #expect(throws: WorkerFrameReader.ProtocolError.self) { try garbage.next() }
        var huge = WorkerFrameReader()
        huge.append(([WorkerFrameTag.record.rawValue] + littleEndianBytes(UInt32.max))[...])
        #expect(throws: WorkerFrameReader.ProtocolError.self) { try huge.next() }
    }

    @Test func metaPageParsing() throws {
        var page = [UInt8](repeating: 0, count: 512)
        page.replaceSubrange(12..<16, with: littleEndianBytes(0x061561))
        page.replaceSubrange(16..<20, with: littleEndianBytes(9))
        page.replaceSubrange(20..<24, with: littleEndianBytes(4096))
        page.replaceSubrange(32..<36, with: littleEndianBytes(6))
        let hash = try #require(TableFileHeader(page))
        #expect(hash.kind == .table(.hash))
        #expect(!hash.byteSwapped && hash.pageSize == 4096 && hash.lastPage == 6 && hash.hasValidPageSize)
        page.replaceSubrange(12..<16, with: littleEndianBytes(0x053162).reversed())
        page.replaceSubrange(20..<24, with: littleEndianBytes(1000).reversed())
        let swapped = try #require(TableFileHeader(page))
        #expect(swapped.kind == .table(.btree) && swapped.byteSwapped && !swapped.hasValidPageSize)
        #expect(TableFileHeader(Array("hash table source text, not a table at all".utf8)) == nil)
        #expect(TableFileHeader(Array(page.prefix(20))) == nil)
    }

    // MARK: The record checks, in process

    private func findings(
        _ records: [(String, String)], handling: KeyHandling = KeyHandling(), personality: SourceFormat = .postmap
    ) -> [String] {
        var checker = RecordChecker(handling: handling, format: personality)
        for (key, value) in records { checker.add(key: Array(key.utf8)[...], value: Array(value.utf8)[...]) }
        return checker.findings().map { "\($0.severity.rawValue): \($0.message)" }
    }

    @Test func recordChecks() {
        #expect(findings([("a\0", "1\0"), ("b\0", "2\0")]).isEmpty)
        #expect(findings([("a", "1"), ("b", "2")]).isEmpty)
        #expect(
            findings([("a\0", "1\0"), ("b", "2")]).first?.hasPrefix("error: mixed trailing-NUL convention") == true)
        #expect(
            findings([("a\0", "1")]) == [
                "warning: 1 record with a trailing NUL on only one of key and value (first: \"a\")"
            ])
        #expect(findings([("A\0", "1\0")]).first?.contains("(Unicode case folding)") == true)
        #expect(findings([("A\0", "1\0")], handling: KeyHandling(folding: .none)).isEmpty)
        #expect(findings([("Ä\0", "1\0")], handling: KeyHandling(folding: .ascii, utf8: false)).isEmpty)
        #expect(findings([("Ä\0", "1\0")], handling: KeyHandling(folding: .unicode)).count == 1)
        #expect(
            findings([("a\0b\0", "1\0")]) == [
                "warning: 1 key with a NUL byte before the end (Postfix cannot look them up) (first: \"a\")"
            ])
        #expect(findings([("a", "1")], handling: KeyHandling(nul: .withNUL)).count == 1)
        #expect(findings([("a\0", "1\0")], handling: KeyHandling(nul: .withoutNUL)).count == 1)
        // postalias: the "@" entry is required; its YP_* entries are neither folded nor NUL-terminated.
        let alias = [
            ("@\0", "@\0"), ("root\0", "admin\0"), ("YP_LAST_MODIFIED", "1795623052"), ("YP_MASTER_NAME", "h"),
        ]
        #expect(findings(alias, personality: .postalias).isEmpty)
        #expect(findings(Array(alias.dropFirst()), personality: .postalias).count == 1)
    }
}
