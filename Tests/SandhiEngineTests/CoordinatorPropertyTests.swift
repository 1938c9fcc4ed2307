// Randomised: drive many transactions through one coordinator with random votes, lost,
// duplicated and reordered replies, random timer firings (live and stale) and client aborts,
// checking the safety rules after every single input.
import Testing
import SandhiEngine

@Suite("Coordinator properties")
struct CoordinatorPropertyTests {
    @Test(arguments: Array(UInt64(0)..<300))
    func safetyUnderRandomSchedules(seed: UInt64) throws {
        var world = CoordinatorWorld(seed: seed)
        world.run(steps: 400)
        try world.drain()
        world.checkEveryTransactionEndedExactlyOnce()
    }

    /// The generator is only as good as the paths it reaches: over a handful of seeds, every
    /// kind of ending and every kind of stray message must show up.
    @Test func schedulesReachEveryPath() throws {
        var total: [String: Int] = [:]
        for seed in UInt64(1_000)..<1_040 {
            var world = CoordinatorWorld(seed: seed)
            world.run(steps: 400)
            try world.drain()
            total.merge(world.stats, uniquingKeysWith: +)
        }
        for path in ["committed", "committed read-only", "aborted by NO", "aborted by deadline", "aborted by client",
                     "late message", "stale timer", "resend", "vote crossing ROLLBACK", "ROLLBACK for forgotten YES",
                     "duplicate delivered", "lost"] {
            #expect(total[path, default: 0] > 0, "never reached: \(path) in \(total)")
        }
    }
}

/// A coordinator whose participants are random: they vote as they like (or not at all), their
/// replies are delivered in any order, lost (before the prepare deadline or a resend fixes
/// it) or duplicated.
private struct CoordinatorWorld {
    enum Delivery {
        case vote(TransactionID, ParticipantID, Vote)
        case ack(TransactionID, ParticipantID)
        case durable(TransactionID)
        case clientCommit(TransactionID)
    }

    var random: SplitMix64
    var coordinator: Coordinator
    var nowUs: UInt64 = 0
    var transactions: [TransactionID: [Branch]] = [:]
    /// Everything in flight towards the coordinator, delivered in random order.
    var inbox: [Delivery] = []
    /// Votes and acks already delivered once, for duplicates.
    var delivered: [Delivery] = []
    var liveTimers: [TimerID: UInt64] = [:]
    /// Cancelled or already fired: firing them again must be harmless.
    var staleTimers: [TimerID] = []
    var seenGenerations: Set<UInt32> = []
    var draining = false
    /// How often each interesting path was taken.
    var stats: [String: Int] = [:]

    // What the coordinator has said, per transaction.
    var decided: [TransactionID: [Outcome]] = [:]
    var finished: [TransactionID: [Outcome]] = [:]
    var commitRecord: [TransactionID: [ParticipantID]] = [:]
    var durableFed: Set<TransactionID> = []
    var endLogged: Set<TransactionID> = []

    let pool = ["hdfc", "icici", "axis", "sbi", "kotak", "yes"].map { ParticipantID(validated: $0) }

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
        var configuration = Coordinator.Configuration()
        configuration.prepareTimeoutMs = 100
        configuration.resendInitialMs = 10
        configuration.resendMaxMs = 80
        configuration.seed = seed
        coordinator = Coordinator(configuration: configuration)
    }

    mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
    mutating func pick(_ count: Int) -> Int { Int(random.next() % UInt64(count)) }

    // MARK: driving

    mutating func run(steps: Int) {
        var nextSequence: UInt64 = 1
        for _ in 0..<steps {
            let roll = random.next() % 100
            switch roll {
            case 0..<8 where nextSequence <= 40:
                begin(TransactionID(epoch: 1, sequence: nextSequence))
                nextSequence += 1
            case 0..<55 where !inbox.isEmpty:
                deliver(inbox.remove(at: pick(inbox.count)))
            case 55..<62 where !delivered.isEmpty:
                deliver(delivered[pick(delivered.count)]) // duplicate
                stats["duplicate delivered", default: 0] += 1
            case 62..<64 where !inbox.isEmpty:
                // lost: only network messages (the log always reports, the client always asks)
                let index = pick(inbox.count)
                switch inbox[index] {
                case .vote, .ack:
                    inbox.remove(at: index)
                    stats["lost", default: 0] += 1
                case .durable, .clientCommit: break
                }
            case 64..<80 where !liveTimers.isEmpty:
                fire(liveTimers.keys.sorted { $0.generation < $1.generation }[pick(liveTimers.count)])
            case 80..<85 where !staleTimers.isEmpty:
                fire(staleTimers[pick(staleTimers.count)])
                stats["stale timer", default: 0] += 1
            case 85..<89 where !transactions.isEmpty:
                let tx = transactions.keys.sorted()[pick(transactions.count)]
                feed(.requestAbort(tx, reason: "client abort"))
            default:
                nowUs += random.next() % 5_000
            }
        }
    }

    /// Delivers everything and fires every timer until nothing is left: every transaction must
    /// end. No loss and no duplicates from here on, and every phase-two message is answered.
    mutating func drain() throws {
        draining = true
        var steps = 0
        while true {
            steps += 1
            try #require(steps < 100_000, "the coordinator does not converge")
            if !inbox.isEmpty {
                deliver(inbox.remove(at: pick(inbox.count)))
            } else if let timer = liveTimers.min(by: { $0.value < $1.value })?.key {
                fire(timer)
            } else {
                break
            }
        }
    }

    mutating func begin(_ tx: TransactionID) {
        let count = 1 + pick(4)
        var candidates = pool
        var branches: [Branch] = []
        for _ in 0..<count {
            let participant = candidates.remove(at: pick(candidates.count))
            let account = AccountID(validated: "acct")
            let operations: [Operation] = chance(25)
                ? [.read(account: account)]
                : [.debit(account: account, amount: Paise(Int64(1 + pick(1_000))))]
            branches.append(Branch(participant: participant, operations: operations))
        }
        transactions[tx] = branches
        feed(.begin(tx, branches: branches))
        inbox.append(.clientCommit(tx))
    }

    mutating func deliver(_ delivery: Delivery) {
        switch delivery {
        case .vote(let tx, let participant, let vote):
            delivered.append(delivery)
            feed(.voted(tx, participant: participant, vote: vote))
        case .ack(let tx, let participant):
            delivered.append(delivery)
            feed(.acknowledged(tx, participant: participant))
        case .durable(let tx):
            durableFed.insert(tx)
            feed(.decisionDurable(tx, position: LogPosition(segment: 0, offset: UInt64(durableFed.count) * 100)))
        case .clientCommit(let tx):
            feed(.requestCommit(tx))
        }
    }

    mutating func fire(_ timer: TimerID) {
        if let due = liveTimers.removeValue(forKey: timer) {
            nowUs = max(nowUs, due)
        }
        staleTimers.append(timer)
        feed(.timerFired(timer))
    }

    // MARK: checking every effect

    mutating func feed(_ input: CoordinatorInput) {
        let effects = coordinator.handle(input, nowUs: nowUs)
        for effect in effects { observe(effect, input: input) }
    }

    mutating func observe(_ effect: CoordinatorEffect, input: CoordinatorInput) {
        switch effect {
        case .send(let participant, .prepare(let tx, let operations, _)):
            #expect(decided[tx] == nil, "\(tx): PREPARE after the decision")
            #expect(transactions[tx]?.contains { $0.participant == participant && $0.operations == operations } == true)
            let readOnly = !operations.contains(where: \.isWrite)
            let roll = random.next() % 100
            if readOnly && roll < 85 {
                inbox.append(.vote(tx, participant, .readOnly))
            } else if roll < 70 {
                inbox.append(.vote(tx, participant, .yes))
            } else if roll < 85 {
                inbox.append(.vote(tx, participant, Fixture.no(participant)))
            } // else: silent
        case .send(let participant, .commit(let tx)):
            #expect(durableFed.contains(tx), "\(tx): COMMIT sent before its decision was durable")
            #expect(decided[tx] == [.committed], "\(tx): COMMIT for a transaction not decided committed")
            #expect(commitRecord[tx]?.contains(participant) == true, "\(tx): COMMIT to \(participant), not in the record")
            #expect(finished[tx] == nil, "\(tx): COMMIT after finished")
            if draining || chance(80) { inbox.append(.ack(tx, participant)) }
        case .send(let participant, .rollback(let tx, _)):
            #expect(commitRecord[tx] == nil || finished[tx] != nil, "\(tx): ROLLBACK while a COMMIT record is live")
            if decided[tx]?.contains(.committed) == true {
                // Only a forgotten transaction can hear ROLLBACK after a COMMIT, in answer to a
                // stray YES (presumed abort); the participant has committed and ignores it.
                #expect(finished[tx] != nil, "\(tx): ROLLBACK for a committed transaction still in flight")
                stats["ROLLBACK for forgotten YES", default: 0] += 1
                if case .voted(tx, participant, .yes, _) = input {} else {
                    Issue.record("\(tx): ROLLBACK to \(participant) after COMMIT, not in answer to its YES")
                }
            }
            if draining || chance(80) { inbox.append(.ack(tx, participant)) }
        case .appendDecision(.commit(let tx, let participants), let forced):
            #expect(forced, "\(tx): a COMMIT record must be forced")
            #expect(decided[tx] == nil, "\(tx): COMMIT record after the decision")
            #expect(commitRecord[tx] == nil, "\(tx): COMMIT record twice")
            #expect(!participants.isEmpty)
            commitRecord[tx] = participants
            inbox.append(.durable(tx))
        case .appendDecision(.end(let tx), let forced):
            #expect(!forced, "\(tx): END is never forced")
            #expect(durableFed.contains(tx), "\(tx): END without a durable COMMIT")
            #expect(!endLogged.contains(tx))
            endLogged.insert(tx)
        case .appendDecision(let record, _):
            Issue.record("unexpected record \(record)")
        case .send(_, .forget(let tx)):
            Issue.record("\(tx): FORGET, but no participant here decides alone")
        case .recordReconciliation(let record):
            Issue.record("\(record.transaction): a reconciliation record, but no participant here decides alone")
        case .setTimer(let timer, let afterUs):
            #expect(seenGenerations.insert(timer.generation).inserted, "timer generation reused: \(timer)")
            #expect(afterUs > 0)
            #expect(finished[timer.transaction] == nil)
            liveTimers[timer] = nowUs + afterUs
        case .cancelTimer(let timer):
            #expect(liveTimers[timer] != nil, "cancelled a timer that is not live: \(timer)")
            liveTimers[timer] = nil
            staleTimers.append(timer)
        case .observed:
            break
        case .decided(let tx, let outcome):
            decided[tx, default: []].append(outcome)
            if outcome == .committed { stats["committed", default: 0] += 1 }
            if outcome.abortReason?.contains("voted NO") == true { stats["aborted by NO", default: 0] += 1 }
            if outcome.abortReason == "client abort" { stats["aborted by client", default: 0] += 1 }
            #expect(decided[tx]?.count == 1, "\(tx) decided twice: \(decided[tx]!)")
            if outcome == .committed {
                #expect(commitRecord[tx] == nil || durableFed.contains(tx), "\(tx): decided committed before durable")
            } else {
                #expect(commitRecord[tx] == nil, "\(tx): aborted after a COMMIT record was written")
            }
        case .finished(let tx, let outcome):
            finished[tx, default: []].append(outcome)
            #expect(finished[tx]?.count == 1, "\(tx) finished twice")
            #expect(decided[tx] == [outcome], "\(tx): finished \(outcome) but decided \(decided[tx] ?? [])")
            #expect(coordinator.state(of: tx) == nil, "\(tx): finished but still tracked")
            #expect(outcome != .committed || commitRecord[tx] == nil || endLogged.contains(tx), "\(tx): committed without END")
            #expect(liveTimers.keys.allSatisfy { $0.transaction != tx }, "\(tx): finished with a live timer")
        case .emit(let event):
            switch event.kind {
            case .stateChanged(let tx, let from, let to):
                #expect(Coordinator.allowed(from: from, to: to), "\(tx): illegal \(from) -> \(to)")
                if from == .preparing && to == .committed { stats["committed read-only", default: 0] += 1 }
            case .lateMessage: stats["late message", default: 0] += 1
            case .retryScheduled: stats["resend", default: 0] += 1
            case .prepareTimedOut: stats["aborted by deadline", default: 0] += 1
            case .voteReceived(let tx, _, _, _) where decided[tx] != nil: // decided earlier, so aborting
                stats["vote crossing ROLLBACK", default: 0] += 1
            default: break
            }
            #expect(event.atUs == nowUs)
        case .fatal(let message):
            Issue.record("fatal: \(message)")
        }
    }

    func checkEveryTransactionEndedExactlyOnce() {
        #expect(coordinator.inFlightCount == 0)
        #expect(liveTimers.isEmpty)
        for tx in transactions.keys {
            #expect(decided[tx]?.count == 1, "\(tx) decided \(decided[tx] ?? [])")
            #expect(finished[tx]?.count == 1, "\(tx) finished \(finished[tx] ?? [])")
        }
        // and something interesting happened
        #expect(!transactions.isEmpty)
    }
}
