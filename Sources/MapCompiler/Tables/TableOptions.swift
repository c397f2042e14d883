/// Settings shared by the operations on a table.

/// The trailing-NUL convention: Postfix stores keys and values with one NUL byte appended
/// unless told otherwise, and looks keys up with and without it.
public enum NULPolicy: Sendable, Equatable {
    /// Write with a NUL; look up with a NUL first, then without (no `-n`/`-N`).
    case automatic
    /// Write and look up with a NUL only (`-N`).
    case withNUL
    /// Write and look up without a NUL only (`-n`).
    case withoutNUL

    var writesNUL: Bool { self != .withoutNUL }
}

/// What happens to a key that is already in the table.
public enum DuplicatePolicy: Sendable, Equatable {
    /// Keep the first value and warn (postmap's default).
    case warn
    /// Keep the first value silently (`-w`).
    case ignore
    /// Keep the last value (`-r`).
    case replace
}

/// How keys and values are handled.
public struct KeyHandling: Sendable, Equatable {
    /// How keys are folded before they are stored or looked up.
    public var folding: KeyFolding
    /// Whether keys and values carry a trailing NUL byte.
    public var nul: NULPolicy
    /// UTF-8 mode: lines and query keys must be well-formed UTF-8.
    public var utf8: Bool

    /// The handling of a run; the defaults are postmap's in UTF-8 mode (Unicode case folding,
    /// trailing NUL, UTF-8 checks).
    public init(folding: KeyFolding = .unicode, nul: NULPolicy = .automatic, utf8: Bool = true) {
        self.folding = folding
        self.nul = nul
        self.utf8 = utf8
    }
}
