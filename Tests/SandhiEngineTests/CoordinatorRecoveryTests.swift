// Recovery inputs: a COMMIT record without END, and participants in doubt without a record.
import Testing
import SandhiEngine

@Suite("Coordinator recovery")
struct CoordinatorRecoveryTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, icici = Fixture.icici, sbi = Fixture.sbi

    @Test func recoverCommittedDrivesCommitUntilEveryoneAcknowledges() throws {
        var h = CoordinatorHarness { $0.resendInitialMs = 20 }
        let effects = h.handle(.recoverCommitted(t1, participants: [hdfc, sbi]))

        #expect(h.state(t1) == .committing)
        #expect(effects.committed == [hdfc, sbi])
        #expect(effects.rolledBack.isEmpty)
        #expect(effects.appends.isEmpty, "the COMMIT record is already in the log")
        #expect(effects.decisions == [Decision(transaction: t1, outcome: .committed)])
        #expect(effects.events.contains(.recovered(t1, decision: .committed, participants: [hdfc, sbi])))
        #expect(effects.timersSet.map(\.timer.kind) == [.resend])
        #expect(effects.timersSet.map(\.afterUs) == [20_000])

        h.ack(t1, sbi)
        let resent = h.fire(try #require(h.liveTimer(of: t1)))
        #expect(resent.committed == [hdfc], "only the participant still silent")

        let done = h.ack(t1, hdfc)
        #expect(done.appends == [Appended(record: .end(transaction: t1), forced: false)])
        #expect(done.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(h.state(t1) == nil)
        #expect(h.liveTimers.isEmpty)
        #expect(h.history.rolledBack.isEmpty)
    }

    @Test func recoverInDoubtDrivesRollbackAndLogsNothing() throws {
        var h = CoordinatorHarness()
        let effects = h.handle(.recoverInDoubt(t1, participants: [icici, sbi]))

        #expect(h.state(t1) == .aborting)
        #expect(effects.rolledBack == [icici, sbi])
        #expect(effects.committed.isEmpty)
        let reason = try #require(effects.decisions.first?.outcome.abortReason)
        #expect(effects.decisions.count == 1)
        #expect(reason.contains("presumed abort"))
        #expect(effects.events.contains(.recovered(t1, decision: .aborted(reason: reason, cause: .presumedAbort), participants: [icici, sbi])))

        let resent = h.fire(try #require(h.liveTimer(of: t1)))
        #expect(resent.rolledBack == [icici, sbi])

        // a prepared participant re-sending its YES keeps the transaction waiting for its ack
        #expect(h.vote(t1, icici, .yes).sends.isEmpty)
        h.ack(t1, icici)
        let done = h.ack(t1, sbi)
        #expect(done.finishes == [Decision(transaction: t1, outcome: .aborted(reason: reason, cause: .presumedAbort))])
        #expect(h.history.appends.isEmpty, "presumed abort: nothing is ever logged for an abort")
        #expect(h.history.committed.isEmpty)
        #expect(h.state(t1) == nil)
    }

    @Test func recoveringATransactionAlreadyBeingDrivenIsIgnored() {
        var h = CoordinatorHarness()
        h.handle(.recoverCommitted(t1, participants: [hdfc]))
        let before = h.transaction(t1)
        #expect(h.handle(.recoverCommitted(t1, participants: [hdfc, sbi])).isEmpty)
        #expect(h.handle(.recoverInDoubt(t1, participants: [hdfc])).isEmpty)
        #expect(h.transaction(t1) == before)
        #expect(h.history.decisions.count == 1)
    }

    @Test func recoveredTransactionsAreIndependent() {
        var h = CoordinatorHarness()
        let t2 = Fixture.tx(2)
        h.handle(.recoverCommitted(t1, participants: [hdfc]))
        h.handle(.recoverInDoubt(t2, participants: [hdfc]))
        #expect(h.coordinator.inFlightCount == 2)
        #expect(h.history.sends == [Sent(participant: hdfc, message: .commit(t1)), Sent(participant: hdfc, message: .rollback(t2))])
        h.ack(t2, hdfc)
        #expect(h.state(t1) == .committing)
        #expect(h.state(t2) == nil)
    }
}

@Suite("Coordinator admission")
struct CoordinatorAdmissionTests {
    let hdfc = Fixture.hdfc, sbi = Fixture.sbi

    @Test func maxInFlightRejectsBeginWithAnAbortedOutcome() throws {
        var h = CoordinatorHarness { $0.maxInFlight = 2 }
        h.begin(Fixture.tx(1), [Fixture.debit(hdfc)])
        h.begin(Fixture.tx(2), [Fixture.debit(hdfc)])
        let t3 = Fixture.tx(3)
        let effects = h.begin(t3, [Fixture.debit(hdfc)])

        let decision = try #require(effects.decisions.first)
        #expect(effects.decisions.count == 1)
        #expect(decision.transaction == t3)
        #expect(decision.outcome.abortReason?.contains("capacity") == true)
        #expect(effects.finishes == [decision], "rejected transactions are decided and finished at once")
        #expect(effects.events.contains { if case .rejected(t3, _) = $0 { return true } else { return false } })
        #expect(effects.sends.isEmpty && effects.timersSet.isEmpty)
        #expect(h.state(t3) == nil)
        #expect(h.coordinator.inFlightCount == 2)
        #expect(h.requestCommit(t3).isEmpty, "a rejected transaction cannot be committed")

        // Room again once one finishes.
        h.requestAbort(Fixture.tx(1))
        let t4 = Fixture.tx(4)
        let admitted = h.begin(t4, [Fixture.debit(hdfc)])
        #expect(admitted.decisions.isEmpty)
        #expect(h.state(t4) == .active)
    }

    @Test func transactionsInPhaseTwoCountTowardsTheLimit() {
        var h = CoordinatorHarness { $0.maxInFlight = 1 }
        h.prepare(Fixture.tx(1), [Fixture.debit(hdfc)], votes: [(hdfc, .yes)])
        h.durable(Fixture.tx(1))
        #expect(h.begin(Fixture.tx(2), [Fixture.debit(hdfc)]).decisions.count == 1)
        h.ack(Fixture.tx(1), hdfc)
        #expect(h.begin(Fixture.tx(3), [Fixture.debit(hdfc)]).decisions.isEmpty)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var name: String
        var branches: [Branch]
        var reasonContains: String
        var testDescription: String { name }
    }

    static let invalid: [Invalid] = [
        Invalid(name: "no branches", branches: [], reasonContains: "at least one participant"),
        Invalid(name: "duplicate participant",
                branches: [Fixture.debit(Fixture.hdfc), Fixture.credit(Fixture.sbi), Fixture.credit(Fixture.hdfc)],
                reasonContains: "hdfc appears twice"),
        Invalid(name: "empty branch",
                branches: [Fixture.debit(Fixture.hdfc), Branch(participant: Fixture.sbi, operations: [])],
                reasonContains: "sbi has no operations"),
        Invalid(name: "too many participants",
                branches: (0...DecisionRecord.maxParticipants).map { Fixture.debit(ParticipantID(validated: "p\($0)")) },
                reasonContains: "more than 256 participants"),
        Invalid(name: "too many operations",
                branches: [Branch(participant: Fixture.hdfc,
                                  operations: Array(repeating: .read(account: Fixture.account("a")), count: OperationCodec.maxOperations + 1))],
                reasonContains: "too many operations"),
    ]

    @Test(arguments: invalid)
    func validationRejectsMalformedTransactions(_ example: Invalid) throws {
        #expect(Coordinator.validate(example.branches)?.contains(example.reasonContains) == true)

        var h = CoordinatorHarness()
        let tx = Fixture.tx(9)
        let effects = h.begin(tx, example.branches)
        let decision = try #require(effects.decisions.first)
        #expect(decision.outcome.abortReason?.contains(example.reasonContains) == true)
        #expect(effects.finishes == [decision])
        #expect(effects.sends.isEmpty)
        #expect(h.state(tx) == nil)
        #expect(h.coordinator.inFlightCount == 0)
    }

    @Test func validationAcceptsTheLimits() {
        let most = (0..<DecisionRecord.maxParticipants).map { Fixture.read(ParticipantID(validated: "p\($0)")) }
        #expect(Coordinator.validate(most) == nil)
        let longest = Branch(participant: hdfc, operations: Array(repeating: .read(account: Fixture.account("a")),
                                                                  count: OperationCodec.maxOperations))
        #expect(Coordinator.validate([longest]) == nil)
    }
}
