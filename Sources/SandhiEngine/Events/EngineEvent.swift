/// One state change anywhere in the engine. The console, the audit record, metrics and tests
/// all read the same stream; nobody reaches into engine internals.
public struct EngineEvent: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Driver time (monotonic microseconds) at which the change happened.
    public var atUs: UInt64
    public var kind: Kind

    public init(atUs: UInt64, _ kind: Kind) {
        self.atUs = atUs
        self.kind = kind
    }

    /// Cases with large payloads are `indirect` (boxed): every effect the coordinator returns
    /// is as large as the largest event, and the common ones are small.
    public enum Kind: Hashable, Sendable, Codable {
        /// `amount`: what the transfer moves (`Branch.amountMoved`).
        case began(TransactionID, participants: [ParticipantID], amount: Paise)
        case rejected(TransactionID, reason: String)
        case stateChanged(TransactionID, from: TransactionState, to: TransactionState)
        case prepareSent(TransactionID, participant: ParticipantID)
        case voteReceived(TransactionID, participant: ParticipantID, vote: Vote, latencyUs: UInt64)
        case prepareTimedOut(TransactionID, silent: [ParticipantID])
        case decisionLogging(TransactionID)
        case decisionDurable(TransactionID, position: LogPosition, latencyUs: UInt64)
        case phaseTwoSent(TransactionID, participant: ParticipantID, commit: Bool, attempt: UInt32)
        case acknowledged(TransactionID, participant: ParticipantID, latencyUs: UInt64)
        case retryScheduled(TransactionID, participants: [ParticipantID], attempt: UInt32, delayUs: UInt64)
        case finished(TransactionID, outcome: Outcome, durationUs: UInt64)
        /// A message that no longer fits the transaction's state (duplicate, or after the fact).
        case lateMessage(TransactionID, participant: ParticipantID, what: String)
        case recovered(TransactionID, decision: Outcome, participants: [ParticipantID])
        /// A lock request queued behind `blockers` (empty when deadlock detection is off).
        indirect case lockWaiting(TransactionID, resource: ResourceID, mode: LockMode, blockers: [TransactionID])
        /// A queued lock request was granted.
        indirect case lockGranted(TransactionID, resource: ResourceID, mode: LockMode, waitedUs: UInt64)
        indirect case lockTimedOut(TransactionID, resource: ResourceID?, waitedUs: UInt64)
        indirect case deadlockDetected(Deadlock)
        case deadlockVictimAborted(deadlockID: UInt64, victim: TransactionID, byOperator: Bool)
        /// A participant decided a branch on its own; `agrees`: the same way as the decision.
        case heuristicReported(TransactionID, participant: ParticipantID, outcome: BranchOutcome, agrees: Bool)
        /// A mixed outcome, recorded for an operator.
        indirect case heuristicCaseOpened(HeuristicCase)
        /// An operator's action on a heuristic case, or the end of its linked transaction.
        indirect case reconciled(TransactionID, ReconcileEntry)
        /// An operator command that could not be carried out.
        case operatorRefused(TransactionID, reason: String)
        case fatal(reason: String)
        /// A live fault began (a crash, a partition, lost or delayed messages, a failed fsync),
        /// in its command form: `crash icici`, `drop axis 30%`.
        case faultInjected(String)
        /// A live fault ended (a restart, a heal), in its command form: `restart icici`.
        case faultCleared(String)
    }

    public var transaction: TransactionID? {
        switch kind {
        case .began(let tx, _, _), .rejected(let tx, _), .stateChanged(let tx, _, _), .prepareSent(let tx, _),
             .voteReceived(let tx, _, _, _), .prepareTimedOut(let tx, _), .decisionLogging(let tx),
             .decisionDurable(let tx, _, _), .phaseTwoSent(let tx, _, _, _), .acknowledged(let tx, _, _),
             .retryScheduled(let tx, _, _, _), .finished(let tx, _, _), .lateMessage(let tx, _, _),
             .recovered(let tx, _, _), .lockWaiting(let tx, _, _, _), .lockGranted(let tx, _, _, _),
             .lockTimedOut(let tx, _, _), .deadlockVictimAborted(_, let tx, _), .operatorRefused(let tx, _),
             .heuristicReported(let tx, _, _, _), .reconciled(let tx, _):
            return tx
        case .heuristicCaseOpened(let heuristicCase):
            return heuristicCase.transaction
        case .deadlockDetected(let deadlock):
            return deadlock.victim ?? deadlock.cycle.first
        case .fatal, .faultInjected, .faultCleared:
            return nil
        }
    }

    public var description: String {
        switch kind {
        case .began(let tx, let participants, let amount):
            return "\(tx) began with \(participants.map(\.name).joined(separator: ", ")) moving \(amount)"
        case .rejected(let tx, let reason): return "\(tx) rejected: \(reason)"
        case .stateChanged(let tx, let from, let to): return "\(tx) \(from) -> \(to)"
        case .prepareSent(let tx, let participant): return "\(tx) PREPARE -> \(participant)"
        case .voteReceived(let tx, let participant, let vote, let latencyUs):
            return "\(tx) \(participant) voted \(vote.label) in \(formatMicros(latencyUs))"
        case .prepareTimedOut(let tx, let silent): return "\(tx) prepare timed out waiting for \(silent.map(\.name).joined(separator: ", "))"
        case .decisionLogging(let tx): return "\(tx) forcing COMMIT decision to the log"
        case .decisionDurable(let tx, let position, let latencyUs): return "\(tx) COMMIT durable at \(position) in \(formatMicros(latencyUs))"
        case .phaseTwoSent(let tx, let participant, let commit, let attempt):
            return "\(tx) \(commit ? "COMMIT" : "ROLLBACK") -> \(participant)" + (attempt > 0 ? " (retry \(attempt))" : "")
        case .acknowledged(let tx, let participant, let latencyUs): return "\(tx) \(participant) acknowledged in \(formatMicros(latencyUs))"
        case .retryScheduled(let tx, let participants, let attempt, let delayUs):
            return "\(tx) retry \(attempt) to \(participants.map(\.name).joined(separator: ", ")) in \(formatMicros(delayUs))"
        case .finished(let tx, let outcome, let durationUs): return "\(tx) \(outcome.label) after \(formatMicros(durationUs))"
        case .lateMessage(let tx, let participant, let what): return "\(tx) late message from \(participant): \(what)"
        case .recovered(let tx, let decision, let participants):
            return "\(tx) recovered: \(decision.label) at \(participants.map(\.name).joined(separator: ", "))"
        case .lockWaiting(let tx, let resource, let mode, let blockers):
            return "\(tx) waits for \(mode) on \(resource)" + (blockers.isEmpty ? "" : " behind \(blockers.map(\.description).joined(separator: ", "))")
        case .lockGranted(let tx, let resource, let mode, let waitedUs): return "\(tx) got \(mode) on \(resource) after \(formatMicros(waitedUs))"
        case .lockTimedOut(let tx, let resource, let waitedUs):
            return "\(tx) gave up waiting for \(resource.map(\.description) ?? "a lock") after \(formatMicros(waitedUs))"
        case .deadlockDetected(let deadlock):
            let verdict = deadlock.victim.map { "victim \($0): \(deadlock.reason)" } ?? deadlock.reason
            return "deadlock #\(deadlock.id) \(deadlock.description); \(verdict)" + (deadlock.foundByFullCheck ? " (found by the full check)" : "")
        case .deadlockVictimAborted(let id, let victim, let byOperator):
            return "deadlock #\(id): \(victim) aborted" + (byOperator ? " by the operator" : "")
        case .heuristicReported(let tx, let participant, let outcome, let agrees):
            return "\(tx) \(participant) reports a \(outcome.label)" + (agrees ? " (agrees with the decision)" : " AGAINST the decision")
        case .heuristicCaseOpened(let heuristicCase):
            return "\(heuristicCase.transaction) HEURISTIC: decision \(heuristicCase.decision.label), "
                + heuristicCase.participants.map { "\($0.participant) \($0.outcome.label)" }.joined(separator: ", ")
        case .reconciled(let tx, let entry):
            return "\(tx) \(entry.action.rawValue) by \(entry.operatorName): \(entry.result.label)" + (entry.linked.map { " (\($0))" } ?? "")
        case .operatorRefused(let tx, let reason): return "\(tx): operator command refused: \(reason)"
        case .fatal(let reason): return "coordinator halted: \(reason)"
        case .faultInjected(let fault): return "fault injected: \(fault)"
        case .faultCleared(let fault): return "fault cleared: \(fault)"
        }
    }
}

extension Vote {
    public var label: String {
        switch self {
        case .yes: return "YES"
        case .readOnly: return "READ-ONLY"
        case .no(let refusal): return "NO (\(refusal))"
        }
    }
}

extension Outcome {
    public var label: String {
        switch self {
        case .committed: return "committed"
        case .aborted(let reason, _, _): return "aborted (\(reason))"
        }
    }
}

/// `850µs`, `1.2ms`, `3.40s`: durations for people.
public func formatMicros(_ micros: UInt64) -> String {
    if micros < 1_000 { return "\(micros)µs" }
    let tenths = (micros + 50) / 100
    if tenths < 10_000 {
        return "\(tenths / 10).\(tenths % 10)ms"
    }
    let hundredths = (micros + 5_000) / 10_000
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)s"
}
