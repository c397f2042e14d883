import Testing

@testable import MapCompiler

private func logicalLines(_ text: String) -> [LogicalLine] {
    Array(LogicalLineReader(bytes: Array(text.utf8)))
}

private func parse(_ line: String, number: Int = 1, utf8: Bool = true) -> ParseOutcome {
    PostmapEntryParser(source: "src", checkUTF8: utf8).parse(LogicalLine(text: Array(line.utf8), lineNumber: number))
}

private func entry(_ outcome: ParseOutcome) -> (key: String, value: String)? {
    guard case .entry(let entry, _) = outcome else { return nil }
    return (String(decoding: entry.key, as: UTF8.self), String(decoding: entry.value, as: UTF8.self))
}

@Suite("Logical lines")
struct LogicalLineTests {
    @Test func continuationKeepsLeadingWhitespaceAndSkipsCommentsAndBlankLines() {
        let lines = logicalLines("a 1\n  continued here\n# comment\n\n\tand more\nb 2\n")
        #expect(lines.map(\.text) == [Array("a 1  continued here\tand more".utf8), Array("b 2".utf8)])
        #expect(lines.map(\.lineNumber) == [1, 6])
    }

    @Test func indentedHashLineIsACommentNotAContinuation() {
        let lines = logicalLines("k1 v1\n  #not-a-value\n  more\n")
        #expect(lines.map(\.text) == [Array("k1 v1  more".utf8)])
    }

    @Test func lastLineWithoutNewlineAndCRLF() {
        let lines = logicalLines("a 1\r\nb 2")
        #expect(lines.map(\.text) == [Array("a 1\r".utf8), Array("b 2".utf8)])
        #expect(lines.map(\.lineNumber) == [1, 2])
    }

    @Test func firstIndentedLineIsReportedWithoutLineNumber() {
        let lines = logicalLines("  lead 1\n  lead-cont\nx 2\n")
        #expect(lines.first?.startsWithWhitespace == true)
        guard case .skipped(let warning) = PostmapEntryParser(source: "source", checkUTF8: true).parse(lines[0]) else {
            Issue.record("expected a skipped line")
            return
        }
        #expect(
            warning.rendered(utf8: true)
                == "warning: source: logical line must not start with whitespace: \"  lead 1  lead-cont\"")
    }
}

@Suite("Entries")
struct EntryParsingTests {
    @Test(
        "postmap's key/value split (spec table 2.4)",
        arguments: [
            ("Foo@Example.COM   Bar@X", "Foo@Example.COM", "Bar@X"),
            ("k  v  ", "k", "v"),
            ("\"quoted key\" qv", "\"quoted key\"", "qv"),
            ("d: colon", "d:", "colon"),
            ("\\\"esc\\ key val", "\\\"esc\\ key", "val"),
            ("b\t2 # x", "b", "2 # x"),
            ("ff\u{0C}value", "ff", "value"),
            ("multi   x    y   ", "multi", "x    y"),
        ])
    func split(line: String, key: String, value: String) {
        let result = entry(parse(line))
        #expect(result?.key == key)
        #expect(result?.value == value)
    }

    @Test func nulTruncatesTheLine() {
        #expect(entry(parse("a 1\u{0}xyz"))?.value == "1")
        guard case .skipped(let warning) = parse("b\u{0} 2", number: 2) else {
            Issue.record("expected a skipped line")
            return
        }
        #expect(warning.rendered(utf8: true) == "warning: src, line 2: expected format: key whitespace value")
    }

    @Test func keyOnlyAndUnbalancedQuoteAreSkipped() {
        guard case .skipped(let keyOnly) = parse("keyonly   ", number: 3),
            case .skipped(let unbalanced) = parse("\"unbal x", number: 4)
        else {
            Issue.record("expected skipped lines")
            return
        }
        #expect(keyOnly.rendered(utf8: true) == "warning: src, line 3: expected format: key whitespace value")
        #expect(
            unbalanced.rendered(utf8: true)
                == "warning: src, line 4: unbalanced '\"' in '\"unbal x' -- ignoring this line")
    }

    @Test func colonKeyWarnsButIsStored() {
        guard case .entry(let entry, let warning?) = parse("d: colon", number: 7) else {
            Issue.record("expected an entry with a warning")
            return
        }
        #expect(entry.key == Array("d:".utf8))
        #expect(
            warning.rendered(utf8: true)
                == "warning: src, line 7: record is in \"key: value\" format; is this an alias file?")
    }

    @Test func invalidUTF8IsSkippedInUTF8ModeOnly() {
        let line = LogicalLine(text: [0x67, 0x6F, 0x6F, 0x64, 0x20, 0xC3, 0x28], lineNumber: 2)
        guard case .skipped(let warning) = PostmapEntryParser(source: "source", checkUTF8: true).parse(line) else {
            Issue.record("expected a skipped line")
            return
        }
        #expect(
            warning.rendered(utf8: true) == "warning: source, line 2: non-UTF-8 input \"good ?(\" -- ignoring this line"
        )
        guard case .entry = PostmapEntryParser(source: "source", checkUTF8: false).parse(line) else {
            Issue.record("with UTF-8 off the line is stored")
            return
        }
    }
}

@Suite("Key folding")
struct KeyFoldingTests {
    @Test(
        "full Unicode case folding as ICU does it",
        arguments: [
            ("ÄÖÜ@Example.COM", "äöü@example.com"),
            ("Straße", "strasse"),
            ("İstanbul", "i\u{307}stanbul"),
            ("ΣΑΣ", "σασ"),
            ("ﬀ", "ff"),
            ("PLAIN@EXAMPLE.COM", "plain@example.com"),
            ("ABC@Ä.example", "abc@ä.example"),
            ("äBC", "äbc"),
            ("already-folded@example.com", "already-folded@example.com"),
            ("", ""),
        ])
    func unicode(input: String, folded: String) {
        #expect(KeyFolding.unicode.fold(Array(input.utf8)) == Array(folded.utf8))
    }

    @Test("ASCII folding and the ASCII test agree with byte-by-byte definitions on random bytes")
    func asciiFastPaths() {
        var generator = SeededGenerator(seed: 20_261_206)
        for length in 0..<300 {
            let bytes = (0..<length).map { _ in
                let choice = generator.next() % 10
                return choice == 0 ? UInt8(0x80 + generator.next() % 128) : UInt8(0x20 + generator.next() % 95)
            }
            #expect(isASCII(bytes) == bytes.allSatisfy { $0 < 0x80 })
            #expect(isASCII(bytes[...]) == bytes.allSatisfy { $0 < 0x80 })
            let lowered = bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
            #expect(KeyFolding.ascii.fold(bytes) == lowered)
            if bytes.allSatisfy({ $0 < 0x80 }) { #expect(KeyFolding.unicode.fold(bytes) == lowered) }
        }
    }

    @Test func asciiFoldingLeavesOtherBytesAlone() {
        #expect(KeyFolding.ascii.fold(Array("ÄÖÜ@Example.COM".utf8)) == Array("ÄÖÜ@example.com".utf8))
        #expect(KeyFolding.ascii.fold(Array("Straße".utf8)) == Array("straße".utf8))
        #expect(KeyFolding.none.fold(Array("MiXeD".utf8)) == Array("MiXeD".utf8))
    }

    @Test func printableRendering() {
        #expect(printable([0x09, 0x61, 0x01, 0xFF, 0xFE], keepUTF8: true) == "?a???")
        #expect(printable(Array("ä".utf8), keepUTF8: true) == "ä")
        #expect(printable(Array("ä".utf8), keepUTF8: false) == "??")
    }
}
