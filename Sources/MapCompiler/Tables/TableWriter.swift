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

/// Writing entries into a table: folding, the trailing-NUL convention and duplicates.
struct TableWriter: EntryStore, ~Copyable {
    private var handle: DatabaseHandle
    let handling: KeyHandling
    var duplicates: DuplicatePolicy
    /// `NAME.db` as typed, for messages.
    let displayPath: String
    private var keyBuffer: [UInt8] = []
    private var valueBuffer: [UInt8] = []
    private var nulState: NULLookupState

    init(handle: consuming DatabaseHandle, handling: KeyHandling, duplicates: DuplicatePolicy, displayPath: String) {
        self.handle = handle
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
        let appendNUL = nul ?? handling.nul.writesNUL
        keyBuffer.removeAll(keepingCapacity: true)
        keyBuffer.append(contentsOf: storedKey)
        valueBuffer.removeAll(keepingCapacity: true)
        valueBuffer.append(contentsOf: value)
        if appendNUL {
            keyBuffer.append(0)
            valueBuffer.append(0)
        }
        let overwrite = duplicates == .replace
        let result: Result<PutOutcome, BerkeleyDBError> = keyBuffer.withUnsafeBytes { k in
            valueBuffer.withUnsafeBytes { v in
                Result { () throws(BerkeleyDBError) in try handle.put(key: k, value: v, overwrite: overwrite) }
            }
        }
        let outcome: PutOutcome
        switch result {
        case .success(let value): outcome = value
        case .failure(let error): throw FatalError("table \(displayPath): write error: \(error.reason)")
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
        do throws(BerkeleyDBError) {
            for withNUL in nulState.candidates where try handle.delete(key: withNUL ? key + [0] : key) {
                nulState.settle(withNUL: withNUL)
                return true
            }
            return false
        } catch {
            throw FatalError("table \(displayPath): delete error: \(error.reason)")
        }
    }

    /// Flushes and closes the table; an error means it is not complete on disk.
    consuming func close() throws(FatalError) {
        let path = displayPath
        do throws(BerkeleyDBError) {
            try handle.close()
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
