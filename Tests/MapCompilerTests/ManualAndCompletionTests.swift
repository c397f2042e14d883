import Foundation
import Testing

/// The manual page (`man/swiftpostmap.1`) and the shell completions (`completions/`): they
/// render or load without complaint, and they know every long option `--help` names.

/// The first of `directories` that holds an executable `name`.
private func installedTool(
    _ name: String, in directories: [String] = ["/usr/bin", "/bin", "/usr/local/bin"]
) -> String? {
    directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

private let manPath = installedTool("man")
private let bashPath = installedTool("bash")
private let zshPath = installedTool("zsh")
private let fishPath = installedTool("fish")

private let manualURL = packageRoot.appendingPathComponent("man/swiftpostmap.1")
private let bashCompletionURL = packageRoot.appendingPathComponent("completions/swiftpostmap.bash")
private let zshCompletionURL = packageRoot.appendingPathComponent("completions/_swiftpostmap")
private let fishCompletionURL = packageRoot.appendingPathComponent("completions/swiftpostmap.fish")

/// The tool at `path`, or a recorded failure under CI (where a missing tool is an error, not
/// a reason to skip) and `nil`.
private func requiredTool(_ path: String?, _ name: String) -> String? {
    if let path { return path }
    Issue.record("\(name) is not installed (make test installs it)")
    return nil
}

/// The `--long-option` words of `text`, with U+2010 (hyphen) and U+2212 (minus) read as `-`.
private func longOptions(in text: String) -> Set<String> {
    let plain = text.replacingOccurrences(of: "\u{2010}", with: "-").replacingOccurrences(of: "\u{2212}", with: "-")
    var options = Set<String>()
    for match in plain.matches(of: /--[a-z][a-z-]*/) {
        var option = String(match.output)
        while option.hasSuffix("-") { option.removeLast() }
        options.insert(option)
    }
    return options
}

/// The long options `swiftpostmap --help` names.
private func helpLongOptions() throws -> Set<String> {
    let result = try withTemporaryDirectory { directory in try swiftpostmap(["--help"], in: directory) }
    #expect(result.status == 0, "\(result)")
    let options = longOptions(in: result.out)
    // Guard against a --help whose format changed so that nothing is found any more.
    #expect(options.count >= 15, "too few long options in --help: \(options.sorted())")
    #expect(options.contains("--lint") && options.contains("--diff"), "\(options.sorted())")
    return options
}

@Suite("Manual page and shell completions")
struct ManualAndCompletionTests {
    @Test(
        "the manual page renders without warnings and documents every long option of --help",
        .enabled(if: manPath != nil || runningUnderCI))
    func manualPage() throws {
        guard let man = requiredTool(manPath, "man") else { return }
        let result = try withTemporaryDirectory { directory in
            try run(
                man, ["--warnings", "-E", "UTF-8", "--nh", "--nj", "-l", manualURL.path], in: directory,
                environment: ["LC_ALL": "C.UTF-8", "MANWIDTH": "200", "HOME": directory.path])
        }
        #expect(result.status == 0, "\(result)")
        #expect(result.err.isEmpty, "man --warnings: \(result.err)")
        // Overstrike (x BACKSPACE x) and escape sequences, should man format for a terminal.
        let text = result.out.replacing(/.\x{08}/, with: "").replacing(/\x{1B}\[[0-9;]*m/, with: "")
        let documented = longOptions(in: text)
        let missing = try helpLongOptions().subtracting(documented)
        #expect(missing.isEmpty, "not in man/swiftpostmap.1: \(missing.sorted())")
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES"] {
            #expect(text.contains("\n\(section)\n"), "no \(section) section")
        }
    }

    @Test("the manual page names the version --version prints")
    func manualVersion() throws {
        let page = try String(contentsOf: manualURL, encoding: .utf8)
        let version = try withTemporaryDirectory { directory in try swiftpostmap(["--version"], in: directory) }
        let number = try #require(version.out.split(separator: " ").dropFirst().first.map(String.init), "\(version)")
        let header = page.split(separator: "\n").first { $0.hasPrefix(".TH ") }
        #expect(header?.contains("\"swiftpostmap \(number)\"") == true, "\(String(describing: header))")
    }

    /// The candidates `_swiftpostmap` offers for the command line `swiftpostmap WORDS...`,
    /// the last word being the one completed.
    private func bashCompletions(_ words: [String]) throws -> ProcessResult {
        let bash = try #require(bashPath)
        let script = """
            source "$1" || exit 3
            shift
            complete -p swiftpostmap >/dev/null || exit 4
            COMP_WORDS=(swiftpostmap "$@")
            COMP_CWORD=$#
            COMP_LINE="${COMP_WORDS[*]}"
            COMP_POINT=${#COMP_LINE}
            _swiftpostmap || exit 5
            for word in "${COMPREPLY[@]}"; do printf '%s\\n' "$word"; done
            """
        return try withTemporaryDirectory { directory in
            try run(
                bash, ["--noprofile", "--norc", "-c", script, "bash", bashCompletionURL.path] + words,
                in: directory, environment: ["HOME": directory.path])
        }
    }

    @Test("the bash completion loads and completes options, --kind values and every long option of --help")
    func bashCompletion() throws {
        let bash = try #require(bashPath)
        let loaded = try run(
            bash,
            [
                "--noprofile", "--norc", "-c", "source \"$1\" && complete -p swiftpostmap", "bash",
                bashCompletionURL.path,
            ])
        #expect(loaded.status == 0, "\(loaded)")
        #expect(loaded.err.isEmpty, "\(loaded)")
        #expect(loaded.out.contains("-F _swiftpostmap swiftpostmap"), "\(loaded)")

        let lint = try bashCompletions(["--l"])
        #expect(lint.status == 0, "\(lint)")
        #expect(lint.out.split(separator: "\n").contains("--lint"), "\(lint)")

        let kinds = try bashCompletions(["--lint", "--kind", ""])
        #expect(kinds.status == 0, "\(kinds)")
        let kindWords = Set(kinds.out.split(separator: "\n").map(String.init))
        #expect(
            kindWords
                == ["virtual", "vmailbox", "aliases", "transport", "relocated", "canonical", "access", "generic"],
            "\(kinds)")

        let types = try bashCompletions(["--sync", "--to", ""])
        #expect(Set(types.out.split(separator: "\n").map(String.init)) == ["lmdb", "cdb"], "\(types)")

        let all = try bashCompletions(["--"])
        #expect(all.status == 0, "\(all)")
        let offered = Set(all.out.split(separator: "\n").map(String.init))
        let missing = try helpLongOptions().subtracting(offered)
        #expect(missing.isEmpty, "not offered by completions/swiftpostmap.bash: \(missing.sorted())")
    }

    @Test(
        "the zsh completion parses and names every long option of --help",
        .enabled(if: zshPath != nil || runningUnderCI))
    func zshCompletion() throws {
        guard let zsh = requiredTool(zshPath, "zsh") else { return }
        let parsed = try run(zsh, ["-n", zshCompletionURL.path])
        #expect(parsed.status == 0, "\(parsed)")
        #expect(parsed.err.isEmpty, "\(parsed)")
        let text = try String(contentsOf: zshCompletionURL, encoding: .utf8)
        #expect(text.hasPrefix("#compdef swiftpostmap\n"))
        #expect(text.contains("_arguments"))
        let missing = try helpLongOptions().subtracting(longOptions(in: text))
        #expect(missing.isEmpty, "not in completions/_swiftpostmap: \(missing.sorted())")
    }

    @Test(
        "the fish completion parses, completes --lint and every long option of --help",
        .enabled(if: fishPath != nil || runningUnderCI))
    func fishCompletion() throws {
        guard let fish = requiredTool(fishPath, "fish") else { return }
        try withTemporaryDirectory { home in
            let environment = ["HOME": home.path, "XDG_CONFIG_HOME": home.path, "XDG_DATA_HOME": home.path]
            let parsed = try run(
                fish, ["--no-config", "--no-execute", fishCompletionURL.path], environment: environment)
            #expect(parsed.status == 0, "\(parsed)")
            #expect(parsed.err.isEmpty, "\(parsed)")

            func completions(_ line: String) throws -> [String] {
                let result = try run(
                    fish,
                    ["--no-config", "-c", "source $argv[1]; and complete -C $argv[2]", fishCompletionURL.path, line],
                    in: home, environment: environment)
                #expect(result.status == 0, "\(result)")
                #expect(result.err.isEmpty, "\(result)")
                // Each line is a candidate, then a tab and its description.
                return result.out.split(separator: "\n").map { String($0.prefix { $0 != "\t" }) }
            }
            #expect(try completions("swiftpostmap --li").contains("--lint"))
            #expect(try completions("swiftpostmap --kind ").contains("virtual"))

            let offered = Set(try completions("swiftpostmap --"))
            let declared = Set(
                try String(contentsOf: fishCompletionURL, encoding: .utf8).matches(of: /\s-l\s+([a-z][a-z-]*)/).map {
                    "--" + $0.output.1
                })
            let wanted = try helpLongOptions()
            #expect(wanted.subtracting(offered).isEmpty, "not offered by fish: \(wanted.subtracting(offered).sorted())")
            #expect(
                wanted.subtracting(declared).isEmpty,
                "not in completions/swiftpostmap.fish: \(wanted.subtracting(declared).sorted())")
        }
    }
}
