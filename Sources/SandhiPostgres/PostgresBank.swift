import Glibc
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SandhiEngine
import SandhiParticipants

/// A bank that is a real PostgreSQL database, using PostgreSQL's own two-phase commit.
///
/// The protocol logic (duplicates, late messages, which accounts are locked) is the engine's
/// `ParticipantProtocol`, exactly as for `SQLiteBank`; this class performs its effects:
///
/// - stage: BEGIN, lock and read the written accounts, the engine's staging rule (an unknown
///   account or a balance that would go below zero is a NO vote with the reason, and a ROLLBACK),
///   the writes, and `PREPARE TRANSACTION '<gid>'` (`GlobalTransactionID`:
///   `sandhi:<instance>:<epoch>.<sequence>:<participant>`). The YES vote follows the PREPARE,
///   which PostgreSQL has made durable by the time it returns.
/// - apply: `COMMIT PREPARED`; discard: `ROLLBACK PREPARED`. A gid that is not prepared is
///   "already done", not an error: the branch was finished before a crash, or by hand.
///
/// PostgreSQL keeps a prepared transaction's writes invisible until it commits, so it cannot
/// tell a restarted bank which accounts a prepared branch writes. Each branch's write-set is
/// therefore committed to `sandhi_intents` just before its PREPARE, and the prepared
/// transaction deletes its own row (so the row goes exactly when the branch commits). On open,
/// the bank reads `pg_prepared_xacts` for this coordinator instance's gids of this participant
/// in this database (every other prepared transaction, Sandhi's or not, is left alone), and
/// rebuilds each one's prepared branch and locks from its write-set row.
///
/// A batch commits the write-set rows of its branches first; then runs its phase-two messages
/// (COMMIT/ROLLBACK PREPARED) and every branch's staging at once, spread over a pool of sessions
/// (a PREPARE frees its session, so one session can stage many branches in turn, but side by
/// side their WAL flushes coincide and PostgreSQL makes one flush serve them all); then the
/// rollbacks that staging's results call for and the clean-up of unused write-set rows.
/// Branches of one batch never touch the same account (the protocol locks accounts before
/// staging). A branch that reads plainly, or writes an account committing in the same batch,
/// starts after the batch's phase two (see `BranchStatements.stage`).
///
/// All methods are called from one thread that is not an event loop (the participant worker,
/// or a test's own thread): they block on postgres-nio's futures.
public final class PostgresBank: ParticipantResource {
    public let id: ParticipantID
    public let configuration: PostgresBankConfiguration
    let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let statements: BranchStatements
    private let clock: @Sendable () -> Int64
    var pool: PostgresSessionPool
    var machine: ParticipantProtocol
    /// Set when a failed batch could not be followed by a clean reload; sticky.
    private var failure: PostgresBankError?
    private var closed = false

    private var database: String { configuration.database }

    // MARK: - Creating and opening

    /// Creates the bank's tables and accounts in an existing (empty) database, in one
    /// transaction. Refuses a database that already has a bank or an `accounts` table.
    public static func create(_ configuration: PostgresBankConfiguration, accounts: [(AccountID, Paise)], logger: Logger,
                              eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        var minted: Int64 = 0
        for (_, balance) in accounts {
            precondition(balance.value >= 0, "opening balance must not be negative")
            let (sum, overflow) = minted.addingReportingOverflow(balance.value)
            guard !overflow else {
                throw PostgresBankError.statement(database: configuration.database, what: "creating the bank",
                                                  detail: "opening balances add up beyond \(Paise(Int64.max))")
            }
            minted = sum
        }
        let connection = try PostgresSessionPool.connect(configuration, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        defer { _ = try? PostgresSessionPool.wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs) }
        @discardableResult
        func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
            try PostgresSessionPool.wait(for: connection.query(query, logger: logger), timeoutMs: configuration.batchTimeoutMs)
        }
        let exists = try run("SELECT to_regclass('accounts') IS NOT NULL OR to_regclass('sandhi_meta') IS NOT NULL")
        if let row = exists.rows.first, try row.decode(Bool.self) { throw PostgresBankError.alreadyABank(database: configuration.database) }
        let names = accounts.map(\.0.name), balances = accounts.map(\.1.value)
        let meta = [("format", PostgresBankSchema.format), ("participant", configuration.participant.name), ("minted_paise", String(minted))]
        do {
            try run("BEGIN")
            // The bank's creation is an ordinary commit: make it durable like one.
            try run("SET LOCAL synchronous_commit = on")
            for statement in PostgresBankSchema.create { try run(PostgresQuery(unsafeSQL: statement)) }
            try run("INSERT INTO accounts(id, balance) SELECT * FROM unnest(\(names)::text[], \(balances)::bigint[])")
            try run("INSERT INTO sandhi_meta(key, value) SELECT * FROM unnest(\(meta.map(\.0))::text[], \(meta.map(\.1))::text[])")
            try run("COMMIT")
        } catch {
            _ = try? run("ROLLBACK")
            throw PostgresBankError.statement(database: configuration.database, what: "creating the bank", detail: ServerMessage.describe(error))
        }
        logger.info("created PostgreSQL bank", metadata: ["participant": "\(configuration.participant)",
                                                          "database": "\(configuration.database)", "accounts": "\(accounts.count)"])
    }

    /// Checks, changing nothing, that `create` could make a bank here: the server is reachable
    /// with these credentials, can prepare transactions, and the database holds no bank or
    /// `accounts` table yet. `sandhi init` asks every database first, so that a bad one leaves
    /// the others untouched.
    public static func checkCreatable(_ configuration: PostgresBankConfiguration, logger: Logger,
                                      eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let connection = try PostgresSessionPool.connect(configuration, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        defer { _ = try? PostgresSessionPool.wait(for: connection.close(), timeoutMs: configuration.connectTimeoutMs) }
        let query: PostgresQuery = """
            SELECT to_regclass('accounts') IS NOT NULL OR to_regclass('sandhi_meta') IS NOT NULL,
                   current_setting('max_prepared_transactions')::int
            """
        let what = "checking the database"
        let result: PostgresQueryResult
        do {
            result = try PostgresSessionPool.wait(for: connection.query(query, logger: logger), timeoutMs: configuration.batchTimeoutMs)
        } catch {
            throw PostgresBankError.statement(database: configuration.database, what: what, detail: ServerMessage.describe(error))
        }
        guard let row = result.rows.first else { return }
        let (taken, slots) = try row.decode((Bool, Int).self)
        if taken { throw PostgresBankError.alreadyABank(database: configuration.database) }
        guard slots > 0 else {
            throw PostgresBankError.statement(database: configuration.database, what: what,
                                              detail: "the server has max_prepared_transactions = 0, so it cannot prepare")
        }
    }

    /// Opens the bank: ends any older session of this bank still connected (a crashed process's
    /// backend could otherwise finish a PREPARE after recovery looked), checks the database is
    /// this participant's bank, and rebuilds every prepared branch of this coordinator instance.
    public init(_ configuration: PostgresBankConfiguration, logger: Logger,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) * 1_000 }) throws {
        self.id = configuration.participant
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.clock = clock
        self.statements = BranchStatements(participant: configuration.participant, instance: configuration.instance, logger: logger)
        self.machine = ParticipantProtocol(participant: configuration.participant)
        self.pool = try Self.openPool(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            try checkOwnership()
            try restore(dropUnusedIntents: true)
        } catch {
            pool.close()
            throw error
        }
    }

    deinit {
        close()
    }

    private static func openPool(_ configuration: PostgresBankConfiguration, eventLoopGroup: any EventLoopGroup,
                                 logger: Logger) throws -> PostgresSessionPool {
        try PostgresSessionPool.open(configuration, eventLoopGroup: eventLoopGroup, logger: logger) { first in
            try SessionFence.endOlderSessions(of: configuration, on: first, logger: logger)
        }
    }

    private func checkOwnership() throws {
        let rows: PostgresQueryResult
        do {
            rows = try pool.one { [logger] in
                $0.query("SELECT key, value FROM sandhi_meta WHERE key IN ('format', 'participant')", logger: logger)
            }
        } catch {
            let detail = ServerMessage.sqlState(error) == SQLState.undefinedTable ? "no sandhi_meta table" : ServerMessage.describe(error)
            throw PostgresBankError.notSandhi(database: database, detail: detail)
        }
        var meta: [String: String] = [:]
        for row in rows.rows {
            let (key, value) = try row.decode((String, String).self)
            meta[key] = value
        }
        if let found = meta["format"], let steps = PostgresBankSchema.upgrades[found] {
            try upgrade(from: found, running: steps)
            meta["format"] = PostgresBankSchema.format
        }
        guard meta["format"] == PostgresBankSchema.format else {
            throw PostgresBankError.notSandhi(database: database, detail: "format \(meta["format"] ?? "missing")")
        }
        guard meta["participant"] == id.name else {
            throw PostgresBankError.wrongParticipant(database: database, found: meta["participant"] ?? "none", expected: id.name)
        }
        let slots = try pool.one { [logger] in $0.query("SELECT current_setting('max_prepared_transactions')::int", logger: logger) }
        guard let row = slots.rows.first, try row.decode(Int.self) > 0 else {
            throw PostgresBankError.notSandhi(database: database, detail: "the server has max_prepared_transactions = 0, so it cannot prepare")
        }
    }

    /// Brings a bank of an older format to the current one, all or nothing, on one session.
    private func upgrade(from found: String, running steps: [String]) throws {
        let format = PostgresBankSchema.format
        let logger = logger
        do {
            try pool.one { connection in
                var chain = connection.query("BEGIN", logger: logger).flatMap { _ in
                    connection.query("SET LOCAL synchronous_commit = on", logger: logger)
                }
                for step in steps {
                    chain = chain.flatMap { _ in connection.query(PostgresQuery(unsafeSQL: step), logger: logger) }
                }
                return chain.flatMap { _ in
                    connection.query("UPDATE sandhi_meta SET value = \(format) WHERE key = 'format'", logger: logger)
                }.flatMap { _ in
                    connection.query("COMMIT", logger: logger)
                }.flatMapError { error in
                    connection.query("ROLLBACK", logger: logger).flatMapThrowing { _ in throw error }
                }.map { _ in }
            }
        } catch {
            throw PostgresBankError.statement(database: database, what: "upgrading the bank from \(found) to \(format)",
                                              detail: ServerMessage.describe(error))
        }
        logger.notice("upgraded the PostgreSQL bank", metadata: ["participant": "\(id)", "from": "\(found)", "to": "\(format)"])
    }

    /// Rebuilds the protocol state from PostgreSQL: every prepared transaction of this instance
    /// and participant re-takes its locks from its write-set row. With `dropUnusedIntents`,
    /// write-set rows without a prepared transaction (a crash between the row and its PREPARE, a
    /// NO vote or rollback whose clean-up was lost) are deleted.
    private func restore(dropUnusedIntents: Bool) throws {
        machine = ParticipantProtocol(participant: id)
        let recovered = try PreparedBranchScan.scan(configuration, on: pool, logger: logger)
        for branch in recovered.prepared {
            if branch.writeSetMissing {
                // Not ours to guess: without the write-set no account is locked here, but the
                // prepared transaction still holds its rows in PostgreSQL, so a conflicting
                // branch waits out `lock_timeout` and votes NO instead of writing over it.
                logger.warning("prepared transaction has no write-set row; its locks are PostgreSQL's alone",
                               metadata: ["participant": "\(id)", "gid": "\(branch.gid)"])
            }
            _ = machine.handle(.restored(branch.gid.transaction, operations: branch.operations, writers: branch.writers))
        }
        if dropUnusedIntents && !recovered.unusedIntents.isEmpty {
            try pool.one(statements.forgetIntents(recovered.unusedIntents))
            logger.info("dropped write-sets that never prepared", metadata: ["participant": "\(id)", "count": "\(recovered.unusedIntents.count)"])
        }
        if machine.preparedCount > 0 {
            logger.info("restored prepared branches", metadata: ["participant": "\(id)", "count": "\(machine.preparedCount)"])
        }
    }

    // MARK: - ParticipantResource

    public func process(_ messages: [ParticipantMessage]) throws -> [ParticipantReply] {
        if let failure { throw failure }
        precondition(!closed, "process on a closed bank")
        do {
            return try runBatch(messages)
        } catch {
            logger.error("batch failed; reloading from PostgreSQL", metadata: ["participant": "\(id)", "error": "\(ServerMessage.describe(error))"])
            do {
                // New sessions (older ones ended first) and the state PostgreSQL holds: whatever
                // part of the batch committed or prepared is read back, the rest is gone.
                pool.close()
                pool = try Self.openPool(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
                try restore(dropUnusedIntents: true)
            } catch let reloadError {
                // A half-rebuilt lock table could approve a prepare against a balance another
                // prepared branch is already debiting. Stop: the worker halts the coordinator,
                // and a restart rebuilds everything.
                let sticky = PostgresBankError.unusable(database: database, detail: ServerMessage.describe(reloadError))
                failure = sticky
                throw sticky
            }
            if let error = error as? PostgresBankError { throw error }
            throw PostgresBankError.statement(database: database, what: "a batch", detail: ServerMessage.describe(error))
        }
    }

    /// Nothing to do: every reply describes a statement PostgreSQL made durable before it
    /// returned (PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED flush the WAL
    /// whatever `synchronous_commit` says, and the sessions' `on` makes them wait for synchronous
    /// standbys too; with `fsync=on` that is stable storage). The write-set rows commit
    /// asynchronously and ride on the PREPARE's flush; their clean-up may be lost in a crash and
    /// is redone when the bank opens.
    public func makeDurable() throws {
        if let failure { throw failure }
    }

    public func inDoubt() -> [TransactionID: [ParticipantID]] { machine.preparedWriters }

    public func inDoubtLocks() -> [TransactionID: [AccountID]] { machine.preparedLocks }

    /// Accounts whose exclusive lock a prepared branch holds.
    public var heldLocks: [AccountID: TransactionID] { machine.lockOwners }

    /// A PostgreSQL bank waits for the coordinator, always (the configuration refuses a
    /// heuristic policy for it): a database operator who settles a prepared transaction by hand
    /// is found when the coordinator's decision arrives.
    public var heuristicPolicy: HeuristicPolicy? {
        get { nil }
        set { precondition(newValue == nil, "a PostgreSQL bank makes no heuristic decisions") }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        pool.close()
    }

    // MARK: - The batch

    private func runBatch(_ messages: [ParticipantMessage]) throws -> [ParticipantReply] {
        var replies: [ParticipantReply] = []
        var stages: [StageRequest] = []
        var finishes: [Finish] = []
        var effects: [ParticipantProtocol.Effect] = []
        for message in messages {
            effects.removeAll(keepingCapacity: true)
            machine.handle(.message(message), into: &effects)
            collect(effects, stages: &stages, finishes: &finishes, replies: &replies)
        }

        // The write-sets first, committed before anything else starts: a branch's staging
        // deletes its own row (so that the row goes exactly when the branch commits), and a
        // DELETE does not see, nor wait for, a row whose insert has not committed yet. Alone, the
        // insert also takes a fraction of the time it takes amid the batch's burst of statements.
        // Then phase two and every branch's staging at once, each on its own session while there
        // are enough: their WAL flushes coincide, and PostgreSQL makes one flush serve all that
        // wait for it. Which stages wait for phase two is `stage`'s to say.
        let writing = stages.filter { !$0.readOnly }
        if !writing.isEmpty {
            _ = try pool.collect(pool.start([statements.recordIntents(writing, nowMs: clock())]))[0].get()
        }
        let finishing = pool.start(finishes.map { statements.finish($0.gid, commit: $0.commit) })
        let commits = finishing.isEmpty ? nil : EventLoopFuture.whenAllComplete(finishing, on: finishing[0].eventLoop).map { _ in }
        let committing = Set(finishes.filter(\.commit).flatMap(\.accounts))
        let staging = pool.start(stages.map { request in
            statements.stage(request, after: commits, waitsForCommits: !committing.isDisjoint(with: ParticipantProtocol.writtenAccounts(request.operations)))
        })
        let ended = pool.collect(finishing)
        let outcomes = pool.collect(staging)
        for result in ended { _ = try result.get() }
        var unusedIntents = finishes.filter { !$0.commit }.map(\.gid.transaction)

        // Each staging outcome back through the protocol, in order.
        var discards: [Finish] = []
        for (request, outcome) in zip(stages, outcomes) {
            effects.removeAll(keepingCapacity: true)
            switch try outcome.get() {
            case .staged(let observed):
                machine.handle(.staged(request.transaction, failure: nil, observed: observed), into: &effects)
            case .refused(let reason):
                machine.handle(.staged(request.transaction, failure: reason), into: &effects)
                if !request.readOnly { unusedIntents.append(request.transaction) }
            case .alreadyCommitted:
                machine.handle(.alreadyCommitted(request.transaction), into: &effects)
                unusedIntents.append(request.transaction)
            }
            var none: [StageRequest] = []
            collect(effects, stages: &none, finishes: &discards, replies: &replies)
            precondition(none.isEmpty, "staging produced another stage")
        }

        // Then: rollbacks that overtook their votes, and write-set rows nothing will use.
        unusedIntents += discards.map(\.gid.transaction)
        var lastWave = discards.map { statements.finish($0.gid, commit: $0.commit) }
        if !unusedIntents.isEmpty {
            let forget = statements.forgetIntents(unusedIntents)
            lastWave.append { connection in forget(connection).map { true } }
        }
        for result in pool.run(lastWave) { _ = try result.get() }
        return replies
    }

    /// Sorts the protocol's effects into the batch's work lists.
    private func collect(_ effects: [ParticipantProtocol.Effect], stages: inout [StageRequest],
                         finishes: inout [Finish], replies: inout [ParticipantReply]) {
        for effect in effects {
            switch effect {
            case .stage(let tx, let operations, let writers):
                stages.append(StageRequest(transaction: tx, operations: operations, writers: writers, gid: gid(tx), readOnly: false))
            case .validateReads(let tx, let operations):
                stages.append(StageRequest(transaction: tx, operations: operations, writers: [], gid: gid(tx), readOnly: true))
            case .apply(let tx, let operations, _):
                finishes.append(Finish(gid: gid(tx), commit: true, accounts: ParticipantProtocol.writtenAccounts(operations)))
            case .discard(let tx):
                finishes.append(Finish(gid: gid(tx), commit: false, accounts: []))
            case .reply(let reply):
                replies.append(reply)
            case .refuse(let tx, let reason):
                logger.critical("refused an impossible request from the coordinator", metadata: ["participant": "\(id)", "transaction": "\(tx)", "reason": "\(reason)"])
            case .decideAlone, .forgetHeuristic:
                // Only a heuristic policy or an operator's `decideAlone` input leads here, and this
                // bank feeds neither (yet): it waits for the coordinator.
                preconditionFailure("PostgresBank makes no heuristic decisions")
            }
        }
    }

    /// Phase two for one branch: COMMIT PREPARED (and the accounts it writes) or ROLLBACK PREPARED.
    private struct Finish {
        var gid: GlobalTransactionID
        var commit: Bool
        var accounts: [AccountID]
    }

    private func gid(_ tx: TransactionID) -> GlobalTransactionID {
        GlobalTransactionID(instance: configuration.instance, transaction: tx, participant: id)
    }
}
