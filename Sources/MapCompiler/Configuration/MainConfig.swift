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
    /// The line each parameter is set on (the last setting, which is the one that counts).
    public private(set) var lines: [String: Int] = [:]
    /// The directory main.cf was read from, or `nil` when the defaults were used.
    public let directory: String?

    /// Where Postfix looks for main.cf unless told otherwise.
    public static let defaultDirectory = "/etc/postfix"

    /// The compiled-in defaults (what an empty main.cf gives).
    public init() {
        parameters = [:]
        directory = nil
    }

    /// Parses main.cf text. Problems are fatal with postmap's wording.
    public init(text: [UInt8], path: String, directory: String?, warn: (Diagnostic) -> Void) throws(FatalError) {
        var parameters: [String: String] = [:]
        var lines: [String: Int] = [:]
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
            lines[name] = line.lineNumber
        }
        self.parameters = parameters
        self.lines = lines
        self.directory = directory
    }

    /// Finds and reads main.cf, and checks the parameters postmap uses as Postfix checks
    /// them at start-up (so a broken value is fatal in every mode).
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
            let config = try MainConfig(text: bytes, path: path, directory: directory, warn: warn)
            try config.validate(warn: warn)
            return config
        case .failure(let error):
            if named == nil && error.code == ENOENT { return MainConfig() }
            throw FatalError("open \(path): \(error.text)")
        }
    }

    /// Reads a main.cf named directly (`--main-cf FILE`).
    public static func load(file: String, warn: (Diagnostic) -> Void) throws(FatalError) -> MainConfig {
        switch readWholeFile(file) {
        case .success(let bytes):
            let config = try MainConfig(text: bytes, path: file, directory: directoryName(of: file), warn: warn)
            try config.validate(warn: warn)
            return config
        case .failure(let error):
            throw FatalError("open \(file): \(error.text)")
        }
    }

    /// Sets a parameter (as `-o name=value` would, or a test does).
    public mutating func set(_ name: String, _ value: String) { parameters[name] = value }

    /// Evaluates the parameters postmap and postalias use in the order Postfix's start-up
    /// does (`compatibility_level`, `smtputf8_enable`, `myhostname`, `mydomain`,
    /// `default_database_type`, `berkeley_db_create_buffer_size`,
    /// `berkeley_db_read_buffer_size`): the first bad one is fatal, after the warnings
    /// Postfix prints for it.
    func validate(warn: (Diagnostic) -> Void) throws(FatalError) {
        _ = try compatibilityLevelValue(warn: warn)
        _ = try smtputf8Value(warn: warn)
        let hostname = try hostnameValue(warn: warn)
        try checkHostname("myhostname", hostname, warn: warn)
        try checkHostname("mydomain", try domainValue(hostname: hostname, warn: warn), warn: warn)
        _ = try databaseTypeValue(warn: warn)
        _ = try positiveNumber("berkeley_db_create_buffer_size", default: 16_777_216, warn: warn)
        _ = try positiveNumber("berkeley_db_read_buffer_size", default: 131_072, warn: warn)
    }

    // MARK: - Parameters postmap uses

    /// `default_database_type` (default `hash`).
    public func defaultDatabaseType() throws(FatalError) -> String {
        try databaseTypeValue(warn: { _ in })
    }

    /// Whether UTF-8 mode is on: `smtputf8_enable`, whose default depends on
    /// `compatibility_level` (`no` below level 1, `yes` from 1 on).
    public func smtputf8Enabled() throws(FatalError) -> Bool {
        try smtputf8Value(warn: { _ in })
    }

    /// `berkeley_db_create_buffer_size` (default 16777216).
    public func createBufferSize() throws(FatalError) -> Int {
        try positiveNumber("berkeley_db_create_buffer_size", default: 16_777_216, warn: { _ in })
    }

    /// `berkeley_db_read_buffer_size` (default 131072).
    public func readBufferSize() throws(FatalError) -> Int {
        try positiveNumber("berkeley_db_read_buffer_size", default: 131_072, warn: { _ in })
    }

    /// `lmdb_map_size` (default 16777216): the initial map size of an lmdb table.
    public func lmdbMapSize() throws(FatalError) -> Int {
        try positiveNumber("lmdb_map_size", default: 16_777_216, warn: { _ in })
    }

    /// `myhostname` (default: the system's host name, with `.$mydomain` or `.localdomain`
    /// appended when it has no dot), for postalias's `YP_MASTER_NAME`.
    public func myhostname() throws(FatalError) -> String {
        try hostnameValue(warn: { _ in })
    }

    // MARK: - Evaluation

    private func compatibilityLevelValue(warn: (Diagnostic) -> Void) throws(FatalError) -> Int {
        let value = try expandedBytes("compatibility_level", warn: warn) ?? Array("0".utf8)
        guard let level = compatibilityLevel(value) else {
            throw FatalError(bytes: Array("malformed compatibility level syntax: \"".utf8) + value + [0x22])
        }
        return level
    }

    private func smtputf8Value(warn: (Diagnostic) -> Void) throws(FatalError) -> Bool {
        var value = try expandedBytes("smtputf8_enable", warn: warn) ?? []
        if parameters["smtputf8_enable"] == nil {
            // Postfix's default: ${{$compatibility_level} <level {1} ? {no} : {yes}}
            value = try expand(Array("${{$compatibility_level} <level {1} ? {no} : {yes}}".utf8), warn: warn)
        }
        guard let enabled = postfixBoolean(value) else {
            throw FatalError(bytes: Array("bad boolean configuration: smtputf8_enable = ".utf8) + value)
        }
        return enabled
    }

    private func hostnameValue(warn: (Diagnostic) -> Void) throws(FatalError) -> String {
        if let value = try expandedBytes("myhostname", warn: warn) {
            if value.isEmpty { throw FatalError("bad string length 0 < 1: myhostname = ") }
            return String(decoding: value, as: UTF8.self)
        }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if name.contains(".") { return name }
        let domain = try expandedBytes("mydomain", warn: warn).map { String(decoding: $0, as: UTF8.self) }
        return name + "." + (domain ?? "localdomain")
    }

    /// `mydomain` as Postfix derives it (see ``domainValue(hostname:warn:)``).
    public func mydomain() throws(FatalError) -> String {
        try domainValue(hostname: try hostnameValue(warn: { _ in }), warn: { _ in })
    }

    /// `mydomain`: as set, else Postfix's rule: `myhostname` without its first label when
    /// what is left still has a dot (`mail.example.com` → `example.com`), else `localdomain`.
    private func domainValue(hostname: String, warn: (Diagnostic) -> Void) throws(FatalError) -> String {
        if let value = try expandedBytes("mydomain", warn: warn) {
            if value.isEmpty { throw FatalError("bad string length 0 < 1: mydomain = ") }
            return String(decoding: value, as: UTF8.self)
        }
        guard let dot = hostname.firstIndex(of: "."), hostname[hostname.index(after: dot)...].contains(".") else {
            return "localdomain"
        }
        return String(hostname[hostname.index(after: dot)...])
    }

    /// Postfix's `valid_hostname` check of `myhostname`/`mydomain`, with its warning.
    private func checkHostname(_ name: String, _ value: String, warn: (Diagnostic) -> Void) throws(FatalError) {
        if let problem = hostnameProblem(Array(value.utf8)) {
            warn(Diagnostic(.warning, Array("valid_hostname: ".utf8) + problem))
            throw FatalError(
                "file \(directory ?? MainConfig.defaultDirectory)/main.cf: parameter \(name): bad parameter value: "
                    + value)
        }
    }

    private func databaseTypeValue(warn: (Diagnostic) -> Void) throws(FatalError) -> String {
        let value = try expandedBytes("default_database_type", warn: warn) ?? Array("hash".utf8)
        if value.isEmpty { throw FatalError("bad string length 0 < 1: default_database_type = ") }
        return String(decoding: value, as: UTF8.self)
    }

    /// An `int` parameter with minimum 1: C `strtol` of the whole value, within `int`.
    private func positiveNumber(
        _ name: String, default fallback: Int, warn: (Diagnostic) -> Void
    ) throws(FatalError) -> Int {
        guard let value = try expandedBytes(name, warn: warn) else { return fallback }
        let parsed = cStrtol(value)
        guard !value.isEmpty, parsed.end == value.count, !parsed.overflow, Int32(exactly: parsed.value) != nil else {
            throw FatalError(bytes: Array("bad numerical configuration: \(name) = ".utf8) + value)
        }
        if parsed.value < 1 { throw FatalError("invalid \(name) parameter value \(parsed.value) < 1") }
        return parsed.value
    }

    // MARK: - Values

    /// The value of `name` with `$name` references and Postfix's conditional and relational
    /// forms expanded (see ``MacroExpander``), or `nil` when main.cf does not set it.
    public func expanded(_ name: String) throws(FatalError) -> String? {
        try expandedBytes(name, warn: { _ in }).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `text` with this main.cf's `$name` references expanded (a master.cf `-o` value).
    public func expanding(_ text: String) throws(FatalError) -> String {
        String(decoding: try expand(Array(text.utf8), warn: { _ in }), as: UTF8.self)
    }

    private func expandedBytes(_ name: String, warn: (Diagnostic) -> Void) throws(FatalError) -> [UInt8]? {
        guard let raw = parameters[name] else { return nil }
        return try expand(Array(raw.utf8), warn: warn)
    }

    private func expand(_ text: [UInt8], warn: (Diagnostic) -> Void) throws(FatalError) -> [UInt8] {
        let parameters = self.parameters
        let result = MacroExpander.expand(text) { name in
            // Postfix has evaluated compatibility_level (default 0) before anything else.
            parameters[name].map { Array($0.utf8) } ?? (name == "compatibility_level" ? Array("0".utf8) : nil)
        }
        switch result {
        case .success(let value):
            return value
        case .failure(let failure):
            for warning in failure.warnings { warn(warning) }
            throw failure.fatal
        }
    }
}

/// What Postfix's `valid_hostname` objects to in `name` (labels of letters, digits, `_` and
/// inner `-`, at most 63 bytes each, 255 in all, not all digits), or `nil` when it is valid.
private func hostnameProblem(_ name: [UInt8]) -> [UInt8]? {
    let shown = Array(name.prefix(100))
    if name.isEmpty { return Array("empty hostname".utf8) }
    var labelLength = 0
    var nonNumeric = false
    for (index, byte) in name.enumerated() {
        let next: UInt8? = index + 1 < name.count ? name[index + 1] : nil
        if isASCIIAlphanumeric(byte) || byte == UInt8(ascii: "_") {
            labelLength += 1
            if labelLength > 63 { return Array("hostname label too long: ".utf8) + shown }
            if !(byte >= 0x30 && byte <= 0x39) { nonNumeric = true }
        } else if byte == UInt8(ascii: ".") {
            if labelLength == 0 || next == nil { return Array("misplaced delimiter: ".utf8) + shown }
            labelLength = 0
        } else if byte == UInt8(ascii: "-") {
            labelLength += 1
            if labelLength == 1 || next == nil || next == UInt8(ascii: ".") {
                return Array("misplaced hyphen: ".utf8) + shown
            }
        } else {
            return Array("invalid character \(byte)(decimal): ".utf8) + shown
        }
    }
    if !nonNumeric { return Array("numeric hostname: ".utf8) + shown }
    if name.count > 255 { return Array("bad length \(name.count) for ".utf8) + shown + Array("...".utf8) }
    return nil
}

extension MainConfig {
    /// An integer parameter as Postfix reads it (`sscanf "%d"`: leading whitespace, a sign,
    /// digits and nothing else, within 32 bits) that must be at least 1.
    func positiveIntegerParameter(_ name: String, default fallback: Int) throws(FatalError) -> Int {
        guard let value = try expanded(name) else { return fallback }
        var bytes = Array(value.utf8)[...]
        while let first = bytes.first, first == 0x20 || (0x09...0x0D).contains(first) { bytes.removeFirst() }
        let digits = bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") ? bytes.dropFirst() : bytes
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let number = Int32(String(decoding: bytes, as: UTF8.self))
        else {
            throw FatalError("bad numerical configuration: \(name) = \(value)")
        }
        guard number >= 1 else { throw FatalError("invalid \(name) parameter value \(number) < 1") }
        return Int(number)
    }

    /// A boolean parameter as Postfix reads it: `yes` or `no` in any case, nothing else.
    /// `nil` when main.cf does not set it.
    func booleanParameter(_ name: String) throws(FatalError) -> Bool? {
        guard let value = try expanded(name) else { return nil }
        guard let result = postfixBoolean(Array(value.utf8)) else {
            throw FatalError("bad boolean configuration: \(name) = \(value)")
        }
        return result
    }
}

/// `yes` → true, `no` → false (any case), anything else `nil`.
func postfixBoolean(_ value: [UInt8]) -> Bool? {
    switch asciiLowercased(value) {
    case Array("yes".utf8): return true
    case Array("no".utf8): return false
    default: return nil
    }
}
