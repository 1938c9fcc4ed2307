import SandhiEngine
import SandhiPostgres
import SandhiTestSupport
import Testing

/// What a crash of the database server, or of the bank's sessions, does to prepared branches.
/// These restart the suite's cluster, which is why the suite runs its tests one at a time.
extension PostgresBankTests {

    @Test func preparedBranchesSurviveAnImmediateServerRestartAndAreFinished() async throws {
        let cluster = try currentCluster()
        let fixture = try await blocking { try PostgresBankFixture(cluster: cluster) }
        var handle = try await blocking { try fixture.open() }
        let votes = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(100))]),
                                              F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(50))])])
        #expect(votes.count == 2)
        // Killed without a shutdown checkpoint: the prepared state lives only in the WAL.
        try await blocking { try cluster.restartImmediately() }
        try await handle.close()
        #expect(try await blocking { try fixture.preparedGids() } == fixture.group(F.tx(1), F.tx(2)))

        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(1): [F.hdfc], F.tx(2): [F.hdfc]])
        #expect(handle.bank.heldLocks == [F.alice: F.tx(1), F.bob: F.tx(2)])
        #expect(try await handle.process([.commit(F.tx(1)), .rollback(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=90000\nbob=50000")
        try await handle.close()
    }

    @Test func aBatchWhoseSessionsDieFailsAndTheBankReloadsFromPostgres() async throws {
        let cluster = try currentCluster()
        let fixture = try await blocking { try PostgresBankFixture(cluster: cluster) }
        let handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(1))])])
        // Every session of the bank ended under it (an operator, a failover, a network cut).
        _ = try await blocking {
            try cluster.sql(fixture.database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'sandhi:%'")
        }
        let failed = await #expect(throws: (any Error).self) {
            try await handle.process([.commit(F.tx(1))])
        }
        #expect("\(failed.map { "\($0)" } ?? "")".contains("PostgreSQL database \(fixture.database)"))
        // Reloaded on new sessions: the branch is still prepared, and the retried COMMIT lands.
        #expect(handle.bank.inDoubt() == [F.tx(1): [F.hdfc]])
        #expect(try await handle.process([.commit(F.tx(1))]) == [.acknowledged(F.tx(1))])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=99900\nbob=50000")
        try await handle.close()
    }
}
