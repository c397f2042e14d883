import CPostgreSQL
import Glibc

/// **The only code that touches libpq handles**: one connection (`PGconn`), owned by this
/// object and closed by ``close()`` (or when it goes away). Statements run one at a time;
/// keys and values travel as query parameters or in COPY's data stream, never pasted into
/// SQL, and the names of tables are quoted by libpq.
final class PostgreSQLConnection {
    private let pq: LibPQ
    private var connection: OpaquePointer?

    /// Connects with a libpq connection string (`host=… port=… dbname=… user=…`, or a
    /// `postgresql://` URI; empty for libpq's defaults and `PG*` environment variables), and
    /// sets the client encoding: Postfix 3.7's pgsql client always uses LATIN1, in which
    /// every byte is a character, so keys and values travel as the bytes they are.
    init(conninfo: String, clientEncoding: String = "LATIN1") throws(PostgreSQLError) {
        pq = try LibPQ.loaded()
        let handle = pq.connectdb(conninfo)
        guard let handle else { throw PostgreSQLError(.connect, "out of memory") }
        guard pq.status(handle) == CONNECTION_OK else {
            let message = message(handle)
            pq.finish(handle)
            throw PostgreSQLError(.connect, message)
        }
        connection = handle
        guard pq.setClientEncoding(handle, clientEncoding) == 0 else {
            let message = message(handle)
            close()
            throw PostgreSQLError(.connect, "cannot set the client encoding to \(clientEncoding): \(message)")
        }
    }

    deinit { close() }

    /// Closes the connection (a second call does nothing).
    func close() {
        if let connection { pq.finish(connection) }
        connection = nil
    }

    private func open() throws(PostgreSQLError) -> OpaquePointer {
        guard let connection else { throw PostgreSQLError(.query, "the connection is closed") }
        return connection
    }

    /// The server the connection went to: host (or socket directory), port, user, database.
    var host: String { connection.flatMap { pq.host($0) }.map { String(cString: $0) } ?? "" }
    var port: String { connection.flatMap { pq.port($0) }.map { String(cString: $0) } ?? "" }
    var user: String { connection.flatMap { pq.user($0) }.map { String(cString: $0) } ?? "" }
    var database: String { connection.flatMap { pq.db($0) }.map { String(cString: $0) } ?? "" }
    /// The server asked for a password and got one.
    var usedPassword: Bool { connection.map { pq.connectionUsedPassword($0) != 0 } ?? false }

    /// A setting the server reports (`server_encoding`, …).
    func parameterStatus(_ name: String) -> String? {
        connection.flatMap { pq.parameterStatus($0, name) }.map { String(cString: $0) }
    }

    /// Runs one statement; `parameters` fill `$1`, `$2`, … as text (`nil` is NULL).
    @discardableResult
    func execute(_ sql: String, _ parameters: [[UInt8]?] = []) throws(PostgreSQLError) -> PostgreSQLRows {
        try execute(bytes: Array(sql.utf8), parameters)
    }

    /// Runs one statement given as bytes (a query with a lookup key in it need not be UTF-8:
    /// the client encoding says what the bytes are).
    @discardableResult
    func execute(bytes sql: [UInt8], _ parameters: [[UInt8]?] = []) throws(PostgreSQLError) -> PostgreSQLRows {
        let handle = try open()
        let text = sql.map { CChar(bitPattern: $0) } + [0]
        let result: OpaquePointer?
        if parameters.isEmpty {
            result = pq.exec(handle, text)
        } else {
            result = withCStrings(parameters) { values, lengths in
                pq.execParams(handle, text, Int32(parameters.count), nil, values, lengths, nil, 0)
            }
        }
        return try rows(of: result, operation: .query)
    }

    /// `COPY … FROM STDIN` with `data`, rows in COPY's text format.
    func copy(_ sql: String, data: [UInt8]) throws(PostgreSQLError) {
        let handle = try open()
        let started = pq.exec(handle, sql)
        guard let started, pq.resultStatus(started) == PGRES_COPY_IN else {
            _ = try rows(of: started, operation: .copy)
            throw PostgreSQLError(.copy, "COPY did not start")
        }
        pq.clear(started)
        var offset = 0
        while offset < data.count {
            let count = min(1 << 20, data.count - offset)
            let sent = data.withUnsafeBufferPointer { buffer in
                buffer.baseAddress.map { base in
                    UnsafeRawPointer(base + offset).withMemoryRebound(to: CChar.self, capacity: count) {
                        pq.putCopyData(handle, $0, Int32(count))
                    }
                } ?? -1
            }
            guard sent == 1 else { throw PostgreSQLError(.copy, message(handle)) }
            offset += count
        }
        guard pq.putCopyEnd(handle, nil) == 1 else {
            throw PostgreSQLError(.copy, message(handle))
        }
        var failure: PostgreSQLError? = nil
        while let result = pq.getResult(handle) {
            if failure == nil, pq.resultStatus(result) != PGRES_COMMAND_OK {
                failure = error(of: result, operation: .copy)
            }
            pq.clear(result)
        }
        if let failure { throw failure }
    }

    /// `bytes` escaped for use between single quotes in SQL, as Postfix's pgsql client
    /// escapes a lookup key (libpq's PQescapeStringConn).
    func escapedString(_ bytes: [UInt8]) throws(PostgreSQLError) -> [UInt8] {
        let handle = try open()
        var output = [CChar](repeating: 0, count: bytes.count * 2 + 1)
        var failed: Int32 = 0
        let length = bytes.withUnsafeBufferPointer { input in
            input.withMemoryRebound(to: CChar.self) { chars in
                pq.escapeStringConn(handle, &output, chars.baseAddress, bytes.count, &failed)
            }
        }
        guard failed == 0 else { throw PostgreSQLError(.query, message(handle)) }
        return output.prefix(length).map { UInt8(bitPattern: $0) }
    }

    /// `name` as a quoted SQL identifier (`"Virtual"`).
    func quotedIdentifier(_ name: String) throws(PostgreSQLError) -> String {
        let handle = try open()
        let utf8 = Array(name.utf8)
        let quoted = utf8.withUnsafeBufferPointer { input in
            input.withMemoryRebound(to: CChar.self) { pq.escapeIdentifier(handle, $0.baseAddress, utf8.count) }
        }
        guard let quoted else { throw PostgreSQLError(.query, message(handle)) }
        defer { pq.freemem(quoted) }
        return String(cString: quoted)
    }

    private func rows(
        of result: OpaquePointer?, operation: PostgreSQLError.Operation
    ) throws(PostgreSQLError)
        -> PostgreSQLRows
    {
        guard let result else {
            throw PostgreSQLError(operation, connection.map { message($0) } ?? "no result")
        }
        defer { pq.clear(result) }
        let status = pq.resultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw error(of: result, operation: operation)
        }
        var rows: [[[UInt8]?]] = []
        let count = pq.ntuples(result)
        let fields = pq.nfields(result)
        rows.reserveCapacity(Int(count))
        for row in 0..<count {
            var values: [[UInt8]?] = []
            for field in 0..<fields {
                if pq.getisnull(result, row, field) != 0 {
                    values.append(nil)
                    continue
                }
                let length = Int(pq.getlength(result, row, field))
                guard let text = pq.getvalue(result, row, field) else {
                    values.append([])
                    continue
                }
                values.append(
                    UnsafeRawBufferPointer(start: UnsafeRawPointer(text), count: length).map { $0 })
            }
            rows.append(values)
        }
        return PostgreSQLRows(rows: rows)
    }

    /// libpq's last message for `handle`.
    private func message(_ handle: OpaquePointer) -> String {
        pq.errorMessage(handle).map { String(cString: $0) } ?? "unknown error"
    }

    private func error(of result: OpaquePointer, operation: PostgreSQLError.Operation) -> PostgreSQLError {
        let state = pq.resultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let text = pq.resultErrorMessage(result).map { String(cString: $0) } ?? "unknown error"
        return PostgreSQLError(operation, text, sqlState: state)
    }
}

/// The rows a statement returned: each a list of fields, `nil` for NULL.
struct PostgreSQLRows {
    var rows: [[[UInt8]?]]
}

/// Calls `body` with `values` as NUL-terminated C strings (and their lengths).
private func withCStrings<Result>(
    _ values: [[UInt8]?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?) -> Result
) -> Result {
    let buffers: [UnsafeMutablePointer<CChar>?] = values.map { value in
        guard let value else { return nil }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: value.count + 1)
        for (index, byte) in value.enumerated() { buffer[index] = CChar(bitPattern: byte) }
        buffer[value.count] = 0
        return buffer
    }
    defer { for buffer in buffers { buffer?.deallocate() } }
    let pointers = buffers.map { $0.map { UnsafePointer($0) } }
    let lengths = values.map { Int32($0?.count ?? 0) }
    return pointers.withUnsafeBufferPointer { pointerBuffer in
        lengths.withUnsafeBufferPointer { lengthBuffer in body(pointerBuffer.baseAddress, lengthBuffer.baseAddress) }
    }
}
