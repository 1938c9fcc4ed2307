// Heuristic outcomes: what happens when a participant stops waiting.
//
// A prepared participant has promised to commit or roll back as the coordinator decides. Real
// resource managers (XA's heuristic completion, PostgreSQL's operators running COMMIT PREPARED
// by hand, a bank's batch job closing the day) sometimes decide on their own after a long wait.
// When the coordinator later delivers its decision and finds a participant that went the other
// way, the transaction is *heuristic*: its outcome is mixed, money may have been created or
// destroyed, and no protocol can settle it alone. The coordinator records a `HeuristicCase`
// with every participant's observed outcome and leaves it for an operator, who settles it with
// an audited action (`ReconcileAction`). Nothing is deleted: settled cases stay queryable.

/// The coordinator's logged decision for a transaction.
public enum LoggedDecision: UInt8, Hashable, Sendable, Codable {
    case commit = 1
    /// Presumed abort included: no COMMIT record.
    case abort = 2

    public var label: String { self == .commit ? "commit" : "abort" }
}

/// What one participant did with its branch, as the coordinator learned it.
public enum BranchOutcome: UInt8, Hashable, Sendable, Codable, CaseIterable {
    /// Followed a COMMIT (or had nothing to commit).
    case committed = 1
    /// Followed a ROLLBACK (or never prepared).
    case rolledBack = 2
    /// Committed on its own, without waiting for the coordinator.
    case heuristicCommit = 3
    /// Rolled back on its own.
    case heuristicRollback = 4

    public init(heuristic committed: Bool) { self = committed ? .heuristicCommit : .heuristicRollback }

    /// Whether the branch's writes took effect.
    public var applied: Bool { self == .committed || self == .heuristicCommit }
    public var isHeuristic: Bool { self == .heuristicCommit || self == .heuristicRollback }

    public var label: String {
        switch self {
        case .committed: return "committed"
        case .rolledBack: return "rolled back"
        case .heuristicCommit: return "heuristic commit"
        case .heuristicRollback: return "heuristic rollback"
        }
    }

    /// Whether this outcome disagrees with the decision.
    public func diverges(from decision: LoggedDecision) -> Bool { applied != (decision == .commit) }
}

/// How an operator settles a heuristic case.
public enum ReconcileAction: String, Hashable, Sendable, Codable, CaseIterable {
    /// Carry the logged COMMIT through where it did not take: re-apply, as a new transaction
    /// linked to the original, the writes of every branch that rolled back on its own. Only for
    /// a COMMIT decision.
    case retryCommit = "retry-commit"
    /// Undo what took effect against the decision: a new transaction linked to the original
    /// applies the inverse of every branch whose writes must not stand (for a COMMIT decision
    /// gone mixed, the branches that did commit, so the whole ends as an abort).
    case compensate
    /// The operator settled it outside Sandhi; only the record changes.
    case markResolved = "mark-resolved"
}

public struct HeuristicCase: Hashable, Sendable, Codable {
    public struct Participant: Hashable, Sendable, Codable {
        public var participant: ParticipantID
        public var outcome: BranchOutcome
        /// The branch's operations, when the coordinator knows them (it does not for a
        /// transaction it recovered after a restart, unless the participant reported them).
        public var operations: [Operation]?

        public init(participant: ParticipantID, outcome: BranchOutcome, operations: [Operation]?) {
            self.participant = participant
            self.outcome = outcome
            self.operations = operations
        }
    }

    public enum Status: Hashable, Sendable, Codable {
        /// Waiting for an operator.
        case open
        /// An action's linked transaction is running.
        case acting(ReconcileAction, linked: TransactionID)
        /// Settled by this action (and its linked transaction, if it ran one).
        case settled(ReconcileAction, linked: TransactionID?)

        public var label: String {
            switch self {
            case .open: return "open"
            case .acting(let action, let linked): return "\(action.rawValue) running as \(linked)"
            case .settled(let action, let linked): return "settled by \(action.rawValue)" + (linked.map { " (\($0))" } ?? "")
            }
        }
    }

    public let transaction: TransactionID
    public let decision: LoggedDecision
    /// Wall-clock milliseconds since 1970 when the coordinator noticed the mismatch.
    public let detectedAtWallMs: Int64
    public internal(set) var participants: [Participant]
    public internal(set) var status: Status = .open
    /// Every operator action taken on this case, oldest first.
    public internal(set) var actions: [ReconcileEntry] = []

    public init(transaction: TransactionID, decision: LoggedDecision, detectedAtWallMs: Int64, participants: [Participant]) {
        self.transaction = transaction
        self.decision = decision
        self.detectedAtWallMs = detectedAtWallMs
        self.participants = participants
    }

    /// Participants whose outcome disagrees with the decision.
    public var divergent: [Participant] { participants.filter { $0.outcome.diverges(from: decision) } }

    /// Money created (positive) or destroyed (negative) by the mixed outcome: the sum of the
    /// net effect of every branch that diverged (a committed debit whose credit rolled back
    /// destroyed money). Nil when an operation of a divergent branch is unknown.
    public var imbalance: Paise? {
        var total = Paise.zero
        for participant in divergent {
            guard let operations = participant.operations else { return nil }
            let net = operations.reduce(Paise.zero) { $0 + $1.delta }
            total = participant.outcome.applied ? total + net : total - net
        }
        return total
    }

    public var isSettled: Bool { if case .settled = status { return true } else { return false } }
}

/// One operator action on a heuristic case: who, when, why, what it planned to change, and
/// the case's status before and after. Appended when the action is taken, and again (with
/// `result`) when its linked transaction ends.
public struct ReconcileEntry: Hashable, Sendable, Codable {
    public enum Result: Hashable, Sendable, Codable {
        /// The linked transaction was started; its end is a later entry.
        case started
        case succeeded
        case failed(reason: String)

        public var label: String {
            switch self {
            case .started: return "started"
            case .succeeded: return "succeeded"
            case .failed(let reason): return "failed (\(reason))"
            }
        }
    }

    public var action: ReconcileAction
    public var operatorName: String
    public var note: String
    public var atWallMs: Int64
    /// The new transaction that carries the action out (retry-commit, compensate).
    public var linked: TransactionID?
    /// The linked transaction's work: which participants change, and how.
    public var plan: [Branch]
    public var before: HeuristicCase.Status
    public var after: HeuristicCase.Status
    public var result: Result

    public init(action: ReconcileAction, operatorName: String, note: String, atWallMs: Int64, linked: TransactionID?,
                plan: [Branch], before: HeuristicCase.Status, after: HeuristicCase.Status, result: Result) {
        self.action = action
        self.operatorName = operatorName
        self.note = note
        self.atWallMs = atWallMs
        self.linked = linked
        self.plan = plan
        self.before = before
        self.after = after
        self.result = result
    }
}
