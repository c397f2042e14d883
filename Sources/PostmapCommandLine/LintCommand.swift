import MapCompiler

/// `--lint`: the findings of ``MapLinter`` as `FILE:LINE:COLUMN: SEVERITY: MESSAGE [RULE]`
/// lines (or JSON Lines), a summary on standard error, and the exit status.

extension ExtensionCommands {
    /// Lints the operands, or with none every map of the named configuration; prints the
    /// findings (text or JSON Lines) and a summary on standard error. Exit status 1 when
    /// any finding is an error (or, with `--werror`, a warning).
    func lint(_ operands: [String], options: ExtensionOptions) throws(FatalError) -> Int32 {
        let linter = MapLinter(
            configuration: context.config, configurationKnown: context.configIsExplicit, handling: context.handling,
            duplicates: context.options.duplicates, aliasSyntax: context.personality == .postalias)
        let targets: [LintTarget]
        if operands.isEmpty {
            guard context.configIsExplicit else {
                throw FatalError("usage: --lint [type:]file... (or --lint -c DIR for every map of a configuration)")
            }
            targets = linter.configurationTargets()
            if targets.isEmpty {
                context.warn(
                    Diagnostic(
                        .warning,
                        "\(context.config.directory ?? MainConfig.defaultDirectory): no map source that main.cf or "
                            + "master.cf refers to exists"))
            }
        } else {
            targets = linter.targets(operands: operands, kind: options.mapKind)
        }
        let findings = try linter.lint(targets, warn: context.warn)
        for finding in findings {
            let text = context.colours ? colouredLintText(finding) : finding.text
            context.output.standardOutput(options.json ? lintFindingJSON(finding).line : Array((text + "\n").utf8))
        }
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.filter { $0.severity == .warning }.count
        if !options.json {
            let notes = findings.count - errors - warnings
            context.output.standardError(
                "\(targets.count) map(s) checked: \(errors) error(s), \(warnings) warning(s), \(notes) note(s)")
        }
        return errors > 0 || (options.warningsAreErrors && warnings > 0) ? 1 : 0
    }
}

/// A finding as ``LintFinding/text`` with terminal colours (ECMA-48 SGR): the place in bold,
/// the severity in red, magenta or cyan, the rule dimmed.
func colouredLintText(_ finding: LintFinding) -> String {
    let severityColour: String
    switch finding.severity {
    case .error: severityColour = "1;31"
    case .warning: severityColour = "1;35"
    case .note: severityColour = "1;36"
    }
    func sgr(_ code: String, _ text: String) -> String { "\u{1B}[\(code)m\(text)\u{1B}[0m" }
    return sgr("1", "\(finding.file):\(finding.line):\(finding.column):") + " "
        + sgr(severityColour, "\(finding.severity.rawValue):") + " \(finding.message) "
        + sgr("2", "[\(finding.rule.rawValue)]")
}

/// One finding as a JSON object: `{file, line, column, severity, message, rule}`.
func lintFindingJSON(_ finding: LintFinding) -> JSONObject {
    var object = JSONObject()
    object.add("file", finding.file)
    object.add("line", finding.line)
    object.add("column", finding.column)
    object.add("severity", finding.severity.rawValue)
    object.add("message", finding.message)
    object.add("rule", finding.rule.rawValue)
    return object
}
