import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// What the console reads from a running driver: the coordinator's copy, each participant's
/// health, and probes answered by the participants' own threads.
@Suite struct DriverInspectionTests {
    typealias B = ThreeBanks

    @Test func aSnapshotShowsATransactionInFlightAndStaysAsItWas() async throws {
        let (banks, events, node) = try await LiveFaultTests.start(); defer { banks.remove() }
        defer { node.stop() }
        let transfer = try await LiveFaultTests.transferWithSbiHeld(node, events, delayMs: 3_000, B.move(.rupees(7), from: (B.hdfc, B.alice), to: (B.sbi, B.carol))) {
            if case .voteReceived(_, B.hdfc, .yes, _) = $0 { true } else { false }
        }
        let snapshot = node.driver.snapshot()
        let inFlight = try #require(snapshot.transactions.values.first)
        #expect(snapshot.transactions.count == 1)
        #expect(inFlight.state == .preparing)
        #expect(inFlight.branches.map(\.status).contains(.voted(.yes)))
        #expect(snapshot.locks.heldCount(by: inFlight.id) == 2)
        #expect(snapshot.locks.mode(of: inFlight.id, on: ResourceID(participant: B.sbi, account: B.carol)) == .exclusive)
        let result = try await transfer.value
        #expect(result.outcome == .committed)
        // A copy: the engine moved on, the snapshot did not.
        #expect(snapshot.transactions[inFlight.id]?.state == .preparing)
        try await node.inject(.heal(B.sbi))
    }

    @Test func healthCountsWorkAndNamesTheParticipantThatIsDown() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        _ = try await node.driver.transfer(B.move(.rupees(1), from: (B.hdfc, B.alice), to: (B.icici, B.bob)))
        let before = node.driver.participantHealth
        #expect(before.map(\.participant) == [B.hdfc, B.icici, B.sbi])
        #expect(before.allSatisfy { !$0.down && $0.failure == nil })
        let hdfc = try #require(before.first)
        #expect(hdfc.batches > 0 && hdfc.messages >= 2 && hdfc.syncs > 0 && hdfc.recentSyncUs > 0)
        try await node.inject(.crashParticipant(B.icici))
        #expect(node.driver.participantHealth.map(\.down) == [false, true, false])
    }

    @Test func aHoldingProbeFreezesEveryBankAtOneInstant() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        try await node.inject(.crashParticipant(B.sbi))
        let result = await node.driver.probeParticipants(hold: true) { resource in resource.inDoubt().count }
        #expect(result.answers[B.hdfc]?.value == 0 && result.answers[B.icici]?.value == 0)
        #expect(result.answers[B.sbi]?.label == "down")
        #expect(!result.consistent, "a bank that is down is not part of the cut")
        try await node.inject(.restartParticipant(B.sbi))
        let whole = await node.driver.probeParticipants(hold: true) { resource in resource.id }
        #expect(whole.consistent && whole.coordinator != nil)
        #expect(whole.answers.compactMapValues(\.value) == [B.hdfc: B.hdfc, B.icici: B.icici, B.sbi: B.sbi])
        struct Refused: Error {}
        let failing = await node.driver.probeParticipants(hold: false) { _ -> Int in throw Refused() }
        #expect(failing.answers.values.allSatisfy { $0.label.hasPrefix("failed") })
    }

    @Test func holdingProbesAskedAtOnceDoNotWaitForEachOther() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        let driver = node.driver
        for _ in 0..<20 {
            // Submitted concurrently, the two reach the workers in different orders.
            async let first = driver.probeParticipants(hold: true, timeoutMs: 2_000) { $0.id }
            async let second = driver.probeParticipants(hold: true, timeoutMs: 2_000) { $0.id }
            let (one, two) = await (first, second)
            #expect(one.consistent && two.consistent)
            #expect(one.heldUs < 1_000_000 && two.heldUs < 1_000_000)
        }
    }
}
