import Foundation
import Testing

/// The long-option modes as people type them, through the built binary.
@Suite("Validation command lines (end to end)")
struct ValidationCommandLineTests {
    private func configuration(in dir: URL) throws -> URL {
        let config = dir.appendingPathComponent("etc")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        _ = try write(
            """
            compatibility_level = 3.6
            myhostname = mail.example.test
            virtual_alias_domains = loop.test ex.test
            virtual_mailbox_domains = mbox.test
            virtual_alias_maps = hash:$config_directory/valias
            virtual_mailbox_maps = hash:$config_directory/vm_map
            virtual_mailbox_base = /var/vmail

            """, to: "main.cf", in: config)
        _ = try write(
            "smtp inet n - y - - smtpd\n  -o transport_maps=hash:$config_directory/routes\n", to: "master.cf",
            in: config)
        _ = try write(
            "a@loop.test b@loop.test\nb@loop.test a@loop.test\nsales@ex.test box@mbox.test\n", to: "valias", in: config)
        _ = try write("box@mbox.test box/\n", to: "vm_map", in: config)
        _ = try write("example.test smtp:[relay.example.test]\n", to: "routes", in: config)
        return config
    }

    @Test func optionsAndOperandsMixAndDoubleDashEndsOptions() throws {
        try withTemporaryDirectory { dir in
            let config = try configuration(in: dir)
            let mixed = try swiftpostmap(["--resolve", "sales@ex.test", "-c", config.path, "--json"], in: dir)
            #expect(mixed.status == 0, "\(mixed)")
            #expect(mixed.out.contains("\"status\":\"ok\""))
            // Sources stand in for missing tables, with a note.
            #expect(mixed.err.contains("swiftpostmap: note: hash:\(config.path)/valias: no \(config.path)/valias.db"))
            let dashed = try swiftpostmap(["--resolve", "-c", config.path, "--", "--odd@ex.test"], in: dir)
            #expect(dashed.out.hasPrefix("--odd@ex.test\n"), "\(dashed)")
            #expect(dashed.status == 1)  // refused: no entry in a virtual alias domain
            // A postmap command line keeps its meaning: options stop at the first operand, so
            // a long option after it is an operand (postmap builds "v" and "--lint").
            _ = try write("a@example.test b@example.test\n", to: "v", in: dir)
            _ = try write("a@example.test b@example.test\n", to: "--lint", in: dir)
            let built = try swiftpostmap(["v", "--lint"], in: dir)
            #expect(built.status == 0, "\(built)")
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("--lint.db").path))
            // An error after the mode is reported as such.
            let missing = try swiftpostmap(["--lint", "v", "--kind"], in: dir)
            #expect(missing.err.contains("option --kind needs an argument"), "\(missing)")
            let postmap = try swiftpostmap(["-q", "x", "hash:nosuch", "-f"], in: dir)
            #expect(postmap.err.contains("nosuch"), "\(postmap)")
        }
    }

    @Test func helpAndVersion() throws {
        try withTemporaryDirectory { dir in
            let help = try swiftpostmap(["--help"], in: dir)
            #expect(help.status == 0)
            #expect(help.out.contains("--lint [--kind KIND]"))
            let version = try swiftpostmap(["--version"], in: dir)
            #expect(version.status == 0)
            #expect(version.out.hasPrefix("swiftpostmap "))
            #expect(version.out.contains("Berkeley DB 5.3"))
        }
    }

    @Test func lintOfAWholeConfiguration() throws {
        try withTemporaryDirectory { dir in
            let config = try configuration(in: dir)
            let result = try swiftpostmap(["--lint", "-c", config.path], in: dir)
            #expect(result.status == 1, "\(result)")
            #expect(result.err == "3 map(s) checked: 2 error(s), 0 warning(s), 3 note(s)\n", "\(result)")
            #expect(result.out.contains("valias:0:0: note: checked as a virtual map (from virtual_alias_maps in"))
            #expect(result.out.contains("vm_map:0:0: note: checked as a vmailbox map"))
            #expect(result.out.contains("routes:0:0: note: checked as a transport map (from transport_maps in"))
            #expect(result.out.contains("master.cf:2)"))
            #expect(result.out.contains("valias:1:1: error: mail to a@loop.test is not accepted: alias loop"))
            #expect(result.out.contains("valias:2:1: error: mail to a@loop.test is not accepted: alias loop"))
            let none = try swiftpostmap(["--lint"], in: dir)
            #expect(none.status == 1)
            #expect(none.err.contains("usage: --lint"))
        }
    }
}
