import SandhiEngine
import SandhiPostgres
import SandhiTestSupport
import Testing

/// How the coordinator takes the PostgreSQL bank's NO votes: a lock PostgreSQL itself refuses
/// (a row held past `lock_timeout` by a writer outside this coordinator) is a passing conflict
/// worth running again, a refusal of the data is not.
extension PostgresBankTests {
    @Test func aRowLockedOutsideTheCoordinatorIsATransientRefusal() async throws {
        let fixture = try await makeFixture()
        // A short wait for the row, so the test does not sit out the default two seconds.
        var shortWait = fixture.configuration
        shortWait.lockTimeoutMs = 200
        let configuration = shortWait
        let handle = try await blocking { BankHandle(try PostgresBank(configuration, logger: F.logger)) }
        // A prepared transaction nobody in Sandhi knows holds alice's row: PostgreSQL's lock, not
        // the participant protocol's (which knows nothing of it).
        let outside = "outside-\(fixture.database)"
        try await blocking {
            _ = try fixture.cluster.sql(fixture.database, "BEGIN; UPDATE accounts SET balance = balance WHERE id = 'alice'; PREPARE TRANSACTION '\(outside)'")
        }
        let refused = try await handle.process([F.transfer(F.tx(1), rupees: 10)])
        #expect(try await blocking { try fixture.preparedGids() } == outside, "nothing of ours prepared")
        try await blocking { _ = try fixture.cluster.sql(fixture.database, "ROLLBACK PREPARED '\(outside)'") }
        guard refused.count == 1, case .vote(F.tx(1), let vote, _) = refused[0], vote.isNo else {
            Issue.record("expected one NO vote, got \(refused)")
            return
        }
        #expect(vote.abortCause(at: F.hdfc) == .participantBusy, "\(vote)")

        // Running it again once the row is free goes through: the refusal was a passing one.
        #expect(try await handle.process([F.transfer(F.tx(2), rupees: 10)]).voteOnly == [.vote(F.tx(2), .yes)])
        _ = try await handle.process([.commit(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=51000")
        try await handle.close()
    }

    @Test func insufficientFundsAndAnUnknownAccountAreRefusalsNotWorthRetrying() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let replies = try await handle.process([
            F.prepare(F.tx(1), [.debit(account: bob, amount: .rupees(501))]),
            F.prepare(F.tx(2), [.credit(account: AccountID(validated: "carol"), amount: .rupees(1))]),
        ])
        let votes = replies.compactMap { reply -> Vote? in if case .vote(_, let vote, _) = reply { vote } else { nil } }
        #expect(votes.count == 2 && votes.allSatisfy(\.isNo), "\(replies)")
        for vote in votes { #expect(vote.abortCause(at: F.hdfc) == .participantRefused, "\(vote)") }
        try await handle.close()
    }
}
