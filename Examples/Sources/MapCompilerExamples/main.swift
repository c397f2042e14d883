import Glibc
import MapCompiler

// The MapCompiler library in a few lines per task. The library prints nothing: it returns
// values and reports warnings through a closure; this program prints both.
//
//   MapCompilerExamples REPOSITORY-ROOT     (the directory that holds Fixtures/)

guard CommandLine.arguments.count == 2 else {
    print("usage: MapCompilerExamples REPOSITORY-ROOT")
    exit(2)
}
let fixtures = CommandLine.arguments[1] + "/Fixtures"

/// Prints a warning the library reports (postmap would print it on standard error).
func warn(_ diagnostic: Diagnostic) {
    print("  (\(diagnostic.rendered(utf8: true)))")
}

/// Bytes as text, for printing keys and values.
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

do {
    // 1. Compile a source in memory, exactly as a build would store it, and query it.
    print("== Fixtures/virtual compiled in memory")
    let virtual = try MapContents.compile(source: fixtures + "/virtual", warn: warn)
    print("\(virtual.records.count) records")
    let value = virtual.value(forKey: Array("Info@Example.com".utf8))
    print("Info@Example.com -> \(value.map(text) ?? "(not found)")")

    // 2. Compile it into a hash table (virtual.db in a temporary directory), query, list.
    print("\n== Fixtures/virtual compiled into a hash table")
    let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    var template = Array("\(base)/mapcompiler-example.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
        print("cannot create a temporary directory in \(base)")
        exit(1)
    }
    let directory = String(cString: made)
    var request = BuildRequest(
        method: .hash, typeName: "hash", name: directory + "/virtual", input: .file(fixtures + "/virtual"))
    request.keepCallerOwnership = true  // as root, do not build as the source's owner
    let summary = try buildTable(request, warn: warn)
    print("stored \(summary.stored) entries in virtual.db")
    let table = try openLookupTable(MapArgument(type: "hash", name: directory + "/virtual"), warn: warn)
    let found = try table.lookup(Array("sales@example.com".utf8), warn: warn)
    print("sales@example.com -> \(found.map(text) ?? "(not found)")")
    print("listing:")
    try table.forEachRecord(warn: warn) { key, value in print("  \(text(key))\t\(text(value))") }
    table.close()
    unlink(directory + "/virtual.db")
    rmdir(directory)

    // 3. Lint the two sources (the kinds are guessed from the file names).
    print("\n== lint Fixtures/virtual Fixtures/vmailbox")
    let configuration = try MainConfig.load(file: fixtures + "/main.cf", warn: warn)
    let linter = MapLinter(configuration: configuration, configurationKnown: true, handling: KeyHandling())
    let targets = linter.targets(operands: [fixtures + "/virtual", fixtures + "/vmailbox"], kind: nil)
    for finding in try linter.lint(targets, warn: warn) { print(finding.text) }

    // 4. Resolve addresses as Postfix would, given main.cf and the two maps.
    print("\n== resolve with Fixtures/main.cf, Fixtures/virtual, Fixtures/vmailbox")
    let maps = ResolverMaps(
        virtual: [LookupMap(name: "Fixtures/virtual", contents: virtual)],
        mailbox: [
            LookupMap(
                name: "Fixtures/vmailbox", contents: try MapContents.compile(source: fixtures + "/vmailbox", warn: warn)
            )
        ])
    let resolver = try AddressResolver(configuration: configuration, maps: maps, warn: warn)
    for address in ["sales@example.com", "nobody@example.com"] {
        guard let internalForm = parseInputAddress(address) else { continue }
        let resolution = resolver.resolve(internalForm, display: address)
        print("\(address): \(resolution.status.rawValue)" + (resolution.reason.map { " (\($0))" } ?? ""))
        for recipient in resolution.recipients {
            print("  -> \(recipient.address): \(recipient.outcome.rawValue)")
        }
    }
} catch {
    print("error: \(error)")
    exit(1)
}
