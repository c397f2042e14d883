import Foundation
import Testing

/// Helpers shared by the tests: temporary directories, running the built binary and the
/// real Postfix binaries (the oracle).

/// The root of this package (two levels above this file's folder).
let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The built `swiftpostmap`: `$SWIFTPOSTMAP_BIN`, else the one built next to the running test
/// bundle (so `swift test --scratch-path DIR` tests DIR's binary), else `.build/debug/swiftpostmap`.
let swiftpostmapPath: String = {
    if let path = ProcessInfo.processInfo.environment["SWIFTPOSTMAP_BIN"], !path.isEmpty { return path }
    if let bundle = CommandLine.arguments.first {
        let sibling = URL(fileURLWithPath: bundle).deletingLastPathComponent().appendingPathComponent("swiftpostmap")
        if FileManager.default.isExecutableFile(atPath: sibling.path) { return sibling.path }
    }
    return packageRoot.appendingPathComponent(".build/debug/swiftpostmap").path
}()

/// `true` under CI, where a missing oracle is a failure rather than a skip.
let runningUnderCI = ProcessInfo.processInfo.environment["CI"] == "true"

/// The real postmap and postalias, when installed.
let realPostmap = "/usr/sbin/postmap"
let realPostalias = "/usr/sbin/postalias"
let oracleInstalled =
    FileManager.default.isExecutableFile(atPath: realPostmap)
    && FileManager.default.isExecutableFile(atPath: realPostalias)

/// Run oracle tests when Postfix is installed, and always under CI (where the test then
/// fails on the missing binary instead of being skipped).
let oracleAvailable = oracleInstalled || runningUnderCI

/// The result of running a command.
struct ProcessResult: Equatable, CustomStringConvertible {
    var status: Int32
    var stdout: Data
    var stderr: Data

    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
    var description: String { "status \(status)\nstdout: \(out.debugDescription)\nstderr: \(err.debugDescription)" }
}

/// The sanitizer settings of this test run (`make sanitize`), passed through to every
/// program a test runs.
let sanitizerEnvironment: [String: String] = ProcessInfo.processInfo.environment.filter {
    ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"].contains($0.key)
}

/// Runs `executable` with `arguments` in `directory`, feeding `input` on standard input.
@discardableResult
func run(
    _ executable: String, _ arguments: [String], in directory: URL? = nil, input: Data = Data(),
    environment: [String: String] = [:], argv0: String? = nil
) throws -> ProcessResult {
    let process = Process()
    var executablePath = executable
    if let argv0, let directory {
        // Run through a symlink so that the program sees another name in argv[0].
        let link = directory.appendingPathComponent(".bin-\(argv0)/\(argv0)")
        try? FileManager.default.createDirectory(
            at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: link.path) {
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: executable)
        }
        executablePath = link.path
    }
    process.executableURL = URL(fileURLWithPath: executablePath)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"]
    // `make sanitize` sets where the sanitizers write their reports; the programs run
    // under test must report there too, or an error in a child would go unnoticed.
    env.merge(sanitizerEnvironment) { _, passed in passed }
    for (key, value) in environment { env[key] = value }
    process.environment = env
    // Files instead of pipes: no reader threads, no pipe-buffer deadlocks.
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("swiftpostmap-io-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let inURL = scratch.appendingPathComponent("in")
    let outURL = scratch.appendingPathComponent("out")
    let errURL = scratch.appendingPathComponent("err")
    try input.write(to: inURL)
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let stdin = try FileHandle(forReadingFrom: inURL)
    let stdout = try FileHandle(forWritingTo: outURL)
    let stderr = try FileHandle(forWritingTo: errURL)
    defer {
        try? stdin.close()
        try? stdout.close()
        try? stderr.close()
    }
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    process.waitUntilExit()
    let outData = try Data(contentsOf: outURL)
    let errData = try Data(contentsOf: errURL)
    return ProcessResult(status: process.terminationStatus, stdout: outData, stderr: errData)
}

/// Runs the built swiftpostmap (as `argv0` when given, e.g. `postmap`).
@discardableResult
func swiftpostmap(
    _ arguments: [String], in directory: URL, input: Data = Data(), environment: [String: String] = [:],
    argv0: String? = nil
) throws -> ProcessResult {
    try run(swiftpostmapPath, arguments, in: directory, input: input, environment: environment, argv0: argv0)
}

/// Creates a fresh temporary directory, passes it to `body`, and removes it afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "swiftpostmap-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Writes `content` to `name` inside `directory`.
@discardableResult
func write(_ content: String, to name: String, in directory: URL) throws -> URL {
    try write(Data(content.utf8), to: name, in: directory)
}

@discardableResult
func write(_ content: Data, to name: String, in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try content.write(to: url)
    return url
}

/// A config directory with the reference host's main.cf (UTF-8 mode on).
func makeConfigDirectory(in directory: URL, extra: String = "") throws -> URL {
    let config = directory.appendingPathComponent("config")
    try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
    let file = try write("compatibility_level = 3.6\nmyhostname = vm.localdomain\n" + extra, to: "main.cf", in: config)
    // Postfix programs wait a second or two when main.cf changed within the current second;
    // an older timestamp keeps the oracle runs fast.
    try FileManager.default.setAttributes(
        [.modificationDate: Date(timeIntervalSinceNow: -120)], ofItemAtPath: file.path)
    return config
}

/// Sorted lines, for comparing `-s` listings whose order is not promised.
func sortedLines(_ data: Data) -> [Data] {
    data.split(separator: 0x0A, omittingEmptySubsequences: false).map { Data($0) }.sorted {
        $0.lexicographicallyPrecedes($1)
    }
}

/// Replaces a leading `PROGRAM:` on every line with `PROG:` so messages of two programs
/// can be compared.
func normalizingProgramName(_ data: Data, _ program: String) -> String {
    String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map { line in
        line.hasPrefix(program + ":") ? "PROG:" + line.dropFirst(program.count + 1) : String(line)
    }.joined(separator: "\n")
}

/// A small seeded generator (SplitMix64), so generated inputs are repeatable.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Sets main.cf's modification time a minute back: Postfix waits (up to about two seconds)
/// before reading a main.cf that was modified within the current second.
func backdated(_ config: URL) throws -> URL {
    try FileManager.default.setAttributes(
        [.modificationDate: Date(timeIntervalSinceNow: -60)],
        ofItemAtPath: config.appendingPathComponent("main.cf").path)
    return config
}
