import Logging
import NIOCore
import PostgresNIO
import SandhiEngine

/// A branch to stage: validate its operations against the accounts and, if they hold, write them
/// (to be prepared with the rest of its group).
struct StageRequest: Sendable {
    var transaction: TransactionID
    var operations: [Operation]
    var writers: [ParticipantID]
    /// A read-only branch: validated with plain reads, nothing written or prepared.
    var readOnly: Bool
}

/// How staging a branch ended.
enum StageOutcome: Sendable {
    /// Validated; for a writing branch, written (and prepared or committed with its group).
    case staged(observed: [Observation])
    /// Nothing written; the refusal goes out as a NO vote.
    case refused(Refusal)
    /// The branch committed here before (a stale duplicate PREPARE); nothing staged.
    case alreadyCommitted
}

/// A branch PostgreSQL shows settled by hand otherwise than the coordinator decided (a COMMIT
/// PREPARED of a group the coordinator rolls back, a ROLLBACK PREPARED of one it commits whose
/// member cannot be applied again): the engine's heuristic outcome, with the branch's work.
struct SettledByHand: Sendable, Equatable {
    var transaction: TransactionID
    var heuristic: ParticipantProtocol.Heuristic
    /// The coordinator's question the decision that found it carried, echoed in the report.
    var confirming: ConfirmationTag? = nil

    var reply: ParticipantReply {
        .heuristic(transaction, committed: heuristic.committed, operations: heuristic.operations, writers: heuristic.writers,
                   confirming: confirming)
    }
}

/// The statements of a branch's life in PostgreSQL that are not a group's staging
/// (`BranchStatements+Group`), each a job for `PostgresSessionPool.run`: futures on the
/// connection's event loop, never blocking it.
struct BranchStatements: Sendable {
    let participant: ParticipantID
    let instance: CoordinatorInstance
    let logger: Logger
    /// The bank's fault hook (`PostgresBank.faultHook`): nil but in tests.
    var faultHook: PostgresBank.FaultHook?

    init(participant: ParticipantID, instance: CoordinatorInstance, logger: Logger) {
        self.participant = participant
        self.instance = instance
        self.logger = logger
    }

    var instanceName: String { instance.name }

    // MARK: - Write-sets (sandhi_intents) and votes (sandhi_voted)

    /// The write-set statements commit asynchronously (`synchronous_commit` off for their own
    /// transaction only, set inside the statement): nothing waits on them being durable. A
    /// write-set row matters only once its branch's PREPARE is durable, and the PREPARE comes
    /// later in the WAL, so its flush carries the row; a lost clean-up is redone when the bank
    /// opens. That saves a WAL flush per batch on the way to every PREPARE.
    /// Each statement names `quick` in a condition that refers to nothing of the row, which
    /// PostgreSQL evaluates once, before anything else, even when no row qualifies.
    static let asynchronousCommit = "quick AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS setting)"
    static let whenQuick = "(SELECT setting FROM quick) IS NOT NULL"
    /// The same condition for a statement that keeps the session's `synchronous_commit` (at
    /// least `on`, see `PostgresSessionPool.connect`): its commit returns once flushed.
    static let sessionCommit = "quick AS (SELECT 'on' AS setting)"

    /// Commits the write-sets of `requests` in one statement, before any of them stages, and
    /// deletes the write-sets (and votes) of the finished branches in `finished` in the same one.
    /// With `synchronously`, the commit waits for its WAL flush (the session's own setting)
    /// instead of riding on a later PREPARE's: for a deletion that is acknowledged at once.
    func recordIntents(_ requests: [StageRequest], forgetting finished: [TransactionID], nowMs: Int64,
                       synchronously: Bool = false) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let transactions = requests.map { Int64(bitPattern: $0.transaction.rawValue) }
        let operations = requests.map { ByteBuffer(bytes: OperationCodec.encode($0.operations)) }
        let writers = requests.map { WriterList.encode($0.writers) }
        let staging = Set(requests.map(\.transaction))
        // A transaction staged again (a retried PREPARE of a branch that voted NO) keeps its row.
        let gone = finished.filter { !staging.contains($0) }.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        let quick = synchronously ? Self.sessionCommit : Self.asynchronousCommit
        return { connection in
            let query: PostgresQuery = """
                WITH \(unescaped: quick),
                gone_votes AS (DELETE FROM sandhi_voted WHERE \(unescaped: Self.whenQuick) AND instance = \(instance) AND tx = ANY(\(gone)::bigint[])),
                gone_notes AS (DELETE FROM sandhi_rolling_back WHERE \(unescaped: Self.whenQuick) AND instance = \(instance) AND tx = ANY(\(gone)::bigint[])),
                gone_intents AS (DELETE FROM sandhi_intents WHERE \(unescaped: Self.whenQuick) AND instance = \(instance) AND tx = ANY(\(gone)::bigint[]))
                INSERT INTO sandhi_intents(instance, tx, operations, writers, staged_at_ms)
                SELECT \(instance), tx, operations, writers, \(nowMs)
                FROM unnest(\(transactions)::bigint[], \(operations)::bytea[], \(writers)::text[]) AS u(tx, operations, writers)
                WHERE \(unescaped: Self.whenQuick)
                ON CONFLICT (instance, tx) DO UPDATE
                SET operations = EXCLUDED.operations, writers = EXCLUDED.writers, staged_at_ms = EXCLUDED.staged_at_ms
                """
            return connection.query(query, logger: logger).map { _ in }
        }
    }

    /// Deletes the write-sets, votes and rollback notes of branches that are finished, or never voted.
    /// Asynchronously, like the write-sets, unless `synchronously`: where the rows are a vote
    /// (a YES held by its rows alone, rolled back) and the rollback is acknowledged next, a
    /// server crash must not bring them back (see `PostgresBank.startSettling`).
    func forgetIntents(_ transactions: [TransactionID], synchronously: Bool = false) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        recordIntents([], forgetting: transactions, nowMs: 0, synchronously: synchronously)
    }

    /// Makes the write-set rows of `transactions` their YES votes (`sandhi_voted`), before their
    /// group's prepared transaction is rolled back to be split, and notes `rollingBack`, the
    /// group's members whose rollback was decided (`sandhi_rolling_back`), in the same
    /// statement: asynchronously like the write-sets, since the ROLLBACK PREPARED that follows
    /// flushes the WAL past it. With `synchronously`, durable by itself (no prepared
    /// transaction's flush follows).
    func recordVotes(_ transactions: [TransactionID], rollingBack: [TransactionID] = [],
                     synchronously: Bool = false) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let raw = transactions.map { Int64(bitPattern: $0.rawValue) }
        let noted = rollingBack.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        let quick = synchronously ? Self.sessionCommit : Self.asynchronousCommit
        return { connection in
            connection.query("""
                WITH \(unescaped: quick),
                noted AS (INSERT INTO sandhi_rolling_back(instance, tx) SELECT \(instance), tx FROM unnest(\(noted)::bigint[]) AS n(tx)
                          WHERE \(unescaped: Self.whenQuick) ON CONFLICT DO NOTHING)
                INSERT INTO sandhi_voted(instance, tx) SELECT \(instance), tx FROM unnest(\(raw)::bigint[]) AS u(tx)
                WHERE \(unescaped: Self.whenQuick) ON CONFLICT DO NOTHING
                """, logger: logger).map { _ in }
        }
    }

    /// Notes the members of a group about to be rolled back as a whole (`sandhi_rolling_back`),
    /// asynchronously: the ROLLBACK PREPARED that follows flushes the WAL past it.
    func noteRollingBack(_ transactions: [TransactionID]) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        recordVotes([], rollingBack: transactions)
    }

    /// Deletes the votes of `transactions` (prepared again after a split: their prepared
    /// transaction holds their votes now). Asynchronous, like the write-sets.
    func forgetVotes(_ transactions: [TransactionID]) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let raw = transactions.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        return { connection in
            guard !raw.isEmpty else { return connection.eventLoop.makeSucceededVoidFuture() }
            return connection.query("""
                WITH \(unescaped: Self.asynchronousCommit)
                DELETE FROM sandhi_voted WHERE \(unescaped: Self.whenQuick) AND instance = \(instance) AND tx = ANY(\(raw)::bigint[])
                """, logger: logger).map { _ in }
        }
    }

    /// Which of `transactions` committed here.
    func committedAmong(_ transactions: [TransactionID]) -> @Sendable (PostgresConnection) -> EventLoopFuture<[TransactionID]> {
        let raw = transactions.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        return { connection in
            connection.query("SELECT tx FROM sandhi_committed WHERE instance = \(instance) AND tx = ANY(\(raw)::bigint[])", logger: logger)
                .flatMapThrowing { result in try result.rows.map { TransactionID(rawValue: UInt64(bitPattern: try $0.decode(Int64.self))) } }
        }
    }

    /// What became here of branches that are neither prepared nor held as votes: one row per
    /// transaction, whether it committed here, whether it has a heuristic outcome (reported or
    /// forgotten), and its write-set if the row is still there.
    struct Fate: Sendable {
        var transaction: TransactionID
        var committed: Bool
        var settledByHand: Bool
        var writeSet: (operations: [Operation], writers: [ParticipantID])?
    }

    func fates(of transactions: [TransactionID]) -> @Sendable (PostgresConnection) -> EventLoopFuture<[Fate]> {
        let raw = transactions.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        return { connection in
            connection.query("""
                SELECT u.tx,
                       EXISTS (SELECT 1 FROM sandhi_committed c WHERE c.instance = \(instance) AND c.tx = u.tx),
                       EXISTS (SELECT 1 FROM sandhi_heuristic h WHERE h.instance = \(instance) AND h.tx = u.tx),
                       i.operations, i.writers
                FROM unnest(\(raw)::bigint[]) AS u(tx)
                LEFT JOIN sandhi_intents i ON i.instance = \(instance) AND i.tx = u.tx
                """, logger: logger).flatMapThrowing { result in
                try result.rows.map { row in
                    let (tx, committed, handled, bytes, writers) = try row.decode((Int64, Bool, Bool, ByteBuffer?, String?).self)
                    var fate = Fate(transaction: TransactionID(rawValue: UInt64(bitPattern: tx)), committed: committed, settledByHand: handled)
                    if let bytes, let writers {
                        fate.writeSet = (try OperationCodec.decode(Array(bytes.readableBytesView)), WriterList.decode(writers))
                    }
                    return fate
                }
            }
        }
    }

    // MARK: - Branches settled by hand (sandhi_heuristic)

    /// Records branches found settled by hand as heuristic outcomes, with the session's
    /// synchronous commit: each one's report goes to the coordinator as soon as the batch ends,
    /// and must outlive a crash of the server or of this process until the coordinator says
    /// FORGET (the gid is gone; nothing else here remembers the branch). Recorded once: a
    /// repeat keeps the first row.
    func recordSettledByHand(_ found: [SettledByHand], nowMs: Int64) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let raw = found.map { Int64(bitPattern: $0.transaction.rawValue) }
        let committed = found.map(\.heuristic.committed)
        let operations = found.map { ByteBuffer(bytes: OperationCodec.encode($0.heuristic.operations)) }
        let writers = found.map { WriterList.encode($0.heuristic.writers) }
        let instance = instanceName
        let logger = logger
        let statements = self
        return { connection in
            guard !raw.isEmpty else { return connection.eventLoop.makeSucceededVoidFuture() }
            return connection.query("""
                INSERT INTO sandhi_heuristic(instance, tx, committed, operations, writers, found_at_ms)
                SELECT \(instance), tx, committed, operations, writers, \(nowMs)
                FROM unnest(\(raw)::bigint[], \(committed)::boolean[], \(operations)::bytea[], \(writers)::text[]) AS u(tx, committed, operations, writers)
                ON CONFLICT (instance, tx) DO NOTHING
                """, logger: logger).map { _ in statements.reached(.settledByHandRecorded) }
        }
    }

    /// Marks heuristic outcomes forgotten: the coordinator has recorded them. Asynchronous, like
    /// the write-sets: should the mark be lost, the reopened bank reports the outcome again and
    /// the coordinator, knowing it, says FORGET again.
    func forgetSettledByHand(_ transactions: [TransactionID], nowMs: Int64) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let raw = transactions.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        return { connection in
            guard !raw.isEmpty else { return connection.eventLoop.makeSucceededVoidFuture() }
            return connection.query("""
                WITH \(unescaped: Self.asynchronousCommit)
                UPDATE sandhi_heuristic SET forgotten_at_ms = \(nowMs)
                WHERE \(unescaped: Self.whenQuick) AND instance = \(instance) AND tx = ANY(\(raw)::bigint[]) AND forgotten_at_ms IS NULL
                """, logger: logger).map { _ in }
        }
    }

    // MARK: - Read-only branches

    /// A read-only branch: its accounts read as committed (after the batch's phase two, so it
    /// reads what the coordinator's order says it must), the engine's staging rule over them;
    /// nothing written, locked or prepared.
    func validateReads(_ request: StageRequest) -> @Sendable (PostgresConnection) -> EventLoopFuture<StageOutcome> {
        let statements = self
        let names = request.operations.compactMap(\.account).map(\.name)
        return { connection in
            let read = names.isEmpty ? connection.eventLoop.makeSucceededFuture([:])
                : connection.query("SELECT id, balance, version, writer FROM accounts WHERE id = ANY(\(names)::text[])", logger: statements.logger)
                    .flatMapThrowing { try Self.observations($0) }
            return read.map { accounts in
                let rule = Staging.validate(request.transaction, at: statements.participant, request.operations) { accounts[$0] }
                return rule.failure.map { StageOutcome.refused($0) } ?? .staged(observed: rule.observed)
            }
        }
    }

    static func observation(_ id: String, _ balance: Int64, _ version: Int64, _ writer: Int64?) -> Observation {
        Observation(account: AccountID(validated: id), balance: Paise(balance), version: UInt64(version),
                    writer: writer.map { TransactionID(rawValue: UInt64(bitPattern: $0)) })
    }

    private static func observations(_ result: PostgresQueryResult) throws -> [AccountID: Observation] {
        var accounts: [AccountID: Observation] = [:]
        for row in result.rows {
            let (id, balance, version, writer) = try row.decode((String, Int64, Int64, Int64?).self)
            accounts[AccountID(validated: id)] = observation(id, balance, version, writer)
        }
        return accounts
    }

    // MARK: - Phase two

    /// COMMIT PREPARED or ROLLBACK PREPARED. A gid that is not prepared counts as done (false: it
    /// was not there): the branches were finished before, by us before a crash or by hand.
    func finish(_ gid: GlobalTransactionID, commit: Bool) -> @Sendable (PostgresConnection) -> EventLoopFuture<Bool> {
        let logger = logger
        return { connection in
            // PREPARE and friends take no parameters; a gid is plain identifier characters, `:`,
            // `.` and `+` (see `GlobalTransactionID`), so it is safe inside quotes.
            let sql = "\(commit ? "COMMIT" : "ROLLBACK") PREPARED '\(gid)'"
            return connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).map { _ in true }.flatMapErrorThrowing { error in
                guard ServerMessage.sqlState(error) == SQLState.undefinedObject else { throw error }
                logger.info("prepared transaction already finished", metadata: ["gid": "\(gid)", "outcome": "\(commit ? "commit" : "rollback")"])
                return false
            }
        }
    }
}

/// A branch's writers as stored (`a,b,c`), as in the SQLite bank.
enum WriterList {
    static func encode(_ writers: [ParticipantID]) -> String { writers.map(\.name).joined(separator: ",") }
    static func decode(_ text: String) -> [ParticipantID] { text.split(separator: ",").compactMap { ParticipantID(String($0)) } }
}
