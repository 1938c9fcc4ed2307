import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiTestSupport
import Synchronization
import Testing

/// A bank's heuristic policy measures how long a branch has waited on the monotonic clock, in
/// milliseconds, from its prepare (or from the bank's opening, for a restored branch): never
/// on the wall clock, which NTP steps and which the bank once counted in whole seconds.
@Suite struct SQLiteBankHeuristicClockTests {
    let hdfc = ParticipantID(validated: "hdfc")
    let alice = AccountID(validated: "alice")
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let tx = TransactionID(epoch: 1, sequence: 1)

    /// Clocks a test moves by hand.
    final class HandClock: Sendable {
        let wallMs = Atomic<Int64>(1_700_000_000_000)
        let monotonicMs = Atomic<UInt64>(12_999)
        var clock: Clocks {
            Clocks(monotonicUs: { self.monotonicMs.load(ordering: .relaxed) * 1_000 }, wallMs: { self.wallMs.load(ordering: .relaxed) })
        }
    }

    func open(_ directory: TemporaryDirectory, _ hand: HandClock, create: Bool = true) throws -> SQLiteBank {
        let path = directory.appending("hdfc.sqlite")
        if create { try SQLiteBank.create(path: path, participant: hdfc, accounts: [(alice, .rupees(1_000))], logger: logger) }
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger, clock: hand.clock)
        bank.heuristicPolicy = HeuristicPolicy(afterMs: 500, commit: false)
        return bank
    }

    func decidedAlone(_ replies: [ParticipantReply]) -> [TransactionID] {
        replies.compactMap { if case .heuristic(let tx, _, _, _, _) = $0 { tx } else { nil } }
    }

    @Test func aBranchIsDecidedAloneOnlyOnceItHasWaitedTheWholePolicy() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let hand = HandClock()
        let bank = try open(directory, hand)
        defer { bank.close() }
        _ = try bank.process([.prepare(tx, operations: [.debit(account: alice, amount: .rupees(1))], writers: [hdfc])])
        // One millisecond later, and the next whole second on the wall: not yet.
        hand.monotonicMs.store(13_000, ordering: .relaxed)
        hand.wallMs.store(1_700_000_001_000, ordering: .relaxed)
        #expect(decidedAlone(try bank.sweep()).isEmpty)
        hand.monotonicMs.store(13_498, ordering: .relaxed)
        #expect(decidedAlone(try bank.sweep()).isEmpty)
        hand.monotonicMs.store(13_499, ordering: .relaxed)
        #expect(decidedAlone(try bank.sweep()) == [tx])
    }

    @Test func aWallClockStepDecidesNothing() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let hand = HandClock()
        let bank = try open(directory, hand)
        defer { bank.close() }
        _ = try bank.process([.prepare(tx, operations: [.debit(account: alice, amount: .rupees(1))], writers: [hdfc])])
        hand.wallMs.store(1_700_000_000_000 + 3_600_000, ordering: .relaxed) // NTP steps an hour
        #expect(decidedAlone(try bank.sweep()).isEmpty)
        #expect(bank.inDoubt().keys.contains(tx))
    }

    @Test func aRestoredBranchWaitsFromTheBanksOpening() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let hand = HandClock()
        let first = try open(directory, hand)
        _ = try first.process([.prepare(tx, operations: [.debit(account: alice, amount: .rupees(1))], writers: [hdfc])])
        try first.makeDurable()
        first.close()
        // The process was down a long time; nobody waited on the branch meanwhile.
        hand.monotonicMs.store(900_000, ordering: .relaxed)
        hand.wallMs.store(1_700_000_000_000 + 900_000, ordering: .relaxed)
        let reopened = try open(directory, hand, create: false)
        defer { reopened.close() }
        #expect(decidedAlone(try reopened.sweep()).isEmpty)
        hand.monotonicMs.store(900_500, ordering: .relaxed)
        #expect(decidedAlone(try reopened.sweep()) == [tx])
    }
}
