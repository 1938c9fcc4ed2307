/// What the coordinator sends to a participant.
public enum ParticipantMessage: Hashable, Sendable {
    /// Validate and durably prepare `operations`; `writers` are every participant of the
    /// transaction that has something to commit (stored with the prepare, for audits).
    case prepare(TransactionID, operations: [Operation], writers: [ParticipantID])
    /// Apply the prepared write-set. Idempotent: an unknown transaction is "already done".
    case commit(TransactionID)
    /// Discard the prepared write-set (or nothing, if never prepared). Idempotent.
    /// `confirming`: the coordinator does not know the transaction, and asks about a heuristic
    /// commit reported for it (`ConfirmationTag`): a participant still holding that decision
    /// reports it again echoing the tag; one that holds nothing acknowledges.
    case rollback(TransactionID, confirming: ConfirmationTag? = nil)
    /// The coordinator has durably recorded this branch's heuristic decision: drop it.
    case forget(TransactionID)

    public var transaction: TransactionID {
        switch self {
        case .prepare(let transaction, _, _), .commit(let transaction), .rollback(let transaction, _), .forget(let transaction):
            return transaction
        }
    }
}

/// A timer the coordinator asked its driver for. `generation` lets the coordinator ignore a
/// timer that fires after the state it guarded has moved on (timers are never reliably
/// cancellable across threads, so a stale fire must be harmless).
public struct TimerID: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable {
        /// Votes are overdue: abort.
        case prepareDeadline
        /// Phase-two messages are unacknowledged: send them again.
        case resend
        /// A lock request waited too long: abort.
        case lockTimeout
        /// A deadlock victim's grace period is over: abort it unless the operator acted.
        case deadlockVictim
    }

    public var transaction: TransactionID
    public var kind: Kind
    public var generation: UInt32

    public init(transaction: TransactionID, kind: Kind, generation: UInt32) {
        self.transaction = transaction
        self.kind = kind
        self.generation = generation
    }

    public var description: String { "\(transaction)/\(kind)#\(generation)" }
}

/// Everything that can happen to the coordinator.
public enum CoordinatorInput: Sendable {
    /// A client opened a transaction with this work per participant.
    /// `observe`: hand what every operation saw to the client (`observed`), not only reads'
    /// values (a history recorder wants the writes' versions too).
    case begin(TransactionID, branches: [Branch], observe: Bool = false)
    /// The client asks to commit: start phase one.
    case requestCommit(TransactionID)
    /// The client or an operator asks to abort (only before the decision).
    case requestAbort(TransactionID, reason: String)
    /// The operator aborts a transaction of their choice, typically a deadlock member other
    /// than the engine's pick; recorded in the deadlock history as an override.
    case forceAbort(TransactionID, note: String)
    /// Run the full cycle check over the wait-for graph (the periodic safety net behind the
    /// check made whenever a wait begins).
    case checkDeadlocks
    /// A participant answered PREPARE.
    case voted(TransactionID, participant: ParticipantID, vote: Vote, observed: [Observation] = [])
    /// The COMMIT record reached stable storage.
    case decisionDurable(TransactionID, position: LogPosition)
    /// The COMMIT record's write or fsync failed: its durability is unknown.
    case decisionFailed(TransactionID, reason: String)
    /// A participant acknowledged COMMIT or ROLLBACK.
    case acknowledged(TransactionID, participant: ParticipantID)
    /// A timer set earlier fired.
    case timerFired(TimerID)
    /// Recovery: the log holds a COMMIT for this transaction without an END.
    /// `locks`: what its prepared branches hold at the participants, re-taken in the lock
    /// manager until every participant has acknowledged.
    case recoverCommitted(TransactionID, participants: [ParticipantID], locks: [ResourceID] = [])
    /// Recovery: participants hold this transaction prepared and the log has no COMMIT.
    case recoverInDoubt(TransactionID, participants: [ParticipantID], locks: [ResourceID] = [])
    /// Recovery: these transactions committed and finished (COMMIT and END in the log), for
    /// `recentCommits` (a late heuristic report of one must not be taken for presumed abort).
    case rememberCommitted([TransactionID])
    /// Recovery has fed every transaction it found: what is not in flight now never will be.
    case recoveryComplete
    /// A participant decided a branch on its own (`ParticipantReply.heuristic`, or read from
    /// its storage by recovery: `source`).
    case heuristicReported(TransactionID, participant: ParticipantID, committed: Bool, operations: [Operation], writers: [ParticipantID],
                           source: HeuristicReportSource = .message(confirming: nil))
    /// An operator settles heuristic case `TransactionID`; `linked` is a fresh transaction id
    /// for the action to run as (unused by mark-resolved). Refusals are `operatorRefused` events.
    case resolveHeuristic(TransactionID, action: ReconcileAction, operatorName: String, note: String, linked: TransactionID)
}

/// What the coordinator asks its driver to do. The driver performs effects in order.
public enum CoordinatorEffect: Sendable {
    case send(ParticipantID, ParticipantMessage)
    /// Append to the decision log; when `forced`, report `decisionDurable` after the fsync.
    case appendDecision(DecisionRecord, forced: Bool)
    case setTimer(TimerID, afterUs: UInt64)
    case cancelTimer(TimerID)
    case emit(EngineEvent)
    /// Make this reconciliation record durable before performing any later effect (a FORGET
    /// that follows it lets a participant drop its own copy of the outcome). Boxed: a record
    /// (a whole heuristic case) is 144 bytes, and unboxed it made every effect that large, to
    /// be copied on every append.
    indirect case recordReconciliation(ReconciliationRecord)
    /// Just before `decided(.committed)`: what each participant's operations saw (the values
    /// a transaction read), in branch order, for the client.
    case observed(TransactionID, [ParticipantID: [Observation]])
    /// The outcome is decided (COMMIT durable, or abort chosen): a client may be told now.
    case decided(TransactionID, Outcome)
    /// Every participant has acknowledged; the transaction is forgotten.
    case finished(TransactionID, Outcome)
    /// The coordinator cannot continue safely (a decision's durability is unknown). The driver
    /// must stop this coordinator; recovery from the log decides on restart.
    case fatal(String)
}
