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
            #expect("\(error)".contains("log was lost or replaced"))
        }
    }

    @Test func newEpochsAreAboveEveryEpochTheBanksHaveSeen() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        // A branch from epoch 7 (say, the log was restored from an older copy).
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
        let node = try await banks.start()
        node.stop()
        #expect(node.recovery.epoch == 8)
    }
}
