import Foundation
import Testing

@testable import MapCompiler

// postmap -b / -h / -m: the keys derived from a message on standard input, unit by unit,
// then against the real postmap (the oracle) over a corpus of messages.

/// Bytes from text whose every scalar is one byte (U+0000…U+00FF), for messages with
/// 8-bit bytes that are not UTF-8: `raw("\u{E4}")` is the single byte 0xE4.
private func raw(_ text: String) -> [UInt8] {
    text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
}

private func keys(
    _ message: String, body: Bool = false, headers: Bool = false, mime: Bool = false,
    limits: (header: Int, nesting: Int, boundary: Int)? = nil
) -> [String] {
    keys(Array(message.utf8), body: body, headers: headers, mime: mime, limits: limits)
}

private func keys(
    _ message: [UInt8], body: Bool = false, headers: Bool = false, mime: Bool = false,
    limits: (header: Int, nesting: Int, boundary: Int)? = nil
) -> [String] {
    var options = MessageKeyOptions(bodyLines: body, headers: headers, mime: mime)
    if let limits {
        options.headerSizeLimit = limits.header
        options.mimeNestingLimit = limits.nesting
        options.mimeBoundaryLengthLimit = limits.boundary
    }
    return messageLookupKeys(message, options: options).map { String(decoding: $0, as: UTF8.self) }
}

/// A multipart message whose part headers say `X-Part: BOUNDARY-LINE`, for boundary tests.
private func multipart(contentType: String, boundaryLines: [String]) -> String {
    "Content-Type: \(contentType)\n\npreamble\n"
        + boundaryLines.map { "--\($0)\nX-Part: \($0)\n\nbody\n" }.joined()
}

@Suite("Message keys: headers and body lines")
struct MessageKeyLineTests {
    static let simple = "Subject: Hello\n World\nFrom: a@b\nX-Y:z\n\nbody1\n\nbody3\n"

    @Test func headerKeysAreLogicalHeadersJoinedWithNewlines() {
        #expect(keys(Self.simple, headers: true) == ["Subject: Hello\n World", "From: a@b", "X-Y:z"])
    }

    @Test func bodyKeysStartWithTheEmptySeparatorLine() {
        #expect(keys(Self.simple, body: true) == ["", "body1", "", "body3"])
    }

    @Test func bothFlagsGiveBothInMessageOrder() {
        #expect(
            keys(Self.simple, body: true, headers: true) == [
                "Subject: Hello\n World", "From: a@b", "X-Y:z", "", "body1", "", "body3",
            ])
    }

    @Test func whitespaceBeforeTheColonIsDropped() {
        #expect(
            keys("Subject : x\nA\t: 1\nD \t : 4\nB :2\n", headers: true) == ["Subject: x", "A: 1", "D: 4", "B:2"])
    }

    @Test func headerNamesArePrintableASCIIWithoutSpaces() {
        #expect(keys("!#$%&*+-/=?^_`{|}~.,;<>[]()\"@\\': 1\n", headers: true).count == 1)
        for line in ["X Y: z", ":x", "Foo", "A\u{7F}: 1", "A\u{01}: 1", "A\u{0B}: 1", "\u{E4}: 1"] {
            #expect(keys(line + "\nb\n", headers: true).isEmpty, "\(line.debugDescription)")
            #expect(keys(line + "\nb\n", body: true) == ["", line, "b"], "\(line.debugDescription)")
        }
    }

    @Test func aNonHeaderLineEndsThePrimaryHeadersAfterAnEmptyBodyKey() {
        #expect(
            keys("Subject: a\nnot a header\nX-After: b\n\nc\n", body: true) == [
                "", "not a header", "X-After: b", "", "c",
            ])
        #expect(keys("body only\nline2\n", body: true) == ["", "body only", "line2"])
        #expect(keys(" cont first\nA: b\n", body: true, headers: true) == ["", " cont first", "A: b"])
        #expect(keys("From a@b Mon\nSubject: x\n\nb\n", headers: true).isEmpty)
    }

    @Test func onlySpaceAndTabContinueAHeader() {
        #expect(keys("A: 1\n\t\ttab\n   \nB: 2\n", headers: true) == ["A: 1\n\t\ttab\n   ", "B: 2"])
        #expect(keys("A: 1\n\u{0B}x\n\u{0C}y\n", body: true, headers: true) == ["A: 1", "", "\u{0B}x", "\u{0C}y"])
    }

    @Test func endOfInput() {
        #expect(keys("", body: true, headers: true).isEmpty)
        #expect(keys("A: 1", body: true, headers: true) == ["A: 1"])
        #expect(keys("A: 1\n cont", body: true, headers: true) == ["A: 1\n cont"])
        #expect(keys("A: 1\n\nbody", body: true) == ["", "body"])
        #expect(keys("\n\n", body: true) == ["", ""])
    }

    @Test func crlfInputKeepsTheCarriageReturns() {
        let message = "Subject: x\r\n cont\r\n\r\nbody\r\n"
        #expect(keys(message, body: true, headers: true) == ["Subject: x\r\n cont\r", "", "\r", "body\r"])
    }

    @Test func keysAreCStrings() {
        let message =
            Array("A: x".utf8) + [0] + Array("y\n\tz".utf8) + [0] + Array("w\nB".utf8) + [0]
            + Array(": x\n\nb".utf8) + [0] + Array("c\n".utf8)
        #expect(keys(message, body: true, headers: true) == ["A: x\n\tz", "", "B", "", "b"])
    }

    @Test func longLinesAreNotSplit() {
        let long = String(repeating: "y", count: 300_000)
        #expect(keys("Subject: x\n\n\(long)\n", body: true) == ["", long])
    }

    @Test func continuationsStopOnceAHeaderReachesTheSizeLimit() {
        let limits = (header: 20, nesting: 100, boundary: 2048)
        #expect(keys("A: 12345678901234567\n b\n", headers: true, limits: limits) == ["A: 12345678901234567"])
        #expect(
            keys("B: 1234567890123456\n 12\n 3\n", headers: true, limits: limits) == ["B: 1234567890123456\n 12"])
        // The limit counts the header as stored, after the whitespace before the colon is gone.
        #expect(
            keys("A          :123456\n b\n c\n d\n e\n f\n", headers: true, limits: limits) == [
                "A:123456\n b\n c\n d\n e"
            ])
        let first = "Subject: " + String(repeating: "x", count: 110_000)
        #expect(keys(first + "\n more\n", headers: true) == [first])
    }

    @Test func headerModeWithoutMIMESeesOnlyThePrimaryHeaders() {
        #expect(keys(MessageKeyMIMETests.mixed, headers: true).count == 3)
        #expect(keys(MessageKeyMIMETests.mixed, body: true).contains("Content-Type: text/plain"))
    }
}

@Suite("Message keys: MIME (-m)")
struct MessageKeyMIMETests {
    static let mixed = """
        From: a@b
        Content-Type: multipart/mixed;
        \tboundary="XYZ"
        Subject: test

        preamble line
        --XYZ
        Content-Type: text/plain
        Content-Transfer-Encoding: 7bit

        part one text
        --XYZ
        Content-Type: message/rfc822

        From: inner@x
        Subject: inner
         folded

        inner body
        --XYZ--
        epilogue

        """

    @Test func headerKeysOfEveryHeaderBlock() {
        #expect(
            keys(Self.mixed, headers: true, mime: true) == [
                "From: a@b", "Content-Type: multipart/mixed;\n\tboundary=\"XYZ\"", "Subject: test",
                "Content-Type: text/plain", "Content-Transfer-Encoding: 7bit", "Content-Type: message/rfc822",
                "From: inner@x", "Subject: inner\n folded",
            ])
    }

    @Test func bodyKeysSkipMIMEAndNestedHeadersButKeepBoundaries() {
        #expect(
            keys(Self.mixed, body: true, mime: true) == [
                "", "preamble line", "--XYZ", "", "part one text", "--XYZ", "", "", "inner body", "--XYZ--",
                "epilogue",
            ])
    }

    @Test func onlyThePrimaryHeadersGetAnEmptyKeyBeforeANonHeaderLine() {
        let message = "Content-Type: multipart/mixed; boundary=q\n\n--q\nX-A: 1\nnot header\n--q\n leading\nX-B: 2\n"
        #expect(keys(message, body: true, mime: true) == ["", "--q", "not header", "--q", " leading", "X-B: 2"])
        #expect(keys(message, headers: true, mime: true) == ["Content-Type: multipart/mixed; boundary=q", "X-A: 1"])
    }

    @Test func inHeadersAHeaderLookingLineIsAHeaderNotABoundary() {
        let message = "Content-Type: multipart/mixed; boundary=q\n\n--q\nX-A: 1\n--q: x\nX-B: 1\n\nb\n--q--\n"
        #expect(keys(message, headers: true, mime: true).dropFirst() == ["X-A: 1", "--q: x", "X-B: 1"])
    }

    @Test func boundariesMatchByPrefixInnermostFirst() {
        let message = """
            Content-Type: multipart/mixed; boundary=abc

            --abc
            Content-Type: multipart/mixed; boundary=ab

            --ab
            X-Inner: 1

            --abc
            X-Outer: 2

            --ab
            X-Inner-After: 2

            --abc--

            """
        #expect(keys(message, headers: true, mime: true).filter { $0.hasPrefix("X-") }.count == 3)
        let closing = """
            Content-Type: multipart/mixed; boundary=b1

            --b1
            Content-Type: multipart/mixed; boundary=b1000

            --b1000
            X-A: 1

            --b1000--
            X-B: 2
            --b1
            X-C: 3

            """
        #expect(keys(closing, headers: true, mime: true).filter { $0.hasPrefix("X-") } == ["X-A: 1", "X-C: 3"])
    }

    @Test func closeDelimiterAndLineLength() {
        let message = "Content-Type: multipart/mixed; boundary=\"\"\n\n--\nX-No: 1\n---\nX-Yes: 1\n\n----\nX-No: 2\n"
        #expect(keys(message, headers: true, mime: true).dropFirst() == ["X-Yes: 1"])
        let nul = Array("Content-Type: multipart/mixed; boundary=q\n\n--q".utf8) + [0] + Array("zz\nX-Part: 1\n".utf8)
        #expect(keys(nul, headers: true, mime: true).last == "X-Part: 1")
    }

    @Test func everyBoundaryParameterIsPushed() {
        for line in ["q", "r"] {
            let message = multipart(contentType: "multipart/mixed; boundary=r; boundary=q", boundaryLines: [line])
            #expect(keys(message, headers: true, mime: true).last == "X-Part: \(line)")
        }
    }

    @Test func atMostNestingLimitPlusTwoBoundaries() {
        let limits = (header: 102_400, nesting: 1, boundary: 2048)
        for (line, recognized) in [("a", true), ("b", true), ("c", true), ("d", false)] {
            let message = multipart(
                contentType: "multipart/mixed; boundary=a; boundary=b; boundary=c; boundary=d", boundaryLines: [line])
            let headers = keys(message, headers: true, mime: true, limits: limits)
            #expect(headers.contains("X-Part: \(line)") == recognized, "--\(line)")
        }
        // The default limit of 100 allows 102 nested multiparts.
        var deep = ""
        for level in 0..<110 {
            let name = String(format: "z%03dz", level)
            deep += "Content-Type: multipart/mixed; boundary=\(name)\nX-Level: \(level)\n\n--\(name)\n"
        }
        #expect(keys(deep, headers: true, mime: true).filter { $0.hasPrefix("X-Level") }.count == 103)
        // message/rfc822 nesting has no limit.
        let messages = String(repeating: "Content-Type: message/rfc822\n\n", count: 150) + "X-Deep: 1\n"
        #expect(keys(messages, headers: true, mime: true).last == "X-Deep: 1")
    }

    @Test func boundariesAreCutToTheLengthLimit() {
        let limits = (header: 102_400, nesting: 100, boundary: 3)
        let message = "Content-Type: multipart/mixed; boundary=abcdef\n\n--abcXYZ\nX-Part: 1\n\n--abc--\nX-After: 1\n"
        #expect(keys(message, headers: true, mime: true, limits: limits).dropFirst() == ["X-Part: 1"])
    }

    @Test(
        "boundary parameter syntax",
        arguments: [
            ("multipart/mixed; boundary=q", "q", true), ("MULTIPART/Mixed; BOUNDARY=q", "q", true),
            ("multipart/mixed ; boundary = \"q\"", "q", true), ("multipart; boundary=q", "q", true),
            ("(c) multipart (d) / mixed; x; boundary=q (e)", "q", true),
            ("multipart/mixed;\n\tboundary=q\r", "q", true), ("multipart/mixed;\r\n boundary=q\r", "q", true),
            ("multipart/mixed boundary=q", "q", false), ("multipart/mixed; foo boundary=q", "q", false),
            ("multipart/mixed; boundary q", "q", false), ("multipart/mixed; boundary=", "q", false),
            ("\"multipart\"/mixed; boundary=q", "q", false), ("text/plain; boundary=q", "q", false),
            ("multipart/mixed; \"boundary\"=q", "q", false), ("multipart/mixed;\u{0B}boundary=q", "q", false),
            ("multipart/mixed; boundary=(a(b)c)q", "q", true), ("multipart/mixed; boundary=(a(bc)q", "q", false),
            ("multipart/mixed; x=\"a;b\"; boundary=q", "q", true), ("multipart/mixed (; boundary=q", "q", false),
            ("multipart/mixed; boundary=a.b", "a.b", true), ("multipart/mixed; boundary=a.b", "a", false),
            ("multipart/mixed; boundary=a@b", "a", true), ("multipart/mixed; boundary=/q", "/zzz", true),
            ("multipart/mixed; boundary=/q", "q", false), ("multipart/mixed; boundary=\"a\\\"b\"", "a\"b", true),
            ("multipart/mixed; boundary=\"a\\\"b\"", "a\"c", false), ("multipart/mixed; boundary=\"q r\"", "q r", true),
            ("multipart/mixed; boundary=\"q r\"", "q", false), ("multipart/mixed; boundary=\"q", "q", true),
            ("multipart/mixed; boundary=\u{01}b", "\u{01}b", true), ("multipart/mixed; boundary=\u{01}b", "b", false),
            ("multipart/mixed; boundary=a\u{E4}b", "a\u{E4}b", true),
            ("multipart/mixed; boundary=a\u{E4}b", "a", false),
        ])
    func boundarySyntax(contentType: String, line: String, recognized: Bool) {
        let message = multipart(contentType: contentType, boundaryLines: [line])
        #expect(keys(message, headers: true, mime: true).contains("X-Part: \(line)") == recognized)
    }

    @Test(
        "what a Content-Type does to the block's type (message/rfc822 first, then this)",
        arguments: [
            ("", false), ("text/plain", false), ("text", false), ("message", false), ("multipart/mixed", false),
            ("(c)", false), (";", false), ("message/partial", false), ("message/rfc822", true),
            ("MESSAGE/Global", true), ("message / (c) rfc822/x", true), ("garbage", true), ("application/pdf", true),
            ("\"text\"", true), ("\u{01}", true),
        ])
    func contentTypeEffect(second: String, nested: Bool) {
        let message = "Content-Type: message/rfc822\nContent-Type: \(second)\n\nX-Nested: 1\n"
        #expect(keys(message, headers: true, mime: true).contains("X-Nested: 1") == nested)
    }

    @Test func digestPartsDefaultToMessages() {
        let message = """
            Content-Type: multipart/digest; boundary=q

            --q

            X-Nested-Default: 1

            body1
            --q
            Content-Type: text/plain

            X-Not-Nested: 1
            --q
            Content-Type: application/x-unknown

            X-Nested-Again: 1
            Content-Type: multipart/mixed; boundary=r

            --r

            X-Mixed-Default: 1
            --r--
            --q--

            """
        let headers = keys(message, headers: true, mime: true)
        #expect(headers.contains("X-Nested-Default: 1"))
        #expect(headers.contains("X-Nested-Again: 1"))
        #expect(!headers.contains("X-Not-Nested: 1"))
        #expect(!headers.contains("X-Mixed-Default: 1"))
    }

    @Test func aMessageTypeBlockEndingAtANonHeaderLineHasNoNestedHeaders() {
        let message = "Content-Type: message/rfc822\nnot-a-header\nX-N: 1\n\nnb\n"
        #expect(keys(message, headers: true, mime: true) == ["Content-Type: message/rfc822"])
        #expect(keys(message, body: true, mime: true) == ["", "not-a-header", "X-N: 1", "", "nb"])
    }

    @Test func contentTransferEncodingDoesNotMatter() {
        let message = "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nFrom: x\n\nbody\n"
        #expect(keys(message, headers: true, mime: true).last == "From: x")
    }
}

@Suite("Message keys: main.cf limits")
struct MessageKeyLimitTests {
    private func limit(_ value: String) -> Result<Int, FatalError> {
        var config = MainConfig()
        config.set("header_size_limit", value)
        config.set("empty", "")
        return Result { () throws(FatalError) in
            try config.positiveIntegerParameter("header_size_limit", default: 102_400)
        }
    }

    @Test func valuesPostfixAccepts() throws {
        #expect(try limit("+5").get() == 5)
        #expect(try limit("007").get() == 7)
        #expect(try limit("${empty} 5").get() == 5)
        #expect(try limit("2147483647").get() == 2_147_483_647)
        #expect(try MainConfig().positiveIntegerParameter("header_size_limit", default: 102_400) == 102_400)
    }

    @Test(arguments: [
        ("0", "invalid header_size_limit parameter value 0 < 1"),
        ("-0", "invalid header_size_limit parameter value 0 < 1"),
        ("-5", "invalid header_size_limit parameter value -5 < 1"),
        ("foo", "bad numerical configuration: header_size_limit = foo"),
        ("10k", "bad numerical configuration: header_size_limit = 10k"),
        ("0x10", "bad numerical configuration: header_size_limit = 0x10"),
        ("2147483648", "bad numerical configuration: header_size_limit = 2147483648"),
        ("${nothing}", "bad numerical configuration: header_size_limit = "),
    ])
    func valuesPostfixRejects(value: String, message: String) {
        guard case .failure(let error) = limit(value) else {
            Issue.record("\(value) accepted")
            return
        }
        #expect(error.rendered(utf8: true) == "fatal: " + message)
    }
}

// MARK: - Against the real postmap

/// The corpus: hand-written messages, then seeded generated ones.
enum MessageCorpus {
    static let handWritten: [(name: String, bytes: [UInt8])] = {
        var corpus: [(String, [UInt8])] = []
        func add(_ name: String, _ text: String) { corpus.append((name, Array(text.utf8))) }
        add("plain", "From: alice@example.com\nTo: Bob@Example.org\nSubject: Hello\n\nHi Bob,\nsee you.\n")
        add(
            "folded headers",
            "Received: from a\n\tby b\n\twith SMTP\nSubject: long\n subject line\nX-Spam:  yes\n\nbody\n")
        add("space before colon", "Subject : spaced\nX-Tab\t: tabbed\nX-Mixed \t :mixed\n\nok\n")
        add("headers only, no newline", "Subject: only headers\nFrom: x@y")
        add("headers and empty line", "Subject: x\n\n")
        add("body only", "just a body line\nanother line\n")
        add("leading continuation", " leading space\nSubject: late\n\nbody\n")
        add("empty", "")
        add("blank lines", "\n\n\n")
        add("crlf", "Subject: crlf\r\n folded\r\n\r\nbody line\r\n\r\n")
        add("mbox from line", "From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: mbox\n\nbody\n")
        add("non-header in headers", "Subject: a\nnot a header line\nX-After: b\n\nbody\n")
        add("cases", "SUBJECT: HELLO\nsubject: hello\nSubject: Hello\n\nHELLO WORLD\nhello world\n")
        add("odd names", "X-Empty:\n:\nA B: c\n--q: d\n!#$: e\n\nx\n")
        add("whitespace continuations", "A: 1\n   \n\t\nB: 2\n\r\nC: 3\n\nbody\n")
        add(
            "multipart nested",
            """
            From: a@b
            MIME-Version: 1.0
            Content-Type: multipart/mixed;
            \tboundary="outer"

            This is a multi-part message.
            --outer
            Content-Type: multipart/alternative; boundary=inner

            --inner
            Content-Type: text/plain; charset=us-ascii

            plain text
            --inner
            Content-Type: text/html

            <p>html</p>
            --inner--
            --outer
            Content-Type: application/octet-stream; name="x.bin"
            Content-Disposition: attachment;
             filename="x.bin"
            Content-Transfer-Encoding: base64

            SGVsbG8gd29ybGQ=
            --outer--
            epilogue

            """)
        add(
            "message/rfc822 attachment",
            """
            Subject: fwd
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain

            see attached
            --b
            Content-Type: message/rfc822

            Received: from x
            \tby y
            Subject: Inner Subject
            Content-Type: multipart/alternative; boundary="c"

            --c
            X-Inner-Part: 1

            inner text
            --c--
            --b--

            """)
        add(
            "digest",
            """
            Content-Type: multipart/digest; boundary=q

            --q

            X-Nested-Default: 1

            body1
            --q
            Content-Type: text/plain

            X-Not-Nested: 1
            --q
            Content-Type: application/x-unknown

            X-Nested-Again: 1

            --q--

            """)
        add(
            "no closing boundary",
            "Content-Type: multipart/mixed; boundary=zz\n\n--zz\nX-P: 1\n\npart\n--zz\n\n--zz\nX-Q: 2\n")
        add(
            "prefix boundaries",
            """
            Content-Type: multipart/mixed; boundary=ab

            --ab
            Content-Type: multipart/mixed; boundary=abc

            --abc
            X-Inner: 1

            inner1
            --ab
            X-Outer: 2

            outer2
            --abc
            X-Stale: 3
            --ab--
            X-Epilogue: 4

            """)
        add(
            "part header edge cases",
            """
            Content-Type: multipart/mixed; boundary=q

            --q
            X-A: 1
            not header
            --q
             leading space
            X-B: 2

            --q
            --q
            X-C: 1
            Content-Type: message/rfc822

            X-N: 1
            nonheader in nested
            --q
            Content-Type: message/rfc822
            --q
            X-D: 1
            --q--
            after close
            --q
            X-E: 1

            """)
        add(
            "content-type combinations",
            """
            Content-Type: multipart/mixed; boundary=q
            Content-Type: message/rfc822
            Content-Type: garbage

            X-Nested: 1

            --q
            Content-Type: multipart/mixed; boundary=r; boundary=s
            Content-Type: text

            --s
            X-S: 1

            --r
            X-R: 1

            --q--

            """)
        add(
            "boundary syntax",
            """
            Content-Type: multipart/mixed; (comment; boundary=no) charset="x;y";
             boundary="weird \\"b\\" (x)" (trailing)

            --weird "b" (x)
            X-Weird: 1

            --weird "b" (x)--

            """)
        add(
            "quoted-printable",
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
                + "caf=C3=A9 au lait=\nsoft break\n=3D\n")
        add(
            "crlf multipart",
            "Content-Type: multipart/mixed;\r\n boundary=q\r\n\r\n--q\r\nX-Part: 1\r\n\r\nb\r\n--q--\r\n")
        add(
            "message type ending at non-header",
            "Content-Type: message/rfc822\nnot-a-header\nX-N: 1\n\nnb\n")
        add(
            "empty boundary",
            "Content-Type: multipart/mixed; boundary=\"\"\n\n--\nX-No: 1\n--x\nX-Yes: 1\n\n----\nX-Closed: 1\n")
        add(
            "message/global and partial",
            "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/global\n\nX-Global: 1\n\n"
                + "--q\nContent-Type: message/partial; id=1\n\nX-Partial: 1\n--q--\n")
        add("utf-8", "Subject: Ärger über Straße\nX-Greek: ΣΑΣ\n\nÄrger\nİstanbul\nstrasse\n")
        add(
            "long lines",
            "Subject: " + String(repeating: "x", count: 3000) + "\n\n" + String(repeating: "y", count: 5000) + "\nz\n")
        add(
            "header size limit",
            "A: " + String(repeating: "a", count: 102_390) + "\n " + String(repeating: "b", count: 5) + "\n c\n"
                + "Subject: " + String(repeating: "s", count: 110_000) + "\n more\nB: 1\n\nbody\n")
        var deep = ""
        for level in 0..<106 {
            let name = String(format: "z%03dz", level)
            deep += "Content-Type: multipart/mixed; boundary=\(name)\nX-Level: \(level)\n\n--\(name)\n"
        }
        add("deep multipart", deep + "Subject: deep\n\nbody\n")
        add(
            "deep message/rfc822",
            (0..<20).map { "Content-Type: message/rfc822\nX-Depth: \($0)\n\n" }.joined() + "Subject: deep\n\nbody\n")
        add(
            "prefix-collapsing boundaries",
            (0..<110).map { "Content-Type: multipart/mixed; boundary=b\($0)\nX-Level: \($0)\n\n--b\($0)\n" }.joined()
                + "Subject: deep\n\nbody\n")
        corpus.append(
            (
                "8-bit bytes",
                raw("Subject: \u{E4}rger\nX-UTF8: \u{C3}\u{84}rger\n\n")
                    + raw("\u{E4}rger\n\u{C3}\u{84}rger\n\u{FF}\n\u{C3}\u{A4}rger\n")
            ))
        corpus.append(
            (
                "NUL bytes",
                raw("Subject: a\u{0}b\n\tcont\nX\u{0}: y\n\nbody\u{0}tail\n\u{0}\n")
                    + raw("Content-Type: multipart/mixed; \u{0}boundary=q\n")
            ))
        corpus.append(
            (
                "8-bit in MIME",
                raw("Content-Type: multipart/mixed; boundary=\u{E4}\n\n--\u{E4}\nX-\u{E4}: 1\n")
                    + raw("X-P: \u{E4}\n\n\u{E4}\n--\u{E4}--\n")
            ))
        return corpus
    }()

    /// Seeded generated messages: random header blocks, Content-Types and boundary lines.
    static func generated(count: Int, seed: UInt64) -> [(name: String, bytes: [UInt8])] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { index in
            var text = generateMessage(depth: 0, boundaries: [], using: &generator).joined(separator: "\n")
            if generator.next() % 5 != 0 { text += "\n" }
            if generator.next() % 7 == 0 { text = text.replacingOccurrences(of: "\n", with: "\r\n") }
            return ("generated #\(index) (seed \(seed))", raw(text))
        }
    }

    private static let boundaryNames = ["a", "ab", "abc", "b1", "b10", "q", "", "x y", "Z"]

    private static func generateMessage(
        depth: Int, boundaries: [String], using generator: inout SeededGenerator
    ) -> [String] {
        var boundaries = boundaries
        var lines: [String] = []
        for _ in 0..<Int(generator.next() % 6) {
            let (header, pushed) = generateHeader(using: &generator)
            lines.append(header)
            boundaries += pushed
        }
        switch generator.next() % 10 {
        case 0...6: lines.append("")
        case 7, 8: lines.append(generateBodyLine(boundaries, using: &generator))
        default: break
        }
        for _ in 0..<Int(generator.next() % 9) {
            if generator.next() % 4 == 0 && depth < 3 {
                if let boundary = boundaries.randomElement(using: &generator) { lines.append("--" + boundary) }
                lines += generateMessage(depth: depth + 1, boundaries: boundaries, using: &generator)
            } else {
                lines.append(generateBodyLine(boundaries, using: &generator))
            }
        }
        return lines
    }

    private static func generateHeader(using generator: inout SeededGenerator) -> (String, [String]) {
        if generator.next() % 3 == 0 {
            let boundary = boundaryNames.randomElement(using: &generator) ?? "q"
            let second = boundaryNames.randomElement(using: &generator) ?? "q"
            let quoted = "\"\(boundary)\""
            let types = [
                ("multipart/mixed; boundary=\(quoted)", [boundary]),
                ("multipart/digest; boundary=\(quoted)", [boundary]),
                ("Multipart/Alternative;\n\tboundary=\(quoted)", [boundary]),
                ("multipart/mixed; boundary=\(quoted); boundary=\"\(second)\"", [boundary, second]),
                ("multipart/mixed (c; x) ; charset=x; boundary = \(quoted) (c)", [boundary]),
                ("multipart/mixed", []), ("message/rfc822", []), ("MESSAGE/Global", []), ("message/partial", []),
                ("text/plain", []), ("application/octet-stream", []), ("", []), ("garbage", []),
                ("multipart/mixed; boundary=\(quoted)\r", [boundary]),
            ]
            let (value, pushed) = types.randomElement(using: &generator) ?? ("", [])
            let name =
                ["Content-Type", "content-type", "CONTENT-TYPE", "Content-Type ", "Content-Type\t"]
                .randomElement(using: &generator) ?? "Content-Type"
            return ("\(name): \(value)", pushed)
        }
        let names = ["Subject", "From", "X-Test", "To", "X-\u{E4}", "A B", "Received", ":", "X", "--q"]
        let values = ["", " hello", " Hello World", "x", " \u{C3}\u{A4}rger", " a\u{0}b", " \r", " base64"]
        let separators = [":", ":", " :", "\t:", "  \t :"]
        var header =
            (names.randomElement(using: &generator) ?? "X") + (separators.randomElement(using: &generator) ?? ":")
            + (values.randomElement(using: &generator) ?? "")
        for _ in 0..<[0, 0, 0, 1, 2, 3][Int(generator.next() % 6)] {
            header += "\n" + ([" ", "\t", "  "].randomElement(using: &generator) ?? " ")
            header +=
                ["folded", "More Text", "", String(repeating: "x", count: Int(generator.next() % 40))]
                .randomElement(using: &generator) ?? ""
        }
        return (header, [])
    }

    private static func generateBodyLine(_ boundaries: [String], using generator: inout SeededGenerator) -> String {
        if generator.next() % 4 == 0, let boundary = boundaries.randomElement(using: &generator) {
            let suffix = ["", "", "--", "-", " ", "\r", "--\r", "x"].randomElement(using: &generator) ?? ""
            return "--" + boundary + suffix
        }
        let lines = [
            "", "", "body text", "Body Line", "X-Looks: like header", " leading", "\r", "\u{FF}\u{FE}", "line\u{0}nul",
            "--", "-", "From x", "HELLO WORLD",
        ]
        return lines.randomElement(using: &generator) ?? ""
    }

    static let all = handWritten + generated(count: 24, seed: 20_260_401)
}

@Suite(
    "Message queries (-b/-h/-m/-U) against the real postmap",
    .enabled(if: oracleAvailable, "Postfix is not installed"))
struct MessageQueryOracleTests {
    /// `SWIFTPOSTMAP_MESSAGE_MATRIX=full` runs every flag combination over every message; by
    /// default the matrix is thinned (see below) to keep the suite fast.
    static let fullMatrix = ProcessInfo.processInfo.environment["SWIFTPOSTMAP_MESSAGE_MATRIX"] == "full"

    /// postmap's keys, read back through a `static:` table (every key is found and printed as
    /// `KEY<TAB>V`), against messageLookupKeys for the same flags and limits, for every
    /// message of the corpus (generated ones included). `-b` alone and `-b -m` give the body
    /// keys of `-b -h` and `-b -h -m`, so they run only in the full matrix.
    @Test("derived keys equal postmap's", arguments: [false, true])
    func derivedKeys(smallLimits: Bool) throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        let flagSets: [[String]] =
            Self.fullMatrix
            ? [["-b"], ["-h"], ["-b", "-h"], ["-b", "-m"], ["-h", "-m"], ["-b", "-h", "-m"]]
            : smallLimits
                ? [["-b", "-h"], ["-b", "-h", "-m"]] : [["-h"], ["-b", "-h"], ["-h", "-m"], ["-b", "-h", "-m"]]
        try withTemporaryDirectory { root in
            let extra =
                smallLimits ? "header_size_limit = 25\nmime_nesting_limit = 1\nmime_boundary_length_limit = 2\n" : ""
            let config = try backdated(makeConfigDirectory(in: root, extra: extra))
            for (name, message) in MessageCorpus.all {
                for flags in flagSets {
                    let theirs = try run(
                        realPostmap, ["-c", config.path] + flags + ["-q", "-", "static:V"], in: root,
                        input: Data(message))
                    #expect(theirs.stderr.isEmpty, "\(name) \(flags): \(theirs.err)")
                    var options = MessageKeyOptions(
                        bodyLines: flags.contains("-b"), headers: flags.contains("-h"), mime: flags.contains("-m"))
                    if smallLimits {
                        options.headerSizeLimit = 25
                        options.mimeNestingLimit = 1
                        options.mimeBoundaryLengthLimit = 2
                    }
                    let ours = messageLookupKeys(message, options: options).map { Data($0 + Array("\tV\n".utf8)) }
                    #expect(ours.reduce(Data(), +) == theirs.stdout, "\(name) \(flags)")
                }
            }
        }
    }

    /// One combination of the flags that matter: the mode, `-m`, `-U`, `-f`.
    struct Flags: CustomTestStringConvertible, Sendable {
        var mode: [String]
        var mime: Bool
        var keepUTF8: Bool
        var noFold: Bool
        var arguments: [String] {
            mode + (mime ? ["-m"] : []) + (keepUTF8 ? ["-U"] : []) + (noFold ? ["-f"] : [])
        }
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let combinations: [Flags] = [["-b"], ["-h"], ["-b", "-h"]].flatMap { mode in
        [false, true].flatMap { mime in
            [false, true].flatMap { keepUTF8 in
                [false, true].map { noFold in Flags(mode: mode, mime: mime, keepUTF8: keepUTF8, noFold: noFold) }
            }
        }
    }

    /// Both programs (swiftpostmap run as `postmap`, so program names agree) query the same
    /// two tables with the hand-written messages; stdout, stderr and exit status must be
    /// identical. Every message runs under all six `-b`/`-h`/`-m` combinations, with the four
    /// `-U`/`-f` settings rotating from message to message, so that each of the 24
    /// combinations sees a quarter of the corpus (all of it with the full matrix); messages
    /// with 8-bit bytes, where `-U` and folding matter most, run under all of them.
    @Test("same output as postmap", arguments: combinations)
    func sameOutput(_ flags: Flags) throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        let setting = (flags.keepUTF8 ? 2 : 0) + (flags.noFold ? 1 : 0)
        try withTemporaryDirectory { root in
            let config = try backdated(makeConfigDirectory(in: root))
            try MessageTables.write(in: root)
            for (index, (name, message)) in MessageCorpus.handWritten.enumerated()
            where Self.fullMatrix || index % 4 == setting || message.contains(where: { $0 >= 0x80 }) {
                let arguments = ["-c", config.path] + flags.arguments + ["-q", "-", "hash:first", "hash:second"]
                let theirs = try run(realPostmap, arguments, in: root, input: Data(message))
                let ours = try swiftpostmap(arguments, in: root, input: Data(message), argv0: "postmap")
                #expect(ours.status == theirs.status, "\(name): postmap \(flags.testDescription)")
                #expect(ours.stdout == theirs.stdout, "\(name): postmap \(flags.testDescription)")
                #expect(ours.stderr == theirs.stderr, "\(name): postmap \(flags.testDescription)")
            }
        }
    }

    /// Limits from main.cf, and postmap's errors for bad ones (postmap pauses for a second
    /// after a fatal error, so those run with one message only).
    @Test(
        "main.cf limits",
        arguments: [
            "header_size_limit = 30\nmime_nesting_limit = 1\nmime_boundary_length_limit = 3\n",
            "header_size_limit = 0\n", "mime_boundary_length_limit = x\nmime_nesting_limit = 0\n",
            "header_size_limit = ${unset}\n",
        ])
    func limits(_ extra: String) throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { root in
            let config = try backdated(makeConfigDirectory(in: root, extra: extra))
            try MessageTables.write(in: root)
            let names = extra.hasPrefix("header_size_limit = 30") ? ["multipart nested", "folded headers"] : ["plain"]
            for (name, message) in MessageCorpus.handWritten where names.contains(name) {
                let arguments = ["-c", config.path, "-b", "-h", "-m", "-q", "-", "hash:first"]
                let theirs = try run(realPostmap, arguments, in: root, input: Data(message))
                let ours = try swiftpostmap(arguments, in: root, input: Data(message), argv0: "postmap")
                #expect(ours == theirs, "\(name) with \(extra.debugDescription)")
            }
        }
    }
}

/// The tables the corpus is queried against, written directly (keys with spaces and
/// newlines cannot be written in a postmap source file).
///
/// Candidate keys are every line of every hand-written message, and every line joined with
/// the whitespace-led lines after it, with whitespace before a colon removed. Two of three
/// candidates (seeded choice) go into `first.db` in up to three spellings, each with its own
/// value: as written (`R…`, found only with `-f`), ASCII-lowercased (`A…`) and Unicode case
/// folded (`U…`, found only with `-U`); a few go into `second.db` too, which `first.db`
/// shadows, and some only into `second.db`.
enum MessageTables {
    static func write(in directory: URL) throws {
        var generator = SeededGenerator(seed: 7)
        var first: [[UInt8]: [UInt8]] = [:]
        var second: [[UInt8]: [UInt8]] = [:]
        for (index, key) in candidateKeys().enumerated() {
            let choice = generator.next() % 6
            if choice < 4 {
                let spellings: [(String, [UInt8])] = [
                    ("R", key), ("A", KeyFolding.ascii.fold(key)),
                    ("U", validUTF8(key) ? KeyFolding.unicode.fold(key) : key),
                ]
                for (label, spelling) in spellings where first[spelling] == nil {
                    first[spelling] = Array("\(label)\(index)".utf8)
                }
            }
            if choice == 0 || choice == 5 { second[KeyFolding.ascii.fold(key)] = Array("S\(index)".utf8) }
        }
        try writeTable(first, to: directory.appendingPathComponent("first.db").path)
        try writeTable(second, to: directory.appendingPathComponent("second.db").path)
    }

    private static func candidateKeys() -> [[UInt8]] {
        var seen: Set<[UInt8]> = []
        var result: [[UInt8]] = []
        for (_, message) in MessageCorpus.handWritten where message.count < 50_000 {
            let lines = message.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
                Array(line.prefix { $0 != 0 })
            }
            for (index, line) in lines.enumerated() {
                var joined = normalized(line)
                var candidates = [line, joined]
                var next = index + 1
                while next < lines.count, let lead = lines[next].first, lead == 0x20 || lead == 0x09 {
                    joined += [0x0A] + lines[next]
                    candidates.append(joined)
                    next += 1
                }
                for candidate in candidates where seen.insert(candidate).inserted { result.append(candidate) }
            }
        }
        return result
    }

    /// `Name  : value` → `Name: value`.
    private static func normalized(_ line: [UInt8]) -> [UInt8] {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return line }
        var end = colon
        while end > 0, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        return Array(line[..<end] + line[colon...])
    }

    private static func validUTF8(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    /// A hash table with postmap's conventions: key and value end in a NUL byte.
    private static func writeTable(_ entries: [[UInt8]: [UInt8]], to path: String) throws {
        let handle = try DatabaseHandle(path: path, method: .hash, intent: .createExclusive, cacheSize: 1 << 20)
        for (key, value) in entries.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let k = key + [0]
            let v = value + [0]
            _ = try k.withUnsafeBytes { kb in
                try v.withUnsafeBytes { vb in try handle.put(key: kb, value: vb, overwrite: false) }
            }
        }
        try handle.close()
    }
}
