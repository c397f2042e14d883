/// Comparing two maps record by record.

/// One difference between two maps, by folded key.
public enum MapDifference: Sendable, Equatable {
    /// Only in the first map.
    case removed(key: [UInt8], value: [UInt8])
    /// Only in the second map.
    case added(key: [UInt8], value: [UInt8])
    /// In both, with different values.
    case changed(key: [UInt8], old: [UInt8], new: [UInt8])

    /// The (folded) key the difference is about.
    public var key: [UInt8] {
        switch self {
        case .removed(let key, _), .added(let key, _), .changed(let key, _, _): return key
        }
    }

    /// The differences from `old` to `new`, sorted by key (bytewise).
    public static func compute(
        from old: MapContents, to new: MapContents, ignoringKeys: Set<String> = []
    )
        -> [MapDifference]
    {
        let ignored = Set(ignoringKeys.map { Array($0.utf8) })
        var changes: [MapDifference] = []
        for record in old.records where !ignored.contains(record.key) {
            if let other = new.record(forFoldedKey: record.key) {
                if other.value != record.value {
                    changes.append(.changed(key: record.key, old: record.value, new: other.value))
                }
            } else {
                changes.append(.removed(key: record.key, value: record.value))
            }
        }
        for record in new.records where !ignored.contains(record.key) && old.record(forFoldedKey: record.key) == nil {
            changes.append(.added(key: record.key, value: record.value))
        }
        return changes.sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}
