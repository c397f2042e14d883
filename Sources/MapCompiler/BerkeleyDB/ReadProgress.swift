import Synchronization

/// How far this process's calls into libdb to read a table have got, for a watchdog that
/// tells a damaged file that makes libdb loop (a cycle of page links) from a slow disk.
///
/// Every `DB->get`, cursor step, `DB->put` and `DB->del` counts as started before the call
/// and as finished after it (a put or a delete in an existing table reads its pages as a
/// lookup does); the counters only grow.
public enum ReadProgress {
    static let started = Atomic<UInt64>(0)
    static let finished = Atomic<UInt64>(0)

    /// Called with a table's name (`hash:virtual.db`) just before an existing table file is
    /// handed to libdb, for reading or for `-i`/`-d`, so that the process can name the file
    /// if libdb then faults or loops on it. Set once at start-up, before any table is opened;
    /// `nil` (a library user that installs no guard) calls nothing.
    nonisolated(unsafe) public static var tableWillOpen: (@Sendable (_ table: String) -> Void)?

    /// The counters now: a call is under way when `started` is ahead of `finished`.
    public static func snapshot() -> (started: UInt64, finished: UInt64) {
        (started.load(ordering: .relaxed), finished.load(ordering: .relaxed))
    }

    /// Runs one libdb call that reads a table between the two counts.
    @inline(__always)
    static func counting<T>(_ call: () -> T) -> T {
        started.add(1, ordering: .relaxed)
        defer { finished.add(1, ordering: .relaxed) }
        return call()
    }
}
