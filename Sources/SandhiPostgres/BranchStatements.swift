import Logging
import NIOCore
import PostgresNIO
import SandhiEngine

/// A branch to stage: validate its operations against the accounts and, if they hold, write them
/// and PREPARE TRANSACTION.
struct StageRequest: Sendable {
    var transaction: TransactionID
    var operations: [Operation]
    var writers: [ParticipantID]
    var gid: GlobalTransactionID
    /// A read-only branch: validated with plain reads, nothing written or prepared.
    var readOnly: Bool
}

/// How staging a branch ended.
enum StageOutcome: Sendable {
    /// Validated; for a writing branch, written and PREPAREd under its gid.
    case staged(observed: [Observation])
    /// Nothing prepared; the reason goes out with a NO vote.
    case refused(reason: String)
    /// The branch committed here before (a stale duplicate PREPARE); nothing staged.
    case alreadyCommitted
}

/// The statements of a branch's life in PostgreSQL, each a job for `PostgresSessionPool.run`:
/// futures on the connection's event loop, never blocking it.
struct BranchStatements: Sendable {
    let participant: ParticipantID
    let instance: CoordinatorInstance
    let logger: Logger

    private var instanceName: String { instance.name }

    // MARK: - Write-sets (sandhi_intents)

    /// The write-set statements commit asynchronously (`synchronous_commit` off for their own
    /// transaction only, set inside the statement): nothing waits on them being durable. A
    /// write-set row matters only once its branch's PREPARE is durable, and the PREPARE comes
    /// later in the WAL, so its flush carries the row; a lost clean-up is redone when the bank
    /// opens. That saves a WAL flush per batch on the way to every PREPARE.
    static let asynchronousCommit = "quick AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS setting)"

    /// Commits the write-sets of `requests` in one statement, before any of them stages.
    func recordIntents(_ requests: [StageRequest], nowMs: Int64) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let transactions = requests.map { Int64(bitPattern: $0.transaction.rawValue) }
        let operations = requests.map { ByteBuffer(bytes: OperationCodec.encode($0.operations)) }
        let writers = requests.map { WriterList.encode($0.writers) }
        let instance = instanceName
        let logger = logger
        return { connection in
            let query: PostgresQuery = """
                WITH \(unescaped: Self.asynchronousCommit)
                INSERT INTO sandhi_intents(instance, tx, operations, writers, staged_at_ms)
                SELECT \(instance), tx, operations, writers, \(nowMs)
                FROM unnest(\(transactions)::bigint[], \(operations)::bytea[], \(writers)::text[]) AS u(tx, operations, writers), quick
                ON CONFLICT (instance, tx) DO UPDATE
                SET operations = EXCLUDED.operations, writers = EXCLUDED.writers, staged_at_ms = EXCLUDED.staged_at_ms
                """
            return connection.query(query, logger: logger).map { _ in }
        }
    }

    /// Deletes the write-sets of branches that are not (or no longer) prepared.
    func forgetIntents(_ transactions: [TransactionID]) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let raw = transactions.map { Int64(bitPattern: $0.rawValue) }
        let instance = instanceName
        let logger = logger
        return { connection in
            connection.query("""
                WITH \(unescaped: Self.asynchronousCommit)
                DELETE FROM sandhi_intents WHERE instance = \(instance) AND tx = ANY(\(raw)::bigint[]) AND EXISTS (SELECT 1 FROM quick)
                """, logger: logger).map { _ in }
        }
    }

    // MARK: - Phase one

    /// BEGIN; in one statement (`sandhi_stage`), whether the branch committed here before, its
    /// written accounts locked and read, and its writes, committed-branch row and reports; the
    /// accounts it only reads; the engine's staging rule; and PREPARE TRANSACTION. A NO is a
    /// ROLLBACK and nothing left behind. Three round trips for a YES (the batch's write-set rows
    /// committed before), and one WAL flush, which PostgreSQL shares among the PREPAREs and
    /// COMMIT PREPAREDs of every session flushing at the same moment: the pool runs a batch's
    /// branches side by side so that many do.
    ///
    /// `commits` is the batch's phase two, run at the same time on other sessions. A plain read
    /// does not wait for a prepared transaction's writes to commit, so a branch with plain reads
    /// starts after `commits`, and reads what the coordinator's order says it must. So does a
    /// branch that writes an account a branch of `commits` commits (`waitsForCommits`): its
    /// FOR UPDATE would wait out that row lock anyway, but bounded by `lock_timeout` and
    /// behind whatever else the committing session has queued, and running out would be a NO
    /// vote blaming "a transaction outside this coordinator".
    func stage(_ request: StageRequest, after commits: EventLoopFuture<Void>?,
               waitsForCommits: Bool) -> @Sendable (PostgresConnection) -> EventLoopFuture<StageOutcome> {
        let statements = self
        let waits = waitsForCommits || request.readOnly || !Self.plainReads(request).isEmpty
        let writes = Self.netWrites(request.operations)
        if !request.readOnly, writes == nil {
            let refusal = Self.unwritable(request)
            return { connection in connection.eventLoop.makeSucceededFuture(.refused(reason: refusal)) }
        }
        return { connection in
            let ready = waits ? commits?.hop(to: connection.eventLoop) ?? connection.eventLoop.makeSucceededVoidFuture()
                              : connection.eventLoop.makeSucceededVoidFuture()
            if request.readOnly {
                return ready.flatMap { statements.readPlainly(request, on: connection) }.flatMapThrowing { read in
                    statements.validate(request, read.accounts).map { StageOutcome.refused(reason: $0) }
                        ?? .staged(observed: statements.observed(request, read.accounts))
                }
            }
            let work = ready.flatMap {
                connection.query("BEGIN", logger: statements.logger)
            }.flatMap { _ in
                // A writing branch always has its sums (checked above).
                statements.lockReadAndWrite(request, writes!, on: connection)
            }.flatMap { staged in
                statements.readPlainly(request, on: connection).map { plain in
                    (staged, plain.accounts.merging(staged.accounts) { _, locked in locked })
                }
            }.flatMap { staged, accounts -> EventLoopFuture<StageOutcome> in
                if staged.committedBefore { return statements.rollback(on: connection, then: .alreadyCommitted) }
                if let failure = statements.validate(request, accounts) {
                    return statements.rollback(on: connection, then: .refused(reason: failure))
                }
                guard staged.applied else {
                    let reason = "\(statements.participant): PostgreSQL did not write \(request.transaction) (an account missing or a balance below zero)"
                    return statements.rollback(on: connection, then: .refused(reason: reason))
                }
                let observed = statements.observed(request, accounts)
                return statements.prepare(request.gid, on: connection).map { StageOutcome.staged(observed: observed) }
            }
            // A refusal PostgreSQL itself makes (a row locked past `lock_timeout`, a CHECK the
            // balance broke) is a NO vote; anything else fails the batch. Either way the session's
            // transaction is rolled back, so the connection serves the next job clean.
            return work.flatMapError { error in
                let reason = statements.refusalReason(error, request)
                return connection.query("ROLLBACK", logger: statements.logger).flatMapThrowing { _ in
                    guard let reason else { throw error }
                    return StageOutcome.refused(reason: reason)
                }
            }
        }
    }

    /// Accounts the branch reads without writing them.
    private static func plainReads(_ request: StageRequest) -> [AccountID] {
        let written = ParticipantProtocol.writtenAccounts(request.operations)
        var onlyRead: [AccountID] = []
        for operation in request.operations {
            if case .read(let account) = operation, !written.contains(account), !onlyRead.contains(account) { onlyRead.append(account) }
        }
        return onlyRead
    }

    private struct Read: Sendable {
        var accounts: [AccountID: Observation]
        /// The branch committed here before (a stale duplicate PREPARE).
        var committedBefore = false
        /// `sandhi_stage` wrote the branch's writes.
        var applied = false
    }

    /// `sandhi_stage` (see `PostgresBankSchema`): in one statement, whether the branch committed
    /// here before, its written accounts locked (FOR UPDATE, so no writer outside Sandhi changes
    /// them before the PREPARE) and read, and its writes if they fit.
    private func lockReadAndWrite(_ request: StageRequest, _ writes: NetWrites, on connection: PostgresConnection) -> EventLoopFuture<Read> {
        let (names, deltas, counts, net, reports) = (writes.names, writes.deltas, writes.writes, writes.net, writes.reports)
        let raw = Int64(bitPattern: request.transaction.rawValue)
        let writers = WriterList.encode(request.writers)
        return connection.query("""
            SELECT * FROM sandhi_stage(\(instanceName), \(raw), \(names)::text[], \(deltas)::bigint[], \(counts)::bigint[], \(writers), \(net),
                                       \(reports.map(\.kind))::text[], \(reports.map(\.amount.value))::bigint[], \(reports.map(\.reference))::text[])
            """, logger: logger).flatMapThrowing { result in
            var read = Read(accounts: [:])
            for row in result.rows {
                let (id, balance, version, writer, committed, applied) = try row.decode((String?, Int64?, Int64?, Int64?, Bool, Bool).self)
                read.committedBefore = committed
                read.applied = applied
                if let id, let balance, let version {
                    read.accounts[AccountID(validated: id)] = Self.observation(id, balance, version, writer)
                }
            }
            return read
        }
    }

    /// Accounts as committed, unlocked: a read-only branch's, or the plainly read accounts of a
    /// writing one (a lock would outlive the PREPARE and block other branches' reads).
    private func readPlainly(_ request: StageRequest, on connection: PostgresConnection) -> EventLoopFuture<Read> {
        let names = ((request.readOnly ? ParticipantProtocol.writtenAccounts(request.operations) : []) + Self.plainReads(request)).map(\.name)
        guard !names.isEmpty else { return connection.eventLoop.makeSucceededFuture(Read(accounts: [:])) }
        return connection.query("SELECT id, balance, version, writer FROM accounts WHERE id = ANY(\(names)::text[])", logger: logger)
            .flatMapThrowing { Read(accounts: try Self.observations($0)) }
    }

    private static func observation(_ id: String, _ balance: Int64, _ version: Int64, _ writer: Int64?) -> Observation {
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

    /// The engine's staging rule (the same one every participant uses), over what was read.
    private func validate(_ request: StageRequest, _ accounts: [AccountID: Observation]) -> String? {
        Staging.validate(request.transaction, at: participant, request.operations) { accounts[$0] }.failure
    }

    private func observed(_ request: StageRequest, _ accounts: [AccountID: Observation]) -> [Observation] {
        Staging.validate(request.transaction, at: participant, request.operations) { accounts[$0] }.observed
    }

    /// What a writing branch writes, summed per account (see `netWrites`).
    private struct NetWrites: Sendable {
        var names: [String] = [], deltas: [Int64] = [], writes: [Int64] = []
        var net: Int64 = 0
        var reports: [Report] = []
    }

    /// Each written account's net change and number of writes, in first-write order; the
    /// branch's net change here; its reports. Nil when an amount is not positive or the sums
    /// overflow (`unwritable` says which): the database is never asked to write those.
    private static func netWrites(_ operations: [Operation]) -> NetWrites? {
        var result = NetWrites()
        for operation in operations {
            switch operation {
            case .debit(let account, let amount), .credit(let account, let amount):
                guard amount.value > 0 else { return nil }
                let delta = operation.delta.value
                if let index = result.names.firstIndex(of: account.name) {
                    let (sum, overflow) = result.deltas[index].addingReportingOverflow(delta)
                    guard !overflow else { return nil }
                    result.deltas[index] = sum
                    result.writes[index] += 1
                } else {
                    result.names.append(account.name)
                    result.deltas.append(delta)
                    result.writes.append(1)
                }
                let (net, overflow) = result.net.addingReportingOverflow(delta)
                guard !overflow else { return nil }
                result.net = net
            case .fileReport(let report):
                result.reports.append(report)
            case .read:
                break
            }
        }
        return result
    }

    /// The NO vote's reason for a branch whose writes cannot be summed (`netWrites` is nil): an
    /// amount that is not positive (the engine's staging rule says the same) or sums beyond 64
    /// bits. Decided before anything reaches the database, whose arithmetic runs before the
    /// rule is applied.
    private static func unwritable(_ request: StageRequest) -> String {
        for operation in request.operations {
            switch operation {
            case .debit(let account, let amount) where amount.value <= 0, .credit(let account, let amount) where amount.value <= 0:
                return "amount for \(account) must be positive, got \(amount.value) paise"
            default:
                continue
            }
        }
        return "the amounts of \(request.transaction) add up beyond \(Paise(Int64.max))"
    }

    private func prepare(_ gid: GlobalTransactionID, on connection: PostgresConnection) -> EventLoopFuture<Void> {
        // PREPARE TRANSACTION takes no parameters; a gid is plain identifier characters and `:`
        // (see `GlobalTransactionID`), so it is safe inside quotes.
        connection.query(PostgresQuery(unsafeSQL: "PREPARE TRANSACTION '\(gid)'"), logger: logger).map { _ in }
    }

    private func rollback(on connection: PostgresConnection, then outcome: StageOutcome) -> EventLoopFuture<StageOutcome> {
        connection.query("ROLLBACK", logger: logger).map { _ in outcome }
    }

    /// The NO-vote reason for an error PostgreSQL raised while staging, or nil for a failure.
    private func refusalReason(_ error: any Error, _ request: StageRequest) -> String? {
        switch ServerMessage.sqlState(error) {
        case SQLState.checkViolation:
            return "insufficient funds in \(participant): PostgreSQL refused a negative balance for \(request.transaction)"
        case SQLState.numericValueOutOfRange:
            return "\(participant): PostgreSQL refused a balance beyond 64 bits for \(request.transaction)"
        case SQLState.lockNotAvailable, SQLState.deadlockDetected:
            return "\(participant): an account of \(request.transaction) is locked in PostgreSQL by a transaction outside this coordinator"
        case SQLState.duplicateObject:
            // The gid is prepared already, and not by this bank (it would know): another
            // coordinator deployment uses this instance name on the same server.
            return "\(participant): gid \(request.gid) is already prepared on this PostgreSQL server; is another coordinator named \(instance)?"
        case SQLState.outOfMemory:
            // What PREPARE TRANSACTION says when every max_prepared_transactions slot is taken.
            return "\(participant): PostgreSQL cannot prepare another transaction (\(ServerMessage.describe(error)))"
        default:
            return nil
        }
    }

    // MARK: - Phase two

    /// COMMIT PREPARED or ROLLBACK PREPARED. A gid that is not prepared counts as done (true: it
    /// was there): the branch was finished before, by us before a crash or by hand.
    func finish(_ gid: GlobalTransactionID, commit: Bool) -> @Sendable (PostgresConnection) -> EventLoopFuture<Bool> {
        let logger = logger
        return { connection in
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
