import Glibc

/// The process's own standard input, output and error, for ``PostmapCommand``.
///
/// Standard output is buffered (4096 bytes) and written when full or at ``flush()``, as
/// postmap's is; what is pending when a fatal error ends the run is dropped, as with
/// postmap. Messages go to standard error at once; on a terminal, a progress line is
/// erased before a message is written.
public final class ProcessStreams: CommandOutput, CommandInput {
    private var buffer: [UInt8] = []
    private var progressShown = false

    /// Standard output is a terminal.
    public let standardOutputIsTerminal: Bool
    /// Standard error is a terminal.
    public let standardErrorIsTerminal: Bool

    /// Streams on descriptors 0, 1 and 2.
    public init() {
        standardOutputIsTerminal = isatty(1) == 1
        standardErrorIsTerminal = isatty(2) == 1
    }

    /// Draws `text` over the current line of standard error (a terminal's carriage return and
    /// erase-line), or erases the line for `nil`.
    public func showProgress(_ text: String?) {
        guard standardErrorIsTerminal, text != nil || progressShown else { return }
        var bytes = Array("\r\u{1B}[K".utf8)
        // One row: a line that wrapped could not be erased with the cursor on its last row.
        if let text { bytes.append(contentsOf: String(text.prefix(max(terminalColumns() - 1, 10))).utf8) }
        progressShown = text != nil
        writeFully(2, bytes)
    }

    /// Buffers `bytes`, writing the buffer once it holds 4096 bytes.
    public func standardOutput(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 4096 { flush() }  // postmap's stdout buffer size
    }

    /// Drops the buffered output.
    public func discardPendingOutput() {
        buffer.removeAll()
    }

    /// Writes `line` and a newline to standard error at once.
    public func standardError(_ line: String) {
        showProgress(nil)
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        writeFully(2, bytes)
    }

    /// All of standard input (nothing when it cannot be read).
    public func readAllInput() -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return count < 0 ? [] : bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    /// The width of the terminal on standard error (80 when it does not say).
    private func terminalColumns() -> Int {
        var size = winsize()
        guard ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Writes the buffered standard output (call it before exiting).
    public func flush() {
        writeFully(1, buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}
