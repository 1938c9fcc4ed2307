import SandhiEngine
import SandhiParticipants
import SandhiPostgres
import SandhiRuntime
import SandhiTestSupport
import Testing

/// Prepared transactions someone settled by hand in PostgreSQL (COMMIT PREPARED or ROLLBACK
/// PREPARED of a Sandhi gid) otherwise than the coordinator then decides: each is a mixed
/// outcome, answered with the engine's heuristic reply (so that the coordinator opens a
/// reconciliation case), kept durably, and reported again until the coordinator says FORGET.
/// Every situation is made for real, with SQL against the server.
extension PostgresBankTests {

    static let debitAlice: [SandhiEngine.Operation] = [.debit(account: F.alice, amount: .rupees(10))]
    static let creditBob: [SandhiEngine.Operation] = [.credit(account: F.bob, amount: .rupees(5))]

    /// COMMIT PREPARED by hand of a group the coordinator rolls back: both members committed
    /// against the decision. The rollback is answered with a heuristic commit carrying each
    /// member's work, as is its resend; a sweep reports them; a reopened bank still holds them,
    /// and does not count them as committed on the coordinator's word; FORGET ends them.
    @Test func aGroupCommittedByHandAndThenRolledBackIsAHeuristicCommit() async throws {
        let fixture = try await makeFixture()
        var handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), Self.debitAlice), F.prepare(F.tx(2), Self.creditBob)])
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "COMMIT PREPARED '\(fixture.group(F.tx(1), F.tx(2)))'") }

        let reports: [ParticipantReply] = [.heuristic(F.tx(1), committed: true, operations: Self.debitAlice, writers: [F.hdfc]),
                                           .heuristic(F.tx(2), committed: true, operations: Self.creditBob, writers: [F.hdfc])]
        #expect(try await handle.process([.rollback(F.tx(1)), .rollback(F.tx(2))]) == reports)
        #expect(try await handle.process([.rollback(F.tx(2))]) == [reports[1]], "a resent ROLLBACK is answered the same")
        let question = ConfirmationTag(epoch: 2, sequence: 1)
        #expect(try await handle.process([.rollback(F.tx(2), confirming: question)])
                == [.heuristic(F.tx(2), committed: true, operations: Self.creditBob, writers: [F.hdfc], confirming: question)],
                "the coordinator's question about a report is answered with the report, echoing its tag")
        #expect(try await handle.call { try $0.sweep() } == reports)
        #expect(handle.bank.needsSweep)
        #expect(handle.bank.inDoubt().isEmpty && handle.bank.heldLocks.isEmpty)
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500", "what the hand committed stands")

        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.unforgottenHeuristics() == [F.tx(1): .init(committed: true, operations: Self.debitAlice, writers: [F.hdfc]),
                                                        F.tx(2): .init(committed: true, operations: Self.creditBob, writers: [F.hdfc])])
        #expect(try await handle.call { try $0.hasCommitted(F.tx(1)) })
        #expect(try await handle.call { try $0.committedOnCoordinatorsWord(F.tx(1)) } == false)
        #expect(try await handle.process([.rollback(F.tx(1))]) == [reports[0]])

        #expect(try await handle.process([.forget(F.tx(1)), .forget(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(handle.bank.unforgottenHeuristics().isEmpty && !handle.bank.needsSweep)
        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.unforgottenHeuristics().isEmpty)
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT count(*) FROM sandhi_heuristic WHERE forgotten_at_ms IS NOT NULL") } == "2")
        #expect(try await handle.process([.rollback(F.tx(1))]) == [.acknowledged(F.tx(1))], "forgotten: a late resend is acknowledged")
        #expect(try await handle.process([.rollback(F.tx(2), confirming: question)]) == [.acknowledged(F.tx(2))],
                "forgotten: a question about a stale report is acknowledged")
        try await handle.close()
    }

    /// A group of three whose decisions differ (tx 1 commits, tx 2 rolls back, tx 3 has none
    /// yet), committed by hand before the split. tx 1 is found committed, as decided; tx 2
    /// committed against its rollback, a heuristic commit; tx 3, waiting for its decision, was
    /// committed before it: decided alone, reported at once and again when its decision comes,
    /// and not held in doubt (a vote kept for it would lock carol for nothing).
    @Test func aGroupCommittedByHandBeforeItsSplitReportsItsRolledBackAndWaitingMembers() async throws {
        let fixture = try await makeFixture()
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "INSERT INTO accounts(id, balance) VALUES ('carol', 1000)") }
        var handle = try await blocking { try fixture.open() }
        let debitCarol: [SandhiEngine.Operation] = [.debit(account: AccountID(validated: "carol"), amount: Paise(400))]
        _ = try await handle.process([F.prepare(F.tx(1), Self.debitAlice), F.prepare(F.tx(2), Self.creditBob), F.prepare(F.tx(3), debitCarol)])
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "COMMIT PREPARED '\(fixture.group(F.tx(1), F.tx(2), F.tx(3)))'") }

        let tx2: ParticipantReply = .heuristic(F.tx(2), committed: true, operations: Self.creditBob, writers: [F.hdfc])
        let tx3: ParticipantReply = .heuristic(F.tx(3), committed: true, operations: debitCarol, writers: [F.hdfc])
        #expect(try await handle.process([.commit(F.tx(1)), .rollback(F.tx(2))]) == [.acknowledged(F.tx(1)), tx2, tx3])
        #expect(handle.bank.inDoubt().isEmpty && handle.bank.heldLocks.isEmpty)
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500\ncarol=600", "applied once each, by the hand")
        #expect(try await handle.process([.rollback(F.tx(3))]) == [tx3])

        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt().isEmpty)
        #expect(Set(handle.bank.unforgottenHeuristics().keys) == [F.tx(2), F.tx(3)])
        #expect(try await handle.call { try $0.committedOnCoordinatorsWord(F.tx(1)) })
        #expect(try await blocking { try fixture.count("sandhi_voted") } == "0")
        try await handle.close()
    }

    /// ROLLBACK PREPARED by hand of a group the coordinator commits, one of whose members has no
    /// write-set row (deleted by hand as well): tx 1 is applied from its write-set, as a commit
    /// decision is; tx 2 cannot be, and stays rolled back against the decision: a heuristic
    /// rollback, reported instead of an acknowledgement of a COMMIT it never applied.
    @Test func aGroupRolledBackByHandWithAMemberWithoutAWriteSetAndThenCommittedIsAHeuristicRollback() async throws {
        let fixture = try await makeFixture()
        var handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), Self.debitAlice), F.prepare(F.tx(2), Self.creditBob)])
        try await handle.close()
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "DELETE FROM sandhi_intents WHERE tx = \(F.tx(2).rawValue)") }
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(1): [F.hdfc], F.tx(2): [F.hdfc]])
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "ROLLBACK PREPARED '\(fixture.group(F.tx(1), F.tx(2)))'") }

        let lost: ParticipantReply = .heuristic(F.tx(2), committed: false, operations: [], writers: [F.hdfc])
        #expect(try await handle.process([.commit(F.tx(1)), .commit(F.tx(2))]) == [.acknowledged(F.tx(1)), lost])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000")
        #expect(try await handle.process([.commit(F.tx(2))]) == [lost], "a resent COMMIT is answered the same")
        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.unforgottenHeuristics() == [F.tx(2): .init(committed: false, operations: [], writers: [F.hdfc])])
        #expect(handle.bank.inDoubt().isEmpty)
        try await handle.close()
    }
}

/// The same on a whole node: a coordinator with a PostgreSQL bank (hdfc) and an embedded one
/// (sbi). hdfc votes YES while sbi is cut off; someone commits hdfc's prepared transaction by
/// hand; the operator aborts the transfer. hdfc's heuristic reply reaches the coordinator, which
/// opens a reconciliation case, durably, and tells hdfc to forget.
extension PostgresBankTests {
    @Test func aBranchCommittedByHandUnderAnAbortOpensAReconciliationCase() async throws {
        let cluster = try currentCluster()
        let database = try await blocking { try cluster.createDatabase("hdfc") }
        let temporary = TemporaryDirectory("sandhi-by-hand"); defer { temporary.remove() }
        let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")
        let carol = AccountID(validated: "carol")
        let instance = CoordinatorInstance(validated: "c-\(database)")
        let bankConfiguration = PostgresBankConfiguration(endpoint: .unixSocket(folder: cluster.socketDirectory, port: cluster.port),
                                                          username: PostgresCluster.superuser, database: database, participant: hdfc, instance: instance)
        // What the executable wires (`PostgresParticipants`): this test's one PostgreSQL bank.
        let directory = DataDirectory(path: temporary.appending("data"), bankOpener: BankOpener { participant, _, logger in
            precondition(participant.id == hdfc, "only hdfc is a PostgreSQL bank here")
            return try PostgresBank(bankConfiguration, logger: logger)
        })
        var configuration = SandhiConfiguration(participants: [
            .init(id: hdfc, kind: .postgres, database: DatabaseConnection(endpoint: .unixSocket(folder: cluster.socketDirectory, port: cluster.port),
                                                                          user: PostgresCluster.superuser, database: database)),
            .init(id: sbi),
        ])
        configuration.instance = instance.name
        configuration.prepareTimeoutMs = 120_000 // the operator aborts, not the timer
        configuration.resendInitialMs = 5
        let fixed = configuration
        try await blocking {
            try PostgresBank.create(bankConfiguration, accounts: [(F.alice, .rupees(1_000))], logger: F.logger)
            try directory.create(fixed) { directory in
                try SQLiteBank.create(path: directory.bankPath(sbi), participant: sbi, accounts: [(carol, .rupees(1_000))], logger: F.logger)
            }
        }
        let node = try await SandhiNode.start(directory: directory, logger: F.logger)
        try await node.inject(.partition(sbi))
        let transfer = Task {
            try await node.driver.transfer([Branch(participant: hdfc, operations: [.debit(account: F.alice, amount: .rupees(100))]),
                                            Branch(participant: sbi, operations: [.credit(account: carol, amount: .rupees(100))])])
        }
        var prepared: GlobalTransactionID?
        let voted = try await eventually(timeoutMs: 20_000) {
            prepared = GlobalTransactionID(parsing: try cluster.sql(database, "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()"))
            return prepared != nil
        }
        let gid = try #require(prepared, "hdfc never prepared (\(voted))")
        let tx = gid.transactions[0]
        _ = try await blocking { try cluster.sql(database, "COMMIT PREPARED '\(gid)'") }
        #expect(node.driver.forceAbort(tx, note: "sbi is cut off") == nil)
        try await node.inject(.heal(sbi))
        _ = try await transfer.value

        #expect(await eventually { node.driver.reconciliation[tx] != nil })
        let heuristicCase = try #require(node.driver.reconciliation[tx])
        #expect(heuristicCase.decision == .abort)
        #expect(heuristicCase.divergent.map(\.participant) == [hdfc])
        #expect(heuristicCase.imbalance == .rupees(-100), "hdfc debited ₹100 that sbi never credited")
        // Told to forget once the case is durable: hdfc marks its record.
        #expect(try await eventually {
            try cluster.sql(database, "SELECT count(*) FROM sandhi_heuristic WHERE forgotten_at_ms IS NOT NULL AND tx = \(tx.rawValue)") == "1"
        })
        node.stop()
        #expect(try ReconciliationJournal.read(path: directory.reconciliationPath)[tx]?.decision == .abort)
        #expect(try cluster.sql(database, "SELECT balance FROM accounts WHERE id = 'alice'") == "90000")
    }
}
