import Glibc

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
public enum MemoryFaultGuard {
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

    /// Names the table being read (`hash:virtual.db`), or nothing.
    static func reading(_ table: String?) {
        guard program != nil else { return }
        prepare(table)
    }

    nonisolated(unsafe) private static var program: String?

    private static func prepare(_ table: String?) {
        let name = program ?? "swiftpostmap"
        let text =
            table.map {
                "\(name): fatal: \($0): damaged file: reading it made the Berkeley DB library fault;"
                    + " \(name) --check tells what is wrong with it\n"
            } ?? "\(name): fatal: memory fault\n"
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        buffer.initialize(from: bytes, count: bytes.count)
        // The handler reads these two; a fault between the stores shows the shorter text.
        // The previous text is never freed: a handler might be reading it.
        faultMessageLength = min(faultMessageLength, bytes.count)
        faultMessage = buffer
        faultMessageLength = bytes.count
    }
}

nonisolated(unsafe) private var faultMessage: UnsafeMutablePointer<UInt8>?
nonisolated(unsafe) private var faultMessageLength = 0
