import Glibc

/// Where compiled entries go: a table file (``TableWriter``) or memory (``CompiledMap``).
/// Both apply the same folding, NUL convention and duplicate policy.
protocol EntryStore: ~Copyable {
    var duplicates: DuplicatePolicy { get set }

    /// Stores one entry; `false` when the key was already there and the old value was kept.
    /// - Parameters:
    ///   - fold: fold the key (postalias's `YP_*` entries are stored unfolded).
    ///   - nul: override the NUL convention for this entry.
    ///   - lineNumber: where the entry comes from (`nil` for entries a program adds).
    mutating func insert(
        key: [UInt8], value: [UInt8], fold: Bool, nul: Bool?, lineNumber: Int?, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool
}

extension EntryStore where Self: ~Copyable {
    @discardableResult
    mutating func insert(
        key: [UInt8], value: [UInt8], fold: Bool = true, nul: Bool? = nil, lineNumber: Int? = nil,
        warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool {
        try insert(key: key, value: value, fold: fold, nul: nul, lineNumber: lineNumber, warn: warn)
    }
}

/// Writing entries into a table of any format: folding, the trailing-NUL convention and
/// duplicates.
struct TableWriter: EntryStore, ~Copyable {
    private let records: any TableRecordWriter
    let handling: KeyHandling
    var duplicates: DuplicatePolicy
    /// The table as postmap names it in its messages (`NAME.db`, `lmdb:NAME`, `NAME`).
    let displayPath: String
    private var keyBuffer: [UInt8] = []
    private var valueBuffer: [UInt8] = []
    private var nulState: NULLookupState

    /// Whether an entry gets a trailing NUL when no `-N`/`-n` says (every type but cdb).
    private let writesNUL: Bool

    /// The table's type and its name as typed (`lmdb:NAME`), for Postfix's error messages.
    private let table: TableType
    private let typedLabel: String

    init(
        records: any TableRecordWriter, handling: KeyHandling, duplicates: DuplicatePolicy, displayPath: String,
        table: TableType = .hash, typedLabel: String = "", nulByDefault: Bool = true
    ) {
        self.records = records
        self.table = table
        self.typedLabel = typedLabel
        self.writesNUL = handling.nul == .automatic ? nulByDefault : handling.nul.writesNUL
        self.handling = handling
        self.duplicates = duplicates
        self.displayPath = displayPath
        self.nulState = NULLookupState(policy: handling.nul)
    }

    /// Stores one entry.
    ///
    /// - Parameters:
    ///   - fold: fold the key as the table's key handling says (postalias's `YP_*`
    ///     bookkeeping entries are stored unfolded).
    ///   - nul: override the NUL convention for this entry.
    /// - Returns: `false` when the key was already there and the old value was kept.
    @discardableResult
    mutating func insert(
        key: [UInt8], value: [UInt8], fold: Bool, nul: Bool?, lineNumber: Int?, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool {
        let storedKey = fold ? handling.folding.fold(key) : key
        let appendNUL = nul ?? writesNUL
        keyBuffer.removeAll(keepingCapacity: true)
        keyBuffer.append(contentsOf: storedKey)
        valueBuffer.removeAll(keepingCapacity: true)
        valueBuffer.append(contentsOf: value)
        if appendNUL {
            keyBuffer.append(0)
            valueBuffer.append(0)
        }
        let policy = duplicates
        let records = self.records
        let result: Result<PutOutcome, TableAccessError> = keyBuffer.withUnsafeBytes { k in
            valueBuffer.withUnsafeBytes { v in
                Result { () throws(TableAccessError) in try records.putRecord(key: k, value: v, duplicates: policy) }
            }
        }
        let outcome: PutOutcome
        switch result {
        case .success(let value): outcome = value
        case .failure(let error):
            throw FatalError(
                table.accessErrorMessage(.write, typedLabel: typedLabel, tableLabel: displayPath, reason: error.reason))
        }
        if outcome == .keyExists {
            if duplicates == .warn {
                warn(duplicateEntryWarning(table: displayPath, key: storedKey))
            }
            return false
        }
        return true
    }

    /// Deletes `key` (already folded by the caller) under the NUL convention; the first
    /// successful delete fixes the convention for later ones, as in Postfix.
    mutating func delete(key: [UInt8]) throws(FatalError) -> Bool {
        do throws(TableAccessError) {
            for withNUL in nulState.candidates where try records.deleteRecord(key: withNUL ? key + [0] : key) {
                nulState.settle(withNUL: withNUL)
                return true
            }
            return false
        } catch {
            throw FatalError(
                table.accessErrorMessage(.delete, typedLabel: typedLabel, tableLabel: displayPath, reason: error.reason)
            )
        }
    }

    /// Flushes and closes the table; an error means it is not complete on disk.
    consuming func close() throws(FatalError) {
        let path = displayPath
        do throws(TableAccessError) {
            try records.completeTable()
        } catch {
            throw FatalError("error writing \(path): \(error.reason)")
        }
    }
}

/// The sticky trailing-NUL rule of Postfix lookups: with no `-n`/`-N`, try the key with a
/// NUL, then without; the first hit fixes which form is used from then on.
struct NULLookupState {
    private(set) var candidates: [Bool]

    init(policy: NULPolicy) {
        switch policy {
        case .automatic: candidates = [true, false]
        case .withNUL: candidates = [true]
        case .withoutNUL: candidates = [false]
        }
    }

    mutating func settle(withNUL: Bool) { candidates = [withNUL] }
}

/// postmap's warning for an entry dropped because its key is already in the table `table`
/// (`NAME.db` as typed); `key` as stored, without a trailing NUL.
func duplicateEntryWarning<Key: Sequence<UInt8>>(table: String, key: Key) -> Diagnostic {
    Diagnostic(.warning, Array("\(table): duplicate entry: \"".utf8) + Array(key) + [UInt8(ascii: "\"")])
}
