import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// A heuristic case whose reconciliation record cannot be made durable: the node that found it
/// halts there (`CoordinatorDriverCore.recordFailed`), so the FORGET that would let the bank
/// drop its own copy is never sent, and the next start finds the case again and records it.
@Suite struct ReconciliationRecordFailureTests {
    typealias D = DurableBeforeSentTests

    @Test func aCaseWhoseRecordFailsToSyncHaltsTheStartAndTheNextStartRecordsIt() async throws {
        let node = try D.SimulatedDiskNode(seed: 5); defer { node.remove() }
        let io = node.directory.io
        let tx = TransactionID(epoch: 1, sequence: 1)
        let writers = [D.hdfc, D.sbi]
        // hdfc and sbi voted YES, the COMMIT is in the log, and then sbi rolled back alone.
        for (participant, operation) in [(D.hdfc, Operation.debit(account: D.alice, amount: .rupees(100))),
                                          (D.sbi, Operation.credit(account: D.carol, amount: .rupees(100)))] {
            let bank = try SQLiteBank(path: node.directory.bankPath(participant), participant: participant, logger: D.logger, io: io)
            defer { bank.close() }
            #expect(try bank.process([.prepare(tx, operations: [operation], writers: writers)]).voteOnly == [.vote(tx, .yes)])
            try bank.makeDurable()
        }
        let (store, _) = try DecisionLogStore.open(directory: node.directory.coordinatorPath, fileSystem: node.disk, logger: D.logger)
        store.epoch = 1
        _ = try store.append([.epochStarted(epoch: 1), .commit(transaction: tx, participants: writers)])
        try store.sync()
        store.close()
        let sbi = try SQLiteBank(path: node.directory.bankPath(D.sbi), participant: D.sbi, logger: D.logger, io: io)
        #expect(try sbi.decideAlone(tx, commit: false).count == 1)
        try sbi.makeDurable()
        sbi.close()

        node.disk.failNextSync(of: node.directory.reconciliationPath)
        do {
            let started = try await node.start()
            started.stop()
            Issue.record("the start went on after its reconciliation record failed to sync")
        } catch let error as CoordinatorError {
            guard case .halted(let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("reconciliation record for \(tx) failed to reach disk"), "\(reason)")
        }

        let kept = try SQLiteBank(path: node.directory.bankPath(D.sbi), participant: D.sbi, logger: D.logger, io: io)
        #expect(kept.unforgottenHeuristics()[tx] != nil, "no FORGET reached sbi: it keeps its decision made alone")
        kept.close()

        let again = try await node.start()
        let found = try #require(again.driver.reconciliation[tx], "the case is found again")
        again.stop()
        #expect(found.decision == .commit)
        #expect(found.participants.map(\.outcome) == [.committed, .heuristicRollback])
        #expect(try ReconciliationJournal.read(path: node.directory.reconciliationPath, fileSystem: node.disk)[tx] == found,
                "recorded this time")
    }
}
