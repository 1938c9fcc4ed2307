import SandhiEngine
import Testing

/// The one recovery: what `RecoveryPlan.make` decides from a log and the banks, which the real
/// node and the simulator both feed to their coordinator.
@Suite struct RecoveryPlanTests {
    let hdfc = Fixture.hdfc, sbi = Fixture.sbi, icici = Fixture.icici
    let savings = Fixture.account("savings"), current = Fixture.account("current")

    func bank(_ participant: ParticipantID, epoch: UInt32 = 1, prepared: [TransactionID] = [], writers: [ParticipantID] = [],
              heuristics: [TransactionID: ParticipantProtocol.Heuristic] = [:]) -> RecoveringBank {
        RecoveringBank(participant: participant, inDoubt: Dictionary(uniqueKeysWithValues: prepared.map { ($0, writers) }),
                       locks: Dictionary(uniqueKeysWithValues: prepared.map { ($0, [Fixture.account("savings")]) }),
                       highestEpoch: epoch, heuristics: heuristics)
    }

    @Test func theNewEpochIsAboveTheLogAndEveryBank() throws {
        let plan = try RecoveryPlan.make(logEpoch: 4, commits: [], banks: [bank(hdfc, epoch: 4), bank(sbi, epoch: 2)]) { _ in [] }
        #expect(plan.epoch == 5)
        #expect(plan.decisions.isEmpty)
        #expect(plan.inputs.count == 1, "only recoveryComplete")
    }

    @Test func banksAheadOfTheLogAreRefusedNamingBothEpochsAndTheBank() {
        #expect(throws: RecoveryRefusal.banksAheadOfLog(logEpoch: 3, banksEpoch: 7, bank: sbi)) {
            try RecoveryPlan.make(logEpoch: 3, commits: [], banks: [bank(hdfc, epoch: 3), bank(sbi, epoch: 7)]) { _ in [] }
        }
        let line = RecoveryRefusal.banksAheadOfLog(logEpoch: 3, banksEpoch: 7, bank: sbi).description
        #expect(line.contains("epoch 3") && line.contains("epoch 7") && line.contains("sbi") && !line.contains("\n"))
    }

    @Test func theLastEpochIsNeverExceeded() {
        #expect(throws: RecoveryRefusal.epochsExhausted(limit: TransactionID.maxEpoch)) {
            try RecoveryPlan.make(logEpoch: TransactionID.maxEpoch, commits: [], banks: []) { _ in [] }
        }
    }

    @Test func commitsWithoutAnEndAndCommitsStillPreparedSomewhereAreCommitted() throws {
        let open = Fixture.tx(1), ended = Fixture.tx(2), endedButHeld = Fixture.tx(3), aborted = Fixture.tx(4)
        let plan = try RecoveryPlan.make(
            logEpoch: 1,
            commits: [(open, [hdfc, sbi], false), (ended, [hdfc, sbi], true), (endedButHeld, [hdfc, sbi], true)],
            banks: [bank(hdfc, prepared: [open, aborted], writers: [hdfc, sbi]), bank(sbi, prepared: [endedButHeld], writers: [hdfc, sbi])]) { _ in [] }
        #expect(plan.decisions.map(\.transaction) == [open, endedButHeld, aborted])
        #expect(plan.decisions.map(\.reason) == [.commitLogged, .commitLoggedAndEnded(stillPreparedAt: sbi), .presumedAbort])
        guard case .recoverCommitted(open, let participants, let locks) = plan.inputs[0] else {
            Issue.record("first input: \(plan.inputs[0])"); return
        }
        #expect(participants == [hdfc, sbi])
        #expect(locks == [ResourceID(participant: hdfc, account: savings)])
        guard case .recoverInDoubt(aborted, [hdfc, sbi], _) = plan.inputs[2] else { Issue.record("third input: \(plan.inputs[2])"); return }
        guard case .rememberCommitted([ended]) = plan.inputs[3] else { Issue.record("fourth input: \(plan.inputs[3])"); return }
        guard case .recoveryComplete = plan.inputs.last else { Issue.record("last input: \(String(describing: plan.inputs.last))"); return }
    }

    @Test func aBranchABankCommittedIsCommittedEverywhereThoughTheLogHasNoRecord() throws {
        let tx = Fixture.tx(9)
        var asked: [TransactionID] = []
        let banks = [bank(sbi, prepared: [tx], writers: [hdfc, sbi]), bank(hdfc)]
        #expect(RecoveryPlan.undecided(commits: [], banks: banks) == [tx])
        let plan = try RecoveryPlan.make(logEpoch: 1, commits: [], banks: banks) { candidate in
            asked.append(candidate)
            return [hdfc]
        }
        #expect(asked == [tx])
        #expect(plan.decisions.map(\.transaction) == [tx])
        #expect(plan.decisions.map(\.commit) == [true])
        #expect(plan.decisions.map(\.participants) == [[hdfc, sbi]])
        #expect(plan.decisions.map(\.reason) == [.committedAt(hdfc)])
    }

    @Test func heuristicDecisionsAreReportedAfterEveryTransactionIsFed() throws {
        let tx = Fixture.tx(5), alone = Fixture.tx(6)
        let heuristic = ParticipantProtocol.Heuristic(committed: true, operations: [], writers: [hdfc, sbi])
        let plan = try RecoveryPlan.make(logEpoch: 1, commits: [(tx, [hdfc, sbi], false)],
                                         banks: [bank(hdfc, heuristics: [alone: heuristic]), bank(sbi, prepared: [tx], writers: [hdfc, sbi])]) { _ in [] }
        let kinds = plan.inputs.map { input -> String in
            switch input {
            case .recoverCommitted: "commit"
            case .recoverInDoubt: "abort"
            case .heuristicReported: "heuristic"
            case .rememberCommitted: "remember"
            case .recoveryComplete: "complete"
            default: "other"
            }
        }
        #expect(kinds == ["commit", "heuristic", "complete"])
        #expect(plan.heuristics.map(\.transaction) == [alone])
    }

    /// The coordinator's half of the same rule: until recovery has fed every transaction, a YES
    /// for one it does not know yet may belong to a logged COMMIT, and is not answered ROLLBACK.
    @Test func aYesDuringRecoveryIsNotAnsweredWithRollback() {
        let tx = Fixture.tx(1)
        var coordinator = Coordinator(recovering: true)
        let early = coordinator.handle(.voted(tx, participant: sbi, vote: .yes), nowUs: 1)
        #expect(early.rolledBack.isEmpty, "the log may yet hold a COMMIT for it")
        #expect(early.lateMessages.contains { $0.contains("during recovery") })
        let recovered = coordinator.handle(.recoverCommitted(tx, participants: [hdfc, sbi]), nowUs: 2)
        #expect(recovered.committed == [hdfc, sbi])
        _ = coordinator.handle(.recoveryComplete, nowUs: 3)
        let unknown = coordinator.handle(.voted(Fixture.tx(2), participant: sbi, vote: .yes), nowUs: 4)
        #expect(unknown.rolledBack == [sbi], "after recovery, presumed abort")
    }
}
