/// master.cf as data: the services Postfix runs, each with its command (the daemon) and
/// its `-o name=value` overrides of main.cf parameters.

/// One master.cf service entry.
struct MasterService: Sendable, Equatable {
    /// The service name (a transport name for `unix` services, `[host:]port` for `inet`).
    var name: String
    /// `inet`, `unix`, `unix-dgram`, `fifo` or `pass`.
    var type: String
    /// The daemon the service runs (`smtp`, `virtual`, `pipe`, …).
    var command: String
    /// The `-o name=value` overrides, in order.
    var overrides: [MasterOverride]
    /// The line the entry starts on.
    var line: Int
}

/// One `-o name=value` override of a master.cf service.
struct MasterOverride: Sendable, Equatable {
    var name: String
    var value: String
    /// The physical line the `-o` is written on.
    var line: Int
}

/// A parsed master.cf.
struct MasterConfig: Sendable, Equatable {
    var services: [MasterService] = []

    init(services: [MasterService] = []) {
        self.services = services
    }

    /// Parses master.cf text: comment lines (`#` first), continuation lines (starting with
    /// whitespace), eight fields then the command's arguments, where `-o name=value`,
    /// `-o name = value` split over words, and `-o { name = value }` are overrides.
    init(text: String) {
        // Each logical line with the offset (in characters) where each physical line starts.
        var logical: [(text: String, line: Int, starts: [(offset: Int, line: Int)])] = []
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = String(raw)
            let trimmed = line.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first == " " || line.first == "\t", !logical.isEmpty {
                let offset = logical[logical.count - 1].text.count + 1
                logical[logical.count - 1].text += " " + trimmed
                logical[logical.count - 1].starts.append((offset, number))
            } else {
                logical.append((line, number, [(0, number)]))
            }
        }
        for entry in logical {
            let words = Self.words(entry.text)
            guard words.count >= 8 else { continue }
            var service = MasterService(
                name: words[0].text, type: words[1].text, command: words[7].text, overrides: [], line: entry.line)
            var index = 8
            while index < words.count {
                guard words[index].text == "-o", index + 1 < words.count else {
                    index += 1
                    continue
                }
                index += 1
                var assignment = words[index].text
                if assignment.hasPrefix("{") {
                    assignment = String(assignment.dropFirst().dropLast(assignment.hasSuffix("}") ? 1 : 0))
                } else if !assignment.contains("="), index + 1 < words.count, words[index + 1].text.hasPrefix("=") {
                    index += 1
                    assignment += words[index].text
                    if assignment.hasSuffix("="), index + 1 < words.count {
                        index += 1
                        assignment += words[index].text
                    }
                } else if assignment.hasSuffix("="), index + 1 < words.count, !words[index + 1].text.hasPrefix("-") {
                    index += 1
                    assignment += words[index].text
                }
                if let equals = assignment.firstIndex(of: "=") {
                    let name = assignment[..<equals].trimmingCharacters(in: " \t")
                    let value = assignment[assignment.index(after: equals)...].trimmingCharacters(in: " \t")
                    let offset = words[index].offset
                    let line = entry.starts.last(where: { $0.offset <= offset })?.line ?? entry.line
                    service.overrides.append(MasterOverride(name: name, value: value, line: line))
                }
                index += 1
            }
            services.append(service)
        }
    }

    /// The command of every `unix` service, by name: what runs when a transport is named.
    var transportCommands: [String: String] {
        var commands: [String: String] = [:]
        for service in services where service.type == "unix" { commands[service.name] = service.command }
        return commands
    }

    /// A word of a logical line and where it starts.
    private struct Word {
        var text: String
        var offset: Int
    }

    /// Splits at whitespace, keeping `{ … }` groups together as one word.
    private static func words(_ text: String) -> [Word] {
        var words: [Word] = []
        var current = ""
        var start = 0
        var depth = 0
        for (offset, character) in text.enumerated() {
            if character == "{" { depth += 1 }
            if character == "}" { depth = max(0, depth - 1) }
            if depth == 0 && (character == " " || character == "\t") {
                if !current.isEmpty { words.append(Word(text: current, offset: start)) }
                current = ""
            } else {
                if current.isEmpty { start = offset }
                current.append(character)
            }
        }
        if !current.isEmpty { words.append(Word(text: current, offset: start)) }
        return words
    }
}

extension Substring {
    /// The text without the characters of `set` at either end.
    func trimmingCharacters(in set: String) -> String {
        var slice = self
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
