import Logging
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// Crash states built by hand: what a SIGKILL can leave behind, and what recovery must make of it.
@Suite struct RecoveryTests {
    typealias B = ThreeBanks

    @Test func preparedWithACommitRecordCommitsAndWithoutOneAborts() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let committed = TransactionID(epoch: 1, sequence: 1), presumedAborted = TransactionID(epoch: 1, sequence: 2)
        try banks.prepareEverywhere(committed, amount: .rupees(100))
        try banks.writeLog(commits: [committed])
        // The second transaction prepared at icici only; sbi never heard of it.
        let icici = try banks.bank(B.icici)
        #expect(try icici.process([.prepare(presumedAborted, operations: [.debit(account: B.bob, amount: .rupees(7))], writers: [B.icici, B.sbi])]).voteOnly
                == [.vote(presumedAborted, .yes)])
        icici.close()

        let node = try await banks.start()
        node.stop()
        let resolved = node.recovery.resolved
        try #require(resolved.map { $0.transaction } == [committed, presumedAborted])
        #expect(resolved[0].outcome == Outcome.committed)
        #expect(resolved[1].outcome.isCommitted == false)
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(900))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_100))
        #expect(try banks.balance(B.icici, B.bob) == .rupees(1_000))
        for bank in [B.hdfc, B.icici, B.sbi] { #expect(try banks.bank(bank).inDoubt().isEmpty) }
        // A new epoch: ids handed out after recovery can never collide with the crashed run's.
        #expect(node.recovery.epoch == 2)
    }

    @Test func aCommitWhoseAcknowledgementsWereLostIsRedrivenIdempotently() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.prepareEverywhere(tx, amount: .rupees(40))
        try banks.writeLog(commits: [tx])
        // hdfc applied the commit before the crash; sbi did not.
        let hdfc = try banks.bank(B.hdfc)
        _ = try hdfc.process([.commit(tx)])
        hdfc.close()
        let node = try await banks.start()
        node.stop()
        #expect(node.recovery.resolved.map { $0.outcome } == [Outcome.committed])
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(960)) // applied once, not twice
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_040))
        #expect(try DecisionLogStore.read(directory: banks.directory.coordinatorPath).unfinishedCommits.isEmpty)
    }

    @Test func aTornLogTailIsCutAndSaidSo() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        _ = try await node.driver.transfer(B.move(.rupees(1), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)))
        node.stop()
        let segment = banks.directory.coordinatorPath + "/" + (try FileManager.default.contentsOfDirectory(atPath: banks.directory.coordinatorPath).sorted().last!)
        let handle = try #require(FileHandle(forWritingAtPath: segment))
        handle.seekToEndOfFile()
        handle.write(Data([0x30, 0, 0, 0, 1, 2, 3])) // half a header: a write cut short
        handle.closeFile()
        let restarted = try await banks.start()
        restarted.stop()
        #expect(restarted.recovery.logNotes.contains { $0.contains("torn") })
    }
}

import Foundation

@Suite struct EpochTests {
    typealias B = ThreeBanks

    @Test func aLostDecisionLogIsRefusedRatherThanPresumedAbort() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        _ = try await node.driver.transfer(B.move(.rupees(1), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)))
        node.stop()
        try FileManager.default.removeItem(atPath: banks.directory.coordinatorPath)
        do {
            _ = try await banks.start()
            Issue.record("started over banks with history and an empty decision log")
        } catch {
            #expect("\(error)".contains("the decision log is empty (epoch 0), but bank"))
            #expect("\(error)".contains("holds transactions of epoch 1"))
        }
    }

    @Test func banksAheadOfTheLogAreRefusedNamingBothEpochs() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        // A branch from epoch 7 committed at hdfc, and a log that reaches only epoch 2: the log
        // was restored from an older copy, or failed over to a standby that missed its tail.
        let old = TransactionID(epoch: 7, sequence: 1)
        let hdfc = try banks.bank(B.hdfc)
        _ = try hdfc.process([.prepare(old, operations: [.debit(account: B.alice, amount: .rupees(1))], writers: [B.hdfc])])
        _ = try hdfc.process([.commit(old)])
        hdfc.close()
        let (store, _) = try DecisionLogStore.open(directory: banks.directory.coordinatorPath, logger: B.logger)
        store.epoch = 2
        _ = try store.append([.epochStarted(epoch: 2)])
        try store.sync()
        store.close()
        let before = try DecisionLogStore.read(directory: banks.directory.coordinatorPath).records.count
        do {
            let node = try await banks.start()
            node.stop()
            Issue.record("started epoch \(node.recovery.epoch) over a log behind its banks")
        } catch {
            #expect("\(error)".contains("the decision log reaches only epoch 2, but bank hdfc holds transactions of epoch 7"))
        }
        // Refused before anything was written: no epoch record of its own.
        #expect(try DecisionLogStore.read(directory: banks.directory.coordinatorPath).records.count == before)
    }

    @Test func aRestoredCopyOfTheLogIsRefused() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let first = try await banks.start()
        first.stop()
        let copy = banks.directory.coordinatorPath + ".copy"
        try FileManager.default.copyItem(atPath: banks.directory.coordinatorPath, toPath: copy)
        let second = try await banks.start()
        _ = try await second.driver.transfer(B.move(.rupees(1), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)))
        second.stop()
        try FileManager.default.removeItem(atPath: banks.directory.coordinatorPath)
        try FileManager.default.moveItem(atPath: copy, toPath: banks.directory.coordinatorPath)
        do {
            _ = try await banks.start()
            Issue.record("started over a decision log restored from before the last transfer")
        } catch {
            #expect("\(error)".contains("reaches only epoch 1, but bank"))
            #expect("\(error)".contains("holds transactions of epoch 2"))
        }
    }

    @Test func aBranchABankCommittedIsNeverPresumedAbortedWhenTheLogLostItsCommit() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.prepareEverywhere(tx, amount: .rupees(100))
        // hdfc committed: the coordinator had decided COMMIT. The log kept its epoch but lost
        // the COMMIT record (a failover to a standby that was not synchronous).
        let hdfc = try banks.bank(B.hdfc)
        _ = try hdfc.process([.commit(tx)])
        try hdfc.makeDurable()
        hdfc.close()
        try banks.writeLog(commits: [])
        let node = try await banks.start()
        node.stop()
        #expect(node.recovery.resolved.map(\.reason) == [.committedAt(B.hdfc)])
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(900))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_100), "sbi commits too: presumed abort would have destroyed ₹100")
        #expect(try banks.bank(B.sbi).inDoubt().isEmpty)
    }

    @Test func aBranchABankCommittedAloneStillMeetsPresumedAbort() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.prepareEverywhere(tx, amount: .rupees(100))
        // hdfc decided alone (a heuristic commit); no COMMIT was ever logged.
        let hdfc = try banks.bank(B.hdfc)
        _ = try hdfc.decideAlone(tx, commit: true)
        try hdfc.makeDurable()
        hdfc.close()
        try banks.writeLog(commits: [])
        let node = try await banks.start()
        let unsettled = node.driver.reconciliation.unsettled
        node.stop()
        #expect(node.recovery.resolved.map(\.reason) == [.presumedAbort])
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_000))
        #expect(unsettled.map(\.transaction) == [tx], "hdfc's commit against presumed abort is a mixed outcome for an operator")
    }
}
