import Testing

@testable import MapCompiler
@testable import PostmapCommandLine

@Suite("Command line")
struct CommandLineTests {
    @Test func clusteredFlagsAndAttachedArguments() throws {
        let options = try parseCommandLine(["-fq", "Key", "map"], personality: .postmap)
        #expect(options.fold == false)
        #expect(options.mode == .query("Key"))
        #expect(options.operands == ["map"])
        let attached = try parseCommandLine(["-qkey", "-c/etc/x", "map"], personality: .postmap)
        #expect(attached.mode == .query("key"))
        #expect(attached.configDirectory == "/etc/x")
    }

    @Test func parsingStopsAtTheFirstOperand() throws {
        let options = try parseCommandLine(["q1", "-q", "a"], personality: .postmap)
        #expect(options.mode == .build)
        #expect(options.operands == ["q1", "-q", "a"])
        let dashes = try parseCommandLine(["--", "-s"], personality: .postmap)
        #expect(dashes.operands == ["-s"])
    }

    @Test func laterFlagsWin() throws {
        #expect(try parseCommandLine(["-n", "-N", "m"], personality: .postmap).nul == .withNUL)
        #expect(try parseCommandLine(["-N", "-n", "m"], personality: .postmap).nul == .withoutNUL)
        #expect(try parseCommandLine(["-r", "-w", "m"], personality: .postmap).duplicates == .ignore)
        #expect(try parseCommandLine(["-w", "-r", "m"], personality: .postmap).duplicates == .replace)
    }

    @Test func modeConflictsUseOrderDependentWording() {
        #expect(throws: CommandLineError.conflictingModes("specify only one of -s -q or -d")) {
            try parseCommandLine(["-s", "-q", "a", "m"], personality: .postmap)
        }
        #expect(throws: CommandLineError.conflictingModes("specify only one of -s or -q or -d")) {
            try parseCommandLine(["-q", "a", "-s", "m"], personality: .postmap)
        }
        #expect((try? parseCommandLine(["-s", "-s", "m"], personality: .postmap)) != nil)
    }

    @Test func errorsPrintGlibcAndUsageLines() {
        #expect(throws: CommandLineError.invalidOption("x")) { try parseCommandLine(["-x"], personality: .postmap) }
        #expect(throws: CommandLineError.invalidOption("F")) { try parseCommandLine(["-F"], personality: .postalias) }
        #expect(throws: CommandLineError.missingArgument("q")) { try parseCommandLine(["-q"], personality: .postmap) }
        #expect(
            CommandLineError.missingArgument("q").lines(program: "postmap", personality: .postmap) == [
                "postmap: option requires an argument -- 'q'",
                "postmap: fatal: usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...",
            ])
    }

    @Test func jsonFlagForBothPersonalities() throws {
        #expect(try parseCommandLine(["-jq", "a", "m"], personality: .postmap).jsonShort)
        #expect(try parseCommandLine(["-j", "-s", "m"], personality: .postalias).jsonShort)
        #expect(try parseCommandLine(["-s", "m"], personality: .postmap).jsonShort == false)
    }

    @Test func mapArguments() {
        #expect(MapArgument("hash:/a:b") == MapArgument(type: "hash", name: "/a:b"))
        #expect(MapArgument("plain").explicitType == nil)
        #expect(MapArgument(":q1") == MapArgument(type: "", name: "q1"))
        #expect(MapArgument("btree:x").tablePath == "x.db")
    }

    @Test func newTableModeFollowsTheSourceReadBits() {
        #expect(newTableMode(sourceMode: 0o644) == 0o644)
        #expect(newTableMode(sourceMode: 0o640) == 0o640)
        #expect(newTableMode(sourceMode: 0o600) == 0o600)
        #expect(newTableMode(sourceMode: 0o604) == 0o604)
        #expect(newTableMode(sourceMode: 0o755) == 0o644)
        #expect(newTableMode(sourceMode: nil) == 0o644)
    }
}
