import Glibc

/// The integrity of table files (`--check [type:]file.db...`), see ``TableChecker``.
///
/// Every file goes through, in order, and stops at the first step that fails:
/// 1. plain file checks in this process: it opens, is a regular file, and its meta-data page
///    (read as bytes, not through libdb) names a hash or btree table whose size is a whole
///    number of pages, as many as the meta-data page accounts for;
/// 2. libdb's own verifier (`DB->verify`), then a read-only scan of every record, both in a
///    worker process (``CheckWorkerCommand``, see `CheckWorker.swift`), so that libdb crashing or
///    looping on a hostile file is a finding about the file and not the end of the run;
/// 3. swiftpostmap's checks on the records, here: the stated type, one trailing-NUL
///    convention for all records, keys in the folded form of the run's key handling, no
///    empty keys or values, well-formed UTF-8 in UTF-8 mode, and postalias's `@` entry.
///
/// The file is never written: it is opened read-only, under a shared `flock()` (as Postfix
/// readers take it) for the whole check, and a file that changes meanwhile is reported.

/// How long the worker may stay silent (verifying, or between records) before it is killed:
/// 30 seconds, more for files so large that verifying them takes longer.
func workerTimeout(fileSize: Int) -> Double { max(30, Double(fileSize) / 20_000_000) }

/// How long to wait for a writer's exclusive lock on the table to go away.
let checkLockTimeout = 30.0

/// One finding about a table file.
public struct IntegrityFinding: Equatable, Sendable {
    /// How bad a finding is: an error means Postfix cannot use the table as intended.
    public enum Severity: String, Sendable {
        case error
        case warning
    }

    /// Error or warning.
    public let severity: Severity
    /// What is wrong, in a sentence (without the file name).
    public let message: String
}

/// Everything a check found out about one file.
public struct IntegrityReport: Sendable {
    /// The table file checked (`NAME.db`).
    public let file: String
    /// The table type: for a Berkeley DB file the access method libdb opened it with (or
    /// the meta-data page names), if known.
    public internal(set) var type: TableType? = nil
    /// The number of records read, when the records could be read.
    public internal(set) var records: Int? = nil
    /// `with`, `without`, `mixed` or `none` (no records): the trailing-NUL convention of the
    /// records, when they could be read.
    public internal(set) var nul: String? = nil
    /// The findings, in the order of the checks.
    public internal(set) var findings: [IntegrityFinding] = []

    init(file: String) { self.file = file }

    /// No error (warnings allowed).
    public var ok: Bool { !findings.contains { $0.severity == .error } }

    mutating func error(_ message: String) { findings.append(IntegrityFinding(severity: .error, message: message)) }
    mutating func warning(_ message: String) {
        findings.append(IntegrityFinding(severity: .warning, message: message))
    }
}

/// How a check starts the worker process that runs libdb on an untrusted file: a program
/// that, started as ``arguments`` followed by the table's path, calls
/// ``TableChecker/runWorker(path:)`` with that path and exits with its status.
///
/// swiftpostmap runs itself (`/proc/self/exe`) with `--check-worker`; a program of your own
/// needs such a mode before it can check tables.
public struct CheckWorkerCommand: Sendable, Equatable {
    /// The program to run: a path (not searched for in `PATH`).
    public var executable: String
    /// Its argument vector, `argv[0]` first; the table's path is appended.
    public var arguments: [String]

    /// A worker started as `executable` with `arguments` and then the table's path.
    public init(executable: String, arguments: [String]) {
        self.executable = executable
        self.arguments = arguments
    }
}

/// Checks table files, never writing them and never calling libdb on them in this process.
///
/// Each file is opened read-only under a shared `flock()` (as Postfix readers take it) for
/// the whole check; a file that changes meanwhile is reported. A check resets `SIGCHLD` to
/// its default action, so that the worker can be waited for.
public struct TableChecker: Sendable {
    /// The worker process that verifies and reads each file.
    public var worker: CheckWorkerCommand
    /// The key handling the records must agree with (folded keys, NUL convention, UTF-8).
    public var handling: KeyHandling
    /// `.postalias`: a table must hold postalias's `@` entry.
    public var format: SourceFormat
    /// The type of a bare `NAME` operand (main.cf `default_database_type`).
    public var defaultType: String

    /// A checker that starts `worker` for libdb's part of each check.
    public init(
        worker: CheckWorkerCommand, handling: KeyHandling = KeyHandling(), format: SourceFormat = .postmap,
        defaultType: String = "hash"
    ) {
        self.worker = worker
        self.handling = handling
        self.format = format
        self.defaultType = defaultType
    }

    /// Checks one operand: `TYPE:NAME` (the file `NAME.db`, `NAME.lmdb` or `NAME.cdb`, which
    /// must be of that type, as postmap reads `hash:NAME`), a table file named with its
    /// suffix (`NAME.db` of either Berkeley DB type, `NAME.lmdb`, `NAME.cdb`) or a bare `NAME`
    /// (as postmap reads it: the table of ``defaultType``).
    ///
    /// A file that cannot be checked at all (missing, unreadable, unsupported type) gets an
    /// error finding; nothing is thrown.
    public func check(_ operand: String) -> IntegrityReport {
        // The workers must be waited for: an inherited "ignore SIGCHLD" would reap them unseen.
        signal(SIGCHLD, SIG_DFL)
        let path: String
        let statedType: String?
        if let colon = operand.firstIndex(of: ":"), colon != operand.startIndex, !operand[..<colon].contains("/") {
            let map = MapArgument(operand)
            let table: TableType? =
                if case .indexed(let table) = MapTypeSupport(type: map.explicitType ?? "") { table } else { nil }
            path = map.tablePath(for: table ?? .hash)
            statedType = map.explicitType
        } else if let suffixed = TableType.allCases.first(where: { operand.hasSuffix($0.fileSuffix) }) {
            path = operand
            statedType = suffixed.accessMethod == nil ? suffixed.rawValue : nil
        } else {
            let table: TableType? =
                if case .indexed(let table) = MapTypeSupport(type: defaultType) { table } else { nil }
            path = operand + (table ?? .hash).fileSuffix
            statedType = defaultType
        }
        var report = IntegrityReport(file: path)
        var stated: TableType? = nil
        if let statedType {
            guard case .indexed(let table) = MapTypeSupport(type: statedType) else {
                report.error(
                    "unsupported dictionary type: \(statedType) (--check reads hash, btree, lmdb and cdb tables)")
                return report
            }
            stated = table
        }
        checkTableFile(path: path, stated: stated, operand: operand, checker: self, into: &report)
        return report
    }

    /// The worker's side of a check: verifies the table at `path` with libdb and, when
    /// libdb finds it sound, reads every record, reporting to the parent on standard output
    /// (which must be the pipe the parent reads; see ``CheckWorkerCommand``).
    ///
    /// - Returns: the worker's exit status: 0 when the report is complete, whatever it says.
    public static func runWorker(path: String) -> Int32 { runCheckWorker(path: path) }
}

/// `1 error`, `2 errors`.
private func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// The checks of one table file (see the top of this file) for `checker`, findings added
/// to `report`.
private func checkTableFile(
    path: String, stated: TableType?, operand: String, checker: TableChecker, into report: inout IntegrityReport
) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is rejected just below.
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
    guard descriptor >= 0 else { return report.error("cannot open: \(systemErrorText(errno))") }
    defer { close(descriptor) }
    var before = stat()
    guard fstat(descriptor, &before) == 0 else { return report.error("cannot stat: \(systemErrorText(errno))") }
    guard before.st_mode & S_IFMT == S_IFREG else { return report.error("not a regular file") }
    let size = Int(before.st_size)
    let kindName: String
    switch stated {
    case .lmdb?: kindName = "an lmdb table"
    case .cdb?: kindName = "a cdb table"
    default: kindName = "a Berkeley DB table"
    }
    guard size > 0 else { return report.error("empty file (0 bytes): not \(kindName)") }
    let style: FileLockStyle = stated == .lmdb ? .fcntl : .flock
    if let problem = lockShared(descriptor, style: style, timeout: checkLockTimeout) { return report.error(problem) }
    defer { _ = lockFile(descriptor, style: style, .unlocked) }

    // 1. The meta-data page (Berkeley DB), the meta pages (lmdb) or the pointer table
    //    (cdb), read as bytes.
    var start = [UInt8](repeating: 0, count: min(size, 65536 + 512))
    let count = start.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
    guard count >= 0 else { return report.error("cannot read: \(systemErrorText(errno))") }
    start.removeSubrange(count...)
    let table: TableType
    switch stated {
    case .lmdb?:
        guard checkLMDBHeader(start, size: size, into: &report) else { return }
        table = .lmdb
    case .cdb?:
        if let problem = CDBFileHeader.problem(start, fileSize: size) { return report.error(problem) }
        report.type = .cdb
        table = .cdb
    default:
        guard let method = checkBerkeleyHeader(start, size: size, stated: stated, operand: operand, into: &report)
        else { return }
        table = method == .hash ? .hash : .btree
    }

    // 2. libdb's verifier and the records, in a worker process.
    guard let resolved = resolvedPath(path) else {
        return report.error("cannot resolve the path: \(systemErrorText(errno))")
    }
    var scan = RecordChecker(handling: checker.handling, format: checker.format)
    let workerOperand = table.accessMethod == nil ? "\(table.rawValue):\(resolved)" : resolved
    runWorker(
        checker.worker, operand: workerOperand, table: table, fileSize: size, scan: &scan, into: &report)

    // The file must still be the one that was checked, unchanged.
    var after = stat()
    var named = stat()
    if fstat(descriptor, &after) != 0 || stat(resolved, &named) != 0 || named.st_ino != before.st_ino
        || named.st_dev != before.st_dev || after.st_size != before.st_size
        || after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec
    {
        report.error("the file changed while it was being checked; check it again")
    }

    // 3. Our checks on the records.
    guard scan.complete else { return }
    report.records = scan.records
    report.nul = scan.nulConvention
    report.findings += scan.findings()
}

/// An lmdb file's meta pages: LMDB's magic number, a page size it can have, and a file that
/// holds every page the newer meta page accounts for.
///
/// - Returns: `false` when the records should not be read.
private func checkLMDBHeader(_ start: [UInt8], size: Int, into report: inout IntegrityReport) -> Bool {
    guard let header = LMDBFileHeader(start) else {
        if TableFileHeader(start) != nil {
            report.error("a Berkeley DB file, not an lmdb table")
        } else {
            report.error("not an lmdb file (no LMDB magic number in its first page)")
        }
        return false
    }
    report.type = .lmdb
    guard header.hasValidPageSize else {
        report.error("invalid page size \(header.pageSize) in the meta page")
        return false
    }
    let pages = UInt64(size) / UInt64(header.pageSize)
    if header.lastPage >= pages || header.lastPage == UInt64.max {
        report.error(
            "truncated: the meta page accounts for \(plural(Int(clamping: header.lastPage &+ 1), "page")), the file"
                + " holds \(pages)")
        return false
    }
    return true
}

/// A Berkeley DB file's meta-data page (see the top of this file).
///
/// - Returns: the access method the page names, or `nil` when the records should not be read.
private func checkBerkeleyHeader(
    _ start: [UInt8], size: Int, stated: TableType?, operand: String, into report: inout IntegrityReport
) -> AccessMethod? {
    let start = Array(start.prefix(512))
    guard let header = TableFileHeader(start) else {
        if size < TableFileHeader.minimumLength {
            report.error("too short for a Berkeley DB table (\(size) bytes)")
            return nil
        }
        if LMDBFileHeader.hasMagic(start) {
            report.error("an lmdb file, not a Berkeley DB table (name it lmdb:NAME or NAME.lmdb)")
            return nil
        }
        let text = start.allSatisfy {
            $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20...0x7E).contains($0) || $0 >= 0x80
        }
        report.error(
            "not a Berkeley DB file (no hash or btree magic number)"
                + (text ? "; it looks like text: a source file rather than its table?" : ""))
        return nil
    }
    guard case .table(let headerMethod) = header.kind else {
        if case .otherBerkeleyDB(let name) = header.kind {
            report.error("a Berkeley DB \(name) file, not a hash or btree table")
        }
        return nil
    }
    report.type = headerMethod == .hash ? .hash : .btree
    checkHeader(header, size: size, into: &report)
    guard report.ok else { return nil }
    // A table of the other type is still checked in full.
    if let stated, stated.accessMethod != headerMethod {
        report.error("a \(headerMethod.rawValue) table, not \(stated.rawValue) as stated (\(operand))")
    }
    return headerMethod
}

/// The meta-data page's own consistency with the file.
private func checkHeader(_ header: TableFileHeader, size: Int, into report: inout IntegrityReport) {
    if header.encrypted { report.error("encrypted table: Postfix cannot read it") }
    guard header.hasValidPageSize else {
        return report.error("invalid page size \(header.pageSize) in the meta-data page")
    }
    let pageSize = Int(header.pageSize)
    if size % pageSize != 0 {
        report.error(
            "truncated or padded: \(size) bytes is not a whole number of \(pageSize)-byte pages")
    }
    let pages = size / pageSize
    let expected = Int(header.lastPage) + 1
    if pages < expected {
        report.error(
            "truncated: the meta-data page accounts for \(plural(expected, "page")), the file holds \(pages)")
    }
    if header.byteSwapped {
        report.warning("stored in the other byte order (written on another kind of machine); libdb converts every page")
    }
}

/// Takes a shared lock of `style` on `descriptor`, waiting at most `timeout` seconds for a
/// writer.
///
/// - Returns: `nil` when locked, else the problem.
private func lockShared(_ descriptor: Int32, style: FileLockStyle, timeout: Double) -> String? {
    var waited = 0.0
    func tryLock() -> Bool {
        switch style {
        case .flock: return flock(descriptor, LOCK_SH | LOCK_NB) == 0
        case .fcntl:
            var request = flock()
            request.l_type = Int16(F_RDLCK)
            request.l_whence = Int16(SEEK_SET)
            return fcntl(descriptor, F_SETLK, &request) == 0
        }
    }
    while !tryLock() {
        switch errno {
        case EINTR: continue
        case EWOULDBLOCK, EACCES:
            guard waited < timeout else {
                return "locked by another process (a table being rebuilt?) for more than \(Int(timeout)) seconds"
            }
            usleep(50_000)
            waited += 0.05
        default:
            return "cannot lock: \(systemErrorText(errno))"
        }
    }
    return nil
}

/// The absolute path of `path` with every symbolic link resolved, so that the worker opens
/// the same file (table readers refuse a symbolic link as the last component).
private func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Runs `worker` on `operand` (the table's path, or `lmdb:PATH`/`cdb:PATH`) and feeds its
/// report into `scan` and `report`.
private func runWorker(
    _ worker: CheckWorkerCommand, operand: String, table: TableType, fileSize: Int, scan: inout RecordChecker,
    into report: inout IntegrityReport
) {
    var reader = WorkerFrameReader()
    var state = WorkerProgress(library: table.libraryName)
    let timeout = workerTimeout(fileSize: fileSize)
    let ending = superviseWorker(
        executable: worker.executable, arguments: worker.arguments + [operand],
        inactivityTimeout: timeout
    ) { bytes in
        reader.append(bytes)
        do throws(WorkerFrameReader.ProtocolError) {
            while let (tag, payload) = try reader.next() {
                guard state.accept(tag, payload, scan: &scan) else { return false }
            }
        } catch {
            state.protocolProblem = error.text
            return false
        }
        return true
    }
    if reader.hasPartialFrame && state.protocolProblem == nil && ending == .exited(0) {
        state.protocolProblem = "the report ends inside a frame"
    }
    state.conclude(ending: ending, timeout: timeout, scan: &scan, into: &report)
}

/// What the worker has reported so far.
private struct WorkerProgress {
    /// The library the worker runs on the file (`libdb`, `liblmdb`, `tinycdb`).
    let library: String
    var greeted = false
    var verified = false
    var libraryMessages: [String] = []
    var omittedMessages = 0
    var verifyCode: Int32 = 0
    var verifyReason = ""
    var type: String? = nil
    var failure: String? = nil
    var done = false
    var protocolProblem: String? = nil

    /// Takes one frame; `false` stops the worker (the report does not follow the protocol).
    mutating func accept(_ tag: WorkerFrameTag, _ payload: ArraySlice<UInt8>, scan: inout RecordChecker) -> Bool {
        let text = String(decoding: payload, as: UTF8.self)
        guard greeted || tag == .hello else {
            protocolProblem = "no greeting"
            return false
        }
        switch tag {
        case .hello:
            guard text == workerGreeting else {
                protocolProblem = "unexpected greeting"
                return false
            }
            greeted = true
        case .message:
            libraryMessages.append(text)
        case .verified:
            guard payload.count >= 8 else {
                protocolProblem = "short verdict"
                return false
            }
            verified = true
            verifyCode = Int32(bitPattern: littleEndianWord(payload, at: payload.startIndex))
            omittedMessages = Int(littleEndianWord(payload, at: payload.startIndex + 4))
            verifyReason = String(decoding: payload.dropFirst(8), as: UTF8.self)
        case .type:
            type = text
        case .record:
            guard type != nil, payload.count >= 4 else {
                protocolProblem = "misplaced or short record"
                return false
            }
            let keyLength = Int(littleEndianWord(payload, at: payload.startIndex))
            guard keyLength <= payload.count - 4 else {
                protocolProblem = "record key longer than the record"
                return false
            }
            let keyStart = payload.startIndex + 4
            scan.add(key: payload[keyStart..<(keyStart + keyLength)], value: payload[(keyStart + keyLength)...])
        case .failure:
            failure = text
        case .done:
            done = true
        }
        return true
    }

    /// Turns the report and the way the worker ended into findings.
    func conclude(ending: WorkerEnding, timeout: Double, scan: inout RecordChecker, into report: inout IntegrityReport)
    {
        for message in libraryMessages {
            if verifyCode != 0 {
                report.error("libdb verification: \(message)")
            } else {
                report.warning("libdb verification passed with a message: \(message)")
            }
        }
        if omittedMessages > 0 {
            let severity: IntegrityFinding.Severity = verifyCode != 0 ? .error : .warning
            report.findings.append(
                IntegrityFinding(
                    severity: severity, message: "libdb verification: \(plural(omittedMessages, "more message"))"))
        }
        if verified && verifyCode != 0 && libraryMessages.isEmpty {
            report.error("libdb verification failed: \(verifyReason)")
        }
        let phase =
            !verified
            ? "verifying the file"
            : library == "libdb" ? "reading the records (after verification passed)" : "reading the records"
        switch ending {
        case .notStarted(let code):
            return report.error("cannot start the check worker: \(systemErrorText(code))")
        case .signaled(let signal):
            return report.error(
                "\(library) crashed while \(phase) (\(signalName(signal)) in the worker process): the file is corrupt")
        case .timedOut:
            return report.error(
                "\(library) did not finish \(phase) within \(Int(timeout)) seconds; the worker process was stopped:"
                    + " the file is corrupt or hostile")
        case .stopped:
            return report.error(
                "internal error: the check worker's report is malformed (\(protocolProblem ?? "read error"))")
        case .exited(let status):
            if let protocolProblem {
                return report.error("internal error: the check worker's report is malformed (\(protocolProblem))")
            }
            guard greeted, done else {
                return report.error(
                    "the check worker ended early (exit status \(status)) while \(phase): the file is corrupt"
                        + " or too large")
            }
        }
        guard verified, verifyCode == 0 else { return }
        if let failure {
            return report.error(
                "cannot read the table\(library == "libdb" ? " after verification" : ""): \(failure)")
        }
        switch type {
        case "hash": report.type = .hash
        case "btree": report.type = .btree
        case "lmdb": report.type = .lmdb
        case "cdb": report.type = .cdb
        default:
            report.type = nil
            return report.error("not a hash or btree table (libdb opens it as another access method, such as recno)")
        }
        scan.complete = true
    }
}

// MARK: - Checks on the records

/// How many records failed one check, and the first key that did.
private struct Tally {
    var count = 0
    var first: [UInt8]? = nil

    mutating func note(_ key: ArraySlice<UInt8>) {
        count += 1
        if first == nil { first = Array(key) }
    }

    /// ` (first: "key")`, for messages; `label` replaces `first`.
    func example(_ label: String = "first") -> String {
        first.map { " (\(label): \"\(printable($0, keepUTF8: true))\")" } ?? ""
    }
}

/// swiftpostmap's checks on every record of a table, fed one record at a time.
struct RecordChecker {
    let handling: KeyHandling
    /// `.postalias`: the `@` entry is required.
    let format: SourceFormat
    /// Every record was read (the worker finished normally).
    var complete = false
    private(set) var records = 0
    private var withNUL = Tally()
    private var withoutNUL = Tally()
    private var unfolded = Tally()
    private var emptyKeys = 0
    private var emptyValues = Tally()
    private var keysWithNUL = Tally()
    private var valuesWithNUL = Tally()
    private var unevenNUL = Tally()
    private var invalidKeys = Tally()
    private var invalidValues = Tally()
    private var hasAliasEntry = false

    init(handling: KeyHandling, format: SourceFormat) {
        self.handling = handling
        self.format = format
    }

    /// postalias's bookkeeping entries, stored unfolded and without a trailing NUL whatever
    /// the other records use.
    private static let aliasBookkeeping: Set<[UInt8]> = [Array("YP_LAST_MODIFIED".utf8), Array("YP_MASTER_NAME".utf8)]

    /// Takes one record exactly as stored.
    mutating func add(key rawKey: ArraySlice<UInt8>, value rawValue: ArraySlice<UInt8>) {
        records += 1
        let keyHasNUL = rawKey.last == 0
        let valueHasNUL = rawValue.last == 0
        let key = keyHasNUL ? rawKey.dropLast() : rawKey
        let value = valueHasNUL ? rawValue.dropLast() : rawValue
        if !keyHasNUL && Self.aliasBookkeeping.contains(Array(key)) { return }
        if keyHasNUL { withNUL.note(key) } else { withoutNUL.note(key) }
        if keyHasNUL != valueHasNUL { unevenNUL.note(key) }
        if key.contains(0) { keysWithNUL.note(key) }
        if value.contains(0) { valuesWithNUL.note(key) }
        if key.isEmpty { emptyKeys += 1 }
        if value.isEmpty { emptyValues.note(key) }
        if key.elementsEqual([UInt8(ascii: "@")]) { hasAliasEntry = true }
        if handling.folding != .none, !handling.folding.fold(Array(key)).elementsEqual(key) { unfolded.note(key) }
        if handling.utf8 {
            if !isASCII(key), !isValidUTF8(Array(key)) { invalidKeys.note(key) }
            if !isASCII(value), !isValidUTF8(Array(value)) { invalidValues.note(key) }
        }
    }

    /// `with`, `without`, `mixed` or `none`.
    var nulConvention: String {
        switch (withNUL.count > 0, withoutNUL.count > 0) {
        case (true, true): return "mixed"
        case (true, false): return "with"
        case (false, true): return "without"
        case (false, false): return "none"
        }
    }

    /// The findings about the records seen.
    func findings() -> [IntegrityFinding] {
        var report = IntegrityReport(file: "")
        if withNUL.count > 0 && withoutNUL.count > 0 {
            report.error(
                "mixed trailing-NUL convention: \(plural(withNUL.count, "record")) with a trailing NUL"
                    + "\(withNUL.example()), \(withoutNUL.count) without\(withoutNUL.example()); Postfix keeps to the"
                    + " kind its first successful lookup finds, so the records of the other kind become unreachable")
        } else if handling.nul == .withNUL && withoutNUL.count > 0 {
            report.error("no record has a trailing NUL, but -N says every record has one")
        } else if handling.nul == .withoutNUL && withNUL.count > 0 {
            report.error("every record has a trailing NUL, but -n says none has")
        }
        if unevenNUL.count > 0 {
            report.warning(
                "\(plural(unevenNUL.count, "record")) with a trailing NUL on only one of key and value"
                    + unevenNUL.example())
        }
        if unfolded.count > 0 {
            let scheme = handling.folding == .ascii ? "ASCII" : "Unicode"
            report.error(
                "\(plural(unfolded.count, "key")) not in folded form (\(scheme) case folding), as in a table built"
                    + " with -f: Postfix folds lookup keys, so these entries never match\(unfolded.example());"
                    + " check with -f if the table is meant to keep case")
        }
        if invalidKeys.count > 0 {
            report.error(
                "\(plural(invalidKeys.count, "key")) not valid UTF-8 (UTF-8 mode: Postfix never looks them up)"
                    + invalidKeys.example())
        }
        if invalidValues.count > 0 {
            report.error(
                "\(plural(invalidValues.count, "value")) not valid UTF-8 (UTF-8 mode: looking up their keys"
                    + " fails with an error)" + invalidValues.example("first key"))
        }
        if emptyKeys > 0 {
            report.warning("\(plural(emptyKeys, "record")) with an empty key (Postfix does not look up empty keys)")
        }
        if emptyValues.count > 0 {
            report.warning(
                "\(plural(emptyValues.count, "record")) with an empty value (Postfix answers \"not found\")"
                    + emptyValues.example("first key"))
        }
        if keysWithNUL.count > 0 {
            report.warning(
                "\(plural(keysWithNUL.count, "key")) with a NUL byte before the end (Postfix cannot look them up)"
                    + keysWithNUL.example())
        }
        if valuesWithNUL.count > 0 {
            report.warning(
                "\(plural(valuesWithNUL.count, "value")) with a NUL byte before the end (Postfix sees only the"
                    + " part before it)" + valuesWithNUL.example("first key"))
        }
        if format == .postalias && !hasAliasEntry {
            report.error(
                "no \"@\" entry: postalias writes one into every table (sendmail compatibility); the table was"
                    + " not written by postalias, or not completely")
        }
        return report.findings
    }
}
