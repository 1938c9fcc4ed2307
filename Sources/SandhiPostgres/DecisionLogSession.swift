import Glibc
import Logging
import NIOCore
import PostgresNIO

/// The decision log's one session to PostgreSQL, run from a thread that is not an event loop
/// and blocks on postgres-nio's futures (the pattern `PostgresSessionPool` uses for banks).
///
/// A copy of the few lines of `PostgresSessionPool.connect`/`wait` and
/// `PostgresBankError.describe` the log needs, kept apart on purpose: a bank's sessions run with
/// `synchronous_commit = off` (its durable steps are PREPARE and COMMIT PREPARED, which flush
/// whatever that setting says), while every commit of the log must be flushed, so the settings
/// differ; and the bank's pool is tuned for the bank's batches.
enum DecisionLogSession {
    struct TimedOut: Error, CustomStringConvertible {
        var timeoutMs: Int
        var description: String { "no answer from PostgreSQL within \(timeoutMs) ms" }
    }

    struct ConnectionClosed: Error, CustomStringConvertible {
        var description: String { "the connection to PostgreSQL is closed" }
    }

    /// Opens a session named `sandhi-log:<instance>:<role>:<pid>` (the pid lets a refused second
    /// coordinator name the holder), with `synchronous_commit = on` whatever the server's,
    /// database's or role's default says, and a statement timeout.
    static func connect(_ configuration: PostgresDecisionLogConfiguration, role: String, eventLoopGroup: any EventLoopGroup,
                        logger: Logger) throws -> PostgresConnection {
        var settings: PostgresConnection.Configuration
        switch configuration.endpoint {
        case .unixSocket(let folder, let port):
            settings = .init(unixSocketPath: "\(folder)/.s.PGSQL.\(port)", username: configuration.username,
                             password: configuration.password, database: configuration.database)
        case .tcp(let host, let port):
            settings = .init(host: host, port: port, username: configuration.username, password: configuration.password,
                             database: configuration.database, tls: .disable)
        }
        settings.options.connectTimeout = .milliseconds(Int64(configuration.connectTimeoutMs))
        let name = String(decoding: "sandhi-log:\(configuration.instance.name):\(role):\(getpid())".utf8.prefix(63), as: UTF8.self)
        settings.options.additionalStartupParameters = [("application_name", name)]
        let connection: PostgresConnection
        do {
            connection = try wait(for: PostgresConnection.connect(on: eventLoopGroup.next(), configuration: settings, id: 0, logger: logger),
                                  timeoutMs: configuration.connectTimeoutMs + 1_000)
        } catch {
            throw PostgresDecisionLogError.unreachable(database: configuration.database, detail: describe(error))
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
            guard !connection.isClosed else { throw ConnectionClosed() }
            return try wait(for: connection.query(query, logger: logger), timeoutMs: configuration.statementTimeoutMs + 1_000)
        } catch {
            throw PostgresDecisionLogError.statement(database: configuration.database, what: what, detail: describe(error))
        }
    }

    static func close(_ connection: PostgresConnection, _ configuration: PostgresDecisionLogConfiguration) {
        _ = try? wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs)
    }

    /// Blocks until `future` completes or `timeoutMs` passes: no wait on the server is unbounded.
    @discardableResult
    static func wait<T: Sendable>(for future: EventLoopFuture<T>, timeoutMs: Int) throws -> T {
        let promise = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: promise)
        let timer = future.eventLoop.scheduleTask(in: .milliseconds(Int64(timeoutMs))) {
            promise.fail(TimedOut(timeoutMs: timeoutMs))
        }
        defer { timer.cancel() }
        return try promise.futureResult.wait()
    }

    /// The server's message and SQLSTATE (postgres-nio's own description of a `PSQLError` hides
    /// them), else the error's own words; one line.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo, let message = info[.message] {
            return "\(message) (SQLSTATE \(info[.sqlState] ?? "?"))"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
}
