import Glibc
import MapCompiler

/// The progress of a build on standard error: entries stored, their rate and how much of the
/// source has been read.
///
/// On a terminal it is one line, redrawn in place a few times a second once the build has
/// run for a second (at once with `--progress`), and erased when the build ends. Elsewhere
/// (a pipe, a CI log) nothing is shown unless `--progress` asks; then a plain line is written
/// every second, and one more when the build ends.
final class BuildProgressLine {
    private enum Style {
        case terminal
        case lines
    }

    private let output: CommandOutput
    private let style: Style
    private let prefix: String
    private let started: Double
    private let delay: Double
    private var lastShown: Double? = nil
    private var last: BuildProgress? = nil

    /// A progress line for the build of `label` (`hash:virtual`), or `nil` when none is to be
    /// shown: standard error is not a terminal and `--progress` was not given.
    init?(requested: Bool, output: CommandOutput, program: String, label: String) {
        if output.standardErrorIsTerminal {
            style = .terminal
        } else if requested {
            style = .lines
        } else {
            return nil
        }
        self.output = output
        prefix = "\(program): \(label): "
        started = monotonicSeconds()
        delay = requested ? 0 : 1
    }

    /// Takes a report from the build; shows it when it is time to.
    func report(_ progress: BuildProgress) {
        last = progress
        let now = monotonicSeconds()
        guard now - started >= delay else { return }
        let interval = style == .terminal ? 0.2 : 1.0
        if let lastShown, now - lastShown < interval, progress.phase == .reading { return }
        lastShown = now
        show(describe(progress, elapsed: now - started))
    }

    /// The build ended: erase the line on a terminal; elsewhere write the totals.
    func finish(succeeded: Bool) {
        switch style {
        case .terminal:
            output.showProgress(nil)
        case .lines:
            guard succeeded else { return }
            let elapsed = monotonicSeconds() - started
            let entries = last?.entries ?? 0
            output.standardError(prefix + "\(grouped(entries)) entries in \(tenths(elapsed)) s, done")
        }
    }

    private func show(_ text: String) {
        switch style {
        case .terminal: output.showProgress(prefix + text)
        case .lines: output.standardError(prefix + text)
        }
    }

    private func describe(_ progress: BuildProgress, elapsed: Double) -> String {
        var text = "\(grouped(progress.entries)) entries"
        switch progress.phase {
        case .reading:
            if elapsed > 0 { text += ", \(grouped(Int(Double(progress.entries) / elapsed)))/s" }
            if let percent = progress.percentRead { text += ", \(percent)% of the source read" }
        case .writing:
            text += ", source read, writing the table"
        }
        return text
    }
}

/// Seconds on the monotonic clock.
private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// `1234567` as `1,234,567`.
private func grouped(_ number: Int) -> String {
    let digits = Array(String(number.magnitude))
    var text = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { text.append(",") }
        text.append(digit)
    }
    return number < 0 ? "-" + text : text
}

/// `1.26` as `1.3`.
private func tenths(_ seconds: Double) -> String {
    let value = Int((seconds * 10).rounded())
    return "\(value / 10).\(value % 10)"
}
