import Glibc

/// The isolation behind ``TableChecker``: libdb's verifier, and the first read of a table
/// that passed it, run in a child process (a ``CheckWorkerCommand``; for swiftpostmap
/// `swiftpostmap --check-worker FILE`), so that a crash, a runaway allocation or an endless
/// loop inside libdb on a hostile file costs only that child. The child reports on a pipe in
/// small frames; the parent enforces a time limit and turns a child that died or went silent
/// into a finding about the file.

/// One frame of the worker's report: a tag byte, the payload length as a 32-bit
/// little-endian number, then the payload.
enum WorkerFrameTag: UInt8 {
    /// First frame: ``workerGreeting``, so the parent knows the right program answered.
    case hello = 0x48  // H
    /// One of libdb's messages from the verifier (text).
    case message = 0x4D  // M
    /// The verifier's verdict: return code (Int32, 0 = sound), the number of messages left
    /// out (UInt32), then libdb's text for the code.
    case verified = 0x56  // V
    /// The access method of the opened table: `hash`, `btree` or `other`.
    case type = 0x54  // T
    /// One record exactly as stored: key length (UInt32), key bytes, value bytes.
    case record = 0x52  // R
    /// Opening or reading the table failed after verification (text).
    case failure = 0x45  // E
    /// Last frame: the worker finished normally.
    case done = 0x5A  // Z
}

/// The payload of the ``WorkerFrameTag/hello`` frame (protocol version included).
let workerGreeting = "swiftpostmap-check-worker/1"

/// The largest frame payload the parent accepts (a record of 256 MB is no Postfix table).
let maximumWorkerFrame = 256 << 20

// MARK: - The worker (child side)

/// The worker (``TableChecker/runWorker(path:)``): verifies a Berkeley DB file with libdb
/// and, when libdb finds it sound, opens it read-only and sends every record. `operand` is
/// the file's path, or `lmdb:PATH` or `cdb:PATH` for those types, which have no verifier:
/// their records are read at once. Reports on the descriptor that was standard output;
/// standard output itself is pointed at `/dev/null` first, so nothing the library (or
/// anything else) prints can mix with the report.
///
/// - Returns: 0 when the report is complete (whatever it says about the file).
func runCheckWorker(path operand: String) -> Int32 {
    var table: TableType? = nil
    var path = operand
    for type in [TableType.lmdb, .cdb] where operand.hasPrefix(type.rawValue + ":") {
        table = type
        path = String(operand.dropFirst(type.rawValue.count + 1))
    }
    let report = dup(1)
    guard report >= 0 else { return 1 }
    let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
    if devNull >= 0 {
        _ = dup2(devNull, 1)
        close(devNull)
    }
    limitWorkerResources(path: path)
    var out = FrameWriter(descriptor: report)
    out.send(.hello, Array(workerGreeting.utf8))
    out.flush()

    let verification =
        table == nil ? verifyTableFile(path: path) : TableVerification(error: nil, messages: [], omittedMessages: 0)
    for message in verification.messages { out.send(.message, Array(message.utf8)) }
    var verdict = littleEndianBytes(UInt32(bitPattern: verification.error?.code ?? 0))
    verdict += littleEndianBytes(UInt32(clamping: verification.omittedMessages))
    verdict += Array((verification.error?.reason ?? "").utf8)
    out.send(.verified, verdict)
    out.flush()
    guard verification.error == nil else {
        out.send(.done, [])
        out.flush()
        return 0
    }

    // Only now, after libdb's verifier passed, is the file opened as a database.
    let reader: TableReader
    do {
        reader = try TableReader(
            tablePath: path, sourcePath: nil, table: table, typeName: "check", handling: KeyHandling(),
            warn: { _ in })
    } catch {
        out.send(.failure, error.text)
        out.send(.done, [])
        out.flush()
        return 0
    }
    defer { reader.close() }
    out.send(.type, Array((table?.rawValue ?? reader.method?.rawValue ?? "other").utf8))
    out.flush()
    do {
        try reader.forEachRawRecord { key, value in
            out.send(.record, littleEndianBytes(UInt32(key.count)) + key + value)
        }
    } catch {
        out.send(.failure, error.text)
    }
    out.send(.done, [])
    out.flush()
    return 0
}

/// No core files from a worker that crashes on a hostile file; an address-space limit (what
/// the worker has mapped already, plus 16 times the file's size, at least 1 GiB) so a bogus
/// length in a page cannot make libdb allocate without bound; a processor-time limit (a
/// minute, plus a second per megabyte) against a loop that keeps reporting; and the worker
/// ends when its parent does.
private func limitWorkerResources(path: String) {
    exitWhenOrphaned()
    var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
    _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
    var info = stat()
    let size = stat(path, &info) == 0 ? UInt64(max(info.st_size, 0)) : 0
    let growth = max(UInt64(1) << 30, size.multipliedReportingOverflow(by: 16).partialValue)
    // Counted from the address space already mapped: a build with AddressSanitizer has
    // reserved terabytes for its shadow memory before the first line runs.
    let bound = mappedAddressSpace().addingReportingOverflow(growth)
    let limit = bound.overflow ? UInt64.max : bound.partialValue
    var memory = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
    _ = setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &memory)
    let seconds = rlim_t(60 + size / 1_048_576)
    var processor = rlimit(rlim_cur: seconds, rlim_max: seconds + 5)
    _ = setrlimit(__rlimit_resource_t(RLIMIT_CPU.rawValue), &processor)
}

/// The process's mapped address space in bytes (the first field of `/proc/self/statm`, in
/// pages), or 0 when it cannot be read.
private func mappedAddressSpace() -> UInt64 {
    let descriptor = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return 0 }
    defer { close(descriptor) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
    guard count > 0 else { return 0 }
    let pages = buffer[..<count].prefix { $0 >= 0x30 && $0 <= 0x39 }.reduce(UInt64(0)) {
        $0.multipliedReportingOverflow(by: 10).partialValue &+ UInt64($1 - 0x30)
    }
    let pageSize = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 1))
    return pages.multipliedReportingOverflow(by: pageSize).partialValue
}

/// Starts a thread that ends the worker as soon as its parent is gone (killed, say, by a CI
/// job's timeout): the worker is then re-parented, and nobody would read its report.
private func exitWhenOrphaned() {
    let parent = UnsafeMutablePointer<pid_t>.allocate(capacity: 1)
    parent.pointee = getppid()
    var thread = pthread_t()
    let started = pthread_create(
        &thread, nil,
        { argument in
            guard let parent = argument?.assumingMemoryBound(to: pid_t.self).pointee else { return nil }
            while getppid() == parent { usleep(20_000) }
            _exit(1)
        }, parent)
    if started == 0 { pthread_detach(thread) } else { parent.deallocate() }
}

/// Buffers frames and writes them to a descriptor; a write error (the parent went away)
/// drops the rest silently, and `SIGPIPE` ends the worker anyway.
private struct FrameWriter {
    let descriptor: Int32
    private var buffer: [UInt8] = []
    private var broken = false

    init(descriptor: Int32) {
        self.descriptor = descriptor
        buffer.reserveCapacity(1 << 16)
    }

    mutating func send(_ tag: WorkerFrameTag, _ payload: [UInt8]) {
        buffer.append(tag.rawValue)
        buffer += littleEndianBytes(UInt32(clamping: payload.count))
        buffer += payload
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        var offset = 0
        while offset < buffer.count && !broken {
            let written = buffer.withUnsafeBytes { bytes in
                write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                broken = true
            } else {
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// `value` as four little-endian bytes.
func littleEndianBytes(_ value: UInt32) -> [UInt8] {
    [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
}

/// The little-endian 32-bit number at `offset` (the caller checks the bounds).
func littleEndianWord<C: RandomAccessCollection>(_ bytes: C, at offset: C.Index) -> UInt32
where C.Element == UInt8 {
    var value: UInt32 = 0
    var index = offset
    for shift in stride(from: 0, to: 32, by: 8) {
        value |= UInt32(bytes[index]) << UInt32(shift)
        index = bytes.index(after: index)
    }
    return value
}

// MARK: - Reading the report (parent side)

/// Splits the worker's byte stream into frames as it arrives.
struct WorkerFrameReader {
    private var buffer: [UInt8] = []
    private var start = 0

    /// A stream that breaks the protocol.
    struct ProtocolError: Error, Equatable {
        let text: String
    }

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer += bytes
    }

    /// The next complete frame, or `nil` when more bytes are needed.
    mutating func next() throws(ProtocolError) -> (tag: WorkerFrameTag, payload: ArraySlice<UInt8>)? {
        guard buffer.count - start >= 5 else { return nil }
        guard let tag = WorkerFrameTag(rawValue: buffer[start]) else {
            throw ProtocolError(text: "unknown frame tag \(buffer[start])")
        }
        let length = Int(littleEndianWord(buffer, at: start + 1))
        guard length <= maximumWorkerFrame else { throw ProtocolError(text: "frame of \(length) bytes") }
        guard buffer.count - start - 5 >= length else { return nil }
        let payload = buffer[(start + 5)..<(start + 5 + length)]
        start += 5 + length
        return (tag, payload)
    }

    /// Bytes received that do not form a whole frame.
    var hasPartialFrame: Bool { start < buffer.count }
}

// MARK: - Supervising a child process

/// How a supervised child process ended.
enum WorkerEnding: Equatable {
    /// It exited with this status.
    case exited(Int32)
    /// A signal killed it (not ours).
    case signaled(Int32)
    /// It produced nothing for longer than the time limit and was killed.
    case timedOut
    /// The parent stopped it (the consumer refused its output) and killed it.
    case stopped
    /// It could not be started (`errno` of `posix_spawn` or `pipe`).
    case notStarted(Int32)
}

/// Runs `executable` with `arguments` (`arguments[0]` is the child's `argv[0]`), its
/// standard input and error on `/dev/null` and its standard output on a pipe whose bytes go
/// to `consume` as they arrive. The child is killed (`SIGKILL`) when it is silent for
/// `inactivityTimeout` seconds or when `consume` returns `false`; it is always reaped.
///
/// The child's environment is the parent's, with Swift's crash backtracer turned off: a
/// worker that crashes should die at once, not spend seconds symbolicating.
func superviseWorker(
    executable: String, arguments: [String], inactivityTimeout: Double,
    consume: (ArraySlice<UInt8>) -> Bool
) -> WorkerEnding {
    var pipeEnds: [Int32] = [-1, -1]
    guard pipe(&pipeEnds) == 0 else { return .notStarted(errno) }
    let readEnd = pipeEnds[0]
    let writeEnd = pipeEnds[1]
    // Neither end may leak into other children (Glibc's module lacks pipe2).
    _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
    _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
    defer { close(readEnd) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = arguments.map { strdup($0) } + [nil]
    let environment = childEnvironment().map { strdup($0) } + [nil]
    defer {
        for pointer in argv { free(pointer) }
        for pointer in environment { free(pointer) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environment)
    close(writeEnd)
    guard spawned == 0 else { return .notStarted(spawned) }

    var forced: WorkerEnding? = nil
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var deadline = monotonicSeconds() + inactivityTimeout
    reading: while true {
        let remaining = deadline - monotonicSeconds()
        if remaining <= 0 {
            forced = .timedOut
            break
        }
        var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(min(remaining * 1000 + 1, 60_000)))
        if ready < 0 {
            if errno == EINTR { continue }
            forced = .stopped
            break
        }
        if ready == 0 { continue }
        let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            forced = .stopped
            break
        }
        if count == 0 { break reading }
        deadline = monotonicSeconds() + inactivityTimeout
        if !consume(chunk[0..<count]) {
            forced = .stopped
            break
        }
    }
    if let forced {
        _ = kill(pid, SIGKILL)
        _ = reap(pid)
        return forced
    }
    // End of the report: the child is exiting. Give it a moment, then make sure.
    let exitDeadline = monotonicSeconds() + 5
    while monotonicSeconds() < exitDeadline {
        if let status = reap(pid, wait: false) { return ending(status) }
        usleep(2000)
    }
    _ = kill(pid, SIGKILL)
    return reap(pid).map(ending) ?? .stopped
}

/// The parent's environment for a worker, with `SWIFT_BACKTRACE=enable=no`.
private func childEnvironment() -> [String] {
    var result: [String] = []
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if !text.hasPrefix("SWIFT_BACKTRACE=") { result.append(text) }
        pointer += 1
    }
    result.append("SWIFT_BACKTRACE=enable=no")
    return result
}

/// `waitpid` for `pid`: its raw status, or `nil` when it has not ended (`wait: false`) or
/// cannot be waited for.
private func reap(_ pid: pid_t, wait: Bool = true) -> Int32? {
    var status: Int32 = 0
    while true {
        let result = waitpid(pid, &status, wait ? 0 : WNOHANG)
        if result == pid { return status }
        if result < 0 && errno == EINTR { continue }
        return nil
    }
}

/// A raw `waitpid` status as an ending (the `WIFEXITED`/`WTERMSIG` macros, which Swift does
/// not import).
private func ending(_ status: Int32) -> WorkerEnding {
    let signal = status & 0x7F
    return signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
}

/// Seconds on the monotonic clock.
private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// The conventional name of a signal, for messages (`SIGSEGV`), or its number.
func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGILL: "SIGILL",
        SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGTRAP: "SIGTRAP", SIGXCPU: "SIGXCPU",
        SIGPIPE: "SIGPIPE",
    ]
    return names[signal] ?? "signal \(signal)"
}
