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

    /// A vote held by its rows alone (a split a crash interrupted), rolled back: its rows'
    /// deletion is durable before the rollback is acknowledged. The server is killed right after
    /// the acknowledgement, its WAL writer slowed to one round every 10 s, so that only the
    /// statement's own flush can have put the deletion on disk (an asynchronous commit stays in
    /// PostgreSQL's shared memory, and an immediate stop drops it). The reopened bank must not
    /// hold the vote in doubt again, where it would lock bob with nobody left to settle it.
    @Test func aRolledBackVoteWithoutAGroupStaysGoneAfterTheServerCrashes() async throws {
        let cluster = try currentCluster()
        let fixture = try await blocking { try PostgresBankFixture(cluster: cluster) }
        let crashed = try await interruptedSplit(fixture)
        var handle = try await blocking { try fixture.open() }
        #expect(Set(handle.bank.inDoubt().keys) == [F.tx(1), F.tx(2)])
        // nil: back to the server's default.
        func walWriterDelay(_ value: String?) async throws {
            try await blocking {
                try cluster.sql("postgres", value.map { "ALTER SYSTEM SET wal_writer_delay = '\($0)'" } ?? "ALTER SYSTEM RESET wal_writer_delay")
                try cluster.sql("postgres", "SELECT pg_reload_conf()")
            }
            // The reload reaches the WAL writer by a signal, a moment later.
            try await Task.sleep(for: .milliseconds(300))
        }
        try await walWriterDelay("10s")
        let replies: [ParticipantReply]
        do {
            replies = try await handle.process([.rollback(F.tx(2))])
            try await blocking { try cluster.restartImmediately() }
        } catch {
            try? await walWriterDelay(nil)
            throw error
        }
        try await walWriterDelay(nil)
        #expect(replies == [.acknowledged(F.tx(2))])
        try await handle.close()

        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(1): [F.hdfc]])
        #expect(handle.bank.heldLocks == [F.alice: F.tx(1)])
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT count(*) FROM sandhi_voted WHERE tx = \(F.tx(2).rawValue)") } == "0")
        // The COMMIT the split was carrying, sent again.
        #expect(try await handle.process([.commit(F.tx(1))]) == [.acknowledged(F.tx(1))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000")
        try await handle.close()
        await crashed.bury()
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
