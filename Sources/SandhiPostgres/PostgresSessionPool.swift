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
final class PostgresSessionPool {
    private(set) var connections: [PostgresConnection]
    private let logger: Logger
    /// How long one wave of a batch (or a close) may take before the batch fails.
    let timeoutMs: Int

    private init(connections: [PostgresConnection], timeoutMs: Int, logger: Logger) {
        self.connections = connections
        self.timeoutMs = timeoutMs
        self.logger = logger
    }

    struct TimedOut: Error, CustomStringConvertible {
        var timeoutMs: Int
        var description: String { "no answer from PostgreSQL within \(timeoutMs) ms" }
    }

    struct ConnectionClosed: Error, CustomStringConvertible {
        var description: String { "the connection to PostgreSQL is closed" }
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
    static func wait<T: Sendable>(for future: EventLoopFuture<T>, timeoutMs: Int) throws -> T {
        let promise = future.eventLoop.makePromise(of: T.self)
        future.cascade(to: promise)
        let timer = future.eventLoop.scheduleTask(in: .milliseconds(Int64(timeoutMs))) {
            promise.fail(TimedOut(timeoutMs: timeoutMs))
        }
        defer { timer.cancel() }
        return try promise.futureResult.wait()
    }

    /// Opens `configuration.poolSize` connections. `beforeOthers` runs on the first one before
    /// the rest open (the bank fences off older sessions of its name there).
    static func open(_ configuration: PostgresBankConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger,
                     beforeOthers: (PostgresConnection) throws -> Void = { _ in }) throws -> PostgresSessionPool {
        precondition(configuration.poolSize > 0, "a pool needs at least one connection")
        let first = try connect(configuration, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        var connections = [first]
        do {
            try beforeOthers(first)
            for id in 1..<configuration.poolSize {
                connections.append(try connect(configuration, id: id, eventLoopGroup: eventLoopGroup, logger: logger))
            }
        } catch {
            for connection in connections { _ = try? wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs) }
            throw error
        }
        return PostgresSessionPool(connections: connections, timeoutMs: configuration.batchTimeoutMs, logger: logger)
    }

    /// One session, set up as every bank session is: named, with a lock timeout, and with
    /// `synchronous_commit` off. That last one is safe because nothing a vote or an
    /// acknowledgement depends on is an ordinary commit: PREPARE TRANSACTION, COMMIT PREPARED and
    /// ROLLBACK PREPARED flush the WAL to disk whatever `synchronous_commit` says, and the
    /// write-set row committed before a PREPARE has an earlier WAL position, so the PREPARE's
    /// flush carries it too. What it saves is an fsync per batch for those write-set rows and
    /// for their clean-up.
    static func connect(_ configuration: PostgresBankConfiguration, id: Int, eventLoopGroup: any EventLoopGroup,
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
        settings.options.additionalStartupParameters = [("application_name", configuration.applicationName)]
        let connection: PostgresConnection
        do {
            connection = try wait(for: PostgresConnection.connect(on: eventLoopGroup.next(), configuration: settings, id: id, logger: logger),
                                  timeoutMs: configuration.connectTimeoutMs + 1_000)
        } catch {
            throw PostgresBankError.unreachable(database: configuration.database, detail: PostgresBankError.describe(error))
        }
        do {
            let setup: PostgresQuery = """
                SELECT set_config('synchronous_commit', 'off', false),
                       set_config('lock_timeout', \("\(configuration.lockTimeoutMs)ms"), false)
                """
            try wait(for: connection.query(setup, logger: logger), timeoutMs: configuration.batchTimeoutMs)
        } catch {
            _ = try? wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs)
            throw PostgresBankError.statement(database: configuration.database, what: "setting up a session", detail: PostgresBankError.describe(error))
        }
        return connection
    }

    /// Runs `jobs`, spread round-robin over the connections: each connection runs its share one
    /// after another (a job's statements stay on its session), the connections side by side.
    /// Waits for all and returns each job's result in job order.
    func run<T: Sendable>(_ jobs: [@Sendable (PostgresConnection) -> EventLoopFuture<T>]) -> [Result<T, any Error>] {
        guard !jobs.isEmpty else { return [] }
        let lanes = min(connections.count, jobs.count)
        var futures: [EventLoopFuture<[(Int, Result<T, any Error>)]>] = []
        for lane in 0..<lanes {
            let connection = connections[lane]
            var chain = connection.eventLoop.makeSucceededFuture([(Int, Result<T, any Error>)]())
            for index in stride(from: lane, to: jobs.count, by: lanes) {
                let job = jobs[index]
                chain = chain.flatMap { done in
                    Self.unlessClosed(connection, job)
                        .map { Result<T, any Error>.success($0) }
                        .recover { Result<T, any Error>.failure($0) }
                        .map { done + [(index, $0)] }
                }
            }
            futures.append(chain)
        }
        var results = [Result<T, any Error>?](repeating: nil, count: jobs.count)
        for future in futures {
            // A chain never fails (every job's error is its result), but it can run out of time.
            do {
                for (index, result) in try Self.wait(for: future, timeoutMs: timeoutMs) { results[index] = result }
            } catch {
                for index in results.indices where results[index] == nil { results[index] = .failure(error) }
            }
        }
        return results.map { $0! }
    }

    /// Runs one job on the first connection and waits for it.
    func one<T: Sendable>(_ job: @escaping @Sendable (PostgresConnection) -> EventLoopFuture<T>) throws -> T {
        try run([job])[0].get()
    }

    func close() {
        for connection in connections {
            do {
                try Self.wait(for: connection.close(), timeoutMs: timeoutMs)
            } catch {
                logger.debug("closing a PostgreSQL connection failed", metadata: ["error": "\(PostgresBankError.describe(error))"])
            }
        }
        connections = []
    }
}
