import Glibc
import MapCompiler

/// Turns a memory fault into a fatal message and exit status 1.
///
/// libdb trusts the page headers of the file it reads: a damaged table (a flipped bit in an
/// index, a length running past its page) can make it read outside its buffers, and then
/// the process gets SIGSEGV or SIGBUS. Whether it does depends on what happens to lie
/// beyond the buffer, so postmap sometimes survives the same file. A signal is the worst
/// answer for a script; this guard prints `PROGRAM: fatal: TABLE: damaged file: …` instead
/// and exits 1. `--check` reads such files in a separate worker and reports what is wrong.
///
/// The handler runs on its own stack (a fault may be a stack overflow) and only writes a
/// message prepared beforehand and calls `_exit`, both safe in a signal handler.
///
/// Other damaged files make libdb loop (postmap hangs on them too): a watchdog thread ends
/// the run the same way when one libdb read call has not returned for ``stallSeconds``.
public enum MemoryFaultGuard {
    /// How long one libdb read call may take: a lookup reads a few pages, even on a slow disk.
    public static let stallSeconds = 10
    /// Installs the handlers for SIGSEGV and SIGBUS; `program` names the messages.
    public static func install(program: String) {
        self.program = program
        prepare(nil)
        let stackSize = 1 << 16
        var stack = stack_t()
        stack.ss_sp = malloc(stackSize)
        stack.ss_size = stackSize
        stack.ss_flags = 0
        if stack.ss_sp != nil { _ = sigaltstack(&stack, nil) }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            if let message = faultMessage { _ = write(2, message, faultMessageLength) }
            _exit(1)
        }
        action.sa_flags = SA_ONSTACK | Int32(bitPattern: UInt32(SA_RESETHAND))
        sigemptyset(&action.sa_mask)
        _ = sigaction(SIGSEGV, &action, nil)
        _ = sigaction(SIGBUS, &action, nil)
    }

    /// A thread that looks once a second whether a libdb read call is under way and has been
    /// the same call for ``stallSeconds``.
    private static func startStallWatchdog() {
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { _ in
                watchForStalls()
                return nil
            }, nil)
        if started == 0 { pthread_detach(thread) }
    }

    /// Names the table being read (`hash:virtual.db`), or nothing.
    static func reading(_ table: String?) {
        guard program != nil else { return }
        prepare(table)
        // Started with the first table, not at start-up: a run that reads none (a build,
        // --help) does not pay for the thread.
        if !watchdogStarted {
            watchdogStarted = true
            startStallWatchdog()
        }
    }

    nonisolated(unsafe) private static var watchdogStarted = false

    nonisolated(unsafe) private static var program: String?

    private static func prepare(_ table: String?) {
        let name = program ?? "swiftpostmap"
        let text =
            table.map {
                "\(name): fatal: \($0): damaged file: reading it made the Berkeley DB library fault;"
                    + " \(name) --check tells what is wrong with it\n"
            } ?? "\(name): fatal: memory fault\n"
        let stall =
            table.map {
                "\(name): fatal: \($0): a read in it did not finish in \(stallSeconds) seconds (a damaged file,"
                    + " or a stalled disk);"
                    + " \(name) --check tells what is wrong with it\n"
            } ?? "\(name): fatal: a table read did not finish in \(stallSeconds) seconds\n"
        // The handlers read these; a fault between the stores shows a shorter text. An old
        // text is never freed: a handler might be reading it.
        let fault = Array(text.utf8)
        faultMessageLength = min(faultMessageLength, fault.count)
        faultMessage = copied(fault)
        faultMessageLength = fault.count
        let stallBytes = Array(stall.utf8)
        stallMessageLength = min(stallMessageLength, stallBytes.count)
        stallMessage = copied(stallBytes)
        stallMessageLength = stallBytes.count
    }
}

/// Checks once a second; ends the process when the same libdb read call has been under
/// way for ``MemoryFaultGuard/stallSeconds``.
private func watchForStalls() {
    var last: UInt64 = 0
    var sameFor = 0
    repeat {
        sleep(1)
        let (started, finished) = ReadProgress.snapshot()
        if started != finished && started == last {
            sameFor += 1
        } else {
            sameFor = 0
            last = started
        }
    } while sameFor < MemoryFaultGuard.stallSeconds
    if let message = stallMessage { _ = write(2, message, stallMessageLength) }
    _exit(1)
}

private func copied(_ bytes: [UInt8]) -> UnsafeMutablePointer<UInt8> {
    let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
    buffer.initialize(from: bytes, count: bytes.count)
    return buffer
}

nonisolated(unsafe) private var faultMessage: UnsafeMutablePointer<UInt8>?
nonisolated(unsafe) private var faultMessageLength = 0
nonisolated(unsafe) private var stallMessage: UnsafeMutablePointer<UInt8>?
nonisolated(unsafe) private var stallMessageLength = 0
