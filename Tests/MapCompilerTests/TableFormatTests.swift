import Foundation
import Testing

/// lmdb tables beyond what the differential tests compare: a table larger than its initial
/// map (the map grows while the table is written), and a failed build, which leaves the old
/// table in place, as postmap's aborted transaction does, and no table where there was none
/// (postmap leaves an empty one).
@Suite("lmdb and cdb tables", .serialized, .enabled(if: oracleAvailable, "Postfix is not installed"))
struct TableFormatTests {
    @Test("an lmdb table larger than lmdb_map_size, read by the real postmap")
    func lmdbMapGrows() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            // A 1 MiB initial map for a table of about 20 MB.
            let config = try makeConfigDirectory(in: dir, extra: "lmdb_map_size = 1048576\n")
            let count = 120_000
            let source = (0..<count).map {
                "user\($0)@Example.com dest\($0)@example.net, \(String(repeating: "x", count: 60))\n"
            }
            try write(source.joined(), to: "big", in: dir)
            let built = try swiftpostmap(["-c", config.path, "lmdb:big"], in: dir)
            #expect(built.status == 0, "\(built)")
            let size =
                (try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("big.lmdb").path)[
                    .size] as? Int) ?? 0
            #expect(size > 8 << 20, "the table is larger than the initial map many times over: \(size) bytes")
            let listed = try run(realPostmap, ["-c", config.path, "-s", "lmdb:big"], in: dir)
            #expect(listed.status == 0)
            #expect(listed.stdout.split(separator: 0x0A).count == count)
            let keys =
                stride(from: 0, to: count, by: 997).map { "USER\($0)@example.com" }.joined(separator: "\n") + "\n"
            let theirs = try run(
                realPostmap, ["-c", config.path, "-q", "-", "lmdb:big"], in: dir, input: Data(keys.utf8))
            let ours = try swiftpostmap(["-c", config.path, "-q", "-", "lmdb:big"], in: dir, input: Data(keys.utf8))
            #expect(theirs.status == 0)
            #expect(ours.stdout == theirs.stdout)
            #expect(theirs.stdout.split(separator: 0x0A).count == keys.split(separator: "\n").count)
        }
    }

    @Test("a failed lmdb build leaves the old table, or none")
    func failedBuildKeepsTheTable() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("a@example.com b@example.net\n", to: "map", in: dir)
            #expect(try swiftpostmap(["-c", config.path, "lmdb:map"], in: dir).status == 0)
            let before = try Data(contentsOf: dir.appendingPathComponent("map.lmdb"))
            // LMDB takes keys of at most 511 bytes.
            let failing = "a@example.com c@example.net\n" + String(repeating: "k", count: 600) + " v\n"
            try write(failing, to: "map", in: dir)
            try write(failing, to: "new", in: dir)
            let ours = try swiftpostmap(["-c", config.path, "lmdb:map"], in: dir, argv0: "postmap")
            #expect(ours.status == 1)
            #expect(ours.err.hasPrefix("postmap: fatal: error updating lmdb:map: MDB_BAD_VALSIZE"), "\(ours)")
            #expect(try Data(contentsOf: dir.appendingPathComponent("map.lmdb")) == before)
            let query = try run(realPostmap, ["-c", config.path, "-q", "a@example.com", "lmdb:map"], in: dir)
            #expect(query.out == "b@example.net\n", "\(query)")
            // The real postmap: the same message, and the old table kept too.
            let theirs = try run(realPostmap, ["-c", config.path, "lmdb:map"], in: dir)
            #expect(theirs.status == 1)
            #expect(theirs.err == ours.err)
            let kept = try run(realPostmap, ["-c", config.path, "-q", "a@example.com", "lmdb:map"], in: dir)
            #expect(kept.out == "b@example.net\n", "\(kept)")
            // Where there was no table, swiftpostmap leaves none; postmap an empty one.
            #expect(try swiftpostmap(["-c", config.path, "lmdb:new"], in: dir).status == 1)
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("new.lmdb").path))
        }
    }

    /// The validation modes read lmdb and cdb tables as they read hash tables.
    @Test("--resolve, --lint, --diff and --verify on lmdb and cdb tables")
    func validationModes() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(
                in: dir,
                extra: "virtual_alias_domains = example.com\nvirtual_alias_maps = lmdb:\(dir.path)/virtual\n"
                    + "virtual_mailbox_domains = vm.example\nvirtual_mailbox_maps = cdb:\(dir.path)/vmailbox\n"
                    + "virtual_mailbox_base = /var/mail/vhosts\nalias_maps =\n")
            try write("info@example.com jane@vm.example\n", to: "virtual", in: dir)
            try write("jane@vm.example vm.example/jane/\n", to: "vmailbox", in: dir)
            for map in ["lmdb:virtual", "cdb:vmailbox", "hash:virtual"] {
                #expect(try run(realPostmap, ["-c", config.path, map], in: dir).status == 0)
            }
            let resolved = try swiftpostmap(["-c", config.path, "--resolve", "info@example.com"], in: dir)
            #expect(resolved.status == 0, "\(resolved)")
            #expect(resolved.out.contains("key info@example.com in lmdb:\(dir.path)/virtual: jane@vm.example"))
            #expect(resolved.out.contains("in cdb:\(dir.path)/vmailbox: vm.example/jane/"), "\(resolved)")
            let linted = try swiftpostmap(["-c", config.path, "--lint"], in: dir)
            #expect(linted.status == 0, "\(linted)")
            #expect(try swiftpostmap(["--diff", "hash:virtual", "lmdb:virtual"], in: dir).status == 0)
            #expect(try swiftpostmap(["--diff", "virtual.lmdb", "cdb:vmailbox"], in: dir).status == 1)
            #expect(try swiftpostmap(["-c", config.path, "--verify", "cdb:vmailbox"], in: dir).status == 0)
            try write("jane@vm.example vm.example/jane/\nbob@vm.example vm.example/bob/\n", to: "vmailbox", in: dir)
            let stale = try swiftpostmap(["-c", config.path, "--verify", "cdb:vmailbox"], in: dir)
            #expect(stale.status == 1)
            #expect(stale.out.contains("- bob@vm.example vm.example/bob/"), "\(stale)")
        }
    }

    /// `-i` on an lmdb table postmap filled to near its map size: the map grows before the
    /// first step (review finding: MDB_MAP_FULL where postmap succeeds).
    @Test("-i and -d on an lmdb table that nearly fills its map")
    func incrementalOnAFullMap() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            var generator = SeededGenerator(seed: 42)
            func line(_ index: Int) -> String {
                let value = (0..<100).map { _ in Character(UnicodeScalar(UInt8(97 + generator.next() % 26))) }
                return "k\(index)@example.com \(String(value))\n"
            }
            try write((0..<75_000).map(line).joined(), to: "t", in: dir)
            #expect(try run(realPostmap, ["-c", config.path, "lmdb:t"], in: dir).status == 0)
            let more = Data((75_000..<95_000).map(line).joined().utf8)
            let added = try swiftpostmap(["-c", config.path, "-i", "lmdb:t"], in: dir, input: more)
            #expect(added.status == 0, "\(added)")
            let deleted = try swiftpostmap(
                ["-c", config.path, "-d", "-", "lmdb:t"], in: dir,
                input: Data((0..<30_000).map { "k\($0)@example.com\n" }.joined().utf8))
            #expect(deleted.status == 0, "\(deleted)")
            let listed = try run(realPostmap, ["-c", config.path, "-s", "lmdb:t"], in: dir)
            #expect(listed.stdout.split(separator: 0x0A).count == 65_000)
        }
    }

    /// A file tinycdb cannot map: postmap's message, and no crash (review finding: the
    /// reader freed its state twice).
    @Test("a file that is not a cdb table")
    func notACDBFile() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("", to: "empty.cdb", in: dir)
            try write("hello\n", to: "text.cdb", in: dir)
            for name in ["empty", "text"] {
                let arguments = ["-c", config.path, "-q", "a", "cdb:\(name)"]
                let theirs = try run(realPostmap, arguments, in: dir)
                let ours = try swiftpostmap(arguments, in: dir, argv0: "postmap")
                #expect(ours == theirs, "\(name)")
                let verify = try swiftpostmap(["--diff", "cdb:\(name)", "cdb:\(name)"], in: dir)
                #expect(verify.status == 2 || verify.status == 1, "\(verify)")
                #expect(!verify.err.contains("fault"), "\(verify)")
            }
        }
    }
}
