import SandhiEngine
@testable import SandhiRuntime
import Testing

/// What the faults in force do to each message, decided under the driver's lock: the rules
/// the live tests rely on, checked one message at a time.
@Suite struct LiveFaultStateTests {
    let sbi = ParticipantID(validated: "sbi"), icici = ParticipantID(validated: "icici")
    func commit(_ n: UInt64) -> ParticipantMessage { .commit(TransactionID(epoch: 1, sequence: n)) }

    func isDelivered(_ route: LiveFaultState.Route) -> Bool { if case .deliver = route { true } else { false } }
    func isLost(_ route: LiveFaultState.Route) -> Bool { if case .lost = route { true } else { false } }
    func delayUs(_ route: LiveFaultState.Route) -> UInt64? { if case .delayed(_, let afterUs) = route { afterUs } else { nil } }

    @Test func aPartitionCutsBothDirectionsUntilHealedAndTouchesNoOtherLink() {
        var faults = LiveFaultState()
        #expect(!faults.engaged)
        faults.partition(sbi)
        #expect(faults.engaged)
        let toSbi = faults.route(commit(1), to: sbi, nowUs: 0)
        #expect(isLost(toSbi))
        let replyFromSbiLost = faults.losesReply(from: sbi)
        #expect(replyFromSbiLost)
        let toIcici = faults.route(commit(2), to: icici, nowUs: 0)
        #expect(isDelivered(toIcici))
        let replyFromIciciLost = faults.losesReply(from: icici)
        #expect(!replyFromIciciLost)
        #expect(faults.heal(sbi).isEmpty)
        #expect(!faults.engaged)
        let healed = faults.route(commit(3), to: sbi, nowUs: 0)
        #expect(isDelivered(healed))
        let replyAfterHealLost = faults.losesReply(from: sbi)
        #expect(!replyAfterHealLost)
        #expect(faults.counters == LiveFaultCounters(lost: 2, delayed: 0))
    }

    @Test func aCrashedParticipantLosesWhatIsSentToItButItsRepliesInFlightArrive() {
        var faults = LiveFaultState()
        faults.crash(sbi)
        let toCrashed = faults.route(commit(1), to: sbi, nowUs: 0)
        #expect(isLost(toCrashed))
        let replyFromSbiLost = faults.losesReply(from: sbi)
        #expect(!replyFromSbiLost)
        faults.restart(sbi)
        #expect(!faults.engaged)
        #expect(faults.active == [])
    }

    @Test func aDelayThatShrinksOrEndsNeverLetsALaterMessageOvertake() {
        var faults = LiveFaultState()
        _ = faults.setDelay(sbi, delayMs: 100)
        #expect(delayUs(faults.route(commit(1), to: sbi, nowUs: 0)) == 100_000)
        _ = faults.setDelay(sbi, delayMs: 10)
        // Due at 100ms, behind the first, not at 11ms.
        #expect(delayUs(faults.route(commit(2), to: sbi, nowUs: 1_000)) == 99_000)
        #expect(delayUs(faults.route(commit(3), to: sbi, nowUs: 95_000)) == 10_000)
        #expect(faults.takeDue(nowUs: 99_999).isEmpty)
        #expect(faults.takeDue(nowUs: 100_000).map(\.1) == [commit(1), commit(2)])
        // The delay ends: what it still holds is released at once, in order, before anything new.
        #expect(faults.setDelay(sbi, delayMs: 0) == [commit(3)])
        #expect(!faults.engaged)
        #expect(faults.counters == LiveFaultCounters(lost: 0, delayed: 3))
    }

    @Test func heldMessagesToAParticipantThatWentDownAreLostWhenDue() {
        var faults = LiveFaultState()
        _ = faults.setDelay(sbi, delayMs: 5)
        _ = faults.route(commit(1), to: sbi, nowUs: 0)
        faults.crash(sbi)
        #expect(faults.takeDue(nowUs: 5_000).isEmpty)
        #expect(faults.counters.lost == 1)
    }

    @Test func aDelayHoldsAtMostItsBoundAndLosesTheRest() {
        var faults = LiveFaultState(maxDelayed: 2)
        _ = faults.setDelay(sbi, delayMs: 5)
        #expect(delayUs(faults.route(commit(1), to: sbi, nowUs: 0)) != nil)
        #expect(delayUs(faults.route(commit(2), to: sbi, nowUs: 0)) != nil)
        let overBound = faults.route(commit(3), to: sbi, nowUs: 0)
        #expect(isLost(overBound))
    }

    @Test func lossTakesRoughlyItsShareAndNothingAtZero() {
        var faults = LiveFaultState()
        faults.setDrop(sbi, perMille: 300)
        let lost = (0..<10_000).filter { isLost(faults.route(commit(UInt64($0)), to: sbi, nowUs: 0)) }.count
        #expect((2_700...3_300).contains(lost))
        faults.setDrop(sbi, perMille: 0)
        #expect(!faults.engaged)
    }

    @Test func theActiveFaultsAreListedCoordinatorFirstThenByParticipant() {
        var faults = LiveFaultState()
        faults.setDrop(sbi, perMille: 250)
        faults.crash(icici)
        faults.partition(sbi)
        faults.logSyncFailureArmed = true
        #expect(faults.active == [.failNextLogSync, .crashParticipant(icici), .partition(sbi), .dropMessages(sbi, perMille: 250)])
    }
}
