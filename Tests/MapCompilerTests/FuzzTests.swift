import Foundation
import Testing

@testable import MapCompiler

/// Seeded fuzzing of everything that reads untrusted text: the postmap source parser, the
/// aliases parser (through the whole in-memory compile: logical lines, entries, folding,
/// duplicates), main.cf parsing and its typed values, and the query path's key
/// extraction (`-q -` lines, `-b`/`-h`/`-m` message keys). Inputs: binary garbage, huge
/// lines, long runs of continuation lines, deep quoting, NULs, invalid UTF-8, every byte
/// value. A crash or a hang fails the run; each input is also compiled twice and must give
/// the same result.
///
/// `make test` runs SWIFTPOSTMAP_FUZZ_COUNT (default 1,500) inputs; `make fuzz` runs
/// 1,000,000 in a release build. SWIFTPOSTMAP_FUZZ_SEED picks another sequence.
@Suite("Fuzzing the parsers")
struct FuzzTests {
    static let count = Int(ProcessInfo.processInfo.environment["SWIFTPOSTMAP_FUZZ_COUNT"] ?? "") ?? 1_500
    static let seed = UInt64(ProcessInfo.processInfo.environment["SWIFTPOSTMAP_FUZZ_SEED"] ?? "") ?? 20_261_203

    @Test("seeded inputs through every parser")
    func parsers() throws {
        var generator = SeededGenerator(seed: Self.seed)
        var compiled = 0
        let handlings = [
            KeyHandling(), KeyHandling(folding: .ascii, nul: .withNUL, utf8: false),
            KeyHandling(folding: .none, nul: .withoutNUL, utf8: true),
        ]
        for index in 0..<Self.count {
            let input = FuzzInput.make(using: &generator, index: index)
            let handling = handlings[index % handlings.count]
            let format: SourceFormat = index % 2 == 0 ? .postmap : .postalias
            var warnings: [Diagnostic] = []
            let first = try? compileSourceBytes(
                input, path: "fuzz", format: format, handling: handling, warn: { warnings.append($0) })
            var again: [Diagnostic] = []
            let second = try? compileSourceBytes(
                input, path: "fuzz", format: format, handling: handling, warn: { again.append($0) })
            // postalias stamps YP_LAST_MODIFIED with the time: everything else must agree.
            let stamp = Array("YP_LAST_MODIFIED".utf8)
            #expect(
                first?.contents.records.filter { !$0.key.starts(with: stamp) }
                    == second?.contents.records.filter { !$0.key.starts(with: stamp) },
                "input #\(index) (seed \(Self.seed))")
            #expect(warnings == again, "input #\(index) (seed \(Self.seed))")
            if first != nil { compiled += 1 }

            if let config = try? MainConfig(text: input, path: "main.cf", directory: nil, warn: { _ in }) {
                _ = try? config.defaultDatabaseType()
                _ = try? config.readBufferSize()
                _ = try? config.createBufferSize()
                _ = try? config.smtputf8Enabled()
                _ = try? config.myhostname()
                _ = try? config.mydomain()
            }

            let lines = lookupKeyLines(input)
            #expect(lines.allSatisfy { !$0.contains(0x0A) }, "input #\(index): a key with a newline")
            let options = MessageKeyOptions(bodyLines: index % 3 != 1, headers: index % 3 != 0, mime: index % 2 == 0)
            _ = messageLookupKeys(input, options: options)
        }
        #expect(compiled == Self.count, "the in-memory compile refused an input")
    }
}

/// Generated inputs, each of one shape.
enum FuzzInput {
    static func make(using generator: inout SeededGenerator, index: Int) -> [UInt8] {
        func byte() -> UInt8 { UInt8(truncatingIfNeeded: generator.next()) }
        func upTo(_ limit: Int) -> Int { Int(generator.next() % UInt64(limit + 1)) }
        let pieces: [[UInt8]] = [
            Array("key value\n".utf8), Array(" continued\n".utf8), Array("\"quoted key\" v\n".utf8),
            Array("name: a, b,\n\tc\n".utf8), Array("# comment\n".utf8), Array("\\\\\"\"\\\n".utf8),
            Array("Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n".utf8), [0xC3, 0x28], [0xFF, 0xFE],
            [0x00], [0x0D, 0x0A], Array("İSTANBUL ǅ ß\n".utf8), Array("a = b\n".utf8), Array("$x ${y:z}\n".utf8),
        ]
        // The large shapes (a huge line, long continuations, deep quoting) come once in 32
        // inputs each; the rest are garbage, every byte value, and mixes.
        let slot = index % 32
        switch slot < 3 ? slot + 2 : [0, 1, 5][slot % 3] {
        case 0:  // binary garbage
            return (0..<upTo(4096)).map { _ in byte() }
        case 1:  // every byte value, in a line and alone
            return (0...255).flatMap { [UInt8]([UInt8($0), 0x20, UInt8($0), 0x0A]) }
        case 2:  // a huge line
            let filler = byte() | 0x21
            return Array(repeating: filler, count: 200_000 + upTo(300_000)) + [0x20, 0x76, 0x0A]
        case 3:  // long runs of continuation lines
            return Array("start value\n".utf8)
                + Array(repeating: Array(" more\n".utf8), count: 20_000 + upTo(20_000)).flatMap { $0 }
        case 4:  // deep quoting
            let depth = upTo(20_000)
            return Array(repeating: UInt8(ascii: "\""), count: depth) + Array("k\\\"".utf8)
                + Array(repeating: UInt8(ascii: "\\"), count: depth) + Array(" v\n".utf8)
        default:  // a mix of the interesting pieces and random bytes
            var out: [UInt8] = []
            for _ in 0..<upTo(200) {
                if generator.next() % 4 == 0 { out.append(byte()) } else { out += pieces[upTo(pieces.count - 1)] }
            }
            return out
        }
    }
}
