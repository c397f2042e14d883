import CBerkeleyDB
import Glibc

/// A failed Berkeley DB call: the return code, the operation that produced it and the table.
///
/// A positive ``code`` is a system `errno`; a negative one is one of libdb's own `DB_*`
/// codes. ``reason`` is libdb's text for the code (`db_strerror`), which for `errno` values
/// is the C library's `strerror` text, the wording postmap prints.
struct BerkeleyDBError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The libdb call that failed.
    enum Operation: String, Sendable {
        case createEnvironment = "create DB environment"
        case openEnvironment = "open DB environment"
        case create = "create database handle"
        case configure = "configure database"
        case open = "open database"
        case put = "write"
        case get = "query"
        case delete = "delete"
        case cursor = "sequence"
        case sync = "sync"
        case close = "close database"
        case verify = "verify"
    }

    let code: Int32
    let operation: Operation
    let path: String

    init(code: Int32, operation: Operation, path: String) {
        self.code = code
        self.operation = operation
        self.path = path
    }

    /// libdb's (or the C library's) explanation of ``code``, e.g. `Invalid argument`.
    var reason: String {
        guard let text = db_strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    var description: String { "\(operation.rawValue) \(path): \(reason)" }
}
