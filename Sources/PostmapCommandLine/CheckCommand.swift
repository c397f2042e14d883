import Glibc
import MapCompiler

/// `--check [type:]file.db...`: the integrity of table files (the checks are
/// ``TableChecker``'s), printed as `FILE: error|warning: message` lines and a summary, or
/// as JSON Lines.

/// `--check`: checks every operand, prints the findings (`FILE: error|warning: message`
/// lines and a summary, or one JSON object per file with `--json`) on standard output.
///
/// - Returns: 0 when no file has an error (with `--werror`, nor a warning), else 1. A file
///   that cannot be checked at all (missing, unreadable, unsupported type) is an error for
///   that file; the remaining operands are still checked.
func runIntegrityCheck(
    operands: [String], options: ExtensionOptions, context: OperationContext
) throws(FatalError)
    -> Int32
{
    let checker = TableChecker(
        worker: checkWorkerCommand, handling: context.handling,
        format: context.personality == .postalias ? .postalias : .postmap, defaultType: context.defaultType)
    var errors = 0
    var warnings = 0
    var failedFiles = 0
    for operand in operands {
        let report = checker.check(operand)
        let errorCount = report.findings.count { $0.severity == .error }
        errors += errorCount
        warnings += report.findings.count - errorCount
        if !report.ok { failedFiles += 1 }
        if options.json {
            context.output.standardOutput(integrityJSON(report).line)
        } else {
            for finding in report.findings {
                context.output.standardOutput(
                    Array("\(report.file): \(finding.severity.rawValue): \(finding.message)\n".utf8))
            }
        }
    }
    if !options.json {
        let files = operands.count == 1 ? "1 file" : "\(operands.count) files"
        let summary =
            "check: \(files), \(operands.count - failedFiles) ok, \(failedFiles) with errors"
            + " (\(plural(errors, "error")), \(plural(warnings, "warning")))\n"
        context.output.standardOutput(Array(summary.utf8))
    }
    if errors > 0 || (options.warningsAreErrors && warnings > 0) { return 1 }
    return 0
}

/// `1 error`, `2 errors`.
private func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// The JSON Lines object for one file.
func integrityJSON(_ report: IntegrityReport) -> JSONObject {
    var object = JSONObject()
    object.add("file", report.file)
    object.add("ok", report.ok)
    if let type = report.type { object.add("type", type.rawValue) } else { object.addNull("type") }
    if let records = report.records { object.add("records", records) } else { object.addNull("records") }
    if let nul = report.nul { object.add("nul", nul) } else { object.addNull("nul") }
    let findings = report.findings.map { finding in
        var item = JSONObject()
        item.add("severity", finding.severity.rawValue)
        item.add("message", finding.message)
        return item.text
    }
    object.add("findings", raw: "[" + findings.joined(separator: ",") + "]")
    return object
}

/// The worker `--check` starts for each file: this very program in its `--check-worker`
/// mode, with an empty main.cf (the worker needs none), the table's path appended.
private var checkWorkerCommand: CheckWorkerCommand {
    CheckWorkerCommand(
        executable: workerExecutable, arguments: ["swiftpostmap", "--main-cf", "/dev/null", "--check-worker"])
}

/// This very program: `/proc/self/exe`, or without `/proc` the path it was started by (when
/// that names a file).
private var workerExecutable: String {
    if access("/proc/self/exe", X_OK) == 0 { return "/proc/self/exe" }
    if let first = CommandLine.arguments.first, first.contains("/") { return first }
    return "/proc/self/exe"
}
