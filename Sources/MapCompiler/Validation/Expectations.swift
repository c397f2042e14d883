/// Expectation files for `swiftpostmap --test FILE`: golden tests of address resolution.
///
/// One expectation per line: an address, whitespace, then one or more expected results,
/// whitespace separated. Blank lines and lines whose first non-blank character is `#` are
/// ignored, and a word starting with `#` ends the line (a trailing comment). A word may hold
/// double-quoted parts with spaces (`"foo bar"@example.com`). The address is resolved as
/// `--resolve` does (a bare localpart gets `@$myorigin`); the expected results are:
///
/// | word | holds when |
/// |---|---|
/// | `user@domain` (any word with `@`) | these are exactly the final recipients (any order and case) |
/// | `ok` | Postfix accepts the mail and every final recipient gets it (the default when no status word is given) |
/// | `refused` | smtpd(8) rejects the recipient at `RCPT TO` with a 5xx reply (unknown user) |
/// | `deferred` | the mail is not delivered now: a 4xx at the end of `DATA` (a loop, a `virtual_alias_*_limit`, a table error) or a recipient deferred |
/// | `bounced` | Postfix accepts the mail, then bounces it for some final recipient (and defers none) |
/// | `reject` | `refused` or `bounced` (the word of earlier versions) |
/// | `defer` | the same as `deferred` |
/// | `local` | some recipient is delivered by local(8) (a local domain) |
/// | `relay` | some recipient is in a `relay_domains` domain, handed to relay_transport |
/// | `remote` | some recipient is in no special domain, handed to default_transport |
/// | `transport` | some recipient is handed to another transport (transport_maps, an LMTP `virtual_transport`, …) |
/// | `transport:NAME` | some recipient is handed to the master.cf service NAME |
/// | `mailbox:PATH` | virtual(8) delivers some recipient into PATH (the table value or the full path) |
/// | `maildir`, `mbox` | some recipient is delivered by virtual(8) into a Maildir / an mbox file |
///
/// Keywords are case-insensitive. At most one status word (`ok`, `refused`, `deferred`,
/// `bounced`, `reject`, `defer`) per line.
///
/// ```
/// # address            expected
/// info@example.com     joe@mail.example.test local
/// nobody@example.com   refused
/// loop@example.com     deferred
/// a@example.org        mailbox:example.org/a/ maildir
/// ```
public struct Expectation: Sendable, Equatable {
    /// One expected result.
    public enum Requirement: Sendable, Equatable {
        case recipient(String)
        /// The status is one of these.
        case status(Set<Resolution.Status>)
        case outcome(ResolvedRecipient.Outcome)
        case transport(String)
        case mailbox(String)
        case format(ResolvedRecipient.MailboxFormat)
    }

    /// The line of the expectations file.
    public var line: Int
    /// The address as written.
    public var address: String
    /// The address in internal form, as ``AddressResolver/resolve(_:display:)`` takes it.
    public var internalAddress: String
    /// The expected words as written.
    public var words: [String]
    /// What the words require, in order.
    public var requirements: [Requirement]

    /// The statuses the line accepts (`ok` unless it names another).
    public var statuses: Set<Resolution.Status> {
        for case .status(let statuses) in requirements { return statuses }
        return [.ok]
    }

    /// Checks the resolution of ``address``.
    ///
    /// - Returns: whether every requirement holds, and the resolution in the same vocabulary
    ///   (final recipients, their outcomes, the status) for the report.
    public func check(_ resolution: Resolution) -> (passed: Bool, got: [String]) {
        var passed = statuses.contains(resolution.status)
        let expected = requirements.compactMap { requirement -> String? in
            if case .recipient(let address) = requirement { return externalAddress(address).lowercased() }
            return nil
        }
        if !expected.isEmpty && Set(expected) != Set(resolution.recipients.map { $0.address.lowercased() }) {
            passed = false
        }
        for requirement in requirements {
            switch requirement {
            case .recipient, .status:
                continue
            case .outcome(let outcome):
                if !resolution.recipients.contains(where: { $0.outcome == outcome }) { passed = false }
            case .transport(let name):
                if !resolution.recipients.contains(where: { $0.transport == name }) { passed = false }
            case .mailbox(let path):
                if !resolution.recipients.contains(where: {
                    $0.outcome == .mailbox && ($0.mailbox == path || $0.path == path)
                }) {
                    passed = false
                }
            case .format(let format):
                if !resolution.recipients.contains(where: { $0.outcome == .mailbox && $0.format == format }) {
                    passed = false
                }
            }
        }
        return (passed, Self.describe(resolution))
    }

    /// A resolution in expectation words: the recipients, then each distinct outcome
    /// (`mailbox:VALUE` for mailboxes, reject/defer only as the status), then the status.
    public static func describe(_ resolution: Resolution) -> [String] {
        var words = resolution.recipients.map(\.address)
        for recipient in resolution.recipients {
            let word: String?
            switch recipient.outcome {
            case .mailbox: word = "mailbox:" + (recipient.mailbox ?? "")
            case .local, .relay, .remote: word = recipient.outcome.rawValue
            case .transport: word = "transport:" + (recipient.transport ?? "")
            case .bounced, .deferred: word = nil
            }
            if let word, !words.contains(word) { words.append(word) }
        }
        words.append(resolution.status.rawValue)
        return words
    }
}

extension Expectation {
    /// The status words and the statuses each accepts (`reject` and `defer` are the words
    /// of earlier versions).
    static let statusWords: [String: Set<Resolution.Status>] = [
        "ok": [.ok], "refused": [.refused], "deferred": [.deferred], "bounced": [.bounced],
        "reject": [.refused, .bounced], "defer": [.deferred],
    ]
}

/// Parses an expectations file.
///
/// - Parameter name: the file name, for `NAME:LINE: problem` errors.
/// - Throws: the first malformed line.
public func parseExpectations(_ bytes: [UInt8], name: String) throws(FatalError) -> [Expectation] {
    var expectations: [Expectation] = []
    for (offset, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
        let number = offset + 1
        let words: [String]
        switch splitExpectationLine(String(decoding: line, as: UTF8.self)) {
        case .success(let found): words = found
        case .failure(let problem): throw FatalError("\(name):\(number): \(problem.text)")
        }
        guard let first = words.first else { continue }
        func fail(_ text: String) -> FatalError { FatalError("\(name):\(number): \(text)") }
        guard let address = parseInputAddress(first) else { throw fail("bad address \"\(first)\"") }
        let expected = Array(words.dropFirst())
        if expected.isEmpty { throw fail("no expected result for \(first)") }
        var requirements: [Expectation.Requirement] = []
        var sawStatus = false
        for word in expected {
            let lower = word.lowercased()
            if let statuses = Expectation.statusWords[lower] {
                if sawStatus { throw fail("more than one status word (ok, refused, deferred, bounced)") }
                sawStatus = true
                requirements.append(.status(statuses))
            } else if ["local", "relay", "remote", "transport"].contains(lower),
                let outcome = ResolvedRecipient.Outcome(rawValue: lower)
            {
                requirements.append(.outcome(outcome))
            } else if lower.hasPrefix("transport:") {
                let name = String(word.dropFirst("transport:".count))
                if name.isEmpty { throw fail("transport: needs a master.cf service name") }
                requirements.append(.transport(name))
            } else if let format = ResolvedRecipient.MailboxFormat(rawValue: lower) {
                requirements.append(.format(format))
            } else if lower.hasPrefix("mailbox:") {
                let path = String(word.dropFirst("mailbox:".count))
                if path.isEmpty { throw fail("mailbox: needs a path") }
                requirements.append(.mailbox(path))
            } else if word.contains("@") {
                guard let recipient = parseInputAddress(word) else { throw fail("bad address \"\(word)\"") }
                requirements.append(.recipient(recipient))
            } else {
                throw fail(
                    "unknown expected result \"\(word)\" (expected an address with @, ok, refused, deferred, "
                        + "bounced, local, relay, remote, transport[:NAME], mailbox:PATH, maildir or mbox)")
            }
        }
        expectations.append(
            Expectation(
                line: number, address: first, internalAddress: address, words: expected, requirements: requirements))
    }
    return expectations
}

/// Reads and parses the expectations file at `file`.
///
/// - Throws: `open FILE: REASON`, or the first malformed line (`FILE:LINE: problem`).
public func loadExpectations(file: String) throws(FatalError) -> [Expectation] {
    switch readWholeFile(file) {
    case .success(let bytes): return try parseExpectations(bytes, name: file)
    case .failure(let error): throw FatalError("open \(file): \(error.text)")
    }
}

/// A problem with one line of an expectations file.
struct ExpectationLineProblem: Error {
    var text: String
}

/// Splits a line into words at whitespace outside double quotes (a backslash inside quotes
/// protects the next character); a word starting with `#` ends the line.
func splitExpectationLine(_ line: String) -> Result<[String], ExpectationLineProblem> {
    var words: [String] = []
    var current = ""
    var inQuotes = false
    var escaped = false
    var inWord = false
    for character in line {
        if inQuotes {
            current.append(character)
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                inQuotes = false
            }
            continue
        }
        if character.isWhitespace {
            if inWord { words.append(current) }
            current = ""
            inWord = false
            continue
        }
        if !inWord && character == "#" { break }
        inWord = true
        current.append(character)
        if character == "\"" { inQuotes = true }
    }
    if inQuotes { return .failure(ExpectationLineProblem(text: "unterminated quoted string")) }
    if inWord { words.append(current) }
    return .success(words)
}
