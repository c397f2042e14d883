/// The long-option modes (`--lint`, `--verify`, `--check`, `--diff`, `--resolve`, `--test`):
/// swiftpostmap's own validation features. They never change what a postmap command line
/// does; each returns its exit status and writes text or JSON Lines (`--json`).
struct ExtensionCommands {
    let context: OperationContext

    func run(_ options: ExtensionOptions) throws(FatalError) -> Int32 {
        let operands = context.options.operands
        switch options.mode {
        case .none:
            return 0
        case .verify:
            guard operands.count == 1 else { throw FatalError("usage: --verify [type:]file") }
            return try verify(operands[0], json: options.json)
        case .diff:
            guard operands.count == 2 else { throw FatalError("usage: --diff MAP MAP") }
            return try diff(operands[0], operands[1], json: options.json)
        case .lint:
            guard !operands.isEmpty else { throw FatalError("usage: --lint [type:]file...") }
            return try runLint(operands: operands, options: options, context: context)
        case .check:
            guard !operands.isEmpty else { throw FatalError("usage: --check [type:]file.db...") }
            return try runIntegrityCheck(operands: operands, options: options, context: context)
        case .checkWorker(let path):
            guard operands.isEmpty else { throw FatalError("usage: --check-worker file.db") }
            return runCheckWorker(path: path)
        case .resolve:
            guard !operands.isEmpty else { throw FatalError("usage: --resolve address...") }
            return try runResolve(addresses: operands, options: options, context: context)
        case .test(let file):
            return try runExpectations(file: file, options: options, context: context)
        }
    }

    // MARK: --verify

    /// The table `NAME.db` must hold exactly what compiling `NAME` now would store.
    func verify(_ operand: String, json: Bool) throws(FatalError) -> Int32 {
        let map = MapArgument(operand)
        let type = map.type(default: context.defaultType)
        guard case .berkeley(let method) = MapTypeSupport(type: type) else {
            throw FatalError("unsupported dictionary type: \(type)")
        }
        var ignored: [Diagnostic] = []
        let expected = try compileSourceInMemory(
            path: map.name, format: context.personality == .postalias ? .postalias : .postmap,
            handling: context.handling, duplicates: context.options.duplicates,
            hostname: context.personality == .postalias ? (try context.config.myhostname()) : "localhost",
            warn: { ignored.append($0) }
        ).contents
        let actual = try readTableContents(
            tablePath: map.tablePath, method: method, typeName: type, handling: context.handling,
            warn: context.warn)
        let changes = MapDifference.compute(
            from: expected, to: actual, ignoringKeys: context.personality == .postalias ? ["YP_LAST_MODIFIED"] : [])
        // Printed as a diff from the source (what a build would store) to the table.
        if !json && !changes.isEmpty {
            context.output.standardOutput(Array("--- \(map.name) (source)\n+++ \(map.tablePath) (table)\n".utf8))
        }
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        if !json {
            let verdict =
                changes.isEmpty
                ? "\(map.tablePath): up to date with \(map.name) (\(expected.records.count) entries)"
                : "\(map.tablePath): \(changes.count) difference(s) from \(map.name)"
            context.output.standardError(verdict)
        }
        return changes.isEmpty ? 0 : 1
    }

    // MARK: --diff

    /// A semantic diff of two maps, each a source or a table.
    func diff(_ first: String, _ second: String, json: Bool) throws(FatalError) -> Int32 {
        let format: SourceFormat = context.personality == .postalias ? .postalias : .postmap
        let left = try loadMap(MapOperand(first), format: format, handling: context.handling, warn: context.warn)
        let right = try loadMap(MapOperand(second), format: format, handling: context.handling, warn: context.warn)
        let changes = MapDifference.compute(
            from: left, to: right, ignoringKeys: format == .postalias ? ["YP_LAST_MODIFIED"] : [])
        var out = DifferencePrinter(json: json, output: context.output)
        for change in changes { out.print(change) }
        return changes.isEmpty ? 0 : 1
    }
}
