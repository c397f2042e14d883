import Glibc
import MapCompiler
import Synchronization

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
/// message prepared beforehand and calls `_exit`, both safe in a signal handler. Once a
/// table file is open it also takes SIGABRT: glibc aborts when libdb, misled by a damaged
/// page, corrupts the heap (seen with `-i` on a mutated btree).
///
/// Other damaged files make libdb loop (postmap hangs on them too): a watchdog thread ends
/// the run the same way when one libdb call on a table has not returned for ``stallSeconds``.
///
/// The library names each table file before libdb opens it (`ReadProgress.tableWillOpen`),
/// in every mode that reads an existing table: lookups, listings, `-i`, `-d` and the
/// validation modes.
public enum MemoryFaultGuard {
    /// How long one libdb read call may take: a lookup reads a few pages, even on a slow disk.
    public static let stallSeconds = 10
    /// Installs the handlers for SIGSEGV and SIGBUS; `program` names the messages.
    public static func install(program: String) {
        self.program = program
        prepare(nil)
        let stackSize = 1 << 16
        var stack = stack_t()
        alternateStack = malloc(stackSize)
        stack.ss_sp = alternateStack
        stack.ss_size = stackSize
        stack.ss_flags = 0
        if stack.ss_sp != nil { _ = sigaltstack(&stack, nil) }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            MessagePair.write(stall: false)
            _exit(1)
        }
        action.sa_flags = SA_ONSTACK | Int32(bitPattern: UInt32(SA_RESETHAND))
        sigemptyset(&action.sa_mask)
        _ = sigaction(SIGSEGV, &action, nil)
        _ = sigaction(SIGBUS, &action, nil)
        faultAction = action
        ReadProgress.tableWillOpen = { reading($0) }
    }

    /// The signal stack (kept here: the kernel's reference is not one a leak checker sees).
    nonisolated(unsafe) private static var alternateStack: UnsafeMutableRawPointer?

    /// The handler, for SIGABRT once a table is open.
    nonisolated(unsafe) private static var faultAction: sigaction?

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
            if var action = faultAction { _ = sigaction(SIGABRT, &action, nil) }
        }
    }

    nonisolated(unsafe) private static var watchdogStarted = false

    nonisolated(unsafe) private static var program: String?

    /// The messages prepared for each table named so far, kept for the life of the process
    /// (a handler may be reading the one published last).
    nonisolated(unsafe) private static var preparedMessages: [String: UnsafeMutableRawPointer] = [:]

    /// Publishes the messages that name `table`: one buffer holding both texts, swapped in
    /// with one atomic store, so a handler sees either the old pair or the new one.
    private static func prepare(_ table: String?) {
        let key = table ?? ""
        if let buffer = preparedMessages[key] {
            publishedMessages.store(Int(bitPattern: buffer), ordering: .releasing)
            return
        }
        let name = program ?? "swiftpostmap"
        let fault =
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
        let buffer = MessagePair.make(fault: Array(fault.utf8), stall: Array(stall.utf8))
        preparedMessages[key] = buffer
        publishedMessages.store(Int(bitPattern: buffer), ordering: .releasing)
    }
}

/// The address of the published ``MessagePair`` buffer (0 before the first).
private let publishedMessages = Atomic<Int>(0)

/// One buffer with the fault and the stall message: two lengths, then the two texts.
private enum MessagePair {
    static func make(fault: [UInt8], stall: [UInt8]) -> UnsafeMutableRawPointer {
        let header = 2 * MemoryLayout<Int>.stride
        let buffer = UnsafeMutableRawPointer.allocate(
            byteCount: header + fault.count + stall.count, alignment: MemoryLayout<Int>.alignment)
        buffer.storeBytes(of: fault.count, as: Int.self)
        buffer.storeBytes(of: stall.count, toByteOffset: MemoryLayout<Int>.stride, as: Int.self)
        let texts = UnsafeMutableRawBufferPointer(start: buffer + header, count: fault.count + stall.count)
        (fault + stall).withUnsafeBytes { texts.copyMemory(from: $0) }
        return buffer
    }

    /// Writes the published fault (or stall) message to standard error; safe in a signal
    /// handler (one atomic load, one write).
    static func write(stall: Bool) {
        guard let buffer = UnsafeMutableRawPointer(bitPattern: publishedMessages.load(ordering: .acquiring)) else {
            return
        }
        let header = 2 * MemoryLayout<Int>.stride
        let faultLength = buffer.load(as: Int.self)
        let stallLength = buffer.load(fromByteOffset: MemoryLayout<Int>.stride, as: Int.self)
        if stall {
            _ = Glibc.write(2, buffer + header + faultLength, stallLength)
        } else {
            _ = Glibc.write(2, buffer + header, faultLength)
        }
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
    MessagePair.write(stall: true)
    _exit(1)
}
