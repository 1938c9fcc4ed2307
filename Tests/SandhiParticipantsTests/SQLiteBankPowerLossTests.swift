import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiTestSupport
import Testing

/// The SQLite bank that ships, on a disk that loses what was not synced (issue 13): a bank
/// created and opened through `FileSystemVFS` over a `SimulatedDisk` stages and decides
/// transfers in batches, checkpoints its WAL, closes and reopens, and is killed (the process,
/// not the machine) between a batch and its sync; the power goes after every one of its disk
/// calls in turn, each cut keeping, dropping or tearing the unsynced writes as its seed draws,
/// and the bank is opened again. Whatever it said after a `makeDurable` that returned must hold:
///
/// - a bank whose `create` returned opens, with every account at its opening balance;
/// - a YES vote: the branch is still prepared (its write-set and locks restored), unless a
///   COMMIT or ROLLBACK of it was processed since, which may have landed;
/// - an acknowledged COMMIT: the branch is committed and no longer prepared;
/// - an acknowledged ROLLBACK: neither committed nor prepared;
/// - nothing is committed that no COMMIT asked for, each balance is its opening balance plus
///   the committed branches' work, and committing every restored branch conserves the total.
///
/// This is the bank's half of every durability point between SQLite and the disk: the WAL
/// sync in `makeDurable` (through the VFS's xSync), the VFS's directory sync of a new WAL,
/// the directory sync of the -wal file when a bank opens, `synchronous=FULL` while a bank is
/// created and `synchronous=NORMAL` (not OFF) after, which orders SQLite's own checkpoints.
@Suite struct SQLiteBankPowerLossTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static let path = "/data/banks/hdfc.sqlite"
    static let hdfc = ParticipantID(validated: "hdfc")
    static let accounts = (0..<10).map { AccountID(validated: "a\($0)") }
    static let opening = Paise.rupees(1_000)
    /// Timestamps in rows do not change what the disk is asked to do, run after run.
    static let clock = Clocks(monotonicUs: { 0 }, wallMs: { 1_700_000_000_000 })

    /// One internal transfer: `amount` from one account of the bank to another.
    struct Transfer: Hashable {
        var from: AccountID
        var to: AccountID
        var amount: Paise

        var operations: [SandhiEngine.Operation] { [.debit(account: from, amount: amount), .credit(account: to, amount: amount)] }
    }

    /// How an incarnation of the bank's process ends.
    enum Ending {
        /// `close()`: SQLite checkpoints the WAL into the database and deletes it.
        case close
        /// Killed right after its last batch was processed, before that batch's sync.
        case killedBeforeSync
        /// Killed between batches, everything synced.
        case killedIdle
    }

    /// The incarnations of the bank's process: how many rounds each runs, how it ends. The
    /// second dies as soon as it has opened (after a clean close, so its open created the WAL
    /// anew), and the third before its first sync: the next ones find a WAL that exists but
    /// whose name only the directory sync at open makes durable.
    static let incarnations: [(rounds: Int, ending: Ending)] = [(6, .close), (0, .killedIdle), (1, .killedBeforeSync), (5, .killedIdle), (5, .close)]

    /// What the bank promised before the power went.
    struct Promised {
        var created = false
        /// Every branch staged with a YES vote (durably or not): the only ones that may be
        /// prepared or committed after the cut.
        var staged: [TransactionID: Transfer] = [:]
        /// YES votes returned after a sync that succeeded.
        var votedYes = Set<TransactionID>()
        /// Decisions processed (true: COMMIT), durable or not: they may have landed.
        var decided: [TransactionID: Bool] = [:]
        /// Acknowledgements returned after a sync that succeeded.
        var acknowledged: [TransactionID: Bool] = [:]
    }

    static func open(_ io: FileIO) throws -> SQLiteBank {
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger, io: io, clock: clock)
        // A checkpoint every few batches: the WAL is copied into the database and reused.
        bank.walCheckpointBytes = 6 * 1_024
        return bank
    }

    /// Runs the workload until the disk loses power (or to its end), and says what was promised.
    static func run(_ disk: SimulatedDisk, _ io: FileIO, seed: UInt64) -> Promised {
        var promised = Promised()
        var random = SplitMix64(seed: seed)
        do {
            try SQLiteBank.create(path: path, participant: hdfc, accounts: accounts.map { ($0, opening) }, io: io, logger: logger)
        } catch {
            return promised
        }
        promised.created = true
        var sequence: UInt64 = 0
        for (incarnation, plan) in incarnations.enumerated() {
            guard let bank = try? open(io) else { return promised }
            var prepared = bank.inDoubt().keys.sorted()
            for round in 0..<plan.rounds {
                var batch: [ParticipantMessage] = []
                var transfers: [TransactionID: Transfer] = [:]
                for _ in 0..<(1 + random.next() % 3) {
                    sequence += 1
                    let tx = TransactionID(epoch: 1, sequence: sequence)
                    let from = Int(random.next() % UInt64(accounts.count))
                    let to = (from + 1 + Int(random.next() % UInt64(accounts.count - 1))) % accounts.count
                    let transfer = Transfer(from: accounts[from], to: accounts[to], amount: .rupees(Int64(1 + random.next() % 50)))
                    transfers[tx] = transfer
                    batch.append(.prepare(tx, operations: transfer.operations, writers: [hdfc]))
                }
                var decisions: [TransactionID: Bool] = [:]
                // The last round only prepares: the bank ends with branches in doubt.
                let last = incarnation == incarnations.count - 1 && round == plan.rounds - 1
                for tx in prepared where !last && random.next() % 2 == 0 {
                    decisions[tx] = random.next() % 4 != 0
                    batch.append(decisions[tx]! ? .commit(tx) : .rollback(tx))
                }
                prepared.removeAll { decisions[$0] != nil }
                guard let replies = try? bank.process(batch) else {
                    bank.close()
                    return promised
                }
                promised.decided.merge(decisions) { $1 }
                var yes: [TransactionID] = []
                for reply in replies {
                    if case .vote(let tx, .yes, _) = reply, let transfer = transfers[tx] {
                        promised.staged[tx] = transfer
                        prepared.append(tx)
                        yes.append(tx)
                    }
                }
                if plan.ending == .killedBeforeSync && round == plan.rounds - 1 { break }
                guard (try? bank.makeDurable()) != nil else {
                    bank.close()
                    return promised
                }
                promised.votedYes.formUnion(yes)
                for reply in replies {
                    if case .acknowledged(let tx) = reply, let commit = decisions[tx] { promised.acknowledged[tx] = commit }
                }
            }
            switch plan.ending {
            case .close:
                bank.close()
            case .killedBeforeSync, .killedIdle:
                // Descriptors go, the page cache stays. Nothing of a killed process runs after
                // it: the bank is made to fail a sync (its test hook, no disk call), after which
                // its close neither checkpoints nor deletes the WAL, and its descriptors are dead.
                disk.restartProcess()
                bank.failNextSync = true
                _ = try? bank.makeDurable()
                bank.close()
            }
        }
        return promised
    }

    /// Checks a bank opened after the power loss against what was promised; the branches still
    /// prepared are then committed, which must conserve the total.
    static func check(_ bank: SQLiteBank, _ promised: Promised, cut: Int, seed: UInt64) throws {
        let at = "seed \(seed), cut \(cut)"
        let committed = Set(try bank.committedBranches().keys)
        let inDoubt = Set(bank.inDoubt().keys)
        for tx in committed {
            #expect(promised.decided[tx] == true && promised.staged[tx] != nil, "\(at): \(tx) committed, but no COMMIT of a staged branch was processed")
        }
        for tx in inDoubt {
            #expect(promised.staged[tx] != nil, "\(at): \(tx) prepared, but never voted YES")
        }
        for tx in promised.votedYes where promised.decided[tx] == nil {
            #expect(inDoubt.contains(tx), "\(at): \(tx) voted YES, and is no longer prepared")
        }
        for (tx, commit) in promised.acknowledged {
            #expect(!inDoubt.contains(tx), "\(at): \(tx) acknowledged, and still prepared")
            #expect(committed.contains(tx) == commit, "\(at): \(tx) acknowledged a \(commit ? "COMMIT" : "ROLLBACK"), and is \(commit ? "not " : "")committed")
        }
        #expect(committed.isDisjoint(with: inDoubt), "\(at): branches both committed and prepared: \(committed.intersection(inDoubt).sorted())")
        var expected = Dictionary(uniqueKeysWithValues: accounts.map { ($0, opening.value) })
        for tx in committed {
            guard let transfer = promised.staged[tx] else { continue }
            expected[transfer.from]! -= transfer.amount.value
            expected[transfer.to]! += transfer.amount.value
        }
        let balances = Dictionary(uniqueKeysWithValues: try bank.balances().map { ($0.account, $0.balance.value) })
        #expect(balances == expected, "\(at): balances \(balances.sorted { $0.key < $1.key }), expected \(expected.sorted { $0.key < $1.key })")
        #expect(try bank.minted() == Paise(opening.value * Int64(accounts.count)), "\(at): minted")
        // The restored write-sets are whole: committing them moves exactly their amounts.
        var locked = Set<AccountID>()
        for tx in inDoubt {
            guard let transfer = promised.staged[tx] else { continue }
            locked.formUnion([transfer.from, transfer.to])
            expected[transfer.from]! -= transfer.amount.value
            expected[transfer.to]! += transfer.amount.value
        }
        #expect(Set(bank.heldLocks.keys) == locked, "\(at): locks \(bank.heldLocks), expected \(locked.sorted())")
        let acknowledgements = try bank.process(inDoubt.sorted().map { .commit($0) })
        #expect(acknowledgements == inDoubt.sorted().map { .acknowledged($0) }, "\(at): committing the restored branches")
        try bank.makeDurable()
        let after = Dictionary(uniqueKeysWithValues: try bank.balances().map { ($0.account, $0.balance.value) })
        #expect(after == expected, "\(at): after committing the restored branches, balances \(after.sorted { $0.key < $1.key })")
        #expect(try bank.total() == bank.minted(), "\(at): money created or lost")
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func everyVoteAndAcknowledgementSurvivesAPowerLossAfterAnyDiskCall(seed: UInt64) throws {
        let dry = SimulatedDisk(seed: seed)
        dry.installDirectory("/data/banks")
        let promised = Self.run(dry, .through(dry), seed: seed)
        let calls = dry.calls
        #expect(promised.acknowledged.values.contains(true) && promised.acknowledged.values.contains(false),
                "the workload commits and rolls back")
        #expect(!promised.votedYes.subtracting(promised.decided.keys).isEmpty, "the workload leaves branches prepared")
        #expect(calls.contains(.unlink(path: Self.path + "-wal")), "a clean close deleted the WAL")
        #expect(calls.filter { $0 == .dataSync(path: Self.path) }.count >= 2, "SQLite checkpointed into the database")
        for cut in 0...calls.count {
            let disk = SimulatedDisk(seed: seed &* 1_000_003 &+ UInt64(cut))
            disk.installDirectory("/data/banks")
            let io = FileIO.through(disk)
            disk.cutPower(afterCalls: cut)
            let promised = Self.run(disk, io, seed: seed)
            disk.powerLoss()
            guard promised.created else { continue }
            do {
                let bank = try Self.open(io)
                defer { bank.close() }
                try Self.check(bank, promised, cut: cut, seed: seed)
            } catch {
                Issue.record("seed \(seed), cut \(cut) of \(calls.count): the bank does not reopen, or fails after: \(error)")
            }
        }
    }

    /// `checkpointIfLarge` syncs the WAL itself before SQLite's checkpoint would: a failed fsync
    /// there is the bank's, and sticky, so no reply of the batch is vouched for. Left to
    /// SQLite, the failure would only fail the checkpoint, and the next sync, finding the pages
    /// marked clean (fsyncgate: Linux reports a writeback error once), would succeed without
    /// writing them: the YES vote would go out and the power cut take its branch.
    @Test func aSyncThatFailsBeforeACheckpointFailsEverySyncAfterIt() throws {
        let disk = SimulatedDisk(seed: 9)
        disk.installDirectory("/data/banks")
        let io = FileIO.through(disk)
        try SQLiteBank.create(path: Self.path, participant: Self.hdfc, accounts: Self.accounts.map { ($0, Self.opening) }, io: io, logger: Self.logger)
        let bank = try Self.open(io)
        let first = TransactionID(epoch: 1, sequence: 1), second = TransactionID(epoch: 1, sequence: 2)
        let move = Transfer(from: Self.accounts[0], to: Self.accounts[1], amount: .rupees(5))
        #expect(try bank.process([.prepare(first, operations: move.operations, writers: [Self.hdfc])]).voteOnly == [.vote(first, .yes)])
        try bank.makeDurable()
        // The next batch checkpoints, and the next fsync fails.
        bank.walCheckpointBytes = 1
        disk.failNextSync()
        let other = Transfer(from: Self.accounts[2], to: Self.accounts[3], amount: .rupees(7))
        #expect(try bank.process([.prepare(second, operations: other.operations, writers: [Self.hdfc])]).voteOnly == [.vote(second, .yes)])
        let vouched = (try? bank.makeDurable()) != nil
        #expect(!vouched, "a sync after the failed one succeeded: the vote for \(second) would be sent")
        bank.close()
        disk.powerLoss()
        if vouched {
            let reopened = try Self.open(io)
            defer { reopened.close() }
            #expect(reopened.inDoubt()[second] != nil, "\(second) was vouched for, and lost to a power cut")
        }
    }
}
