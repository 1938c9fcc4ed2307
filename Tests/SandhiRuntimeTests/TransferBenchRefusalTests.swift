import SandhiEngine
import SandhiParticipants
@testable import SandhiRuntime
import SandhiTestSupport
import Testing

/// `sandhi bench` counts a participant's refusal for insufficient funds (the workload's own
/// doing: it draws amounts at random) apart from other refusals, by the refusal's case.
@Suite struct TransferBenchRefusalTests {
    typealias B = ThreeBanks

    @Test func theLabelComesFromTheRefusalsCase() {
        let alice = ResourceID(participant: B.hdfc, account: B.alice)
        let tx = TransactionID(epoch: 1, sequence: 1)
        let labels: [(AbortCause, Refusal?, String)] = [
            (.participantRefused, .insufficientFunds(alice, balance: .rupees(1), debit: .rupees(2)), "insufficient-funds"),
            // PostgreSQL's CHECK on a balance is insufficient funds too, told without figures.
            (.participantRefused, .negativeBalance(B.hdfc, tx), "insufficient-funds"),
            (.participantRefused, .unknownAccount(alice), "participant-refused"),
            // Words that read like insufficient funds make no difference.
            (.participantRefused, .gidInUse(B.hdfc, tx, instance: "insufficient funds"), "participant-refused"),
            (.participantBusy, .lockedBy(alice, holder: tx), "participant-busy"),
            (.participantBusy, .lockedInDatabase(B.hdfc, tx), "participant-busy"),
            (.deadlock, nil, "deadlock"),
        ]
        for (cause, refusal, label) in labels {
            #expect(TransferBench.causeLabel(cause, refusal: refusal) == label, "\(cause) \(refusal.map(\.description) ?? "-")")
        }
    }

    /// Amounts up to a hundred times every balance: nearly every debit is refused for
    /// insufficient funds, each counted as such and, being final, never run again.
    @Test func aBenchCountsInsufficientFundsAndDoesNotRetryThem() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        var options = TransferBench.Options()
        options.clients = 1 // no lock contention: every abort here is a refusal
        options.durationMs = 1_000
        options.maxAmount = .rupees(100_000)
        // A run whose client task the loaded machine started only after its deadline ran
        // nothing, and shows nothing: run again (a few times at most).
        var report = await TransferBench.run(driver: node.driver, accounts: [B.hdfc: [B.alice], B.icici: [B.bob], B.sbi: [B.carol]],
                                             options: options)
        for _ in 0..<3 where report.abortsByCause.isEmpty && report.haltedReason == nil {
            report = await TransferBench.run(driver: node.driver, accounts: [B.hdfc: [B.alice], B.icici: [B.bob], B.sbi: [B.carol]],
                                             options: options)
        }
        node.stop()
        #expect(report.haltedReason == nil)
        try #require(report.attempts > 0)
        #expect(report.abortsByCause["insufficient-funds", default: 0] > 0, "\(report.abortsByCause)")
        #expect(report.abortsByCause.keys.sorted() == ["insufficient-funds"], "\(report.abortsByCause)")
        #expect(report.retries == 0, "insufficient funds is final: \(report.retries) retries")
        #expect(report.attempts == report.committed + report.aborted)
        #expect(try banks.audit().violations == [])
    }

    /// A run asked for a minimum goes on past its duration until the minimum has committed:
    /// a test that needs that much history gets it on a loaded machine too.
    @Test func aRunGoesOnPastItsDurationUntilItsMinimumHasCommitted() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        var options = TransferBench.Options()
        options.clients = 2
        options.durationMs = 1 // over before most transfers could commit
        options.minimumCommitted = 40
        let report = await TransferBench.run(driver: node.driver, accounts: [B.hdfc: [B.alice], B.icici: [B.bob], B.sbi: [B.carol]],
                                             options: options)
        node.stop()
        #expect(report.haltedReason == nil)
        #expect(report.committed >= 40, "\(report.committed) committed")
        #expect(try banks.audit().violations == [])
    }
}
