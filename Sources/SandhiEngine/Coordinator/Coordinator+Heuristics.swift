import DequeModule

// Heuristic outcomes at the coordinator: noticing a participant that decided on its own,
// recording a mixed outcome for an operator, and carrying out the operator's action.
//
// Rules this file keeps:
//   * Every heuristic decision the coordinator hears of is either consistent with the decision
//     (and FORGET goes back at once) or recorded in the reconciliation queue before FORGET is
//     sent: a participant drops its heuristic record only once the coordinator has it.
//   * A transaction the coordinator no longer knows was not committed-and-unfinished (such a
//     transaction is recovered from the log before anything else is handled), so its decision
//     is abort (presumed abort), and a heuristic commit of it still held is a mixed outcome.
//     "Still held" is the catch: a report by message may be a stale copy of one settled long
//     ago, so one that disagrees with the presumed abort is believed only once it answers the
//     coordinator's question, or when recovery read it from the bank's storage
//     (HeuristicQuestions.swift).
//   * An action that runs a transaction records its end before that transaction's END record
//     is appended, so a restart always finds out how the action ended.

extension Coordinator.BranchStatus {
    /// Acknowledged, or decided on its own: nothing more to send this participant.
    var hasAnswered: Bool {
        switch self {
        case .acknowledged, .decidedAlone: return true
        case .idle, .awaitingVote, .voted, .awaitingAck: return false
        }
    }

    /// Whether the participant committed on its own; nil unless it decided alone.
    var decidedAlone: Bool? {
        if case .decidedAlone(let committed) = self { return committed }
        return nil
    }
}

extension Coordinator {
    /// The reason an operator must give is bounded, like every other input.
    public static let maxOperatorBytes = ReconciliationCodec.maxOperatorBytes
    public static let maxNoteBytes = ReconciliationCodec.maxNoteBytes

    func wallMs(_ nowUs: UInt64) -> Int64 { configuration.wallClockOffsetMs + Int64(nowUs / 1_000) }

    mutating func record(_ record: ReconciliationRecord, into effects: inout [CoordinatorEffect]) {
        reconciliation.apply(record)
        effects.append(.recordReconciliation(record))
    }

    mutating func heuristicReported(_ id: TransactionID, participant: ParticipantID, committed: Bool, operations: [Operation],
                                    writers: [ParticipantID], source: HeuristicReportSource = .message(confirming: nil),
                                    nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        let outcome = BranchOutcome(heuristic: committed)
        if source == .recovery {
            // Believed without a question: safe only because the plan feeds these after every
            // transaction the log holds, before `recoveryComplete`.
            precondition(recovering, "a heuristic decision handed over by recovery after recovery completed")
        }
        // Whatever this report leads to, it settles the question asked about it, if any (one
        // still needed is asked again below, under the same tag).
        let key = HeuristicQuestions.Key(transaction: id, participant: participant)
        let asked = questions.isEmpty ? nil : questions.remove(key)
        if let known = reconciliation[id] {
            // Recorded already; the FORGET was lost, or another participant is heard from.
            let entry = HeuristicCase.Participant(participant: participant, outcome: outcome, operations: operations)
            if !known.participants.contains(entry) {
                effects.append(.emit(EngineEvent(atUs: nowUs, .heuristicReported(id, participant: participant, outcome: outcome,
                                                                                  agrees: !outcome.diverges(from: known.decision)))))
                record(.outcomeLearned(id, entry), into: &effects)
            }
            effects.append(.send(participant, .forget(id)))
            return
        }
        if recovering && transactions[id] == nil && source != .recovery {
            // The log may yet say COMMIT; the participant reports again (and FORGET waits).
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "heuristic \(outcome.label) during recovery"))))
            return
        }
        guard var tx = take(id) else {
            // Forgotten. Committed and finished lately (a late or repeated report), or else
            // presumed abort. The report agreeing, only FORGET is due; otherwise the outcome is
            // mixed, and the other writers followed the decision (or will, when they ask).
            let decision: LoggedDecision = recentCommits.contains(id) ? .commit : .abort
            let agrees = !outcome.diverges(from: decision)
            if !agrees && decision == .abort && configuration.plantedBug != .ignoreHeuristics {
                // A heuristic commit against an abort that is only presumed: a stale copy of a
                // report settled long ago looks just the same. Believed when recovery read it
                // from the bank, or when it echoes the question asked about it; otherwise asked.
                switch source {
                case .recovery:
                    break
                case .message(let echoed):
                    guard echoed != nil && echoed == asked else {
                        ask(key, again: asked, echoed: echoed, nowUs: nowUs, into: &effects)
                        return
                    }
                }
            }
            effects.append(.emit(EngineEvent(atUs: nowUs, .heuristicReported(id, participant: participant, outcome: outcome, agrees: agrees))))
            if !agrees && configuration.plantedBug != .ignoreHeuristics {
                var participants = [HeuristicCase.Participant(participant: participant, outcome: outcome, operations: operations)]
                for writer in writers where writer != participant {
                    participants.append(HeuristicCase.Participant(participant: writer, outcome: decision == .commit ? .committed : .rolledBack, operations: nil))
                }
                let heuristicCase = HeuristicCase(transaction: id, decision: decision, detectedAtWallMs: wallMs(nowUs), participants: participants)
                effects.append(.emit(EngineEvent(atUs: nowUs, .heuristicCaseOpened(heuristicCase))))
                record(.opened(heuristicCase), into: &effects)
            }
            // Disagreeing, the record above is durable before this goes out (the driver performs
            // effects in order). Agreeing, there is nothing to record: with a commit known here,
            // plainly; with a presumed abort, a heuristic rollback could be against a COMMIT only
            // if that COMMIT's case went unrecorded, and a committed transaction with a branch
            // rolled back alone stays in the table until its case is recorded (found above).
            effects.append(.send(participant, .forget(id)))
            return
        }
        defer { store(tx) }
        guard let index = tx.index(of: participant), tx.state == .committing || tx.state == .aborting,
              case .awaitingAck = tx.branches[index].status else {
            // Still deciding: it hears the decision later and reports again, against it.
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "heuristic \(outcome.label) while \(tx.state)"))))
            return
        }
        // A recovered transaction knows its participants but not their work.
        if tx.branches[index].branch.operations.isEmpty { tx.branches[index].branch.operations = operations }
        let decision: LoggedDecision = tx.state == .committing ? .commit : .abort
        let agrees = !outcome.diverges(from: decision) || configuration.plantedBug == .ignoreHeuristics
        effects.append(.emit(EngineEvent(atUs: nowUs, .heuristicReported(id, participant: participant, outcome: outcome, agrees: agrees))))
        if configuration.plantedBug == .ignoreHeuristics {
            tx.branches[index].status = .acknowledged
        } else if agrees {
            // Consistent with the decision: nothing to record, and the participant may forget
            // it. The branch stays unacknowledged until it has: were the transaction forgotten
            // first and the FORGET lost, the participant's next report would reach a coordinator
            // that could only presume abort, and record a mixed outcome that never happened.
            // (Until the FORGET is acknowledged, resends of the decision draw the report again.)
            effects.append(.send(participant, .forget(id)))
            return
        } else {
            tx.branches[index].status = .decidedAlone(committed: committed)
        }
        finishIfAcknowledged(&tx, nowUs: nowUs, into: &effects)
    }

    /// Asks `key.participant` whether it still holds its heuristic commit of `key.transaction`:
    /// the presumed decision, ROLLBACK, carrying the question's tag (`again`: the tag it was
    /// asked under already, its answer not yet heard, perhaps lost).
    mutating func ask(_ key: HeuristicQuestions.Key, again: ConfirmationTag?, echoed: ConfirmationTag?, nowUs: UInt64,
                      into effects: inout [CoordinatorEffect]) {
        let tag: ConfirmationTag
        if let again {
            tag = again
        } else {
            tag = ConfirmationTag(epoch: epoch, sequence: nextQuestion)
            nextQuestion += 1
        }
        if let dropped = questions.ask(key, tag: tag, limit: configuration.maxHeuristicQuestions) {
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(dropped.key.transaction, participant: dropped.key.participant,
                what: "question \(dropped.tag) dropped unanswered: \(configuration.maxHeuristicQuestions) questions outstanding "
                    + "(asked again should the heuristic commit be reported again)"))))
        }
        let report = echoed.map { "heuristic commit answering \($0), which is not a question outstanding here" } ?? "heuristic commit"
        effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(key.transaction, participant: key.participant,
            what: "\(report) of a transaction not known here: presumed abort, but it may be a stale copy; asking (\(tag))"))))
        effects.append(.send(key.participant, .rollback(key.transaction, confirming: tag)))
    }

    /// A participant acknowledged a transaction not in flight: if a question about its report
    /// was outstanding, it holds no heuristic decision on it; the report was a stale copy, and
    /// the question is settled. Returns whether one was.
    mutating func questionAcknowledged(_ id: TransactionID, participant: ParticipantID, nowUs: UInt64,
                                       into effects: inout [CoordinatorEffect]) -> Bool {
        guard !questions.isEmpty, let tag = questions.remove(HeuristicQuestions.Key(transaction: id, participant: participant)) else {
            return false
        }
        effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant,
            what: "acknowledged \(tag): it holds no heuristic decision; the report asked about was a stale copy"))))
        return true
    }

    /// Every branch of `tx` has answered and at least one decided against `decision`.
    mutating func openCase(for tx: CoordinatorTransaction, decision: LoggedDecision, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        let participants = tx.branches.map { progress -> HeuristicCase.Participant in
            let outcome = progress.status.decidedAlone.map(BranchOutcome.init(heuristic:))
                ?? (decision == .commit ? .committed : .rolledBack)
            return HeuristicCase.Participant(participant: progress.branch.participant, outcome: outcome,
                                             operations: progress.branch.operations.isEmpty ? nil : progress.branch.operations)
        }
        let heuristicCase = HeuristicCase(transaction: tx.id, decision: decision, detectedAtWallMs: wallMs(nowUs), participants: participants)
        assert(!heuristicCase.divergent.isEmpty, "a heuristic case without a divergent branch")
        effects.append(.emit(EngineEvent(atUs: nowUs, .heuristicCaseOpened(heuristicCase))))
        record(.opened(heuristicCase), into: &effects)
        // Durable first (the driver performs effects in order), then the deciders may forget.
        for progress in tx.branches where progress.status.decidedAlone.map({ $0 != (decision == .commit) }) ?? false {
            effects.append(.send(progress.branch.participant, .forget(tx.id)))
        }
    }

    /// Why an operator's action on heuristic case `id` would be refused, or nil: the check
    /// `resolveHeuristic` makes, for a driver that wants the reason before it commits to waiting.
    public func refusal(of action: ReconcileAction, on id: TransactionID, operatorName: String, note: String) -> String? {
        if case .failure(let refusal) = checkedPlan(action, on: id, operatorName: operatorName, note: note) { return refusal.description }
        return nil
    }

    /// The operator's input checked, then the action's plan (nil: nothing to run).
    func checkedPlan(_ action: ReconcileAction, on id: TransactionID, operatorName: String, note: String) -> Result<[Branch]?, PlanRefusal> {
        guard note.contains(where: { !$0.isWhitespace }) else { return .failure(PlanRefusal("a reason is required (--note)")) }
        guard note.utf8.count <= Self.maxNoteBytes else { return .failure(PlanRefusal("the reason is longer than \(Self.maxNoteBytes) bytes")) }
        guard operatorName.contains(where: { !$0.isWhitespace }), operatorName.utf8.count <= Self.maxOperatorBytes else {
            return .failure(PlanRefusal("the operator's name must be 1 to \(Self.maxOperatorBytes) bytes"))
        }
        return reconciliation.plan(action, for: id)
    }

    mutating func resolveHeuristic(_ id: TransactionID, action: ReconcileAction, operatorName: String, note: String,
                                   linked: TransactionID, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        let plan: [Branch]?
        switch checkedPlan(action, on: id, operatorName: operatorName, note: note) {
        case .failure(let refusal):
            effects.append(.emit(EngineEvent(atUs: nowUs, .operatorRefused(id, reason: refusal.description))))
            return
        case .success(let planned):
            plan = planned
        }
        guard let plan else {
            let entry = ReconcileEntry(action: action, operatorName: operatorName, note: note, atWallMs: wallMs(nowUs), linked: nil,
                                       plan: [], before: .open, after: .settled(action, linked: nil), result: .succeeded)
            effects.append(.emit(EngineEvent(atUs: nowUs, .reconciled(id, entry))))
            record(.entry(id, entry), into: &effects)
            return
        }
        precondition(transactions[linked] == nil && reconciliation.linked[linked] == nil, "linked transaction \(linked) is not new")
        let entry = ReconcileEntry(action: action, operatorName: operatorName, note: note, atWallMs: wallMs(nowUs), linked: linked,
                                   plan: plan, before: .open, after: .acting(action, linked: linked), result: .started)
        effects.append(.emit(EngineEvent(atUs: nowUs, .reconciled(id, entry))))
        record(.entry(id, entry), into: &effects)
        // An ordinary distributed transaction from here on: locks, PREPARE, a durable COMMIT.
        begin(linked, branches: plan, observe: false, nowUs: nowUs, into: &effects)
        requestCommit(linked, nowUs: nowUs, into: &effects)
    }

    /// `id` ended; if it carried out an operator's action, that action's case learns how.
    mutating func linkedEnded(_ id: TransactionID, committed: Bool, reason: String, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        guard let caseID = reconciliation.linked[id], let heuristicCase = reconciliation[caseID],
              case .acting(let action, let linked) = heuristicCase.status, linked == id else { return }
        let started = heuristicCase.actions.last
        let entry = ReconcileEntry(
            action: action, operatorName: started?.operatorName ?? "sandhi",
            note: committed ? "\(id) committed" : "\(id) aborted: \(reason)", atWallMs: wallMs(nowUs), linked: id, plan: [],
            before: heuristicCase.status, after: committed ? .settled(action, linked: id) : .open,
            result: committed ? .succeeded : .failed(reason: reason))
        effects.append(.emit(EngineEvent(atUs: nowUs, .reconciled(caseID, entry))))
        record(.entry(caseID, entry), into: &effects)
    }

    /// Recovery has handed over everything in the log and the participants: an action whose
    /// linked transaction is not among them never committed (presumed abort).
    mutating func recoveryComplete(nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        recovering = false
        for (linked, _) in reconciliation.linked.sorted(by: { $0.key < $1.key }) where transactions[linked] == nil {
            linkedEnded(linked, committed: false, reason: "not committed before the coordinator stopped (presumed abort)",
                        nowUs: nowUs, into: &effects)
        }
    }
}

/// A set of transaction ids that forgets its oldest member past a limit (FIFO).
struct RecentSet: Sendable {
    private var members = Set<TransactionID>()
    private var order = Deque<TransactionID>()

    func contains(_ id: TransactionID) -> Bool { members.contains(id) }

    mutating func insert(_ id: TransactionID, limit: Int) {
        guard limit > 0, members.insert(id).inserted else { return }
        order.append(id)
        if order.count > limit { members.remove(order.removeFirst()) }
    }
}
