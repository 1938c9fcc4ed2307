import Glibc
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// A fixed set of connections to one database, used from one thread (the participant's worker)
/// that blocks on their futures. Its jobs run on the connections' event loops; the blocking
/// `wait` happens on the caller's thread, which must not be an event loop (NIO checks).
///
/// Not postgres-nio's `PostgresClient`: that pool needs a task running its `run()` and hands out
/// connections per call, while a branch's BEGIN … PREPARE TRANSACTION must stay on one session,
/// and a batch wants to say "these jobs, spread over N sessions, each session's in order".
package final class PostgresSessionPool {
    private(set) var connections: [PostgresConnection]
    private let logger: Logger
    /// How long one wave of a batch (or a close) may take before the batch fails.
    let timeoutMs: Int

    /// Whether every job starts inside a transaction block the pool opened for it (see `open`).
    let startsInTransaction: Bool

    private init(connections: [PostgresConnection], timeoutMs: Int, startsInTransaction: Bool, logger: Logger) {
        self.connections = connections
        self.timeoutMs = timeoutMs
        self.startsInTransaction = startsInTransaction
        self.logger = logger
    }

    package struct TimedOut: Error, CustomStringConvertible {
        var timeoutMs: Int
        package var description: String { "no answer from PostgreSQL within \(timeoutMs) ms" }
    }

    package struct ConnectionClosed: Error, CustomStringConvertible {
        package init() {}
        package var description: String { "the connection to PostgreSQL is closed" }
    }

    /// A job, unless its connection has closed under it (the server ended the session, the
    /// network broke): postgres-nio never answers a query written to a closed connection, so
    /// that is checked first and fails the job at once.
    private static func unlessClosed<T>(_ connection: PostgresConnection,
                                        _ job: @Sendable (PostgresConnection) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        guard !connection.isClosed else { return connection.eventLoop.makeFailedFuture(ConnectionClosed()) }
        return job(connection)
    }

    /// Blocks until `future` completes or `timeoutMs` passes: no wait on the server is unbounded.
    @discardableResult
    package static func wait<T: Sendable>(for future: EventLoopFuture<T>, timeoutMs: Int) throws -> T {
        let promise = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: promise)
        let timer = future.eventLoop.scheduleTask(in: .milliseconds(Int64(timeoutMs))) {
            promise.fail(TimedOut(timeoutMs: timeoutMs))
        }
        defer { timer.cancel() }
        return try promise.futureResult.wait()
    }

    /// Opens `sessions` connections. `beforeOthers` runs on the first one before the rest open
    /// (the bank fences off older sessions of its name there).
    ///
    /// With `startsInTransaction`, the pool sends BEGIN on each connection as it opens and again
    /// after each job, without the job's result waiting for it, so every job finds its session
    /// inside a transaction block and saves that round trip (a group's staging: see
    /// `BranchStatements.stageGroup`). A block opened this way holds no snapshot, transaction id
    /// or lock until its first statement. Each job must end the block it was given (PREPARE,
    /// COMMIT or ROLLBACK); should a BEGIN fail, the next job on that session fails unrun.
    static func open(_ configuration: PostgresBankConfiguration, sessions: Int, startsInTransaction: Bool = false,
                     eventLoopGroup: any EventLoopGroup, logger: Logger,
                     beforeOthers: (PostgresConnection) throws -> Void = { _ in }) throws -> PostgresSessionPool {
        precondition(sessions > 0, "a pool needs at least one connection")
        let first = try connect(configuration, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        var connections = [first]
        do {
            try beforeOthers(first)
            // The rest side by side: a pool of dozens opened one at a time would keep a
            // restarting coordinator waiting for as many round trips and authentications.
            let opening = (1..<sessions).map { id in
                connectAndSetUp(configuration, id: id, eventLoopGroup: eventLoopGroup, logger: logger)
            }
            var failure: (any Error)?
            for future in opening {
                do {
                    connections.append(try wait(for: future, timeoutMs: configuration.connectTimeoutMs + configuration.batchTimeoutMs))
                } catch {
                    failure = failure ?? error
                }
            }
            if let failure { throw failure }
        } catch {
            for connection in connections { _ = try? wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs) }
            throw error
        }
        return PostgresSessionPool(connections: connections, timeoutMs: configuration.batchTimeoutMs,
                                   startsInTransaction: startsInTransaction, logger: logger)
    }

    /// How to reach the database: its endpoint and credentials, named for `pg_stat_activity`.
    package static func settings(for configuration: PostgresBankConfiguration) -> PostgresConnection.Configuration {
        settings(configuration.endpoint, username: configuration.username, password: configuration.password, database: configuration.database,
                 connectTimeoutMs: configuration.connectTimeoutMs, applicationName: configuration.applicationName)
    }

    /// How long a TCP connection of Sandhi's may be silent before either end probes the other,
    /// how often it probes then, and how many unanswered probes end it: about a minute to find
    /// a peer or path that is gone, where the kernels' default waits two hours before the
    /// first probe. Idle is the usual state of the decision log's session and of a quiet bank's.
    static let keepaliveIdleSeconds = 30
    static let keepaliveIntervalSeconds = 10
    static let keepaliveCount = 3

    /// A session's settings from its parts: every Sandhi session's, the banks', the decision
    /// log's (which has its own configuration type) and the hand-written bench's.
    ///
    /// Over TCP the server probes the idle connection too (`tcp_keepalives_*`, settings the
    /// server applies to its end from the startup packet): it ends the backend of a coordinator
    /// that is gone, and with it that session's advisory lock, about a minute later instead of
    /// hours; and the traffic keeps a NAT or firewall from dropping a quiet connection. (Our
    /// end's probes need our socket: `openSession`.)
    package static func settings(_ endpoint: PostgresBankConfiguration.Endpoint, username: String, password: String?, database: String,
                         connectTimeoutMs: Int, applicationName: String) -> PostgresConnection.Configuration {
        var settings: PostgresConnection.Configuration
        var startup = [("application_name", String(decoding: applicationName.utf8.prefix(63), as: UTF8.self))]
        switch endpoint {
        case .unixSocket(let folder, let port):
            settings = .init(unixSocketPath: "\(folder)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        case .tcp(let host, let port):
            settings = .init(host: host, port: port, username: username, password: password, database: database, tls: .disable)
            startup += [("tcp_keepalives_idle", String(keepaliveIdleSeconds)), ("tcp_keepalives_interval", String(keepaliveIntervalSeconds)),
                        ("tcp_keepalives_count", String(keepaliveCount))]
        }
        settings.options.connectTimeout = .milliseconds(Int64(connectTimeoutMs))
        settings.options.additionalStartupParameters = startup
        return settings
    }

    /// Why `openSession` failed: the server could not be reached (or refused the login), or
    /// it refused the session's setup. Each caller says it in its own error type.
    package enum SessionOpeningError: Error {
        case unreachable(any Error)
        case setUp(any Error)
    }

    /// Opens a session as every Sandhi session is opened, a bank's or the decision log's, and
    /// sets it up before anything else runs on it:
    ///
    /// - `synchronous_commit` at least `on` (`remote_apply` is kept). PREPARE TRANSACTION,
    ///   COMMIT PREPARED and ROLLBACK PREPARED flush the WAL locally whatever that setting
    ///   says, but only under `on` do they (and every plain commit) also wait for the server's
    ///   synchronous standbys: a YES vote, a commit acknowledgement or a logged decision must
    ///   survive a failover. Statements that may commit asynchronously say so themselves, for
    ///   their own transaction (see `BranchStatements`).
    /// - The timeouts that end an idle session, an idle transaction block or a long transaction
    ///   off. A bank's session waits between batches, a staging one inside a transaction block
    ///   (see `open`); the decision log's waits between decisions, and holds the advisory lock
    ///   that keeps a second coordinator out. A server that sets them (managed services often
    ///   do) would end the session under its user: a quiet coordinator would lose its log, halt
    ///   at its next decision, and give up its lock while it still runs. `transaction_timeout`
    ///   exists from PostgreSQL 17 on, `idle_session_timeout` from 14 on, hence the lookup.
    /// - `lock_timeout` and `statement_timeout` where given.
    ///
    /// Over TCP our end of the connection probes it when idle (`SO_KEEPALIVE`, timed as in
    /// `settings`): a server or path that is gone closes the session here within about a
    /// minute, so the next statement fails at once instead of waiting out its timeout.
    package static func openSession(_ endpoint: PostgresBankConfiguration.Endpoint, username: String, password: String?, database: String,
                                    connectTimeoutMs: Int, applicationName: String, lockTimeoutMs: Int? = nil, statementTimeoutMs: Int? = nil,
                                    id: Int, eventLoopGroup: any EventLoopGroup, logger: Logger) -> EventLoopFuture<PostgresConnection> {
        let eventLoop = eventLoopGroup.next()
        let settings = settings(endpoint, username: username, password: password, database: database,
                                connectTimeoutMs: connectTimeoutMs, applicationName: applicationName)
        // The socket, opened here over TCP, and the settings that hand it over.
        let socket: EventLoopFuture<(PostgresConnection.Configuration, (any Channel)?)>
        if case .tcp(let host, let port) = endpoint, let bootstrap = ClientBootstrap(validatingGroup: eventLoop) {
            // postgres-nio opens its TCP sockets with no way to set options on them, so the
            // socket is opened here and handed over, with the same options and parameters.
            socket = bootstrap
                .connectTimeout(.milliseconds(Int64(connectTimeoutMs)))
                .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
                .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_KEEPIDLE)), value: keepaliveIdleSeconds)
                .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_KEEPINTVL)), value: keepaliveIntervalSeconds)
                .channelOption(ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_KEEPCNT)), value: keepaliveCount)
                .connect(host: host, port: port)
                .map { channel in
                    var handed = PostgresConnection.Configuration(establishedChannel: channel, username: username, password: password, database: database)
                    handed.options = settings.options
                    return (handed, channel)
                }
        } else {
            socket = eventLoop.makeSucceededFuture((settings, nil))
        }
        var setup = "SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit') WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END, false), "
            + "(SELECT count(set_config(name, '0', false)) FROM pg_settings "
            + "WHERE name IN ('idle_in_transaction_session_timeout', 'idle_session_timeout', 'transaction_timeout'))"
        var binds = PostgresBindings()
        for (name, ms) in [("lock_timeout", lockTimeoutMs), ("statement_timeout", statementTimeoutMs)] {
            guard let ms else { continue }
            binds.append("\(ms)ms")
            setup += ", set_config('\(name)', $\(binds.count), false)"
        }
        let query = PostgresQuery(unsafeSQL: setup, binds: binds)
        return socket
            .flatMap { configuration, channel in
                PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger).flatMapError { error in
                    // A login that failed leaves no socket of ours open behind it.
                    channel?.close(promise: nil)
                    return eventLoop.makeFailedFuture(error)
                }
            }
            .flatMapErrorThrowing { throw SessionOpeningError.unreachable($0) }
            .flatMap { connection in
                connection.query(query, logger: logger).map { _ in connection }.flatMapError { error in
                    connection.close().flatMapThrowing { throw SessionOpeningError.setUp(error) }
                }
            }
    }

    /// One bank session, set up as every Sandhi session is (`openSession`), with the bank's
    /// lock timeout and its name for `pg_stat_activity`.
    package static func connect(_ configuration: PostgresBankConfiguration, id: Int, eventLoopGroup: any EventLoopGroup,
                        logger: Logger) throws -> PostgresConnection {
        try wait(for: connectAndSetUp(configuration, id: id, eventLoopGroup: eventLoopGroup, logger: logger),
                 timeoutMs: configuration.connectTimeoutMs + configuration.batchTimeoutMs)
    }

    /// `connect` without waiting; its errors are already the bank's.
    private static func connectAndSetUp(_ configuration: PostgresBankConfiguration, id: Int, eventLoopGroup: any EventLoopGroup,
                                        logger: Logger) -> EventLoopFuture<PostgresConnection> {
        let database = configuration.database
        return openSession(configuration.endpoint, username: configuration.username, password: configuration.password, database: database,
                           connectTimeoutMs: configuration.connectTimeoutMs, applicationName: configuration.applicationName,
                           lockTimeoutMs: configuration.lockTimeoutMs, id: id, eventLoopGroup: eventLoopGroup, logger: logger)
            .flatMapErrorThrowing { error in
                switch error {
                case SessionOpeningError.setUp(let error):
                    throw PostgresBankError.statement(database: database, what: "setting up a session", detail: ServerMessage.describe(error))
                case SessionOpeningError.unreachable(let error):
                    throw PostgresBankError.unreachable(database: database, detail: ServerMessage.describe(error))
                default:
                    throw PostgresBankError.unreachable(database: database, detail: ServerMessage.describe(error))
                }
            }
    }

    /// The last job started on each connection: the next one there runs after it.
    private var laneTails: [EventLoopFuture<Void>] = []
    /// Where the next `start` begins spreading jobs, so that jobs of successive calls take
    /// different connections while there are idle ones.
    private var nextLane = 0

    /// Starts `jobs` without waiting, spread round-robin over the connections from where the
    /// previous call stopped: each connection runs its share one after another, after whatever
    /// it was given before (a job's statements stay on its session), the connections side by
    /// side. A job may wait for a future of an earlier call; since every connection runs its
    /// jobs in the order they were started, that never waits on a job queued behind itself.
    /// Each future completes with its job's result, or fails with its error.
    func start<T: Sendable>(_ jobs: [@Sendable (PostgresConnection) -> EventLoopFuture<T>]) -> [EventLoopFuture<T>] {
        precondition(!connections.isEmpty, "start on a closed pool")
        if laneTails.count != connections.count {
            laneTails = connections.map { startsInTransaction ? Self.begin(on: $0, logger: logger) : $0.eventLoop.makeSucceededVoidFuture() }
        }
        var futures: [EventLoopFuture<T>] = []
        futures.reserveCapacity(jobs.count)
        for job in jobs {
            let lane = nextLane
            nextLane = (nextLane + 1) % connections.count
            let connection = connections[lane]
            let result = laneTails[lane].flatMap { Self.unlessClosed(connection, job) }
            // The lane goes on after a failed job too: the failure is that job's result.
            let ended = result.map { _ in }.recover { _ in }
            laneTails[lane] = startsInTransaction ? ended.flatMap { [logger] in Self.begin(on: connection, logger: logger) } : ended
            futures.append(result)
        }
        return futures
    }

    private static func begin(on connection: PostgresConnection, logger: Logger) -> EventLoopFuture<Void> {
        unlessClosed(connection) { $0.query("BEGIN", logger: logger).map { _ in } }
    }

    /// Waits for `futures` (of `start`), each at most until `timeoutMs` after the call; returns
    /// their results in order.
    ///
    /// One wait for all of them: the calling thread is woken once, when the last completes, not
    /// once per future (a wake-up of a blocked thread costs more than a small statement).
    func collect<T: Sendable>(_ futures: [EventLoopFuture<T>]) -> [Result<T, any Error>] {
        guard let first = futures.first else { return [] }
        do {
            return try Self.wait(for: EventLoopFuture.whenAllComplete(futures, on: first.eventLoop), timeoutMs: timeoutMs)
        } catch {
            // Out of time: whatever has completed says how (its own error, if it failed); the
            // rest failed with the timeout.
            return futures.map { future in
                Result { try Self.wait(for: future, timeoutMs: 1) }.mapError { own in own is TimedOut ? error : own }
            }
        }
    }

    /// Starts `jobs` and waits for all of them.
    func run<T: Sendable>(_ jobs: [@Sendable (PostgresConnection) -> EventLoopFuture<T>]) -> [Result<T, any Error>] {
        collect(start(jobs))
    }

    /// Runs one job on the next connection in turn and waits for it.
    func one<T: Sendable>(_ job: @escaping @Sendable (PostgresConnection) -> EventLoopFuture<T>) throws -> T {
        try run([job])[0].get()
    }

    func close() {
        laneTails = []
        for connection in connections {
            do {
                try Self.wait(for: connection.close(), timeoutMs: timeoutMs)
            } catch {
                logger.debug("closing a PostgreSQL connection failed", metadata: ["error": "\(ServerMessage.describe(error))"])
            }
        }
        connections = []
    }
}
