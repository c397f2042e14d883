/// Mail addresses as Postfix's delivery path handles them (postmap-behavior.md §10.3, §10.5).
///
/// Postfix carries an address in *internal* form (the localpart unquoted: `foo bar@example.com`)
/// and queries tables with the *external* form (the localpart quoted when it is not a
/// dot-string: `"foo bar"@example.com`). The domain is the text after the **last** `@`.

/// An address split at its last `@`.
struct AddressParts: Sendable, Equatable {
    /// The localpart (everything before the last `@`, or the whole address without one).
    var localpart: String
    /// The domain (after the last `@`), or `nil` when the address has no `@`.
    var domain: String?

    init(_ address: String) {
        if let at = address.lastIndex(of: "@") {
            localpart = String(address[..<at])
            domain = String(address[address.index(after: at)...])
        } else {
            localpart = address
            domain = nil
        }
    }

    /// The address again, with `localpart` replaced when given.
    func joined(localpart replacement: String? = nil) -> String {
        let local = replacement ?? localpart
        guard let domain else { return local }
        return local + "@" + domain
    }
}

/// The bytes that keep a localpart from being a dot-string (besides controls and `.` rules).
private let localpartSpecials: Set<UInt8> = Set("()<>@,;:\\\"[] ".utf8)

/// Whether `localpart` may be written unquoted: non-empty, no leading, trailing or doubled
/// `.`, and none of space, ASCII controls, `( ) < > @ , ; : \ " [ ]` (bytes ≥ 0x80 are fine).
func isDotString(_ localpart: String) -> Bool {
    let bytes = Array(localpart.utf8)
    guard let first = bytes.first, let last = bytes.last else { return false }
    if first == UInt8(ascii: ".") || last == UInt8(ascii: ".") { return false }
    var previous: UInt8 = 0
    for byte in bytes {
        if byte < 0x20 || byte == 0x7F || localpartSpecials.contains(byte) { return false }
        if byte == UInt8(ascii: ".") && previous == UInt8(ascii: ".") { return false }
        previous = byte
    }
    return true
}

/// A localpart in external form: unchanged when it is a dot-string, else in double quotes
/// with a backslash before `"`, `\` and CR.
func quotedLocalpart(_ localpart: String) -> String {
    if isDotString(localpart) { return localpart }
    var out = "\""
    for scalar in localpart.unicodeScalars {
        if scalar == "\"" || scalar == "\\" || scalar == "\r" { out.append("\\") }
        out.unicodeScalars.append(scalar)
    }
    return out + "\""
}

/// An internal-form address in external form (only the localpart changes).
func externalAddress(_ address: String) -> String {
    let parts = AddressParts(address)
    return parts.joined(localpart: quotedLocalpart(parts.localpart))
}

/// Parses an RFC 822 address list (a virtual(5) value, a command-line address) into
/// addresses in internal form.
///
/// Commas separate addresses (except inside `<…>`); comments are dropped; `Name <addr>`
/// yields `addr` (a source route `@a,@b:` inside the brackets is dropped); a group
/// `name: a, b;` yields its members. `<>` is the null address (an empty string). Items that
/// hold no token at all (`a,,b`) yield nothing.
func parseAddressList(_ bytes: [UInt8]) -> [String] {
    let tokens = tokenizeRFC822(bytes).filter { $0.kind != .comment }
    var items: [[RFC822Token]] = [[]]
    var angleDepth = 0
    for token in tokens {
        switch token.kind {
        case .symbol(UInt8(ascii: "<")): angleDepth += 1
        case .symbol(UInt8(ascii: ">")): angleDepth = max(0, angleDepth - 1)
        case .symbol(UInt8(ascii: ",")) where angleDepth == 0:
            items.append([])
            continue
        default: break
        }
        items[items.count - 1].append(token)
    }
    var addresses: [String] = []
    for var item in items {
        // A group: `name: first, second;` — drop the display name and the final `;`.
        if let colon = item.firstIndex(where: { $0.kind == .symbol(UInt8(ascii: ":")) }),
            !item[..<colon].contains(where: { $0.kind == .symbol(UInt8(ascii: "<")) })
        {
            item.removeSubrange(...colon)
        }
        while let last = item.last, last.kind == .symbol(UInt8(ascii: ";")) { item.removeLast() }
        if let open = item.firstIndex(where: { $0.kind == .symbol(UInt8(ascii: "<")) }) {
            var inner = Array(item[(open + 1)...])
            if let close = inner.firstIndex(where: { $0.kind == .symbol(UInt8(ascii: ">")) }) {
                inner.removeSubrange(close...)
            }
            if let routeEnd = inner.lastIndex(where: { $0.kind == .symbol(UInt8(ascii: ":")) }) {
                inner.removeSubrange(...routeEnd)
            }
            addresses.append(String(decoding: internalForm(inner), as: UTF8.self))
            continue
        }
        if item.isEmpty { continue }
        addresses.append(String(decoding: internalForm(item), as: UTF8.self))
    }
    return addresses
}
