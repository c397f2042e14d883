import Glibc
import MapCompiler

/// Standard output is buffered (4096 bytes) and written when full or at exit, as postmap's is;
/// what is pending when a fatal error ends the run is dropped, as with postmap. Messages go
/// to standard error at once.
final class ProcessStreams: CommandOutput, CommandInput {
    private var buffer: [UInt8] = []

    func standardOutput(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 4096 { flush() }  // postmap's stdout buffer size
    }

    func discardPendingOutput() {
        buffer.removeAll()
    }

    func standardError(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        writeFully(2, bytes)
    }

    func readAllInput() -> [UInt8] {
        switch readAll(fd: 0) {
        case .success(let bytes): return bytes
        case .failure: return []
        }
    }

    func flush() {
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

umask(0o022)
let arguments = CommandLine.arguments
let program = arguments.first.flatMap { $0.split(separator: "/").last.map(String.init) } ?? "swiftpostmap"
let streams = ProcessStreams()
let command = PostmapCommand(
    program: program, environment: ProcessEnvironment.current, input: streams, output: streams)
let status = command.run(Array(arguments.dropFirst()))
streams.flush()
exit(status)
