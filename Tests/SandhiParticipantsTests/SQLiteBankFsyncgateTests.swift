import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
import Testing

/// A SQLite bank on a simulated disk, through `FileSystemVFS`, after its WAL sync fails.
@Suite struct SQLiteBankFsyncgateTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let hdfc = ParticipantID(validated: "hdfc")
    let account = AccountID(validated: "acct-1")
    let path = "/data/banks/hdfc.sqlite"
    func tx(_ n: UInt64) -> TransactionID { TransactionID(epoch: 1, sequence: n) }

    /// Review finding F1: after a failed fsync Linux marks the dirty pages clean and keeps
    /// them, so a restart without a reboot reads back WAL frames the disk never got. A bank
    /// that reopened on them would acknowledge a COMMIT that a later power cut reverts to
    /// "prepared", after the coordinator forgot it. Reopening must see what the disk holds:
    /// the branch still prepared.
    @Test func reopeningAfterAFailedWALSyncSeesTheDiskNotThePageCache() throws {
        let disk = SimulatedDisk(seed: 5)
        try disk.makeDirectories("/data/banks")
        let io = FileIO.through(disk)
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(account, .rupees(100))], io: io, logger: logger)
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger, io: io)
        let votes = try bank.process([.prepare(tx(1), operations: [.debit(account: account, amount: .rupees(10))], writers: [hdfc])])
        #expect(votes.count == 1)
        try bank.makeDurable()
        _ = try bank.process([.commit(tx(1))])
        disk.failNextSync()
        #expect(throws: (any Error).self) { try bank.makeDurable() }
        bank.close()

        disk.restartProcess(evictingCleanPages: false)
        let reopened = try SQLiteBank(path: path, participant: hdfc, logger: logger, io: io)
        #expect(Array(reopened.inDoubt().keys) == [tx(1)], "the COMMIT only the page cache held was read back")
        #expect(try reopened.balance(of: account) == .rupees(100))
        reopened.close()

        // And what the reopened bank saw is what a power cut leaves.
        disk.powerLoss()
        let afterPowerLoss = try SQLiteBank(path: path, participant: hdfc, logger: logger, io: io)
        defer { afterPowerLoss.close() }
        #expect(Array(afterPowerLoss.inDoubt().keys) == [tx(1)])
        #expect(try afterPowerLoss.balance(of: account) == .rupees(100))
    }

    /// A bank whose WAL sync failed says so for good: a second `makeDurable` must not succeed
    /// (after fsyncgate it would, with nothing written), and the disk keeps the commit unsynced.
    /// With the planted retry it succeeds, and what it vouched for is not on the disk: the
    /// simulator's `readsMatchDisk` check sees exactly that.
    @Test(arguments: [false, true])
    func aFailedWALSyncStaysFailedUnlessTheRetryIsPlanted(planted: Bool) throws {
        let disk = SimulatedDisk(seed: 6)
        try disk.makeDirectories("/data/banks")
        let io = FileIO.through(disk)
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(account, .rupees(100))], io: io, logger: logger)
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger, io: io)
        defer { bank.close() }
        bank.plantedRetryAfterFailedSync = planted
        _ = try bank.process([.prepare(tx(1), operations: [.debit(account: account, amount: .rupees(10))], writers: [hdfc])])
        disk.failNextSync()
        if planted {
            try bank.makeDurable()
            #expect(!disk.readsMatchDisk(path + "-wal"), "the vote's write-set is in the page cache only")
        } else {
            #expect(throws: (any Error).self) { try bank.makeDurable() }
            #expect(throws: (any Error).self, "sticky") { try bank.makeDurable() }
        }
    }
}
