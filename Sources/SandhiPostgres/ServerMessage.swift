import PostgresNIO

/// What the server said about a failed statement, for the bank's, the decision log's and the
/// tools' one-line errors.
package enum ServerMessage {
    /// The server's SQLSTATE of an error, if it came from the server.
    package static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// One line for people. postgres-nio's own description of a `PSQLError` hides the server's
    /// message (it may quote data); ours is a participant's log and an operator's error line, so
    /// the message and its SQLSTATE are what matter.
    package static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo, let message = info[.message] {
            return "\(message) (SQLSTATE \(info[.sqlState] ?? "?"))"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
}
