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

    /// `-j` is Postfix 3.11's: `{"KEY": "VALUE"}` lines, the key as typed for `-q`, as stored
    /// for `-s`, fatal without `-q` or `-s`. `--json` keeps the `key`/`value` object.
    @Test func jsonForQueryAndList() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir)
            try write(Self.source, to: "virtual", in: dir)
            try build(in: dir, config: config, real: false)
            let query = try swiftpostmap(["-c", config.path, "-j", "-q", "INFO@example.com", "virtual"], in: dir)
            #expect(
                query
                    == ProcessResult(status: 0, stdout: Data("{\"INFO@example.com\": \"joe\"}\n".utf8), stderr: Data()))
            let missing = try swiftpostmap(["-c", config.path, "-j", "-q", "nobody", "virtual"], in: dir)
            #expect(missing == ProcessResult(status: 1, stdout: Data(), stderr: Data()))
            let list = try swiftpostmap(["-c", config.path, "-js", "virtual"], in: dir)
            #expect(
                sortedLines(list.stdout).filter { !$0.isEmpty }.map { String(decoding: $0, as: UTF8.self) }
                    == [
                        "{\"@example.net\": \"jim\"}", "{\"info@example.com\": \"joe\"}",
                        "{\"sales@example.com\": \"jane, bob\"}",
                    ].sorted())
            let stdin = try swiftpostmap(
                ["-c", config.path, "-jq", "-", "virtual"], in: dir, input: Data("Info@Example.COM\nzz\n".utf8))
            #expect(stdin.out == "{\"Info@Example.COM\": \"joe\"}\n")
            let rich = try swiftpostmap(["-c", config.path, "--json", "-q", "INFO@example.com", "virtual"], in: dir)
            #expect(rich.out == "{\"key\":\"INFO@example.com\",\"value\":\"joe\"}\n")
            let inline = try swiftpostmap(["-jq", "foo", "inline:{{foo = fooval}}"], in: dir)
            #expect(inline.out == "{\"foo\": \"fooval\"}\n")
            for arguments in [["-j", "-d", "info@example.com"], ["-j", "-i"], ["-j"]] {
                let refused = try swiftpostmap(
                    ["-c", config.path] + arguments + ["virtual"], in: dir, argv0: "postmap")
                #expect(
                    refused
                        == ProcessResult(
                            status: 1, stdout: Data(),
                            stderr: Data("postmap: fatal: option -j requires -q or -s\n".utf8)),
                    "\(arguments)")
            }
            let kept = try swiftpostmap(["-c", config.path, "-q", "info@example.com", "virtual"], in: dir)
            #expect(kept.out == "joe\n", "-j -d deleted nothing")
        }
    }

    /// The escaping of 3.11's `-j`, byte by byte: quote, backslash, the two-letter escapes,
    /// `\u00XX` upper-case for the other controls and DEL, `/` and bytes from 0x80 as they are.
    @Test func postfixJSONEscaping() throws {
        try withTemporaryDirectory { dir in
            let config = try makeConfigDirectory(in: dir, extra: "compatibility_level = 0\n")
            let key: [UInt8] = Array("ab\\c".utf8) + [0x01, 0x7F, 0x2F, 0xFF, 0xC3, 0xA9]
            let value: [UInt8] = Array("v\"q\\".utf8) + [0x08, 0x0C, 0x0D, 0x1F, 0x20, 0x78]
            try write(Data(key + [0x09] + value + [0x0A]), to: "odd", in: dir)
            let built = try swiftpostmap(["-c", config.path, "hash:odd"], in: dir)
            #expect(built.status == 0, "\(built)")
            let expected: [UInt8] =
                Array(#"{"ab\\c\u0001\u007F/"#.utf8) + [0xFF, 0xC3, 0xA9] + Array(#"": "v\"q\\\b\f\r\u001F x"}"#.utf8)
                + [0x0A]
            let list = try swiftpostmap(["-c", config.path, "-js", "hash:odd"], in: dir)
            #expect(list.stdout == Data(expected))
            let query = try swiftpostmap(
                ["-c", config.path, "-jq", "-", "hash:odd"], in: dir, input: Data(key + [0x0A]))
            #expect(query.stdout == Data(expected))
        }
    }
}
