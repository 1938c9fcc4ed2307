import Glibc
import Logging
import PostgresNIO

/// Ends every other session of a bank (same database, same `application_name`) before the bank
/// recovers. A process killed mid-batch leaves its backends running until they notice: one that
/// had already received PREPARE TRANSACTION finishes it, and if that happened after recovery read
/// `pg_prepared_xacts`, the branch would be prepared with nobody knowing it. Terminating those
/// sessions and waiting until they are gone makes the set of prepared transactions final before
/// recovery reads it (a backend ends its transaction, or its PREPARE completes, before it exits).
enum SessionFence {
    static let waitMs = 10_000

    static func endOlderSessions(of configuration: PostgresBankConfiguration, on connection: PostgresConnection, logger: Logger) throws {
        let name = configuration.applicationName
        let others: PostgresQuery = """
            SELECT pid FROM pg_stat_activity
            WHERE application_name = \(name) AND datname = current_database() AND pid <> pg_backend_pid()
            """
        let terminate: PostgresQuery = """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = \(name) AND datname = current_database() AND pid <> pg_backend_pid()
            """
        do {
            let ended = try PostgresSessionPool.wait(for: connection.query(terminate, logger: logger), timeoutMs: configuration.batchTimeoutMs).rows.count
            guard ended > 0 else { return }
            logger.info("ended older sessions of this bank", metadata: ["participant": "\(configuration.participant)", "count": "\(ended)"])
            var waitedMs = 0
            while try !PostgresSessionPool.wait(for: connection.query(others, logger: logger), timeoutMs: configuration.batchTimeoutMs).rows.isEmpty {
                guard waitedMs < waitMs else {
                    throw PostgresBankError.statement(database: configuration.database, what: "ending older sessions",
                                                      detail: "they were still there after \(waitMs) ms")
                }
                usleep(10_000)
                waitedMs += 10
            }
        } catch let error as PostgresBankError {
            throw error
        } catch {
            throw PostgresBankError.statement(database: configuration.database, what: "ending older sessions", detail: ServerMessage.describe(error))
        }
    }
}
