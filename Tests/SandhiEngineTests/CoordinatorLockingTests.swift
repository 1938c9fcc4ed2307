import Testing
@testable import SandhiEngine

/// Strict two-phase locking inside the coordinator: waits before phase one, release at the
/// decision on every path, lock timeouts, and deadlocks with their victims and overrides.
@Suite("Coordinator locking and deadlocks")
struct CoordinatorLockingTests {
    static let banks = [Fixture.hdfc, Fixture.icici, Fixture.axis, Fixture.sbi]

    /// Account `n`, spread over the four banks.
    static func resource(_ n: Int) -> (ParticipantID, String) { (banks[n % 4], "acct-\(n)") }

    /// Debit the first account, credit the second, in that order (so locks are asked for in
    /// that order); extra reads first, to make a transaction heavier.
    static func transfer(_ first: Int, _ second: Int, readsFirst: [Int] = []) -> [Branch] {
        var branches: [Branch] = []
        func add(_ n: Int, _ operation: (AccountID) -> Operation) {
            let (bank, account) = resource(n)
            if let index = branches.firstIndex(where: { $0.participant == bank }) {
                branches[index].operations.append(operation(Fixture.account(account)))
            } else {
                branches.append(Branch(participant: bank, operations: [operation(Fixture.account(account))]))
            }
        }
        for n in readsFirst { add(n) { .read(account: $0) } }
        add(first) { .debit(account: $0, amount: Paise(100)) }
        add(second) { .credit(account: $0, amount: Paise(100)) }
        return branches
    }

    let blocker = Fixture.tx(1_000)

    /// Builds the cycle t(0) -> t(1) -> ... -> t(n-1) -> t(0), where t(i) holds account i and
    /// waits for account i+1: a blocker holds account 0 while every t(i) but t(0) takes its
    /// first lock and queues for its second; then the blocker leaves, t(0) gets account 0 and
    /// asks for account 1, which closes the cycle. Returns the effects of that last step.
    @discardableResult
    static func buildCycle(_ h: inout CoordinatorHarness, length n: Int, heavy: Int? = nil,
                           blocker: TransactionID = Fixture.tx(1_000)) -> [CoordinatorEffect] {
        h.begin(blocker, [Fixture.debit(resource(0).0, account: resource(0).1)])
        h.advance(us: 100)
        h.begin(Fixture.tx(0), transfer(0, 1 % n))
        h.requestCommit(Fixture.tx(0))
        for i in (1..<n).reversed() {
            h.advance(us: 100)
            let extra = i == heavy ? [4_000 + i] : [] // same bank as account i, so asked for just before it
            h.begin(Fixture.tx(UInt64(i)), transfer(i, (i + 1) % n, readsFirst: extra))
            h.requestCommit(Fixture.tx(UInt64(i)))
        }
        h.advance(us: 100)
        return h.requestAbort(blocker)
    }

    static func deadlocks(_ effects: [CoordinatorEffect]) -> [Deadlock] {
        effects.events.compactMap { if case .deadlockDetected(let deadlock) = $0 { return deadlock } else { return nil } }
    }

    // MARK: waiting and release

    @Test func aConflictingTransferWaitsThenPreparesWhenTheHolderCommits() {
        var h = CoordinatorHarness()
        let (t1, t2) = (Fixture.tx(1), Fixture.tx(2))
        h.prepare(t1, Self.transfer(0, 1), votes: [(Fixture.hdfc, .yes), (Fixture.icici, .yes)])
        let waiting = h.begin(t2, Self.transfer(1, 2))
        #expect(waiting.events.contains(.lockWaiting(t2, resource: ResourceID(participant: Fixture.icici, account: Fixture.account("acct-1")),
                                                   mode: .exclusive, blockers: [t1])))
        #expect(h.requestCommit(t2).prepared.isEmpty, "no PREPARE while a lock is outstanding")
        #expect(h.transaction(t2)?.isWaitingForLock == true)
        let decided = h.durable(t1)
        // t1's COMMITs go out before t2's PREPAREs: each bank's queue keeps that order.
        let sends = decided.sends.map { "\($0.message.transaction)" }
        #expect(sends == ["T-1.1", "T-1.1", "T-1.2", "T-1.2"])
        #expect(h.state(t2) == .preparing)
        #expect(h.coordinator.locks.isConsistent())
    }

    @Test func locksAreReleasedOnEveryOutcome() {
        let outcomes: [(String, (inout CoordinatorHarness, TransactionID) -> Void)] = [
            ("commit", { h, t in h.vote(t, Fixture.hdfc, .yes); h.vote(t, Fixture.icici, .yes); h.durable(t) }),
            ("NO vote", { h, t in h.vote(t, Fixture.hdfc, Fixture.no(Fixture.hdfc)) }),
            ("prepare timeout", { h, t in h.fire(h.liveTimer(of: t)!) }),
            ("client abort", { h, t in h.requestAbort(t) }),
        ]
        for (name, finish) in outcomes {
            var h = CoordinatorHarness()
            let (t1, t2) = (Fixture.tx(1), Fixture.tx(2))
            h.startPreparing(t1, Self.transfer(0, 1))
            h.begin(t2, Self.transfer(0, 1))
            h.requestCommit(t2)
            #expect(h.state(t2) == .active, "\(name)")
            finish(&h, t1)
            #expect(h.state(t2) == .preparing, "\(name): the waiter got every lock")
            #expect(h.coordinator.locks.heldCount(by: t1) == 0, "\(name)")
        }
    }

    @Test func readOnlyTransactionsReleaseTheirSharedLocksAtTheirCommit() {
        var h = CoordinatorHarness()
        let (reader, writer) = (Fixture.tx(1), Fixture.tx(2))
        h.prepare(reader, [Fixture.read(Fixture.hdfc, account: "acct-0")], votes: [])
        h.begin(writer, Self.transfer(0, 1))
        h.requestCommit(writer)
        #expect(h.state(writer) == .active)
        h.vote(reader, Fixture.hdfc, .readOnly)
        #expect(h.state(reader) == nil, "committed and forgotten")
        #expect(h.state(writer) == .preparing)
    }

    @Test func aWaiterThatTimesOutAbortsAndLeavesTheQueue() throws {
        var h = CoordinatorHarness { $0.lockTimeoutMs = 300 }
        let (t1, t2, t3) = (Fixture.tx(1), Fixture.tx(2), Fixture.tx(3))
        h.startPreparing(t1, Self.transfer(0, 1))
        h.startPreparing(t2, Self.transfer(0, 1))
        h.startPreparing(t3, Self.transfer(0, 1))
        let timeout = try #require(h.liveTimer(of: t2))
        #expect(timeout.kind == .lockTimeout)
        let effects = h.fire(timeout)
        #expect(h.nowUs - 1_000_000 >= 300_000)
        #expect(effects.decisions.first?.outcome.abortReason?.contains("lock wait timed out after 300ms for hdfc/acct-0 held by T-1.1") == true)
        #expect(h.state(t2) == nil)
        #expect(h.coordinator.locks.blockers(of: t3) == [t1], "t3 now waits for the holder directly")
        #expect(h.coordinator.locks.isConsistent())
    }

    @Test func aRecoveredTransactionHoldsItsLocksUntilEveryParticipantAcknowledges() {
        var h = CoordinatorHarness()
        let recovered = Fixture.tx(1, epoch: 1), fresh = Fixture.tx(1, epoch: 2)
        let account = ResourceID(participant: Fixture.hdfc, account: Fixture.account("acct-0"))
        h.handle(.recoverCommitted(recovered, participants: [Fixture.hdfc, Fixture.icici], locks: [account]))
        #expect(h.coordinator.locks.mode(of: recovered, on: account) == .exclusive)
        h.startPreparing(fresh, Self.transfer(0, 1))
        #expect(h.state(fresh) == .active, "queued behind the recovered transaction")
        #expect(h.coordinator.locks.blockers(of: fresh) == [recovered])
        h.ack(recovered, Fixture.hdfc)
        #expect(h.state(fresh) == .active, "icici has not acknowledged yet")
        h.ack(recovered, Fixture.icici)
        #expect(h.state(fresh) == .preparing)
        #expect(h.coordinator.locks.heldCount(by: recovered) == 0)
    }

    @Test func aParticipantStillHoldingTheAccountIsATransientRefusal() {
        // A lost or late COMMIT of the previous holder: the lock here was released at its
        // decision, but the participant still holds the account when the next PREPARE lands.
        var h = CoordinatorHarness()
        let (busy, broke) = (Fixture.tx(1), Fixture.tx(2))
        h.startPreparing(busy, Self.transfer(0, 1))
        let locked = Refusal.lockedBy(ResourceID(participant: Fixture.hdfc, account: Fixture.account("acct-0")), holder: Fixture.tx(9))
        let refused = h.vote(busy, Fixture.hdfc, .no(locked))
        #expect(refused.decisions.first?.outcome.abortCause == .participantBusy)
        #expect(refused.decisions.first?.outcome.refusal == locked)
        #expect(AbortCause.participantBusy.isTransient)
        h.startPreparing(broke, Self.transfer(4, 5))
        let poor = h.vote(broke, Fixture.hdfc, Fixture.no(Fixture.hdfc))
        #expect(poor.decisions.first?.outcome.abortCause == .participantRefused)
        #expect(poor.decisions.first?.outcome.refusal == Fixture.insufficientFunds(Fixture.hdfc))
        #expect(!AbortCause.participantRefused.isTransient)
    }

    // MARK: deadlocks

    @Test(arguments: [2, 3, 50])
    func deadlockIsFoundAtOnceAndItsVictimAborted(length: Int) throws {
        var h = CoordinatorHarness()
        let effects = Self.buildCycle(&h, length: length)
        let deadlock = try #require(Self.deadlocks(effects).first)
        #expect(Set(deadlock.cycle) == Set((0..<length).map { Fixture.tx(UInt64($0)) }))
        #expect(deadlock.candidates.count == length)
        #expect(deadlock.policy == .leastWork)
        let victim = try #require(deadlock.victim)
        #expect(effects.decisions.contains { $0.transaction == victim && $0.outcome.abortReason?.contains("deadlock victim") == true })
        #expect(h.state(victim) == nil)
        // Everyone else goes on to phase one, one after another as locks free up.
        #expect(h.coordinator.transactions.values.filter(\.isWaitingForLock).count <= length - 2)
        #expect(h.coordinator.locks.graph.nodeCount <= length)
        #expect(h.coordinator.locks.isConsistent())
        #expect(h.coordinator.deadlockHistory.entries.last?.resolution == .victimAborted(victim, atUs: h.nowUs))
        #expect(h.coordinator.unresolvedDeadlocks.isEmpty)
    }

    @Test func candidatesCarryTheFiguresEveryPolicyWeighs() throws {
        var h = CoordinatorHarness()
        let built = Self.buildCycle(&h, length: 2, heavy: 1)
        let deadlock = try #require(Self.deadlocks(built).first)
        let byTx = Dictionary(uniqueKeysWithValues: deadlock.candidates.map { ($0.transaction, $0) })
        let light = try #require(byTx[Fixture.tx(0)]), heavy = try #require(byTx[Fixture.tx(1)])
        #expect(light.locksHeld == 1 && light.operations == 2 && light.work == 3)
        #expect(heavy.locksHeld == 2 && heavy.operations == 3 && heavy.work == 5)
        #expect(light.ageUs > heavy.ageUs, "t0 began first")
        #expect(light.participantsPrepared == 0 && heavy.participantsPrepared == 0)
        #expect(light.waitsFor == ResourceID(participant: Fixture.icici, account: Fixture.account("acct-1")))
    }

    /// t0 began first and is light; t1 began later and is heavy.
    @Test(arguments: [
        (VictimPolicy.leastWork, UInt64(0)),
        (.youngest, 1),
        (.fewestPrepared, 1), // nobody has prepared while waiting: the youngest breaks the tie
    ])
    func victimFollowsThePolicy(policy: VictimPolicy, expected: UInt64) throws {
        var h = CoordinatorHarness { $0.victimPolicy = policy }
        let built = Self.buildCycle(&h, length: 2, heavy: 1)
        let deadlock = try #require(Self.deadlocks(built).first)
        #expect(deadlock.victim == Fixture.tx(expected))
        #expect(deadlock.reason.hasPrefix(policy == .leastWork ? "least work" : policy == .youngest ? "youngest" : "fewest prepared"))
        #expect(h.state(Fixture.tx(expected)) == nil)
        #expect(h.state(Fixture.tx(1 - expected)) == .preparing)
    }

    @Test func manualPolicyWaitsForTheOperatorWhoseChoiceIsRecorded() throws {
        var h = CoordinatorHarness { $0.victimPolicy = .manual }
        let built = Self.buildCycle(&h, length: 3)
        let deadlock = try #require(Self.deadlocks(built).first)
        #expect(deadlock.victim == nil)
        #expect(h.coordinator.unresolvedDeadlocks.map(\.id) == [deadlock.id])
        #expect(h.state(Fixture.tx(0)) == .active && h.state(Fixture.tx(1)) == .active && h.state(Fixture.tx(2)) == .active)
        let effects = h.handle(.forceAbort(Fixture.tx(1), note: "lowest value transfer"))
        #expect(effects.events.contains(.deadlockVictimAborted(deadlockID: deadlock.id, victim: Fixture.tx(1), byOperator: true)))
        #expect(effects.decisions.first?.outcome.abortReason == "aborted by the operator: lowest value transfer")
        #expect(h.coordinator.unresolvedDeadlocks.isEmpty)
        #expect(h.coordinator.deadlockHistory.entries.last?.resolution == .operatorAborted(Fixture.tx(1), atUs: h.nowUs))
        // t0 got t1's account and prepares; t2 still waits for t0, but no longer in a cycle.
        #expect(h.state(Fixture.tx(0)) == .preparing)
        #expect(h.coordinator.locks.blockers(of: Fixture.tx(2)) == [Fixture.tx(0)])
        #expect(h.coordinator.locks.graph.findCycles().isEmpty)
    }

    @Test func operatorOverridesTheEnginesPickWithinTheGracePeriod() throws {
        var h = CoordinatorHarness { $0.deadlockGraceMs = 500 }
        let built = Self.buildCycle(&h, length: 2, heavy: 1)
        let deadlock = try #require(Self.deadlocks(built).first)
        let chosen = try #require(deadlock.victim)
        #expect(chosen == Fixture.tx(0))
        #expect(deadlock.abortAtUs == h.nowUs + 500_000)
        #expect(h.state(chosen) == .active, "not aborted yet: the operator has 500ms")
        let victimTimer = try #require(h.liveTimers.keys.first { $0.kind == .deadlockVictim })
        let override = h.handle(.forceAbort(Fixture.tx(1), note: "t1 is a retry anyway"))
        #expect(override.timersCancelled.contains(victimTimer))
        #expect(h.state(chosen) == .preparing, "the engine's pick survives and goes on")
        #expect(h.handle(.timerFired(victimTimer)).isEmpty, "a stale victim timer does nothing")
    }

    @Test func withoutTheOperatorTheVictimIsAbortedWhenTheGracePeriodEnds() throws {
        var h = CoordinatorHarness { $0.deadlockGraceMs = 500 }
        let built = Self.buildCycle(&h, length: 2)
        let deadlock = try #require(Self.deadlocks(built).first)
        let victimTimer = try #require(h.liveTimers.keys.first { $0.kind == .deadlockVictim })
        let effects = h.fire(victimTimer)
        #expect(effects.events.contains(.deadlockVictimAborted(deadlockID: deadlock.id, victim: deadlock.victim!, byOperator: false)))
        #expect(h.state(deadlock.victim!) == nil)
        #expect(h.coordinator.unresolvedDeadlocks.isEmpty)
    }

    @Test func aDeadlockDissolvedByATimeoutCancelsTheVictimsGraceTimer() throws {
        var h = CoordinatorHarness { $0.deadlockGraceMs = 500; $0.lockTimeoutMs = 300; $0.victimPolicy = .youngest }
        let built = Self.buildCycle(&h, length: 2)
        let deadlock = try #require(Self.deadlocks(built).first)
        #expect(deadlock.victim == Fixture.tx(1))
        let victimTimer = try #require(h.liveTimers.keys.first { $0.kind == .deadlockVictim })
        let timeout = try #require(h.liveTimers.keys.first { $0.kind == .lockTimeout && $0.transaction == Fixture.tx(0) })
        let effects = h.fire(timeout)
        #expect(effects.timersCancelled.contains(victimTimer), "the victim no longer needs aborting")
        #expect(h.coordinator.unresolvedDeadlocks.isEmpty)
        #expect(h.coordinator.deadlockHistory.entries.last?.resolution == .dissolved(by: Fixture.tx(0), atUs: h.nowUs))
        #expect(h.state(Fixture.tx(1)) == .preparing, "the engine's pick got its lock and goes on")
    }

    @Test func withDetectionOffOnlyTheLockTimeoutBreaksADeadlock() throws {
        var h = CoordinatorHarness { $0.detectDeadlocks = false; $0.lockTimeoutMs = 200 }
        let effects = Self.buildCycle(&h, length: 2)
        #expect(Self.deadlocks(effects).isEmpty)
        let timeout = try #require(h.liveTimers.keys.filter { $0.kind == .lockTimeout }.min { $0.generation < $1.generation })
        let fired = h.fire(timeout)
        #expect(fired.decisions.first?.outcome.abortReason?.hasPrefix("lock wait timed out") == true)
        #expect(h.coordinator.transactions.values.filter(\.isWaitingForLock).isEmpty)
    }

    @Test func periodicFullCheckDoesNotReportAStandingDeadlockTwice() throws {
        // (That the full check finds cycles the incremental one cannot see is shown on the
        // graph itself, in WaitForGraphTests.)
        var h = CoordinatorHarness { $0.victimPolicy = .manual }
        Self.buildCycle(&h, length: 2)
        #expect(h.coordinator.unresolvedDeadlocks.count == 1)
        let full = h.handle(.checkDeadlocks)
        #expect(Self.deadlocks(full).isEmpty)
        #expect(h.coordinator.deadlockHistory.totalCount == 1)
    }

    @Test func periodicFullCheckReportsACycleFoundOnlyByIt() throws {
        // Grace period: deadlock A (t0, t1) stands with a victim timer. Unknown to the engine's
        // bookkeeping, clear it as if it had never been recorded, and the full check finds the
        // cycle again and handles it as new, flagged as found by the full check.
        var h = CoordinatorHarness { $0.victimPolicy = .manual }
        Self.buildCycle(&h, length: 2)
        var coordinator = h.coordinator
        coordinator.forgetUnresolvedDeadlocksForTesting()
        var effects: [CoordinatorEffect] = []
        coordinator.handle(.checkDeadlocks, nowUs: h.nowUs, into: &effects)
        let found = try #require(Self.deadlocks(effects).first)
        #expect(found.foundByFullCheck)
        #expect(Set(found.cycle) == [Fixture.tx(0), Fixture.tx(1)])
    }

    @Test func deadlockHistoryIsBounded() {
        var h = CoordinatorHarness { $0.deadlockHistoryLimit = 3 }
        // Five deadlocks, on distinct transactions and accounts each round.
        for round in 0..<5 {
            let base = round * 10
            let blocker = Fixture.tx(UInt64(5_000 + round))
            h.begin(blocker, [Fixture.debit(Self.resource(base).0, account: Self.resource(base).1)])
            h.startPreparing(Fixture.tx(UInt64(base + 100)), Self.transfer(base, base + 1))
            h.startPreparing(Fixture.tx(UInt64(base + 101)), Self.transfer(base + 1, base))
            h.requestAbort(blocker)
        }
        #expect(h.coordinator.deadlockHistory.totalCount == 5)
        #expect(h.coordinator.deadlockHistory.entries.count == 3)
        #expect(h.coordinator.deadlockHistory.entries.map(\.id) == [3, 4, 5])
    }
}
