/// The expansion of `$name` in main.cf values, with the syntax and messages Postfix 3.7 has
/// (checked against the real postmap), recursing into the values of the names used:
///
/// * `$name`, `${name}`, `$(name)`; `$$` is a literal `$`;
/// * `${name?text}`, `${name:text}`, and with braced operands `${name?{text}}`,
///   `${name?{text1}:{text2}}`, `${name:{text}}` (whitespace around a braced operand is
///   ignored);
/// * relational expressions `${{text1} OP {text2} ? {text3} : {text4}}` with `==`, `!=`, `<`,
///   `<=`, `>`, `>=` (numeric when both sides are all digits, else byte-wise), and the same
///   operators with the suffix `level` comparing compatibility levels (`<level`).
///
/// Syntax errors give Postfix's warnings and then `dictionary mail_dict: macro processing
/// error`; an expansion that succeeds gives no warning. All work is on bytes.
struct MacroExpander {
    /// The raw value of a name, or `nil` when it is not defined.
    let lookup: (String) -> [UInt8]?
    private(set) var warnings: [Diagnostic] = []
    private var status: Status = []
    private var level = 0
    /// Nested expansions of relational operands (each has its own nesting counter in
    /// Postfix, which recurses without bound; here the total is capped).
    private var operandDepth = 0

    private struct Status: OptionSet {
        let rawValue: Int
        static let error = Status(rawValue: 1)
        static let undefined = Status(rawValue: 2)
    }

    init(lookup: @escaping (String) -> [UInt8]?) {
        self.lookup = lookup
    }

    /// Expands `text`. On failure the warnings to print come with the fatal error.
    static func expand(
        _ text: [UInt8], lookup: @escaping (String) -> [UInt8]?
    ) -> Result<[UInt8], MacroExpansionFailure> {
        var expander = MacroExpander(lookup: lookup)
        var result: [UInt8] = []
        do throws(FatalError) {
            try expander.parse(text, into: &result)
        } catch {
            return .failure(MacroExpansionFailure(warnings: expander.warnings, fatal: error))
        }
        if expander.status.contains(.error) {
            return .failure(
                MacroExpansionFailure(
                    warnings: expander.warnings, fatal: FatalError("dictionary mail_dict: macro processing error")))
        }
        return .success(result)
    }

    // MARK: mac_parse

    private enum Token {
        case literal
        case expression
    }

    /// Splits `value` into literal text and `$` references and hands each to ``callback``.
    private mutating func parse(_ value: [UInt8], into result: inout [UInt8]) throws(FatalError) {
        var buffer: [UInt8] = []
        var index = 0
        while index < value.count {
            let byte = value[index]
            if byte != dollar {
                buffer.append(byte)
                index += 1
                continue
            }
            if index + 1 < value.count && value[index + 1] == dollar {
                buffer.append(dollar)
                index += 2
                continue
            }
            if !buffer.isEmpty {
                try callback(.literal, buffer, into: &result)
                buffer.removeAll()
            }
            index += 1
            if index < value.count && (value[index] == openBrace || value[index] == openParen) {
                let open = value[index]
                let close = open == openBrace ? closeBrace : closeParen
                var depth = 1
                index += 1
                var end = index
                while depth > 0 {
                    guard end < value.count else {
                        warn("truncated macro reference: \"", value, "\"")
                        status.insert(.error)
                        return
                    }
                    if value[end] == open { depth += 1 }
                    if value[end] == close { depth -= 1 }
                    end += 1
                }
                buffer.append(contentsOf: value[index..<(end - 1)])
                index = end
            } else {
                var end = index
                while end < value.count && (isASCIIAlphanumeric(value[end]) || value[end] == underscore) { end += 1 }
                buffer.append(contentsOf: value[index..<end])
                index = end
            }
            if buffer.isEmpty {
                status.insert(.error)
                warn("empty macro name: \"", value, "\"")
                return
            }
            try callback(.expression, buffer, into: &result)
            buffer.removeAll()
        }
        if !buffer.isEmpty && !status.contains(.error) { try callback(.literal, buffer, into: &result) }
    }

    // MARK: mac_expand

    private mutating func callback(_ token: Token, _ buffer: [UInt8], into result: inout [UInt8]) throws(FatalError) {
        if level > 100 { parseError("unreasonable macro call nesting: \"", buffer, "\"") }
        level += 1
        if status.contains(.error) { return }
        guard token == .expression else {
            result.append(contentsOf: buffer)
            level -= 1
            return
        }
        var cursor = 0
        var found: [UInt8]?
        var operation: UInt8 = 0
        if findLeftCurly(buffer, &cursor) {
            guard let value = try parseRelational(buffer, &cursor) else { return }
            found = value
            operation = cursor < buffer.count ? buffer[cursor] : 0
            if operation != 0 {
                if operation != question && operation != colon {
                    return parseError("\"?\" or \":\" expected at: \"...}>>>", prefix20(buffer, cursor), "\"")
                }
                cursor += 1
            }
        } else {
            cursor += whitespaceSpan(buffer, cursor)
            let start = cursor
            var nameEnd = cursor
            while true {
                let gap = whitespaceSpan(buffer, cursor)
                let next = cursor + gap < buffer.count ? buffer[cursor + gap] : 0
                if next == 0 {
                    nameEnd = cursor
                    break
                }
                if next == question || next == colon {
                    nameEnd = cursor
                    operation = next
                    cursor += gap + 1
                    break
                }
                let byte = buffer[cursor]
                if !isASCIIAlphanumeric(byte) && byte != underscore {
                    return parseError(
                        "attribute name syntax error at: \"...",
                        Array(buffer[..<cursor]) + Array(">>>".utf8)
                            + prefix20(buffer, cursor), "\"")
                }
                cursor += 1
            }
            found = lookup(String(decoding: buffer[start..<nameEnd], as: UTF8.self))
        }
        let isSet = found.map { !$0.isEmpty } ?? false
        switch operation {
        case question, colon:
            if operation == question {
                let whenSet: [UInt8]
                if findLeftCurly(buffer, &cursor) {
                    guard let payload = extractCurlyPayload(buffer, &cursor) else { return }
                    whenSet = payload
                } else {
                    whenSet = Array(buffer[cursor...])
                    cursor = buffer.count
                }
                if isSet { try parse(whenSet, into: &result) }
                if cursor == buffer.count { break }
                if buffer[cursor] != colon {
                    return parseError(
                        "\":\" expected at: \"...", whenSet + Array("}>>>".utf8) + prefix20(buffer, cursor), "\"")
                }
                cursor += 1
            }
            let whenUnset: [UInt8]
            if findLeftCurly(buffer, &cursor) {
                guard let payload = extractCurlyPayload(buffer, &cursor) else { return }
                whenUnset = payload
            } else {
                whenUnset = Array(buffer[cursor...])
                cursor = buffer.count
            }
            if !isSet { try parse(whenUnset, into: &result) }
            if cursor != buffer.count {
                return parseError(
                    "unexpected input at: \"...", whenUnset + Array("}>>>".utf8) + prefix20(buffer, cursor), "\"")
            }
        default:
            if let found {
                if !found.isEmpty { try parse(found, into: &result) }
            } else {
                status.insert(.undefined)
            }
        }
        level -= 1
    }

    /// `{left} OP {right}`; returns `"true"` or `""`, or `nil` after an error.
    private mutating func parseRelational(_ buffer: [UInt8], _ cursor: inout Int) throws(FatalError) -> [UInt8]? {
        guard let left = extractCurlyPayload(buffer, &cursor) else { return nil }
        let operatorStart = cursor
        while cursor < buffer.count && Array("<>!=?+-*/~&|%".utf8).contains(buffer[cursor]) { cursor += 1 }
        let operatorText = Array(buffer[operatorStart..<cursor])
        guard let relation = Relation(operatorText) else {
            parseError(
                "\"==\" or \"!=\"\" or \"<\"\" or \"<=\"\" or \">=\"\" or \">\" expected at: \"...",
                left + Array("}>>>".utf8) + prefix20(buffer, operatorStart), "\"")
            return nil
        }
        var comparesLevels = false
        if cursor < buffer.count && isASCIIAlphanumeric(buffer[cursor]) {
            let suffixStart = cursor
            while cursor < buffer.count && isASCIIAlphanumeric(buffer[cursor]) { cursor += 1 }
            guard buffer[suffixStart..<cursor].elementsEqual("level".utf8) else {
                parseError(
                    "bad operator suffix at: \"...", operatorText + Array(">>>".utf8) + buffer[suffixStart..<cursor],
                    "\"")
                return nil
            }
            comparesLevels = true
        }
        guard findLeftCurly(buffer, &cursor) else {
            parseError(
                "\"{expression}\" expected at: \"...{",
                left + Array("} ".utf8) + operatorText + Array(">>>".utf8) + prefix20(buffer, cursor), "\"")
            return nil
        }
        guard let right = extractCurlyPayload(buffer, &cursor) else { return nil }
        let leftValue = try expandOperand(left)
        let rightValue = try expandOperand(right)
        if status.contains(.error) { return nil }
        let outcome: Bool?
        if comparesLevels {
            outcome = compareLevels(leftValue, relation, rightValue)
        } else {
            outcome = try compare(leftValue, relation, rightValue)
        }
        guard let outcome else {
            status.insert(.error)
            return nil
        }
        return outcome ? Array("true".utf8) : []
    }

    /// A relational operand, expanded on its own (as Postfix does with a fresh mac_expand).
    private mutating func expandOperand(_ text: [UInt8]) throws(FatalError) -> [UInt8] {
        operandDepth += 1
        defer { operandDepth -= 1 }
        if operandDepth > 100 {
            parseError("unreasonable macro call nesting: \"", text, "\"")
            return []
        }
        let savedLevel = level
        level = 0
        defer { level = savedLevel }
        var value: [UInt8] = []
        try parse(text, into: &value)
        return value
    }

    private enum Relation {
        case equal, notEqual, less, lessOrEqual, greaterOrEqual, greater

        init?(_ text: [UInt8]) {
            switch String(decoding: text, as: UTF8.self) {
            case "==": self = .equal
            case "!=": self = .notEqual
            case "<": self = .less
            case "<=": self = .lessOrEqual
            case ">=": self = .greaterOrEqual
            case ">": self = .greater
            default: return nil
            }
        }

        func holds(_ delta: Int) -> Bool {
            switch self {
            case .equal: return delta == 0
            case .notEqual: return delta != 0
            case .less: return delta < 0
            case .lessOrEqual: return delta <= 0
            case .greaterOrEqual: return delta >= 0
            case .greater: return delta > 0
            }
        }
    }

    /// Numbers when both sides are all digits (a number too large is fatal), else bytes.
    private func compare(_ left: [UInt8], _ relation: Relation, _ right: [UInt8]) throws(FatalError) -> Bool {
        if isAllDigits(left) && isAllDigits(right) {
            let leftNumber = try number(left)
            let rightNumber = try number(right)
            return relation.holds(leftNumber < rightNumber ? -1 : leftNumber == rightNumber ? 0 : 1)
        }
        let delta = left.lexicographicallyPrecedes(right) ? -1 : left == right ? 0 : 1
        return relation.holds(delta)
    }

    private func number(_ digits: [UInt8]) throws(FatalError) -> Int {
        guard let value = Int(String(decoding: digits, as: UTF8.self)) else {
            throw FatalError(bytes: Array("mac_exp_eval: bad conversion: ".utf8) + digits)
        }
        return value
    }

    /// `<level` and friends; `nil` (after a warning) when a side is not a compatibility level.
    private mutating func compareLevels(_ left: [UInt8], _ relation: Relation, _ right: [UInt8]) -> Bool? {
        guard let leftLevel = compatibilityLevel(left) else {
            warn("malformed compatibility level syntax: \"", left, "\"")
            return nil
        }
        guard let rightLevel = compatibilityLevel(right) else {
            warn("malformed compatibility level syntax: \"", right, "\"")
            return nil
        }
        return relation.holds(leftLevel < rightLevel ? -1 : leftLevel == rightLevel ? 0 : 1)
    }

    // MARK: Braces and messages

    /// Skips whitespace when a `{` follows it.
    private func findLeftCurly(_ buffer: [UInt8], _ cursor: inout Int) -> Bool {
        let gap = whitespaceSpan(buffer, cursor)
        guard cursor + gap < buffer.count, buffer[cursor + gap] == openBrace else { return false }
        cursor += gap
        return true
    }

    /// The text between the `{` at `cursor` and its matching `}`; the cursor moves past the
    /// `}` and any whitespace after it.
    private mutating func extractCurlyPayload(_ buffer: [UInt8], _ cursor: inout Int) -> [UInt8]? {
        var depth = 1
        var index = cursor + 1
        while true {
            guard index < buffer.count else {
                parseError("unbalanced {} in attribute expression: \"", Array(buffer[cursor...]), "\"")
                return nil
            }
            if buffer[index] == openBrace { depth += 1 }
            if buffer[index] == closeBrace {
                depth -= 1
                if depth <= 0 { break }
            }
            index += 1
        }
        let payload = Array(buffer[(cursor + 1)..<index])
        cursor = index + 1
        cursor += whitespaceSpan(buffer, cursor)
        return payload
    }

    private func whitespaceSpan(_ buffer: [UInt8], _ start: Int) -> Int {
        var index = start
        while index < buffer.count && [0x20, 0x09, 0x0D, 0x0A].contains(buffer[index]) { index += 1 }
        return index - start
    }

    private func prefix20(_ buffer: [UInt8], _ start: Int) -> [UInt8] {
        Array(buffer[min(start, buffer.count)...].prefix(20))
    }

    private mutating func warn(_ before: String, _ text: [UInt8], _ after: String) {
        warnings.append(Diagnostic(.warning, Array(before.utf8) + text + Array(after.utf8)))
    }

    private mutating func parseError(_ before: String, _ text: [UInt8], _ after: String) {
        warn(before, text, after)
        status.insert(.error)
    }
}

/// Why an expansion failed: the warnings Postfix prints, then its fatal error.
struct MacroExpansionFailure: Error {
    let warnings: [Diagnostic]
    let fatal: FatalError
}

private let dollar = UInt8(ascii: "$")
private let openBrace = UInt8(ascii: "{")
private let closeBrace = UInt8(ascii: "}")
private let openParen = UInt8(ascii: "(")
private let closeParen = UInt8(ascii: ")")
private let underscore = UInt8(ascii: "_")
private let question = UInt8(ascii: "?")
private let colon = UInt8(ascii: ":")

func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
}

private func isAllDigits(_ bytes: [UInt8]) -> Bool {
    !bytes.isEmpty && bytes.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

/// C's `strtol(text, &end, 10)`: leading whitespace, an optional sign, decimal digits.
///
/// - Returns: the value (clamped on overflow), the index after the digits (`start` when
///   there were none) and whether the value overflowed.
func cStrtol(_ text: [UInt8], from start: Int = 0) -> (value: Int, end: Int, overflow: Bool) {
    var index = start
    while index < text.count && isCSpace(text[index]) { index += 1 }
    var negative = false
    if index < text.count && (text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-")) {
        negative = text[index] == UInt8(ascii: "-")
        index += 1
    }
    let digitsStart = index
    var value = 0
    var overflow = false
    while index < text.count && text[index] >= 0x30 && text[index] <= 0x39 {
        let digit = Int(text[index] - 0x30)
        if !overflow {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            if o1 || o2 {
                overflow = true
                value = negative ? Int.min : Int.max
            } else {
                value = sum
            }
        }
        index += 1
    }
    if index == digitsStart { return (0, start, false) }
    return (value, index, overflow)
}

/// Postfix's `compat_level_from_string`: `major[.minor[.patch]]`, each a C `strtol` number;
/// minor and patch at most 1023. `nil` when malformed.
func compatibilityLevel(_ text: [UInt8]) -> Int? {
    let major = cStrtol(text)
    guard major.end > 0, !major.overflow, major.value >= 0, major.value <= Int.max >> 20 else { return nil }
    var level = major.value << 20
    if major.end == text.count { return level }
    guard text[major.end] == UInt8(ascii: ".") else { return nil }
    let minor = cStrtol(text, from: major.end + 1)
    guard minor.end > major.end + 1, !minor.overflow, (0...1023).contains(minor.value) else { return nil }
    level |= minor.value << 10
    if minor.end == text.count { return level }
    guard text[minor.end] == UInt8(ascii: ".") else { return nil }
    let patch = cStrtol(text, from: minor.end + 1)
    guard patch.end > minor.end + 1, patch.end == text.count, !patch.overflow, (0...1023).contains(patch.value)
    else { return nil }
    return level | patch.value
}
