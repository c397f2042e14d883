import Foundation
import MapCompiler
import Testing

/// `--lint`'s delivery rules through the library (no binary): each case of the issue that
/// asked for one semantic model, with and without the server's main.cf.
@Suite("Lint: delivery rules (library)")
struct DeliveryLintTests {
    /// The configuration of the live-Postfix cases: three virtual alias domains, one virtual
    /// mailbox domain, `+` extensions.
    static let mainCf = """
        compatibility_level = 3.6
        myhostname = mail.example.test
        mydestination = $myhostname, localhost
        recipient_delimiter = +
        virtual_alias_domains = loop.test catch.test ex.test rewrite.test
        virtual_mailbox_domains = mbox.test
        virtual_alias_maps = hash:$config_directory/valias
        virtual_mailbox_maps = hash:$config_directory/vm_map
        virtual_mailbox_base = /var/vmail

        """

    static let mailboxes = """
        catchall@mbox.test   mbox.test/catchall/
        user@mbox.test       mbox.test/user
        self@mbox.test       mbox.test/self/

        """

    /// Lints `virtual` (named `valias`, a name that says nothing about its kind) in a
    /// configuration directory, with the main.cf known or not.
    private func lint(_ virtual: String, known: Bool = true) throws -> [LintFinding] {
        try withTemporaryDirectory { dir in
            let valias = try write(virtual, to: "valias", in: dir)
            _ = try write(Self.mailboxes, to: "vm_map", in: dir)
            let mainCf = try write(Self.mainCf, to: "main.cf", in: dir)
            let config =
                known
                ? try MainConfig(
                    text: Array(try Data(contentsOf: mainCf)), path: mainCf.path, directory: dir.path, warn: { _ in })
                : MainConfig()
            let linter = MapLinter(configuration: config, configurationKnown: known, handling: KeyHandling())
            var operands = [valias.path]
            if !known { operands.append(dir.appendingPathComponent("vm_map").path) }
            let targets = linter.targets(operands: operands, kind: known ? nil : nil)
            return try linter.lint(targets).filter { $0.rule != .mapKind }
        }
    }

    private func errors(_ findings: [LintFinding]) -> [(Int, LintRule)] {
        findings.filter { $0.severity == .error }.map { ($0.line, $0.rule) }
    }

    @Test func aCatchAllOntoTheSameDomainIsABounceNotALoop() throws {
        let findings = try lint("@catch.test  user@catch.test\n")
        #expect(!findings.contains { $0.rule == .aliasLoop })
        let bounce = try #require(findings.first { $0.rule == .bounced })
        #expect(bounce.severity == .error)
        #expect(bounce.line == 1)
        #expect(bounce.message.contains("user@catch.test"))
        #expect(bounce.message.contains("User unknown in virtual alias table"))
        #expect(bounce.message.contains("accepted, then bounced"))
    }

    @Test func theExemptionIdiomIsNotCalledUseless() throws {
        let findings = try lint("joe@ex.test  joe@ex.test\n@ex.test  catchall@mbox.test\n")
        #expect(!findings.contains { $0.message.contains("no effect") || $0.message.contains("changes nothing") })
        // joe stays in the virtual alias domain: Postfix bounces him (measured live).
        #expect(errors(findings).map(\.1) == [.bounced])
        #expect(errors(findings).map(\.0) == [1])
        let note = try #require(findings.first { $0.rule == .selfReference })
        #expect(note.severity == .note)
        #expect(note.message.contains("keeps joe@ex.test out of the catch-all @ex.test"))
    }

    @Test func aTargetWithoutMailboxIsAnError() throws {
        let findings = try lint("ghost@mbox.test  nobody@mbox.test\n")
        let bounce = try #require(findings.first { $0.rule == .bounced })
        #expect(bounce.severity == .error)
        #expect(bounce.message.hasPrefix("ghost@mbox.test → nobody@mbox.test: unknown user"))
        #expect(bounce.message.contains("vm_map (virtual_mailbox_maps)"))
    }

    @Test func aLoopIsAnErrorAtEveryLineThatTakesPart() throws {
        let findings = try lint("a@loop.test  b@loop.test\nb@loop.test  a@loop.test\nc@loop.test  a@loop.test\n")
        let loops = findings.filter { $0.rule == .aliasLoop }
        #expect(loops.map(\.line) == [1, 2, 3])
        #expect(loops.allSatisfy { $0.severity == .error })
        #expect(loops[0].message.contains("alias loop a@loop.test → b@loop.test → a@loop.test"))
        #expect(loops[0].message.contains("451 4.6.0"))
    }

    @Test func deliveredMailGivesNoError() throws {
        let findings = try lint(
            """
            info@ex.test        user@mbox.test
            Mixed.Case@Ex.Test  catchall@mbox.test
            list@ex.test        user@mbox.test, someone@elsewhere.example
            self@mbox.test      self@mbox.test

            """)
        #expect(errors(findings).isEmpty, "\(findings.map(\.text))")
    }

    @Test func aDomainRewriteBouncesUnknownUsers() throws {
        // Mail to a user of rewrite.test without a mailbox in mbox.test is accepted, then
        // bounced (measured live); lint shows it for an address no key names.
        let findings = try lint("@rewrite.test  @mbox.test\n")
        let bounce = try #require(findings.first { $0.rule == .bounced })
        #expect(bounce.severity == .error)
        #expect(bounce.message.hasPrefix("no-such-user@rewrite.test → no-such-user@mbox.test: unknown user"))
    }

    @Test func oneFailingTargetOfAListIsAnError() throws {
        let findings = try lint("list@ex.test  user@mbox.test, bad@mbox.test\n")
        let bounce = try #require(findings.first { $0.rule == .bounced })
        #expect(bounce.message.hasPrefix("list@ex.test → bad@mbox.test:"))
        #expect(errors(findings).count == 1)
    }

    @Test func withoutMainCfDomainClassesAreOnlyNotes() throws {
        let findings = try lint("@catch.test  user@catch.test\nghost@mbox.test  nobody@mbox.test\n", known: false)
        #expect(errors(findings).isEmpty)
        let notes = findings.filter { $0.rule == .bounced }
        #expect(notes.count == 2)
        #expect(notes.allSatisfy { $0.severity == .note && $0.message.contains("a guess: no main.cf") })
        // A loop does not depend on domain classes: it stays an error.
        let loop = try lint("a@loop.test  b@loop.test\nb@loop.test  a@loop.test\n", known: false)
        #expect(errors(loop).map(\.1) == [.aliasLoop, .aliasLoop])
    }

    @Test func theKindComesFromTheParameterThatNamesTheMap() throws {
        try withTemporaryDirectory { dir in
            let valias = try write("a@loop.test  a@loop.test\n", to: "valias", in: dir)
            let mainCf = try write(Self.mainCf, to: "main.cf", in: dir)
            let config = try MainConfig(
                text: Array(try Data(contentsOf: mainCf)), path: mainCf.path, directory: dir.path, warn: { _ in })
            let linter = MapLinter(configuration: config, configurationKnown: true, handling: KeyHandling())
            let targets = linter.targets(
                operands: [valias.path, "hash:" + dir.appendingPathComponent("x").path], kind: nil)
            #expect(targets.map(\.kind) == [.virtual, .generic])
            #expect(targets[0].kindSource == "virtual_alias_maps in \(mainCf.path):7")
            #expect(targets[1].kindSource == "its file name")
            // The configuration comes first; --kind decides for maps it does not name.
            #expect(linter.targets(operands: [valias.path], kind: .aliases).map(\.kind) == [.virtual])
            #expect(
                linter.targets(operands: [dir.appendingPathComponent("x").path], kind: .aliases).map(\.kind) == [
                    .aliases
                ])
        }
    }

    @Test func limitsComeFromMainCf() throws {
        let chain = (0..<6).map { "u\($0)@ex.test  u\($0 + 1)@ex.test\n" }.joined()
        // Postfix's default limit (1000) is far away; main.cf's 5 is not.
        #expect(try lint(chain).allSatisfy { $0.rule != .recursionLimit })
        try withTemporaryDirectory { dir in
            _ = try write(chain, to: "valias", in: dir)
            _ = try write(Self.mailboxes, to: "vm_map", in: dir)
            let mainCf = try write(Self.mainCf + "virtual_alias_recursion_limit = 5\n", to: "main.cf", in: dir)
            let config = try MainConfig(
                text: Array(try Data(contentsOf: mainCf)), path: mainCf.path, directory: dir.path, warn: { _ in })
            let linter = MapLinter(configuration: config, configurationKnown: true, handling: KeyHandling())
            let findings = try linter.lint(
                linter.targets(operands: [dir.appendingPathComponent("valias").path], kind: nil))
            #expect(findings.filter { $0.rule == .recursionLimit }.map(\.line) == [1, 2, 3, 4, 5, 6])
        }
    }
}

@Suite("Lint: delivery rules, review findings")
struct DeliveryLintReviewTests {
    private func lint(_ virtual: String, mainCf: String, mailboxes: String = "") throws -> [LintFinding] {
        try withTemporaryDirectory { dir in
            let valias = try write(virtual, to: "valias", in: dir)
            _ = try write(mailboxes, to: "vm_map", in: dir)
            let path = try write(mainCf, to: "main.cf", in: dir)
            let config = try MainConfig(
                text: Array(try Data(contentsOf: path)), path: path.path, directory: dir.path, warn: { _ in })
            let linter = MapLinter(configuration: config, configurationKnown: true, handling: KeyHandling())
            return try linter.lint(linter.targets(operands: [valias.path], kind: nil)).filter { $0.rule != .mapKind }
        }
    }

    private let mainCf = """
        virtual_alias_domains = example.com
        virtual_mailbox_domains = mbox.example
        virtual_alias_maps = hash:$config_directory/valias
        virtual_mailbox_maps = hash:$config_directory/vm_map

        """

    @Test func anEntryReachedByALoopStillGetsItsOwnBounce() throws {
        let findings = try lint(
            "x@example.com a@example.com, y@example.com\na@example.com b@example.com\nb@example.com a@example.com\n"
                + "y@example.com nosuch@mbox.example\n", mainCf: mainCf)
        let line4 = findings.filter { $0.line == 4 && $0.severity == .error }.map(\.rule)
        #expect(line4.contains(.aliasLoop))
        #expect(line4.contains(.bounced))
    }

    @Test func aMailboxTableThatCannotBeReadGivesNoError() throws {
        let config = mainCf.replacingOccurrences(
            of: "virtual_mailbox_maps = hash:$config_directory/vm_map", with: "virtual_mailbox_maps = proxy:mysql:/x.cf"
        )
        let findings = try lint("webmaster@example.com info@mbox.example\n", mainCf: config)
        #expect(findings.allSatisfy { $0.severity != .error }, "\(findings.map(\.text))")
    }

    @Test func manyEntriesIntoOneLoopAreAllErrors() throws {
        let entries = (0..<300).map { "u\($0)@example.com l1@example.com\n" }.joined()
        let findings = try lint(
            entries + "l1@example.com l2@example.com\nl2@example.com l1@example.com\n", mainCf: mainCf)
        #expect(findings.filter { $0.rule == .aliasLoop }.count == 302)
    }
}
