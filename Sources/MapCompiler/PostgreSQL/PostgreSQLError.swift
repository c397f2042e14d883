/// A libpq failure: what was being done and libpq's (or the server's) own words.
public struct PostgreSQLError: Error, Sendable, Equatable {
    /// What failed.
    public enum Operation: Sendable, Equatable {
        case loadLibrary
        case connect
        case query
        case copy
    }

    /// What failed.
    public let operation: Operation
    /// libpq's message, on one line.
    public let message: String
    /// The server's SQLSTATE, when it sent one (`42501`: permission denied).
    public let sqlState: String?
    /// libpq's message as it came, newlines and all (Postfix prints it so, with `?` for
    /// each control character).
    public let rawMessage: String

    init(_ operation: Operation, _ message: String, sqlState: String? = nil) {
        self.operation = operation
        self.rawMessage = message
        // libpq's messages end with a newline and may span lines ("connection to server at
        // … failed: Connection refused\n\tIs the server running …").
        self.message = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: " \t") }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        self.sqlState = sqlState
    }
}
