import Synchronization

/// How far this process's calls into libdb to read a table have got, for a watchdog that
/// tells a damaged file that makes libdb loop (a cycle of page links) from a slow disk.
///
/// Every `DB->get` and cursor step counts as started before the call and as finished after
/// it; the counters only grow.
public enum ReadProgress {
    static let started = Atomic<UInt64>(0)
    static let finished = Atomic<UInt64>(0)

    /// The counters now: a call is under way when `started` is ahead of `finished`.
    public static func snapshot() -> (started: UInt64, finished: UInt64) {
        (started.load(ordering: .relaxed), finished.load(ordering: .relaxed))
    }

    /// Runs one libdb read call between the two counts.
    @inline(__always)
    static func counting<T>(_ call: () -> T) -> T {
        started.add(1, ordering: .relaxed)
        defer { finished.add(1, ordering: .relaxed) }
        return call()
    }
}
