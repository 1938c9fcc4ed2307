import Testing
@testable import SandhiEngine

/// The lock table on its own: compatibility, upgrades, FIFO fairness, release, bounds.
@Suite("Lock manager")
struct LockManagerTests {
    let a = ResourceID(participant: Fixture.hdfc, account: Fixture.account("a"))
    let b = ResourceID(participant: Fixture.sbi, account: Fixture.account("b"))
    let t1 = Fixture.tx(1), t2 = Fixture.tx(2), t3 = Fixture.tx(3), t4 = Fixture.tx(4)

    struct Table {
        var manager: LockManager
        var nowUs: UInt64 = 0
        var grants: [LockManager.Grant] = []
        var cycles: [WaitForGraph.Cycle] = []

        init(_ configure: (inout LockManager.Configuration) -> Void = { _ in }) {
            var configuration = LockManager.Configuration()
            configure(&configuration)
            manager = LockManager(configuration: configuration)
        }

        @discardableResult
        mutating func lock(_ tx: TransactionID, _ resource: ResourceID, _ mode: LockMode) -> LockManager.AcquireResult {
            nowUs += 10
            var changes = LockManager.Changes()
            let result = manager.acquire(tx, LockRequest(resource: resource, mode: mode), nowUs: nowUs, into: &changes)
            #expect(changes.grants.isEmpty, "a request never grants someone else")
            cycles += changes.cycles
            #expect(manager.isConsistent())
            return result
        }

        /// Releases everything `tx` has; returns who was granted what, in order.
        @discardableResult
        mutating func release(_ tx: TransactionID) -> [TransactionID] {
            nowUs += 10
            var changes = LockManager.Changes()
            manager.releaseAll(tx, nowUs: nowUs, into: &changes)
            grants += changes.grants
            cycles += changes.cycles
            #expect(manager.isConsistent())
            return changes.grants.map(\.transaction)
        }

        func holders(_ resource: ResourceID) -> [String] {
            (manager.table[resource]?.holders ?? []).map { "\($0.transaction)\($0.mode)" }
        }

        func waiters(_ resource: ResourceID) -> [TransactionID] {
            (manager.table[resource]?.waiters ?? []).map(\.transaction)
        }
    }

    // MARK: compatibility

    @Test func sharedLocksCoexist() {
        var t = Table()
        #expect(t.lock(t1, a, .shared) == .granted)
        #expect(t.lock(t2, a, .shared) == .granted)
        #expect(t.holders(a) == ["T-1.1S", "T-1.2S"])
    }

    @Test(arguments: [(LockMode.shared, LockMode.exclusive), (.exclusive, .shared), (.exclusive, .exclusive)])
    func conflictingRequestWaitsForTheHolder(held: LockMode, requested: LockMode) {
        var t = Table()
        #expect(t.lock(t1, a, held) == .granted)
        #expect(t.lock(t2, a, requested) == .waiting(blockers: [t1]))
        #expect(t.manager.resource(waitedOnBy: t2) == a)
        #expect(t.manager.graph.hasEdge(from: t2, to: t1))
        #expect(t.release(t1) == [t2])
        #expect(t.holders(a) == ["T-1.2\(requested)"])
        #expect(t.manager.graph.nodeCount == 0, "no wait, no edge, no node")
    }

    @Test func aHolderAskingAgainForWhatItHoldsIsGrantedAtOnce() {
        var t = Table()
        t.lock(t1, a, .exclusive)
        #expect(t.lock(t1, a, .shared) == .granted)
        #expect(t.lock(t1, a, .exclusive) == .granted)
        #expect(t.holders(a) == ["T-1.1X"])
    }

    // MARK: upgrades

    @Test func soleSharedHolderUpgradesInPlace() {
        var t = Table()
        t.lock(t1, a, .shared)
        #expect(t.lock(t1, a, .exclusive) == .granted)
        #expect(t.holders(a) == ["T-1.1X"])
        #expect(t.manager.heldCount(by: t1) == 1)
    }

    @Test func upgradeWaitsForTheOtherReadersAheadOfEarlierWaiters() {
        var t = Table()
        t.lock(t1, a, .shared)
        t.lock(t2, a, .shared)
        #expect(t.lock(t3, a, .exclusive) == .waiting(blockers: [t1, t2]))
        // t1 holds S and wants X: it goes ahead of t3, which waited first but holds nothing.
        #expect(t.lock(t1, a, .exclusive) == .waiting(blockers: [t2]))
        #expect(t.waiters(a) == [t1, t3])
        #expect(t.manager.blockers(of: t3) == [t1])
        #expect(t.release(t2) == [t1])
        #expect(t.holders(a) == ["T-1.1X"])
        #expect(t.release(t1) == [t3])
    }

    @Test func twoReadersUpgradingAtOnceIsADeadlock() {
        var t = Table()
        t.lock(t1, a, .shared)
        t.lock(t2, a, .shared)
        t.lock(t1, a, .exclusive)
        #expect(t.cycles.isEmpty)
        t.lock(t2, a, .exclusive)
        #expect(t.cycles.map { Set($0.members) } == [[t1, t2]])
    }

    // MARK: fairness

    @Test func aReaderDoesNotPassAQueuedWriter() {
        var t = Table()
        t.lock(t1, a, .shared)
        t.lock(t2, a, .exclusive)
        // Compatible with the holder, but t2 queued first: no barging.
        #expect(t.lock(t3, a, .shared) == .waiting(blockers: [t2]))
        #expect(t.release(t1) == [t2])
        #expect(t.release(t2) == [t3])
    }

    @Test func aStreamOfReadersCannotStarveAWriter() {
        var t = Table()
        t.lock(t1, a, .shared)
        t.lock(t2, a, .exclusive)
        var readers: [TransactionID] = []
        for n in 10..<40 as Range<UInt64> {
            let reader = Fixture.tx(n)
            readers.append(reader)
            #expect(t.lock(reader, a, .shared) == .waiting(blockers: [t2]))
        }
        #expect(t.release(t1) == [t2], "the writer first")
        #expect(t.release(t2) == readers, "then every reader behind it, together")
        #expect(t.holders(a).count == readers.count)
    }

    @Test func grantsFollowQueueOrderAndStopAtTheFirstMisfit() {
        var t = Table()
        t.lock(t1, a, .exclusive)
        t.lock(t2, a, .shared)
        t.lock(t3, a, .shared)
        t.lock(t4, a, .exclusive)
        let t5 = Fixture.tx(5)
        t.lock(t5, a, .shared)
        #expect(t.manager.blockers(of: t3) == [t1], "S behind S waits for the X holder, not for the S ahead")
        #expect(t.manager.blockers(of: t4) == [t3], "X waits for its nearest predecessor")
        #expect(t.manager.blockers(of: t5) == [t4], "S waits for the nearest X ahead")
        #expect(t.release(t1) == [t2, t3])
        #expect(t.manager.blockers(of: t4) == [t2, t3])
        #expect(t.release(t2) == [])
        #expect(t.release(t3) == [t4])
        #expect(t.release(t4) == [t5])
        #expect(t.grants.map(\.waitedUs).allSatisfy { $0 > 0 })
    }

    // MARK: release on every path

    @Test func releasingEverythingFreesEveryResourceAndTheWait() {
        var t = Table()
        t.lock(t1, a, .exclusive)
        t.lock(t1, b, .shared)
        t.lock(t2, b, .shared)
        t.lock(t2, a, .shared) // t2 waits for t1 on a
        #expect(t.release(t2) == [], "a waiter that gives up frees its held locks and leaves the queue")
        #expect(t.waiters(a) == [])
        #expect(t.holders(b) == ["T-1.1S"])
        t.release(t1)
        #expect(t.manager.table.isEmpty)
        #expect(t.manager.graph.nodeCount == 0)
    }

    @Test func aWriterGivingUpLetsTheReadersBehindItIn() {
        var t = Table()
        t.lock(t1, a, .shared)
        t.lock(t2, a, .exclusive)
        t.lock(t3, a, .shared)
        t.lock(t4, a, .shared)
        #expect(t.release(t2) == [t3, t4], "nothing holds them back any more")
    }

    // MARK: bounds and modes

    @Test func aFullQueueRefusesTheNextWaiter() {
        var t = Table { $0.maxWaitersPerResource = 2 }
        t.lock(t1, a, .exclusive)
        t.lock(t2, a, .exclusive)
        t.lock(t3, a, .exclusive)
        guard case .refused(let reason) = t.lock(t4, a, .exclusive) else {
            Issue.record("a third waiter was queued")
            return
        }
        #expect(reason.contains("hdfc/a"))
        #expect(t.manager.resource(waitedOnBy: t4) == nil)
    }

    @Test func withDetectionOffThereIsNoGraph() {
        var t = Table { $0.detectDeadlocks = false }
        t.lock(t1, a, .exclusive)
        t.lock(t2, b, .exclusive)
        #expect(t.lock(t1, b, .exclusive) == .waiting(blockers: []))
        #expect(t.lock(t2, a, .exclusive) == .waiting(blockers: []))
        #expect(t.cycles.isEmpty && t.manager.graph.nodeCount == 0)
    }

    @Test func planAsksForLocksInProgramOrderWithUpgrades() {
        let branches = [
            Branch(participant: Fixture.hdfc, operations: [.read(account: Fixture.account("x")), .debit(account: Fixture.account("y"), amount: Paise(5))]),
            Branch(participant: Fixture.sbi, operations: [.credit(account: Fixture.account("z"), amount: Paise(5)), .read(account: Fixture.account("z"))]),
            Branch(participant: Fixture.icici, operations: [.read(account: Fixture.account("x")), .credit(account: Fixture.account("x"), amount: Paise(1))]),
        ]
        let plan = LockRequest.plan(for: branches).map { "\($0.resource)\($0.mode)" }
        #expect(plan == ["hdfc/xS", "hdfc/yX", "sbi/zX", "icici/xS", "icici/xX"])
    }

    // MARK: a random walk

    /// Random requests and releases over a few resources: after every step the table is
    /// consistent (nothing grantable left waiting, edges as derived, graph order intact), and
    /// every cycle the manager reports is a real cycle of waits.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomWalkKeepsEveryInvariant(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var t = Table()
        let resources = (0..<5).map { ResourceID(participant: Fixture.hdfc, account: Fixture.account("r\($0)")) }
        let txs = (1...12).map { Fixture.tx(UInt64($0)) }
        for _ in 0..<2_000 {
            let tx = txs[Int(random.next() % UInt64(txs.count))]
            let before = t.cycles.count
            if random.next() % 3 == 0 || t.manager.resource(waitedOnBy: tx) != nil {
                t.release(tx)
            } else {
                t.lock(tx, resources[Int(random.next() % 5)], random.next() % 2 == 0 ? .shared : .exclusive)
            }
            let found = Array(t.cycles[before...])
            for cycle in found {
                let members = cycle.members
                for (from, to) in zip(members, members.dropFirst() + members.prefix(1)) {
                    #expect(t.manager.graph.hasEdge(from: from, to: to))
                    #expect(t.manager.resource(waitedOnBy: from) != nil)
                }
            }
            // Break them as a victim would, so the walk goes on.
            for cycle in found where t.manager.resource(waitedOnBy: cycle.members[0]) != nil {
                t.release(cycle.members[0])
            }
        }
    }
}
