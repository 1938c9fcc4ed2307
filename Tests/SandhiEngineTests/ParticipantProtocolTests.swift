// The participant side of 2PC: branch lifecycle, exclusive locks, duplicates and overtaking.
import Testing
import SandhiEngine

@Suite("Participant protocol")
struct ParticipantProtocolTests {
    let me = Fixture.hdfc
    let t1 = Fixture.tx(1), t2 = Fixture.tx(2), t3 = Fixture.tx(3)
    let savings = Fixture.account("savings"), current = Fixture.account("current"), audit = Fixture.account("audit")
    let writers = [Fixture.hdfc, Fixture.sbi]

    var transfer: [Operation] {
        [.debit(account: savings, amount: Paise(5_000)), .credit(account: current, amount: Paise(5_000)), .read(account: audit)]
    }

    func prepared(_ tx: TransactionID, _ operations: [Operation], into participant: inout ParticipantProtocol) {
        _ = participant.handle(.message(.prepare(tx, operations: operations, writers: writers)))
        #expect(participant.handle(.staged(tx, failure: nil)) == [.reply(.vote(tx, .yes))])
    }

    /// Simulator seed 3765: a bank committed t1 and acknowledged; the coordinator finished t1,
    /// then answered a stale duplicate of the bank's YES with ROLLBACK ("whoever is prepared
    /// for a transaction we hold no decision for must roll back"), and crashed before its END
    /// was on the disk. The bank, restarted meanwhile, found nothing to roll back; the
    /// coordinator's next incarnation then resent COMMIT. Refusing it ("which rolled it back")
    /// left t1 in flight for good. A ROLLBACK that found nothing must still refuse a late
    /// PREPARE, but a COMMIT of a branch not prepared here is already done.
    @Test func aCommitAfterARollbackThatFoundNothingIsAcknowledged() {
        var p = ParticipantProtocol(participant: me)
        #expect(p.handle(.message(.rollback(t1))) == [.reply(.acknowledged(t1))])
        #expect(p.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))], "committed in storage before a restart, perhaps")
        #expect(p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
                == [.reply(.vote(t1, .no(.alreadyRolledBack(me, t1))))], "a PREPARE the ROLLBACK overtook is still refused")
    }

    /// A COMMIT after a ROLLBACK that discarded a prepared branch is impossible, and refused.
    @Test func aCommitAfterARollbackThatDiscardedTheBranchIsRefused() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        #expect(p.handle(.message(.rollback(t1))) == [.discard(t1), .reply(.acknowledged(t1))])
        guard case .refuse(t1, _)? = p.handle(.message(.commit(t1))).first else {
            Issue.record("a COMMIT of a branch rolled back here must be refused")
            return
        }
    }

    @Test func aStaleDuplicateOfACommittedPrepareIsDroppedWithoutAVote() {
        // Restarted (a fresh machine), this participant no longer remembers committing t1; its
        // storage does, and says so while staging the duplicate.
        var p = ParticipantProtocol(participant: me)
        let operations: [Operation] = [.debit(account: Fixture.account("x"), amount: Paise(1))]
        #expect(p.handle(.message(.prepare(t1, operations: operations, writers: writers))) == [.stage(t1, operations: operations, writers: writers)])
        #expect(p.handle(.alreadyCommitted(t1)).isEmpty, "no vote: the coordinator has its outcome")
        #expect(p.branches[t1] == nil && p.lockOwners.isEmpty)
        #expect(p.handle(.message(.prepare(t1, operations: operations, writers: writers))).isEmpty, "remembered as committed now")
        #expect(p.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))])
    }

    @Test func anInquiryRepeatsTheVoteOfEveryPreparedBranchOnly() {
        var p = ParticipantProtocol(participant: me)
        prepared(t2, [.debit(account: Fixture.account("x"), amount: Paise(1))], into: &p)
        prepared(t1, [.debit(account: Fixture.account("y"), amount: Paise(1))], into: &p)
        _ = p.handle(.message(.prepare(t3, operations: [.debit(account: Fixture.account("z"), amount: Paise(1))], writers: writers)))
        // t3 is still staging: its vote is not known yet, so it is not repeated.
        #expect(p.handle(.inquire) == [.reply(.vote(t1, .yes)), .reply(.vote(t2, .yes))])
        _ = p.handle(.message(.commit(t1)))
        #expect(p.handle(.inquire) == [.reply(.vote(t2, .yes))])
        #expect(p.branches[t2] != nil, "asking changes nothing")
    }

    // MARK: impossible requests

    @Test func aCommitAfterARollbackIsRefusedNotObeyedAndNotAcknowledged() {
        // Only a coordinator that said COMMIT before its decision was durable, then lost the
        // decision and presumed abort, can send this. The bank must neither crash nor comply.
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        #expect(p.handle(.message(.rollback(t1))) == [.discard(t1), .reply(.acknowledged(t1))])
        let effects = p.handle(.message(.commit(t1)))
        #expect(effects == [.refuse(t1, reason: "COMMIT for \(t1) reached \(me), which rolled it back")])
        #expect(p.branches[t1] == nil && p.lockOwners.isEmpty)
        #expect(p.handle(.message(.rollback(t1))) == [.reply(.acknowledged(t1))], "still rolled back")
    }

    @Test func aCommitBeforeTheBranchIsPreparedIsRefused() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        let effects = p.handle(.message(.commit(t1)))
        #expect(effects == [.refuse(t1, reason: "COMMIT for \(t1) reached \(me) before its branch was prepared")])
        #expect(p.branches[t1] == .staging(operations: transfer, writers: writers, readOnly: false, rollbackRequested: false), "unchanged")
    }

    // MARK: prepare

    @Test func prepareLocksWrittenAccountsAndStages() {
        var p = ParticipantProtocol(participant: me)
        let effects = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))

        #expect(effects == [.stage(t1, operations: transfer, writers: writers)], "no vote before storage has staged")
        #expect(p.lockOwners == [savings: t1, current: t1], "written accounts are locked; the read is not")
        #expect(p.branches[t1] == .staging(operations: transfer, writers: writers, readOnly: false, rollbackRequested: false))
        #expect(p.preparedCount == 0)
    }

    @Test func stagedOkVotesYesAndKeepsTheLocks() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        let effects = p.handle(.staged(t1, failure: nil))

        #expect(effects == [.reply(.vote(t1, .yes))])
        #expect(p.branches[t1] == .prepared(operations: transfer, writers: writers))
        #expect(p.preparedCount == 1)
        #expect(p.lockOwners == [savings: t1, current: t1])
    }

    @Test func stagedFailureVotesNoAndReleasesTheLocks() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        let effects = p.handle(.staged(t1, failure: Fixture.insufficientFunds(me)))

        #expect(effects == [.reply(.vote(t1, .no(Fixture.insufficientFunds(me))))])
        #expect(p.branches.isEmpty)
        #expect(p.lockOwners.isEmpty)
        // the accounts are free for the next transaction
        #expect(p.handle(.message(.prepare(t2, operations: transfer, writers: writers))) == [.stage(t2, operations: transfer, writers: writers)])
    }

    @Test(arguments: [
        [Operation.debit(account: Fixture.account("savings"), amount: Paise(1))],
        [Operation.credit(account: Fixture.account("savings"), amount: Paise(1))],
        [Operation.read(account: Fixture.account("savings"))],
        [Operation.read(account: Fixture.account("other")), .credit(account: Fixture.account("current"), amount: Paise(1))],
    ])
    func conflictingPrepareVotesNoNamingTheOwner(_ conflicting: [Operation]) throws {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        let before = p

        let effects = p.handle(.message(.prepare(t2, operations: conflicting, writers: writers)))
        #expect(effects.count == 1)
        guard case .reply(.vote(t2, .no(let refusal), _))? = effects.first, case .lockedBy(let resource, let holder) = refusal else {
            Issue.record("expected an immediate NO for a locked account, got \(effects)")
            return
        }
        #expect(holder == t1, "names the lock owner: \(refusal)")
        #expect(resource.participant == me && conflicting.contains { $0.account == resource.account }, "\(refusal)")
        #expect(refusal.isTransient, "the owner's outcome will land: worth running again")
        #expect(p.branches == before.branches, "a refused prepare keeps no state")
        #expect(p.lockOwners == before.lockOwners, "and takes no lock")
    }

    @Test func conflictWhileTheOwnerIsStillStaging() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        let effects = p.handle(.message(.prepare(t2, operations: [.debit(account: current, amount: Paise(1))], writers: [me])))
        #expect(effects.count == 1)
        #expect(effects.first.map { if case .reply(.vote(t2, .no, _)) = $0 { true } else { false } } == true)
        #expect(p.lockOwners[current] == t1)
    }

    @Test func disjointTransactionsPrepareSideBySide() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, [.debit(account: savings, amount: Paise(1))], into: &p)
        prepared(t2, [.credit(account: current, amount: Paise(1))], into: &p)
        #expect(p.preparedCount == 2)
        #expect(p.lockOwners == [savings: t1, current: t2])
    }

    @Test func reportOnlyBranchIsAWriteThatLocksNothing() {
        var p = ParticipantProtocol(participant: Fixture.regulator)
        let report: [Operation] = [.fileReport(Report(kind: "LTR", amount: .rupees(18_00_000), reference: "T-1.1"))]
        #expect(p.handle(.message(.prepare(t1, operations: report, writers: writers))) == [.stage(t1, operations: report, writers: writers)])
        #expect(p.lockOwners.isEmpty)
        #expect(p.handle(.staged(t1, failure: nil)) == [.reply(.vote(t1, .yes))])
    }

    @Test func debitAndCreditOfTheSameAccountLockItOnce() {
        var p = ParticipantProtocol(participant: me)
        let ops: [Operation] = [.debit(account: savings, amount: Paise(3)), .credit(account: savings, amount: Paise(1))]
        prepared(t1, ops, into: &p)
        #expect(p.lockOwners == [savings: t1])
        _ = p.handle(.message(.commit(t1)))
        #expect(p.lockOwners.isEmpty)
    }

    // MARK: read-only branches

    @Test func readOnlyBranchValidatesReadsThenVotesReadOnlyAndKeepsNothing() {
        var p = ParticipantProtocol(participant: me)
        let reads: [Operation] = [.read(account: savings), .read(account: current)]
        let effects = p.handle(.message(.prepare(t1, operations: reads, writers: writers)))
        #expect(effects == [.validateReads(t1, operations: reads)])
        #expect(p.lockOwners.isEmpty)

        #expect(p.handle(.staged(t1, failure: nil)) == [.reply(.vote(t1, .readOnly))])
        #expect(p.branches.isEmpty, "no state kept: there is no phase two")
        #expect(p.lockOwners.isEmpty)
        // a stray phase-two message is simply acknowledged
        #expect(p.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))])
    }

    @Test func readOnlyBranchWithAMissingAccountVotesNo() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: [.read(account: savings)], writers: [])))
        let unknown = Refusal.unknownAccount(ResourceID(participant: me, account: savings))
        #expect(p.handle(.staged(t1, failure: unknown)) == [.reply(.vote(t1, .no(unknown)))])
        #expect(p.branches.isEmpty)
    }

    // MARK: duplicates

    @Test func duplicatePrepareOfAPreparedBranchVotesYesAgain() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        let before = p
        #expect(p.handle(.message(.prepare(t1, operations: transfer, writers: writers))) == [.reply(.vote(t1, .yes))])
        #expect(p.branches == before.branches)
        #expect(p.lockOwners == before.lockOwners)
    }

    @Test func duplicatePrepareWhileStagingWaitsForTheVoteOnItsWay() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        #expect(p.handle(.message(.prepare(t1, operations: transfer, writers: writers))).isEmpty, "no second stage, no early vote")
        #expect(p.handle(.staged(t1, failure: nil)) == [.reply(.vote(t1, .yes))])
    }

    // MARK: phase two

    @Test func commitAppliesAcknowledgesAndReleases() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        let effects = p.handle(.message(.commit(t1)))
        #expect(effects == [.apply(t1, operations: transfer, writers: writers), .reply(.acknowledged(t1))],
                "apply before acknowledging")
        #expect(p.branches.isEmpty)
        #expect(p.lockOwners.isEmpty)
        #expect(p.preparedCount == 0)
    }

    @Test func rollbackDiscardsAcknowledgesAndReleases() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        let effects = p.handle(.message(.rollback(t1)))
        #expect(effects == [.discard(t1), .reply(.acknowledged(t1))])
        #expect(p.branches.isEmpty)
        #expect(p.lockOwners.isEmpty)
    }

    @Test(arguments: [true, false])
    func phaseTwoForAnUnknownTransactionIsOnlyAcknowledged(commit: Bool) {
        var p = ParticipantProtocol(participant: me)
        prepared(t2, transfer, into: &p)
        let before = p
        let message: ParticipantMessage = commit ? .commit(t1) : .rollback(t1)
        #expect(p.handle(.message(message)) == [.reply(.acknowledged(t1))])
        #expect(p.branches == before.branches)
        #expect(p.lockOwners == before.lockOwners)
    }

    @Test func duplicateCommitIsAcknowledgedWithoutApplyingTwice() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        _ = p.handle(.message(.commit(t1)))
        #expect(p.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))])
    }

    @Test func locksFreedByCommitCanBeTakenAgain() {
        var p = ParticipantProtocol(participant: me)
        prepared(t1, transfer, into: &p)
        #expect(p.handle(.message(.prepare(t2, operations: transfer, writers: writers))).first.map {
            if case .reply(.vote(_, .no, _)) = $0 { true } else { false }
        } == true)
        _ = p.handle(.message(.commit(t1)))
        #expect(p.handle(.message(.prepare(t2, operations: transfer, writers: writers))) == [.stage(t2, operations: transfer, writers: writers)])
        #expect(p.lockOwners == [savings: t2, current: t2])
    }

    // MARK: ROLLBACK overtaking the vote

    @Test func rollbackWhileStagingIsDeferredUntilStaged() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        let early = p.handle(.message(.rollback(t1)))
        #expect(early.isEmpty, "acknowledging now would be a lie: staging may still persist the write-set")
        #expect(p.branches[t1] == .staging(operations: transfer, writers: writers, readOnly: false, rollbackRequested: true))
        #expect(p.lockOwners == [savings: t1, current: t1], "locks held until staging ends")
        #expect(p.handle(.message(.rollback(t1))).isEmpty, "a resent ROLLBACK is deferred as well")

        let effects = p.handle(.staged(t1, failure: nil))
        #expect(effects == [.discard(t1), .reply(.vote(t1, .yes)), .reply(.acknowledged(t1))])
        #expect(p.branches.isEmpty)
        #expect(p.lockOwners.isEmpty)
    }

    @Test func rollbackWhileStagingThatThenFailsHasNothingToDiscard() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: transfer, writers: writers)))
        _ = p.handle(.message(.rollback(t1)))
        let effects = p.handle(.staged(t1, failure: Fixture.insufficientFunds(me)))
        #expect(effects == [.reply(.vote(t1, .no(Fixture.insufficientFunds(me)))), .reply(.acknowledged(t1))])
        #expect(p.branches.isEmpty)
        #expect(p.lockOwners.isEmpty)
    }

    @Test func rollbackWhileValidatingReads() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.message(.prepare(t1, operations: [.read(account: savings)], writers: [])))
        #expect(p.handle(.message(.rollback(t1))).isEmpty)
        #expect(p.handle(.staged(t1, failure: nil)) == [.reply(.vote(t1, .readOnly)), .reply(.acknowledged(t1))])
        #expect(p.branches.isEmpty)
    }

    // MARK: restart

    @Test func restoredBranchRetakesItsLocksAndCanBeCommitted() {
        var p = ParticipantProtocol(participant: me)
        let effects = p.handle(.restored(t1, operations: transfer, writers: writers))
        #expect(effects.isEmpty)
        #expect(p.branches[t1] == .prepared(operations: transfer, writers: writers))
        #expect(p.lockOwners == [savings: t1, current: t1])
        #expect(p.preparedCount == 1)

        // a newcomer conflicts with the restored branch
        let conflict = p.handle(.message(.prepare(t2, operations: [.debit(account: savings, amount: Paise(1))], writers: [me])))
        #expect(conflict.count == 1)
        if case .reply(.vote(t2, .no(let refusal), _))? = conflict.first {
            #expect(refusal == .lockedBy(ResourceID(participant: me, account: savings), holder: t1))
        } else {
            Issue.record("expected NO, got \(conflict)")
        }
        // the coordinator re-sends PREPARE or the outcome; both work on the restored branch
        #expect(p.handle(.message(.prepare(t1, operations: transfer, writers: writers))) == [.reply(.vote(t1, .yes))])
        #expect(p.handle(.message(.commit(t1))) == [.apply(t1, operations: transfer, writers: writers), .reply(.acknowledged(t1))])
        #expect(p.lockOwners.isEmpty)
    }

    @Test func restoredBranchCanBeRolledBack() {
        var p = ParticipantProtocol(participant: me)
        _ = p.handle(.restored(t1, operations: transfer, writers: writers))
        _ = p.handle(.restored(t2, operations: [.debit(account: audit, amount: Paise(1))], writers: writers))
        #expect(p.lockOwners == [savings: t1, current: t1, audit: t2])
        #expect(p.handle(.message(.rollback(t1))) == [.discard(t1), .reply(.acknowledged(t1))])
        #expect(p.lockOwners == [audit: t2])
    }

    // MARK: bounds

    @Test func maxBranchesBoundsBranchesInFlight() {
        var p = ParticipantProtocol(participant: me, maxBranches: 2)
        #expect(p.maxBranches == 2)
        _ = p.handle(.message(.prepare(t1, operations: [.debit(account: savings, amount: Paise(1))], writers: [me])))
        prepared(t2, [.debit(account: current, amount: Paise(1))], into: &p)

        let refused = p.handle(.message(.prepare(t3, operations: [.debit(account: audit, amount: Paise(1))], writers: [me])))
        #expect(refused.count == 1)
        if case .reply(.vote(t3, .no(let refusal), _))? = refused.first {
            #expect(refusal == .branchesFull(me, limit: 2))
            #expect(refusal.isTransient, "branches in flight end: worth running again")
        } else {
            Issue.record("expected NO, got \(refused)")
        }
        #expect(p.branches.count == 2)
        #expect(p.lockOwners[audit] == nil)

        // duplicates of branches already held are still answered at the limit
        #expect(p.handle(.message(.prepare(t2, operations: [.debit(account: current, amount: Paise(1))], writers: [me]))) == [.reply(.vote(t2, .yes))])
        // room again once one finishes
        _ = p.handle(.message(.commit(t2)))
        #expect(p.handle(.message(.prepare(t3, operations: [.debit(account: audit, amount: Paise(1))], writers: [me])))
            == [.stage(t3, operations: [.debit(account: audit, amount: Paise(1))], writers: [me])])
    }

    @Test func readOnlyBranchesCountTowardsTheBoundWhileValidating() {
        var p = ParticipantProtocol(participant: me, maxBranches: 1)
        _ = p.handle(.message(.prepare(t1, operations: [.read(account: savings)], writers: [])))
        #expect(p.handle(.message(.prepare(t2, operations: [.read(account: current)], writers: []))).first.map {
            if case .reply(.vote(t2, .no, _)) = $0 { true } else { false }
        } == true)
        _ = p.handle(.staged(t1, failure: nil))
        #expect(p.handle(.message(.prepare(t2, operations: [.read(account: current)], writers: []))) == [.validateReads(t2, operations: [.read(account: current)])])
    }

    @Test func participantReplyNamesItsTransaction() {
        #expect(ParticipantReply.vote(t1, .yes).transaction == t1)
        #expect(ParticipantReply.acknowledged(t2).transaction == t2)
        #expect(ParticipantMessage.prepare(t3, operations: [], writers: []).transaction == t3)
        #expect(ParticipantMessage.commit(t1).transaction == t1)
        #expect(ParticipantMessage.rollback(t2).transaction == t2)
    }
}
