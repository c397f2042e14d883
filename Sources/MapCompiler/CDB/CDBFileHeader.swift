/// The table of 256 hash-table pointers at the start of a cdb file, read as plain bytes
/// (not through tinycdb), for `--check`. A cdb file has no magic number: this is what can
/// be checked without reading the records.
enum CDBFileHeader {
    /// 256 pairs of 32-bit little-endian words: a hash table's position and slot count.
    static let length = 2048

    /// The first problem of the pointer table (`bytes`, the start of the file) with a file
    /// of `fileSize` bytes: a file too short to hold it, or a hash table that starts inside
    /// it or reaches past the end of the file. `nil` when there is none.
    static func problem(_ bytes: [UInt8], fileSize: Int) -> String? {
        guard bytes.count >= length, fileSize >= length else {
            return "too short for a cdb table (\(fileSize) bytes; the pointer table alone takes \(length))"
        }
        for slot in 0..<256 {
            let position = UInt64(littleEndianWord(bytes, at: slot * 8))
            let slots = UInt64(littleEndianWord(bytes, at: slot * 8 + 4))
            guard slots > 0 else { continue }
            if position < UInt64(length) || position + slots * 8 > UInt64(fileSize) {
                return "hash table \(slot) (\(slots) slots at byte \(position)) lies outside the file's"
                    + " \(fileSize) bytes: truncated or not a cdb file"
            }
        }
        return nil
    }
}
