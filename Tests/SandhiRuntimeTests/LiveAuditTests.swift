import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The live audit on a running node: it agrees with `InvariantAudit` run after the node
/// stops, passes while transfers are in flight (the cut is consistent), names a planted
/// violation, follows a heuristic case through its settlement, and names a bank it could not
/// read instead of judging it.
@Suite struct LiveAuditTests {
    typealias B = ThreeBanks

    /// The violations of one invariant, the way both audits word them.
    static func violations(_ list: [String], _ prefix: String) -> Set<String> {
        Set(list.filter { $0.hasPrefix(prefix) })
    }

    @Test func passesWhileTransfersRunAndAgreesWithTheAuditAtRest() async throws {
        let banks = try SpreadBanks(); defer { banks.remove() }
        let (node, workload) = try await LiveWorkloadTests.start(banks.directory, LiveWorkloadTests.options(.random, rate: LiveWorkload.unlimited, maxInFlight: 32))
        #expect(await eventually { workload.counters.committed >= 20 })
        // Mid-flight, money a transfer has committed at one bank and not yet at the other is in
        // neither's balances; the cut finds it prepared there, decided COMMIT, and counts it.
        // Audit until a cut lands in that window: every audit on the way must pass.
        var midTransfer: LiveAudit?
        let deadlineUs = MonotonicClock.nowUs() + 5_000_000
        while midTransfer == nil && MonotonicClock.nowUs() < deadlineUs {
            let live = try await node.liveAudit()
            #expect(live.passed, "\(live.violations)")
            #expect(live.consistent && live.unavailable.isEmpty)
            #expect(live.minted == banks.total && live.total + live.decidedInFlight == banks.total)
            if live.decidedInFlight != .zero { midTransfer = live }
        }
        #expect(midTransfer != nil, "no cut landed between a transfer's two commits")
        await workload.stop()
        #expect(await eventually { node.driver.inFlightCount == 0 })
        let live = try await node.liveAudit()
        node.stop()
        let atRest = try banks.directory.auditAtRest()
        #expect(live.passed && atRest.passed)
        #expect(live.preparedBranches == 0 && live.decidedInFlight == .zero && live.inFlight == 0)
        #expect(live.total == atRest.total && live.minted == atRest.minted)
        #expect(live.banks.map(\.participant) == atRest.banks.map(\.participant))
        #expect(live.banks.map(\.total) == atRest.banks.map(\.total))
        #expect(live.banks.map(\.committedBranches) == atRest.banks.map(\.committedBranches))
    }

    @Test func namesAPlantedHalfAppliedTransactionAsTheAuditAtRestDoes() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        try await banks.start().stop() // epoch 1 in the log, so the planted branch is from a past run
        let tx = TransactionID(epoch: 1, sequence: 99)
        let hdfc = try banks.bank(B.hdfc)
        // hdfc commits its half of a transfer to sbi; sbi never hears of it: ₹5 vanish.
        _ = try hdfc.process([.prepare(tx, operations: [.debit(account: B.alice, amount: .rupees(5))], writers: [B.hdfc, B.sbi])])
        _ = try hdfc.process([.commit(tx)])
        try hdfc.makeDurable()
        hdfc.close()

        let node = try await banks.start()
        let live = try await node.liveAudit()
        node.stop()
        #expect(!live.passed)
        #expect(live.violations.contains("atomicity: \(tx) committed at hdfc but not at sbi"))
        #expect(live.violations.contains { $0.hasPrefix("conservation:") && $0.contains("difference -500") })
        let atRest = try banks.audit()
        for prefix in ["atomicity:", "conservation:"] {
            #expect(Self.violations(live.violations, prefix) == Self.violations(atRest.violations, prefix))
        }
    }

    @Test func followsAHeuristicCaseThroughItsSettlement() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let tx = TransactionID(epoch: 1, sequence: 1)
        try banks.rollBackAloneUnderCommit(tx)
        let node = try await banks.start()
        // The books are out by the case's ₹100, and the case says so: it passes, with a note.
        let open = try await node.liveAudit()
        #expect(open.passed, "\(open.violations)")
        #expect(open.openImbalance == .rupees(-100))
        #expect(open.total == open.minted + open.openImbalance)
        #expect(open.notes.contains { $0.contains("1 unsettled case") })
        #expect(open.heuristicCases.map(\.transaction) == [tx])

        _ = try await node.driver.resolveHeuristic(tx, action: .retryCommit, operatorName: "asha", note: "sbi lost the credit")
        let settled = try await node.liveAudit()
        node.stop()
        #expect(settled.passed, "\(settled.violations)")
        #expect(settled.openImbalance == .zero && settled.total == settled.minted)
        let atRest = try banks.audit()
        #expect(atRest.passed && atRest.total == settled.total && atRest.openImbalance == settled.openImbalance)
    }

    @Test func aBankThatIsDownIsNamedNotJudged() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        try await node.inject(.crashParticipant(B.icici))
        let partial = try await node.liveAudit()
        #expect(partial.passed)
        #expect(!partial.consistent)
        #expect(partial.unavailable == [B.icici: "down"])
        #expect(partial.banks.map(\.participant) == [B.hdfc, B.sbi])
        #expect(partial.notes.contains { $0.hasPrefix("not read: icici (down)") })
        try await node.inject(.restartParticipant(B.icici))
        let whole = try await node.liveAudit()
        #expect(whole.passed && whole.consistent && whole.unavailable.isEmpty && whole.total == .rupees(3_000))
    }

    @Test func refusesWhileTheCoordinatorIsDown() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        try await node.inject(.crashCoordinator)
        await #expect(throws: CoordinatorError.self) { _ = try await node.liveAudit() }
        try await node.inject(.restartCoordinator)
        #expect(try await node.liveAudit().passed)
    }
}
