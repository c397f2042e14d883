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

        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
    }

    public var file: String
    /// The physical line and 1-based byte column (both 0 for a finding about the file).
    public var line: Int
    public var column: Int
    public var severity: Severity
    public var message: String
    public var rule: LintRule

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
    public var map: MapArgument
    public var kind: MapKind
    /// Why it has that kind (`virtual_alias_maps in /etc/postfix/main.cf:12`, `--kind`,
    /// `its file name`).
    public var kindSource: String

    public init(map: MapArgument, kind: MapKind, kindSource: String) {
        self.map = map
        self.kind = kind
        self.kindSource = kindSource
    }
}
