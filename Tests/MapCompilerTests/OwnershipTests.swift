import Foundation
import Testing

/// Mode and owner of new and rebuilt tables, compared with the real postmap (as root: a new
/// table belongs to the source's owner unless -o; a rebuilt table keeps its mode and owner).
@Suite(
    "Table mode and owner", .serialized,
    .enabled(if: oracleAvailable && getuid() == 0, "needs root and the real postmap"))
struct OwnershipTests {
    struct Case: CustomStringConvertible, Sendable {
        var sourceMode: Int
        var owner: String?
        var options: [String]
        var existing: (mode: Int, owner: String)?
        /// The directory is 0777 (else root's 0755), so the source's owner may create files.
        var openDirectory = true
        var description: String {
            "source \(String(sourceMode, radix: 8)) \(owner ?? "root") \(options)"
                + (existing.map { " over \(String($0.mode, radix: 8)) \($0.owner)" } ?? "")
                + (openDirectory ? "" : " in a 0755 directory")
        }
    }

    static let cases: [Case] = [
        Case(sourceMode: 0o644, owner: nil, options: []),
        Case(sourceMode: 0o640, owner: "nobody:nogroup", options: []),
        Case(sourceMode: 0o600, owner: "nobody:nogroup", options: ["-o"]),
        Case(sourceMode: 0o755, owner: "root:nogroup", options: []),
        Case(sourceMode: 0o604, owner: nil, options: ["-p"]),
        Case(sourceMode: 0o644, owner: "nobody:nogroup", options: [], existing: (0o600, "root:root")),
        Case(sourceMode: 0o640, owner: nil, options: [], existing: (0o604, "nobody:nogroup")),
        Case(sourceMode: 0o640, owner: "nobody:nogroup", options: [], openDirectory: false),
        Case(sourceMode: 0o644, owner: "nobody:nogroup", options: [], existing: (0o644, "nobody:nogroup")),
        Case(
            sourceMode: 0o644, owner: "nobody:nogroup", options: [], existing: (0o644, "nobody:nogroup"),
            openDirectory: false),
        // The source's owner may write the table but it belongs to root: it stays root's.
        Case(sourceMode: 0o644, owner: "nobody:nogroup", options: [], existing: (0o666, "root:root")),
    ]

    @Test("same mode and owner as postmap", arguments: cases, ["hash", "lmdb", "cdb"])
    func sameAsPostmap(_ testCase: Case, _ type: String) throws {
        let table = "src." + (type == "hash" ? "db" : type)
        #expect(oracleInstalled)
        guard oracleInstalled else { return }
        try withTemporaryDirectory { root in
            let config = try makeConfigDirectory(in: root.appendingPathComponent("etc"))
            var seen: [String] = []
            for side in ["theirs", "ours"] {
                let dir = root.appendingPathComponent(side)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try run("/bin/chmod", [testCase.openDirectory ? "777" : "755", dir.path])
                try run("/bin/chmod", ["755", root.path])
                let source = try write("a 1\n", to: "src", in: dir)
                if let existing = testCase.existing {
                    try run(realPostmap, ["-c", config.path, "\(type):src"], in: dir)
                    try run("/bin/chmod", [String(existing.mode, radix: 8), table], in: dir)
                    try run("/bin/chown", [existing.owner, table], in: dir)
                }
                try run("/bin/chmod", [String(testCase.sourceMode, radix: 8), source.path])
                if let owner = testCase.owner { try run("/bin/chown", [owner, source.path]) }
                let arguments = ["-c", config.path] + testCase.options + ["\(type):src"]
                let result =
                    side == "theirs"
                    ? try run(realPostmap, arguments, in: dir)
                    : try swiftpostmap(arguments, in: dir, argv0: "postmap")
                let stat = try run("/usr/bin/stat", ["-c", "%a %U:%G", table], in: dir)
                seen.append("status \(result.status) \(normalizingProgramName(result.stderr, "postmap")) \(stat.out)")
            }
            #expect(seen[1] == seen[0], "\(type): \(testCase)")
        }
    }
}
