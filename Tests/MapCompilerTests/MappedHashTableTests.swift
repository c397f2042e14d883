import Foundation
import Glibc
import Testing

@testable import MapCompiler

/// Lookups from the mapped hash file must answer what libdb's `DB->get` answers, for every
/// table shape libdb writes (splits, overflow pages for long keys and values, deletes,
/// bucket-ordered builds, the real postmap's tables), must decide every lookup in a sound
/// table (or the fast path would silently never run), and must never crash on a damaged
/// file.
@Suite("Hash lookups from the mapped file", .serialized)
struct MappedHashTableTests {
    /// Seeded keys and values: short ones, and some long enough for overflow pages.
    private func entries(count: Int, seed: UInt64) -> [(key: [UInt8], value: [UInt8])] {
        var generator = SeededGenerator(seed: seed)
        var seen = Set<[UInt8]>()
        var result: [(key: [UInt8], value: [UInt8])] = []
        while result.count < count {
            var key = Array("user\(generator.next() % 1_000_000)@example\(generator.next() % 13).com".utf8)
            if generator.next() % 50 == 0 {
                key += [UInt8](repeating: UInt8(ascii: "k"), count: 1000 + Int(generator.next() % 9000))
            }
            if generator.next() % 3 != 0 { key.append(0) }
            guard seen.insert(key).inserted else { continue }
            let length =
                generator.next() % 40 == 0 ? 2000 + Int(generator.next() % 30000) : 1 + Int(generator.next() % 80)
            var value = (0..<length).map { _ in UInt8(ascii: "a") + UInt8(generator.next() % 26) }
            if generator.next() % 4 != 0 { value.append(0) }
            result.append((key, value))
        }
        return result
    }

    /// Every stored key, each without and with a last byte, and keys that are not there.
    private func probes(_ entries: [(key: [UInt8], value: [UInt8])], seed: UInt64) -> [[UInt8]] {
        var generator = SeededGenerator(seed: seed)
        var keys: [[UInt8]] = []
        for entry in entries {
            keys.append(entry.key)
            keys.append(entry.key.last == 0 ? Array(entry.key.dropLast()) : entry.key + [0])
        }
        for _ in 0..<500 { keys.append(Array("absent\(generator.next())@example.com".utf8)) }
        keys.append([])
        keys.append([0])
        return keys
    }

    /// Asserts that the map decides every probe and answers what libdb answers.
    private func expectSameAnswers(table path: String, probes: [[UInt8]], context: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let mapped = try #require(MappedHashTable(descriptor: descriptor), "\(context): the file is mapped")
        let handle = try DatabaseHandle(path: path, method: .hash, intent: .read, cacheSize: 1 << 20)
        var found = 0
        var mismatches = 0
        for key in probes {
            let expected = try handle.get(key: key)
            let answer = key.withUnsafeBytes { mapped.lookup($0) }
            let wanted: MappedHashTable.Answer = expected.map { .found($0) } ?? .absent
            if answer != wanted {
                mismatches += 1
                if mismatches <= 3 {
                    Issue.record(
                        "\(context): \(String(decoding: key.prefix(60), as: UTF8.self)): \(answer) vs libdb \(wanted)")
                }
            }
            if expected != nil { found += 1 }
        }
        try handle.close()
        #expect(mismatches == 0, "\(context)")
        #expect(found > probes.count / 4, "\(context): the probes find keys")
    }

    @Test("tables written in source order, with splits, overflow pages and deletes")
    func sourceOrderTables() throws {
        for (seed, pageSize) in [(UInt64(1), UInt32(0)), (2, 512), (3, 4096), (4, 16384)] {
            let input = entries(count: 3000, seed: seed)
            try withTemporaryDirectory { directory in
                let path = directory.appendingPathComponent("map.db").path
                let handle = try DatabaseHandle(
                    path: path, method: .hash, intent: .createExclusive, cacheSize: 1 << 20, hashElementHint: 16,
                    pageSize: pageSize)
                for entry in input {
                    _ = try entry.key.withUnsafeBytes { key in
                        try entry.value.withUnsafeBytes { value in
                            try handle.put(key: key, value: value, overwrite: false)
                        }
                    }
                }
                try handle.close()
                let keys = probes(input, seed: seed)
                try expectSameAnswers(table: path, probes: keys, context: "page size \(pageSize)")
                // Deletes compact pages and free overflow pages.
                let writer = try DatabaseHandle(path: path, method: .hash, intent: .readWrite, cacheSize: 1 << 20)
                for entry in input.enumerated() where entry.offset % 3 == 0 {
                    _ = try writer.delete(key: entry.element.key)
                }
                try writer.close()
                try expectSameAnswers(table: path, probes: keys, context: "page size \(pageSize), after deletes")
            }
        }
    }

    @Test("keys that are prefixes of each other, with and without their NUL")
    func prefixKeys() throws {
        // libdb's order on a hash page puts the longer of two keys that share a prefix first;
        // a binary search with the other order misses keys here.
        var keys: [[UInt8]] = []
        for stem in ["a", "ab", "abc", "abd", "b", "ba", "baa", "z", "zz", "zzz", "zza", ""] {
            keys.append(Array(stem.utf8))
            keys.append(Array(stem.utf8) + [0])
            keys.append(Array(stem.utf8) + [0, 0])
        }
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let handle = try DatabaseHandle(path: path, method: .hash, intent: .createExclusive, cacheSize: 1 << 20)
            for (index, key) in keys.enumerated() {
                let value = Array("v\(index)".utf8)
                _ = try key.withUnsafeBytes { k in
                    try value.withUnsafeBytes { v in try handle.put(key: k, value: v, overwrite: false) }
                }
            }
            try handle.close()
            try expectSameAnswers(
                table: path, probes: keys + [Array("abcd".utf8), Array("zzzz".utf8), [0, 0, 0]], context: "prefixes")
        }
    }

    @Test("tables built in bucket order")
    func bucketOrderedTables() throws {
        let input = entries(count: 20000, seed: 7)
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let store = BucketOrderedEntries(
                handling: KeyHandling(folding: .none), duplicates: .warn, displayPath: "map.db", expectedBytes: nil,
                spillDirectory: directory.path)
            for entry in input {
                let nul = entry.key.last == 0
                let key = nul ? Array(entry.key.dropLast()) : entry.key
                _ = try store.insert(
                    key: key, value: entry.value.last == 0 && nul ? Array(entry.value.dropLast()) : entry.value,
                    fold: false, nul: nul, lineNumber: nil, warn: { _ in })
            }
            _ = try store.write(path: path, method: .hash, mode: 0o644, cacheSize: 1 << 20, warn: { _ in })
            try expectSameAnswers(table: path, probes: probes(input, seed: 7), context: "bucket order")
        }
    }

    @Test(
        "tables written by the real postmap, then changed with -i and -d",
        .enabled(if: oracleAvailable, "Postfix is not installed"))
    func postmapTables() throws {
        var generator = SeededGenerator(seed: 11)
        let lines = (0..<5000).map { index in
            "user\(index)-\(generator.next() % 100_000)@Example\(index % 17).COM value\(index)-\(String(repeating: "x", count: Int(generator.next() % (index % 50 == 0 ? 6000 : 60))))"
        }
        try withTemporaryDirectory { directory in
            let config = try makeConfigDirectory(in: directory)
            let environment = ["MAIL_CONFIG": config.path]
            _ = try write(lines[..<3000].joined(separator: "\n") + "\n", to: "map", in: directory)
            let built = try run(realPostmap, ["hash:map"], in: directory, environment: environment)
            #expect(built.status == 0, "\(built)")
            let added = try run(
                realPostmap, ["-i", "hash:map"], in: directory,
                input: Data((lines[3000...].joined(separator: "\n") + "\n").utf8), environment: environment)
            #expect(added.status == 0, "\(added)")
            let keys = lines.map { Array($0.prefix(while: { $0 != " " }).lowercased().utf8) }
            let deleted = try run(
                realPostmap, ["-d", "-", "hash:map"], in: directory,
                input: Data(
                    keys.enumerated().filter { $0.offset % 5 == 0 }.map {
                        String(decoding: $0.element, as: UTF8.self) + "\n"
                    }.joined().utf8),
                environment: environment)
            #expect(deleted.status == 0, "\(deleted)")
            var probeKeys: [[UInt8]] = []
            for key in keys {
                probeKeys.append(key + [0])
                probeKeys.append(key)
            }
            probeKeys += (0..<200).map { Array("nobody\($0)@example.com\u{0}".utf8) }
            try expectSameAnswers(
                table: directory.appendingPathComponent("map.db").path, probes: probeKeys, context: "postmap -i/-d")
        }
    }

    @Test("files it does not understand are left to libdb")
    func unusualFiles() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let handle = try DatabaseHandle(path: path, method: .btree, intent: .createExclusive, cacheSize: 1 << 20)
            try handle.close()
            let hashPath = directory.appendingPathComponent("hash.db").path
            let hash = try DatabaseHandle(path: hashPath, method: .hash, intent: .createExclusive, cacheSize: 1 << 20)
            try hash.close()
            var original = try Data(contentsOf: URL(fileURLWithPath: hashPath))
            for (offset, byte) in [(12, UInt8(0x62)), (16, 8), (24, 1), (26, 1), (48, 1), (92, 0x55)] {
                var changed = original
                changed[offset] = byte
                try changed.write(to: URL(fileURLWithPath: hashPath))
                #expect(mappable(hashPath) == false, "meta byte \(offset) changed")
            }
            original[0] = original[0]  // the untouched file is understood
            try original.write(to: URL(fileURLWithPath: hashPath))
            #expect(mappable(hashPath) == true)
            #expect(mappable(path) == false, "a btree")
            try Data(count: 100).write(to: URL(fileURLWithPath: hashPath))
            #expect(mappable(hashPath) == false, "shorter than a page")
        }
    }

    private func mappable(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        defer { if descriptor >= 0 { close(descriptor) } }
        return descriptor >= 0 && MappedHashTable(descriptor: descriptor) != nil
    }

    @Test("a table replaced in place is mapped again after refresh")
    func refreshAfterChange() throws {
        let first = entries(count: 300, seed: 21)
        let second = entries(count: 300, seed: 22)
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let other = directory.appendingPathComponent("other.db").path
            for (file, input) in [(path, first), (other, second)] {
                let handle = try DatabaseHandle(path: file, method: .hash, intent: .createExclusive, cacheSize: 1 << 20)
                for entry in input {
                    _ = try entry.key.withUnsafeBytes { key in
                        try entry.value.withUnsafeBytes { value in
                            try handle.put(key: key, value: value, overwrite: false)
                        }
                    }
                }
                try handle.close()
            }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            try #require(descriptor >= 0)
            defer { close(descriptor) }
            let mapped = try #require(MappedHashTable(descriptor: descriptor))
            #expect(first[0].key.withUnsafeBytes { mapped.lookup($0) } == .found(first[0].value))
            // Rewritten in place, as postmap does: same inode, new contents.
            let replacement = try Data(contentsOf: URL(fileURLWithPath: other))
            let writer = open(path, O_WRONLY | O_TRUNC)
            try #require(writer >= 0)
            _ = replacement.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
            close(writer)
            #expect(mapped.refresh())
            #expect(second[0].key.withUnsafeBytes { mapped.lookup($0) } == .found(second[0].value))
            #expect(first[0].key.withUnsafeBytes { mapped.lookup($0) } == .absent)
        }
    }

    @Test("damaged files: no crash, and nothing found that libdb would not store")
    func damagedFiles() throws {
        let input = entries(count: 2000, seed: 31)
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let handle = try DatabaseHandle(
                path: path, method: .hash, intent: .createExclusive, cacheSize: 1 << 20, pageSize: 4096)
            for entry in input {
                _ = try entry.key.withUnsafeBytes { key in
                    try entry.value.withUnsafeBytes { value in try handle.put(key: key, value: value, overwrite: false)
                    }
                }
            }
            try handle.close()
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            let pages = original.count / 4096
            var generator = SeededGenerator(seed: 32)
            let keys = probes(Array(input.prefix(300)), seed: 33)
            var decided = 0
            for round in 0..<200 {
                var damaged = original
                switch round % 4 {
                case 0:  // bit flips in one page (never the meta page, so the map is used)
                    let page = 1 + Int(generator.next() % UInt64(pages - 1))
                    for _ in 0..<8 {
                        let offset = page * 4096 + Int(generator.next() % 4096)
                        damaged[offset] ^= UInt8(1 << (generator.next() % 8))
                    }
                case 1:  // a page of garbage
                    let page = 1 + Int(generator.next() % UInt64(pages - 1))
                    for offset in page * 4096..<(page + 1) * 4096 { damaged[offset] = UInt8(generator.next() & 0xFF) }
                case 2:  // a page of zeros
                    let page = 1 + Int(generator.next() % UInt64(pages - 1))
                    damaged.replaceSubrange(page * 4096..<(page + 1) * 4096, with: Data(count: 4096))
                default:  // cut short
                    damaged = damaged.prefix(4096 * (1 + Int(generator.next() % UInt64(pages - 1))))
                }
                try damaged.write(to: URL(fileURLWithPath: path))
                let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                try #require(descriptor >= 0)
                defer { close(descriptor) }
                guard let mapped = MappedHashTable(descriptor: descriptor) else { continue }
                for key in keys {
                    let answer = key.withUnsafeBytes { mapped.lookup($0) }
                    if case .found(let value) = answer {
                        decided += 1
                        // A damaged page can still hold the right record; it never makes one up.
                        #expect(input.contains { $0.key == key && $0.value == value } || round % 4 < 2)
                    }
                }
            }
            #expect(decided > 0, "damaged files still answer from their sound pages")
        }
    }
}
