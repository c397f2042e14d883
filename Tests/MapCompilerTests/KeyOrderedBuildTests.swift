import Foundation
import Glibc
import Testing

@testable import MapCompiler

/// The btree build in key order, in process: what it stores and warns must be what a build in
/// source order stores and warns, whether the runs stay in memory or are spilled and merged,
/// and its order must be libdb's own.
@Suite("Btree tables built in key order")
struct KeyOrderedBuildTests {
    @Test(
        "same records, warnings in source order, in memory, in a few runs and in many",
        arguments: [DuplicatePolicy.warn, .replace, .ignore], [64 << 20, 40_000, 300])
    func sameAsSourceOrder(duplicates: DuplicatePolicy, memoryBudget: Int) throws {
        let input = heldBackSampleEntries(count: 3000, seed: 20_261_206)
        try withTemporaryDirectory { directory in
            let store = KeyOrderedEntries(
                handling: KeyHandling(), duplicates: duplicates, displayPath: "map.db",
                spillDirectory: directory.path, memoryBudget: memoryBudget)
            try expectSameAsSourceOrder(
                input, through: store, method: .btree, duplicates: duplicates, in: directory)
        }
    }

    /// Keys that differ only after eight bytes, by a NUL, by length, or in bytes above 0x7F,
    /// with and without a trailing NUL.
    private func trickyKeys() -> [[UInt8]] {
        var keys: [[UInt8]] = [[], [0], [0, 0], [1], [0xFF], [0xFF, 0], [0x7F], [0x80]]
        for stem in ["a", "abcdefgh", "abcdefghi", "abcdefgh\u{0}", "abcdefgg", "abcdefgi", "ab", "b"] {
            keys.append(Array(stem.utf8))
            keys.append(Array(stem.utf8) + [0])
            keys.append(Array(stem.utf8) + [0xE9, 0x01])
        }
        var generator = SeededGenerator(seed: 99)
        for _ in 0..<500 {
            keys.append((0..<Int(generator.next() % 12)).map { _ in UInt8(generator.next() % 4) * 0x3F })
        }
        return keys
    }

    @Test("the order is libdb's own btree order", arguments: [1 << 20, 200])
    func orderIsLibdbs(memoryBudget: Int) throws {
        let keys = trickyKeys()
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let store = KeyOrderedEntries(
                handling: KeyHandling(), duplicates: .ignore, displayPath: "map.db",
                spillDirectory: directory.path, memoryBudget: memoryBudget)
            for (index, key) in keys.enumerated() {
                _ = try store.insert(
                    key: key, value: Array("\(index)".utf8), fold: false, nul: false, lineNumber: nil, warn: { _ in })
            }
            _ = try store.write(path: path, method: .btree, mode: 0o644, cacheSize: 1 << 20, warn: { _ in })
            var stored: [[UInt8]] = []
            var values: [[UInt8]: [UInt8]] = [:]
            let handle = try DatabaseHandle(path: path, method: .btree, intent: .read, cacheSize: 1 << 20)
            try handle.forEachRecord { key, value in
                stored.append(key)
                values[key] = value
                return true
            }
            try handle.close()
            // libdb reads its btree back in its own order; ours sorts the same way.
            let ours = Array(Set(keys)).sorted { a, b in
                a.withUnsafeBytes { x in b.withUnsafeBytes { y in libdbKeyOrder(x, y) < 0 } }
            }
            #expect(stored == ours)
            // The first of equal keys is kept.
            for key in Set(keys) {
                let first = keys.firstIndex(of: key) ?? -1
                #expect(values[key] == Array("\(first)".utf8))
            }
        }
    }

    @Test(
        "a large source (key order) reads as postmap's table, messages and duplicates included",
        .enabled(if: oracleAvailable, "Postfix is not installed"), arguments: [[], ["-r"], ["-w"]])
    func largeSourceAgainstTheRealPostmap(options: [String]) throws {
        try expectLargeBuildMatchesRealPostmap(type: "btree", options: options)
    }
}
