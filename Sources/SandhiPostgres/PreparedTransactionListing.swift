import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SandhiEngine

/// Prepared transactions in a bank's database that are not this coordinator's: other Sandhi
/// coordinators', or not Sandhi's at all. Each holds its locks and holds back VACUUM until
/// someone finishes it, so an operator must see them; but only their owner knows their
/// outcome, so Sandhi lists them and never touches them (`sandhi recover --orphans`).
public struct ForeignPreparedTransaction: Sendable, Equatable {
    public var gid: String
    /// When it was prepared, as PostgreSQL reports it.
    public var preparedAt: String
    /// How long ago, in seconds.
    public var ageSeconds: Int64
    /// The role that prepared it.
    public var owner: String
    /// Whether the gid is another Sandhi coordinator's (its instance is named in it).
    public var isSandhi: Bool
}

extension PostgresBank {
    /// This coordinator instance's prepared transactions for `configuration`'s participant, and
    /// the votes held by write-sets alone (a split a crash interrupted), read as opening the bank
    /// reads them (`PreparedBranchScan`) but on a session of their own, touching nothing: what
    /// `sandhi recover` is about to settle, under the names PostgreSQL knows them by.
    public static func ownPreparedTransactions(_ configuration: PostgresBankConfiguration, logger: Logger,
                                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
        throws -> (prepared: [GlobalTransactionID], votes: [TransactionID]) {
        let pool = try PostgresSessionPool.open(configuration, sessions: 1, eventLoopGroup: eventLoopGroup, logger: logger)
        defer { pool.close() }
        do {
            let scan = try PreparedBranchScan.scan(configuration, on: pool, logger: logger)
            return (scan.groups.map(\.gid), scan.loose.map(\.transaction).sorted())
        } catch let error as PostgresBankError {
            throw error
        } catch {
            throw PostgresBankError.statement(database: configuration.database, what: "listing prepared transactions",
                                              detail: ServerMessage.describe(error))
        }
    }

    /// Lists, changing nothing, the prepared transactions in `configuration`'s database whose gid
    /// is not one of `configuration.instance`'s.
    public static func foreignPreparedTransactions(_ configuration: PostgresBankConfiguration, logger: Logger,
                                                   eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws -> [ForeignPreparedTransaction] {
        let connection = try PostgresSessionPool.connect(configuration, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        defer { _ = try? PostgresSessionPool.wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs) }
        let query: PostgresQuery = """
            SELECT gid, prepared::text, EXTRACT(EPOCH FROM now() - prepared)::bigint, owner
            FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared
            """
        let result: PostgresQueryResult
        do {
            result = try PostgresSessionPool.wait(for: connection.query(query, logger: logger), timeoutMs: configuration.batchTimeoutMs)
        } catch {
            throw PostgresBankError.statement(database: configuration.database, what: "listing prepared transactions",
                                              detail: ServerMessage.describe(error))
        }
        var foreign: [ForeignPreparedTransaction] = []
        for row in result.rows {
            let (gid, preparedAt, ageSeconds, owner) = try row.decode((String, String, Int64, String).self)
            let parsed = GlobalTransactionID(parsing: gid)
            if parsed?.instance == configuration.instance { continue }
            foreign.append(ForeignPreparedTransaction(gid: gid, preparedAt: preparedAt, ageSeconds: ageSeconds, owner: owner,
                                                      isSandhi: parsed != nil))
        }
        return foreign
    }
}
