import DequeModule

// The participant side of two-phase commit, as a pure state machine: the lifecycle of each
// transaction's branch and the exclusive locks its write-set holds. The storage that holds the
// balances (a SQLite file, a PostgreSQL database, simulated memory) performs the effects and
// reports back; this machine decides what every message means, including duplicates and
// messages that arrive after the fact.
//
//                 prepare                   staged(ok)
//   (absent) -----------------> staging ----------------> prepared
//      ^                           |                        |   |
//      |       staged(no: refusal) |           commit       |   | rollback
//      +---------------------------+------------------------+---+
//                                        (locks released)
//
// Transitions and their effects:
//   absent   --prepare-->        staging    lock every written account (NO at once if taken),
//                                           stage: validate + persist the write-set
//   absent   --prepare, RO-->    absent     validate reads; reply READ-ONLY (no state kept)
//   staging  --staged(ok)-->     prepared   reply YES (the driver sends it once durable)
//   staging  --staged(no)-->     absent     release locks; reply NO with the refusal
//   staging  --alreadyCommitted-> finished  a stale duplicate: release locks, no vote
//   prepared --prepare-->        prepared   duplicate: reply YES again
//   prepared --commit-->         absent     apply the write-set; release locks; acknowledge
//   prepared --rollback-->       absent     discard the write-set; release locks; acknowledge
//   prepared --inquire-->        prepared   reply YES again (asks the coordinator for the outcome)
//   staging  --rollback-->       staging    remembered; discarded and acknowledged when staged
//   absent   --commit/rollback-> absent     already done (or never prepared): acknowledge; a
//                                           ROLLBACK is remembered, refusing a late PREPARE but
//                                           not a COMMIT (it may be committed in storage)
//   absent   --rollback(tag)-->  absent     the coordinator's question about a heuristic report
//                                           (see below): acknowledge, nothing remembered
//   finished --prepare-->        finished   a PREPARE duplicated or overtaken by the network:
//                                           committed -> ignored; rolled back -> NO, never staged
//   restart  --restored(tx)-->   prepared   re-take locks from the persisted write-set
//   prepared --decideAlone-->    heuristic  commit or roll back without the coordinator (the
//                                           operator's or the store's own policy after a long
//                                           wait); release locks; report HEURISTIC
//   heuristic --commit/rollback-> heuristic report HEURISTIC again (the coordinator compares)
//   heuristic --rollback(tag)--> heuristic  report HEURISTIC again, echoing the tag: the proof the
//                                           coordinator asked for that this decision is still held
//   heuristic --inquire-->       heuristic  report HEURISTIC again, until the coordinator forgets it
//   heuristic --forget-->        finished   the coordinator has recorded the outcome durably, or
//                                           it agreed with the decision; acknowledge
//   restart  --restoredHeuristic-> heuristic
//
// Finished branches are remembered (a bounded, volatile window of `maxRemembered`
// transactions) so that a PREPARE that arrives after its own COMMIT or ROLLBACK can neither
// apply a transfer twice nor leave a branch prepared that nobody will ever resolve.
//
// A prepared branch waits for the coordinator for as long as it takes, unless its driver feeds
// `decideAlone` (a heuristic policy, or an operator at the database). A heuristic decision is
// durable and reported until the coordinator, having recorded it, says `forget`: the
// coordinator must hear of every one, since only it can tell whether the outcome is mixed.
//
// A coordinator that does not know a transaction cannot tell a heuristic report of it from a
// stale copy the network delayed past the FORGET that settled it. Before it records a mixed
// outcome for one, it asks: a ROLLBACK (its presumed decision) carrying a confirmation tag. A
// branch still decided here answers with its report echoing the tag; anything else is answered
// as any ROLLBACK is, except that a branch found absent is not remembered as rolled back: the
// question is about a branch decided here (prepared, then committed alone, so no PREPARE of it
// is still to come to be refused), and remembering a rollback would make a late duplicate of
// the transaction's COMMIT, acknowledged so far, look like a COMMIT of a rolled-back branch.

/// A participant's reply to the coordinator.
public enum ParticipantReply: Hashable, Sendable {
    /// `observed`: what each operation with an account saw, in operation order (with a YES or
    /// READ-ONLY vote; empty with NO).
    case vote(TransactionID, Vote, observed: [Observation] = [])
    case acknowledged(TransactionID)
    /// The branch was decided here without the coordinator: committed or rolled back on its
    /// own. Carries the branch's work so the coordinator can record (and an operator undo or
    /// redo) it even for a transaction it no longer knows. `confirming`: the tag of the
    /// coordinator's question this answers (a ROLLBACK that carried it), echoed; nil otherwise.
    case heuristic(TransactionID, committed: Bool, operations: [Operation], writers: [ParticipantID],
                   confirming: ConfirmationTag? = nil)

    public var transaction: TransactionID {
        switch self {
        case .vote(let tx, _, _), .acknowledged(let tx), .heuristic(let tx, _, _, _, _): return tx
        }
    }
}

public struct ParticipantProtocol: Sendable {
    public enum Input: Sendable {
        case message(ParticipantMessage)
        /// Storage finished staging a prepare: `nil` means validated and persisted, a refusal is
        /// the NO vote to give (nothing was persisted). `observed` goes out with the vote.
        case staged(TransactionID, failure: Refusal?, observed: [Observation] = [])
        /// After a restart: storage holds this prepared branch.
        case restored(TransactionID, operations: [Operation], writers: [ParticipantID])
        /// Time to ask about every prepared branch: each one's YES vote goes out again. A
        /// prepared branch whose vote or outcome was lost on an unreliable link (or whose
        /// transaction the coordinator has already forgotten, after a PREPARE that arrived late
        /// at a participant that had restarted and no longer remembered the rollback) would
        /// otherwise wait forever; the coordinator answers a vote for a transaction it does not
        /// know with ROLLBACK (presumed abort), and for one it does with what it decided.
        case inquire
        /// Storage, staging a PREPARE, found the transaction among its committed branches: a
        /// PREPARE duplicated or delayed by the network that arrives after this participant
        /// committed the branch and then restarted, forgetting it. Staging it again would apply
        /// the transfer twice at the next COMMIT; it is dropped instead.
        case alreadyCommitted(TransactionID)
        /// Decide a prepared branch without the coordinator (ignored for any other branch).
        case decideAlone(TransactionID, commit: Bool)
        /// After a restart: storage holds this heuristic decision, not yet forgotten.
        case restoredHeuristic(TransactionID, committed: Bool, operations: [Operation], writers: [ParticipantID])
    }

    public enum Effect: Hashable, Sendable {
        /// Validate the operations against storage and persist them as a prepared write-set,
        /// then feed back `.staged`.
        case stage(TransactionID, operations: [Operation], writers: [ParticipantID])
        /// Validate the reads of a read-only branch (accounts exist); answered by `.staged`.
        case validateReads(TransactionID, operations: [Operation])
        /// Apply the prepared write-set to the balances and delete it.
        case apply(TransactionID, operations: [Operation], writers: [ParticipantID])
        /// Delete the prepared write-set.
        case discard(TransactionID)
        /// Apply (`commit`) or delete the prepared write-set and, in the same durable step,
        /// record the heuristic decision with the branch's work.
        case decideAlone(TransactionID, commit: Bool, operations: [Operation], writers: [ParticipantID])
        /// Delete the heuristic record: the coordinator has it.
        case forgetHeuristic(TransactionID)
        /// Send to the coordinator once everything before it is durable.
        case reply(ParticipantReply)
        /// The coordinator asked for what cannot be: COMMIT of a branch never prepared here, or
        /// already rolled back (only a coordinator that told a participant COMMIT before its
        /// decision was durable, and then lost it, can ask that). Nothing changes and nothing
        /// is answered: the driver reports it loudly (a simulation records a violation). A
        /// participant is another process in real life, and must not die of someone else's bug.
        case refuse(TransactionID, reason: String)
    }

    /// A branch decided here without the coordinator, kept until the coordinator forgets it.
    public struct Heuristic: Hashable, Sendable {
        public var committed: Bool
        public var operations: [Operation]
        public var writers: [ParticipantID]

        public init(committed: Bool, operations: [Operation], writers: [ParticipantID]) {
            self.committed = committed
            self.operations = operations
            self.writers = writers
        }
    }

    /// How a branch ended, remembered for late duplicates.
    public enum Finished: Hashable, Sendable {
        case committed, rolledBack
        /// A ROLLBACK that found nothing here: it may have overtaken its PREPARE (which must
        /// then be refused), or be the coordinator's answer to a stale YES of a branch this
        /// participant committed before a restart (whose COMMIT, resent after the
        /// coordinator's own restart, must then be acknowledged, not refused: review of seed
        /// 3765). Nothing was discarded, so a later COMMIT is "already done", as for any
        /// transaction not prepared here.
        case rollbackFoundNothing
        /// Decided here on its own, and forgotten once the coordinator recorded it: either of
        /// the coordinator's decisions may still arrive late, and is acknowledged.
        case heuristicRollback
    }

    public enum BranchState: Hashable, Sendable {
        /// `rollbackRequested`: a ROLLBACK overtook the vote; discard as soon as staging ends.
        case staging(operations: [Operation], writers: [ParticipantID], readOnly: Bool, rollbackRequested: Bool)
        case prepared(operations: [Operation], writers: [ParticipantID])
    }

    public let participant: ParticipantID
    /// Branches by transaction; bounded by `maxBranches` (a bound on every queue).
    public private(set) var branches: [TransactionID: BranchState] = [:]
    /// Exclusive lock on each account a prepared (or staging) branch writes.
    public private(set) var lockOwners: [AccountID: TransactionID] = [:]
    public let maxBranches: Int
    /// Recently finished branches, oldest first in `finishedOrder`.
    public private(set) var finished: [TransactionID: Finished] = [:]
    private var finishedOrder = Deque<TransactionID>()
    public let maxRemembered: Int
    /// Heuristic decisions not yet forgotten by the coordinator (they count against
    /// `maxBranches`: each one is durable state the coordinator must come back for).
    public private(set) var heuristics: [TransactionID: Heuristic] = [:]

    /// Tests only: a known bug to plant (`.noLocks`: no lock is checked or held).
    public let plantedBug: PlantedBug?

    public init(participant: ParticipantID, maxBranches: Int = 65_536, maxRemembered: Int = 65_536, plantedBug: PlantedBug? = nil) {
        precondition(maxBranches > 0 && maxRemembered > 0)
        self.participant = participant
        self.plantedBug = plantedBug
        self.maxBranches = maxBranches
        self.maxRemembered = maxRemembered
    }

    private mutating func remember(_ tx: TransactionID, _ outcome: Finished) {
        if finished.updateValue(outcome, forKey: tx) == nil {
            finishedOrder.append(tx)
            if finishedOrder.count > maxRemembered {
                finished[finishedOrder.removeFirst()] = nil
            }
        }
        assert(finished.count == finishedOrder.count)
    }

    public var preparedCount: Int {
        branches.values.reduce(0) { count, state in
            if case .prepared = state { return count + 1 }
            return count
        }
    }

    /// Each prepared branch's writer participants: what a bank reports as in doubt.
    public var preparedWriters: [TransactionID: [ParticipantID]] {
        branches.reduce(into: [:]) { result, entry in
            if case .prepared(_, let writers) = entry.value { result[entry.key] = writers }
        }
    }

    /// The accounts each prepared branch writes: the locks it holds here, which the
    /// coordinator's lock manager re-takes at recovery.
    public var preparedLocks: [TransactionID: [AccountID]] {
        branches.reduce(into: [:]) { result, entry in
            if case .prepared(let operations, _) = entry.value { result[entry.key] = Self.writtenAccounts(operations) }
        }
    }

    /// What each prepared branch would change here if it commits (its write-set's net).
    public var preparedNet: [TransactionID: Paise] {
        branches.reduce(into: [:]) { result, entry in
            if case .prepared(let operations, _) = entry.value { result[entry.key] = operations.reduce(Paise.zero) { $0 + $1.delta } }
        }
    }

    public mutating func handle(_ input: Input) -> [Effect] {
        var effects: [Effect] = []
        handle(input, into: &effects)
        return effects
    }

    public mutating func handle(_ input: Input, into effects: inout [Effect]) {
        switch input {
        case .message(.prepare(let tx, let operations, let writers)):
            prepare(tx, operations: operations, writers: writers, into: &effects)
        case .message(.commit(let tx)):
            finish(tx, commit: true, into: &effects)
        case .message(.rollback(let tx, let tag)):
            finish(tx, commit: false, confirming: tag, into: &effects)
        case .message(.forget(let tx)):
            if let heuristic = heuristics.removeValue(forKey: tx) {
                effects.append(.forgetHeuristic(tx))
                remember(tx, heuristic.committed ? .committed : .heuristicRollback)
            }
            // Acknowledged, forgotten now or before: the coordinator may be waiting on it to
            // finish a transaction whose heuristic decision agreed with its own.
            effects.append(.reply(.acknowledged(tx)))
        case .decideAlone(let tx, let commit):
            guard case .prepared(let operations, let writers) = branches[tx] else { return }
            effects.append(.decideAlone(tx, commit: commit, operations: operations, writers: writers))
            release(tx, operations: operations)
            branches[tx] = nil
            heuristics[tx] = Heuristic(committed: commit, operations: operations, writers: writers)
            effects.append(.reply(.heuristic(tx, committed: commit, operations: operations, writers: writers)))
        case .restoredHeuristic(let tx, let committed, let operations, let writers):
            precondition(branches[tx] == nil && heuristics[tx] == nil, "restored \(tx) twice")
            heuristics[tx] = Heuristic(committed: committed, operations: operations, writers: writers)
        case .staged(let tx, let failure, let observed):
            guard case .staging(let operations, let writers, let readOnly, let rollbackRequested) = branches[tx] else {
                preconditionFailure("staged \(tx) that was not staging")
            }
            if rollbackRequested {
                if failure == nil && !readOnly { effects.append(.discard(tx)) }
                release(tx, operations: operations)
                branches[tx] = nil
                remember(tx, .rolledBack)
                effects.append(.reply(.vote(tx, failure.map { .no($0) } ?? (readOnly ? .readOnly : .yes))))
                effects.append(.reply(.acknowledged(tx)))
            } else if let failure {
                release(tx, operations: operations)
                branches[tx] = nil
                remember(tx, .rolledBack)
                effects.append(.reply(.vote(tx, .no(failure))))
            } else if readOnly {
                branches[tx] = nil
                effects.append(.reply(.vote(tx, .readOnly, observed: observed)))
            } else {
                branches[tx] = .prepared(operations: operations, writers: writers)
                effects.append(.reply(.vote(tx, .yes, observed: observed)))
            }
        case .alreadyCommitted(let tx):
            guard case .staging(let operations, _, _, let rollbackRequested) = branches[tx] else {
                preconditionFailure("already committed \(tx) that was not staging")
            }
            release(tx, operations: operations)
            branches[tx] = nil
            remember(tx, .committed)
            // A ROLLBACK can only be the coordinator's answer to a stray YES for a transaction
            // it has forgotten; for a committed one it is a no-op, and is acknowledged.
            if rollbackRequested { effects.append(.reply(.acknowledged(tx))) }
        case .inquire:
            for (tx, state) in branches.sorted(by: { $0.key < $1.key }) {
                if case .prepared = state { effects.append(.reply(.vote(tx, .yes))) }
            }
            for (tx, heuristic) in heuristics.sorted(by: { $0.key < $1.key }) {
                effects.append(.reply(.heuristic(tx, committed: heuristic.committed, operations: heuristic.operations, writers: heuristic.writers)))
            }
        case .restored(let tx, let operations, let writers):
            precondition(branches[tx] == nil, "restored \(tx) twice")
            for account in Self.writtenAccounts(operations) where plantedBug != .noLocks {
                // Two prepared branches can never have locked the same account; if storage says
                // otherwise it is damaged, and guessing would risk applying both.
                precondition(lockOwners[account] == nil, "restored \(tx) conflicts with \(lockOwners[account]!) on \(account)")
                lockOwners[account] = tx
            }
            branches[tx] = .prepared(operations: operations, writers: writers)
        }
    }

    private mutating func prepare(_ tx: TransactionID, operations: [Operation], writers: [ParticipantID],
                                  into effects: inout [Effect]) {
        switch branches[tx] {
        case .prepared:
            effects.append(.reply(.vote(tx, .yes))) // duplicate PREPARE: same answer
            return
        case .staging:
            return // the vote is on its way
        case nil:
            break
        }
        if let heuristic = heuristics[tx] {
            // A late PREPARE of a branch decided here: like a finished one.
            if !heuristic.committed { effects.append(.reply(.vote(tx, .no(.rolledBackAlone(participant, tx))))) }
            return
        }
        switch finished[tx] {
        case .committed:
            return // a duplicate of a PREPARE whose transaction already committed here
        case .rolledBack, .rollbackFoundNothing, .heuristicRollback:
            effects.append(.reply(.vote(tx, .no(.alreadyRolledBack(participant, tx)))))
            return
        case nil:
            break
        }
        guard branches.count + heuristics.count < maxBranches else {
            effects.append(.reply(.vote(tx, .no(.branchesFull(participant, limit: maxBranches)))))
            return
        }
        let readOnly = !operations.contains { $0.isWrite }
        for operation in operations where plantedBug != .noLocks {
            if let account = operation.account, let owner = lockOwners[account], owner != tx {
                // No waiting yet: a conflicting request is refused at once, and the client retries.
                effects.append(.reply(.vote(tx, .no(.lockedBy(ResourceID(participant: participant, account: account), holder: owner)))))
                return
            }
        }
        // Every written account locked (`writtenAccounts`, without collecting them first).
        for operation in operations where operation.isWrite && plantedBug != .noLocks {
            if let account = operation.account { lockOwners[account] = tx }
        }
        branches[tx] = .staging(operations: operations, writers: writers, readOnly: readOnly, rollbackRequested: false)
        effects.append(readOnly ? .validateReads(tx, operations: operations) : .stage(tx, operations: operations, writers: writers))
    }

    /// `confirming`: a ROLLBACK's question about a heuristic report (see the notes at the top).
    private mutating func finish(_ tx: TransactionID, commit: Bool, confirming tag: ConfirmationTag? = nil, into effects: inout [Effect]) {
        switch branches[tx] {
        case .prepared(let operations, let writers):
            effects.append(commit ? .apply(tx, operations: operations, writers: writers) : .discard(tx))
            release(tx, operations: operations)
            branches[tx] = nil
            remember(tx, commit ? .committed : .rolledBack)
            effects.append(.reply(.acknowledged(tx)))
        case .staging(let operations, let writers, let readOnly, _):
            // Only ROLLBACK can overtake a vote; COMMIT never precedes every YES.
            guard !commit else {
                effects.append(.refuse(tx, reason: "COMMIT for \(tx) reached \(participant) before its branch was prepared"))
                return
            }
            // Acknowledging now would be a lie (staging may still persist the write-set), so the
            // rollback waits for staging to end.
            branches[tx] = .staging(operations: operations, writers: writers, readOnly: readOnly, rollbackRequested: true)
        case nil where heuristics[tx] != nil:
            // Decided here already: the coordinator compares, and records a mixed outcome (once
            // the echoed tag of its question, if it asked one, shows this is held now).
            let heuristic = heuristics[tx]!
            effects.append(.reply(.heuristic(tx, committed: heuristic.committed, operations: heuristic.operations, writers: heuristic.writers,
                                             confirming: tag)))
        case nil:
            // Already done, or never prepared. A ROLLBACK that finds nothing may have overtaken
            // its PREPARE: remember it, so the late PREPARE is refused instead of staged.
            if commit && finished[tx] == .rolledBack {
                effects.append(.refuse(tx, reason: "COMMIT for \(tx) reached \(participant), which rolled it back"))
                return
            }
            // A question (tagged) is about a branch decided here and since forgotten: nothing of
            // it is left to overtake, and it is not a rollback to remember.
            if !commit && tag == nil && finished[tx] == nil { remember(tx, .rollbackFoundNothing) }
            effects.append(.reply(.acknowledged(tx)))
        }
    }

    private mutating func release(_ tx: TransactionID, operations: [Operation]) {
        // Each written account in turn, without collecting them first (an account written twice
        // is found released the second time).
        for operation in operations where operation.isWrite {
            if let account = operation.account, lockOwners[account] == tx { lockOwners[account] = nil }
        }
    }

    /// The accounts `operations` write, each once, in first-write order: what a prepared branch
    /// locks.
    public static func writtenAccounts(_ operations: [Operation]) -> [AccountID] {
        var accounts: [AccountID] = []
        for operation in operations where operation.isWrite {
            if let account = operation.account, !accounts.contains(account) { accounts.append(account) }
        }
        return accounts
    }
}
