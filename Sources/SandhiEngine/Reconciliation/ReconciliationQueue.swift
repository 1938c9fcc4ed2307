// The reconciliation queue: every heuristic case the coordinator has found, open or settled,
// rebuilt from its records (event sourcing). The coordinator appends a record for each change
// (`CoordinatorEffect.recordReconciliation`); a driver makes each durable before acting on
// what follows it, and at start replays them into a fresh queue. The queue itself is pure: it
// validates operator actions and works out what each would change (the dry run), but runs
// nothing.
//
//   (none) --opened--> open --retry-commit / compensate--> acting --linked tx committed--> settled
//                       |  ^                                  |
//                       |  +------ linked tx aborted ---------+
//                       +--mark-resolved--> settled
//   settled --a participant reports a new divergent outcome--> open   (nothing is hidden)

/// One change to the reconciliation queue, as recorded durably.
public enum ReconciliationRecord: Hashable, Sendable {
    /// The coordinator found a heuristic (mixed) outcome.
    case opened(HeuristicCase)
    /// A participant's outcome became known after the case was opened (a second participant
    /// that had also decided on its own).
    case outcomeLearned(TransactionID, HeuristicCase.Participant)
    /// An operator action, or the end of an action's linked transaction.
    case entry(TransactionID, ReconcileEntry)

    public var transaction: TransactionID {
        switch self {
        case .opened(let heuristicCase): return heuristicCase.transaction
        case .outcomeLearned(let tx, _), .entry(let tx, _): return tx
        }
    }
}

public struct ReconciliationQueue: Hashable, Sendable {
    public private(set) var cases: [TransactionID: HeuristicCase] = [:]
    /// Case ids in the order they were found.
    public private(set) var order: [TransactionID] = []
    /// A running action's linked transaction -> the case it settles.
    public private(set) var linked: [TransactionID: TransactionID] = [:]

    public init() {}

    public var all: [HeuristicCase] { order.map { cases[$0]! } }
    public var unsettled: [HeuristicCase] { all.filter { !$0.isSettled } }

    public subscript(transaction: TransactionID) -> HeuristicCase? { cases[transaction] }

    /// Applies one record. Records come from this engine, in order; one that does not fit the
    /// queue means the record store is damaged, and guessing would hide a mixed outcome.
    public mutating func apply(_ record: ReconciliationRecord) {
        switch record {
        case .opened(let heuristicCase):
            precondition(cases[heuristicCase.transaction] == nil, "heuristic case \(heuristicCase.transaction) opened twice")
            cases[heuristicCase.transaction] = heuristicCase
            order.append(heuristicCase.transaction)
        case .outcomeLearned(let tx, let participant):
            guard var heuristicCase = cases[tx] else { preconditionFailure("outcome for unknown case \(tx)") }
            if let index = heuristicCase.participants.firstIndex(where: { $0.participant == participant.participant }) {
                heuristicCase.participants[index] = participant
            } else {
                heuristicCase.participants.append(participant)
            }
            // A settled case with a new divergence is not settled any more.
            if heuristicCase.isSettled, participant.outcome.diverges(from: heuristicCase.decision) { heuristicCase.status = .open }
            cases[tx] = heuristicCase
        case .entry(let tx, let entry):
            guard var heuristicCase = cases[tx] else { preconditionFailure("action on unknown case \(tx)") }
            precondition(heuristicCase.status == entry.before, "entry for \(tx) expects \(entry.before.label), case is \(heuristicCase.status.label)")
            heuristicCase.actions.append(entry)
            heuristicCase.status = entry.after
            if let linkedTx = entry.linked {
                if case .acting = entry.after { linked[linkedTx] = tx } else { linked[linkedTx] = nil }
            }
            cases[tx] = heuristicCase
        }
    }

    /// Why `action` cannot be taken on case `tx` now, or the transaction that carries it out
    /// (nil for mark-resolved): the dry run an operator sees before confirming.
    public func plan(_ action: ReconcileAction, for tx: TransactionID) -> Result<[Branch]?, PlanRefusal> {
        guard let heuristicCase = cases[tx] else { return .failure(PlanRefusal("\(tx) is not a heuristic case")) }
        switch heuristicCase.status {
        case .open: break
        case .acting(let running, let linkedTx):
            return .failure(PlanRefusal("\(tx) has \(running.rawValue) running as \(linkedTx); wait for it to end"))
        case .settled(let by, _):
            return .failure(PlanRefusal("\(tx) is already settled (by \(by.rawValue))"))
        }
        switch action {
        case .markResolved:
            return .success(nil)
        case .retryCommit:
            guard heuristicCase.decision == .commit else {
                return .failure(PlanRefusal("\(tx) was decided abort; there is no commit to retry (use compensate or mark-resolved)"))
            }
            // Under a COMMIT decision the divergent branches are those that rolled back alone.
            let missing = heuristicCase.divergent
            guard !missing.isEmpty else { return .failure(PlanRefusal("\(tx) has no branch left to commit")) }
            var plan: [Branch] = []
            for participant in missing {
                guard let operations = participant.operations else {
                    return .failure(PlanRefusal("\(participant.participant)'s operations in \(tx) are unknown; settle it by hand and mark-resolved"))
                }
                let writes = operations.filter(\.isWrite)
                if !writes.isEmpty { plan.append(Branch(participant: participant.participant, operations: writes)) }
            }
            guard !plan.isEmpty else { return .failure(PlanRefusal("\(tx)'s rolled-back branches wrote nothing")) }
            return .success(plan)
        case .compensate:
            // Whatever took effect is undone, so the whole ends as if it had aborted.
            var plan: [Branch] = []
            for participant in heuristicCase.participants where participant.outcome.applied {
                guard let operations = participant.operations else {
                    return .failure(PlanRefusal("\(participant.participant)'s operations in \(tx) are unknown; settle it by hand and mark-resolved"))
                }
                let inverse = operations.compactMap { Self.inverse(of: $0, reversing: tx) }
                if !inverse.isEmpty { plan.append(Branch(participant: participant.participant, operations: inverse)) }
            }
            guard !plan.isEmpty else { return .failure(PlanRefusal("nothing of \(tx) took effect; nothing to compensate")) }
            return .success(plan)
        }
    }

    /// The operation that undoes `operation`. A filed report is never erased: a reversal row
    /// is filed beside it, as ledgers do.
    public static func inverse(of operation: Operation, reversing tx: TransactionID) -> Operation? {
        switch operation {
        case .debit(let account, let amount): return .credit(account: account, amount: amount)
        case .credit(let account, let amount): return .debit(account: account, amount: amount)
        case .read: return nil
        case .fileReport(let report):
            let reference = String("reverses \(tx): \(report.reference)".utf8.prefix(Report.maxTextBytes)) ?? "reverses \(tx)"
            return .fileReport(Report(kind: "reversal", amount: report.amount, reference: reference))
        }
    }
}

/// Why an operator action cannot be taken.
public struct PlanRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
