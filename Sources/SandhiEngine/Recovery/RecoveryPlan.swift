// What a coordinator does at start, decided from what the decision log and the banks hold:
// one pure function, used by the real node (`SandhiNode`) and by the simulator, so that the
// recovery the seeds check is the recovery that ships.
//
//   log records ----+
//                   +--> RecoveryPlan.make --> epoch to start (durable before any id)
//   each bank's ----+                     +--> inputs for the coordinator, in order:
//   in-doubt branches,                          recoverCommitted ...  (a COMMIT decides them)
//   locks, epoch,                               recoverInDoubt ...    (presumed abort)
//   heuristic decisions                         rememberCommitted     (finished commits)
//                                               heuristicReported ... (what banks decided alone)
//                                               recoveryComplete
//
// Rules:
//   * A new epoch is above every epoch in the log and in the banks, so transaction ids stay
//     unique across crashes although aborts leave no record.
//   * Banks that saw a higher epoch than the log holds prove the log lost its tail or was
//     replaced (a restored backup, a log failed over to a standby that was not synchronous, a
//     copied directory): presumed abort over such a log could roll back branches that
//     committed elsewhere, so the start is refused, naming both epochs.
//   * Every COMMIT in the log decides its transaction, with or without an END: a bank still
//     prepared for one (it should not be, after an END) commits.
//   * A branch some bank committed (not on its own, heuristically) proves a COMMIT decision:
//     it is committed everywhere, never presumed aborted, even if the log lost the record.
//   * Everything else prepared somewhere is presumed aborted.
//   * Heuristic decisions are reported after every transaction is fed, so that each meets
//     the decision recovery found for it rather than an unknown transaction. They are read
//     from the banks' storage now, so they are live (`HeuristicReportSource.recovery`): one
//     of a transaction the log no longer holds is believed without the question a report by
//     message must answer first (a COMMIT leaves the log only after every participant forgot
//     its heuristic decision on it, so presumed abort is right about it).

/// One bank's state at start, as the coordinator's recovery needs it.
public struct RecoveringBank: Sendable {
    public var participant: ParticipantID
    /// Prepared branches: transaction -> the writer participants its PREPARE named (empty:
    /// only this bank is known to hold it).
    public var inDoubt: [TransactionID: [ParticipantID]]
    /// The accounts each prepared branch holds here.
    public var locks: [TransactionID: [AccountID]]
    /// The highest coordinator epoch among the transactions this bank has seen.
    public var highestEpoch: UInt32
    /// Branches decided here alone and not yet forgotten.
    public var heuristics: [TransactionID: ParticipantProtocol.Heuristic]

    public init(participant: ParticipantID, inDoubt: [TransactionID: [ParticipantID]], locks: [TransactionID: [AccountID]],
                highestEpoch: UInt32, heuristics: [TransactionID: ParticipantProtocol.Heuristic] = [:]) {
        self.participant = participant
        self.inDoubt = inDoubt
        self.locks = locks
        self.highestEpoch = highestEpoch
        self.heuristics = heuristics
    }
}

/// Why a start is refused: one line for the operator, naming what was found.
public enum RecoveryRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// Banks saw transactions of a later epoch than any the log holds.
    case banksAheadOfLog(logEpoch: UInt32, banksEpoch: UInt32, bank: ParticipantID)
    /// Every epoch number is used.
    case epochsExhausted(limit: UInt32)

    public var description: String {
        switch self {
        case .banksAheadOfLog(let logEpoch, let banksEpoch, let bank):
            let log = logEpoch == 0 ? "the decision log is empty (epoch 0)" : "the decision log reaches only epoch \(logEpoch)"
            return "\(log), but bank \(bank) holds transactions of epoch \(banksEpoch): the log lost its last records or was replaced "
                + "(a restored backup, a failover to a standby that was not synchronous, a copied directory); restore it before starting"
        case .epochsExhausted(let limit):
            return "coordinator epochs exhausted (\(limit) starts)"
        }
    }
}

/// What recovery decides: the epoch to start and the coordinator's inputs, in order.
public struct RecoveryPlan: Sendable {
    /// Why a transaction is committed or rolled back by recovery.
    public enum Reason: Hashable, Sendable {
        /// A COMMIT record without an END: phase two may not have reached everyone.
        case commitLogged
        /// A COMMIT record with an END, and yet a bank still holds the branch prepared.
        case commitLoggedAndEnded(stillPreparedAt: ParticipantID)
        /// No COMMIT record, but a bank committed its branch: the decision was COMMIT and the
        /// log lost it.
        case committedAt(ParticipantID)
        /// No COMMIT record, and no bank committed: presumed abort.
        case presumedAbort
    }

    public struct Decision: Hashable, Sendable {
        public var transaction: TransactionID
        public var commit: Bool
        public var participants: [ParticipantID]
        public var reason: Reason
    }

    /// The epoch this incarnation starts: its record must be durable before any id of it.
    public var epoch: UInt32
    /// Every transaction recovery drives, in the order fed: commits first, then aborts.
    public var decisions: [Decision]
    /// Fed to the coordinator (made with `recovering: true`) in this order.
    public var inputs: [CoordinatorInput]
    /// Heuristic decisions handed over, by bank and transaction.
    public var heuristics: [(participant: ParticipantID, transaction: TransactionID, committed: Bool)]

    /// The in-doubt transactions that have no COMMIT in the log: the ones whose branches
    /// recovery asks every bank about (`committedAt`) before presuming abort.
    public static func undecided(commits: [(transaction: TransactionID, participants: [ParticipantID], ended: Bool)],
                                 banks: [RecoveringBank]) -> [TransactionID] {
        let logged = Set(commits.map(\.transaction))
        var undecided = Set<TransactionID>()
        for bank in banks { for tx in bank.inDoubt.keys where !logged.contains(tx) { undecided.insert(tx) } }
        return undecided.sorted()
    }

    /// - Parameters:
    ///   - logEpoch: the highest epoch in the log (0 for an empty or new log).
    ///   - commits: every COMMIT record in the log, in log order, and whether an END follows it.
    ///   - banks: every configured bank.
    ///   - committedAt: the banks that committed `tx` other than on their own, asked only for
    ///     the transactions `undecided` names (an indexed lookup in each bank).
    public static func make(logEpoch: UInt32,
                            commits: [(transaction: TransactionID, participants: [ParticipantID], ended: Bool)],
                            banks: [RecoveringBank],
                            committedAt: (TransactionID) throws -> [ParticipantID]) throws -> RecoveryPlan {
        var banksEpoch: UInt32 = 0
        var newest: ParticipantID?
        for bank in banks where bank.highestEpoch > banksEpoch {
            banksEpoch = bank.highestEpoch
            newest = bank.participant
        }
        if banksEpoch > logEpoch, let newest {
            throw RecoveryRefusal.banksAheadOfLog(logEpoch: logEpoch, banksEpoch: banksEpoch, bank: newest)
        }
        let epoch = max(logEpoch, banksEpoch) + 1
        guard epoch <= TransactionID.maxEpoch else { throw RecoveryRefusal.epochsExhausted(limit: TransactionID.maxEpoch) }

        // Every prepared branch, merged across banks: who holds it, the writers its PREPARE
        // named, the accounts it holds.
        var inDoubt: [TransactionID: (holders: [ParticipantID], writers: [ParticipantID], locks: [ResourceID])] = [:]
        for bank in banks {
            for (tx, writers) in bank.inDoubt {
                var entry = inDoubt[tx] ?? ([], [], [])
                entry.holders.append(bank.participant)
                for writer in writers where !entry.writers.contains(writer) { entry.writers.append(writer) }
                entry.locks += (bank.locks[tx] ?? []).map { ResourceID(participant: bank.participant, account: $0) }
                inDoubt[tx] = entry
            }
        }

        var decisions: [Decision] = []
        var decided = Set<TransactionID>()
        for commit in commits where !decided.contains(commit.transaction) {
            let held = inDoubt[commit.transaction]
            guard !commit.ended || held != nil else { continue }
            decided.insert(commit.transaction)
            decisions.append(Decision(transaction: commit.transaction, commit: true, participants: commit.participants,
                                      reason: commit.ended ? .commitLoggedAndEnded(stillPreparedAt: held!.holders[0]) : .commitLogged))
        }
        decisions.sort { $0.transaction < $1.transaction }
        var aborts: [Decision] = []
        for (tx, entry) in inDoubt.sorted(by: { $0.key < $1.key }) where !decided.contains(tx) {
            let participants = entry.writers.isEmpty ? entry.holders : entry.writers
            if let committer = try committedAt(tx).first {
                // A bank committed it: the decision was COMMIT, whatever the log lost.
                decisions.append(Decision(transaction: tx, commit: true, participants: participants, reason: .committedAt(committer)))
            } else {
                aborts.append(Decision(transaction: tx, commit: false, participants: participants, reason: .presumedAbort))
            }
        }
        decisions += aborts

        var inputs: [CoordinatorInput] = []
        inputs.reserveCapacity(decisions.count + 2)
        for decision in decisions {
            let locks = inDoubt[decision.transaction]?.locks ?? []
            inputs.append(decision.commit ? .recoverCommitted(decision.transaction, participants: decision.participants, locks: locks)
                                          : .recoverInDoubt(decision.transaction, participants: decision.participants, locks: locks))
        }
        // Committed and finished: remembered, so that a late heuristic report of one is not
        // taken for presumed abort.
        let driven = Set(decisions.map(\.transaction))
        var finished: [TransactionID] = []
        var seen = Set<TransactionID>()
        for commit in commits where !driven.contains(commit.transaction) && seen.insert(commit.transaction).inserted {
            finished.append(commit.transaction)
        }
        if !finished.isEmpty { inputs.append(.rememberCommitted(finished)) }
        // After every transaction is fed, so each report meets the decision found for it.
        var heuristics: [(participant: ParticipantID, transaction: TransactionID, committed: Bool)] = []
        for bank in banks {
            for (tx, heuristic) in bank.heuristics.sorted(by: { $0.key < $1.key }) {
                inputs.append(.heuristicReported(tx, participant: bank.participant, committed: heuristic.committed,
                                                 operations: heuristic.operations, writers: heuristic.writers, source: .recovery))
                heuristics.append((bank.participant, tx, heuristic.committed))
            }
        }
        inputs.append(.recoveryComplete)
        return RecoveryPlan(epoch: epoch, decisions: decisions, inputs: inputs, heuristics: heuristics)
    }
}
