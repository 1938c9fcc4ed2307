import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SandhiEngine
import SandhiPostgres

/// The yardstick `sandhi bench --participants postgres` is measured against: the cross-database
/// transfer an engineer writes by hand with PostgreSQL's two-phase commit and no coordinator.
///
/// Each worker holds one session per database and, per transfer: `BEGIN` on both; the debit
/// (`UPDATE … WHERE balance >= amount`, no row is a refusal) on one and the credit on the other;
/// `PREPARE TRANSACTION` on both; then `COMMIT PREPARED` on both (or `ROLLBACK` / `ROLLBACK
/// PREPARED` after a refusal). The two databases are driven side by side at every step, which is
/// the best such a client does: a worker waits for two PREPARE flushes and two COMMIT PREPARED
/// flushes per transfer, and nothing is batched across workers except what PostgreSQL's own WAL
/// flush groups. There is no decision log, so a crash of this client between the two COMMIT
/// PREPAREDs leaves a branch prepared forever: the very thing a coordinator is for.
///
/// Its table, `handwritten_accounts`, is its own, so it can share a database with a bank.
public enum HandWrittenTwoPhaseBench {
    public struct Options: Sendable {
        public var workers = 4
        public var durationMs: UInt64 = 5_000
        public var accounts = 10_000
        public var openingBalancePaise: Int64 = 10_000_000
        public var seed: UInt64 = 1
        /// How long a branch waits for a row before the transfer is given up (see `branch`).
        public var lockTimeoutMs = 200
        public init() {}
    }

    public struct Report: Sendable {
        public var workers: Int
        public var transfers: Int
        public var refused: Int
        public var elapsedMs: Double
        public var transfersPerSecond: Double { elapsedMs > 0 ? Double(transfers) * 1_000 / elapsedMs : 0 }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static let table = "handwritten_accounts"

    /// (Re)creates the table in both databases with `options.accounts` accounts each.
    public static func createTables(_ databases: [PostgresBankConfiguration], options: Options, logger: Logger,
                                    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws {
        for database in databases {
            let connection = try await connect(database, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
            do {
                _ = try await connection.query("DROP TABLE IF EXISTS handwritten_accounts", logger: logger)
                _ = try await connection.query("""
                    CREATE TABLE handwritten_accounts(id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))
                    """, logger: logger)
                _ = try await connection.query("""
                    INSERT INTO handwritten_accounts SELECT g, \(options.openingBalancePaise) FROM generate_series(1, \(options.accounts)) g
                    """, logger: logger)
                _ = try await connection.query("VACUUM ANALYZE handwritten_accounts", logger: logger)
            } catch {
                try? await connection.close()
                throw Failure(description: "preparing \(database.database) for the hand-written client: \(ServerMessage.describe(error))")
            }
            try await connection.close()
        }
    }

    /// The money in both tables together; the same before and after a run, or the client is wrong.
    public static func total(_ databases: [PostgresBankConfiguration], logger: Logger,
                             eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Int64 {
        var sum: Int64 = 0
        for database in databases {
            let connection = try await connect(database, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
            do {
                let rows = try await connection.query("SELECT coalesce(sum(balance), 0)::bigint FROM handwritten_accounts", logger: logger)
                for try await value in rows.decode(Int64.self) { sum += value }
            } catch {
                try? await connection.close()
                throw Failure(description: "summing \(database.database)'s hand-written accounts: \(ServerMessage.describe(error))")
            }
            try await connection.close()
        }
        return sum
    }

    /// Runs `options.workers` workers for `options.durationMs` against two databases.
    public static func run(_ databases: [PostgresBankConfiguration], options: Options, logger: Logger,
                           eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Report {
        precondition(databases.count == 2, "the hand-written client moves money between exactly two databases")
        precondition(options.workers >= 1 && options.accounts >= 1)
        var sessions: [(PostgresConnection, PostgresConnection)] = []
        var opened: [PostgresConnection] = []
        do {
            for worker in 0..<options.workers {
                for (index, database) in databases.enumerated() {
                    let connection = try await connect(database, id: 2 * worker + index, eventLoopGroup: eventLoopGroup, logger: logger)
                    opened.append(connection)
                    _ = try await connection.query("SELECT set_config('lock_timeout', \("\(options.lockTimeoutMs)ms"), false)", logger: logger)
                }
                sessions.append((opened[opened.count - 2], opened[opened.count - 1]))
            }
        } catch {
            for connection in opened { try? await connection.close() }
            throw Failure(description: "connecting the hand-written client: \(ServerMessage.describe(error))")
        }
        // Gids are server-wide: a run of its own, so that neither a run beside this one nor one
        // cut short before it can collide with this one's.
        let run = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: .milliseconds(Int64(options.durationMs)))
        let outcome: Result<(Int, Int), any Error>
        do {
            outcome = .success(try await transfers(over: sessions, until: deadline, clock: clock, run: run, options: options, logger: logger))
        } catch {
            outcome = .failure(Failure(description: "the hand-written client failed: \(ServerMessage.describe(error))"))
        }
        let elapsed = clock.now - start
        for connection in opened { try? await connection.close() }
        let counts = try outcome.get()
        let elapsedMs = Double(elapsed.components.seconds) * 1_000 + Double(elapsed.components.attoseconds) / 1e15
        return Report(workers: options.workers, transfers: counts.0, refused: counts.1, elapsedMs: elapsedMs)
    }

    /// Every worker's loop until the deadline; (committed, refused) over all of them.
    private static func transfers(over sessions: [(PostgresConnection, PostgresConnection)], until deadline: ContinuousClock.Instant,
                                  clock: ContinuousClock, run: String, options: Options, logger: Logger) async throws -> (Int, Int) {
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for (worker, pair) in sessions.enumerated() {
                group.addTask {
                    var random = SplitMix64(seed: options.seed &+ UInt64(worker) &* 0x9E37_79B9_7F4A_7C15)
                    var done = 0, refused = 0
                    while clock.now < deadline {
                        let forward = random.next() & 1 == 0
                        let (from, to) = forward ? (pair.0, pair.1) : (pair.1, pair.0)
                        let gid = "handwritten:\(run):\(worker):\(done + refused)"
                        let committed = try await transfer(from: from, to: to, fromAccount: Int(random.next() % UInt64(options.accounts)) + 1,
                                                           toAccount: Int(random.next() % UInt64(options.accounts)) + 1,
                                                           amount: Int64(random.next() % 1_000) + 1, gid: gid, logger: logger)
                        if committed { done += 1 } else { refused += 1 }
                    }
                    return (done, refused)
                }
            }
            var total = (0, 0)
            for try await (done, refused) in group { total = (total.0 + done, total.1 + refused) }
            return total
        }
    }

    /// One transfer, both databases side by side at each step. Returns whether it committed.
    private static func transfer(from: PostgresConnection, to: PostgresConnection, fromAccount: Int, toAccount: Int,
                                 amount: Int64, gid: String, logger: Logger) async throws -> Bool {
        // Gids are server-wide, and both databases may share a server: one per branch.
        let (fromGid, toGid) = (gid + ":debit", gid + ":credit")
        async let debited = branch(from, "UPDATE handwritten_accounts SET balance = balance - \(amount) WHERE id = \(fromAccount) AND balance >= \(amount)",
                                   gid: fromGid, logger: logger)
        async let credited = branch(to, "UPDATE handwritten_accounts SET balance = balance + \(amount) WHERE id = \(toAccount)",
                                    gid: toGid, logger: logger)
        let first: Bool, second: Bool
        do {
            (first, second) = try await (debited, credited)
        } catch {
            // One side failed; the other may stand prepared. A client that leaves it there holds
            // its row locked for good: roll back both, whatever state each is in.
            for (connection, gid) in [(from, fromGid), (to, toGid)] {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                _ = try? await connection.query(PostgresQuery(unsafeSQL: "ROLLBACK PREPARED '\(gid)'"), logger: logger)
            }
            throw error
        }
        let verb = first && second ? "COMMIT PREPARED" : "ROLLBACK PREPARED"
        async let finishFirst: Void = finish(from, prepared: first, "\(verb) '\(fromGid)'", logger: logger)
        async let finishSecond: Void = finish(to, prepared: second, "\(verb) '\(toGid)'", logger: logger)
        _ = try await (finishFirst, finishSecond)
        return first && second
    }

    /// BEGIN, the update, PREPARE TRANSACTION; or ROLLBACK if the update changed no row or
    /// waited out `lockTimeoutMs`. Without a coordinator nobody sees a deadlock that spans the
    /// two databases (a worker prepared in one waits in the other for a row another worker's
    /// prepared branch holds, and that one the other way round): the lock timeout is the only
    /// way out, as in any such client.
    private static func branch(_ connection: PostgresConnection, _ update: String, gid: String, logger: Logger) async throws -> Bool {
        _ = try await connection.query("BEGIN", logger: logger)
        let changed: [PostgresRow]
        do {
            changed = try await connection.query(PostgresQuery(unsafeSQL: update + " RETURNING id"), logger: logger).collect()
        } catch where [SQLState.lockNotAvailable, SQLState.deadlockDetected].contains(ServerMessage.sqlState(error)) {
            _ = try await connection.query("ROLLBACK", logger: logger)
            return false
        }
        guard changed.count == 1 else {
            _ = try await connection.query("ROLLBACK", logger: logger)
            return false
        }
        _ = try await connection.query(PostgresQuery(unsafeSQL: "PREPARE TRANSACTION '\(gid)'"), logger: logger)
        return true
    }

    private static func finish(_ connection: PostgresConnection, prepared: Bool, _ sql: String, logger: Logger) async throws {
        guard prepared else { return }
        _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    private static func connect(_ database: PostgresBankConfiguration, id: Int, eventLoopGroup: any EventLoopGroup,
                                logger: Logger) async throws -> PostgresConnection {
        do {
            // Named as its own, not as the bank's sessions: a bank opening on this database
            // ends every older session with the bank's name.
            let settings = PostgresSessionPool.settings(database.endpoint, username: database.username, password: database.password,
                                                        database: database.database, connectTimeoutMs: database.connectTimeoutMs,
                                                        applicationName: "sandhi-handwritten-bench")
            return try await PostgresConnection.connect(on: eventLoopGroup.next(), configuration: settings, id: id, logger: logger).get()
        } catch {
            throw PostgresBankError.unreachable(database: database.database, detail: ServerMessage.describe(error))
        }
    }
}
