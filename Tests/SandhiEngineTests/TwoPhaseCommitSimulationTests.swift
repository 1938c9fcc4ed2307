// Coordinator and participant protocols together: a deterministic little world with banks
// that hold balances, asynchronous staging, FIFO links that lose and duplicate messages,
// timers and participant restarts. After every run: atomicity, conservation, no orphans.
import Testing
import SandhiEngine

@Suite("Two-phase commit simulation")
struct TwoPhaseCommitSimulationTests {
    @Test(arguments: Array(UInt64(0)..<150))
    func atomicityConservationAndNoOrphans(seed: UInt64) throws {
        var world = Simulation(seed: seed)
        try world.run(transactions: 12)
        world.checkFinalState()
    }

    @Test func runsReachEveryPath() throws {
        var total: [String: Int] = [:]
        for seed in UInt64(1_000)..<1_030 {
            var world = Simulation(seed: seed)
            try world.run(transactions: 12)
            total.merge(world.stats, uniquingKeysWith: +)
        }
        for path in ["committed", "aborted", "lost", "duplicated", "restart", "restored", "lock conflict",
                     "insufficient funds", "read-only", "rollback while staging", "resend", "prepare timed out"] {
            #expect(total[path, default: 0] > 0, "never reached: \(path) in \(total)")
        }
    }

    @Test func theRunningExampleCommits() throws {
        // The chartered accountant's consolidation: three debits, one credit, one report.
        var world = Simulation(seed: 1, faults: false, initialBalance: 20_00_000_00)
        let hdfc = ParticipantID(validated: "hdfc"), icici = ParticipantID(validated: "icici")
        let axis = ParticipantID(validated: "axis"), sbi = ParticipantID(validated: "sbi")
        let acct = AccountID(validated: "acct0")
        let tx = TransactionID(epoch: 1, sequence: 1)
        try world.submit(tx, [
            Branch(participant: hdfc, operations: [.debit(account: acct, amount: .rupees(10_00_000))]),
            Branch(participant: icici, operations: [.debit(account: acct, amount: .rupees(5_00_000))]),
            Branch(participant: axis, operations: [.debit(account: acct, amount: .rupees(3_00_000))]),
            Branch(participant: sbi, operations: [
                .credit(account: acct, amount: .rupees(18_00_000)),
                .fileReport(Report(kind: "large-transaction", amount: .rupees(18_00_000), reference: tx.description)),
            ]),
        ])
        try world.settle()
        #expect(world.finished[tx] == [.committed])
        #expect(world.banks[hdfc]?.balances[acct] == Paise(20_00_000_00) - .rupees(10_00_000))
        #expect(world.banks[sbi]?.balances[acct] == Paise(20_00_000_00) + .rupees(18_00_000))
        #expect(world.banks[sbi]?.reports == 1)
        world.checkFinalState()
    }

    @Test func anOverdraftAbortsEverywhere() throws {
        var world = Simulation(seed: 2, faults: false, initialBalance: 100)
        let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")
        let acct = AccountID(validated: "acct0")
        let tx = TransactionID(epoch: 1, sequence: 1)
        try world.submit(tx, [
            Branch(participant: hdfc, operations: [.debit(account: acct, amount: Paise(101))]),
            Branch(participant: sbi, operations: [.credit(account: acct, amount: Paise(101))]),
        ])
        try world.settle()
        #expect(world.finished[tx]?.first?.isCommitted == false)
        #expect(world.banks[hdfc]?.balances[acct] == Paise(100))
        #expect(world.banks[sbi]?.balances[acct] == Paise(100))
        world.checkFinalState()
    }
}

/// One bank: the protocol machine plus the storage it drives.
private struct Bank {
    var protocolState: ParticipantProtocol
    var balances: [AccountID: Paise]
    /// Prepared write-sets that survived staging (what `restored` reads after a restart).
    var persisted: [TransactionID: (operations: [Operation], writers: [ParticipantID])] = [:]
    var reports = 0
}

private struct Simulation {
    enum Job {
        case stage(ParticipantID, TransactionID, operations: [Operation], writers: [ParticipantID], readOnly: Bool)
        case durable(TransactionID)
    }

    var random: SplitMix64
    let faults: Bool
    var nowUs: UInt64 = 0
    var coordinator: Coordinator
    var banks: [ParticipantID: Bank] = [:]
    let names: [ParticipantID]
    let accounts = (0..<3).map { AccountID(validated: "acct\($0)") }
    let initialTotal: Int64

    /// FIFO links, one per direction per participant.
    var toParticipant: [ParticipantID: [ParticipantMessage]] = [:]
    var toCoordinator: [ParticipantID: [ParticipantReply]] = [:]
    var jobs: [Job] = []
    var liveTimers: [TimerID: UInt64] = [:]

    var transactions: [TransactionID: [Branch]] = [:]
    var decided: [TransactionID: [Outcome]] = [:]
    var finished: [TransactionID: [Outcome]] = [:]
    var durable: Set<TransactionID> = []
    var applied: [TransactionID: [ParticipantID]] = [:]
    var stats: [String: Int] = [:]

    init(seed: UInt64, faults: Bool = true, initialBalance: Int64 = 10_000) {
        random = SplitMix64(seed: seed)
        self.faults = faults
        var configuration = Coordinator.Configuration()
        configuration.prepareTimeoutMs = 50
        configuration.resendInitialMs = 5
        configuration.resendMaxMs = 40
        configuration.seed = seed
        coordinator = Coordinator(configuration: configuration)
        names = ["hdfc", "icici", "axis", "sbi"].map { ParticipantID(validated: $0) }
        for name in names {
            banks[name] = Bank(protocolState: ParticipantProtocol(participant: name, maxBranches: 4),
                               balances: Dictionary(uniqueKeysWithValues: accounts.map { ($0, Paise(initialBalance)) }))
        }
        initialTotal = initialBalance * Int64(names.count * accounts.count)
    }

    mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
    mutating func pick(_ count: Int) -> Int { Int(random.next() % UInt64(count)) }

    // MARK: running

    mutating func run(transactions count: Int) throws {
        for sequence in 1...UInt64(count) {
            let tx = TransactionID(epoch: 1, sequence: sequence)
            try submit(tx, randomTransfer())
            // let some of the previous ones make progress first, so that they overlap
            for _ in 0..<pick(30) { try step() }
        }
        try settle()
    }

    func randomTransferParticipants(_ random: inout SplitMix64) -> [ParticipantID] {
        var candidates = names
        var chosen: [ParticipantID] = []
        for _ in 0..<3 { chosen.append(candidates.remove(at: Int(random.next() % UInt64(candidates.count)))) }
        return chosen
    }

    mutating func randomTransfer() -> [Branch] {
        let chosen = randomTransferParticipants(&random)
        let amount = Paise(Int64(1 + pick(6_000)))
        var branches = [
            Branch(participant: chosen[0], operations: [.debit(account: accounts[pick(3)], amount: amount)]),
            Branch(participant: chosen[1], operations: [.credit(account: accounts[pick(3)], amount: amount)]),
        ]
        if chance(40) { branches.append(Branch(participant: chosen[2], operations: [.read(account: accounts[pick(3)])])) }
        return branches
    }

    mutating func submit(_ tx: TransactionID, _ branches: [Branch]) throws {
        transactions[tx] = branches
        feed(.begin(tx, branches: branches))
        feed(.requestCommit(tx))
    }

    mutating func settle() throws {
        var steps = 0
        while try step(allowFaults: false) {
            steps += 1
            try #require(steps < 200_000, "the system does not settle")
        }
    }

    /// One random thing happens. Returns false when nothing is left to happen.
    @discardableResult
    mutating func step(allowFaults: Bool = true) throws -> Bool {
        let faulty = faults && allowFaults
        enum Choice { case deliverToParticipant(ParticipantID), deliverToCoordinator(ParticipantID), job(Int), timer(TimerID), restart(ParticipantID) }
        var options: [Choice] = []
        for name in names where !(toParticipant[name] ?? []).isEmpty { options.append(.deliverToParticipant(name)) }
        for name in names where !(toCoordinator[name] ?? []).isEmpty { options.append(.deliverToCoordinator(name)) }
        for index in jobs.indices { options.append(.job(index)) }
        // Timers are slow: offered only now and then, unless nothing else can happen.
        let timers = liveTimers.sorted { $0.value < $1.value }.map(\.key)
        if options.isEmpty || chance(10) { options += timers.map(Choice.timer) }
        if faulty && chance(1) { options.append(.restart(names[pick(names.count)])) }
        if options.isEmpty { return false }

        switch options[pick(options.count)] {
        case .deliverToParticipant(let name):
            let message = toParticipant[name]!.removeFirst()
            if faulty && chance(5) { stats["lost", default: 0] += 1; break }
            if case .rollback(let tx, _) = message, case .staging? = banks[name]!.protocolState.branches[tx] {
                stats["rollback while staging", default: 0] += 1
            }
            participantHandle(name, .message(message))
            if faulty && chance(5) { // duplicated
                stats["duplicated", default: 0] += 1
                participantHandle(name, .message(message))
            }
        case .deliverToCoordinator(let name):
            let reply = toCoordinator[name]!.removeFirst()
            if faulty && chance(5) { stats["lost", default: 0] += 1; break }
            let input: CoordinatorInput
            switch reply {
            case .vote(let tx, let vote, _): input = .voted(tx, participant: name, vote: vote)
            case .acknowledged(let tx): input = .acknowledged(tx, participant: name)
            case .heuristic: preconditionFailure("these participants never decide alone")
            }
            feed(input)
            if faulty && chance(5) { // duplicated
                stats["duplicated", default: 0] += 1
                feed(input)
            }
        case .job(let index):
            let job = jobs.remove(at: index)
            switch job {
            case .stage(let name, let tx, let operations, let writers, let readOnly):
                var failure: Refusal?
                for operation in operations {
                    if case .debit(let account, let amount) = operation,
                       let balance = banks[name]!.balances[account], balance < amount {
                        failure = .insufficientFunds(ResourceID(participant: name, account: account), balance: balance, debit: amount)
                        stats["insufficient funds", default: 0] += 1
                    }
                }
                if failure == nil && !readOnly { banks[name]!.persisted[tx] = (operations, writers) }
                participantHandle(name, .staged(tx, failure: failure))
            case .durable(let tx):
                durable.insert(tx)
                feed(.decisionDurable(tx, position: LogPosition(segment: 0, offset: UInt64(durable.count))))
            }
        case .timer(let timer):
            nowUs = max(nowUs, liveTimers.removeValue(forKey: timer)!)
            feed(.timerFired(timer))
        case .restart(let name):
            // The process dies: staging in progress is lost; what was persisted comes back.
            stats["restart", default: 0] += 1
            stats["restored", default: 0] += banks[name]!.persisted.count
            jobs.removeAll { if case .stage(name, _, _, _, _) = $0 { true } else { false } }
            var fresh = ParticipantProtocol(participant: name, maxBranches: 4)
            for (tx, branch) in banks[name]!.persisted.sorted(by: { $0.key < $1.key }) {
                #expect(fresh.handle(.restored(tx, operations: branch.operations, writers: branch.writers)).isEmpty)
            }
            banks[name]!.protocolState = fresh
        }
        nowUs += 1 + random.next() % 500
        return true
    }

    // MARK: effects

    mutating func participantHandle(_ name: ParticipantID, _ input: ParticipantProtocol.Input) {
        let effects = banks[name]!.protocolState.handle(input)
        for effect in effects {
            switch effect {
            case .stage(let tx, let operations, let writers):
                jobs.append(.stage(name, tx, operations: operations, writers: writers, readOnly: false))
            case .validateReads(let tx, let operations):
                jobs.append(.stage(name, tx, operations: operations, writers: [], readOnly: true))
            case .apply(let tx, let operations, _):
                #expect(decided[tx] == [.committed], "\(name) applies \(tx), which is not decided committed")
                #expect(banks[name]!.persisted[tx] != nil, "\(name) applies \(tx), which it never persisted")
                for operation in operations {
                    switch operation {
                    case .debit(let account, _), .credit(let account, _):
                        banks[name]!.balances[account] = banks[name]!.balances[account]! + operation.delta
                    case .fileReport: banks[name]!.reports += 1
                    case .read: break
                    }
                }
                banks[name]!.persisted[tx] = nil
                applied[tx, default: []].append(name)
            case .discard(let tx):
                #expect(decided[tx]?.first?.isCommitted != true, "\(name) discards \(tx), which committed")
                banks[name]!.persisted[tx] = nil
            case .decideAlone, .forgetHeuristic:
                Issue.record("no bank here decides alone")
            case .refuse(_, let reason):
                Issue.record("\(name) refused: \(reason)")
            case .reply(let reply):
                toCoordinator[name, default: []].append(reply)
            }
        }
    }

    mutating func feed(_ input: CoordinatorInput) {
        for effect in coordinator.handle(input, nowUs: nowUs) {
            switch effect {
            case .send(let name, let message):
                if case .commit(let tx) = message { #expect(durable.contains(tx), "COMMIT for \(tx) before durable") }
                toParticipant[name, default: []].append(message)
            case .appendDecision(.commit(let tx, _), true):
                jobs.append(.durable(tx))
            case .appendDecision, .recordReconciliation:
                break
            case .setTimer(let timer, let afterUs):
                liveTimers[timer] = nowUs + afterUs
            case .cancelTimer(let timer):
                liveTimers[timer] = nil
            case .emit(let event):
                switch event.kind {
                case .retryScheduled: stats["resend", default: 0] += 1
                case .prepareTimedOut: stats["prepare timed out", default: 0] += 1
                case .voteReceived(_, _, .readOnly, _): stats["read-only", default: 0] += 1
                case .voteReceived(_, _, .no(.lockedBy), _):
                    stats["lock conflict", default: 0] += 1
                default: break
                }
            case .observed:
                break
            case .decided(let tx, let outcome):
                decided[tx, default: []].append(outcome)
            case .finished(let tx, let outcome):
                finished[tx, default: []].append(outcome)
                stats[outcome.isCommitted ? "committed" : "aborted", default: 0] += 1
            case .fatal(let message):
                Issue.record("fatal: \(message)")
            }
        }
    }

    // MARK: invariants

    func checkFinalState() {
        #expect(coordinator.inFlightCount == 0)
        var total: Int64 = 0
        for (name, bank) in banks {
            #expect(bank.protocolState.branches.isEmpty, "\(name) still holds \(bank.protocolState.branches.keys.sorted())")
            #expect(bank.protocolState.lockOwners.isEmpty, "\(name) still holds locks \(bank.protocolState.lockOwners)")
            #expect(bank.persisted.isEmpty, "\(name) still has prepared write-sets")
            for balance in bank.balances.values {
                #expect(balance >= .zero, "\(name) overdrawn")
                total += balance.value
            }
        }
        #expect(total == initialTotal, "money was created or destroyed")
        for (tx, branches) in transactions {
            #expect(decided[tx]?.count == 1, "\(tx) decided \(decided[tx] ?? [])")
            #expect(finished[tx]?.count == 1, "\(tx) finished \(finished[tx] ?? [])")
            let writers = Set(branches.filter { !$0.isReadOnly }.map(\.participant))
            let appliedAt = applied[tx] ?? []
            #expect(appliedAt.count == Set(appliedAt).count, "\(tx) applied twice somewhere: \(appliedAt)")
            if finished[tx]?.first == .committed {
                #expect(Set(appliedAt) == writers, "\(tx) committed but applied only at \(appliedAt)")
            } else {
                #expect(appliedAt.isEmpty, "\(tx) aborted but applied at \(appliedAt)")
            }
        }
    }
}
