import Testing

@testable import MapCompiler

/// Unit tests of the aliases(5) line parser: RFC 822 tokens, the internal form of alias names
/// and the external form of values (spec §2.6; expected results checked against Postfix 3.7's
/// postalias).
@Suite struct AliasParserTests {
    /// Parses the first logical line of `source` (UTF-8 mode, source name `src`).
    private func parse(_ source: String) -> ParseOutcome {
        parse(bytes: Array(source.utf8))
    }

    private func parse(bytes: [UInt8]) -> ParseOutcome {
        var reader = LogicalLineReader(bytes: bytes)
        guard let line = reader.next() else { return .ignored }
        return AliasEntryParser(source: "src", checkUTF8: true).parse(line)
    }

    /// The stored key and value of `source`'s first line, as strings; `nil` when skipped.
    private func entry(_ source: String) -> (key: String, value: String)? {
        guard case .entry(let entry, let warning) = parse(source), warning == nil else { return nil }
        return (String(decoding: entry.key, as: UTF8.self), String(decoding: entry.value, as: UTF8.self))
    }

    /// The warning text of a skipped line; `nil` when it was not skipped with a warning.
    private func skipWarning(_ source: String) -> String? {
        guard case .skipped(let warning) = parse(source) else { return nil }
        return String(decoding: warning.text, as: UTF8.self)
    }

    // MARK: Tokens

    @Test func tokenKinds() {
        let tokens = tokenizeRFC822(Array(#"bob "a b" (c (d)) [1.2] <x@y>, z"#.utf8))
        #expect(
            tokens == [
                RFC822Token(.atom, "bob"), RFC822Token(.quotedString, "a b"), RFC822Token(.comment, "(c (d))"),
                RFC822Token(.domainLiteral, "1.2"), RFC822Token(.symbol(UInt8(ascii: "<"))),
                RFC822Token(.atom, "x"), RFC822Token(.symbol(UInt8(ascii: "@"))), RFC822Token(.atom, "y"),
                RFC822Token(.symbol(UInt8(ascii: ">"))), RFC822Token(.symbol(UInt8(ascii: ","))),
                RFC822Token(.atom, "z"),
            ])
    }

    @Test func whitespaceIsSpaceTabCRLFOnly() {
        // \v and \f are atom bytes; as control bytes they make the atom a quoted string.
        let tokens = tokenizeRFC822([UInt8(ascii: "a"), 0x09, 0x0D, 0x0A, 0x20, UInt8(ascii: "b"), 0x0B])
        #expect(tokens == [RFC822Token(.atom, "a"), RFC822Token(.quotedString, [UInt8(ascii: "b"), 0x0B])])
    }

    @Test func backslashEscapesAreRemovedOutsideComments() {
        #expect(tokenizeRFC822(Array(#"a\bc"#.utf8)) == [RFC822Token(.atom, "abc")])
        #expect(tokenizeRFC822(Array(#""x\"y""#.utf8)) == [RFC822Token(.quotedString, "x\"y")])
        #expect(tokenizeRFC822(Array(#"[a\]b]"#.utf8)) == [RFC822Token(.domainLiteral, "a]b")])
        #expect(tokenizeRFC822(Array(#"(a\)b)"#.utf8)) == [RFC822Token(.comment, #"(a\)b)"#)])
        // A trailing backslash protects nothing and disappears.
        #expect(tokenizeRFC822(Array(#"x\"#.utf8)) == [RFC822Token(.atom, "x")])
    }

    @Test func escapedSpecialsTurnAnAtomIntoAQuotedString() {
        #expect(tokenizeRFC822(Array(#"\\bob"#.utf8)) == [RFC822Token(.quotedString, #"\bob"#)])
        #expect(tokenizeRFC822(Array(#"a\ b"#.utf8)) == [RFC822Token(.quotedString, "a b")])
        #expect(tokenizeRFC822(Array(#"a\:b"#.utf8)) == [RFC822Token(.quotedString, "a:b")])
        // Bytes from 0x80 up do not need quoting.
        #expect(tokenizeRFC822(Array("ü".utf8)) == [RFC822Token(.atom, "ü")])
    }

    @Test func unclosedTokensRunToTheEnd() {
        #expect(tokenizeRFC822(Array(#""open x"#.utf8)) == [RFC822Token(.quotedString, "open x")])
        #expect(tokenizeRFC822(Array("[open".utf8)) == [RFC822Token(.domainLiteral, "open")])
        #expect(tokenizeRFC822(Array("(a (b) c".utf8)) == [RFC822Token(.comment, "(a (b) c")])
    }

    @Test func whitespaceInsideQuotesBecomesASpace() {
        #expect(tokenizeRFC822(Array("\"x\ty\r\nz\"".utf8)) == [RFC822Token(.quotedString, "x y  z")])
    }

    @Test func aNULByteEndsTheText() {
        #expect(tokenizeRFC822([UInt8(ascii: "a"), 0, UInt8(ascii: "b")]) == [RFC822Token(.atom, "a")])
    }

    // MARK: Internal and external form

    @Test func externalFormRequotesAndSpaces() {
        let tokens = tokenizeRFC822(Array(#"Bob<x@y>,"a\"b" (c)[d]|e , "#.utf8))
        #expect(String(decoding: externalForm(tokens), as: UTF8.self) == #"Bob <x@y>, "a\"b" (c) [d]|e, "#)
    }

    @Test func internalFormUnquotes() {
        let tokens = tokenizeRFC822(Array(#""a\"b" c [d]"#.utf8))
        #expect(String(decoding: internalForm(tokens), as: UTF8.self) == #"a"b c [d]"#)
    }

    // MARK: Lines (spec §2.6 tables)

    @Test(arguments: [
        ("  Admin ,Bob,   c@Example.COM", "Admin, Bob, c@Example.COM"),
        (#""|/usr/bin/prog arg""#, #""|/usr/bin/prog arg""#),
        (":include:/etc/inc", ":include:/etc/inc"),
        ("bob (Bob Smith)", "bob (Bob Smith)"),
        ("Bob <bob@x>", "Bob <bob@x>"),
        (#""a b"@x, \\bob"#, #""a b"@x, "\\bob""#),
        ("bob # comment", "bob # comment"),
        (#""""#, #""""#),
        ("a@b: c", "a@b:c"),
        ("b,", "b, "),
        ("x \\", "x "),
        ("a \"\" b", "a \"\" b"),
    ])
    func valueIsStoredInExternalForm(source: String, stored: String) {
        #expect(entry("k: " + source)?.value == stored)
    }

    @Test func continuationLinesJoinTheValue() {
        #expect(entry("lead: a\n  b: c\n")?.value == "a b:c")
    }

    @Test(arguments: [
        (#""foo bar": x"#, "foo bar"),
        ("bob (c): x", "bob (c)"),
        (#"bs\\x: x"#, #"bs\x"#),
        (#""": x"#, ""),
        (#""a@b": x"#, "a@b"),
        ("Bob <X>: y", "Bob <X>"),
        ("k1 k2: v", "k1 k2"),
    ])
    func keyIsStoredInInternalForm(source: String, key: String) {
        #expect(entry(source)?.key == key)
    }

    @Test(arguments: ["nocolon value", ": emptykey", "empty:", "multi, key: v", "a, : v"])
    func needsNameValuePair(source: String) {
        #expect(skipWarning(source) == "src, line 1: need name:value pair")
    }

    @Test(arguments: ["user@example.com: y", "user%host: z", "a (c) @b: x"])
    func nameMustBeLocal(source: String) {
        #expect(skipWarning(source) == "src, line 1: name must be local")
    }

    @Test func warningsNameTheFirstPhysicalLine() {
        #expect(skipWarning("# c\n\nnocolon\n  more\n") == "src, line 3: need name:value pair")
    }

    @Test func lineWithoutTokensIsIgnoredSilently() {
        #expect(parse(bytes: [0, UInt8(ascii: "a"), UInt8(ascii: ":"), UInt8(ascii: "b")]) == .ignored)
    }

    @Test func commonLineChecksStillApply() {
        #expect(skipWarning("  lead: x") == #"src: logical line must not start with whitespace: "  lead: x""#)
        if case .skipped = parse(bytes: Array("a: ".utf8) + [0xFF]) {
        } else {
            Issue.record("a non-UTF-8 line must be skipped")
        }
    }

    @Test func zeroPaddedTimestamps() {
        #expect(zeroPadded(1_795_565_652, width: 10) == "1795565652")
        #expect(zeroPadded(42, width: 10) == "0000000042")
        #expect(zeroPadded(-1, width: 10) == "-000000001")
        #expect(zeroPadded(12_345_678_901, width: 10) == "12345678901")
    }
}
