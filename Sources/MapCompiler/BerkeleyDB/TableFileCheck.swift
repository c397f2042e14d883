import CBerkeleyDB
import Glibc

/// What `--check` needs from Berkeley DB itself: the file's first (meta-data) page read as
/// plain bytes, and libdb's own verifier with its messages captured instead of printed.

/// The meta-data page at the start of every Berkeley DB file, as far as it can be read
/// without libdb: the common `DBMETA` header (`dbinc/db_page.h`).
struct TableFileHeader: Equatable {
    /// What the magic number says the file is.
    enum Kind: Equatable {
        /// A hash or btree file (a btree may still be a recno file; only libdb tells).
        case table(AccessMethod)
        /// A Berkeley DB file of an access method Postfix does not use (`queue`, `heap`).
        case otherBerkeleyDB(String)
    }

    /// The fewest bytes that hold the fields read here.
    static let minimumLength = 36

    let kind: Kind
    /// The file was written on a machine of the other byte order (libdb still reads it).
    let byteSwapped: Bool
    /// The access method's format version.
    let version: UInt32
    /// The page size in bytes.
    let pageSize: UInt32
    /// The number of the last page the meta-data page accounts for.
    let lastPage: UInt32
    /// The file is encrypted (Postfix never opens tables with a password).
    let encrypted: Bool
    /// For a hash file read far enough, the number of buckets its meta-data page names
    /// (`max_bucket + 1`, at byte 72).
    let hashBuckets: UInt64?

    /// `true` when ``pageSize`` is one libdb can write: a power of two from 512 to 65536.
    var hasValidPageSize: Bool {
        pageSize >= 512 && pageSize <= 65536 && pageSize & (pageSize - 1) == 0
    }

    /// Parses the start of a file.
    ///
    /// - Returns: `nil` when `bytes` is shorter than ``minimumLength`` or carries none of
    ///   Berkeley DB's magic numbers in either byte order.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= Self.minimumLength else { return nil }
        func word(_ offset: Int, swapped: Bool) -> UInt32 {
            let little =
                UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
            return swapped ? little.byteSwapped : little
        }
        let known: [(UInt32, Kind)] = [
            (UInt32(DB_HASHMAGIC), .table(.hash)), (UInt32(DB_BTREEMAGIC), .table(.btree)),
            (UInt32(DB_QAMMAGIC), .otherBerkeleyDB("queue")), (UInt32(DB_HEAPMAGIC), .otherBerkeleyDB("heap")),
        ]
        // The fields are in the writer's byte order; libdb tells the orders apart the same
        // way, by which reading of the magic number it recognises.
        for swapped in [false, true] {
            let magic = word(12, swapped: swapped)
            guard let match = known.first(where: { $0.0 == magic }) else { continue }
            kind = match.1
            byteSwapped = swapped
            version = word(16, swapped: swapped)
            pageSize = word(20, swapped: swapped)
            encrypted = bytes[24] != 0
            lastPage = word(32, swapped: swapped)
            hashBuckets =
                match.1 == .table(.hash) && bytes.count >= 76 ? UInt64(word(72, swapped: swapped)) + 1 : nil
            return
        }
        return nil
    }
}

/// What libdb's verifier said about a table file.
struct TableVerification: Sendable {
    /// `nil` when libdb found the file sound, else its return code.
    var error: BerkeleyDBError?
    /// libdb's messages in the order it gave them (at most the limit passed to
    /// ``verifyTableFile(path:messageLimit:)``), each without its `BDBnnnn` code.
    var messages: [String]
    /// How many more messages there were beyond ``messages``.
    var omittedMessages: Int
}

/// Collects the messages libdb hands to the error and message callbacks during one call.
private final class LibraryMessages {
    private(set) var messages: [String] = []
    private(set) var omitted = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func add(_ text: UnsafePointer<CChar>?) {
        guard let text else { return }
        guard messages.count < limit else {
            omitted += 1
            return
        }
        var message = String(cString: text)
        // "BDB0536 Page 8: bad page number 3": the code adds nothing for a reader.
        if message.hasPrefix("BDB"), message.count > 8, message.dropFirst(3).prefix(4).allSatisfy(\.isNumber),
            message.dropFirst(7).first == " "
        {
            message = String(message.dropFirst(8))
        }
        messages.append(message)
    }
}

/// Runs libdb's verifier (`DB->verify`) over the file at `path`, without opening it as a
/// database first. libdb's messages are collected, never printed.
///
/// libdb's verifier can itself crash or loop on a hostile file, so `--check` calls this only
/// in a separate worker process.
///
/// - Parameter messageLimit: how many of libdb's messages to keep.
/// The corresponding Berkeley DB call is `DB->verify`, which releases the handle itself.
func verifyTableFile(path: String, messageLimit: Int = 20) -> TableVerification {
    var dbPointer: UnsafeMutablePointer<DB>?
    let rc = db_create(&dbPointer, nil, 0)
    guard rc == 0, let db = dbPointer else {
        return TableVerification(
            error: BerkeleyDBError(code: rc, operation: .create, path: path), messages: [], omittedMessages: 0)
    }
    let collector = LibraryMessages(limit: messageLimit)
    let verifyRC: Int32 = withExtendedLifetime(collector) {
        // The handle's private environment carries the collector to the C callbacks, which
        // cannot capture anything.
        db.pointee.dbenv.pointee.app_private = Unmanaged.passUnretained(collector).toOpaque()
        db.pointee.set_errcall(db) { environment, _, message in
            guard let owner = environment?.pointee.app_private else { return }
            Unmanaged<LibraryMessages>.fromOpaque(owner).takeUnretainedValue().add(message)
        }
        db.pointee.set_msgcall(db) { environment, message in
            guard let owner = environment?.pointee.app_private else { return }
            Unmanaged<LibraryMessages>.fromOpaque(owner).takeUnretainedValue().add(message)
        }
        return db.pointee.verify(db, path, nil, nil, 0)
    }
    return TableVerification(
        error: verifyRC == 0 ? nil : BerkeleyDBError(code: verifyRC, operation: .verify, path: path),
        messages: collector.messages, omittedMessages: collector.omitted)
}
