import Foundation
import Testing

/// `--lint`: every rule fires on its `Fixtures/lint/KIND/RULE.bad` source and stays silent
/// on `RULE.good`; the output form, exit status, `--werror`, `--json` and the broken examples.
@Suite("Lint")
struct LintTests {
    static let lintDirectory = packageRoot.appendingPathComponent("Fixtures/lint")

    /// (kind directory, rule) for every `.bad` fixture.
    static let rules: [String] = {
        var result: [String] = []
        for kind in ["any", "virtual", "vmailbox", "aliases", "maincf"] {
            let names =
                (try? FileManager.default.contentsOfDirectory(
                    atPath: lintDirectory.appendingPathComponent(kind).path)) ?? []
            result += names.filter { $0.hasSuffix(".bad") }.map { "\(kind)/\($0.dropLast(4))" }
        }
        return result.sorted()
    }()

    private func lint(_ relative: String, extra: [String] = []) throws -> (ProcessResult, [String]) {
        let kind = String(relative.split(separator: "/")[0])
        var arguments = ["--lint"] + extra
        switch kind {
        case "any": arguments += ["--kind", "generic"]
        case "maincf":
            arguments += ["--map-kind", "virtual", "-c", Self.lintDirectory.appendingPathComponent("maincf").path]
        default: arguments += ["--map-kind", kind]
        }
        arguments.append(Self.lintDirectory.appendingPathComponent(relative).path)
        let result = try withTemporaryDirectory { dir in
            try swiftpostmap(arguments, in: dir)
        }
        let ids = result.out.split(separator: "\n").compactMap { line -> String? in
            guard let open = line.lastIndex(of: "["), line.hasSuffix("]") else { return nil }
            let id = String(line[line.index(after: open)..<line.index(before: line.endIndex)])
            return id == "map-kind" ? nil : id  // every map gets one: what it was checked as
        }
        return (result, ids)
    }

    @Test func everyRuleHasFixtures() {
        #expect(Self.rules.count >= 25, "found \(Self.rules)")
    }

    @Test("the rule fires on its .bad fixture", arguments: rules)
    func positive(_ rule: String) throws {
        let id = String(rule.split(separator: "/")[1])
        let (result, ids) = try lint(rule + ".bad")
        #expect(ids.contains(id), "\(rule).bad gave \(result.out)")
    }

    @Test("the rule is silent on its .good fixture", arguments: rules)
    func negative(_ rule: String) throws {
        let id = String(rule.split(separator: "/")[1])
        let good = Self.lintDirectory.appendingPathComponent(rule + ".good")
        #expect(FileManager.default.fileExists(atPath: good.path), "missing \(rule).good")
        let (result, ids) = try lint(rule + ".good")
        #expect(!ids.contains(id), "\(rule).good gave \(result.out)")
    }

    @Test func unreadableFileIsAnErrorFinding() throws {
        let (result, ids) = try lint("any/does-not-exist")
        #expect(ids == ["unreadable"])
        #expect(result.status == 1)
        let (good, goodIds) = try lint("any/unreadable.good")
        #expect(goodIds.isEmpty)
        #expect(good.status == 0)
    }

    @Test func outputFormExitStatusAndWerror() throws {
        let (errors, _) = try lint("any/missing-value.bad")
        #expect(errors.status == 1)
        #expect(
            errors.out.hasSuffix(
                "missing-value.bad:1:20: error: key without a value: postmap skips this line [missing-value]\n"))
        #expect(errors.err == "1 map(s) checked: 1 error(s), 0 warning(s), 1 note(s)\n")
        let (warnings, _) = try lint("any/duplicate-key.bad")
        #expect(warnings.status == 0)
        let (strict, _) = try lint("any/duplicate-key.bad", extra: ["--werror"])
        #expect(strict.status == 1)
        let (json, _) = try lint("any/duplicate-key.bad", extra: ["--json"])
        let lines = json.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let kind = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
        #expect(kind?["rule"] as? String == "map-kind")
        #expect(kind?["message"] as? String == "checked as a generic map (from --kind generic)")
        let object = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        #expect(object?["rule"] as? String == "duplicate-key")
        #expect(object?["line"] as? Int == 2)
        #expect(object?["severity"] as? String == "warning")
    }

    @Test func duplicatesNameBothLines() throws {
        let (result, _) = try lint("any/duplicate-after-folding.bad")
        #expect(
            result.out.contains(":2:1: warning: key \"info@example.com\" is the same as \"Info@Example.com\" (line 1)"))
    }

    @Test func mainCfRulesNeedANamedMainCf() throws {
        // Without -c the multi-domain rules stay silent (no main.cf of the target server).
        let path = Self.lintDirectory.appendingPathComponent("maincf/domain-in-both.bad").path
        let result = try withTemporaryDirectory { dir in
            try swiftpostmap(["--lint", "--map-kind", "virtual", path], in: dir)
        }
        #expect(!result.out.contains("[domain-in-both]"))
    }

    @Test func brokenExamplesShowEveryDiagnostic() throws {
        let broken = packageRoot.appendingPathComponent("Fixtures/broken")
        let result = try withTemporaryDirectory { dir in
            try swiftpostmap(
                ["--lint", "-c", broken.appendingPathComponent("maincf").path]
                    + ["leading-whitespace", "syntax", "virtual", "vmailbox"].map {
                        broken.appendingPathComponent($0).path
                    }, in: dir)
        }
        #expect(result.status == 1)
        for rule in [
            "leading-whitespace", "missing-value", "unbalanced-quote", "alias-format", "comment-in-value",
            "invalid-utf8", "nul-byte", "carriage-return", "trailing-whitespace", "local-only-key", "catch-all",
            "self-reference", "alias-loop", "invalid-address", "duplicate-after-folding", "duplicate-key",
            "absolute-path", "dotdot-path", "mixed-mailbox-format", "shared-mailbox", "domain-in-mydestination",
            "domain-in-both", "domain-not-virtual",
        ] {
            #expect(result.out.contains("[\(rule)]"), "no \(rule) in Fixtures/broken")
        }
        let aliases = try withTemporaryDirectory { dir in
            try swiftpostmap(
                ["--lint", "--map-kind", "aliases", broken.appendingPathComponent("aliases").path], in: dir)
        }
        for rule in ["name-not-local", "missing-value", "duplicate-after-folding"] {
            #expect(aliases.out.contains("[\(rule)]"), "no \(rule) in Fixtures/broken/aliases")
        }
    }
}
