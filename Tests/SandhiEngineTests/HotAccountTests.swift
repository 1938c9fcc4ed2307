import Testing
@testable import SandhiEngine

@Suite("One hot account")
struct HotAccountTests {
    /// Every transfer pairs the hot account with an account of its own, in random order: they
    /// queue for the hot account, and none of them can deadlock.
    @Test func aQueueOnOneHotAccountHasNoDeadlock() throws {
        var h = CoordinatorHarness()
        var random = SplitMix64(seed: 3)
        let hot = ("hdfc", "hot")
        var live: [TransactionID] = []
        var next: UInt64 = 1
        func start(_ h: inout CoordinatorHarness) {
            let tx = Fixture.tx(next)
            let cold = (["hdfc", "icici", "axis", "sbi"][Int(next % 4)], "cold-\(next)")
            next += 1
            let first = random.next() % 2 == 0 ? hot : cold
            let second = first == hot ? cold : hot
            var branches: [Branch] = []
            for (index, (bank, account)) in [first, second].enumerated() {
                let participant = ParticipantID(validated: bank)
                let operation: Operation = index == 0 ? .debit(account: Fixture.account(account), amount: Paise(1))
                                                      : .credit(account: Fixture.account(account), amount: Paise(1))
                if let at = branches.firstIndex(where: { $0.participant == participant }) { branches[at].operations.append(operation) }
                else { branches.append(Branch(participant: participant, operations: [operation])) }
            }
            h.startPreparing(tx, branches)
            live.append(tx)
        }
        for _ in 0..<40 { start(&h) }
        var deadlocks = 0
        var seen = 0
        for _ in 0..<400 {
            // Everyone preparing votes YES; decisions become durable; new transfers arrive.
            for tx in live where h.state(tx) == .preparing {
                for branch in h.transaction(tx)!.branches { h.vote(tx, branch.branch.participant, .yes) }
            }
            for tx in live where h.state(tx) == .prepared { h.durable(tx) }
            deadlocks += Array(h.history[seen...]).events.filter { if case .deadlockDetected = $0 { true } else { false } }.count
            seen = h.history.count
            live.removeAll { h.state($0) == nil || h.state($0) == .committing }
            while live.count < 40 { start(&h) }
            #expect(h.coordinator.locks.isConsistent())
        }
        #expect(deadlocks == 0)
    }

    /// The holder of the hot account waits for an account that the LAST transfer in the hot
    /// account's queue holds. The cycle runs through every waiter in between, but only the
    /// holder and that last transfer can break it; exactly one of them is aborted, once.
    @Test func onlyAMemberThatHoldsWhatTheOtherWaitsForIsAVictim() throws {
        var h = CoordinatorHarness()
        let hot = Fixture.account("hot"), coldX = Fixture.account("cold-x")
        func transfer(_ first: AccountID, _ second: AccountID) -> [Branch] {
            [Branch(participant: Fixture.hdfc, operations: [.debit(account: first, amount: Paise(1)), .credit(account: second, amount: Paise(1))])]
        }
        let blocker = Fixture.tx(100)
        h.begin(blocker, [Branch(participant: Fixture.hdfc, operations: [.debit(account: hot, amount: Paise(1))])])
        h.startPreparing(Fixture.tx(0), transfer(hot, coldX))
        for n in 1...5 as ClosedRange<UInt64> { h.startPreparing(Fixture.tx(n), transfer(hot, Fixture.account("cold-\(n)"))) }
        h.startPreparing(Fixture.tx(6), transfer(coldX, hot))
        let effects = h.requestAbort(blocker)
        let found = effects.events.compactMap { if case .deadlockDetected(let d) = $0 { d } else { nil } }
        #expect(found.count == 1)
        let deadlock = try #require(found.first)
        #expect(deadlock.cycle.count == 7, "the cycle runs through the whole queue")
        #expect(Set(deadlock.candidates.map(\.transaction)) == [Fixture.tx(0), Fixture.tx(6)])
        #expect(deadlock.victim == Fixture.tx(6), "equal work: the younger")
        #expect(h.state(Fixture.tx(0)) == .preparing)
        for n in 1...5 as ClosedRange<UInt64> { #expect(h.state(Fixture.tx(n)) == .active, "T-1.\(n) keeps its place") }
    }
}
