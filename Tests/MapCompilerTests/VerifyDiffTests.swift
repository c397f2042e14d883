import Foundation
import Testing

/// `--verify`, `--diff` and JSON output of `-q`/`-s`, against tables written by swiftpostmap
/// and by the real postmap.
@Suite("Verify, diff and JSON")
struct VerifyDiffTests {
    static let source = "Info@Example.COM  joe\nsales@example.com  jane, bob\n@example.net  jim\n"

    /// Builds `virtual.db` with swiftpostmap or, when `real`, with the real postmap.
    private func build(in dir: URL, config: URL, real: Bool) throws {
        let result =
            real
            ? try run(realPostmap, ["-c", config.path, "virtual"], in: dir)
            : try swiftpostmap(["-c", config.path, "virtual"], in: dir)
        #expect(result.status == 0, "\(result)")
    }

    @Test("verify: up to date, then changed source", arguments: [false, true])
    func verify(realPostmapBuilt: Bool) throws {
        if realPostmapBuilt {
            #expect(oracleInstalled || !runningUnderCI)
            guard oracleInstalled else { return }
        }
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source, to: "virtual", in: dir)
            try build(in: dir, config: config, real: realPostmapBuilt)
            let fresh = try swiftpostmap(["-c", config.path, "--verify", "virtual"], in: dir)
            #expect(fresh.status == 0, "\(fresh)")
            #expect(fresh.out.isEmpty)
            #expect(fresh.err == "virtual.db: up to date with virtual (3 entries)\n")

            try write(
                "info@example.com  joseph\nsales@example.com  jane, bob\nnew@example.com  x\n", to: "virtual", in: dir)
            let stale = try swiftpostmap(["-c", config.path, "--verify", "virtual"], in: dir)
            #expect(stale.status == 1)
            #expect(
                stale.out == """
                    --- virtual (source)
                    +++ virtual.db (table)
                    + @example.net jim
                    ~ info@example.com joseph → joe
                    - new@example.com x

                    """)
            let json = try swiftpostmap(["-c", config.path, "--verify", "--json", "virtual"], in: dir)
            #expect(json.out.split(separator: "\n").count == 3)
            #expect(
                json.out.contains(
                    "{\"change\":\"changed\",\"key\":\"info@example.com\",\"old\":\"joseph\",\"new\":\"joe\"}"))
        }
    }

    @Test func verifyWithoutTableFails() throws {
        try withTemporaryDirectory { dir in
            try write(Self.source, to: "virtual", in: dir)
            let result = try swiftpostmap(["--verify", "virtual"], in: dir)
            #expect(result.status == 1)
            #expect(result.err == "swiftpostmap: fatal: open database virtual.db: No such file or directory\n")
        }
    }

    @Test func diffSourcesAndTablesInAnyMix() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source, to: "virtual", in: dir)
            try write("info@example.com  joe\nsales@example.com  jane\nnew@example.com  x\n", to: "next", in: dir)
            try build(in: dir, config: config, real: oracleInstalled)
            let expected = """
                - @example.net jim
                + new@example.com x
                ~ sales@example.com jane, bob → jane

                """
            for first in ["virtual", "virtual.db", "hash:virtual"] {
                let result = try swiftpostmap(["-c", config.path, "--diff", first, "next"], in: dir)
                #expect(result.status == 1, "\(first): \(result)")
                #expect(result.out == expected, "\(first)")
            }
            let same = try swiftpostmap(["-c", config.path, "--diff", "virtual", "virtual.db"], in: dir)
            #expect(same == ProcessResult(status: 0, stdout: Data(), stderr: Data()))
            let trouble = try swiftpostmap(["-c", config.path, "--diff", "virtual", "missing"], in: dir)
            #expect(trouble.status == 2)
            #expect(trouble.err == "swiftpostmap: fatal: open missing: No such file or directory\n")
        }
    }

    @Test func jsonForQueryAndList() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source, to: "virtual", in: dir)
            try build(in: dir, config: config, real: false)
            let query = try swiftpostmap(["-c", config.path, "-j", "-q", "INFO@example.com", "virtual"], in: dir)
            #expect(query.out == "{\"key\":\"INFO@example.com\",\"value\":\"joe\"}\n")
            let missing = try swiftpostmap(["-c", config.path, "-j", "-q", "nobody", "virtual"], in: dir)
            #expect(missing == ProcessResult(status: 1, stdout: Data(), stderr: Data()))
            let list = try swiftpostmap(["-c", config.path, "--json", "-s", "virtual"], in: dir)
            let records = try list.out.split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
            }
            #expect(
                Set(records.compactMap { $0?["key"] }) == ["info@example.com", "sales@example.com", "@example.net"])
            let stdin = try swiftpostmap(
                ["-c", config.path, "-jq", "-", "virtual"], in: dir, input: Data("Info@Example.COM\nzz\n".utf8))
            #expect(stdin.out == "{\"key\":\"Info@Example.COM\",\"value\":\"joe\"}\n")
        }
    }
}
