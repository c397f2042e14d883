import Foundation
import Testing

/// The recipes in docs/ work as written: the Makefile fragment rebuilds only what changed,
/// every swiftpostmap command line there uses options the program has, and the Ansible
/// `validate` command accepts a good source and rejects a bad one.
@Suite struct RecipeTests {
    static let docs = packageRoot.appendingPathComponent("docs")

    /// Long options announced for this release but possibly not yet in `--help`.
    static let announcedOptions: Set<String> = ["--progress", "--reproducible", "--bytes", "--aliases"]

    // MARK: docs/maps.mk

    @Test func makefileFragmentRebuildsOnlyChangedMaps() throws {
        let makeProgram = try #require(Self.makePath, "GNU make is needed to test docs/maps.mk")
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("info@example.com  anna@example.org\n", to: "virtual", in: dir)
            try write("anna@example.org  example.org/anna/\n", to: "vmailbox", in: dir)
            try write("postmaster: root\n", to: "aliases", in: dir)
            let fragment = Self.docs.appendingPathComponent("maps.mk").path
            let arguments = [
                "-f", fragment, "SWIFTPOSTMAP=\(swiftpostmapPath)", "MAPS=virtual vmailbox", "ALIASES=aliases",
                "POSTFIX_CONFIG=\(config.path)",
            ]
            func make(_ extra: [String]) throws -> ProcessResult {
                try run(makeProgram, arguments + extra, in: dir)
            }

            let first = try make([])
            #expect(first.status == 0, "\(first)")
            for table in ["virtual.db", "vmailbox.db", "aliases.db"] {
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(table).path), "\(table)")
            }
            #expect(first.out.contains("--aliases"), "aliases built as postalias: \(first)")
            let fresh = try make(["-q"])
            #expect(fresh.status == 0, "nothing to rebuild right after a build: \(fresh)")
            let checked = try make(["check"])
            #expect(checked.status == 0, "lint and verify pass: \(checked)")

            // Tables a minute old, sources older: up to date. Then change one source.
            for name in ["virtual", "vmailbox", "aliases"] {
                try setModificationTime(of: name, in: dir, secondsAgo: 120)
                try setModificationTime(of: name + ".db", in: dir, secondsAgo: 60)
            }
            let before = try fileIdentity("vmailbox.db", in: dir)
            let virtualBefore = try fileIdentity("virtual.db", in: dir)
            let unchanged = try make([])
            #expect(unchanged.status == 0 && !unchanged.out.contains("hash:"), "nothing rebuilt: \(unchanged)")
            #expect(try fileIdentity("vmailbox.db", in: dir) == before)

            try write("info@example.com  ben@example.org\n", to: "virtual", in: dir)
            let stale = try make(["-q"])
            #expect(stale.status == 1, "a changed source makes make -q report work: \(stale)")
            let failedCheck = try make(["check"])
            #expect(failedCheck.status != 0, "--verify notices the stale table: \(failedCheck)")

            let second = try make([])
            #expect(second.status == 0, "\(second)")
            #expect(second.out.contains("hash:virtual"), "\(second)")
            #expect(!second.out.contains("hash:vmailbox") && !second.out.contains("hash:aliases"), "\(second)")
            #expect(try fileIdentity("vmailbox.db", in: dir) == before, "the unchanged table is untouched")
            #expect(try fileIdentity("virtual.db", in: dir) != virtualBefore, "the changed table is replaced")
            let query = try swiftpostmap(["-c", config.path, "-q", "info@example.com", "hash:virtual"], in: dir)
            #expect(query.status == 0 && query.out == "ben@example.org\n", "\(query)")
            #expect(try make(["-q"]).status == 0)
            #expect(try make(["check"]).status == 0)

            // Another table type: the same sources as lmdb tables.
            let lmdb = try make(["MAP_TYPE=lmdb"])
            #expect(lmdb.status == 0, "\(lmdb)")
            for table in ["virtual.lmdb", "vmailbox.lmdb", "aliases.lmdb"] {
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(table).path), "\(table)")
            }
            #expect(try make(["MAP_TYPE=lmdb", "-q"]).status == 0)
        }
    }

    @Test func makefileReloadRunsOnlyAfterARebuild() throws {
        let makeProgram = try #require(Self.makePath, "GNU make is needed to test docs/maps.mk")
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write("info@example.com  anna@example.org\n", to: "virtual", in: dir)
            let arguments = [
                "-f", Self.docs.appendingPathComponent("maps.mk").path, "SWIFTPOSTMAP=\(swiftpostmapPath)",
                "MAPS=virtual", "POSTFIX_CONFIG=\(config.path)", "POSTFIX_RELOAD=echo reloading-postfix", "reload",
            ]
            let first = try run(makeProgram, arguments, in: dir)
            #expect(first.status == 0 && first.out.contains("reloading-postfix\n"), "\(first)")
            let second = try run(makeProgram, arguments, in: dir)
            #expect(second.status == 0 && !second.out.contains("reloading-postfix"), "\(second)")
        }
    }

    /// make deletes a target that changed while its recipe ran when it is interrupted; the
    /// fragment's `.PRECIOUS` keeps a table swiftpostmap already renamed into place.
    @Test func interruptedMakeKeepsTheRenamedTable() throws {
        let makeProgram = try #require(Self.makePath, "GNU make is needed to test docs/maps.mk")
        try withTemporaryDirectory { dir in
            try write("a b\n", to: "virtual", in: dir)
            try write("old table\n", to: "virtual.db", in: dir)
            try setModificationTime(of: "virtual.db", in: dir, secondsAgo: 60)
            // Stands in for a build that has renamed the new table into place and not yet exited.
            let fake = try write(
                """
                #!/bin/sh
                for last; do :; done
                printf 'new table\\n' > "${last#*:}.db.tmp" && mv "${last#*:}.db.tmp" "${last#*:}.db"
                echo $$ > fake.pid
                exec sleep 5
                """, to: "fake-swiftpostmap", in: dir)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)

            let process = Process()
            process.executableURL = URL(fileURLWithPath: makeProgram)
            process.arguments = [
                "-f", Self.docs.appendingPathComponent("maps.mk").path, "SWIFTPOSTMAP=\(fake.path)", "MAPS=virtual",
            ]
            process.currentDirectoryURL = dir
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let pidFile = dir.appendingPathComponent("fake.pid")
            let deadline = Date(timeIntervalSinceNow: 5)
            while !FileManager.default.fileExists(atPath: pidFile.path) && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
            Thread.sleep(forTimeInterval: 0.05)
            process.terminate()
            process.waitUntilExit()
            if let pid = try? String(contentsOf: pidFile, encoding: .utf8) {
                try run("/bin/kill", ["-KILL", pid.trimmingCharacters(in: .whitespacesAndNewlines)])
            }
            #expect(process.terminationReason == .uncaughtSignal || process.terminationStatus != 0)
            let table = try? String(contentsOf: dir.appendingPathComponent("virtual.db"), encoding: .utf8)
            #expect(table == "new table\n", "make must not delete the table swiftpostmap renamed into place")
        }
    }

    // MARK: command lines in docs/

    @Test func documentedCommandLinesUseExistingOptions() throws {
        let help = try swiftpostmap(["--help"], in: packageRoot)
        #expect(help.status == 0, "\(help)")
        let known = Self.longOptions(in: help.out + help.err).union(Self.announcedOptions)
        #expect(known.contains("--lint") && known.contains("--verify"), "options read from --help: \(known)")

        var commands = 0
        for file in try Self.documentationFiles() {
            let text = try String(contentsOf: file, encoding: .utf8)
            let lines =
                file.pathExtension == "mk"
                ? Self.logicalLines(text.components(separatedBy: "\n")) : Self.commandLines(inMarkdown: text)
            for line in lines {
                for arguments in Self.invocations(in: line) {
                    commands += 1
                    for option in Self.longOptions(in: arguments.joined(separator: " ")) where !known.contains(option) {
                        Issue.record("\(file.lastPathComponent): \(option) is not an option of swiftpostmap: \(line)")
                    }
                }
            }
        }
        #expect(commands >= 30, "found \(commands) swiftpostmap command lines in docs/")
    }

    // MARK: docs/ansible.md

    @Test func ansibleValidateCommandWorksAsDocumented() throws {
        let text = try String(contentsOf: Self.docs.appendingPathComponent("ansible.md"), encoding: .utf8)
        let line = try #require(
            text.components(separatedBy: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("validate:") })
        var command = line.trimmingCharacters(in: .whitespaces).dropFirst("validate:".count)
            .trimmingCharacters(in: .whitespaces)
        if command.hasPrefix("\""), command.hasSuffix("\"") { command = String(command.dropFirst().dropLast()) }
        #expect(command.contains("{{ item.kind }}") && command.hasSuffix("%s"), "validate: \(command)")
        let kinds = text.components(separatedBy: "\n").compactMap { line -> String? in
            guard let range = line.range(of: "kind: ") else { return nil }
            return String(line[range.upperBound...].prefix { $0.isLetter })
        }
        #expect(kinds.contains("virtual"), "postfix_maps kinds: \(kinds)")

        func validate(_ content: String, kind: String) throws -> ProcessResult {
            try withTemporaryDirectory { dir in
                // Ansible names the temporary file after nothing the kind could be read from.
                let file = try write(content, to: "tmp8f3kq2_source", in: dir)
                let words =
                    command.replacingOccurrences(of: "{{ swiftpostmap }}", with: swiftpostmapPath)
                    .replacingOccurrences(of: "{{ item.kind }}", with: kind)
                    .replacingOccurrences(of: "%s", with: file.path)
                    .split(separator: " ").map(String.init)
                #expect(!words.contains { $0.contains("{{") }, "unresolved template: \(words)")
                return try run(words[0], Array(words.dropFirst()), in: dir)
            }
        }

        let good = try validate(
            "postmaster@example.com  anna@example.org\ninfo@example.com  anna@example.org, ben@example.org\n",
            kind: "virtual")
        #expect(good.status == 0, "a good virtual source passes: \(good)")
        #expect(good.out.contains("checked as a virtual map (from --kind virtual)"), "\(good)")
        let loop = try validate("a@example.com  b@example.com\nb@example.com  a@example.com\n", kind: "virtual")
        #expect(loop.status == 1 && loop.out.contains("[alias-loop]"), "an alias loop fails: \(loop)")
        let missing = try validate("info@example.com\n", kind: "virtual")
        #expect(
            missing.status == 1 && missing.out.contains("[missing-value]"), "a line without value fails: \(missing)")
        for kind in Set(kinds) {
            let empty = try validate("", kind: kind)
            #expect(empty.status == 0, "--kind \(kind) is accepted: \(empty)")
        }
    }

    // MARK: helpers

    static let makePath: String? = ["/usr/bin/make", "/bin/make", "/usr/local/bin/make"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func documentationFiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: docs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "md" || $0.pathExtension == "mk" }
            .sorted { $0.path < $1.path }
    }

    /// Every `--option` word in `text`.
    static func longOptions(in text: String) -> Set<String> {
        var options: Set<String> = []
        for word in text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }) {
            guard word.hasPrefix("--"), word.count > 2, word.dropFirst(2).first?.isLetter == true else { continue }
            options.insert(String(word))
        }
        return options
    }

    /// The lines of fenced code blocks (joined where a command continues) and the inline
    /// code spans of a Markdown text.
    static func commandLines(inMarkdown text: String) -> [String] {
        var block: [String] = []
        var lines: [String] = []
        var inBlock = false
        for line in text.components(separatedBy: "\n") {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                if inBlock { lines += logicalLines(block) }
                block = []
                inBlock.toggle()
            } else if inBlock {
                block.append(line)
            } else {
                lines += line.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                    .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            }
        }
        return lines
    }

    /// Joins shell continuations (`\` at the end) and YAML folded scalars (`>-`, `>`) with
    /// the lines that continue them.
    static func logicalLines(_ lines: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < lines.count {
            var line = lines[index]
            index += 1
            while line.hasSuffix("\\"), index < lines.count {
                line = String(line.dropLast()) + " " + lines[index]
                index += 1
            }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix(">-") || trimmed.hasSuffix(">") {
                let indent = line.prefix { $0 == " " }.count
                while index < lines.count, lines[index].prefix(while: { $0 == " " }).count > indent {
                    line += " " + lines[index]
                    index += 1
                }
            }
            result.append(line)
        }
        return result
    }

    /// The argument words of every swiftpostmap command in `line`: a word named
    /// `swiftpostmap` (a path ending in it, or `$(SWIFTPOSTMAP)` in a Makefile), up to the
    /// end of that command.
    static func invocations(in line: String) -> [[String]] {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map {
            $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        var result: [[String]] = []
        var current: [String]?
        for word in words {
            if ["|", "||", "&&", ";", "#", ">", "2>", "2>&1"].contains(word) || word.hasPrefix("#") {
                if let current { result.append(current) }
                current = nil
                if word.hasPrefix("#") { break }
                continue
            }
            if word.split(separator: "/").last == "swiftpostmap" || word == "$(SWIFTPOSTMAP)" {
                if let current { result.append(current) }
                current = []
            } else {
                current?.append(word)
            }
        }
        if let current { result.append(current) }
        return result
    }

    func setModificationTime(of name: String, in dir: URL, secondsAgo: TimeInterval) throws {
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -secondsAgo)],
            ofItemAtPath: dir.appendingPathComponent(name).path)
    }

    /// Inode and modification time: what changes when a table is rebuilt.
    func fileIdentity(_ name: String, in dir: URL) throws -> [String] {
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(name).path)
        let inode = (attributes[.systemFileNumber] as? NSNumber)?.stringValue ?? "?"
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return [inode, String(modified)]
    }
}
