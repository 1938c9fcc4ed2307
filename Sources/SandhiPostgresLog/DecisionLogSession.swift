import Glibc
import Logging
import NIOCore
import PostgresNIO
import SandhiEngine
import SandhiPostgres

/// The decision log's one session to PostgreSQL, run from a thread that is not an event loop
/// and blocks on postgres-nio's futures (the pattern `PostgresSessionPool` uses for banks).
///
/// Not a bank's session: a bank's sessions run with `synchronous_commit = off` (its durable
/// steps are PREPARE and COMMIT PREPARED, which flush whatever that setting says), while every
/// commit of the log must be flushed; and the log is one session, not a pool.
enum DecisionLogSession {

    /// Opens a session named `sandhi-log:<instance>:<role>:<pid>` (the pid lets a refused second
    /// coordinator name the holder), with `synchronous_commit = on` whatever the server's,
    /// database's or role's default says, and a statement timeout.
    static func connect(_ configuration: PostgresDecisionLogConfiguration, role: String, eventLoopGroup: any EventLoopGroup,
                        logger: Logger) throws -> PostgresConnection {
        let name = "sandhi-log:\(configuration.instance.name):\(role):\(getpid())"
        let settings = PostgresSessionPool.settings(configuration.endpoint, username: configuration.username, password: configuration.password,
                                                    database: configuration.database, connectTimeoutMs: configuration.connectTimeoutMs,
                                                    applicationName: name)
        let connection: PostgresConnection
        do {
            connection = try PostgresSessionPool.wait(for: PostgresConnection.connect(on: eventLoopGroup.next(), configuration: settings, id: 0, logger: logger),
                                  timeoutMs: configuration.connectTimeoutMs + 1_000)
        } catch {
            throw PostgresDecisionLogError.unreachable(database: configuration.database, detail: ServerMessage.describe(error))
        }
        do {
            let setup: PostgresQuery = """
                SELECT set_config('synchronous_commit', 'on', false),
                       set_config('statement_timeout', \("\(configuration.statementTimeoutMs)ms"), false)
                """
            try run(setup, on: connection, configuration, what: "setting up a session", logger: logger)
        } catch {
            close(connection, configuration)
            throw error
        }
        return connection
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
