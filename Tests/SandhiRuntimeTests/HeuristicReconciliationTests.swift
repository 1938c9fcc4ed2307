import Foundation
import Logging
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// Mixed outcomes end to end on real SQLite banks: a bank decides a prepared branch alone, the
/// coordinator finds the mismatch (at recovery, or as it delivers its decision), records the
/// case durably, and an operator settles it with an action whose linked transaction really runs.
@Suite struct HeuristicReconciliationTests {
    typealias B = ThreeBanks

    @Test func aHeuristicRollbackUnderACommitIsFoundAtRecoveryAndSettledByRetryCommit() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.rollBackAloneUnderCommit(tx)

        let node = try await banks.start()
        let heuristicCase = try #require(node.driver.reconciliation[tx])
        #expect(heuristicCase.decision == .commit)
        #expect(heuristicCase.participants.map(\.outcome) == [.committed, .heuristicRollback])
        #expect(heuristicCase.imbalance == .rupees(-100))
        node.stop()
        // The debit stood, the credit did not: the books are out by ₹100, and the audit says why.
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(900))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_000))
        let before = try banks.audit()
        #expect(before.passed, "\(before.violations)")
        #expect(before.openImbalance == .rupees(-100))
        #expect(before.notes.contains { $0.contains("1 unsettled case") })
        // sbi was told to forget (its heuristic record is kept, marked forgotten).
        #expect(try banks.bank(B.sbi).unforgottenHeuristics().isEmpty)

        // A restart finds the same case, once.
        let again = try await banks.start()
        #expect(again.driver.reconciliation.all.count == 1)
        let settled = try await again.driver.resolveHeuristic(tx, action: .retryCommit, operatorName: "asha", note: "sbi lost the credit")
        again.stop()
        #expect(settled.status == .settled(.retryCommit, linked: settled.actions.last!.linked!))
        #expect(settled.actions.map(\.result) == [.started, .succeeded])
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_100))
        let after = try banks.audit()
        #expect(after.passed, "\(after.violations)")
        #expect(after.openImbalance == .zero && after.total == after.minted)
        // Nothing is deleted: the settled case stays, with its whole history, after a restart.
        let reread = try ReconciliationJournal.read(path: banks.directory.reconciliationPath)
        #expect(reread[tx] == settled)
    }

    @Test func aHeuristicCommitUnderPresumedAbortIsCompensated() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.prepareEverywhere(tx, amount: .rupees(30))
        try banks.writeLog(commits: []) // the coordinator died before its decision was durable
        let sbi = try banks.bank(B.sbi)
        _ = try sbi.decideAlone(tx, commit: true)
        try sbi.makeDurable()
        sbi.close()

        let node = try await banks.start()
        #expect(node.recovery.resolved.map(\.transaction) == [tx], "hdfc was still prepared: presumed abort rolls it back")
        #expect(node.recovery.heuristicsReported.map(\.transaction) == [tx])
        let heuristicCase = try #require(node.driver.reconciliation[tx])
        #expect(heuristicCase.decision == .abort)
        #expect(heuristicCase.divergent.map(\.participant) == [B.sbi])
        #expect(heuristicCase.imbalance == .rupees(30), "sbi credited money that hdfc never debited")

        // Bad operator input changes nothing.
        await #expect(throws: CoordinatorError.self) {
            _ = try await node.driver.resolveHeuristic(tx, action: .retryCommit, operatorName: "asha", note: "no")
        }
        await #expect(throws: CoordinatorError.self) {
            _ = try await node.driver.resolveHeuristic(tx, action: .compensate, operatorName: "asha", note: "  ")
        }
        #expect(node.driver.reconciliation[tx]?.actions.isEmpty == true)

        let settled = try await node.driver.resolveHeuristic(tx, action: .compensate, operatorName: "asha", note: "reverse the stray credit")
        node.stop()
        #expect(settled.isSettled)
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_000))
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(1_000))
        let audit = try banks.audit()
        #expect(audit.passed && audit.total == audit.minted, "\(audit.violations)")
    }

    @Test func aFailedCompensationLeavesTheCaseOpenAndRecorded() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.prepareEverywhere(tx, amount: .rupees(30))
        try banks.writeLog(commits: [])
        let sbi = try banks.bank(B.sbi)
        _ = try sbi.decideAlone(tx, commit: true)
        try sbi.makeDurable()
        sbi.close()
        let node = try await banks.start()
        // carol spends the stray credit and more before anyone notices.
        let spent = try await node.driver.transfer(B.move(.rupees(1_020), from: (B.sbi, B.carol), to: (B.icici, B.bob)))
        #expect(spent.outcome == .committed)
        let after = try await node.driver.resolveHeuristic(tx, action: .compensate, operatorName: "asha", note: "reverse it")
        #expect(after.status == .open)
        if case .failed(let reason) = after.actions.last?.result { #expect(reason.contains("insufficient")) } else { Issue.record("\(after.actions)") }
        let handled = try await node.driver.resolveHeuristic(tx, action: .markResolved, operatorName: "ravi", note: "recovered from carol by phone")
        node.stop()
        #expect(handled.status == .settled(.markResolved, linked: nil))
        #expect(handled.actions.map(\.operatorName) == ["asha", "asha", "ravi"])
    }

    @Test func aBanksHeuristicSweepWaitsForRecoveryToDeliverItsDecisions() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        var configuration = try banks.directory.loadConfiguration()
        configuration.participants[2].heuristic = HeuristicPolicy(afterMs: 0, commit: false)
        try banks.directory.writeConfiguration(configuration)
        #expect(try banks.directory.loadConfiguration().participants[2].heuristic == HeuristicPolicy(afterMs: 0, commit: false))
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.prepareEverywhere(tx, amount: .rupees(5))
        try banks.writeLog(commits: [tx])
        // sbi would roll back at once, but it was down with its coordinator, never waiting for
        // it: the COMMIT recovery sends reaches it before any sweep.
        let node = try await banks.start()
        node.stop()
        let audit = try banks.audit()
        #expect(audit.passed, "\(audit.violations)")
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_005))
        #expect(audit.heuristicCases.isEmpty, "no spurious mixed outcome")
    }

    @Test func aDamagedJournalIsRefusedWithItsOffset() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.rollBackAloneUnderCommit(tx)
        let node = try await banks.start()
        _ = try await node.driver.resolveHeuristic(tx, action: .markResolved, operatorName: "asha", note: "fixed by hand")
        node.stop()
        let path = banks.directory.reconciliationPath
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let whole = bytes.count
        // A torn final write is cut, and said so.
        bytes.append(contentsOf: [0x40, 0, 0, 0, 9])
        try bytes.write(to: URL(fileURLWithPath: path))
        let restarted = try await banks.start()
        restarted.stop()
        #expect(restarted.recovery.logNotes.contains { $0.contains("reconciliation.log") && $0.contains("torn") })
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == whole)
        // Damage inside a record with another after it is an error naming the byte.
        var damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        damaged[20] ^= 0xFF
        try damaged.write(to: URL(fileURLWithPath: path))
        do {
            _ = try await banks.start()
            Issue.record("started over a damaged reconciliation journal")
        } catch {
            #expect("\(error)".contains("byte 0"))
        }
    }
}
