import Logging
import NIOCore
import PostgresNIO
import SandhiEngine

/// How a group's staging ended.
struct GroupOutcome: Sendable {
    /// Per request, in the order given.
    var outcomes: [StageOutcome]
    /// The prepared transactions that now hold the staged members: one, unless a refusal
    /// PostgreSQL raised made the members stage one by one; none when nothing was staged, or
    /// when the group was committed rather than prepared.
    var prepared: [GlobalTransactionID]
}

/// What a staged group becomes.
enum GroupEnd: Sendable {
    /// PREPARE TRANSACTION under a gid naming the staged members: their YES votes.
    case prepare
    /// COMMIT, only if every member is staged (or committed before): branches whose commit
    /// was decided and whose prepared transaction had to be rolled back (a split group).
    case commit
}

extension BranchStatements {
    /// Stages writing branches together in one transaction: BEGIN (unless `begun`);
    /// `sandhi_stage_group` (see `PostgresBankSchema`); the engine's staging rule over what it
    /// read; then PREPARE TRANSACTION (or COMMIT). Two or three round trips and one WAL flush for
    /// the whole group, where a transaction per branch would take as many for each. `requests` are ascending, of one
    /// epoch, few enough for one gid (`GlobalTransactionID.fits`), and write disjoint accounts.
    ///
    /// A NO is nothing written for that member, and the others go on. A refusal PostgreSQL
    /// raises (a row locked past `lock_timeout` by a writer outside Sandhi, a CHECK the balance
    /// broke, no prepared-transaction slot left) fails the statement and so the whole group:
    /// it is rolled back and its members staged again one by one, so that the refusal is the
    /// NO vote of the member it concerns alone. Anything else fails the batch.
    ///
    /// The PREPARE (or COMMIT) waits for `preparingAfter` as well: the batch's write-set rows,
    /// committed on another session meanwhile.
    ///
    /// With `begun`, the session is already inside a transaction block (a staging session of
    /// `PostgresSessionPool`'s `startsInTransaction`), and the first try sends no BEGIN.
    func stageGroup(_ requests: [StageRequest], ending end: GroupEnd, preparingAfter before: EventLoopFuture<Void>? = nil,
                    begun: Bool = false) -> @Sendable (PostgresConnection) -> EventLoopFuture<GroupOutcome> {
        precondition(!requests.isEmpty && requests.allSatisfy { !$0.readOnly }, "a group stages writing branches")
        let statements = self
        return { connection in statements.attempt(requests, end, settled: [:], before: before, begun: begun, on: connection) }
    }

    /// One try of the members of `requests` not in `settled`.
    private func attempt(_ requests: [StageRequest], _ end: GroupEnd, settled: [Int: StageOutcome], before: EventLoopFuture<Void>?,
                         begun: Bool = false, on connection: PostgresConnection) -> EventLoopFuture<GroupOutcome> {
        var unwritable = settled
        var building = GroupCall()
        for index in requests.indices where settled[index] == nil {
            if let writes = NetWrites(requests[index].operations) {
                building.add(index, requests[index], writes)
            } else {
                unwritable[index] = .refused(Self.unwritable(requests[index], at: participant))
            }
        }
        let settled = unwritable, call = building
        let statements = self
        guard !call.members.isEmpty else {
            // A block the pool opened must still be ended, as every job's is.
            let outcome = Self.outcome(requests, settled, [])
            return begun ? rollback(on: connection).map { outcome } : connection.eventLoop.makeSucceededFuture(outcome)
        }
        let opened = begun ? connection.eventLoop.makeSucceededVoidFuture() : connection.query("BEGIN", logger: logger).map { _ in }
        let attempted = opened.flatMap { _ in
            connection.query(call.query(instance: statements.instanceName, forgettingVotes: end == .commit), logger: statements.logger)
        }.flatMapThrowing { result in
            try statements.judge(requests, call, result)
        }.flatMap { judged in
            (before?.hop(to: connection.eventLoop) ?? connection.eventLoop.makeSucceededVoidFuture()).map { judged }
        }.flatMap { judged -> EventLoopFuture<GroupOutcome> in
            if !judged.disagreeing.isEmpty {
                // The rule refuses what the function wrote: undo the group. Branches whose commit
                // was decided commit all or nothing, so they end there; others are staged again
                // without the refused (each retry has fewer members, so this ends).
                let refused = settled.merging(judged.disagreeing.mapValues { StageOutcome.refused($0) }) { old, _ in old }
                return statements.rollback(on: connection).flatMap {
                    end == .commit ? connection.eventLoop.makeSucceededFuture(Self.outcome(requests, refused.merging(judged.outcomes) { old, _ in old }, []))
                                   : statements.attempt(requests, end, settled: refused, before: before, on: connection)
                }
            }
            let all = settled.merging(judged.outcomes) { old, _ in old }
            let staged = call.members.filter { if case .staged = all[$0] { return true } else { return false } }
            switch end {
            case .prepare:
                guard !staged.isEmpty else {
                    return statements.rollback(on: connection).map { Self.outcome(requests, all, []) }
                }
                let gid = GlobalTransactionID(instance: statements.instance, transactions: staged.map { requests[$0].transaction },
                                              participant: statements.participant)
                statements.reached(.groupStaged)
                return statements.prepare(gid, on: connection).map {
                    statements.reached(.groupPrepared)
                    return Self.outcome(requests, all, [gid])
                }
            case .commit:
                let whole = call.members.allSatisfy {
                    switch all[$0] { case .staged, .alreadyCommitted: return true; default: return false }
                }
                return (whole ? connection.query("COMMIT", logger: statements.logger).map { _ in }
                              : statements.rollback(on: connection)).map { Self.outcome(requests, all, []) }
            }
        }
        return attempted.flatMapError { error in
            connection.query("ROLLBACK", logger: statements.logger).flatMap { _ -> EventLoopFuture<GroupOutcome> in
                guard end == .prepare, let refusal = statements.refusal(error, requests[call.members[0]].transaction) else {
                    return connection.eventLoop.makeFailedFuture(error)
                }
                if call.members.count == 1 {
                    let refused = settled.merging([call.members[0]: .refused(refusal)]) { old, _ in old }
                    return connection.eventLoop.makeSucceededFuture(Self.outcome(requests, refused, []))
                }
                return statements.oneByOne(requests, call.members, settled: settled, before: before, on: connection)
            }
        }
    }

    /// Each of `members` staged and prepared alone, in turn: after a group's refusal that
    /// concerns some of them only.
    private func oneByOne(_ requests: [StageRequest], _ members: [Int], settled: [Int: StageOutcome],
                          before: EventLoopFuture<Void>?, on connection: PostgresConnection) -> EventLoopFuture<GroupOutcome> {
        var result = connection.eventLoop.makeSucceededFuture((settled: settled, prepared: [GlobalTransactionID]()))
        for member in members {
            result = result.flatMap { sofar in
                self.attempt([requests[member]], .prepare, settled: [:], before: before, on: connection).map { alone in
                    var next = sofar
                    next.settled[member] = alone.outcomes[0]
                    next.prepared += alone.prepared
                    return next
                }
            }
        }
        return result.map { Self.outcome(requests, $0.settled, $0.prepared) }
    }

    /// Every request's outcome, in order. Each one must be settled: a member left out would go
    /// back to the coordinator as a vote nobody decided on.
    private static func outcome(_ requests: [StageRequest], _ settled: [Int: StageOutcome], _ prepared: [GlobalTransactionID]) -> GroupOutcome {
        GroupOutcome(outcomes: requests.indices.map { index in
            guard let outcome = settled[index] else { preconditionFailure("member \(index) of a group was neither staged nor refused") }
            return outcome
        }, prepared: prepared)
    }

    private struct Judgement {
        var outcomes: [Int: StageOutcome] = [:]
        /// Members the function wrote and the engine's rule refuses, with the rule's refusal.
        var disagreeing: [Int: Refusal] = [:]
    }

    /// The engine's staging rule over what `sandhi_stage_group` read for each member.
    private func judge(_ requests: [StageRequest], _ call: GroupCall, _ result: PostgresQueryResult) throws -> Judgement {
        var committed = [Bool](repeating: false, count: call.members.count)
        var applied = [Bool](repeating: false, count: call.members.count)
        var accounts = [[AccountID: Observation]](repeating: [:], count: call.members.count)
        for row in result.rows {
            let (number, id, balance, version, writer, done, wrote) = try row.decode((Int32, String?, Int64?, Int64?, Int64?, Bool, Bool).self)
            let member = Int(number) - 1
            guard call.members.indices.contains(member) else { continue }
            if let id, let balance, let version {
                accounts[member][AccountID(validated: id)] = Self.observation(id, balance, version, writer)
            } else {
                committed[member] = done
                applied[member] = wrote
            }
        }
        var judgement = Judgement()
        for (member, index) in call.members.enumerated() {
            let request = requests[index]
            if committed[member] {
                judgement.outcomes[index] = .alreadyCommitted
                continue
            }
            let rule = Staging.validate(request.transaction, at: participant, request.operations) { accounts[member][$0] }
            switch (rule.failure, applied[member]) {
            case (let failure?, true):
                judgement.disagreeing[index] = failure
            case (let failure?, false):
                judgement.outcomes[index] = .refused(failure)
            case (nil, false):
                judgement.outcomes[index] = .refused(.notWrittenByDatabase(participant, request.transaction))
            case (nil, true):
                judgement.outcomes[index] = .staged(observed: rule.observed)
            }
        }
        return judgement
    }

    private func prepare(_ gid: GlobalTransactionID, on connection: PostgresConnection) -> EventLoopFuture<Void> {
        connection.query(PostgresQuery(unsafeSQL: "PREPARE TRANSACTION '\(gid)'"), logger: logger).map { _ in }
    }

    private func rollback(on connection: PostgresConnection) -> EventLoopFuture<Void> {
        connection.query("ROLLBACK", logger: logger).map { _ in }
    }

    /// The NO vote for an error PostgreSQL raised while staging `tx` alone, or nil for a failure.
    /// A lock PostgreSQL would not grant is a passing conflict (the coordinator's
    /// `participantBusy`, worth running again), as a lock the participant protocol refuses is.
    private func refusal(_ error: any Error, _ tx: TransactionID) -> Refusal? {
        switch ServerMessage.sqlState(error) {
        case SQLState.checkViolation:
            return .negativeBalance(participant, tx)
        case SQLState.numericValueOutOfRange:
            return .balanceOutOfRange(participant, tx)
        case SQLState.lockNotAvailable:
            return .lockedInDatabase(participant, tx)
        case SQLState.deadlockDetected:
            return .deadlockInDatabase(participant, tx)
        case SQLState.duplicateObject:
            // The gid is prepared already, and not by this bank (it would know): another
            // coordinator deployment uses this instance name on the same server.
            return .gidInUse(participant, tx, instance: instance.name)
        case SQLState.outOfMemory:
            // What PREPARE TRANSACTION says when every max_prepared_transactions slot is taken.
            return .databaseFull(participant, detail: ServerMessage.describe(error))
        default:
            return nil
        }
    }

    /// The NO vote for a branch whose writes cannot be summed (`NetWrites` is nil): an amount
    /// that is not positive (the engine's staging rule says the same) or sums beyond 64 bits.
    /// Decided before anything reaches the database, whose arithmetic runs before the rule is
    /// applied.
    private static func unwritable(_ request: StageRequest, at participant: ParticipantID) -> Refusal {
        for operation in request.operations {
            switch operation {
            case .debit(let account, let amount) where amount.value <= 0, .credit(let account, let amount) where amount.value <= 0:
                return .notPositiveAmount(ResourceID(participant: participant, account: account), amount)
            default:
                continue
            }
        }
        return .amountsOverflow(request.transaction)
    }
}

/// The arguments of one `sandhi_stage_group` call: its members' flattened write-sets, plain
/// reads and reports, each row naming its member by number (from 1).
private struct GroupCall {
    /// Index into the requests of each member, in member order.
    var members: [Int] = []
    var transactions: [Int64] = [], writers: [String] = [], nets: [Int64] = []
    var writeMember: [Int32] = [], writeNames: [String] = [], writeDeltas: [Int64] = [], writeCounts: [Int64] = []
    var readMember: [Int32] = [], readNames: [String] = []
    var reportMember: [Int32] = [], kinds: [String] = [], amounts: [Int64] = [], references: [String] = []

    mutating func add(_ index: Int, _ request: StageRequest, _ writes: NetWrites) {
        members.append(index)
        let number = Int32(members.count)
        transactions.append(Int64(bitPattern: request.transaction.rawValue))
        writers.append(WriterList.encode(request.writers))
        nets.append(writes.net)
        for (name, (delta, count)) in zip(writes.names, zip(writes.deltas, writes.writes)) {
            writeMember.append(number)
            writeNames.append(name)
            writeDeltas.append(delta)
            writeCounts.append(count)
        }
        for account in NetWrites.plainReads(request.operations) {
            readMember.append(number)
            readNames.append(account.name)
        }
        for report in writes.reports {
            reportMember.append(number)
            kinds.append(report.kind)
            amounts.append(report.amount.value)
            references.append(report.reference)
        }
    }

    /// With `forgettingVotes` (members committed again: `GroupEnd.commit`), the members'
    /// `sandhi_voted` rows are deleted in the same statement, so in the same transaction as
    /// their commit: a vote row beside a committed branch then never is this bank's own doing,
    /// and a reopened bank can take one for what it is, a member a hand committed with its
    /// group while its vote was being kept (see `PreparedBranchScan`).
    func query(instance: String, forgettingVotes: Bool) -> PostgresQuery {
        guard forgettingVotes else { return stageGroup(instance: instance) }
        var query = stageGroup(instance: instance)
        // $1 and $2 are the call's first two arguments: the instance and the members' ids.
        query.sql = "WITH forgotten AS (DELETE FROM sandhi_voted WHERE instance = $1 AND tx = ANY($2::bigint[])) " + query.sql
        return query
    }

    private func stageGroup(instance: String) -> PostgresQuery {
        """
        SELECT * FROM sandhi_stage_group(\(instance), \(transactions)::bigint[], \(writers)::text[], \(nets)::bigint[],
            \(writeMember)::int[], \(writeNames)::text[], \(writeDeltas)::bigint[], \(writeCounts)::bigint[],
            \(readMember)::int[], \(readNames)::text[],
            \(reportMember)::int[], \(kinds)::text[], \(amounts)::bigint[], \(references)::text[])
        """
    }
}

/// What a writing branch writes, summed per account.
struct NetWrites: Sendable {
    var names: [String] = [], deltas: [Int64] = [], writes: [Int64] = []
    /// The branch's net change here.
    var net: Int64 = 0
    var reports: [Report] = []

    /// Each written account's net change and number of writes, in first-write order; the
    /// branch's net change; its reports. Nil when an amount is not positive or the sums
    /// overflow: the database is never asked to write those.
    init?(_ operations: [Operation]) {
        for operation in operations {
            switch operation {
            case .debit(let account, let amount), .credit(let account, let amount):
                guard amount.value > 0 else { return nil }
                let delta = operation.delta.value
                if let index = names.firstIndex(of: account.name) {
                    let (sum, overflow) = deltas[index].addingReportingOverflow(delta)
                    guard !overflow else { return nil }
                    deltas[index] = sum
                    writes[index] += 1
                } else {
                    names.append(account.name)
                    deltas.append(delta)
                    writes.append(1)
                }
                let (total, overflow) = net.addingReportingOverflow(delta)
                guard !overflow else { return nil }
                net = total
            case .fileReport(let report):
                reports.append(report)
            case .read:
                break
            }
        }
    }

    /// Accounts the branch reads without writing them.
    static func plainReads(_ operations: [Operation]) -> [AccountID] {
        let written = ParticipantProtocol.writtenAccounts(operations)
        var onlyRead: [AccountID] = []
        for operation in operations {
            if case .read(let account) = operation, !written.contains(account), !onlyRead.contains(account) { onlyRead.append(account) }
        }
        return onlyRead
    }
}
