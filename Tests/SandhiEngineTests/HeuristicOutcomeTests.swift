// Heuristic outcomes: a participant that decides on its own, the coordinator noticing a mixed
// outcome, the reconciliation queue, and the operator's actions on it.
import Testing
import SandhiEngine

extension Array where Element == CoordinatorEffect {
    var records: [ReconciliationRecord] {
        compactMap { if case .recordReconciliation(let record) = $0 { return record } else { return nil } }
    }

    var forgotten: [ParticipantID] {
        sends.filter { if case .forget = $0.message { return true } else { return false } }.map(\.participant)
    }

    var refusals: [String] {
        events.compactMap { if case .operatorRefused(_, let reason) = $0 { return reason } else { return nil } }
    }
}

@Suite("Participant: heuristic decisions")
struct ParticipantHeuristicTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, sbi = Fixture.sbi
    let savings = Fixture.account("savings")

    func prepared() -> ParticipantProtocol {
        var machine = ParticipantProtocol(participant: hdfc)
        _ = machine.handle(.message(.prepare(t1, operations: [.debit(account: savings, amount: Paise(500))], writers: [hdfc, sbi])))
        _ = machine.handle(.staged(t1, failure: nil))
        return machine
    }

    @Test func decidingAloneAppliesReleasesLocksAndReportsUntilForgotten() {
        var machine = prepared()
        #expect(machine.lockOwners[savings] == t1)
        let operations: [Operation] = [.debit(account: savings, amount: Paise(500))]
        let effects = machine.handle(.decideAlone(t1, commit: true))
        #expect(effects == [.decideAlone(t1, commit: true, operations: operations, writers: [hdfc, sbi]),
                            .reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi]))])
        #expect(machine.lockOwners.isEmpty, "a decided branch holds nothing")
        #expect(machine.branches.isEmpty)

        // The coordinator's decision, whichever, is answered with the heuristic outcome.
        #expect(machine.handle(.message(.rollback(t1))) == [.reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi]))])
        #expect(machine.handle(.message(.commit(t1))) == [.reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi]))])
        // Inquiries report it again; a late PREPARE of a committed branch is ignored.
        #expect(machine.handle(.inquire) == [.reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi]))])
        #expect(machine.handle(.message(.prepare(t1, operations: operations, writers: [hdfc, sbi]))).isEmpty)

        #expect(machine.handle(.message(.forget(t1))) == [.forgetHeuristic(t1), .reply(.acknowledged(t1))])
        #expect(machine.heuristics.isEmpty)
        #expect(machine.handle(.message(.forget(t1))) == [.reply(.acknowledged(t1))], "forget is idempotent")
        #expect(machine.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))], "after forget, a late COMMIT is already done")
        #expect(machine.handle(.inquire).isEmpty)
    }

    @Test func aRolledBackAloneBranchRefusesALatePrepareAndAcceptsALateCommitAfterForget() {
        var machine = prepared()
        _ = machine.handle(.decideAlone(t1, commit: false))
        let operations: [Operation] = [.debit(account: savings, amount: Paise(500))]
        let late = machine.handle(.message(.prepare(t1, operations: operations, writers: [hdfc, sbi])))
        #expect(late.count == 1)
        if case .reply(.vote(_, .no(let refusal), _)) = late.first { #expect(refusal == .rolledBackAlone(hdfc, t1)) } else { Issue.record("expected NO, got \(late)") }
        _ = machine.handle(.message(.forget(t1)))
        #expect(machine.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))], "no crash on a COMMIT the coordinator recorded as mixed")
    }

    @Test func onlyAPreparedBranchCanBeDecidedAlone() {
        var machine = ParticipantProtocol(participant: hdfc)
        #expect(machine.handle(.decideAlone(t1, commit: true)).isEmpty)
        _ = machine.handle(.message(.prepare(t1, operations: [.debit(account: savings, amount: Paise(5))], writers: [hdfc])))
        #expect(machine.handle(.decideAlone(t1, commit: true)).isEmpty, "still staging: nothing is promised yet")
    }

    @Test func aRestoredHeuristicIsReportedAgain() {
        var machine = ParticipantProtocol(participant: hdfc)
        let operations: [Operation] = [.credit(account: savings, amount: Paise(7))]
        _ = machine.handle(.restoredHeuristic(t1, committed: false, operations: operations, writers: [hdfc]))
        #expect(machine.handle(.inquire) == [.reply(.heuristic(t1, committed: false, operations: operations, writers: [hdfc]))])
    }
}

@Suite("Coordinator: heuristic outcomes and reconciliation")
struct CoordinatorHeuristicTests {
    let t1 = Fixture.tx(1), linked = Fixture.tx(99)
    let hdfc = Fixture.hdfc, sbi = Fixture.sbi
    let debit = Fixture.debit(Fixture.hdfc, 500), credit = Fixture.credit(Fixture.sbi, 500)

    /// t1 decided COMMIT, COMMIT sent to both.
    func committing() -> CoordinatorHarness {
        var h = CoordinatorHarness { $0.wallClockOffsetMs = 1_700_000_000_000 }
        h.prepare(t1, [debit, credit], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(t1)
        return h
    }

    @Test func aHeuristicRollbackUnderCommitIsRecordedAsAMixedOutcome() throws {
        var h = committing()
        h.ack(t1, hdfc)
        let effects = h.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]))
        #expect(h.state(t1) == nil, "the case leaves the protocol table for the reconciliation queue")
        #expect(effects.stateChanges.last?.to == .heuristic)
        let record = try #require(effects.records.first)
        guard case .opened(let heuristicCase) = record else { Issue.record("expected opened, got \(record)"); return }
        #expect(heuristicCase.decision == .commit)
        #expect(heuristicCase.participants == [
            .init(participant: hdfc, outcome: .committed, operations: debit.operations),
            .init(participant: sbi, outcome: .heuristicRollback, operations: credit.operations),
        ])
        #expect(heuristicCase.imbalance == Paise(-500), "the debit stood and the credit did not: ₹5 destroyed")
        #expect(heuristicCase.detectedAtWallMs >= 1_700_000_000_000)
        // Recorded before the participant may forget; END so the log can be reclaimed.
        let recordIndex = try #require(effects.firstIndex { if case .recordReconciliation = $0 { true } else { false } })
        let forgetIndex = try #require(effects.firstIndex { $0.sent?.message == .forget(t1) })
        #expect(recordIndex < forgetIndex)
        #expect(effects.forgotten == [sbi])
        #expect(effects.appends == [Appended(record: .end(transaction: t1), forced: false)])
        #expect(effects.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(h.coordinator.reconciliation.unsettled.map(\.transaction) == [t1])
        #expect(h.coordinator.locks.table.isEmpty)
    }

    @Test func aHeuristicThatAgreesIsAcknowledgedAndForgottenWithoutACase() {
        var h = committing()
        let effects = h.handle(.heuristicReported(t1, participant: sbi, committed: true, operations: credit.operations, writers: [hdfc, sbi]))
        #expect(effects.forgotten == [sbi])
        #expect(effects.records.isEmpty)
        // Not finished until sbi acknowledges the FORGET: a lost FORGET must not leave a report
        // that only a forgotten transaction (presumed abort) would hear.
        if case .awaitingAck = h.status(t1, sbi) {} else { Issue.record("\(String(describing: h.status(t1, sbi)))") }
        #expect(h.ack(t1, hdfc).finishes.isEmpty)
        let done = h.ack(t1, sbi)
        #expect(done.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(h.coordinator.reconciliation.all.isEmpty)
    }

    /// hdfc reports a heuristic commit of a transaction `h` does not know, and (asked whether it
    /// still holds it) answers with the report echoing the question: the effects of the answer.
    func confirmedHeuristicCommit(_ h: inout CoordinatorHarness, _ tx: TransactionID) throws -> [CoordinatorEffect] {
        let asked = h.handle(.heuristicReported(tx, participant: hdfc, committed: true, operations: debit.operations, writers: [hdfc, sbi]))
        #expect(asked.records.isEmpty && asked.forgotten.isEmpty, "a report by message may be a stale copy: nothing before the answer")
        let question = try #require(asked.sends.first)
        guard case .rollback(tx, let tag?) = question.message, question.participant == hdfc else {
            Issue.record("expected a question to hdfc, got \(asked.sends)")
            return []
        }
        return h.handle(.heuristicReported(tx, participant: hdfc, committed: true, operations: debit.operations, writers: [hdfc, sbi],
                                           source: .message(confirming: tag)))
    }

    @Test func aHeuristicCommitOfAForgottenTransactionIsMixedUnderPresumedAbort() throws {
        var h = CoordinatorHarness()
        let effects = try confirmedHeuristicCommit(&h, t1)
        guard case .opened(let heuristicCase) = try #require(effects.records.first) else { Issue.record("no case"); return }
        #expect(heuristicCase.decision == .abort)
        #expect(heuristicCase.divergent.map(\.participant) == [hdfc])
        #expect(heuristicCase.participants.map(\.participant) == [hdfc, sbi])
        #expect(effects.forgotten == [hdfc])
        // Reported again (the FORGET was lost): FORGET again, nothing new recorded.
        let again = h.handle(.heuristicReported(t1, participant: hdfc, committed: true, operations: debit.operations, writers: [hdfc, sbi]))
        #expect(again.records.isEmpty)
        #expect(again.forgotten == [hdfc])
        // A heuristic rollback of a forgotten transaction agrees with presumed abort.
        let agreeing = h.handle(.heuristicReported(Fixture.tx(2), participant: sbi, committed: false, operations: [], writers: [sbi]))
        #expect(agreeing.records.isEmpty)
        #expect(agreeing.forgotten == [sbi])
    }

    @Test func nothingIsPresumedWhileRecoveryIsStillFeedingTheLog() {
        var h = CoordinatorHarness()
        var coordinator = Coordinator(recovering: true)
        let early = coordinator.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]), nowUs: 1)
        #expect(early.records.isEmpty && early.forgotten.isEmpty, "the log may yet hold a COMMIT for it")
        _ = coordinator.handle(.recoverCommitted(t1, participants: [hdfc, sbi]), nowUs: 2)
        _ = coordinator.handle(.recoveryComplete, nowUs: 3)
        _ = coordinator.handle(.acknowledged(t1, participant: hdfc), nowUs: 4)
        let late = coordinator.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]), nowUs: 5)
        #expect(late.records.count == 1, "against the recovered COMMIT: mixed")
        _ = h
    }

    @Test func retryCommitRunsTheRolledBackWritesAsALinkedTransaction() throws {
        var h = committing()
        h.ack(t1, hdfc)
        h.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]))
        let effects = h.handle(.resolveHeuristic(t1, action: .retryCommit, operatorName: "asha", note: "SBI lost the credit", linked: linked))
        #expect(effects.prepared == [sbi], "only the branch that did not take")
        if case .entry(_, let entry) = try #require(effects.records.first) {
            #expect(entry.result == .started)
            #expect(entry.before == .open && entry.after == .acting(.retryCommit, linked: linked))
            #expect(entry.plan == [credit])
            #expect(entry.operatorName == "asha" && entry.note == "SBI lost the credit")
        } else { Issue.record("no entry") }
        // A second action while it runs is refused.
        let busy = h.handle(.resolveHeuristic(t1, action: .markResolved, operatorName: "asha", note: "x", linked: Fixture.tx(100)))
        #expect(busy.refusals.first?.contains("running") == true)

        h.vote(linked, sbi, .yes)
        h.durable(linked)
        let done = h.ack(linked, sbi)
        let ended = done.records
        #expect(ended.count == 1)
        // The action's end is recorded before the linked transaction's END.
        let recordIndex = try #require(done.firstIndex { if case .recordReconciliation = $0 { true } else { false } })
        let endIndex = try #require(done.firstIndex { $0.appended?.record == .end(transaction: linked) })
        #expect(recordIndex < endIndex)
        let settled = try #require(h.coordinator.reconciliation[t1])
        #expect(settled.status == .settled(.retryCommit, linked: linked))
        #expect(settled.actions.map(\.result) == [.started, .succeeded])
        #expect(h.coordinator.reconciliation.unsettled.isEmpty)
        // Settled stays queryable, and cannot be settled twice.
        let twice = h.handle(.resolveHeuristic(t1, action: .markResolved, operatorName: "asha", note: "again", linked: Fixture.tx(101)))
        #expect(twice.refusals.first?.contains("already settled") == true)
    }

    @Test func compensationUndoesWhatTookEffectAndAFailureReopensTheCase() throws {
        var h = committing()
        h.ack(t1, hdfc)
        h.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]))
        let effects = h.handle(.resolveHeuristic(t1, action: .compensate, operatorName: "asha", note: "reverse it", linked: linked))
        #expect(effects.prepared == [hdfc])
        if case .entry(_, let entry) = try #require(effects.records.first) {
            #expect(entry.plan == [Branch(participant: hdfc, operations: [.credit(account: Fixture.account("savings"), amount: Paise(500))])])
        }
        let no = h.vote(linked, hdfc, .no(.unknownAccount(ResourceID(participant: hdfc, account: Fixture.account("closed")))))
        h.ack(linked, hdfc)
        _ = no
        let reopened = try #require(h.coordinator.reconciliation[t1])
        #expect(reopened.status == .open)
        #expect(reopened.actions.last?.result == .failed(reason: "hdfc voted NO: unknown account hdfc/closed"))
        // Then settled by hand.
        h.handle(.resolveHeuristic(t1, action: .markResolved, operatorName: "ravi", note: "refunded by cheque", linked: Fixture.tx(100)))
        #expect(h.coordinator.reconciliation[t1]?.status == .settled(.markResolved, linked: nil))
        #expect(h.coordinator.reconciliation[t1]?.actions.count == 3)
    }

    @Test func badOperatorInputIsRefusedWithAReasonAndChangesNothing() {
        var h = committing()
        h.ack(t1, hdfc)
        h.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]))
        let before = h.coordinator.reconciliation
        for (action, name, note, expected) in [
            (ReconcileAction.markResolved, "asha", "   ", "reason is required"),
            (.markResolved, "", "why", "operator's name"),
            (.markResolved, "asha", String(repeating: "x", count: 2_000), "longer than"),
        ] {
            let effects = h.handle(.resolveHeuristic(t1, action: action, operatorName: name, note: note, linked: linked))
            #expect(effects.refusals.first?.contains(expected) == true, "\(effects.refusals)")
            #expect(effects.records.isEmpty)
        }
        let unknown = h.handle(.resolveHeuristic(Fixture.tx(5), action: .markResolved, operatorName: "asha", note: "why", linked: linked))
        #expect(unknown.refusals.first?.contains("not a heuristic case") == true)
        #expect(h.coordinator.reconciliation == before)
    }

    @Test func retryCommitIsRefusedForAnAbortDecision() throws {
        var h = CoordinatorHarness()
        _ = try confirmedHeuristicCommit(&h, t1)
        let effects = h.handle(.resolveHeuristic(t1, action: .retryCommit, operatorName: "asha", note: "try", linked: linked))
        #expect(effects.refusals.first?.contains("decided abort") == true)
        let compensate = h.handle(.resolveHeuristic(t1, action: .compensate, operatorName: "asha", note: "undo", linked: linked))
        #expect(compensate.prepared == [hdfc])
    }

    @Test func anActionWhoseLinkedTransactionNeverCommittedFailsAtRecovery() throws {
        var h = committing()
        h.ack(t1, hdfc)
        h.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]))
        h.handle(.resolveHeuristic(t1, action: .retryCommit, operatorName: "asha", note: "go", linked: linked))
        // The coordinator crashes before the linked transaction decides; a new one recovers.
        var restarted = Coordinator(reconciliation: h.coordinator.reconciliation, recovering: true)
        let effects = restarted.handle(.recoveryComplete, nowUs: 1)
        #expect(effects.records.count == 1)
        #expect(restarted.reconciliation[t1]?.status == .open)
        if case .failed(let reason) = try #require(restarted.reconciliation[t1]?.actions.last?.result) {
            #expect(reason.contains("presumed abort"))
        } else { Issue.record("expected a failed action") }
    }
}

@Suite("Reconciliation records")
struct ReconciliationCodecTests {
    @Test func everyRecordRoundTrips() {
        let t1 = Fixture.tx(1), linked = Fixture.tx(2)
        let report = Report(kind: "large-transaction", amount: Paise(1_000_000_00), reference: "T-1.1")
        let heuristicCase = HeuristicCase(transaction: t1, decision: .commit, detectedAtWallMs: 1_700_000_000_123, participants: [
            .init(participant: Fixture.hdfc, outcome: .committed, operations: [.debit(account: Fixture.account("a"), amount: Paise(5)), .fileReport(report)]),
            .init(participant: Fixture.sbi, outcome: .heuristicRollback, operations: nil),
        ])
        let records: [ReconciliationRecord] = [
            .opened(heuristicCase),
            .outcomeLearned(t1, .init(participant: Fixture.axis, outcome: .heuristicCommit, operations: [])),
            .entry(t1, ReconcileEntry(action: .compensate, operatorName: "asha", note: "ते ठीक करो", atWallMs: 42, linked: linked,
                                      plan: [Fixture.credit(Fixture.hdfc, 5)], before: .open, after: .acting(.compensate, linked: linked), result: .started)),
            .entry(t1, ReconcileEntry(action: .compensate, operatorName: "asha", note: "done", atWallMs: 43, linked: linked, plan: [],
                                      before: .acting(.compensate, linked: linked), after: .open, result: .failed(reason: "NO"))),
            .entry(t1, ReconcileEntry(action: .markResolved, operatorName: "ravi", note: "ok", atWallMs: 44, linked: nil, plan: [],
                                      before: .open, after: .settled(.markResolved, linked: nil), result: .succeeded)),
        ]
        for record in records {
            #expect((try? ReconciliationCodec.decode(ReconciliationCodec.encode(record))) == record)
        }
        // Damage is an error, never a different record.
        var bytes = ReconciliationCodec.encode(records[2])
        bytes[0] = 9
        #expect(throws: BinaryReader.Error.self) { try ReconciliationCodec.decode(bytes) }
        #expect(throws: BinaryReader.Error.self) { try ReconciliationCodec.decode(Array(ReconciliationCodec.encode(records[0]).dropLast())) }
    }

    @Test func compensationFilesAReversalInsteadOfErasingAReport() {
        let report = Report(kind: "large-transaction", amount: Paise(100), reference: "CA consolidation")
        let inverse = ReconciliationQueue.inverse(of: .fileReport(report), reversing: Fixture.tx(1))
        #expect(inverse == .fileReport(Report(kind: "reversal", amount: Paise(100), reference: "reverses T-1.1: CA consolidation")))
        #expect(ReconciliationQueue.inverse(of: .read(account: Fixture.account("a")), reversing: Fixture.tx(1)) == nil)
    }
}
