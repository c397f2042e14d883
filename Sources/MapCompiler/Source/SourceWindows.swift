import Glibc

/// Reading a source in windows of whole logical lines, so that a build holds a bounded part
/// of a large source in memory instead of all of it.
///
/// A window ends just before a physical line that starts a new logical line: one whose first
/// byte is neither whitespace nor `#` (such a line can neither continue the logical line
/// before it nor be ignored). Every window but the first therefore starts a logical line,
/// and splitting changes nothing about how lines are joined, numbered or warned about.
struct SourceWindows: ~Copyable {
    /// One window: whole logical lines, the number of the physical line before it, and how
    /// many bytes of the source came before it.
    struct Window {
        var bytes: [UInt8]
        var linesBefore: Int
        var bytesBefore = 0
    }

    private enum Origin {
        case descriptor(Int32)
        case memory
    }

    private let origin: Origin
    private let sourceName: String
    private let windowSize: Int
    private var pending: [UInt8]
    private var atEnd: Bool
    private var linesBefore = 0
    private var bytesBefore = 0

    /// Windows over an open file; `sourceName` names it in a read error.
    init(fd: Int32, sourceName: String, windowSize: Int = 8 << 20) {
        origin = .descriptor(fd)
        self.sourceName = sourceName
        self.windowSize = max(windowSize, 1)
        pending = []
        atEnd = false
    }

    /// One window holding `bytes`.
    init(bytes: [UInt8]) {
        origin = .memory
        sourceName = ""
        windowSize = Int.max
        pending = bytes
        atEnd = true
    }

    /// The next window, `nil` after the last one.
    mutating func next() throws(FatalError) -> Window? {
        while true {
            if atEnd {
                guard !pending.isEmpty else { return nil }
                return take(pending.count)
            }
            if pending.count >= windowSize, let cut = lastLogicalLineStart() {
                return take(cut)
            }
            try fill()
        }
    }

    private mutating func take(_ count: Int) -> Window {
        var bytes: [UInt8]
        if count == pending.count {
            bytes = []
            swap(&bytes, &pending)
        } else {
            bytes = Array(pending[..<count])
            pending.removeSubrange(..<count)
        }
        let window = Window(bytes: bytes, linesBefore: linesBefore, bytesBefore: bytesBefore)
        linesBefore += countNewlines(bytes)
        bytesBefore += bytes.count
        return window
    }

    /// Reads up to one more window's worth; sets `atEnd` at the end of the file.
    private mutating func fill() throws(FatalError) {
        guard case .descriptor(let fd) = origin else {
            atEnd = true
            return
        }
        let want = windowSize
        var failure: Int32 = 0
        // Read into uninitialised memory: only what was read is ever looked at.
        let chunk = [UInt8](unsafeUninitializedCapacity: want) { buffer, initialized in
            var used = 0
            while used < want {
                let n = read(fd, buffer.baseAddress.map { $0 + used }, want - used)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EISDIR { atEnd = true } else { failure = errno }
                    break
                }
                if n == 0 {
                    atEnd = true
                    break
                }
                used += n
            }
            initialized = used
        }
        pending.append(contentsOf: chunk)
        if failure != 0 { throw FatalError("read \(sourceName): \(systemErrorText(failure))") }
    }

    /// The offset of the last physical line in `pending` that starts a logical line (never
    /// the first byte, and only when a newline before it is in the buffer).
    private func lastLogicalLineStart() -> Int? {
        var i = pending.count - 1
        while i > 0 {
            if pending[i - 1] == 0x0A {
                let first = pending[i]
                if !isCSpace(first) && first != UInt8(ascii: "#") { return i }
            }
            i -= 1
        }
        return nil
    }
}

private func countNewlines(_ bytes: [UInt8]) -> Int {
    bytes.withUnsafeBufferPointer { buffer in
        guard var p = buffer.baseAddress.map(UnsafeRawPointer.init) else { return 0 }
        var left = buffer.count
        var count = 0
        while left > 0, let hit = memchr(p, 0x0A, left) {
            count += 1
            let next = UnsafeRawPointer(hit) + 1
            left -= next - p
            p = next
        }
        return count
    }
}
