import SandhiEngine
import SandhiPostgres
import SandhiTestSupport
import Testing

/// The PostgreSQL bank against a real server (a throwaway cluster for the suite). Balances and
/// prepared transactions are checked with psql, straight from PostgreSQL.
///
/// One test at a time: some restart the cluster or end its sessions, and a burst of a dozen
/// banks' connections and psql processes at once would load a 2-core machine enough to upset
/// the timing-sensitive live-fault tests running beside them.
@Suite(.requiresPostgres, .postgresCluster, .serialized)
struct PostgresBankTests {
    typealias F = PostgresBankFixture
    let alice = F.alice, bob = F.bob, hdfc = F.hdfc

    func makeFixture() async throws -> PostgresBankFixture {
        let cluster = try currentCluster()
        return try await blocking { try PostgresBankFixture(cluster: cluster) }
    }

    @Test func prepareThenCommitMovesMoneyThroughAPreparedTransaction() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let tx = F.tx(1)
        let votes = try await handle.process([F.transfer(tx, rupees: 300)])
        #expect(votes == [.vote(tx, .yes, observed: [
            Observation(account: alice, balance: .rupees(1_000), version: 0, writer: nil),
            Observation(account: bob, balance: .rupees(500), version: 0, writer: nil),
        ])])
        // Prepared, not committed: PostgreSQL holds the branch under our gid, balances unchanged.
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gids(F.tx(1)))
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50000")
        #expect(handle.bank.inDoubt() == [tx: [hdfc]])
        #expect(handle.bank.heldLocks == [alice: tx, bob: tx])

        #expect(try await handle.process([.commit(tx)]) == [.acknowledged(tx)])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=70000\nbob=80000")
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT id || ':' || version || ':' || writer FROM accounts ORDER BY id") }
                == "alice:1:\(tx.rawValue)\nbob:1:\(tx.rawValue)")
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "0")
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT tx || ' ' || writers || ' ' || net_paise FROM sandhi_committed") }
                == "\(tx.rawValue) hdfc 0")
        #expect(handle.bank.inDoubt().isEmpty)
        #expect(handle.bank.heldLocks.isEmpty)
        try await handle.close()
    }

    @Test func prepareThenRollbackLeavesNothing() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let tx = F.tx(2)
        #expect(try await handle.process([F.transfer(tx, rupees: 100)]).map(\.transaction) == [tx])
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gids(F.tx(2)))
        #expect(try await handle.process([.rollback(tx)]) == [.acknowledged(tx)])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50000")
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "0")
        #expect(try await blocking { try fixture.count("sandhi_committed") } == "0")
        #expect(handle.bank.heldLocks.isEmpty)
        try await handle.close()
    }

    @Test func insufficientFundsAndAnUnknownAccountVoteNoAndPrepareNothing() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let replies = try await handle.process([
            F.prepare(F.tx(1), [.debit(account: bob, amount: .rupees(501)), .credit(account: alice, amount: .rupees(501))]),
            F.prepare(F.tx(2), [.credit(account: AccountID(validated: "carol"), amount: .rupees(1))]),
        ])
        guard replies.count == 2, case .vote(F.tx(1), .no(let insufficient), _) = replies[0],
              case .vote(F.tx(2), .no(let unknown), _) = replies[1] else {
            Issue.record("expected two NO votes, got \(replies)")
            return
        }
        #expect(insufficient == .insufficientFunds(ResourceID(participant: hdfc, account: bob), balance: .rupees(500), debit: .rupees(501)))
        #expect(unknown == .unknownAccount(ResourceID(participant: hdfc, account: AccountID(validated: "carol"))))
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50000")
        // Their write-sets go with the next batch's statements (here one with nothing to stage).
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "2")
        #expect(try await handle.process([]) == [])
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "0")
        #expect(handle.bank.inDoubt().isEmpty)
        #expect(handle.bank.heldLocks.isEmpty)
        try await handle.close()
    }

    /// The database's arithmetic runs before the engine's rule (one statement stages a branch),
    /// so amounts it cannot sum, and sums beyond 64 bits, must be NO votes, not failed batches
    /// or a crash.
    @Test func amountsBeyondSixtyFourBitsOrNotPositiveVoteNoAndTheBatchGoesOn() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let first = try await handle.process([
            F.prepare(F.tx(1), [.credit(account: alice, amount: Paise(Int64.max))]),
            F.prepare(F.tx(2), [.debit(account: bob, amount: Paise(Int64.min)), .credit(account: bob, amount: Paise(Int64.max))]),
        ])
        let second = try await handle.process([F.prepare(F.tx(3), [.debit(account: bob, amount: Paise(0))])])
        let third = try await handle.process([F.prepare(F.tx(4), [.debit(account: bob, amount: .rupees(1))])])
        let votes = (first + second + third).reduce(into: [TransactionID: Vote]()) { votes, reply in
            if case .vote(let tx, let vote, _) = reply { votes[tx] = vote }
        }
        guard case .no(let overflow)? = votes[F.tx(1)], case .no(let minimum)? = votes[F.tx(2)], case .no(let zero)? = votes[F.tx(3)],
              case .yes? = votes[F.tx(4)] else {
            Issue.record("expected three NO votes and a YES, got \(votes)")
            return
        }
        #expect(overflow == .creditOverflow(ResourceID(participant: hdfc, account: alice)))
        #expect(minimum == .notPositiveAmount(ResourceID(participant: hdfc, account: bob), Paise(Int64.min)))
        #expect(zero == .notPositiveAmount(ResourceID(participant: hdfc, account: bob), Paise(0)))
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gids(F.tx(4)))
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50000")
        try await handle.close()
    }

    @Test func aReadOnlyBranchVotesReadOnlyAndPreparesNothing() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let tx = F.tx(3)
        #expect(try await handle.process([F.prepare(tx, [.read(account: alice), .read(account: bob)])]) == [.vote(tx, .readOnly, observed: [
            Observation(account: alice, balance: .rupees(1_000), version: 0, writer: nil),
            Observation(account: bob, balance: .rupees(500), version: 0, writer: nil),
        ])])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.count("sandhi_intents") } == "0")
        #expect(handle.bank.heldLocks.isEmpty)
        try await handle.close()
    }

    @Test func aNegativeBalanceRefusedByPostgresItselfIsANoVote() async throws {
        // A writer outside Sandhi can only change an unlocked account; the CHECK constraint is
        // what stops a negative balance even so. Here it is checked directly.
        let fixture = try await makeFixture()
        let refused = try await blocking {
            try? fixture.cluster.sql(fixture.database, "UPDATE accounts SET balance = -1 WHERE id = 'bob'")
        }
        #expect(refused == nil)
        #expect(try await blocking { try fixture.balances() } == "alice=100000\nbob=50000")
    }

    @Test func aSecondCommitOrRollbackIsAlreadyDone() async throws {
        let fixture = try await makeFixture()
        var handle = try await blocking { try fixture.open() }
        let debitAlice = { (tx: TransactionID, rupees: Int64) in F.prepare(tx, [.debit(account: F.alice, amount: .rupees(rupees))]) }
        let creditBob = { (tx: TransactionID, rupees: Int64) in F.prepare(tx, [.credit(account: F.bob, amount: .rupees(rupees))]) }
        _ = try await handle.process([debitAlice(F.tx(1), 10)])
        _ = try await handle.process([creditBob(F.tx(2), 5)])
        #expect(try await blocking { try fixture.preparedGids() } == fixture.gids(F.tx(1), F.tx(2)))
        #expect(try await handle.process([.commit(F.tx(1)), .rollback(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        // Again, as a coordinator retrying after a lost acknowledgement does.
        #expect(try await handle.process([.commit(F.tx(1)), .rollback(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50000")

        // PostgreSQL's own idempotence: branches the bank still believes prepared, finished by
        // hand behind its back, then COMMIT/ROLLBACK PREPARED find no such gid: already done.
        _ = try await handle.process([debitAlice(F.tx(3), 20)])
        _ = try await handle.process([creditBob(F.tx(4), 7)])
        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(Set(handle.bank.inDoubt().keys) == [F.tx(3), F.tx(4)])
        try await blocking {
            try fixture.cluster.sql(fixture.database, "COMMIT PREPARED '\(fixture.gid(F.tx(3)))'")
            try fixture.cluster.sql(fixture.database, "ROLLBACK PREPARED '\(fixture.gid(F.tx(4)))'")
        }
        #expect(try await handle.process([.commit(F.tx(3)), .rollback(F.tx(4))]) == [.acknowledged(F.tx(3)), .acknowledged(F.tx(4))])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=97000\nbob=50000")
        #expect(handle.bank.inDoubt().isEmpty)
        try await handle.close()
    }

    @Test func aPreparedBranchSurvivesReopeningAndIsThenCommitted() async throws {
        let fixture = try await makeFixture()
        var handle = try await blocking { try fixture.open() }
        let tx = F.tx(7)
        let report = Report(kind: "large", amount: .rupees(100), reference: "r-7")
        _ = try await handle.process([F.prepare(tx, [.debit(account: alice, amount: .rupees(100)), .fileReport(report)])])
        try await handle.close()

        handle = try await blocking { try fixture.open() }
        // Rebuilt from pg_prepared_xacts and the branch's write-set row.
        #expect(handle.bank.inDoubt() == [tx: [hdfc]])
        #expect(handle.bank.inDoubtLocks() == [tx: [alice]])
        #expect(handle.bank.heldLocks == [alice: tx])
        // Its lock holds across the reopening: a conflicting branch is refused at once.
        let conflict = try await handle.process([F.prepare(F.tx(8), [.credit(account: alice, amount: .rupees(1))])])
        #expect(conflict == [.vote(F.tx(8), .no(.lockedBy(ResourceID(participant: hdfc, account: alice), holder: tx)))])
        // A duplicate PREPARE gets the same YES.
        #expect(try await handle.process([F.prepare(tx, [.debit(account: alice, amount: .rupees(100)), .fileReport(report)])]) == [.vote(tx, .yes)])

        #expect(try await handle.process([.commit(tx)]) == [.acknowledged(tx)])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=90000\nbob=50000")
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT kind || ' ' || amount_paise || ' ' || reference FROM sandhi_reports") }
                == "large 10000 r-7")
        try await handle.close()

        // A stale duplicate of the PREPARE after another restart is not applied twice.
        handle = try await blocking { try fixture.open() }
        #expect(try await handle.process([F.prepare(tx, [.debit(account: alice, amount: .rupees(100)), .fileReport(report)])]) == [])
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.balances() } == "alice=90000\nbob=50000")
        try await handle.close()
    }

    @Test func preparedTransactionsOfOthersAreLeftUntouched() async throws {
        let fixture = try await makeFixture()
        let ours = fixture.instance.name
        // Not Sandhi's; another coordinator's; ours for another participant; ours in a form we never write.
        let foreign = ["not-sandhi-42", "sandhi:other-\(ours):1.5:hdfc", "sandhi:\(ours):1.6:icici", "sandhi:\(ours):T-1.7:hdfc"]
        try await blocking {
            for gid in foreign {
                try fixture.cluster.sql(fixture.database, "BEGIN; INSERT INTO sandhi_meta(key, value) VALUES ('\(gid)', 'x'); PREPARE TRANSACTION '\(gid)'")
            }
        }
        var handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt().isEmpty)
        _ = try await handle.process([F.transfer(F.tx(1), rupees: 1)])
        #expect(try await handle.process([.commit(F.tx(1))]) == [.acknowledged(F.tx(1))])
        // A coordinator that rolls back what it does not know touches only its own gids.
        #expect(try await handle.process([.rollback(F.tx(5)), .rollback(F.tx(6)), .rollback(F.tx(7))]).count == 3)
        try await handle.close()
        handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt().isEmpty)
        try await handle.close()
        #expect(try await blocking { try fixture.preparedGids() } == foreign.sorted().joined(separator: "\n"))
        #expect(try await blocking { try fixture.balances() } == "alice=99900\nbob=50100")
        try await blocking {
            for gid in foreign { try fixture.cluster.sql(fixture.database, "ROLLBACK PREPARED '\(gid)'") }
        }
    }

    @Test func aBatchStagesManyBranchesOverThePool() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        // Twenty branches on twenty accounts, in one batch: one prepared transaction holds them
        // all, under a gid that names each, and one COMMIT PREPARED commits them.
        let accounts = (1...20).map { AccountID(validated: "acct-\($0)") }
        try await blocking {
            let values = accounts.map { "('\($0.name)', 1000)" }.joined(separator: ", ")
            try fixture.cluster.sql(fixture.database, "INSERT INTO accounts(id, balance) VALUES \(values)")
        }
        let transactions = (1...20).map { F.tx(UInt64(100 + $0)) }
        let prepares = zip(transactions, accounts).map { F.prepare($0, [.debit(account: $1, amount: Paise(10 * Int64($0.sequence - 100)))]) }
        let votes = try await handle.process(prepares)
        #expect(votes.count == 20)
        #expect(votes.allSatisfy { if case .vote(_, .yes, _) = $0 { return true } else { return false } })
        #expect(try await blocking { try fixture.preparedGids() } == GlobalTransactionID(instance: fixture.instance, transactions: transactions,
                                                                                           participant: F.hdfc).description)
        #expect(try await handle.process(transactions.map { .commit($0) }) == transactions.map { .acknowledged($0) })
        #expect(try await blocking { try fixture.preparedGids() } == "")
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT sum(1000 - balance) FROM accounts WHERE id LIKE 'acct-%'") }
                == "\((1...20).reduce(0) { $0 + 10 * $1 })")
        try await handle.close()
    }

    /// Banks made by the previous formats (the same tables; no staging function in the first, a
    /// per-branch one in the second; no table of votes before the third; no table of branches
    /// settled by hand before the fourth; no notes of groups rolling back before the fifth) are upgraded when they open, with a branch of the old
    /// kind still prepared, and work; a format this build does not know is refused.
    @Test(arguments: [1, 2, 3, 4])
    func aBankOfAnEarlierFormatIsUpgradedWhenItOpensAndAnUnknownFormatIsRefused(format: Int) async throws {
        let fixture = try await makeFixture()
        try await blocking { try fixture.open().bank.close() }
        let older = (format >= 3 ? "" : "DROP FUNCTION sandhi_stage_group; DROP TABLE sandhi_voted; ")
            + (format == 2 ? "CREATE FUNCTION sandhi_stage() RETURNS int LANGUAGE sql AS 'SELECT 1'; " : "")
            + (format == 4 ? "" : "DROP TABLE sandhi_heuristic; ")
        _ = try await blocking {
            try fixture.cluster.sql(fixture.database, "DROP TABLE sandhi_rolling_back; \(older)"
                                    + "UPDATE sandhi_meta SET value = 'sandhi-postgres-bank-\(format)' WHERE key = 'format'")
            // A branch prepared by the older format (its write-set row deleted inside it, as
            // that format did): the upgrade must not wait for any lock it holds.
            let hex = OperationCodec.encode([.debit(account: F.alice, amount: .rupees(100))]).map { byte in
                String(byte >> 4, radix: 16) + String(byte & 0xf, radix: 16)
            }.joined()
            try fixture.cluster.sql(fixture.database, "INSERT INTO sandhi_intents VALUES ('\(fixture.instance)', \(F.tx(9).rawValue), '\\x\(hex)', 'hdfc', 0)")
            try fixture.cluster.sql(fixture.database, """
                BEGIN; UPDATE accounts SET balance = balance - 10000 WHERE id = 'alice';
                DELETE FROM sandhi_intents WHERE tx = \(F.tx(9).rawValue);
                INSERT INTO sandhi_committed VALUES ('\(fixture.instance)', \(F.tx(9).rawValue), 'hdfc', -10000);
                PREPARE TRANSACTION '\(fixture.gid(F.tx(9)))'
                """)
        }
        let handle = try await blocking { try fixture.open() }
        #expect(handle.bank.inDoubt() == [F.tx(9): [F.hdfc]])
        #expect(try await handle.process([.commit(F.tx(9))]) == [.acknowledged(F.tx(9))])
        let tx = F.tx(1)
        #expect(try await handle.process([F.transfer(tx, rupees: 300)]).count == 1)
        #expect(try await handle.process([.commit(tx)]) == [.acknowledged(tx)])
        #expect(try await blocking { try fixture.balances() } == "alice=60000\nbob=80000")
        try await handle.close()
        #expect(try await blocking { try fixture.cluster.sql(fixture.database, "SELECT value FROM sandhi_meta WHERE key = 'format'") }
                == "sandhi-postgres-bank-5")
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "UPDATE sandhi_meta SET value = 'sandhi-postgres-bank-9' WHERE key = 'format'") }
        let refused = try await blocking { () -> String? in
            do { _ = try PostgresBank(fixture.configuration, logger: F.logger); return nil } catch { return "\(error)" }
        }
        #expect(refused == "PostgreSQL database \(fixture.database) is not a Sandhi bank (format sandhi-postgres-bank-9)")
    }

    @Test func aDatabaseOfAnotherParticipantIsRefused() async throws {
        let fixture = try await makeFixture()
        var icici = fixture.configuration
        icici.participant = ParticipantID(validated: "icici")
        let other = icici
        let error = try await blocking { () -> String? in
            do {
                _ = try PostgresBank(other, logger: F.logger)
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(error == "PostgreSQL database \(fixture.database) belongs to participant hdfc, not icici")
    }
}

@Suite struct GlobalTransactionIDTests {
    static let instance = CoordinatorInstance(validated: "mumbai-1"), hdfc = ParticipantID(validated: "hdfc")

    @Test func formatsAndParsesBack() {
        let gid = GlobalTransactionID(instance: Self.instance, transaction: TransactionID(epoch: 3, sequence: 4711), participant: Self.hdfc)
        #expect(gid.description == "sandhi:mumbai-1:3.4711:hdfc")
        #expect(GlobalTransactionID(parsing: gid.description) == gid)
    }

    @Test func aGroupNamesEveryMemberAndParsesBack() {
        let members = [4711, 4712, 4715].map { TransactionID(epoch: 3, sequence: $0) }
        let gid = GlobalTransactionID(instance: Self.instance, transactions: members, participant: Self.hdfc)
        #expect(gid.description == "sandhi:mumbai-1:3.4711+4712+4715:hdfc")
        #expect(GlobalTransactionID(parsing: gid.description) == gid)
        #expect(GlobalTransactionID(parsing: gid.description)?.transactions == members)
    }

    @Test func aGroupGrowsOnlyWhileItsGidFitsInPostgreSQLsLimit() {
        var members = [TransactionID(epoch: 3, sequence: 1_000_000)]
        while GlobalTransactionID.fits(Self.instance, members, adding: TransactionID(epoch: 3, sequence: members.last!.sequence + 1), Self.hdfc) {
            members.append(TransactionID(epoch: 3, sequence: members.last!.sequence + 1))
        }
        let longest = GlobalTransactionID(instance: Self.instance, transactions: members, participant: Self.hdfc).description
        #expect(longest.utf8.count <= 199 && longest.utf8.count > 190)
        #expect(members.count == 22)
        #expect(GlobalTransactionID(parsing: longest)?.transactions == members)
        #expect(GlobalTransactionID(parsing: longest + "+9999999") == nil)
    }

    @Test func refusesWhatIsNotExactlyOurs() {
        for text in ["", "sandhi", "not-sandhi-42", "sandhi:a:1.2", "sandhi:a:1.2:b:c", "SANDHI:a:1.2:b", "sandhi:a:T-1.2:b",
                     "sandhi:a:12:b", "sandhi:a:01.2:b", "sandhi:A:1.2:b", "sandhi:a:1.2:b'",
                     // Groups: members ascending, of the first member's epoch, plain numbers.
                     "sandhi:a:1.2+2:b", "sandhi:a:1.3+2:b", "sandhi:a:1.2+:b", "sandhi:a:1.2++3:b", "sandhi:a:1.2+1.3:b",
                     "sandhi:a:1.2+03:b", "sandhi:a:+1.2:b", "sandhi:a:1.2+x:b"] {
            #expect(GlobalTransactionID(parsing: text) == nil, "\(text)")
        }
    }
}
