import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The checker must be able to fail: plant each violation and see it named.
@Suite struct InvariantAuditTests {
    typealias B = ThreeBanks

    @Test func aCleanDirectoryPasses() throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let audit = try banks.audit()
        #expect(audit.passed)
        #expect(audit.total == .rupees(3_000) && audit.minted == .rupees(3_000))
    }

    @Test func aHalfAppliedTransactionIsCaught() throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        let hdfc = try banks.bank(B.hdfc)
        // hdfc commits its half; sbi never prepares: money vanishes and atomicity is broken.
        _ = try hdfc.process([.prepare(tx, operations: [.debit(account: B.alice, amount: .rupees(5))], writers: [B.hdfc, B.sbi])])
        _ = try hdfc.process([.commit(tx)])
        hdfc.close()
        let audit = try banks.audit()
        #expect(audit.violations.contains { $0.contains("atomicity: \(tx) committed at hdfc but not at sbi") })
        #expect(audit.violations.contains { $0.hasPrefix("conservation:") })
    }

    @Test func preparedLeftoversAndUnfinishedCommitsAreCaught() throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 9)
        let sbi = try banks.bank(B.sbi)
        _ = try sbi.process([.prepare(tx, operations: [.credit(account: B.carol, amount: .rupees(1))], writers: [B.sbi])])
        sbi.close()
        let (store, _) = try DecisionLogStore.open(directory: banks.directory.coordinatorPath, logger: B.logger)
        _ = try store.append([.commit(transaction: tx, participants: [B.sbi])])
        try store.sync()
        store.close()
        let audit = try banks.audit()
        #expect(audit.violations.contains { $0.contains("sbi holds 1 prepared transaction(s) and 1 lock(s)") })
        #expect(audit.violations.contains { $0.contains("1 committed transaction(s) not yet acknowledged") })
    }
}
