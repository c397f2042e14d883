import Foundation
import Glibc
import Testing

@testable import MapCompiler

/// Seeded entries with many duplicates, in both NUL conventions.
func heldBackSampleEntries(count: Int, seed: UInt64) -> [(key: [UInt8], value: [UInt8], nul: Bool)] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { index in
        // Keys stored without a NUL (as postalias stores YP_ keys) have names of their own.
        let nul = generator.next() % 7 != 0
        let key = "\(nul ? "User" : "YP_")\(generator.next() % UInt64(count / 2 + 1))@Example.COM"
        let value = String(repeating: "v\(index)", count: Int(generator.next() % 40) + 1)
        return (Array(key.utf8), Array(value.utf8), nul)
    }
}

/// Builds `map.db` in `directory` from `input` through held-back `store`, holding a warning
/// of its own before every 97th entry; returns the table's records and the warnings (held-back
/// ones too) in the order given out.
func buildHeldBack(
    _ input: [(key: [UInt8], value: [UInt8], nul: Bool)], through store: some HeldBackEntries,
    method: AccessMethod, in directory: URL
) throws -> (records: [[UInt8]: [UInt8]], warnings: [String], dropped: Int) {
    let path = directory.appendingPathComponent("map.db").path
    var warnings: [String] = []
    var entries = store
    for (index, entry) in input.enumerated() {
        if index % 97 == 0 { store.hold(Diagnostic(.warning, Array("held before \(index)".utf8))) }
        _ = try entries.insert(
            key: entry.key, value: entry.value, fold: true, nul: entry.nul, lineNumber: index + 1,
            warn: { warnings.append(String(decoding: $0.text, as: UTF8.self)) })
    }
    #expect(warnings.isEmpty, "warnings are held back until the table is written")
    let dropped = try store.write(
        path: path, method: method, mode: 0o644, cacheSize: 1 << 20,
        warn: { warnings.append(String(decoding: $0.text, as: UTF8.self)) })
    var records: [[UInt8]: [UInt8]] = [:]
    let handle = try DatabaseHandle(path: path, method: method, intent: .read, cacheSize: 1 << 20)
    try handle.forEachRecord { key, value in
        records[key] = value
        return true
    }
    try handle.close()
    return (records, warnings, dropped)
}

/// Builds through held-back `store` and expects exactly what a build in source order stores
/// and warns, and no temporary file left behind.
func expectSameAsSourceOrder(
    _ input: [(key: [UInt8], value: [UInt8], nul: Bool)], through store: some HeldBackEntries,
    method: AccessMethod, duplicates: DuplicatePolicy, in directory: URL
) throws {
    let ours = try buildHeldBack(input, through: store, method: method, in: directory)
    let theirs = try sourceOrderResult(input, duplicates: duplicates)
    #expect(ours.records == theirs.records)
    #expect(ours.warnings == theirs.warnings)
    #expect(ours.dropped == (duplicates == .replace ? 0 : theirs.dropped))
    #expect(ours.dropped > 0 || duplicates == .replace, "the input has duplicates")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    #expect(leftovers == ["map.db"], "the spill file is gone")
}

/// The same entries through the in-memory store that mirrors a source-order build.
func sourceOrderResult(
    _ input: [(key: [UInt8], value: [UInt8], nul: Bool)], duplicates: DuplicatePolicy
) throws -> (records: [[UInt8]: [UInt8]], warnings: [String], dropped: Int) {
    var store = CompiledMapStore(
        origin: .source(path: "map"), handling: KeyHandling(), duplicates: duplicates, displayPath: "map.db")
    var warnings: [String] = []
    var dropped = 0
    for (index, entry) in input.enumerated() {
        if index % 97 == 0 { warnings.append("held before \(index)") }
        let stored = try store.insert(
            key: entry.key, value: entry.value, fold: true, nul: entry.nul, lineNumber: index + 1,
            warn: { warnings.append(String(decoding: $0.text, as: UTF8.self)) })
        if !stored { dropped += 1 }
    }
    var records: [[UInt8]: [UInt8]] = [:]
    for record in store.contents.records {
        let nul: [UInt8] = record.hasNUL ? [0] : []
        records[record.key + nul] = record.value + nul
    }
    return (records, warnings, dropped)
}

/// A large generated source: every 50th key repeats an earlier one, every 1000th line has
/// no value; larger than ``bucketOrderedBuildThreshold``.
func largeHeldBackSource(entries: Int) -> Data {
    var generator = SeededGenerator(seed: 42)
    var text = "# large\n"
    for index in 0..<entries {
        let number = index % 50 == 49 ? Int(generator.next() % UInt64(index)) : index
        text += index % 1000 == 999 ? "lonely\(index)\n" : "User\(number)@Example.COM\tdest\(index)@example.org\n"
    }
    return Data(text.utf8)
}

/// The hash build in bucket order, in process: what it stores and warns must be what a
/// build in source order stores and warns, whatever spills to disk, and the table it creates
/// must be the one it planned (libdb's own hash, no bucket split).
@Suite("Hash tables built in bucket order")
struct BucketOrderedBuildTests {
    @Test(
        "same records, warnings in source order, in memory and spilled",
        arguments: [DuplicatePolicy.warn, .replace, .ignore], [64 << 20, 300])
    func sameAsSourceOrder(duplicates: DuplicatePolicy, memoryBudget: Int) throws {
        let input = heldBackSampleEntries(count: 3000, seed: 20_261_203)
        try withTemporaryDirectory { directory in
            let store = BucketOrderedEntries(
                handling: KeyHandling(), duplicates: duplicates, displayPath: "map.db", expectedBytes: nil,
                spillDirectory: directory.path, memoryBudget: memoryBudget)
            try expectSameAsSourceOrder(
                input, through: store, method: .hash, duplicates: duplicates, in: directory)
        }
    }

    /// The hash meta page: `max_bucket` at byte 72, `h_charkey` (libdb's hash of its own
    /// check string, compared on every open) at 92, `last_pgno` at 32.
    private func metaWords(of path: String) throws -> (lastPage: UInt32, buckets: UInt32, charKey: UInt32) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(96)
        func word(_ offset: Int) -> UInt32 {
            data.subdata(in: offset..<offset + 4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        }
        return (word(32), word(72) + 1, word(92))
    }

    @Test func theTableIsCreatedAtItsPlannedSizeWithLibdbsHash() throws {
        let input = heldBackSampleEntries(count: 20_000, seed: 7)
        try withTemporaryDirectory { directory in
            let store = BucketOrderedEntries(
                handling: KeyHandling(), duplicates: .ignore, displayPath: "map.db", expectedBytes: nil,
                spillDirectory: directory.path)
            _ = try buildHeldBack(input, through: store, method: .hash, in: directory)
            let meta = try metaWords(of: directory.appendingPathComponent("map.db").path)
            #expect(meta.charKey == libdbHash(Array("%$sniglet^&".utf8) + [0]), "our hash is libdb's")
            // One page per bucket after the meta page: no split, no overflow page.
            #expect(meta.lastPage == meta.buckets)
        }
    }

    /// libdb writes a new pre-sized table's last bucket page when it creates it; the build
    /// cuts the file back so that unwritten pages are not read as holes, and must give it its
    /// full size again when the last bucket stays empty.
    @Test func anEmptyLastBucketKeepsTheFileAtItsFullSize() throws {
        // Keys that all land in bucket 0 of 2 (even hashes), so bucket 1 is never written.
        var keys: [[UInt8]] = []
        var index = 0
        while keys.count < 3 {
            let key = Array("even\(index)@example.com".utf8)
            if libdbHash(key + [0]) & 1 == 0 { keys.append(key) }
            index += 1
        }
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("map.db").path
            let store = BucketOrderedEntries(
                handling: KeyHandling(), duplicates: .warn, displayPath: "map.db", expectedBytes: nil,
                spillDirectory: directory.path)
            for key in keys {
                _ = try store.insert(
                    key: key, value: Array("v".utf8), fold: true, nul: true, lineNumber: nil, warn: { _ in })
            }
            _ = try store.write(path: path, method: .hash, mode: 0o644, cacheSize: 1 << 20, warn: { _ in })
            let meta = try metaWords(of: path)
            #expect(meta.buckets == 2)
            var info = stat()
            #expect(stat(path, &info) == 0)
            let pageSize = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(24).suffix(4)
                .withUnsafeBytes { Int($0.loadUnaligned(as: UInt32.self)) }
            #expect(Int(info.st_size) == Int(meta.lastPage + 1) * pageSize, "the file reaches its last page")
            let handle = try DatabaseHandle(path: path, method: .hash, intent: .read, cacheSize: 1 << 20)
            for key in keys { #expect(try handle.get(key: key + [0]) == Array("v".utf8) + [0]) }
            #expect(try handle.get(key: Array("odd@example.com".utf8) + [0]) == nil)
            try handle.close()
        }
    }

    @Test("the sizing is the smallest that fits every bucket on a page", arguments: [10, 1000, 50_000])
    func sizingIsMinimal(count: Int) {
        var generator = SeededGenerator(seed: UInt64(count))
        var loads = BucketLoads(sourceBytes: count * 60)
        var pairs: [(hash: UInt32, cost: Int)] = []
        for _ in 0..<count {
            let key = (0..<Int(generator.next() % 30 + 5)).map { _ in UInt8(generator.next() % 26 + 97) }
            let valueCount = Int(generator.next() % 60)
            let hash = libdbHash(key + [0])
            loads.add(hash: hash, keyCount: key.count + 1, valueCount: valueCount)
            pairs.append((hash, key.count + 1 + valueCount + 6))
        }
        let sizing = loads.sizing(entries: count, defaultPageSize: 4096)
        func largest(_ buckets: Int) -> Int {
            var sums = [Int](repeating: 0, count: buckets)
            for pair in pairs { sums[Int(pair.hash) & (buckets - 1)] += pair.cost }
            return sums.max() ?? 0
        }
        let room = Int(sizing.pageSize) - 26
        #expect(largest(sizing.buckets) <= room)
        #expect(sizing.buckets == 2 || largest(sizing.buckets / 2) > room)
        #expect([4096, 8192, 16384, 32768, 65536].contains(sizing.pageSize))
        #expect(Int(sizing.elementHint - 1) / Int(sizing.fillFactor) + 1 == sizing.buckets)
    }

    @Test func largeItemsKeepTheDefaultPageSize() {
        var loads = BucketLoads(sourceBytes: 10_000)
        loads.add(hash: 1, keyCount: 10, valueCount: 5000)
        #expect(loads.sizing(entries: 1, defaultPageSize: 4096).pageSize == 4096)
    }

    @Test("windows change nothing about lines, numbers and warnings", arguments: [1, 5, 64, 1 << 20])
    func windowsAreInvisible(windowSize: Int) throws {
        let text =
            "# comment\nfirst one\n  continued\n\nsecond two\n# inside\n\tmore\nbad\u{1}line x\n"
            + "third 1\nthird 2\nlonely\n   \nlast value\n  tail"
        let bytes = Array(text.utf8)
        var request = BuildRequest(method: .hash, typeName: "hash", name: "map", input: .file("map"))
        request.duplicates = .warn
        func compile(_ windows: inout SourceWindows) throws -> ([MapRecord], [String]) {
            var store = CompiledMapStore(
                origin: .source(path: "map"), handling: request.handling, duplicates: .warn, displayPath: "map.db")
            var summary = BuildSummary()
            var warnings: [String] = []
            try compileEntries(
                from: &windows, sourceName: "map", request: request, into: &store, summary: &summary,
                warn: { warnings.append(String(decoding: $0.text, as: UTF8.self)) })
            return (store.contents.records, warnings)
        }
        var whole = SourceWindows(bytes: bytes)
        let expected = try compile(&whole)
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("map")
            try Data(bytes).write(to: url)
            let fd = open(url.path, O_RDONLY)
            #expect(fd >= 0)
            defer { close(fd) }
            var windows = SourceWindows(fd: fd, sourceName: "map", windowSize: windowSize)
            let split = try compile(&windows)
            #expect(split.0 == expected.0)
            #expect(split.1 == expected.1)
        }
        #expect(expected.0.map { String(decoding: $0.value, as: UTF8.self) }.first == "one  continued")
        #expect(expected.1.count == 2, "a duplicate and a line without a value: \(expected.1)")
    }

    @Test(
        "a large source (bucket order) reads as postmap's table, messages and duplicates included",
        .enabled(if: oracleAvailable, "Postfix is not installed"), arguments: [[], ["-r"], ["-w"]])
    func largeSourceAgainstTheRealPostmap(options: [String]) throws {
        try expectLargeBuildMatchesRealPostmap(type: "hash", options: options)
    }
}

/// Builds a large generated source (held back and reordered) with the real postmap and with
/// swiftpostmap as `type:map` under `options`: the same status and stderr, and the same
/// `postmap -s` listing of both tables.
func expectLargeBuildMatchesRealPostmap(type: String, options: [String]) throws {
    #expect(oracleInstalled, "the real postmap must be installed under CI")
    guard oracleInstalled else { return }
    let source = largeHeldBackSource(entries: 100_000)
    #expect(source.count > bucketOrderedBuildThreshold, "large enough for the bucket-ordered build")
    try withTemporaryDirectory { root in
        let config = try makeConfigDirectory(in: root.appendingPathComponent("config"))
        let theirs = root.appendingPathComponent("theirs")
        let ours = root.appendingPathComponent("ours")
        for directory in [theirs, ours] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try write(source, to: "map", in: directory)
        }
        let build = ["-c", config.path] + options + ["\(type):map"]
        let real = try run(realPostmap, build, in: theirs)
        let mine = try swiftpostmap(build, in: ours, argv0: "postmap")
        #expect(mine.status == real.status)
        #expect(mine.err == real.err, "the same warnings in the same order")
        #expect(!real.err.isEmpty)
        let list = ["-c", config.path, "-s", "\(type):map"]
        let theirList = try run(realPostmap, list, in: theirs)
        let ourList = try run(realPostmap, list, in: ours)
        #expect(sortedLines(ourList.stdout) == sortedLines(theirList.stdout))
        #expect(sortedLines(ourList.stdout).count > 90_000)
    }
}
