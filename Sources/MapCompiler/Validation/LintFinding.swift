/// What `--lint` reports: a rule, a severity and a position.

/// The rules of `--lint`, each with the id printed after a finding (`[alias-loop]`).
public enum LintRule: String, Sendable, CaseIterable {
    // The file and its syntax.
    case unreadable
    case leadingWhitespace = "leading-whitespace"
    case nulByte = "nul-byte"
    case invalidUTF8 = "invalid-utf8"
    case carriageReturn = "carriage-return"
    case trailingWhitespace = "trailing-whitespace"
    case unbalancedQuote = "unbalanced-quote"
    case missingValue = "missing-value"
    case aliasFormat = "alias-format"
    case commentInValue = "comment-in-value"
    case nameNotLocal = "name-not-local"
    case duplicateKey = "duplicate-key"
    case duplicateAfterFolding = "duplicate-after-folding"
    // What the map is taken for.
    case mapKind = "map-kind"
    // Delivery: mail Postfix will not deliver (errors, computed by the resolver).
    case aliasLoop = "alias-loop"
    case recursionLimit = "recursion-limit"
    case expansionLimit = "expansion-limit"
    case lookupError = "lookup-error"
    case refused
    case bounced
    case deferred
    // virtual(5) style and risk.
    case localOnlyKey = "local-only-key"
    case catchAll = "catch-all"
    case invalidAddress = "invalid-address"
    case selfReference = "self-reference"
    // virtual(8) mailboxes.
    case absolutePath = "absolute-path"
    case dotdotPath = "dotdot-path"
    case mixedMailboxFormat = "mixed-mailbox-format"
    case sharedMailbox = "shared-mailbox"
    // The domain lists of main.cf.
    case domainInMydestination = "domain-in-mydestination"
    case domainInBoth = "domain-in-both"
    case domainNotVirtual = "domain-not-virtual"
}

/// One lint finding.
public struct LintFinding: Sendable, Equatable {
    /// `error` means exactly one thing: Postfix will not deliver some mail, or skips a
    /// line of the source. Risks and style are warnings or notes.
    public enum Severity: String, Sendable, Comparable {
        case error
        case warning
        case note

        /// Errors sort before warnings, warnings before notes.
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
    }

    /// The map source the finding is about, as named.
    public var file: String
    /// The physical line (0 for a finding about the file).
    public var line: Int
    /// The 1-based byte column in ``line`` (0 for a finding about the file).
    public var column: Int
    /// Error, warning or note.
    public var severity: Severity
    /// What is wrong and what Postfix does about it.
    public var message: String
    /// The rule that found it.
    public var rule: LintRule

    /// A finding at `file:line:column`.
    public init(file: String, line: Int, column: Int, severity: Severity, message: String, rule: LintRule) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
        self.rule = rule
    }

    /// `FILE:LINE:COLUMN: SEVERITY: MESSAGE [RULE]`.
    public var text: String { "\(file):\(line):\(column): \(severity.rawValue): \(message) [\(rule.rawValue)]" }
}

/// A map to lint and what it is taken for.
public struct LintTarget: Sendable, Equatable {
    /// The map, as named (`proxy:` already looked through).
    public var map: MapArgument
    /// What the map is checked as.
    public var kind: MapKind
    /// Why it has that kind (`virtual_alias_maps in /etc/postfix/main.cf:12`, `--kind`,
    /// `its file name`).
    public var kindSource: String

    /// Lint `map` as a `kind` map; `kindSource` says why.
    public init(map: MapArgument, kind: MapKind, kindSource: String) {
        self.map = map
        self.kind = kind
        self.kindSource = kindSource
    }
}
