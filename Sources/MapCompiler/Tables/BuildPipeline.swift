import Glibc
import Synchronization

/// Building a table on two cores: one thread reads the source, parses it and folds the keys;
/// the calling thread does nothing but the Berkeley DB inserts. Everything the parsing thread
/// produces (entries, warnings, a change of duplicate policy) travels in source order
/// through one bounded queue, so messages come out exactly as in a single-threaded build.

/// One thing the parsing thread hands to the writing thread.
enum PipelineItem: Sendable {
    /// An entry; the key is already folded when folding was asked for.
    case entry(key: [UInt8], value: [UInt8], nul: Bool?, lineNumber: Int?)
    case warning(Diagnostic)
    /// postalias switches to `.replace` for its own entries in `-i` mode.
    case duplicates(DuplicatePolicy)
    /// Parsing ended with a fatal error.
    case failure(FatalError)
}

/// A bounded queue of batches between one producer and one consumer.
final class PipelineQueue: @unchecked Sendable {
    // Safety: every stored property below is read and written with `mutex` held.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var batches: [[PipelineItem]] = []
    private var finished = false
    private var cancelled = false
    private let capacity: Int

    init(capacity: Int = 16) {
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Adds a batch, waiting while the queue is full. `false` once the consumer gave up.
    func push(_ batch: [PipelineItem]) -> Bool {
        locked {
            while batches.count >= capacity && !cancelled { pthread_cond_wait(changed, mutex) }
            guard !cancelled else { return false }
            batches.append(batch)
            pthread_cond_broadcast(changed)
            return true
        }
    }

    /// No more batches will come.
    func finish() {
        locked {
            finished = true
            pthread_cond_broadcast(changed)
        }
    }

    /// The consumer stops early (an insert failed): the producer's next push returns `false`.
    func cancel() {
        locked {
            cancelled = true
            batches.removeAll()
            pthread_cond_broadcast(changed)
        }
    }

    /// The next batch, waiting for one; `nil` when the producer finished and all were taken.
    func pop() -> [PipelineItem]? {
        locked {
            while batches.isEmpty && !finished { pthread_cond_wait(changed, mutex) }
            guard !batches.isEmpty else { return nil }
            let batch = batches.removeFirst()
            pthread_cond_broadcast(changed)
            return batch
        }
    }
}

/// The producer's side: collects items into batches and pushes them.
final class PipelineBatcher {
    private let queue: PipelineQueue
    private var batch: [PipelineItem] = []
    private(set) var stopped = false
    private static let batchSize = 2048

    init(queue: PipelineQueue) {
        self.queue = queue
        batch.reserveCapacity(Self.batchSize)
    }

    func append(_ item: PipelineItem) {
        guard !stopped else { return }
        batch.append(item)
        if batch.count >= Self.batchSize { flush() }
    }

    func flush() {
        guard !batch.isEmpty, !stopped else { return }
        if !queue.push(batch) { stopped = true }
        batch.removeAll(keepingCapacity: true)
    }
}

/// The ``EntryStore`` the parsing thread fills: it folds keys and queues the entries.
struct PipelineStore: EntryStore {
    let batcher: PipelineBatcher
    let folding: KeyFolding
    var duplicates: DuplicatePolicy {
        didSet { batcher.append(.duplicates(duplicates)) }
    }

    mutating func insert(
        key: [UInt8], value: [UInt8], fold: Bool, nul: Bool?, lineNumber: Int?, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Bool {
        batcher.append(.entry(key: fold ? folding.fold(key) : key, value: value, nul: nul, lineNumber: lineNumber))
        return true
    }
}

/// What the parsing thread needs; handed over once and only read there.
private final class ProducerContext: @unchecked Sendable {
    // Safety: created before the thread starts and never changed afterwards; the queue is
    // itself synchronised.
    // The windows are read only by the parsing thread (or, when it could not be started, by
    // the calling thread instead).
    var windows: SourceWindows
    let sourceName: String
    let request: BuildRequest
    let queue: PipelineQueue
    /// How many bytes of the source the parsing thread has parsed (for progress reports).
    let bytesParsed = Atomic<Int>(0)

    init(windows: consuming SourceWindows, sourceName: String, request: BuildRequest, queue: PipelineQueue) {
        self.windows = windows
        self.sourceName = sourceName
        self.request = request
        self.queue = queue
    }

    func run() {
        let batcher = PipelineBatcher(queue: queue)
        var store = PipelineStore(batcher: batcher, folding: request.handling.folding, duplicates: request.duplicates)
        var summary = BuildSummary()
        do throws(FatalError) {
            try compileEntries(
                from: &windows, sourceName: sourceName, request: request, into: &store, summary: &summary,
                warn: { batcher.append(.warning($0)) }, parsed: { self.bytesParsed.store($0, ordering: .relaxed) })
        } catch {
            batcher.append(.failure(error))
        }
        batcher.flush()
        queue.finish()
    }
}

/// Parses the source on a second thread and stores the entries with `writer` on this one.
/// `progress` hears, on this thread, after every batch of entries, how far the build is.
///
/// - Returns: counts of what was stored.
/// - Throws: the first fatal error of either side; the parsing thread has ended by then.
func compileEntriesInParallel<Store: EntryStore & ~Copyable>(
    from windows: consuming SourceWindows, sourceName: String, request: BuildRequest, into writer: inout Store,
    warn: (Diagnostic) -> Void, sourceBytes: Int? = nil, progress: ((BuildProgress) -> Void)? = nil
) throws(FatalError) -> BuildSummary {
    let queue = PipelineQueue()
    let context = ProducerContext(windows: windows, sourceName: sourceName, request: request, queue: queue)
    var thread = pthread_t()
    let retained = Unmanaged.passRetained(context)
    let started = pthread_create(
        &thread, nil,
        { raw in
            guard let raw else { return nil }
            Unmanaged<ProducerContext>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, retained.toOpaque())
    guard started == 0 else {
        // No second thread: parse on this one (without progress reports).
        retained.release()
        var summary = BuildSummary()
        try compileEntries(
            from: &context.windows, sourceName: sourceName, request: request, into: &writer, summary: &summary,
            warn: warn)
        return summary
    }
    defer { pthread_join(thread, nil) }
    var summary = BuildSummary()
    do throws(FatalError) {
        while let batch = queue.pop() {
            for item in batch {
                switch item {
                case .entry(let key, let value, let nul, let lineNumber):
                    if try writer.insert(
                        key: key, value: value, fold: false, nul: nul, lineNumber: lineNumber, warn: warn)
                    {
                        summary.stored += 1
                    } else {
                        summary.duplicates += 1
                    }
                case .warning(let diagnostic):
                    warn(diagnostic)
                case .duplicates(let policy):
                    writer.duplicates = policy
                case .failure(let error):
                    throw error
                }
            }
            progress?(
                BuildProgress(
                    entries: summary.stored, bytesRead: context.bytesParsed.load(ordering: .relaxed),
                    sourceBytes: sourceBytes))
        }
    } catch {
        queue.cancel()
        throw error
    }
    return summary
}
