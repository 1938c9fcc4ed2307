import Glibc
import Logging
import NIOCore
import PostgresNIO
import SandhiEngine
import SandhiPostgres

/// The decision log's one session to PostgreSQL, run from a thread that is not an event loop
/// and blocks on postgres-nio's futures (the pattern `PostgresSessionPool` uses for banks).
///
/// Not a bank's session: the log is one session, not a pool, and it has a statement timeout
/// where a bank's has a lock timeout. It is opened and set up as a bank's is, by the same code
/// (`PostgresSessionPool.openSession`): every commit of the log is flushed (and waits for
/// synchronous standbys), the server's idle timeouts cannot end it under a quiet coordinator,
/// and over TCP both ends probe it when idle.
enum DecisionLogSession {

    /// Opens a session named `sandhi-log:<instance>:<role>:<pid>` (the pid lets a refused second
    /// coordinator name the holder), set up as every Sandhi session is (see
    /// `PostgresSessionPool.openSession`: `synchronous_commit` at least `on` whatever the
    /// server's, database's or role's default says, the idle timeouts off), with a statement
    /// timeout.
    static func connect(_ configuration: PostgresDecisionLogConfiguration, role: String, eventLoopGroup: any EventLoopGroup,
                        logger: Logger) throws -> PostgresConnection {
        let name = "sandhi-log:\(configuration.instance.name):\(role):\(getpid())"
        let opening = PostgresSessionPool.openSession(configuration.endpoint, username: configuration.username, password: configuration.password,
                                                      database: configuration.database, connectTimeoutMs: configuration.connectTimeoutMs,
                                                      applicationName: name, statementTimeoutMs: configuration.statementTimeoutMs,
                                                      id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            return try PostgresSessionPool.wait(for: opening, timeoutMs: configuration.connectTimeoutMs + configuration.statementTimeoutMs + 1_000)
        } catch PostgresSessionPool.SessionOpeningError.setUp(let error) {
            throw PostgresDecisionLogError.statement(database: configuration.database, what: "setting up a session", detail: ServerMessage.describe(error))
        } catch PostgresSessionPool.SessionOpeningError.unreachable(let error) {
            throw PostgresDecisionLogError.unreachable(database: configuration.database, detail: ServerMessage.describe(error))
        } catch {
            throw PostgresDecisionLogError.unreachable(database: configuration.database, detail: ServerMessage.describe(error))
        }
    }

    /// Runs one statement and waits for its whole result, at most `statementTimeoutMs` (plus a
    /// second for the server's own timeout to answer first).
    @discardableResult
    static func run(_ query: PostgresQuery, on connection: PostgresConnection, _ configuration: PostgresDecisionLogConfiguration,
                    what: String, logger: Logger) throws -> PostgresQueryResult {
        do {
            // postgres-nio never answers a query written to a closed connection: fail at once.
            guard !connection.isClosed else { throw PostgresSessionPool.ConnectionClosed() }
            return try PostgresSessionPool.wait(for: connection.query(query, logger: logger), timeoutMs: configuration.statementTimeoutMs + 1_000)
        } catch {
            throw PostgresDecisionLogError.statement(database: configuration.database, what: what, detail: ServerMessage.describe(error))
        }
    }

    static func close(_ connection: PostgresConnection, _ configuration: PostgresDecisionLogConfiguration) {
        _ = try? PostgresSessionPool.wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs)
    }
}
