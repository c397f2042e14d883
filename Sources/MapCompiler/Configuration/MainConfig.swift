import Glibc

/// The parts of Postfix's `main.cf` that postmap and postalias honour, read without Postfix.
///
/// Where main.cf is: `-c DIR`, else `$MAIL_CONFIG`, else `/etc/postfix`. When neither `-c`
/// nor `MAIL_CONFIG` names a directory and `/etc/postfix/main.cf` does not exist, the
/// compiled-in defaults of Postfix 3.7 apply (as with an empty main.cf); a directory that was
/// named explicitly must contain a readable main.cf, as with postmap.
public struct MainConfig: Sendable, Equatable {
    /// Raw `name = value` pairs as written (continuations joined).
    public private(set) var parameters: [String: String]
    /// The directory main.cf was read from, or `nil` when the defaults were used.
    public let directory: String?

    public static let defaultDirectory = "/etc/postfix"

    /// The compiled-in defaults (what an empty main.cf gives).
    public init() {
        parameters = [:]
        directory = nil
    }

    /// Parses main.cf text. Problems are fatal with postmap's wording.
    public init(text: [UInt8], path: String, directory: String?, warn: (Diagnostic) -> Void) throws(FatalError) {
        var parameters: [String: String] = [:]
        for line in LogicalLineReader(bytes: text) {
            if line.startsWithWhitespace {
                warn(leadingWhitespaceWarning(source: path, line: line))
                continue
            }
            var bytes = line.text
            while let last = bytes.last, isCSpace(last) { bytes.removeLast() }
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else {
                throw FatalError(
                    bytes: Array("\(path), line \(line.lineNumber): missing '=' after attribute name: \"".utf8)
                        + bytes + [UInt8(ascii: "\"")])
            }
            var nameEnd = equals
            while nameEnd > 0 && isCSpace(bytes[nameEnd - 1]) { nameEnd -= 1 }
            if nameEnd == 0 {
                throw FatalError(
                    bytes: Array("\(path), line \(line.lineNumber): missing attribute name: \"".utf8) + bytes
                        + [UInt8(ascii: "\"")])
            }
            var valueStart = equals + 1
            while valueStart < bytes.count && isCSpace(bytes[valueStart]) { valueStart += 1 }
            let name = String(decoding: bytes[..<nameEnd], as: UTF8.self)
            parameters[name] = String(decoding: bytes[valueStart...], as: UTF8.self)
        }
        self.parameters = parameters
        self.directory = directory
    }

    /// Finds and reads main.cf.
    ///
    /// - Parameters:
    ///   - explicitDirectory: the `-c` argument, if any.
    ///   - environment: the process environment (for `MAIL_CONFIG`).
    public static func load(
        explicitDirectory: String?, environment: [String: String], warn: (Diagnostic) -> Void
    ) throws(FatalError) -> MainConfig {
        let named = explicitDirectory ?? environment["MAIL_CONFIG"]
        let directory = named ?? defaultDirectory
        let path = directory + "/main.cf"
        switch readWholeFile(path) {
        case .success(let bytes):
            return try MainConfig(text: bytes, path: path, directory: directory, warn: warn)
        case .failure(let error):
            if named == nil && error.code == ENOENT { return MainConfig() }
            throw FatalError("open \(path): \(error.text)")
        }
    }

    /// Reads a main.cf named directly (`--main-cf FILE`).
    public static func load(file: String, warn: (Diagnostic) -> Void) throws(FatalError) -> MainConfig {
        switch readWholeFile(file) {
        case .success(let bytes):
            return try MainConfig(text: bytes, path: file, directory: directoryName(of: file), warn: warn)
        case .failure(let error):
            throw FatalError("open \(file): \(error.text)")
        }
    }

    /// Sets a parameter (as `-o name=value` would, or a test does).
    public mutating func set(_ name: String, _ value: String) { parameters[name] = value }

    // MARK: - Parameters postmap uses

    /// `default_database_type` (default `hash`).
    public func defaultDatabaseType() throws(FatalError) -> String {
        let value = try expanded("default_database_type") ?? "hash"
        if value.isEmpty { throw FatalError("bad string length 0 < 1: default_database_type = ") }
        return value
    }

    /// Whether UTF-8 mode is on: `smtputf8_enable`, whose default depends on
    /// `compatibility_level` (`no` below level 1, `yes` from 1 on).
    public func smtputf8Enabled() throws(FatalError) -> Bool {
        if let value = try expanded("smtputf8_enable") {
            return try boolean("smtputf8_enable", value)
        }
        let level = try expanded("compatibility_level") ?? "0"
        return compatibilityLevelAtLeastOne(level)
    }

    /// `berkeley_db_create_buffer_size` (default 16777216).
    public func createBufferSize() throws(FatalError) -> Int {
        try number("berkeley_db_create_buffer_size", default: 16_777_216)
    }

    /// `berkeley_db_read_buffer_size` (default 131072).
    public func readBufferSize() throws(FatalError) -> Int {
        try number("berkeley_db_read_buffer_size", default: 131_072)
    }

    /// `myhostname` (default: the system's host name), for postalias's `YP_MASTER_NAME`.
    public func myhostname() throws(FatalError) -> String {
        if let value = try expanded("myhostname") { return value }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Values

    /// The value of `name` with `$name`, `${name}`, `$(name)`, `${name?text}` and
    /// `${name:text}` expanded, or `nil` when main.cf does not set it.
    public func expanded(_ name: String) throws(FatalError) -> String? {
        guard let raw = parameters[name] else { return nil }
        var depth = 0
        return try expand(raw, depth: &depth)
    }

    private func expand(_ text: String, depth: inout Int) throws(FatalError) -> String {
        depth += 1
        if depth > 100 { throw FatalError("unreasonable macro call nesting: \"\(text)\"") }
        defer { depth -= 1 }
        var out = ""
        var chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            guard c == "$", i + 1 < chars.count else {
                out.append(c)
                i += 1
                continue
            }
            let next = chars[i + 1]
            if next == "{" || next == "(" {
                let close: Character = next == "{" ? "}" : ")"
                var level = 0
                var j = i + 1
                var end: Int? = nil
                while j < chars.count {
                    if chars[j] == next { level += 1 }
                    if chars[j] == close {
                        level -= 1
                        if level == 0 {
                            end = j
                            break
                        }
                    }
                    j += 1
                }
                guard let stop = end else {
                    throw FatalError("dictionary mail_dict: macro processing error")
                }
                let inner = String(chars[(i + 2)..<stop])
                if let op = inner.firstIndex(where: { $0 == "?" || $0 == ":" }) {
                    let key = String(inner[..<op])
                    let alternative = String(inner[inner.index(after: op)...])
                    let isSet = !(try lookup(key, depth: &depth) ?? "").isEmpty
                    if (inner[op] == "?") == isSet { out += try expand(alternative, depth: &depth) }
                } else {
                    out += try lookup(inner, depth: &depth) ?? ""
                }
                i = stop + 1
            } else if next.isLetter || next.isNumber || next == "_" {
                var j = i + 1
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                out += try lookup(String(chars[(i + 1)..<j]), depth: &depth) ?? ""
                i = j
            } else {
                out.append(c)
                i += 1
            }
        }
        chars.removeAll()
        return out
    }

    private func lookup(_ name: String, depth: inout Int) throws(FatalError) -> String? {
        guard let raw = parameters[name] else { return nil }
        return try expand(raw, depth: &depth)
    }

    private func boolean(_ name: String, _ value: String) throws(FatalError) -> Bool {
        switch value.lowercased() {
        case "yes", "true": return true
        case "no", "false": return false
        default: throw FatalError("bad boolean configuration: \(name) = \(value)")
        }
    }

    private func number(_ name: String, default fallback: Int) throws(FatalError) -> Int {
        guard let value = try expanded(name) else { return fallback }
        guard let number = Int(value), number >= 0 else {
            throw FatalError("bad numerical configuration: \(name) = \(value)")
        }
        return number
    }
}

/// `compatibility_level` is a dotted number (`0`, `2`, `3.6`); level 1 switched
/// `smtputf8_enable` on.
private func compatibilityLevelAtLeastOne(_ level: String) -> Bool {
    let major = level.split(separator: ".").first.flatMap { Int($0) } ?? 0
    return major >= 1
}

/// Reads a whole file; the error is the `errno` of the failing call.
public func readWholeFile(_ path: String) -> Result<[UInt8], SystemErrno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(SystemErrno(errno)) }
    defer { close(fd) }
    return readAll(fd: fd)
}

/// Reads a descriptor to its end; a directory reads as empty, as it does for postmap.
public func readAll(fd: Int32) -> Result<[UInt8], SystemErrno> {
    var info = stat()
    var capacity = 65536
    if fstat(fd, &info) == 0 {
        if (info.st_mode & S_IFMT) == S_IFDIR { return .success([]) }
        if info.st_size > 0 { capacity = Int(info.st_size) + 1 }
    }
    var bytes = [UInt8](repeating: 0, count: capacity)
    var used = 0
    while true {
        if used == bytes.count { bytes.append(contentsOf: repeatElement(0, count: bytes.count)) }
        let n = bytes.withUnsafeMutableBytes { buffer in
            read(fd, buffer.baseAddress.map { $0 + used }, buffer.count - used)
        }
        if n < 0 {
            if errno == EINTR { continue }
            if errno == EISDIR { return .success([]) }
            return .failure(SystemErrno(errno))
        }
        if n == 0 { break }
        used += n
    }
    bytes.removeSubrange(used...)
    return .success(bytes)
}
