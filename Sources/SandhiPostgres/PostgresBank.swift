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
/// `ParticipantProtocol`, exactly as for `SQLiteBank`; this class performs its effects.
///
/// **Branches prepare in groups.** The writing branches of one batch stage together, in one
/// PostgreSQL transaction: one call of `sandhi_stage_group` (each member's accounts
/// locked and read, the engine's staging rule, the writes of the members that hold), and one
/// `PREPARE TRANSACTION` whose gid names every member (`GlobalTransactionID`:
/// `sandhi:<instance>:<epoch>.<sequence>[+<sequence>...]:<participant>`, as many members as
/// fit in PostgreSQL's 199 bytes). A member the rule refuses is a NO vote and is simply not
/// written; every member written votes YES once the PREPARE returns, which PostgreSQL has made
/// durable by then. Two round trips (the staging sessions wait inside a transaction block, so
/// BEGIN costs none) and one WAL flush serve a whole group, and one COMMIT PREPARED finishes it:
/// a transaction per branch costs as many for each branch, and statements, not the rows they
/// touch, are what a PostgreSQL server spends its time on.
///
/// **Phase two per group.** When every member's decision is the same, COMMIT PREPARED or
/// ROLLBACK PREPARED. When they differ, or only some have come (the others still wait for
/// votes elsewhere), the group is **split** at the end of the batch, so that no decided branch
/// waits for another transaction's decision (which could wait, through the accounts it needs,
/// for this one): the members still prepared record their votes in `sandhi_voted`; ROLLBACK
/// PREPARED; the committed members are staged again and committed; the undecided ones are
/// staged again and prepared under a new gid. Between the rollback and those, a member's
/// write-set row and its `sandhi_voted` row are its vote, and opening the bank treats such a
/// member as prepared (in doubt): its commit applies the write-set. Nothing outside Sandhi
/// can take the accounts in between (the engine's locks hold them); a writer outside Sandhi
/// could, and would make the re-applied commit fail loudly rather than go negative.
///
/// **Settled by hand.** Someone with access to the database can COMMIT PREPARED or ROLLBACK
/// PREPARED a Sandhi gid. When the coordinator's decision then finds the gid gone, the bank
/// looks (`sandhi_committed`) at what became of each member: one that went the other way (a
/// commit against a rollback; a rollback against a commit, for a member that cannot be
/// applied again from its write-set) is a mixed outcome only an operator can settle. It is
/// recorded in `sandhi_heuristic` (durably, before the answer) and answered, like a branch a
/// SQLite bank decided alone, with the engine's heuristic reply in place of the
/// acknowledgement, again at every sweep, resend and restart, until the coordinator, having
/// opened a reconciliation case, says FORGET. A crash between finding the gid gone and
/// recording what was found must not lose it: members being rolled back are noted first
/// (`sandhi_rolling_back`), a split's votes are kept (`sandhi_voted`), and either found beside
/// a committed branch when the bank opens is a hand's commit; a decision for a branch the bank
/// no longer holds is checked against what PostgreSQL did before it is acknowledged
/// (`decisionsForBranchesNotHeld`).
///
/// **Write-sets.** PostgreSQL keeps a prepared transaction's writes invisible until it
/// commits, so it cannot tell a restarted bank which accounts a prepared branch writes. Each
/// branch's write-set is therefore committed to `sandhi_intents` before its group stages, and
/// deleted once the branch is finished (with the next batch's write-sets). On open, the bank
/// reads `pg_prepared_xacts` for this coordinator instance's gids of this participant in this
/// database (every other prepared transaction, Sandhi's or not, is left alone), and rebuilds
/// each member's prepared branch and locks from its write-set row.
///
/// A batch runs its write-sets and its phase two side by side, then its groups' staging (and
/// its read-only branches' reads) side by side, spread over a pool of sessions; then the
/// phase two of branches whose rollback overtook their vote. Branches of one batch never
/// touch the same account (the protocol locks accounts before staging).
///
/// All methods are called from one thread that is not an event loop (the participant worker,
/// or a test's own thread): they block on postgres-nio's futures.
public final class PostgresBank: ParticipantResource {
    public let id: ParticipantID
    public let configuration: PostgresBankConfiguration
    let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    /// The bank's statements, with its fault hook (see `Step`).
    var statements: BranchStatements
    private let clock: @Sendable () -> Int64
    /// Sessions for everything but a batch's staging: write-sets, phase two, reads, splits.
    var pool: PostgresSessionPool
    /// Sessions that stage groups, each kept inside a transaction block between groups.
    private var stagingPool: PostgresSessionPool
    var machine: ParticipantProtocol
    /// Each prepared group of this bank's, with the decisions that have come for its members.
    private var groups: [GlobalTransactionID: [TransactionID: Bool]] = [:]
    /// The group each prepared branch is in; a branch in none is in `loose`.
    private var groupOf: [TransactionID: GlobalTransactionID] = [:]
    /// YES votes held only by their write-set and `sandhi_voted` rows (see the type's notes).
    private var loose: Set<TransactionID> = []
    /// Finished branches whose write-sets go with the next batch's statements.
    private var finishedIntents: [TransactionID] = []
    /// Write-sets the bank found at open that no prepared transaction, vote or heuristic
    /// outcome accounts for (`PreparedBranchScan.orphans`), kept here after their rows go: a
    /// decision that comes for one is looked at (`decisionsForBranchesNotHeld`).
    private var orphans: [TransactionID: PreparedBranchScan.Orphan] = [:]
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
        (self.pool, self.stagingPool) = try Self.openPools(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            try checkOwnership()
            try restore()
        } catch {
            pool.close()
            stagingPool.close()
            throw error
        }
    }

    deinit {
        close()
    }

    /// The bank's sessions (`configuration.poolSize` in all): a quarter of them, at least one and
    /// at most four, stage groups (a batch has a few); the rest do everything else. Older
    /// sessions of this bank are ended before any opens.
    private static func openPools(_ configuration: PostgresBankConfiguration, eventLoopGroup: any EventLoopGroup,
                                  logger: Logger) throws -> (PostgresSessionPool, PostgresSessionPool) {
        let staging = min(4, max(1, configuration.poolSize / 4))
        let general = try PostgresSessionPool.open(configuration, sessions: max(1, configuration.poolSize - staging),
                                                   eventLoopGroup: eventLoopGroup, logger: logger) { first in
            try SessionFence.endOlderSessions(of: configuration, on: first, logger: logger)
        }
        do {
            return (general, try PostgresSessionPool.open(configuration, sessions: staging, startsInTransaction: true,
                                                           eventLoopGroup: eventLoopGroup, logger: logger))
        } catch {
            general.close()
            throw error
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

    /// Rebuilds the protocol state from PostgreSQL: every member of a prepared group of this
    /// instance and participant, and every vote outliving its group, re-takes its locks from its
    /// write-set row. Write-set rows of branches that committed, never voted (a crash between
    /// the row and its PREPARE, a NO vote or a finish whose clean-up was lost) or whose vote is
    /// stale are deleted; those neither voted nor settled by hand are kept in memory as
    /// `orphans`, for a decision that may still come for one. Votes and rollback notes found
    /// committed (a group committed by hand while it was split or rolled back) are recorded as
    /// heuristic commits.
    private func restore() throws {
        machine = ParticipantProtocol(participant: id)
        groups = [:]
        groupOf = [:]
        loose = []
        finishedIntents = []
        let recovered = try PreparedBranchScan.scan(configuration, on: pool, logger: logger)
        // Kept from the last open too: a second reload before the decision came must not lose
        // one whose rows the first deleted.
        orphans.merge(recovered.orphans) { _, new in new }
        for group in recovered.groups {
            groups[group.gid] = [:]
            for branch in group.members {
                if branch.writeSetMissing {
                    // Not ours to guess: without the write-set no account is locked here, but the
                    // prepared transaction still holds its rows in PostgreSQL, so a conflicting
                    // branch waits out `lock_timeout` and votes NO instead of writing over it.
                    logger.warning("prepared branch has no write-set row; its locks are PostgreSQL's alone",
                                   metadata: ["participant": "\(id)", "gid": "\(group.gid)", "transaction": "\(branch.transaction)"])
                }
                groupOf[branch.transaction] = group.gid
                _ = machine.handle(.restored(branch.transaction, operations: branch.operations, writers: branch.writers))
            }
        }
        for branch in recovered.loose {
            loose.insert(branch.transaction)
            _ = machine.handle(.restored(branch.transaction, operations: branch.operations, writers: branch.writers))
        }
        for tx in Array(orphans.keys) where machine.branches[tx] != nil { orphans[tx] = nil }
        if !recovered.foundCommittedByHand.isEmpty {
            // Recorded before anything reports them, like every outcome found settled by hand.
            try pool.one(statements.recordSettledByHand(recovered.foundCommittedByHand, nowMs: clock()))
            logger.critical("branches were found committed by hand while their group was split or rolled back: mixed outcomes unless the coordinator committed them",
                            metadata: ["participant": "\(id)",
                                       "committed": "\(recovered.foundCommittedByHand.map { $0.transaction.description }.joined(separator: ","))"])
            finishedIntents += recovered.foundCommittedByHand.map(\.transaction)
        }
        for found in recovered.settledByHand + recovered.foundCommittedByHand {
            orphans[found.transaction] = nil
            _ = machine.handle(.restoredHeuristic(found.transaction, committed: found.heuristic.committed,
                                                  operations: found.heuristic.operations, writers: found.heuristic.writers))
        }
        if !recovered.unusedIntents.isEmpty {
            try pool.one(statements.forgetIntents(recovered.unusedIntents))
            logger.info("dropped write-sets of finished or unvoted branches", metadata: ["participant": "\(id)", "count": "\(recovered.unusedIntents.count)"])
        }
        if !recovered.staleVotes.isEmpty {
            try pool.one(statements.forgetVotes(recovered.staleVotes))
        }
        if machine.preparedCount > 0 {
            logger.info("restored prepared branches", metadata: ["participant": "\(id)", "count": "\(machine.preparedCount)",
                                                                 "groups": "\(groups.count)", "votes without a group": "\(loose.count)"])
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
                stagingPool.close()
                (pool, stagingPool) = try Self.openPools(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
                try restore()
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
    /// is redone when the bank opens, except where the rows are a vote being rolled back, whose
    /// deletion commits synchronously before the acknowledgement (see `startSettling`). The
    /// record behind a heuristic report (`sandhi_heuristic`) commits synchronously too.
    public func makeDurable() throws {
        if let failure { throw failure }
    }

    public func inDoubt() -> [TransactionID: [ParticipantID]] { machine.preparedWriters }

    public var hasInDoubt: Bool { machine.preparedCount > 0 }

    public func inDoubtLocks() -> [TransactionID: [AccountID]] { machine.preparedLocks }

    /// Accounts whose exclusive lock a prepared branch holds.
    public var heldLocks: [AccountID: TransactionID] { machine.lockOwners }

    /// A PostgreSQL bank waits for the coordinator, always (the configuration refuses a
    /// heuristic policy for it): a database operator who settles a prepared transaction by hand
    /// is found when the coordinator's decision arrives, and reported as a heuristic outcome
    /// (see the type's notes).
    public var heuristicPolicy: HeuristicPolicy? {
        get { nil }
        set { precondition(newValue == nil, "a PostgreSQL bank makes no heuristic decisions") }
    }

    /// Reports again every branch settled by hand that the coordinator has not yet recorded
    /// (a report can be lost like any message, and only the coordinator's FORGET ends it).
    public func sweep() throws -> [ParticipantReply] {
        if let failure { throw failure }
        return machine.heuristics.sorted { $0.key < $1.key }.map { tx, heuristic in
            SettledByHand(transaction: tx, heuristic: heuristic).reply
        }
    }

    public var needsSweep: Bool { !machine.heuristics.isEmpty }

    public func unforgottenHeuristics() -> [TransactionID: ParticipantProtocol.Heuristic] { machine.heuristics }

    public var batchLingerUs: UInt64 { configuration.batchLingerUs }

    public func close() {
        guard !closed else { return }
        closed = true
        pool.close()
        stagingPool.close()
    }

    // MARK: - The batch

    private func runBatch(_ messages: [ParticipantMessage]) throws -> [ParticipantReply] {
        var replies: [ParticipantReply] = []
        var stages: [StageRequest] = []
        var decisions: [Decision] = []
        // Accounts whose PostgreSQL rows this batch's phase two releases: a rollback's, read
        // before the protocol forgets the branch. With it, the work of each branch this batch
        // may roll back (one rolled back now, or one whose rollback overtook its vote): a
        // heuristic report carries it, should the branch be found committed by hand.
        var released = Set<AccountID>()
        var workOf: [TransactionID: StageRequest] = [:]
        // Heuristic outcomes the coordinator has recorded.
        var forgotten: [TransactionID] = []
        var effects: [ParticipantProtocol.Effect] = []
        let notHeld = try decisionsForBranchesNotHeld(messages)
        for message in messages {
            if case .rollback(let tx, _) = message, case .prepared(let operations, let writers)? = machine.branches[tx] {
                released.formUnion(ParticipantProtocol.writtenAccounts(operations))
                workOf[tx] = StageRequest(transaction: tx, operations: operations, writers: writers, readOnly: false)
            }
            effects.removeAll(keepingCapacity: true)
            machine.handle(.message(message), into: &effects)
            collect(effects, workOf: workOf, stages: &stages, decisions: &decisions, replies: &replies, forgotten: &forgotten)
        }
        report(notHeld, in: &replies)

        // Which branches must wait for phase two: one that writes an account a finishing
        // branch holds in PostgreSQL (its FOR UPDATE would wait for the row, but bounded by
        // `lock_timeout`, and running out would be a NO vote blaming "a transaction outside
        // this coordinator"), and one that reads plainly (a plain read does not wait for a
        // prepared transaction's writes to commit, so it must start after them to read what the
        // coordinator's order says it must). The others stage at once, alongside phase two.
        for decision in decisions where decision.commit {
            released.formUnion(ParticipantProtocol.writtenAccounts(decision.operations))
        }
        let writing = stages.filter { !$0.readOnly }.sorted { $0.transaction < $1.transaction }
        let afterPhaseTwo = { (request: StageRequest) in
            !NetWrites.plainReads(request.operations).isEmpty || !released.isDisjoint(with: ParticipantProtocol.writtenAccounts(request.operations))
        }
        let early = Self.groups(of: writing.filter { !afterPhaseTwo($0) }, instance: configuration.instance, participant: id)
        let late = Self.groups(of: writing.filter(afterPhaseTwo), instance: configuration.instance, participant: id)
        let readOnly = stages.filter(\.readOnly)

        // The write-sets (with the last batches' clean-up) first in their session: every
        // group's PREPARE waits for them (their rows must be committed before it, whose flush
        // makes them durable). Then phase two and the early groups, side by side.
        var intents: EventLoopFuture<Void>?
        if !writing.isEmpty {
            let record = statements.recordIntents(writing, forgetting: finishedIntents, nowMs: clock())
            let statements = statements
            intents = pool.start([{ connection in record(connection).map { statements.reached(.writeSetsCommitted) } }])[0]
            finishedIntents = []
        }
        let forgetting = forgotten.isEmpty ? [] : pool.start([statements.forgetSettledByHand(forgotten, nowMs: clock())])
        let phaseTwo = startSettling(decisions)
        let earlyStaging = stagingPool.start(early.map { statements.stageGroup($0, ending: .prepare, preparingAfter: intents, begun: true) })
        report(try finishSettling(phaseTwo), in: &replies)
        let lateStaging = stagingPool.start(late.map { statements.stageGroup($0, ending: .prepare, preparingAfter: intents, begun: true) })
        let reading = pool.start(readOnly.map { statements.validateReads($0) })
        let staged = stagingPool.collect(earlyStaging + lateStaging)
        let read = pool.collect(reading)
        if let intents { try pool.collect([intents])[0].get() }
        for result in pool.collect(forgetting) { try result.get() }

        // Each outcome back through the protocol, in order; a rollback that overtook its vote
        // comes out as a decision.
        var overtaken: [Decision] = []
        func record(_ request: StageRequest, _ outcome: StageOutcome) {
            effects.removeAll(keepingCapacity: true)
            workOf[request.transaction] = request // should its rollback have overtaken it
            switch outcome {
            case .staged(let observed):
                machine.handle(.staged(request.transaction, failure: nil, observed: observed), into: &effects)
            case .refused(let refusal):
                machine.handle(.staged(request.transaction, failure: refusal), into: &effects)
                if !request.readOnly { finishedIntents.append(request.transaction) }
            case .alreadyCommitted:
                machine.handle(.alreadyCommitted(request.transaction), into: &effects)
                finishedIntents.append(request.transaction)
            }
            var none: [StageRequest] = []
            var noForget: [TransactionID] = []
            collect(effects, workOf: workOf, stages: &none, decisions: &overtaken, replies: &replies, forgotten: &noForget)
            precondition(none.isEmpty && noForget.isEmpty, "staging produced another stage or a FORGET")
        }
        for (group, result) in zip(early + late, staged) {
            let outcome = try result.get()
            for gid in outcome.prepared { enter(gid) }
            for (request, memberOutcome) in zip(group, outcome.outcomes) { record(request, memberOutcome) }
        }
        for (request, result) in zip(readOnly, read) { record(request, try result.get()) }
        report(try finishSettling(startSettling(overtaken)), in: &replies)

        // A batch that staged nothing cleans up now; otherwise the next batch's write-sets do.
        if writing.isEmpty && !finishedIntents.isEmpty {
            try pool.one(statements.forgetIntents(finishedIntents))
            finishedIntents = []
        }
        statements.reached(.replying)
        return replies
    }

    /// Sorts out the decisions for branches this bank neither holds nor has finished since it
    /// opened, before the protocol sees them; returns the ones found settled by hand, recorded.
    ///
    /// After a restart the coordinator sends again every decision it has not seen
    /// acknowledged. Most find their branch finished: committed here, for a COMMIT; nothing,
    /// for a ROLLBACK; and the protocol acknowledges them. But a batch that found a group's gid
    /// gone (settled by hand) and stopped before it recorded anything leaves the group's
    /// members as bare write-sets, which a reopened bank cannot tell from a finish's clean-up.
    /// Only the decision tells, and it must not be acknowledged unless it happened here:
    /// - a COMMIT of a branch not committed here: the branch voted YES (the coordinator commits
    ///   nothing else), so a hand rolled its prepared transaction back. Applied from its
    ///   write-set, as `commitWhole` does, after its vote is recorded durably (should this
    ///   batch fail, or the process stop, the reopened bank holds it in doubt and the resent
    ///   COMMIT applies it); without a write-set, or with its accounts taken meanwhile, it
    ///   cannot be: a heuristic rollback.
    /// - a ROLLBACK of a write-set found at open committed here, with no heuristic outcome:
    ///   committed by a hand, against the decision: a heuristic commit. (A branch the
    ///   coordinator committed is never rolled back, so this is no finish's clean-up.)
    ///
    /// Costs nothing in the common case: a statement only for COMMITs of branches the bank has
    /// never heard of since it opened.
    private func decisionsForBranchesNotHeld(_ messages: [ParticipantMessage]) throws -> [SettledByHand] {
        func notHeld(_ tx: TransactionID) -> Bool {
            machine.branches[tx] == nil && machine.heuristics[tx] == nil && machine.finished[tx] == nil
        }
        var commits: [TransactionID] = []
        var byHand: [SettledByHand] = []
        for message in messages {
            switch message {
            case .commit(let tx) where notHeld(tx) && !commits.contains(tx):
                commits.append(tx)
            case .rollback(let tx, let tag) where notHeld(tx):
                guard let orphan = orphans.removeValue(forKey: tx), orphan.committed,
                      !byHand.contains(where: { $0.transaction == tx }) else { continue }
                // A question (`tag`) is answered like any ROLLBACK here: the report, echoing it.
                byHand.append(SettledByHand(transaction: tx, heuristic: .init(committed: true, operations: orphan.branch.operations,
                                                                             writers: orphan.branch.writers), confirming: tag))
            default:
                continue
            }
        }
        var applying: [StageRequest] = []
        if !commits.isEmpty {
            for fate in try pool.one(statements.fates(of: commits)) {
                let orphan = orphans.removeValue(forKey: fate.transaction)
                if fate.committed || fate.settledByHand { continue }
                let writeSet = fate.writeSet ?? orphan.map { (operations: $0.branch.operations, writers: $0.branch.writers) }
                if let writeSet, !writeSet.operations.isEmpty,
                   ParticipantProtocol.writtenAccounts(writeSet.operations).allSatisfy({ machine.lockOwners[$0] == nil }) {
                    applying.append(StageRequest(transaction: fate.transaction, operations: writeSet.operations, writers: writeSet.writers,
                                                 readOnly: false))
                } else {
                    byHand.append(SettledByHand(transaction: fate.transaction,
                                                heuristic: .init(committed: false, operations: writeSet?.operations ?? [], writers: writeSet?.writers ?? [id])))
                }
            }
        }
        if !applying.isEmpty {
            logger.warning("a COMMIT came for branches whose prepared transaction is gone; they are applied from their write-sets",
                           metadata: ["participant": "\(id)", "transactions": "\(applying.map { $0.transaction.description }.joined(separator: ","))"])
            // The write-set rows again (a reopened bank deleted them), then the votes, whose
            // synchronous commit makes both durable.
            try pool.one(statements.recordIntents(applying, forgetting: [], nowMs: clock()))
            try pool.one(statements.recordVotes(applying.map(\.transaction), synchronously: true))
            for request in applying {
                _ = machine.handle(.restored(request.transaction, operations: request.operations, writers: request.writers))
                loose.insert(request.transaction)
            }
        }
        if !byHand.isEmpty {
            logger.critical("decisions came for branches settled by hand otherwise: mixed outcomes",
                            metadata: ["participant": "\(id)", "transactions": "\(byHand.map { $0.transaction.description }.joined(separator: ","))"])
            try pool.one(statements.recordSettledByHand(byHand, nowMs: clock()))
            finishedIntents += byHand.map(\.transaction)
        }
        return byHand
    }

    /// A writing batch's groups: ascending, one epoch each, each as many as its gid holds,
    /// members writing disjoint accounts.
    private static func groups(of writing: [StageRequest], instance: CoordinatorInstance, participant: ParticipantID) -> [[StageRequest]] {
        var groups: [[StageRequest]] = []
        var current: [StageRequest] = []
        var written = Set<AccountID>()
        for request in writing {
            let accounts = ParticipantProtocol.writtenAccounts(request.operations)
            // Members write disjoint accounts (the protocol's locks see to it; a planted bug
            // without them must not make one UPDATE apply two members' changes as one).
            if let last = current.last, last.transaction.epoch != request.transaction.epoch
                || !GlobalTransactionID.fits(instance, current.map(\.transaction), adding: request.transaction, participant)
                || !written.isDisjoint(with: accounts) {
                groups.append(current)
                current = []
                written = []
            }
            current.append(request)
            written.formUnion(accounts)
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    private func enter(_ gid: GlobalTransactionID) {
        precondition(groups[gid] == nil, "group \(gid) prepared twice")
        groups[gid] = [:]
        for tx in gid.transactions {
            precondition(groupOf[tx] == nil && !loose.contains(tx), "\(tx) prepared twice")
            groupOf[tx] = gid
        }
    }

    /// What one phase-two job leaves: the group a split prepared its waiting members in again
    /// (with each member's outcome), and the members found settled by hand otherwise than the
    /// coordinator decided, each already recorded durably (`recordSettledByHand`).
    private struct Settled: Sendable {
        var regrouped: GroupOutcome?
        var byHand: [SettledByHand] = []
    }

    private typealias Job = @Sendable (PostgresConnection) -> EventLoopFuture<Settled>

    /// Phase two under way: each job's future, with the waiting members of the split it is (if
    /// it is one), whose outcome is their new group.
    private struct Settling {
        var jobs: [EventLoopFuture<Settled>] = []
        var waiting: [[StageRequest]] = []
        /// Branches whose write-sets may go once every job has ended (not before: until its
        /// phase two has happened, a branch's write-set may be its vote).
        var finished: [TransactionID] = []
    }

    /// Starts phase two of `decisions` (and of every group that one of them leaves partly
    /// decided), side by side. See the type's notes on splitting.
    private func startSettling(_ decisions: [Decision]) -> Settling {
        var touched: [GlobalTransactionID] = []
        var looseCommits: [StageRequest] = []
        var looseRollbacks: [TransactionID] = []
        var finished: [TransactionID] = []
        var decided: [TransactionID: Decision] = [:]
        for decision in decisions {
            let tx = decision.transaction
            decided[tx] = decision
            if let gid = groupOf[tx] {
                if groups[gid]!.isEmpty { touched.append(gid) }
                groups[gid]![tx] = decision.commit
            } else if loose.remove(tx) != nil {
                if decision.commit { looseCommits.append(decision.request) } else { looseRollbacks.append(tx) }
                finished.append(tx)
            } else {
                preconditionFailure("a decision for \(tx), which is prepared in no group of \(id)")
            }
        }
        // Each job's outcome is the re-prepared group of a split's waiting members, if any.
        var jobs: [Job] = []
        var waitingOf: [[StageRequest]] = []
        for gid in touched {
            let known = groups.removeValue(forKey: gid)!
            for tx in gid.transactions { groupOf[tx] = nil }
            let commits = gid.transactions.filter { known[$0] == true }
            let rollbacks = gid.transactions.filter { known[$0] == false }
            let undecided = gid.transactions.filter { known[$0] == nil }
            finished += gid.transactions.filter { known[$0] != nil }
            if undecided.isEmpty && commits.count == gid.transactions.count {
                jobs.append(commitWhole(gid, commits.map { decided[$0]!.request }))
                waitingOf.append([])
                continue
            }
            if undecided.isEmpty && commits.isEmpty {
                jobs.append(rollBackWhole(gid, rollbacks.map { decided[$0]!.request }))
                waitingOf.append([])
                continue
            }
            let waiting = undecided.map { tx -> StageRequest in
                guard case .prepared(let operations, let writers) = machine.branches[tx] else {
                    preconditionFailure("\(tx) of \(gid) is undecided but not prepared")
                }
                return StageRequest(transaction: tx, operations: operations, writers: writers, readOnly: false)
            }
            let committing = commits.map { decided[$0]!.request }
            guard (waiting + committing).allSatisfy({ !$0.operations.isEmpty }) else {
                let failure = PostgresBankError.statement(database: database, what: "splitting \(gid)",
                                                          detail: "a member has no write-set row, so it cannot be staged again")
                jobs.append { connection in connection.eventLoop.makeFailedFuture(failure) }
                waitingOf.append([])
                continue
            }
            jobs.append(split(gid, committing: committing, waiting: waiting, rollingBack: rollbacks.map { decided[$0]!.request }))
            waitingOf.append(waiting)
        }
        if !looseCommits.isEmpty {
            let commit = Self.apply(looseCommits, what: "a vote whose prepared transaction was gone", statements: statements, database: database)
            jobs.append { connection in commit(connection).map { Settled() } }
            waitingOf.append([])
        }
        if !looseRollbacks.isEmpty {
            // Their rows are their votes: gone before the rollback is acknowledged, or a
            // reopened bank would hold them in doubt again, against whoever takes the accounts.
            // Gone durably, too: no PREPARE's flush follows to carry an asynchronous commit,
            // and once acknowledged the coordinator forgets the transaction (an abort leaves no
            // record), so a vote a server crash brought back would lock its accounts, refusing
            // every PREPARE on them, with nobody left to settle it. Rare, so the flush is cheap.
            // (No prepared transaction holds such a vote, so no hand can commit it now: one whose
            // group a hand committed before the split rolled it back is found committed when
            // the bank opens, and is a heuristic commit, not a vote; see `PreparedBranchScan`.)
            let forget = statements.forgetIntents(looseRollbacks, synchronously: true)
            let statements = statements
            jobs.append { connection in
                forget(connection).map {
                    statements.reached(.looseRollbacksForgotten)
                    return Settled()
                }
            }
            waitingOf.append([])
        }
        return Settling(jobs: pool.start(jobs), waiting: waitingOf, finished: finished)
    }

    /// COMMIT PREPARED of a group every member of which commits. Should PostgreSQL not know
    /// the gid, someone finished it by hand. Members committed here (by that hand) are as
    /// decided. The others were rolled back: each is applied from its write-set, because a
    /// commit decision is applied, whoever interfered; their votes are recorded first,
    /// durably, so that should the applying fail or the process die, the reopened bank still
    /// holds them in doubt, and the commit's resend applies them. A member without a write-set
    /// row (deleted by hand too) cannot be applied: it stays rolled back against the decision,
    /// a heuristic outcome the coordinator must hear of.
    private func commitWhole(_ gid: GlobalTransactionID, _ members: [StageRequest]) -> Job {
        let finish = statements.finish(gid, commit: true)
        let committed = statements.committedAmong(gid.transactions)
        let applicable = members.filter { !$0.operations.isEmpty }
        let vote = statements.recordVotes(applicable.map(\.transaction), synchronously: true)
        let reapply = applicable.isEmpty ? nil
            : Self.apply(applicable, what: "whose prepared transaction '\(gid)' was gone", statements: statements, database: database)
        let statements = statements, logger = logger, nowMs = clock()
        return { connection in
            finish(connection).flatMap { found -> EventLoopFuture<Settled> in
                statements.reached(found ? .groupCommitted : .groupFoundGone)
                if found { return connection.eventLoop.makeSucceededFuture(Settled()) }
                return committed(connection).flatMap { done -> EventLoopFuture<Settled> in
                    let rolledBack = members.filter { !done.contains($0.transaction) }
                    guard !rolledBack.isEmpty else { return connection.eventLoop.makeSucceededFuture(Settled()) }
                    let lost = rolledBack.filter { $0.operations.isEmpty }.map {
                        SettledByHand(transaction: $0.transaction, heuristic: .init(committed: false, operations: [], writers: $0.writers))
                    }
                    var applying = connection.eventLoop.makeSucceededVoidFuture()
                    if let reapply, lost.count < rolledBack.count {
                        logger.warning("a committed prepared transaction was gone; its members are applied from their write-sets unless committed",
                                       metadata: ["gid": "\(gid)"])
                        // Members that committed meanwhile are found so, and not applied twice.
                        applying = vote(connection).flatMap {
                            statements.reached(.goneMembersVoted)
                            return reapply(connection)
                        }
                    }
                    return applying.flatMap { _ -> EventLoopFuture<Settled> in
                        guard !lost.isEmpty else { return connection.eventLoop.makeSucceededFuture(Settled()) }
                        logger.critical("branches the coordinator committed were rolled back by hand and have no write-set to apply: a mixed outcome",
                                        metadata: ["gid": "\(gid)", "rolled back": "\(lost.map { $0.transaction.description }.joined(separator: ","))"])
                        return statements.recordSettledByHand(lost, nowMs: nowMs)(connection).map { Settled(byHand: lost) }
                    }
                }
            }
        }
    }

    /// ROLLBACK PREPARED of a group every member of which rolls back. Should PostgreSQL not know
    /// the gid, a member that committed here anyway (someone committed it by hand, against the
    /// coordinator's decision) is a mixed outcome only an operator can settle: a heuristic
    /// commit, recorded and reported.
    private func rollBackWhole(_ gid: GlobalTransactionID, _ members: [StageRequest]) -> Job {
        // The note first: should the gid be gone and the process stop before `committedByHand`
        // records what a hand did, the reopened bank still finds members committed against
        // this rollback (`PreparedBranchScan`). One more statement, for rollbacks only.
        let note = statements.noteRollingBack(gid.transactions)
        let finish = statements.finish(gid, commit: false)
        let committedByHand = Self.committedByHand(members, in: gid, statements: statements, logger: logger, nowMs: clock())
        let statements = statements
        return { connection in
            note(connection).flatMap { finish(connection) }.flatMap { found -> EventLoopFuture<Settled> in
                statements.reached(found ? .groupRolledBack : .groupFoundGone)
                return found ? connection.eventLoop.makeSucceededFuture(Settled()) : committedByHand(connection).map { Settled(byHand: $0) }
            }
        }
    }

    /// Which of `rolledBack` (members of `gid`, which PostgreSQL no longer knows, rolled back by
    /// the coordinator) committed here all the same: each recorded as a heuristic commit.
    private static func committedByHand(_ rolledBack: [StageRequest], in gid: GlobalTransactionID, statements: BranchStatements,
                                        logger: Logger, nowMs: Int64) -> @Sendable (PostgresConnection) -> EventLoopFuture<[SettledByHand]> {
        let committed = statements.committedAmong(rolledBack.map(\.transaction))
        return { connection in
            guard !rolledBack.isEmpty else { return connection.eventLoop.makeSucceededFuture([]) }
            return committed(connection).flatMap { against -> EventLoopFuture<[SettledByHand]> in
                let found = rolledBack.filter { against.contains($0.transaction) }.map {
                    SettledByHand(transaction: $0.transaction, heuristic: .init(committed: true, operations: $0.operations, writers: $0.writers))
                }
                guard !found.isEmpty else { return connection.eventLoop.makeSucceededFuture([]) }
                logger.critical("branches the coordinator rolled back were committed by hand: a mixed outcome",
                                metadata: ["gid": "\(gid)", "committed": "\(found.map { $0.transaction.description }.joined(separator: ","))"])
                return statements.recordSettledByHand(found, nowMs: nowMs)(connection).map { found }
            }
        }
    }

    /// Waits for phase two, takes in the groups its splits prepared, and returns the branches
    /// it found settled by hand.
    private func finishSettling(_ settling: Settling) throws -> [SettledByHand] {
        let results = pool.collect(settling.jobs)
        var byHand: [SettledByHand] = []
        for (waiting, result) in zip(settling.waiting, results) {
            let settled = try result.get()
            byHand += settled.byHand
            guard let outcome = settled.regrouped else { continue }
            for gid in outcome.prepared { enter(gid) }
            let handled = Set(settled.byHand.map(\.transaction))
            // A member that could not be staged again keeps its vote in its rows (unless it was
            // found committed by hand: then it is a heuristic outcome, see `split`).
            for (request, memberOutcome) in zip(waiting, outcome.outcomes) {
                if case .staged = memberOutcome { continue }
                if handled.contains(request.transaction) { continue }
                logger.error("a prepared branch could not be prepared again; its write-set holds its vote",
                             metadata: ["participant": "\(id)", "transaction": "\(request.transaction)"])
                loose.insert(request.transaction)
            }
        }
        finishedIntents += settling.finished + byHand.map(\.transaction)
        return byHand
    }

    /// Turns the branches phase two found settled by hand into the engine's heuristic
    /// outcomes, recorded already: the protocol holds each until the coordinator's FORGET (and
    /// answers resends and inquiries with it), and the batch answers with the heuristic report
    /// in place of the acknowledgement the protocol gave for the decision. A member still
    /// undecided (a split's, committed by hand before its decision came) is decided alone.
    private func report(_ byHand: [SettledByHand], in replies: inout [ParticipantReply]) {
        for found in byHand {
            let tx = found.transaction, heuristic = found.heuristic
            if case .prepared = machine.branches[tx] {
                var effects: [ParticipantProtocol.Effect] = []
                machine.handle(.decideAlone(tx, commit: heuristic.committed), into: &effects)
                // Its `.decideAlone` effect is done: the hand applied it, `split` recorded it.
                for case .reply(let reply) in effects { replies.append(reply) }
            } else {
                precondition(machine.branches[tx] == nil, "\(tx), settled by hand, is still staging")
                // Recorded in storage already, as after a restart; no effects.
                _ = machine.handle(.restoredHeuristic(tx, committed: heuristic.committed, operations: heuristic.operations, writers: heuristic.writers))
                var answered = false
                for index in replies.indices where replies[index] == .acknowledged(tx) {
                    replies[index] = found.reply
                    answered = true
                }
                if !answered { replies.append(found.reply) }
            }
        }
    }

    /// Stages `committing` again and commits them: branches whose commit was decided and whose
    /// prepared transaction is gone. Each must stage (or have committed before), or it fails.
    private static func apply(_ committing: [StageRequest], what: String, statements: BranchStatements,
                              database: String) -> @Sendable (PostgresConnection) -> EventLoopFuture<Void> {
        let commit = statements.stageGroup(committing, ending: .commit)
        return { connection in
            commit(connection).flatMapThrowing { outcome in
                for (request, result) in zip(committing, outcome.outcomes) {
                    if case .refused(let refusal) = result {
                        throw PostgresBankError.statement(database: database, what: "committing \(request.transaction), \(what)", detail: refusal.description)
                    }
                }
                statements.reached(.membersApplied)
            }
        }
    }

    /// A group whose members' decisions differ, or have not all come: their votes recorded,
    /// ROLLBACK PREPARED, the committed members staged again and committed, the waiting ones
    /// staged again and prepared. The outcome is the waiting members'.
    ///
    /// Should PostgreSQL not know the gid, someone finished it by hand. Rolled back, the
    /// committing members are applied as usual and the waiting ones prepared again. Committed,
    /// the committing members are found committed (and not applied twice), the members rolling
    /// back are heuristic commits, and so are the waiting ones (found committed when staged
    /// again): decided before the coordinator, who will hear of it when its decision comes.
    private func split(_ gid: GlobalTransactionID, committing: [StageRequest], waiting: [StageRequest],
                       rollingBack: [StageRequest]) -> Job {
        // With the notes of the members rolling back (see `rollBackWhole`).
        let vote = statements.recordVotes((committing + waiting).map(\.transaction), rollingBack: rollingBack.map(\.transaction))
        let rollback = statements.finish(gid, commit: false)
        let nowMs = clock()
        let committedByHand = Self.committedByHand(rollingBack, in: gid, statements: statements, logger: logger, nowMs: nowMs)
        let commit = committing.isEmpty ? nil : Self.apply(committing, what: "after splitting \(gid)", statements: statements, database: database)
        let prepare = waiting.isEmpty ? nil : statements.stageGroup(waiting, ending: .prepare)
        let logger = logger, participant = id, statements = statements
        return { connection in
            vote(connection).flatMap {
                statements.reached(.splitVotesRecorded)
                return rollback(connection)
            }.flatMap { found -> EventLoopFuture<[SettledByHand]> in
                statements.reached(found ? .splitGroupRolledBack : .groupFoundGone)
                if found { return connection.eventLoop.makeSucceededFuture([]) }
                logger.warning("a prepared group was gone when it was split", metadata: ["participant": "\(participant)", "gid": "\(gid)"])
                return committedByHand(connection)
            }.flatMap { byHand -> EventLoopFuture<[SettledByHand]> in
                guard let commit else { return connection.eventLoop.makeSucceededFuture(byHand) }
                return commit(connection).map { byHand }
            }.flatMap { byHand -> EventLoopFuture<Settled> in
                logger.debug("split a prepared group", metadata: ["participant": "\(participant)", "gid": "\(gid)",
                                                                  "committed": "\(committing.count)", "waiting": "\(waiting.count)"])
                guard let prepare else { return connection.eventLoop.makeSucceededFuture(Settled(byHand: byHand)) }
                // Once prepared again, a member's vote is its prepared transaction's: its vote row
                // goes (a reopened bank ignores one left by a crash in between).
                return prepare(connection).flatMap { outcome in
                    statements.reached(.splitMembersPrepared)
                    return statements.forgetVotes(outcome.prepared.flatMap(\.transactions))(connection).flatMap { _ -> EventLoopFuture<Settled> in
                        statements.reached(.splitVotesForgotten)
                        // Only a hand can have committed a member waiting for its decision here.
                        let ahead = zip(waiting, outcome.outcomes).compactMap { request, memberOutcome -> SettledByHand? in
                            guard case .alreadyCommitted = memberOutcome else { return nil }
                            return SettledByHand(transaction: request.transaction,
                                                 heuristic: .init(committed: true, operations: request.operations, writers: request.writers))
                        }
                        guard !ahead.isEmpty else { return connection.eventLoop.makeSucceededFuture(Settled(regrouped: outcome, byHand: byHand)) }
                        logger.critical("branches waiting for the coordinator's decision were committed by hand",
                                        metadata: ["gid": "\(gid)", "committed": "\(ahead.map { $0.transaction.description }.joined(separator: ","))"])
                        return statements.recordSettledByHand(ahead, nowMs: nowMs)(connection).map { Settled(regrouped: outcome, byHand: byHand + ahead) }
                    }
                }
            }
        }
    }

    /// Sorts the protocol's effects into the batch's work lists.
    /// `workOf`: what each branch the batch may roll back wrote (a discard's decision carries it).
    private func collect(_ effects: [ParticipantProtocol.Effect], workOf: [TransactionID: StageRequest], stages: inout [StageRequest],
                         decisions: inout [Decision], replies: inout [ParticipantReply], forgotten: inout [TransactionID]) {
        for effect in effects {
            switch effect {
            case .stage(let tx, let operations, let writers):
                stages.append(StageRequest(transaction: tx, operations: operations, writers: writers, readOnly: false))
            case .validateReads(let tx, let operations):
                stages.append(StageRequest(transaction: tx, operations: operations, writers: [], readOnly: true))
            case .apply(let tx, let operations, let writers):
                decisions.append(Decision(transaction: tx, commit: true, operations: operations, writers: writers))
            case .discard(let tx):
                decisions.append(Decision(transaction: tx, commit: false, operations: workOf[tx]?.operations ?? [], writers: workOf[tx]?.writers ?? []))
            case .reply(let reply):
                replies.append(reply)
            case .refuse(let tx, let reason):
                logger.critical("refused an impossible request from the coordinator", metadata: ["participant": "\(id)", "transaction": "\(tx)", "reason": "\(reason)"])
            case .forgetHeuristic(let tx):
                forgotten.append(tx)
            case .decideAlone:
                // Only a heuristic policy or a `decideAlone` input leads here, and this bank has no
                // policy and feeds the input only for a branch settled by hand (`report`), whose
                // effects it takes itself.
                preconditionFailure("PostgresBank makes no heuristic decisions")
            }
        }
    }

    /// The coordinator's decision for one prepared branch, with what it writes (for a rollback,
    /// what it would have written: reported if it is found committed by hand).
    private struct Decision {
        var transaction: TransactionID
        var commit: Bool
        var operations: [Operation]
        var writers: [ParticipantID]

        var request: StageRequest { StageRequest(transaction: transaction, operations: operations, writers: writers, readOnly: false) }
    }
}
