import Glibc

/// The map types that live in memory, answered as Postfix answers them: `static:VALUE` (every
/// key has the value), `inline:{key=value, …}` and `texthash:FILE` (a postmap source read at
/// open time). They can be queried and (but for static) listed; they cannot be written.

final class MemoryTable: LookupTable {
    enum Kind {
        case constant([UInt8])
        case records(MapContents)
    }

    let typedLabel: String
    var tableLabel: String { typedLabel }
    private let kind: Kind
    private let folding: KeyFolding

    /// Opens `static:`, `inline:` or `texthash:` maps; `nil` for any other type.
    ///
    /// - Throws: Postfix's messages for bad syntax, a missing texthash file, and write access
    ///   (`map requires O_RDONLY access mode`, or for static `delete operation is not
    ///   supported`).
    static func open(
        type: String, name: String, handling: KeyHandling, writable: Bool, warn: (Diagnostic) -> Void
    )
        throws(FatalError) -> MemoryTable?
    {
        let label = "\(type):\(name)"
        switch type {
        case "static":
            if writable { throw FatalError("table \(label): delete operation is not supported") }
            var value = name
            if value.hasPrefix("{") {
                guard value.hasSuffix("}") else {
                    throw FatalError("bad static:name syntax: missing '}' in \"\(name)\"")
                }
                value = String(value.dropFirst().dropLast()).trimmedOfBlanks
            }
            return MemoryTable(label: label, kind: .constant(Array(value.utf8)), folding: .none)
        case "inline":
            if writable { throw FatalError("\(label) map requires O_RDONLY access mode") }
            return MemoryTable(
                label: label, kind: .records(try inlineContents(name, label: label, handling: handling)),
                folding: handling.folding)
        case "texthash":
            if writable { throw FatalError("\(label) map requires O_RDONLY access mode") }
            // Postfix's message when the file cannot be opened; a FIFO or a device is refused
            // by the compile below, in the words of a build.
            if case .failure(.system(let code)) = openSourceFile(name).map({ Glibc.close($0) }) {
                throw FatalError("open database \(name): \(systemErrorText(code))")
            }
            let contents = try compileSourceInMemory(
                path: name, format: .postmap, handling: handling, duplicates: .ignore, warn: warn
            ).contents
            return MemoryTable(label: label, kind: .records(contents), folding: handling.folding)
        default:
            return nil
        }
    }

    private init(label: String, kind: Kind, folding: KeyFolding) {
        typedLabel = label
        self.kind = kind
        self.folding = folding
    }

    func lookup(_ key: [UInt8], emptyValueLabel: String?, warn: (Diagnostic) -> Void) throws(FatalError) -> [UInt8]? {
        switch kind {
        case .constant(let value): return value
        case .records(let contents): return contents.record(forFoldedKey: folding.fold(key))?.value
        }
    }

    func forEachRecord(warn: (Diagnostic) -> Void, _ body: ([UInt8], [UInt8]) -> Void) throws(FatalError) {
        switch kind {
        case .constant: throw FatalError("table \(typedLabel): sequence operation is not supported")
        case .records(let contents): for record in contents.records { body(record.key, record.value) }
        }
    }

    func close() {}
}

/// `{key=value, {key = value with spaces}, …}`: elements separated by commas or whitespace,
/// braces around an element protect its whitespace.
private func inlineContents(_ name: String, label: String, handling: KeyHandling) throws(FatalError) -> MapContents {
    let syntax = "need \"inline:{name=value...}\""
    guard name.hasPrefix("{"), name.hasSuffix("}"), name.count > 2 else {
        throw FatalError("bad syntax: \"\(label)\"; \(syntax)")
    }
    let elements = splitPostfixList(String(name.dropFirst().dropLast()))
    guard !elements.isEmpty else { throw FatalError("bad syntax: \"\(label)\"; \(syntax)") }
    var contents = MapContents(origin: .source(path: label))
    for element in elements {
        var text = element
        if text.hasPrefix("{") && text.hasSuffix("}") { text = String(text.dropFirst().dropLast()) }
        guard let equals = text.firstIndex(of: "=") else {
            throw FatalError("missing '=' after attribute name: \"\(label)\"; \(syntax)")
        }
        let key = text[..<equals].trimmedOfBlanks
        let value = text[text.index(after: equals)...].trimmedOfBlanks
        let folded = handling.folding.fold(Array(key.utf8))
        if contents.record(forFoldedKey: folded) == nil {
            contents.append(MapRecord(key: folded, value: Array(value.utf8)))
        }
    }
    return contents
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmedOfBlanks: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
