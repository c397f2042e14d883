import Foundation
import Testing

/// Failures while writing a table: a file-size limit, an abandoned temporary file. Each ends
/// in one fatal message and exit 1 with the old table as it was, or cleans up after a build
/// that was killed.
@Suite("Reliability: write failures and abandoned builds")
struct ReliabilityTests {
    /// A source of `count` entries (about 80 bytes each).
    static func source(_ count: Int, tag: String) -> String {
        (0..<count).map { "user\($0)@example\($0 % 13).com\tdest-\(tag)-\($0)@example.org, other\($0)@example.net\n" }
            .joined()
    }

    /// `ulimit -f` below the new table's size: exit 1 (not SIGXFSZ), one fatal message
    /// naming the table and the cause, no libdb lines, the old table intact, no temporary
    /// file left (for the in-order path and the bucket-ordered one).
    @Test("file-size limit", arguments: [20_000, 120_000])
    func fileSizeLimit(entries: Int) throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("old@example.com\told\n", to: "virtual", in: dir)
            let first = try swiftpostmap(["-c", config.path, "hash:virtual"], in: dir)
            #expect(first.status == 0, "\(first)")
            let old = try Data(contentsOf: dir.appendingPathComponent("virtual.db"))
            try write(Self.source(entries, tag: "new"), to: "virtual", in: dir)
            // 1024-byte blocks: 512 KB, well below the new table.
            let limited = try run(
                "/bin/sh",
                ["-c", "ulimit -f 512 && exec \"$0\" -c \"$1\" hash:virtual", swiftpostmapPath, config.path],
                in: dir)
            #expect(limited.status == 1, "\(limited)")
            #expect(
                limited.err == "swiftpostmap: fatal: open database virtual.db: File too large\n"
                    || (limited.err.hasPrefix("swiftpostmap: fatal: ") && limited.err.contains("virtual.db")
                        && limited.err.hasSuffix(": File too large\n")
                        && limited.err.split(separator: "\n").count == 1),
                "\(limited)")
            #expect(try Data(contentsOf: dir.appendingPathComponent("virtual.db")) == old, "the old table changed")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
                $0.contains("swiftpostmap-")
            }
            #expect(left.isEmpty, "left behind: \(left)")
        }
    }

    /// A source that is a FIFO, a directory or a device is refused before anything is
    /// written: postmap waits for a FIFO's writer forever and turns a directory or /dev/null
    /// into an empty table. Builds, postalias mode and texthash: lookups
    /// all say so and exit 1, under timeout(1) so that a wait fails instead of hanging.
    @Test("a FIFO, a directory or a device as the source is refused")
    func specialSources() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            #expect(mkfifo(dir.appendingPathComponent("fifo").path, 0o644) == 0)
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent("dir"), withIntermediateDirectories: false)
            try FileManager.default.createSymbolicLink(
                atPath: dir.appendingPathComponent("null").path, withDestinationPath: "/dev/null")
            let kinds = ["fifo": "a FIFO", "dir": "a directory", "null": "a character device"]
            for (name, kind) in kinds.sorted(by: { $0.key < $1.key }) {
                let refusal = "open \(name): not a regular file but \(kind); a source must be a regular file\n"
                for command in [
                    ["hash:\(name)"], ["btree:\(name)"], ["--aliases", "hash:\(name)"],
                    ["-q", "k", "texthash:\(name)"],
                ] {
                    let result = try run(
                        "/usr/bin/timeout", ["-s", "KILL", "20", swiftpostmapPath, "-c", config.path] + command, in: dir
                    )
                    #expect(result.status == 1, "\(command): \(result)")
                    #expect(result.err.hasSuffix(refusal), "\(command): \(result)")
                    #expect(result.err.contains("swiftpostmap: fatal: "), "\(command): \(result)")
                }
                let lint = try run(
                    "/usr/bin/timeout", ["-s", "KILL", "20", swiftpostmapPath, "-c", config.path, "--lint", name],
                    in: dir)
                #expect(lint.status == 1, "--lint: \(lint)")
                #expect(lint.out.contains("cannot open \(name): not a regular file but \(kind)"), "--lint: \(lint)")
                #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(name).db").path))
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".db") }
            #expect(left.isEmpty, "tables made: \(left)")
        }
    }

    /// Temporary files of builds whose process is gone are removed by the next build of the
    /// same table; those of a live process, of other tables, and anything not a regular file
    /// are left alone.
    @Test("abandoned temporary files")
    func abandonedTemporaries() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("a@example.com\tb\n", to: "virtual", in: dir)
            #expect(try swiftpostmap(["-c", config.path, "hash:virtual"], in: dir).status == 0)
            // A PID above the kernel's limit (pid_max is at most 2^22) belongs to no process.
            let dead = [".virtual.db.swiftpostmap-4194999-1a2b", "__db..virtual.db.swiftpostmap-4194999-1a2b"]
            let kept = [
                ".virtual.db.swiftpostmap-1-ffff", ".other.db.swiftpostmap-4194999-1a2b", "virtual.db.swiftpostmap-x",
            ]
            for name in dead + kept { try write("junk", to: name, in: dir) }
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent(".virtual.db.swiftpostmap-4194998-dir"),
                withIntermediateDirectories: true)
            #expect(try swiftpostmap(["-c", config.path, "hash:virtual"], in: dir).status == 0)
            let names = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
            for name in dead { #expect(!names.contains(name), "\(name) is still there") }
            for name in kept + [".virtual.db.swiftpostmap-4194998-dir"] {
                #expect(names.contains(name), "\(name) was removed")
            }
        }
    }

    /// A `--check` worker dies with its parent: killing `swiftpostmap --check` (as a CI job's
    /// timeout does) leaves no process behind.
    @Test("check worker ends with its parent")
    func workerEndsWithParent() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source(400_000, tag: "w"), to: "large", in: dir)
            #expect(try run(realPostmap, ["-c", config.path, "hash:large"], in: dir).status == 0)
            let table = dir.appendingPathComponent("large.db").path
            // The worker is stopped while libdb verifies (when it writes nothing, so a broken
            // pipe would not end it), the parent killed, the worker resumed: it must be gone
            // at once, long before the verification could have finished.
            let script = """
                "$0" --check "$1" > /dev/null 2>&1 & parent=$!
                for i in $(seq 200); do worker=$(pgrep -f -- "--check-worker $1") && break; sleep 0.01; done
                [ -n "$worker" ] && kill -STOP $worker && echo started
                kill -9 $parent; sleep 0.05
                kill -CONT $worker; sleep 0.15
                # Gone, or a zombie waiting for init to reap it.
                state=$(ps -o stat= -p $worker 2> /dev/null)
                case "$state" in ""|Z*) ;; *) echo left ;; esac
                [ -n "$worker" ] && kill -9 $worker 2> /dev/null
                true
                """
            let result = try run("/bin/sh", ["-c", script, swiftpostmapPath, table], in: dir)
            #expect(result.out == "started\n", "\(result)")
        }
    }

    /// A memory fault (as libdb takes on some damaged files, depending on what lies past
    /// its buffers) ends the run with a fatal message naming the table and exit 1, not a
    /// signal. The fault is sent while `-s` is blocked writing its listing.
    @Test("memory fault while reading a table")
    func memoryFault() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source(5_000, tag: "f"), to: "virtual", in: dir)
            #expect(try swiftpostmap(["-c", config.path, "hash:virtual"], in: dir).status == 0)
            let script = """
                mkfifo out
                "$0" -c "$1" -s hash:virtual > out 2> err & pid=$!
                exec 3< out
                sleep 0.5
                kill -SEGV $pid
                wait $pid
                echo "status $?"
                cat err
                """
            let result = try run("/bin/bash", ["-c", script, swiftpostmapPath, config.path], in: dir)
            #expect(
                result.out == "status 1\nswiftpostmap: fatal: hash:virtual.db: damaged file: reading it made the"
                    + " Berkeley DB library fault; swiftpostmap --check tells what is wrong with it\n", "\(result)")
        }
    }

    /// A btree with one page zeroed makes libdb loop on lookups (postmap hangs on it too):
    /// the run ends after ten seconds without progress with a fatal message and exit 1.
    @Test("a read that never finishes")
    func stalledRead() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try tableByRealPostmap("btree:b", in: dir)
            let url = dir.appendingPathComponent("b.db")
            var table = try Data(contentsOf: url)
            try #require(table.count > 52 * 4096)
            table.replaceSubrange((51 * 4096)..<(52 * 4096), with: Data(count: 4096))
            try table.write(to: url)
            let keys = stride(from: 0, to: 3000, by: 3).map { "user\($0)@example\($0 % 7).com\n" }.joined()
            let started = Date()
            let result = try swiftpostmap(["-c", config.path, "-q", "-", "btree:b"], in: dir, input: Data(keys.utf8))
            #expect(result.status == 1, "\(result)")
            #expect(
                result.err
                    == "swiftpostmap: fatal: btree:b.db: a read in it did not finish in 10 seconds (a damaged file, or a"
                    + " stalled disk);"
                    + " swiftpostmap --check tells what is wrong with it\n", "\(result)")
            #expect(Date().timeIntervalSince(started) < 60, "the watchdog took too long")
        }
    }

    /// libdb, reading a hash table whose meta-data page names billions of buckets, writes a
    /// zero page into the file for each (postmap -s too, until the disk is full). Every mode
    /// that reads the table refuses it first, and the file stays as it was. The runs are
    /// under a file-size limit and timeout(1), so a regression fails instead of filling the
    /// disk or hanging.
    @Test("a hash table that names impossibly many buckets is refused before libdb grows it")
    func impossibleBucketCount() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try tableByRealPostmap("hash:h", in: dir)
            let url = dir.appendingPathComponent("h.db")
            var table = try Data(contentsOf: url)
            table.replaceSubrange(72..<76, with: [0x00, 0xFF, 0xFF, 0x7F])  // max_bucket
            try table.write(to: url)
            let size = table.count
            for command in [
                ["-s", "hash:h"], ["-q", "user1@example1.com", "hash:h"], ["--verify", "hash:h"],
                ["--diff", "hash:h", "h"],
            ] {
                let script = "ulimit -f 20480; exec timeout 60 \"$0\" \"$@\""
                let result = try run(
                    "/bin/sh", ["-c", script, swiftpostmapPath, "-c", config.path] + command, in: dir)
                // --diff exits 2 on trouble, like diff(1); the others 1.
                #expect(result.status == (command[0] == "--diff" ? 2 : 1), "\(command): \(result)")
                #expect(
                    result.err.contains("hash:h.db: damaged file: its meta-data page names 2147483393 buckets"),
                    "\(command): \(result)")
                let now = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int
                #expect(now == size, "\(command): the table was not written")
            }
        }
    }

    /// A btree whose last leaf page links back to the first makes libdb's cursor return the
    /// same records forever (postmap -s lists them without end). `-s`, `--verify` and `--diff`
    /// stop with a fatal message once more records came out than the file can hold.
    @Test("a table whose pages link in a loop")
    func pageLoop() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let source = (0..<3000).map { "user\($0)@example\($0 % 7).com\tdest\($0)@example.org\n" }.joined()
            try write(source, to: "b", in: dir)
            #expect(try swiftpostmap(["-c", config.path, "btree:b"], in: dir).status == 0)
            let url = dir.appendingPathComponent("b.db")
            var table = [UInt8](try Data(contentsOf: url))
            func field(_ offset: Int) -> UInt32 {
                (0..<4).reduce(UInt32(0)) { $0 | UInt32(table[offset + $1]) << (8 * $1) }
            }
            // Leaf pages (type 5): the first has no previous page, the last no next one.
            let pageSize = Int(field(20))
            let leaves = stride(from: pageSize, to: table.count, by: pageSize).filter { table[$0 + 25] == 5 }
            let first = try #require(leaves.first { field($0 + 12) == 0 })
            let last = try #require(leaves.first { field($0 + 16) == 0 })
            try #require(first != last)
            for byte in 0..<4 { table[last + 16 + byte] = UInt8(truncatingIfNeeded: field(first + 8) >> (8 * byte)) }
            try Data(table).write(to: url)
            let message =
                "swiftpostmap: fatal: btree:b.db: damaged file: it yields more records than a file of its size can"
                + " hold (its pages link in a loop); swiftpostmap --check tells what is wrong with it\n"
            for arguments in [["-s", "btree:b"], ["--verify", "btree:b"], ["--diff", "btree:b", "b"]] {
                let result = try swiftpostmap(["-c", config.path] + arguments, in: dir)
                #expect(result.status == (arguments[0] == "--diff" ? 2 : 1), "\(arguments): \(result.status)")
                #expect(result.err == message, "\(arguments): \(result.err)")
            }
        }
    }

    /// A `--check` worker that crashes is reported as libdb's crash on the file (the
    /// memory-fault guard is not installed in the worker, whose signal is the report).
    @Test("check worker crash is reported as such")
    func workerCrash() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source(400_000, tag: "c"), to: "large", in: dir)
            #expect(try run(realPostmap, ["-c", config.path, "hash:large"], in: dir).status == 0)
            let script = """
                "$0" --check "$1" > out 2>&1 & parent=$!
                for i in $(seq 200); do worker=$(pgrep -f -- "--check-worker $1") && break; sleep 0.01; done
                [ -n "$worker" ] && kill -SEGV $worker
                wait $parent
                echo "status $?"
                cat out
                """
            let table = dir.appendingPathComponent("large.db").path
            let result = try run("/bin/bash", ["-c", script, swiftpostmapPath, table], in: dir)
            #expect(result.out.hasPrefix("status 1\n"), "\(result)")
            #expect(result.out.contains("libdb crashed while"), "\(result)")
            #expect(result.out.contains("SIGSEGV in the worker process"), "\(result)")
        }
    }
}

/// A configuration directory in `dir` and a 3,000-entry table `type:name` written there by
/// the real postmap from a source of the same name.
private func tableByRealPostmap(_ map: String, in dir: URL) throws -> URL {
    let config = try makeConfigDirectory(in: dir)
    let name = String(map.split(separator: ":").last ?? "")
    let source = (0..<3000).map { "user\($0)@example\($0 % 7).com\tdest\($0)@example.org\n" }.joined()
    try write(source, to: name, in: dir)
    #expect(try run(realPostmap, ["-c", config.path, map], in: dir).status == 0)
    return config
}
