import SandhiEngine
import SandhiPostgres
import SandhiTestSupport
import Testing

/// A batch's branches prepare together in one PostgreSQL transaction; what happens when their
/// decisions differ, come at different times, or a crash interrupts the split that follows.
extension PostgresBankTests {

    /// Three branches prepare under one gid. Two decisions come (one commit, one rollback) and
    /// the third is still undecided: the group is split at once, so the committed branch is
    /// applied, the rolled-back one is gone, and the undecided one is prepared again under a
    /// gid of its own, still holding its lock, until its own decision comes.
    @Test func aGroupWhoseDecisionsDifferOrAreIncompleteIsSplit() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let carol = AccountID(validated: "carol")
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "INSERT INTO accounts(id, balance) VALUES ('carol', 1000)") }
        let votes = try await handle.process([
            F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
            F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))]),
            F.prepare(F.tx(3), [.debit(account: carol, amount: Paise(400))]),
        ])
        #expect(votes.map(\.transaction) == [F.tx(1), F.tx(2), F.tx(3)])
        #expect(votes.allSatisfy { if case .vote(_, .yes, _) = $0 { return true } else { return false } })
        #expect(try await blocking { try fixture.preparedGids() } == fixture.group(F.tx(1), F.tx(2), F.tx(3)))

        #expect(try await handle.process([.commit(F.tx(1)), .rollback(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gid(F.tx(3)))
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000\ncarol=1000")
        #expect(handle.bank.inDoubt() == [F.tx(3): [F.hdfc]])
        #expect(handle.bank.heldLocks == [carol: F.tx(3)])
        // The committed branch's row says it committed: a stale duplicate PREPARE is not applied twice.
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT tx FROM sandhi_committed ORDER BY tx") }
                == "\(F.tx(1).rawValue)")
        // Its vote was in its rows only while it was prepared again; now its prepared transaction holds it.
        #expect(try await blocking { try fixture.count("sandhi_voted") } == "0")

        #expect(try await handle.process([.commit(F.tx(3))]) == [.acknowledged(F.tx(3))])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000\ncarol=600")
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "0")
        #expect(try await blocking { try fixture.count("sandhi_voted") } == "0")
        #expect(handle.bank.heldLocks.isEmpty)
        try await handle.close()
    }

    /// One decision for the whole group, commit or rollback: one COMMIT or ROLLBACK PREPARED.
    /// COMMIT PREPARED keeps the prepared transaction's id, which the rows it wrote carry
    /// (`xmin`); a split would have committed them again under a new one.
    @Test func aGroupWithOneDecisionFinishesInOneStatement() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
                                      F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))])])
        _ = try await handle.process([.rollback(F.tx(2)), .rollback(F.tx(1))])
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50000")
        _ = try await handle.process([F.prepare(F.tx(3), [.debit(account: F.alice, amount: .rupees(10))]),
                                      F.prepare(F.tx(4), [.credit(account: F.bob, amount: .rupees(5))])])
        #expect(try await blocking { try fixture.preparedGids() } == fixture.group(F.tx(3), F.tx(4)))
        let prepared = try await blocking { try fixture.cluster.sql(fixture.database, "SELECT transaction FROM pg_prepared_xacts WHERE database = current_database()") }
        _ = try await handle.process([.commit(F.tx(4)), .commit(F.tx(3))])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500")
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT DISTINCT xmin FROM accounts WHERE id IN ('alice', 'bob')") } == prepared)
        #expect(try await blocking { try fixture.count("sandhi_voted") } == "0")
        try await handle.close()
    }

    /// A branch prepared again after a split, then rolled back while another branch takes its
    /// account in the same batch: after reopening, only the newer branch is in doubt (a vote row
    /// outliving the rollback would bring the old one back, holding the same account).
    @Test func aBranchPreparedAgainAndThenRolledBackIsNotInDoubtAfterReopening() async throws {
        let fixture = try await makeFixture()
        var handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
                                      F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))])])
        _ = try await handle.process([.commit(F.tx(1))])
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gid(F.tx(2)))
        let replies = try await handle.process([.rollback(F.tx(2)), F.prepare(F.tx(3), [.credit(account: F.bob, amount: .rupees(7))])])
        #expect(replies.map(\.transaction) == [F.tx(2), F.tx(3)])
        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(3): [F.hdfc]])
        #expect(handle.bank.heldLocks == [F.bob: F.tx(3)])
        _ = try await handle.process([.commit(F.tx(3))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50700")
        try await handle.close()
    }

    /// A vote row left by a crash beside a newer branch prepared on the same account is stale
    /// (the engine released the account before the newer one staged): the reopened bank drops
    /// it, holds the newer one, and says so.
    @Test func aStaleVoteBesideANewerPreparedBranchIsDroppedWhenTheBankOpens() async throws {
        let fixture = try await makeFixture()
        var handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(5), [.credit(account: F.bob, amount: .rupees(5))])])
        try await handle.close()
        try await blocking {
            try fixture.cluster.sql(fixture.database, """
                INSERT INTO sandhi_intents SELECT instance, \(F.tx(4).rawValue), operations, writers, 0 FROM sandhi_intents WHERE tx = \(F.tx(5).rawValue)
                """)
            try fixture.cluster.sql(fixture.database, "INSERT INTO sandhi_voted VALUES ('\(fixture.instance)', \(F.tx(4).rawValue))")
        }
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(5): [F.hdfc]])
        #expect(handle.bank.heldLocks == [F.bob: F.tx(5)])
        #expect(try await blocking { try fixture.count("sandhi_voted") } == "0")
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "1")
        _ = try await handle.process([.rollback(F.tx(5))])
        try await handle.close()
    }

    /// A group someone rolled back by hand, whose branches the coordinator then commits: each
    /// is applied from its write-set, because a commit decision stands.
    @Test func aGroupRolledBackByHandAndThenCommittedIsAppliedFromItsWriteSets() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
                                      F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))])])
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "ROLLBACK PREPARED '\(fixture.group(F.tx(1), F.tx(2)))'") }
        #expect(try await handle.process([.commit(F.tx(1)), .commit(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500")
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT count(*) FROM sandhi_committed") } == "2")
        // Retried, nothing more is applied.
        _ = try await handle.process([.commit(F.tx(1)), .commit(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500")
        try await handle.close()
    }

    /// A server that ends idle transaction blocks (as managed services often configure) does
    /// not end the staging sessions, which wait inside one between groups.
    @Test func stagingSessionsSurviveAServerThatEndsIdleTransactions() async throws {
        let fixture = try await makeFixture()
        _ = try await blocking { try fixture.cluster.sql("postgres", "ALTER DATABASE \(fixture.database) SET idle_in_transaction_session_timeout = '100ms'") }
        let handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.transfer(F.tx(1), rupees: 1)])
        _ = try await handle.process([.commit(F.tx(1))])
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await handle.process([F.transfer(F.tx(2), rupees: 2)]) == [.vote(F.tx(2), .yes, observed: [
            Observation(account: F.alice, balance: Paise(99_900), version: 1, writer: F.tx(1)),
            Observation(account: F.bob, balance: Paise(50_100), version: 1, writer: F.tx(1)),
        ])])
        _ = try await handle.process([.commit(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99700\nbob=50300")
        try await handle.close()
    }

    /// A process crash in the middle of a split, after the group's ROLLBACK PREPARED and before its
    /// members were committed or prepared again: their write-set and vote rows are their votes.
    /// The reopened bank holds them in doubt, with their locks, and applies the committed one
    /// from its write-set. A write-set that never voted is dropped.
    @Test func aSplitInterruptedByACrashLeavesVotesThatTheReopenedBankFinishes() async throws {
        let fixture = try await makeFixture()
        let crashed = try await interruptedSplit(fixture)
        // And a write-set whose branch never got as far as a vote.
        _ = try await blocking {
            try fixture.cluster.sql(fixture.database, """
                INSERT INTO sandhi_intents SELECT instance, \(F.tx(5).rawValue), operations, writers, 0 FROM sandhi_intents WHERE tx = \(F.tx(1).rawValue)
                """)
        }
        let handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(1): [F.hdfc], F.tx(2): [F.hdfc]])
        #expect(handle.bank.heldLocks == [F.alice: F.tx(1), F.bob: F.tx(2)])
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "2")
        // Held like any prepared branch: a conflicting PREPARE is refused.
        #expect(try await handle.process([F.prepare(F.tx(6), [.credit(account: F.alice, amount: .rupees(1))])])
                == [.vote(F.tx(6), .no(.lockedBy(ResourceID(participant: F.hdfc, account: F.alice), holder: F.tx(1))))])
        #expect(try await handle.process([.commit(F.tx(1)), .rollback(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000")
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "0")
        #expect(try await blocking { try fixture.count("sandhi_voted") } == "0")
        #expect(handle.bank.inDoubt().isEmpty && handle.bank.heldLocks.isEmpty)
        // A retried COMMIT changes nothing.
        #expect(try await handle.process([.commit(F.tx(1))]) == [.acknowledged(F.tx(1))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000")
        try await handle.close()
        await crashed.bury()
    }

    /// A vote held by its write-set alone (a split a crash interrupted) and then rolled back
    /// loses its rows before the rollback is acknowledged, even in a batch that stages other
    /// branches (whose clean-up is otherwise left to the next batch): the reopened bank does not
    /// hold it in doubt again.
    @Test func aVoteWithoutAGroupRolledBackIsGoneBeforeItsAcknowledgement() async throws {
        let fixture = try await makeFixture()
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "INSERT INTO accounts(id, balance) VALUES ('carol', 1000)") }
        let crashed = try await interruptedSplit(fixture)
        var handle = try await blocking { try fixture.open() }
        #expect(Set(handle.bank.inDoubt().keys) == [F.tx(1), F.tx(2)])
        let replies = try await handle.process([.rollback(F.tx(2)), .commit(F.tx(1)),
                                                F.prepare(F.tx(3), [.debit(account: AccountID(validated: "carol"), amount: Paise(100))])])
        #expect(replies.map(\.transaction) == [F.tx(2), F.tx(1), F.tx(3)])
        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(3): [F.hdfc]])
        _ = try await handle.process([.rollback(F.tx(3))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000\ncarol=1000")
        try await handle.close()
        await crashed.bury()
    }

    /// The engine's staging rule reads operation by operation, the database's function sums
    /// them: a branch whose debit comes before the credit that would cover it is refused by the
    /// rule although its sum fits, and the group is staged again without it.
    @Test func aMemberTheRuleRefusesAfterTheDatabaseWroteItIsLeftOutOfItsGroup() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let votes = try await handle.process([
            F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(1_100)), .credit(account: F.alice, amount: .rupees(200))]),
            F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))]),
        ])
        guard votes.count == 2, case .vote(F.tx(1), .no(let refusal), _) = votes[0], case .vote(F.tx(2), .yes, _) = votes[1] else {
            Issue.record("expected NO then YES, got \(votes)")
            return
        }
        #expect(refusal == .insufficientFunds(ResourceID(participant: F.hdfc, account: F.alice), balance: .rupees(1_000), debit: .rupees(1_100)))
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gid(F.tx(2)))
        _ = try await handle.process([.commit(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50500")
        try await handle.close()
    }

    /// A group of tx 1 (alice) and tx 2 (bob) whose split a process crash interrupted right after
    /// its ROLLBACK PREPARED: the COMMIT of tx 1 came, tx 2 waits for its decision, and each
    /// one's vote is its write-set and vote rows, nothing prepared. The real split, stopped by
    /// the bank's fault hook; the dead bank is buried at the end of the test.
    func interruptedSplit(_ fixture: PostgresBankFixture) async throws -> CrashedBank {
        let bank = try await blocking { try OwnLoopBank(fixture) }
        _ = try await bank.handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
                                           F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))])])
        let crashed = try await crash(bank, at: .splitGroupRolledBack, running: [.commit(F.tx(1))], cluster: fixture.cluster)
        #expect(try await blocking { try fixture.preparedGids() } == "")
        return crashed
    }
}
