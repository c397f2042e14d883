import Foundation
import Testing

/// The built binary, run as a user runs it: stdout, stderr and exit status.
@Suite("swiftpostmap end to end")
struct EndToEndTests {
    @Test func buildQueryListAndExitCodes() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            try write("Info@Example.COM  joe\n@example.net  jim\n", to: "virtual", in: dir)
            let build = try swiftpostmap(["virtual"], in: dir, environment: env)
            #expect(build == ProcessResult(status: 0, stdout: Data(), stderr: Data()))

            let found = try swiftpostmap(["-q", "INFO@example.com", "virtual"], in: dir, environment: env)
            #expect(found.status == 0)
            #expect(found.out == "joe\n")
            let missing = try swiftpostmap(["-q", "nobody@example.com", "virtual"], in: dir, environment: env)
            #expect(missing == ProcessResult(status: 1, stdout: Data(), stderr: Data()))

            let stdin = try swiftpostmap(
                ["-q", "-", "hash:virtual"], in: dir, input: Data("Info@Example.COM\nzz\n@EXAMPLE.net\n".utf8),
                environment: env)
            #expect(stdin.status == 0)
            #expect(stdin.out == "Info@Example.COM\tjoe\n@EXAMPLE.net\tjim\n")

            let list = try swiftpostmap(["-s", "virtual"], in: dir, environment: env)
            #expect(list.status == 0)
            #expect(Set(list.out.split(separator: "\n")) == ["info@example.com\tjoe", "@example.net\tjim"])
        }
    }

    @Test func messagesCarryTheProgramName() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            let missing = try swiftpostmap(["nonexist"], in: dir, environment: env)
            #expect(missing.status == 1)
            #expect(missing.err == "swiftpostmap: fatal: open nonexist: No such file or directory\n")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("nonexist.db").path))

            try write("a 1\na 2\n", to: "dups", in: dir)
            let dups = try swiftpostmap(["dups"], in: dir, environment: env, argv0: "postmap")
            #expect(dups.status == 0)
            #expect(dups.err == "postmap: warning: dups.db: duplicate entry: \"a\"\n")

            let usage = try swiftpostmap([], in: dir, environment: env)
            #expect(usage.status == 1)
            #expect(
                usage.err
                    == "swiftpostmap: fatal: usage: swiftpostmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...\n"
            )
            let listNothing = try swiftpostmap(["-s"], in: dir, environment: env)
            #expect(listNothing == ProcessResult(status: 1, stdout: Data(), stderr: Data()))
        }
    }

    @Test func noMainCfMeansPostfixDefaultsAndANamedDirectoryMustHaveOne() throws {
        try withTemporaryDirectory { dir in
            try write("Straße 1\n", to: "m", in: dir)
            let empty = dir.appendingPathComponent("empty")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            try write("", to: "main.cf", in: empty)
            // An empty main.cf: compatibility_level 0, so smtputf8_enable = no, ASCII folding.
            #expect(try swiftpostmap(["-c", empty.path, "m"], in: dir).status == 0)
            let listed = try swiftpostmap(["-c", empty.path, "-s", "m"], in: dir)
            #expect(listed.out == "straße\t1\n")
            let absent = try swiftpostmap(["-c", dir.appendingPathComponent("nowhere").path, "m"], in: dir)
            #expect(absent.status == 1)
            #expect(absent.err.hasSuffix("nowhere/main.cf: No such file or directory\n"))
        }
    }

    @Test func aFailedRebuildLeavesTheOldTable() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            try write("a 1\n", to: "m", in: dir)
            #expect(try swiftpostmap(["m"], in: dir, environment: env).status == 0)
            // A DB_CONFIG that libdb rejects makes the next build fail before it writes.
            try write("bogus_directive x\n", to: "DB_CONFIG", in: dir)
            try write("a 2\n", to: "m", in: dir)
            let failed = try swiftpostmap(["m"], in: dir, environment: env)
            #expect(failed.status == 1)
            #expect(failed.err.contains("fatal: open DB environment: Invalid argument"))
            try FileManager.default.removeItem(at: dir.appendingPathComponent("DB_CONFIG"))
            #expect(try swiftpostmap(["-q", "a", "m"], in: dir, environment: env).out == "1\n")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
                $0.contains("swiftpostmap-")
            }
            #expect(leftovers.isEmpty)
        }
    }

    @Test func concurrentIncrementalUpdatesAreAllKept() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("k0 v\n", to: "t", in: dir)
            #expect(try swiftpostmap(["-c", config.path, "t"], in: dir).status == 0)
            // Twelve writers at once: each must wait for the previous one and add to the table
            // that one left, not to the copy it started from.
            let script = "for i in $(seq 1 12); do (echo \"k$i v\" | \"$BIN\" -c \"$CFG\" -i hash:t) & done; wait"
            let result = try run(
                "/bin/bash", ["-c", script], in: dir, environment: ["BIN": swiftpostmapPath, "CFG": config.path])
            #expect(result.status == 0, "\(result)")
            let list = try swiftpostmap(["-c", config.path, "-s", "t"], in: dir)
            #expect(list.out.split(separator: "\n").count == 13, "\(list.out)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
                $0.contains("swiftpostmap-")
            }
            #expect(leftovers.isEmpty)
        }
    }

    @Test func symlinkedTableIsReadButNeverWrittenThrough() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let real = dir.appendingPathComponent("real")
            try FileManager.default.createDirectory(at: real, withIntermediateDirectories: true)
            try write("a 1\nb 2\n", to: "src", in: real)
            #expect(try swiftpostmap(["-c", config.path, "real/src"], in: dir).status == 0)
            try FileManager.default.createSymbolicLink(
                atPath: dir.appendingPathComponent("t.db").path, withDestinationPath: "real/src.db")
            #expect(try swiftpostmap(["-c", config.path, "-q", "b", "t"], in: dir).out == "2\n")
            // Every writer refuses it with the same message: -i, -d (which opens the table for
            // writing before it replaces it) and a build.
            try write("c 3\n", to: "t", in: dir)
            for arguments in [["-i", "t"], ["-d", "a", "t"], ["t"]] {
                let add = try swiftpostmap(["-c", config.path] + arguments, in: dir, input: Data("c 3\n".utf8))
                #expect(add.status == 1, "\(arguments)")
                #expect(
                    add.err
                        == "swiftpostmap: fatal: t.db is a symbolic link: not writing through it; name the real table"
                        + " instead\n", "\(arguments)")
            }
            // Nothing was lost: the link and its table are as they were.
            #expect(
                try swiftpostmap(["-c", config.path, "-s", "real/src"], in: dir).out.split(separator: "\n").count == 2)
            let attributes = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("t.db").path)
            #expect(attributes[.type] as? FileAttributeType == .typeSymbolicLink)
        }
    }

    @Test func deleteFromAZeroLengthTableChangesNothing() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("a 1\n", to: "t", in: dir)
            try write("", to: "t.db", in: dir)
            let result = try swiftpostmap(["-c", config.path, "-d", "a", "t"], in: dir)
            #expect(result.status == 1)
            #expect(result.err == "swiftpostmap: fatal: open database t.db: Invalid argument\n")
            let size = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("t.db").path)[.size]
            #expect(size as? Int == 0)
        }
    }

    @Test(
        "the real postmap reading during rebuilds never fails",
        .enabled(if: oracleAvailable, "Postfix is not installed"))
    func realReaderDuringRebuilds() throws {
        #expect(oracleInstalled)
        guard oracleInstalled else { return }
        try readerLoop(readerBinary: realPostmap)
    }

    @Test func readersNeverSeeAHalfWrittenTable() throws {
        try readerLoop(readerBinary: swiftpostmapPath)
    }

    /// A reader process queries in a loop while swiftpostmap rebuilds the table many times;
    /// every answer must be the right value with status 0.
    private func readerLoop(readerBinary: String) throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            let env = ["MAIL_CONFIG": config.path]
            var source = ""
            for index in 0..<3000 { source += "key\(index)@example.com value-\(index)\n" }
            try write(source, to: "big", in: dir)
            #expect(try swiftpostmap(["big"], in: dir, environment: env).status == 0)
            // A reader process queries in a loop while the table is rebuilt again and again.
            let script = """
                end=$((SECONDS+60)); n=0
                while [ -e go ] && [ $SECONDS -lt $end ]; do
                  v=$("$BIN" -q key2999@example.com big 2>&1) || { echo "status $? $v"; exit 1; }
                  [ "$v" = value-2999 ] || { echo "wrong: $v"; exit 1; }
                  n=$((n+1)); [ $n -eq 1 ] && touch started
                done
                echo "ok $n"
                """
            try write("", to: "go", in: dir)
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: "/bin/bash")
            reader.arguments = ["-c", script]
            reader.currentDirectoryURL = dir
            reader.environment = ["BIN": readerBinary, "MAIL_CONFIG": config.path, "PATH": "/usr/bin:/bin"]
                .merging(sanitizerEnvironment) { _, passed in passed }
            let output = Pipe()
            reader.standardOutput = output
            try reader.run()
            let started = dir.appendingPathComponent("started")
            for _ in 0..<2000 where !FileManager.default.fileExists(atPath: started.path) { usleep(5000) }
            for _ in 0..<40 {
                #expect(try swiftpostmap(["big"], in: dir, environment: env).status == 0)
            }
            try FileManager.default.removeItem(at: dir.appendingPathComponent("go"))
            reader.waitUntilExit()
            let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(reader.terminationStatus == 0, "reader said: \(report)")
            #expect(report.hasPrefix("ok "))
            #expect((Int(report.dropFirst(3).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0, "no query ran")
        }
    }
}
