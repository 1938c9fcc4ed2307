import Logging
import SandhiEngine
import SandhiParticipants
import SandhiTestSupport
import Testing

@Suite struct SQLiteBankTests {
    let hdfc = ParticipantID(validated: "hdfc")
    let alice = AccountID(validated: "alice"), bob = AccountID(validated: "bob")
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func tx(_ sequence: UInt64) -> TransactionID { TransactionID(epoch: 1, sequence: sequence) }

    func makeBank(_ directory: TemporaryDirectory) throws -> SQLiteBank {
        let path = directory.appending("hdfc.sqlite")
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(alice, .rupees(1_000)), (bob, .rupees(500))], logger: logger)
        return try SQLiteBank(path: path, participant: hdfc, logger: logger)
    }

    func prepare(_ id: TransactionID, _ operations: [SandhiEngine.Operation]) -> ParticipantMessage {
        .prepare(id, operations: operations, writers: [hdfc])
    }

    @Test func prepareThenCommitMovesMoneyAndRecordsTheBranch() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        let replies = try bank.process([prepare(tx(1), [.debit(account: alice, amount: .rupees(300)), .credit(account: bob, amount: .rupees(300))])])
        // Each operation reports what it saw: the opening balances, version 0, no writer yet.
        #expect(replies == [.vote(tx(1), .yes, observed: [
            Observation(account: alice, balance: .rupees(1_000), version: 0, writer: nil),
            Observation(account: bob, balance: .rupees(500), version: 0, writer: nil),
        ])])
        // Prepared, not applied: balances unchanged, accounts locked, write-set persisted.
        #expect(try bank.balance(of: alice) == .rupees(1_000))
        #expect(bank.heldLocks == [alice: tx(1), bob: tx(1)])
        #expect(bank.inDoubt() == [tx(1): [hdfc]])
        #expect(try bank.process([.commit(tx(1))]) == [.acknowledged(tx(1))])
        #expect(try bank.balance(of: alice) == .rupees(700))
        #expect(try bank.balance(of: bob) == .rupees(800))
        #expect(bank.heldLocks.isEmpty)
        #expect(try bank.committedBranches()[tx(1)]?.netPaise == 0)
        #expect(try bank.total() == bank.minted())
    }

    @Test func insufficientFundsAndUnknownAccountVoteNoAndChangeNothing() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        let replies = try bank.process([
            prepare(tx(1), [.debit(account: bob, amount: .rupees(501))]),
            prepare(tx(2), [.credit(account: AccountID(validated: "carol"), amount: .rupees(1))]),
            prepare(tx(3), [.debit(account: alice, amount: Paise(0))]),
        ])
        #expect(replies.count == 3)
        guard case .vote(_, .no(let insufficient), _) = replies[0], case .vote(_, .no(let unknown), _) = replies[1],
              case .vote(_, .no(let zero), _) = replies[2] else {
            Issue.record("expected three NO votes, got \(replies)")
            return
        }
        #expect(insufficient == .insufficientFunds(ResourceID(participant: hdfc, account: bob), balance: .rupees(500), debit: .rupees(501)))
        #expect(unknown == .unknownAccount(ResourceID(participant: hdfc, account: AccountID(validated: "carol"))))
        #expect(zero == .notPositiveAmount(ResourceID(participant: hdfc, account: alice), Paise(0)))
        #expect(bank.inDoubt().isEmpty)
        #expect(bank.heldLocks.isEmpty)
        #expect(try bank.total() == .rupees(1_500))
    }

    @Test func aConflictingPrepareIsRefusedWhileTheAccountIsLocked() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        _ = try bank.process([prepare(tx(1), [.debit(account: alice, amount: .rupees(1))])])
        let replies = try bank.process([prepare(tx(2), [.credit(account: alice, amount: .rupees(1))])])
        #expect(replies == [.vote(tx(2), .no(.lockedBy(ResourceID(participant: hdfc, account: alice), holder: tx(1))))])
        _ = try bank.process([.rollback(tx(1))])
        #expect(try bank.process([prepare(tx(3), [.credit(account: alice, amount: .rupees(1))])]).voteOnly == [.vote(tx(3), .yes)])
    }

    /// The coordinator takes the bank's refusal of a locked account as a passing conflict (run
    /// it again once the holder's outcome lands) and its refusals of the data as final.
    @Test func aLockRefusalIsTransientAndARefusalOfTheDataIsNot() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        _ = try bank.process([prepare(tx(1), [.debit(account: alice, amount: .rupees(1))])])
        let replies = try bank.process([
            prepare(tx(2), [.credit(account: alice, amount: .rupees(1))]),
            prepare(tx(3), [.debit(account: bob, amount: .rupees(501))]),
            prepare(tx(4), [.credit(account: AccountID(validated: "carol"), amount: .rupees(1))]),
        ])
        let votes = replies.compactMap { reply -> Vote? in if case .vote(_, let vote, _) = reply { vote } else { nil } }
        try #require(votes.count == 3 && votes.allSatisfy(\.isNo), "\(replies)")
        #expect(votes[0].abortCause(at: hdfc) == .participantBusy, "\(votes[0])")
        #expect(votes[1].abortCause(at: hdfc) == .participantRefused, "\(votes[1])")
        #expect(votes[2].abortCause(at: hdfc) == .participantRefused, "\(votes[2])")
    }

    @Test func aPreparedBranchSurvivesReopeningAndRetakesItsLocks() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        var bank = try makeBank(directory)
        _ = try bank.process([prepare(tx(7), [.debit(account: alice, amount: .rupees(100)), .fileReport(Report(kind: "large", amount: .rupees(100), reference: "r"))])])
        bank.close()
        bank = try SQLiteBank(path: directory.appending("hdfc.sqlite"), participant: hdfc, logger: logger)
        #expect(bank.inDoubt() == [tx(7): [hdfc]])
        #expect(bank.heldLocks == [alice: tx(7)])
        #expect(try bank.process([prepare(tx(8), [.debit(account: alice, amount: .rupees(1))])]) == [.vote(tx(8), .no(.lockedBy(ResourceID(participant: hdfc, account: alice), holder: tx(7))))])
        #expect(try bank.process([.commit(tx(7))]) == [.acknowledged(tx(7))])
        #expect(try bank.balance(of: alice) == .rupees(900))
        #expect(try bank.reports().map(\.transaction) == [tx(7)])
    }

    @Test func commitAndRollbackAreIdempotent() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        _ = try bank.process([prepare(tx(1), [.debit(account: alice, amount: .rupees(10))])])
        #expect(try bank.process([.commit(tx(1)), .commit(tx(1)), .rollback(tx(1))]) == [.acknowledged(tx(1)), .acknowledged(tx(1)), .acknowledged(tx(1))])
        #expect(try bank.balance(of: alice) == .rupees(990)) // applied once, never undone
        #expect(try bank.process([.rollback(tx(99))]) == [.acknowledged(tx(99))])
    }

    @Test func oneBatchCarriesManyTransactions() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("hdfc.sqlite")
        let accounts = (0..<100).map { (AccountID(validated: "a\($0)"), Paise.rupees(10)) }
        try SQLiteBank.create(path: path, participant: hdfc, accounts: accounts, logger: logger)
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        let prepares = (0..<100).map { prepare(tx(UInt64($0 + 1)), [.debit(account: accounts[$0].0, amount: .rupees(1))]) }
        #expect(try bank.process(prepares).allSatisfy { if case .vote(_, .yes, _) = $0 { return true } else { return false } })
        let commits = (0..<100).map { ParticipantMessage.commit(tx(UInt64($0 + 1))) }
        #expect(try bank.process(commits).count == 100)
        #expect(try bank.total() == .rupees(900))
    }

    @Test func aReadOnlyBranchVotesReadOnlyAndHoldsNothing() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        #expect(try bank.process([prepare(tx(1), [.read(account: alice)])]) == [.vote(tx(1), .readOnly, observed: [
            Observation(account: alice, balance: .rupees(1_000), version: 0, writer: nil),
        ])])
        #expect(bank.inDoubt().isEmpty && bank.heldLocks.isEmpty)
    }

    @Test func aStalePrepareAfterARestartIsNotAppliedTwice() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("hdfc.sqlite")
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(alice, .rupees(1_000)), (bob, .rupees(500))], logger: logger)
        let transfer = prepare(tx(1), [.debit(account: alice, amount: .rupees(100)), .credit(account: bob, amount: .rupees(100))])
        var bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        _ = try bank.process([transfer, .commit(tx(1))])
        bank.close()
        bank = try SQLiteBank(path: path, participant: hdfc, logger: logger) // a restart: its memory is gone
        defer { bank.close() }
        // The network delivers a duplicate of the old PREPARE, then the coordinator's resent COMMIT.
        #expect(try bank.process([transfer]).isEmpty, "no vote for a branch committed before")
        #expect(bank.inDoubt().isEmpty && bank.heldLocks.isEmpty)
        #expect(try bank.process([.commit(tx(1))]) == [.acknowledged(tx(1))])
        #expect(try bank.balance(of: alice) == .rupees(900), "applied once")
        #expect(try bank.balance(of: bob) == .rupees(600))
    }

    @Test func aFileOfTheFirstFormatGainsVersionsWhenOpened() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("hdfc.sqlite")
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(alice, .rupees(1_000)), (bob, .rupees(500))], logger: logger)
        // Turn it back into what the first release wrote: no version, no writer.
        let raw = try SQLiteDatabase(path: path, create: false)
        try raw.execute("ALTER TABLE accounts DROP COLUMN version; ALTER TABLE accounts DROP COLUMN writer; "
                        + "UPDATE meta SET value = 'sandhi-bank-1' WHERE key = 'format'")
        raw.close()
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        defer { bank.close() }
        let replies = try bank.process([prepare(tx(1), [.read(account: alice)])])
        #expect(replies == [.vote(tx(1), .readOnly, observed: [Observation(account: alice, balance: .rupees(1_000), version: 0, writer: nil)])])
        _ = try bank.process([prepare(tx(2), [.debit(account: alice, amount: .rupees(1)), .credit(account: bob, amount: .rupees(1))]), .commit(tx(2))])
        let after = try bank.process([prepare(tx(3), [.read(account: bob)])])
        #expect(after == [.vote(tx(3), .readOnly, observed: [Observation(account: bob, balance: .rupees(501), version: 1, writer: tx(2))])])
    }

    @Test func readsSeeCommittedVersionsAndTheBranchsOwnEarlierWrites() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let bank = try makeBank(directory)
        _ = try bank.process([prepare(tx(1), [.debit(account: alice, amount: .rupees(100)), .credit(account: bob, amount: .rupees(100))])])
        _ = try bank.process([.commit(tx(1))])
        // Debit then read then credit of one account: each sees the branch's changes so far,
        // with the versions they will install.
        let replies = try bank.process([prepare(tx(2), [
            .read(account: alice), .debit(account: alice, amount: .rupees(50)), .read(account: alice),
            .credit(account: alice, amount: .rupees(5)), .read(account: bob),
        ])])
        #expect(replies == [.vote(tx(2), .yes, observed: [
            Observation(account: alice, balance: .rupees(900), version: 1, writer: tx(1)),
            Observation(account: alice, balance: .rupees(900), version: 1, writer: tx(1)),
            Observation(account: alice, balance: .rupees(850), version: 2, writer: tx(2)),
            Observation(account: alice, balance: .rupees(850), version: 2, writer: tx(2)),
            Observation(account: bob, balance: .rupees(600), version: 1, writer: tx(1)),
        ])])
        _ = try bank.process([.commit(tx(2))])
        let after = try bank.process([prepare(tx(3), [.read(account: alice)])])
        #expect(after == [.vote(tx(3), .readOnly, observed: [Observation(account: alice, balance: .rupees(855), version: 3, writer: tx(2))])])
    }

    @Test func refusesFilesThatAreNotThisBank() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        _ = try makeBank(directory)
        #expect(throws: SQLiteBank.OpenError.wrongParticipant(path: directory.appending("hdfc.sqlite"), found: "hdfc", expected: "sbi")) {
            try SQLiteBank(path: directory.appending("hdfc.sqlite"), participant: ParticipantID(validated: "sbi"), logger: logger)
        }
        #expect(throws: SQLiteBank.OpenError.missing(path: directory.appending("nope.sqlite"))) {
            try SQLiteBank(path: directory.appending("nope.sqlite"), participant: hdfc, logger: logger)
        }
        let other = directory.appending("other.sqlite")
        let database = try SQLiteDatabase(path: other, create: true)
        try database.execute("CREATE TABLE t(x)")
        database.close()
        #expect(throws: SQLiteBank.OpenError.self) { try SQLiteBank(path: other, participant: hdfc, logger: logger) }
    }
}

@Suite struct SQLiteBankReopenTests {
    @Test func aBankCanBeReopenedInTheSameProcess() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let hdfc = ParticipantID(validated: "hdfc")
        let path = directory.appending("hdfc.sqlite")
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(AccountID(validated: "a"), .rupees(1))], logger: logger)
        let sbi = ParticipantID(validated: "sbi")
        try SQLiteBank.create(path: directory.appending("sbi.sqlite"), participant: sbi, accounts: [(AccountID(validated: "a"), .rupees(1))], logger: logger)
        for _ in 0..<3 {
            let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
            #expect(try bank.total() == .rupees(1))
            bank.close()
        }
    }
}

@Suite struct SQLiteBankDurabilityTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let hdfc = ParticipantID(validated: "hdfc")

    @Test func checkpointsKeepTheWALBoundedAndLoseNothing() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("hdfc.sqlite")
        let accounts = (0..<200).map { (AccountID(validated: "a\($0)"), Paise.rupees(100)) }
        try SQLiteBank.create(path: path, participant: hdfc, accounts: accounts, logger: logger)
        var bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        bank.walCheckpointBytes = 64 * 1024
        var sequence: UInt64 = 0
        var committed = 0
        for round in 0..<300 {
            sequence += 1
            let tx = TransactionID(epoch: 1, sequence: sequence)
            let from = accounts[round % 200].0, to = accounts[(round * 7 + 1) % 200].0
            guard from != to else { continue }
            _ = try bank.process([.prepare(tx, operations: [.debit(account: from, amount: .rupees(1)), .credit(account: to, amount: .rupees(1))], writers: [hdfc])])
            _ = try bank.process([.commit(tx)])
            try bank.makeDurable()
            committed += 1
            let walBytes = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
            #expect(walBytes < 4 * 64 * 1024, "the WAL grew to \(walBytes) bytes")
        }
        bank.close()
        bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        #expect(try bank.total() == .rupees(20_000))
        #expect(try bank.committedBranches().count == committed)
        bank.close()
    }

    @Test func aFailedSyncIsReportedAndSticks() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("hdfc.sqlite")
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(AccountID(validated: "a"), .rupees(1))], logger: logger)
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        defer { bank.close() }
        bank.failNextSync = true
        #expect(throws: SQLiteError.self) { try bank.makeDurable() }
        // fsyncgate: a later fsync "succeeding" proves nothing about what was dropped.
        #expect(throws: SQLiteError.self) { try bank.makeDurable() }
    }
}

import Foundation
