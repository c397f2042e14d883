import Glibc
import PostmapCommandLine

umask(0o022)
// A file-size limit (ulimit -f) fails the write with EFBIG, which becomes one fatal
// message and exit 1, instead of killing the process with SIGXFSZ halfway through.
signal(SIGXFSZ, SIG_IGN)
let arguments = CommandLine.arguments
let program = arguments.first.flatMap { $0.split(separator: "/").last.map(String.init) } ?? "swiftpostmap"
// Not in a --check worker: its crash (signal) is what the parent reports on.
if !arguments.contains("--check-worker") { MemoryFaultGuard.install(program: program) }
let streams = ProcessStreams()
let command = PostmapCommand(
    program: program, environment: ProcessEnvironment.current, input: streams, output: streams)
let status = command.run(Array(arguments.dropFirst()))
streams.flush()
exit(status)
