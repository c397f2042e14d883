import Foundation
import MapCompiler
import Testing

/// What swiftpostmap shows only to a person at a terminal: the progress line of a long build
/// and the colours of `--lint`. A pseudo-terminal comes from util-linux's `script`; the same
/// command lines in a pipe must show neither.
@Suite("Progress line and colours", .serialized)
struct TerminalOutputTests {
    /// `-i` reads its entries from a pipe that stalls for 1.5 s, so the build runs longer
    /// than the second after which a terminal gets a progress line, without a large source.
    private static let stalledBuild = "(printf 'a@example.com x\\n'; sleep 1.5; printf 'b@example.com y\\n') | "

    @Test("a build that runs over a second shows a progress line on a terminal, then erases it")
    func progressOnTerminal() throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            // (A short name: the line is cut to the terminal's width, which is 80 under script.)
            let command = Self.stalledBuild + "\(swiftpostmapPath) -c \(config.path) -i hash:virtual"
            let result = try run("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], in: root)
            #expect(result.status == 0, "\(result)")
            let shown = result.out
            #expect(shown.contains("swiftpostmap: hash:virtual: 2 entries"), "\(shown.debugDescription)")
            // Drawn with a carriage return and erased the same way at the end.
            #expect(shown.hasPrefix("\r\u{1B}[K"), "\(shown.debugDescription)")
            #expect(shown.hasSuffix("\r\u{1B}[K"), "\(shown.debugDescription)")
            let query = try swiftpostmap(["-c", config.path, "-q", "b@example.com", "hash:virtual"], in: root)
            #expect(query.out == "y\n")
        }
    }

    @Test("the progress line is cut to the terminal's width, so that it can be erased")
    func progressFitsTheTerminal() throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            let long = String(repeating: "a-long-directory-name/", count: 4)
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(long), withIntermediateDirectories: true)
            let command =
                "stty cols 60; " + Self.stalledBuild
                + "\(swiftpostmapPath) -c \(config.path) -i hash:\(long)virtual"
            let result = try run("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], in: root)
            #expect(result.status == 0, "\(result)")
            let drawn = result.out.components(separatedBy: "\r\u{1B}[K").filter { !$0.isEmpty }
            #expect(!drawn.isEmpty, "\(result.out.debugDescription)")
            for line in drawn { #expect(line.count <= 59, "\(line.debugDescription)") }
        }
    }

    @Test("no progress line in a pipe, even for a slow build")
    func noProgressInPipe() throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            let command = Self.stalledBuild + "\(swiftpostmapPath) -c \(config.path) -i hash:\(root.path)/virtual"
            let result = try run("/bin/sh", ["-c", command], in: root)
            #expect(result == ProcessResult(status: 0, stdout: Data(), stderr: Data()))
        }
    }

    @Test("--progress writes plain lines to a pipe, and the totals at the end")
    func progressRequested() throws {
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root)
            let source = (0..<30_000).map { "user\($0)@example.com\tbox\($0)\n" }.joined()
            try write(source, to: "virtual", in: root)
            let result = try swiftpostmap(["-c", config.path, "--progress", "hash:virtual"], in: root)
            #expect(result.status == 0, "\(result)")
            let lines = result.err.split(separator: "\n").map(String.init)
            #expect(lines.last?.hasPrefix("swiftpostmap: hash:virtual: 30,000 entries in ") == true, "\(result)")
            #expect(lines.last?.hasSuffix(" s, done") == true, "\(result)")
            #expect(!result.err.contains("\u{1B}"), "no terminal controls in a pipe: \(result)")
            // The same build without --progress is silent, and the table is the same.
            let listed = try swiftpostmap(["-c", config.path, "-s", "hash:virtual"], in: root)
            #expect(listed.out.split(separator: "\n").count == 30_000)
            let quiet = try swiftpostmap(["-c", config.path, "hash:virtual"], in: root)
            #expect(quiet == ProcessResult(status: 0, stdout: Data(), stderr: Data()))
        }
    }

    @Test("--lint is coloured on a terminal, plain with NO_COLOR and in a pipe")
    func lintColours() throws {
        try withTemporaryDirectory { root in
            try write("info@example.com joe\nbroken\n", to: "virtual", in: root)
            let command = "\(swiftpostmapPath) --lint --kind virtual virtual"
            let coloured = try run("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], in: root)
            #expect(coloured.status == 1, "\(coloured)")
            #expect(coloured.out.contains("\u{1B}[1mvirtual:2:"), "\(coloured.out.debugDescription)")
            #expect(coloured.out.contains("\u{1B}[1;31merror:\u{1B}[0m"), "\(coloured.out.debugDescription)")

            let plain = try run(
                "/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], in: root, environment: ["NO_COLOR": "1"])
            #expect(plain.status == 1, "\(plain)")
            #expect(plain.out.contains("virtual:2:7: error: "), "\(plain.out.debugDescription)")
            #expect(!plain.out.contains("\u{1B}"), "\(plain.out.debugDescription)")

            let piped = try swiftpostmap(["--lint", "--kind", "virtual", "virtual"], in: root)
            #expect(piped.status == 1)
            #expect(piped.out.contains("virtual:2:7: error: "), "\(piped)")
            #expect(!piped.out.contains("\u{1B}") && !piped.err.contains("\u{1B}"), "\(piped)")
        }
    }

    @Test("the library reports progress: entries so far and the whole source read at the end")
    func libraryProgress() throws {
        try withTemporaryDirectory { root in
            let source = (0..<20_000).map { "key\($0) value\($0)\n" }.joined()
            let path = try write(source, to: "map", in: root).path
            for table in [TableType.hash, .lmdb, .cdb] {
                var reports: [BuildProgress] = []
                let request = BuildRequest(table: table, typeName: table.rawValue, name: path, input: .file(path))
                let summary = try buildTable(request, warn: { _ in }, progress: { reports.append($0) })
                #expect(summary.stored == 20_000)
                #expect(reports.count >= 5, "\(table): one report per batch of entries")
                #expect(reports.map(\.entries) == reports.map(\.entries).sorted())
                #expect(reports.last?.entries == 20_000)
                #expect(reports.last?.percentRead == 100, "\(table): \(String(describing: reports.last))")
                #expect(reports.allSatisfy { $0.sourceBytes == source.utf8.count })
            }
        }
    }
}
