// Duplicate, late and crossing messages: they never change a decided outcome, and a
// participant that may hold state for a transaction with no COMMIT always hears ROLLBACK.
import Testing
import SandhiEngine

@Suite("Coordinator late and duplicate messages")
struct CoordinatorLateMessageTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, icici = Fixture.icici, axis = Fixture.axis, sbi = Fixture.sbi

    @Test(arguments: [Vote.yes, .readOnly, Fixture.no(Fixture.hdfc)])
    func duplicateVoteWhilePreparingIsLateAndChangesNothing(duplicate: Vote) {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        h.vote(t1, hdfc, .yes)
        let before = h.transaction(t1)

        let effects = h.vote(t1, hdfc, duplicate)
        #expect(effects.lateMessages.count == 1)
        #expect(effects.sends.isEmpty)
        #expect(effects.decisions.isEmpty)
        #expect(h.transaction(t1) == before, "the first vote stands")

        // The real last vote still decides.
        #expect(h.vote(t1, sbi, .yes).appends.count == 1)
    }

    @Test func duplicateVoteWhilePreparedIsLate() {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, .yes), (sbi, .yes)])
        let before = h.transaction(t1)
        let effects = h.vote(t1, sbi, .yes)
        #expect(effects.lateMessages.count == 1)
        #expect(effects.sends.isEmpty && effects.appends.isEmpty)
        #expect(h.transaction(t1) == before)
    }

    @Test func duplicateYesWhileCommittingIsLateAndSendsNothing() {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(t1)
        let before = h.transaction(t1)
        let effects = h.vote(t1, hdfc, .yes)
        #expect(effects.lateMessages.count == 1)
        #expect(effects.sends.isEmpty, "COMMIT is already on its way and will be resent")
        #expect(h.transaction(t1) == before)
    }

    @Test func voteBeforePrepareWasSentIsLate() {
        var h = CoordinatorHarness()
        h.begin(t1, [Fixture.debit(hdfc)])
        let effects = h.vote(t1, hdfc, .yes)
        #expect(effects.lateMessages.count == 1)
        #expect(h.state(t1) == .active)
        #expect(h.status(t1, hdfc) == .idle)
    }

    @Test func duplicateAckIsLateAndDoesNotFinishEarly() {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(t1)
        h.ack(t1, hdfc)
        let before = h.transaction(t1)

        let effects = h.ack(t1, hdfc)
        #expect(effects.lateMessages == ["duplicate or unexpected acknowledgement"])
        #expect(effects.finishes.isEmpty)
        #expect(effects.appends.isEmpty)
        #expect(h.transaction(t1) == before)
    }

    @Test func ackFromAReadOnlyVoterOrAStrangerIsLate() {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.read(axis)], votes: [(hdfc, .yes), (axis, .readOnly)])
        h.durable(t1)
        let before = h.transaction(t1)
        #expect(h.ack(t1, axis).lateMessages.count == 1)
        #expect(h.ack(t1, sbi).lateMessages.count == 1)
        #expect(h.transaction(t1) == before)
    }

    @Test func ackWhilePreparingOrPreparedIsLate() {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        #expect(h.ack(t1, hdfc).lateMessages.count == 1)
        h.vote(t1, hdfc, .yes); h.vote(t1, sbi, .yes)
        #expect(h.ack(t1, hdfc).lateMessages.count == 1)
        #expect(h.state(t1) == .prepared)
    }

    @Test func ackForAnUnknownTransactionIsLate() {
        var h = CoordinatorHarness()
        let effects = h.ack(t1, hdfc)
        #expect(effects.lateMessages.count == 1)
        #expect(effects.sends.isEmpty)
    }

    // MARK: presumed abort for votes nobody expects

    @Test func yesForAnUnknownTransactionIsAnsweredWithRollback() {
        var h = CoordinatorHarness()
        let effects = h.vote(t1, hdfc, .yes)
        #expect(effects.sends == [Sent(participant: hdfc, message: .rollback(t1))])
        #expect(effects.lateMessages.count == 1)
        #expect(effects.decisions.isEmpty)
        #expect(h.coordinator.transactions.isEmpty, "answering does not resurrect the transaction")
    }

    @Test(arguments: [Vote.readOnly, Fixture.no(Fixture.hdfc)])
    func otherVotesForAnUnknownTransactionAreOnlyLate(vote: Vote) {
        var h = CoordinatorHarness()
        let effects = h.vote(t1, hdfc, vote)
        #expect(effects.sends.isEmpty, "nothing is held, so there is nothing to roll back")
        #expect(effects.lateMessages.count == 1)
    }

    @Test func yesFromAParticipantOutsideTheTransactionIsAnsweredWithRollback() {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc)])
        let effects = h.vote(t1, sbi, .yes)
        #expect(effects.sends == [Sent(participant: sbi, message: .rollback(t1))])
        #expect(h.state(t1) == .preparing)
        #expect(h.status(t1, hdfc) == .awaitingVote(sentAtUs: h.nowUs))
    }

    @Test(arguments: [true, false])
    func yesAfterTheTransactionWasForgottenIsAnsweredWithRollback(committed: Bool) {
        var h = CoordinatorHarness()
        if committed {
            h.prepare(t1, [Fixture.debit(hdfc)], votes: [(hdfc, .yes)])
            h.durable(t1)
        } else {
            h.prepare(t1, [Fixture.debit(hdfc)], votes: [(hdfc, Fixture.no(hdfc))])
        }
        if h.state(t1) != nil { h.ack(t1, hdfc) }
        #expect(h.state(t1) == nil)
        let finishedBefore = h.history.finishes

        // A duplicate of hdfc's YES, delayed in the network. A participant that already
        // committed treats the ROLLBACK as a no-op (it acknowledges an unknown transaction).
        let effects = h.vote(t1, hdfc, .yes)
        #expect(effects.rolledBack == [hdfc])
        #expect(effects.decisions.isEmpty && effects.finishes.isEmpty)
        #expect(h.history.finishes == finishedBefore)
    }

    // MARK: votes crossing our ROLLBACK

    @Test func yesCrossingOurRollbackKeepsWaitingForTheAck() {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)])
        h.vote(t1, hdfc, Fixture.no(hdfc))
        #expect(h.history.rolledBack == [icici, sbi])

        // icici prepared before our ROLLBACK landed: it holds state until the ROLLBACK arrives.
        let crossing = h.vote(t1, icici, .yes)
        #expect(crossing.events.contains { if case .voteReceived(t1, icici, .yes, _) = $0 { return true } else { return false } })
        #expect(crossing.sends.isEmpty, "the ROLLBACK is already on its way")
        #expect(crossing.finishes.isEmpty)
        #expect(h.state(t1) == .aborting)
        #expect(h.status(t1, icici) == .awaitingAck(sentAtUs: h.nowUs))

        h.ack(t1, sbi)
        #expect(h.state(t1) == .aborting, "icici has not acknowledged yet")
        let done = h.ack(t1, icici)
        #expect(done.finishes.count == 1)
        #expect(h.state(t1) == nil)
        #expect(h.history.committed.isEmpty)
        #expect(h.history.appends.isEmpty)
    }

    @Test(arguments: [Vote.no(.unknownAccount(ResourceID(participant: Fixture.icici, account: Fixture.account("savings")))), .readOnly])
    func voteThatHoldsNothingCrossingOurRollbackCountsAsAcknowledged(vote: Vote) {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)])
        h.vote(t1, hdfc, Fixture.no(hdfc))
        h.ack(t1, sbi)

        let crossing = h.vote(t1, icici, vote)
        #expect(crossing.finishes.count == 1, "icici holds nothing, so nobody is left to hear ROLLBACK")
        #expect(h.state(t1) == nil)
        #expect(h.liveTimers.isEmpty)
        // and its ROLLBACK acknowledgement, when it comes, is late
        #expect(h.ack(t1, icici).lateMessages.count == 1)
    }

    /// ENGINE BUG (see the report): a ROLLBACK that overtakes its PREPARE is acknowledged by a
    /// participant that holds nothing yet; when the delayed PREPARE lands, that participant
    /// prepares and votes YES. While the transaction is still aborting (another participant has
    /// not acknowledged) the coordinator files that YES as a late message and sends nothing, so
    /// the participant stays prepared, holding its locks, forever. A forgotten transaction gets
    /// ROLLBACK for the same vote; an aborting one must too.
    @Test func yesAfterOurRollbackWasAcknowledgedIsAnsweredWithRollback() {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)])
        h.vote(t1, hdfc, Fixture.no(hdfc))
        h.ack(t1, icici) // ROLLBACK overtook PREPARE at icici: "never prepared, acknowledged"
        #expect(h.state(t1) == .aborting, "sbi has not acknowledged yet")

        let effects = h.vote(t1, icici, .yes) // the delayed PREPARE landed; icici is now prepared
        #expect(effects.rolledBack == [icici], "icici holds prepared state for an aborted transaction")
    }
}
