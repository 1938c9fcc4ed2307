import Logging
import SandhiEngine
import SandhiPostgres
import SandhiTestSupport

/// One test's bank: a fresh database in the suite's cluster with alice (₹1,000) and bob (₹500)
/// at participant `hdfc`. Each test is its own coordinator instance (`c-<database>`): gids are
/// unique across a whole PostgreSQL server, and the suite's tests share one.
struct PostgresBankFixture: Sendable {
    static let hdfc = ParticipantID(validated: "hdfc")
    static let alice = AccountID(validated: "alice"), bob = AccountID(validated: "bob")
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    let cluster: PostgresCluster
    let database: String
    let configuration: PostgresBankConfiguration
    let instance: CoordinatorInstance

    /// Creates the database and the bank in it; blocking.
    init(cluster: PostgresCluster) throws {
        self.cluster = cluster
        database = try cluster.createDatabase()
        instance = CoordinatorInstance(validated: "c-\(database)")
        configuration = PostgresBankConfiguration(endpoint: .unixSocket(folder: cluster.socketDirectory), username: PostgresCluster.superuser,
                                                  database: database, participant: Self.hdfc, instance: instance)
        try PostgresBank.create(configuration, accounts: [(Self.alice, .rupees(1_000)), (Self.bob, .rupees(500))], logger: Self.logger)
    }

    func open() throws -> BankHandle { BankHandle(try PostgresBank(configuration, logger: Self.logger)) }

    func gid(_ tx: TransactionID) -> String { GlobalTransactionID(instance: instance, transaction: tx, participant: Self.hdfc).description }

    /// The gid of one prepared transaction holding the branches of `transactions` (ascending).
    func group(_ transactions: TransactionID...) -> String {
        GlobalTransactionID(instance: instance, transactions: transactions, participant: Self.hdfc).description
    }

    /// Straight from PostgreSQL with psql, not through the bank.
    func balances() throws -> String { try cluster.sql(database, "SELECT id || '=' || balance FROM accounts ORDER BY id") }

    /// The gids of `transactions`, sorted, one per line: what `preparedGids` shows.
    func gids(_ transactions: TransactionID...) -> String { transactions.map(gid).sorted().joined(separator: "\n") }

    /// The gids prepared in this database, sorted, one per line.
    func preparedGids() throws -> String {
        try cluster.sql(database, "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid")
    }

    func count(_ table: String) throws -> String { try cluster.sql(database, "SELECT count(*) FROM \(table)") }

    static func tx(_ sequence: UInt64) -> TransactionID { TransactionID(epoch: 1, sequence: sequence) }

    static func prepare(_ tx: TransactionID, _ operations: [SandhiEngine.Operation]) -> ParticipantMessage {
        .prepare(tx, operations: operations, writers: [hdfc])
    }

    static func transfer(_ tx: TransactionID, rupees: Int64) -> ParticipantMessage {
        prepare(tx, [.debit(account: alice, amount: .rupees(rupees)), .credit(account: bob, amount: .rupees(rupees))])
    }
}

/// A bank handed between a test and the threads it blocks on. Used by one thread at a time
/// (each step awaits the last), which is what makes the unchecked sendability honest.
final class BankHandle: @unchecked Sendable {
    let bank: PostgresBank

    init(_ bank: PostgresBank) { self.bank = bank }

    func process(_ messages: [ParticipantMessage]) async throws -> [ParticipantReply] {
        try await onOwnThread { try self.bank.process(messages) }
    }

    func close() async throws { try await onOwnThread { self.bank.close() } }

    /// Any other call of the bank's, blocking, on a thread of its own.
    func call<T: Sendable>(_ body: @escaping @Sendable (PostgresBank) throws -> T) async throws -> T {
        try await onOwnThread { try body(self.bank) }
    }
}

/// Blocking work (psql, the bank's futures) off the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onOwnThread(body)
}

func currentCluster() throws -> PostgresCluster {
    guard let cluster = PostgresCluster.current else { throw PostgresCluster.Failure(description: "no cluster: is the suite missing .postgresCluster?") }
    return cluster
}
