import Foundation
import Testing

/// Runs every black-box case recorded from the real Postfix 3.7 (`../shared/fixtures/
/// postfix-3.7/`, or `$SWIFTPOSTMAP_FIXTURES`) against swiftpostmap installed under the
/// names `postmap` and `postalias`, and compares stdout, stderr, the exit status, the `-s`
/// listing and `db_dump -p` of the resulting table. The suite is skipped when the folder is
/// absent (a user's clone) and runs whenever it is there (CI has it).
@Suite("Postfix 3.7 fixtures", .serialized)
struct ConformanceTests {
    static let fixturesDirectory: URL = {
        if let path = ProcessInfo.processInfo.environment["SWIFTPOSTMAP_FIXTURES"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/postfix-3.7")
    }()

    static let caseNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixturesDirectory.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: fixturesDirectory.appendingPathComponent("\($0)/cmd").path)
        }.sorted()
    }()

    @Test("the fixtures are present under CI", .enabled(if: runningUnderCI))
    func presentUnderCI() {
        #expect(Self.caseNames.count >= 50, "no fixtures at \(Self.fixturesDirectory.path)")
    }

    @Test(
        "fixture", .enabled(if: !caseNames.isEmpty || runningUnderCI, "../shared/fixtures is not here"),
        arguments: caseNames)
    func fixture(_ name: String) throws {
        let caseDirectory = Self.fixturesDirectory.appendingPathComponent(name)
        try withTemporaryDirectory { work in
            let recorded = ["stdout", "stderr", "rc", "seq", "seq.stderr", "db_dump", "desc", "cmd"]
            for file in try FileManager.default.contentsOfDirectory(atPath: caseDirectory.path)
            where !recorded.contains(file) {
                try FileManager.default.copyItem(
                    at: caseDirectory.appendingPathComponent(file), to: work.appendingPathComponent(file))
            }
            let bin = work.appendingPathComponent(".bin")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            for program in ["postmap", "postalias"] {
                try FileManager.default.createSymbolicLink(
                    atPath: bin.appendingPathComponent(program).path, withDestinationPath: swiftpostmapPath)
            }
            // The reference host's main.cf.
            let config = try makeConfigDirectory(in: work.appendingPathComponent(".etc"))
            let environment = ["PATH": bin.path + ":/usr/sbin:/usr/bin:/sbin:/bin", "MAIL_CONFIG": config.path]
            let command = try String(contentsOf: caseDirectory.appendingPathComponent("cmd"), encoding: .utf8)
            let result = try run("/bin/sh", ["-c", command], in: work, environment: environment)

            let expected = { (file: String) in try Data(contentsOf: caseDirectory.appendingPathComponent(file)) }
            #expect(result.stdout == (try expected("stdout")), "stdout of \(name)")
            #expect(result.stderr == (try expected("stderr")), "stderr of \(name)")
            let rc = try String(decoding: expected("rc"), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(result.status == Int32(rc), "exit status of \(name)")

            let seqFile = caseDirectory.appendingPathComponent("seq")
            if FileManager.default.fileExists(atPath: seqFile.path) {
                let program = name.hasPrefix("postalias") ? "postalias" : "postmap"
                let type = name == "btree" ? "btree" : "hash"
                let listing = try run(
                    "/bin/sh", ["-c", "\(program) -s \(type):source"], in: work, environment: environment)
                #expect(
                    sortedLines(maskingBuildTime(listing.stdout)) == sortedLines(maskingBuildTime(try expected("seq"))),
                    "-s listing of \(name)")
            }
            let dumpFile = caseDirectory.appendingPathComponent("db_dump")
            let table = work.appendingPathComponent("source.db")
            if FileManager.default.fileExists(atPath: dumpFile.path),
                FileManager.default.fileExists(atPath: table.path)
            {
                let dump = try run("/usr/bin/db_dump", ["-p", table.path])
                #expect(
                    DumpSummary(maskingBuildTime(dump.stdout))
                        == DumpSummary(maskingBuildTime(try expected("db_dump"))),
                    "db_dump -p of \(name)")
            }
        }
    }
}

/// `db_dump -p` output reduced to what is promised: the header lines, and the records as an
/// unordered collection of key/value pairs.
struct DumpSummary: Equatable {
    var header: [String]
    var records: [String]

    init(_ data: Data) {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        let end = lines.firstIndex(of: "HEADER=END") ?? lines.count
        header = Array(lines[..<min(end + 1, lines.count)])
        let body = lines.dropFirst(end + 1).filter { $0 != "DATA=END" }
        var pairs: [String] = []
        var index = body.startIndex
        while index < body.endIndex {
            let next = body.index(after: index)
            pairs.append(body[index] + "\n" + (next < body.endIndex ? body[next] : ""))
            index = body.index(index, offsetBy: 2, limitedBy: body.endIndex) ?? body.endIndex
        }
        records = pairs.sorted()
    }
}

/// postalias stores its build time (`YP_LAST_MODIFIED`, ten digits); mask it for comparison.
func maskingBuildTime(_ data: Data) -> Data {
    var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        .map(String.init)
    for index in lines.indices {
        if lines[index].hasPrefix("YP_LAST_MODIFIED:\t") { lines[index] = "YP_LAST_MODIFIED:\t##########" }
        if index > 0, lines[index - 1] == " YP_LAST_MODIFIED" { lines[index] = " ##########" }
    }
    return Data(lines.joined(separator: "\n").utf8)
}
