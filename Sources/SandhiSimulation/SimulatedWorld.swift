import HeapModule
import SandhiEngine
import SandhiHistory

// A deterministic world around the engine's real state machines: one `Coordinator` and a few
// `ParticipantProtocol`s holding balances, joined by a simulated network, with a simulated
// disk under the decision log and the banks, all on one virtual clock and one seeded
// generator. Nothing here reads the real time or the system's entropy, so a seed replays the
// same run, event for event (FoundationDB's and TigerBeetle's way of making failures
// reproducible).
//
// The fault model ("nemesis"), each fault with a per-mille rate drawn from the seed:
//   network      loss, duplication, extra delay (reordering), partitions of one participant
//   processes    crash and restart of a participant (staging in flight is lost, prepared
//                write-sets survive) or of the coordinator (unsynced log records are lost; the
//                new incarnation recovers from the durable log and the banks' prepared sets)
//   disk         a decision-log fsync that fails: the records it was to make durable are lost,
//                and the coordinator, whose decision's durability is unknown, halts and restarts
//
// Checked after every step: no participant applies a COMMIT whose decision is not durable, no
// balance goes negative. Checked once faults stop and everything settles: atomicity,
// conservation, durability of every commit a client was told of, no orphaned prepared state
// or locks, liveness (everything finishes within a bound of virtual time), and isolation: the
// history of what every committed transaction read and wrote (values, versions, writers, as
// the banks saw them) goes through `SandhiHistory`'s checker (G0 ... G2-item).

public struct SimulatedWorld {
    // MARK: - Processes

    struct Bank {
        var machine: ParticipantProtocol
        var up = true
        /// Bumped at every crash: work scheduled by an earlier incarnation is void.
        var incarnation = 0
        var balances: [AccountID: Int64]
        /// Survives crashes: each account's committed version and its writer.
        var versions: [AccountID: (version: UInt64, writer: TransactionID?)] = [:]
        /// Survives crashes: prepared write-sets (what `restored` reads at restart).
        var prepared: [TransactionID: (operations: [Operation], writers: [ParticipantID])] = [:]
        /// Survives crashes too: every branch committed here (the SQLite bank's `committed` table).
        var committed: Set<TransactionID> = []
        var stagingInFlight = 0
        var partitionedUntilUs: UInt64 = 0
        var inquiryScheduled = false
    }

    struct CoordinatorProcess {
        var coordinator: Coordinator
        var up = true
        var incarnation = 0
        var epoch: UInt32 = 1
        var nextSequence: UInt64 = 1
        /// Appended, not yet synced: lost in a crash.
        var unsynced: [(record: DecisionRecord, forced: Bool)] = []
        var syncScheduled = false
    }

    enum EventKind {
        case submit(Int)
        case toParticipant(Int, ParticipantMessage)
        case toCoordinator(Int, ParticipantReply)
        case staged(Int, TransactionID, operations: [Operation], writers: [ParticipantID], readOnly: Bool, incarnation: Int)
        case logSync(incarnation: Int)
        case timer(TimerID, incarnation: Int)
        case restartParticipant(Int)
        case restartCoordinator
        /// A participant with prepared branches asks about them again.
        case inquiry(Int, incarnation: Int)
    }

    struct Event: Comparable {
        var atUs: UInt64
        var sequence: UInt64
        var kind: EventKind
        static func < (a: Event, b: Event) -> Bool { (a.atUs, a.sequence) < (b.atUs, b.sequence) }
        static func == (a: Event, b: Event) -> Bool { a.atUs == b.atUs && a.sequence == b.sequence }
    }

    // MARK: - State

    let options: SimulationOptions
    let faults: FaultProfile
    var random: SplitMix64
    var nowUs: UInt64 = 0
    var queue = Heap<Event>()
    var nextEventSequence: UInt64 = 0
    var step = 0
    var faultsStopAtUs: UInt64 = 0

    let names: [ParticipantID]
    let indexOf: [ParticipantID: Int]
    let accounts: [AccountID]
    /// Reused effect buffers: a simulation handles millions of inputs.
    var coordinatorEffects: [CoordinatorEffect] = []
    var participantEffects: [ParticipantProtocol.Effect] = []
    var banks: [Bank]
    var coordinatorProcess: CoordinatorProcess
    /// Survives coordinator crashes.
    var durableLog: [DecisionRecord] = []
    var everDurableCommit: Set<TransactionID> = []
    let openingTotal: Int64

    // The clients' view.
    var workload: [[Branch]] = []
    var submitted: [TransactionID: [Branch]] = [:]
    var told: [TransactionID: Outcome] = [:]
    /// Where each transaction was applied, one bit per participant.
    var applied: [TransactionID: UInt16] = [:]
    /// What each branch's operations saw, by bank, as carried by the vote the coordinator
    /// counted (a duplicate PREPARE can stage a branch again later; that vote is not counted):
    /// the record the isolation check is built from.
    var seen: [TransactionID: [Int: [Observation]]] = [:]
    /// What each branch saw at its last successful staging: for a vote counted without its
    /// observations (a repeat YES from a participant already prepared carries none).
    var staged: [TransactionID: [Int: [Observation]]] = [:]
    /// The vote being delivered, until the coordinator says whether it counted it.
    var voteInFlight: (tx: TransactionID, index: Int, observed: [Observation])?

    // What the run did.
    var injected: [String: Int] = [:]
    var cases: [String: Int] = [:]
    var violations: [SimulationReport.Violation] = []
    var traceHash: UInt64 = 0xcbf2_9ce4_8422_2325
    /// The last events as (code, time, a, b), formatted only for a report.
    var trace: [(code: UInt64, atUs: UInt64, a: UInt64, b: UInt64)] = []
    var traceNext = 0

    public init(_ options: SimulationOptions) {
        self.options = options
        var random = SplitMix64(seed: options.seed)
        faults = options.faults ?? FaultProfile.drawn(from: &random)
        self.random = random
        let allNames = ["hdfc", "icici", "axis", "sbi", "kotak", "yes", "pnb", "bob"]
        precondition((2...allNames.count).contains(options.participants))
        names = allNames.prefix(options.participants).map { ParticipantID(validated: $0) }
        indexOf = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        accounts = (0..<options.accountsPerParticipant).map { AccountID(validated: "a\($0)") }
        let engineBug = options.bug?.engineBug
        banks = names.map { name in
            Bank(machine: ParticipantProtocol(participant: name, plantedBug: engineBug == .noLocks ? .noLocks : nil),
                 balances: Dictionary(uniqueKeysWithValues: (0..<options.accountsPerParticipant).map { (AccountID(validated: "a\($0)"), options.openingBalance) }))
        }
        coordinatorProcess = CoordinatorProcess(coordinator: Coordinator(configuration: Self.coordinatorConfiguration(options)))
        openingTotal = options.openingBalance * Int64(options.participants * options.accountsPerParticipant)
        trace = Array(repeating: (0, 0, 0, 0), count: max(1, options.traceTail))
    }

    static func coordinatorConfiguration(_ options: SimulationOptions) -> Coordinator.Configuration {
        var configuration = Coordinator.Configuration()
        configuration.prepareTimeoutMs = 50
        configuration.resendInitialMs = 5
        configuration.resendMaxMs = 40
        configuration.lockTimeoutMs = 100
        configuration.seed = options.seed
        configuration.plantedBug = options.bug?.engineBug
        return configuration
    }

    // MARK: - Running

    /// Runs the whole workload, stops the faults, lets everything settle and checks.
    public mutating func run() -> SimulationReport {
        for index in 0..<options.transactions {
            workload.append(randomTransfer())
            schedule(.submit(index), afterUs: UInt64(index) * 400 + random.next() % 400)
        }
        faultsStopAtUs = UInt64(options.transactions) * 400 + 20_000
        let limitUs = faultsStopAtUs + options.settleLimitUs
        while let event = queue.popMin() {
            if event.atUs > limitUs { queue.insert(event); break }
            nowUs = max(nowUs, event.atUs)
            step += 1
            process(event.kind)
            if nowUs < faultsStopAtUs { nemesis() }
        }
        checkFinalState(timedOut: !queue.isEmpty && !settled)
        var committed = 0, aborted = 0
        for outcome in told.values { if outcome.isCommitted { committed += 1 } else { aborted += 1 } }
        let tail = (0..<trace.count).map { trace[(traceNext + $0) % trace.count] }.filter { $0.code != 0 }.map(describe)
        return SimulationReport(
            seed: options.seed, bug: options.bug, faults: faults, transactions: submitted.count, committed: committed, aborted: aborted,
            steps: step, virtualTimeUs: nowUs, injected: injected, cases: cases, violations: violations, traceHash: traceHash,
            traceTail: tail)
    }

    /// Nothing left in flight: every queued event is a stale timer or a late message.
    var settled: Bool {
        coordinatorProcess.up && coordinatorProcess.coordinator.inFlightCount == 0 && banks.allSatisfy { $0.up && $0.machine.branches.isEmpty }
    }

    mutating func schedule(_ kind: EventKind, afterUs: UInt64) {
        nextEventSequence += 1
        queue.insert(Event(atUs: nowUs + afterUs, sequence: nextEventSequence, kind: kind))
    }

    mutating func chance(_ perMille: UInt64) -> Bool { perMille > 0 && random.next() % 1_000 < perMille }
    mutating func pick(_ count: Int) -> Int { Int(random.next() % UInt64(count)) }

    mutating func randomTransfer() -> [Branch] {
        let from = pick(names.count)
        let to = (from + 1 + pick(names.count - 1)) % names.count
        let amount = Paise(1 + Int64(random.next() % UInt64(options.openingBalance / 2)))
        var branches = [
            Branch(participant: names[from], operations: [.debit(account: accounts[pick(accounts.count)], amount: amount)]),
            Branch(participant: names[to], operations: [.credit(account: accounts[pick(accounts.count)], amount: amount)]),
        ]
        if names.count > 2 && chance(300) {
            let reader = (0..<names.count).first { $0 != from && $0 != to }!
            branches.append(Branch(participant: names[reader], operations: [.read(account: accounts[pick(accounts.count)])]))
        }
        return branches
    }

    // MARK: - Events

    mutating func process(_ kind: EventKind) {
        switch kind {
        case .submit(let index):
            guard coordinatorProcess.up else { record(1, 0, 0); injected["submission refused: coordinator down", default: 0] += 1; return }
            let id = TransactionID(epoch: coordinatorProcess.epoch, sequence: coordinatorProcess.nextSequence)
            coordinatorProcess.nextSequence += 1
            submitted[id] = workload[index]
            record(1, id.rawValue, 0)
            feed(.begin(id, branches: workload[index]))
            feed(.requestCommit(id))
        case .toParticipant(let index, let message):
            guard banks[index].up else { return }
            record(2, message.transaction.rawValue, UInt64(index))
            participant(index, .message(message))
        case .toCoordinator(let index, let reply):
            guard coordinatorProcess.up else { return }
            record(3, reply.transaction.rawValue, UInt64(index))
            switch reply {
            case .vote(let tx, let vote, let observed):
                voteInFlight = (tx, index, observed)
                feed(.voted(tx, participant: names[index], vote: vote, observed: observed))
                voteInFlight = nil
            case .acknowledged(let tx): feed(.acknowledged(tx, participant: names[index]))
            }
        case .staged(let index, let tx, let operations, let writers, let readOnly, let incarnation):
            guard banks[index].up, banks[index].incarnation == incarnation else { return }
            banks[index].stagingInFlight -= 1
            record(4, tx.rawValue, UInt64(index))
            if !readOnly && banks[index].committed.contains(tx) {
                cases["stale PREPARE of a committed branch", default: 0] += 1
                participant(index, .alreadyCommitted(tx))
                return
            }
            let (failure, observed) = validate(index, tx, operations)
            if failure == nil {
                staged[tx, default: [:]][index] = observed
                if !readOnly { banks[index].prepared[tx] = (operations, writers) }
            }
            participant(index, .staged(tx, failure: failure, observed: observed))
        case .logSync(let incarnation):
            guard coordinatorProcess.up, coordinatorProcess.incarnation == incarnation else { return }
            coordinatorProcess.syncScheduled = false
            let batch = coordinatorProcess.unsynced
            coordinatorProcess.unsynced.removeAll()
            record(5, UInt64(batch.count), 0)
            if nowUs < faultsStopAtUs && chance(faults.logSyncFailurePerMille) {
                // fsyncgate: what this sync was to make durable may be gone; nobody may act on it.
                injected["log fsync failure", default: 0] += 1
                if let forced = batch.first(where: { $0.forced }), let tx = forced.record.transaction {
                    feed(.decisionFailed(tx, reason: "simulated fsync failure"))
                } else {
                    crashCoordinator(reason: "log fsync failure")
                }
                return
            }
            for (record, forced) in batch {
                durableLog.append(record)
                guard case .commit(let tx, _) = record else { continue }
                everDurableCommit.insert(tx)
                if forced { feed(.decisionDurable(tx, position: LogPosition(segment: 1, offset: UInt64(durableLog.count)))) }
            }
        case .timer(let timer, let incarnation):
            guard coordinatorProcess.up, coordinatorProcess.incarnation == incarnation else { return }
            record(6, timer.transaction.rawValue, UInt64(timer.kind.rawValue))
            feed(.timerFired(timer))
        case .inquiry(let index, let incarnation):
            guard banks[index].up, banks[index].incarnation == incarnation else { return }
            banks[index].inquiryScheduled = false
            record(11, 0, UInt64(index))
            participant(index, .inquire)
        case .restartParticipant(let index):
            restartParticipant(index)
        case .restartCoordinator:
            restartCoordinator()
        }
    }

    /// A debit's overdraft is the only refusal here. Like the SQLite bank, each operation with
    /// an account reports what it saw: the committed state, or the branch's own earlier change.
    func validate(_ index: Int, _ tx: TransactionID, _ operations: [Operation]) -> (String?, [Observation]) {
        var state: [Observation] = []
        var observed: [Observation] = []
        for operation in operations {
            guard let account = operation.account else { continue }
            let slot = state.firstIndex { $0.account == account }
            let before = slot.map { state[$0] } ?? {
                let committed = banks[index].versions[account]
                return Observation(account: account, balance: Paise(banks[index].balances[account] ?? 0),
                                   version: committed?.version ?? 0, writer: committed?.writer)
            }()
            observed.append(before)
            guard operation.isWrite else {
                if slot == nil { state.append(before) }
                continue
            }
            let after = before.balance.value + operation.delta.value
            if after < 0 { return ("insufficient funds in \(names[index])/\(account)", []) }
            let next = Observation(account: account, balance: Paise(after), version: before.version + 1, writer: tx)
            if let slot { state[slot] = next } else { state.append(next) }
        }
        return (nil, observed)
    }

    // MARK: - The participants

    mutating func participant(_ index: Int, _ input: ParticipantProtocol.Input) {
        var effects: [ParticipantProtocol.Effect] = []
        swap(&effects, &participantEffects)
        effects.removeAll(keepingCapacity: true)
        banks[index].machine.handle(input, into: &effects)
        defer { swap(&effects, &participantEffects) }
        for effect in effects {
            switch effect {
            case .stage(let tx, let operations, let writers):
                banks[index].stagingInFlight += 1
                schedule(.staged(index, tx, operations: operations, writers: writers, readOnly: false, incarnation: banks[index].incarnation),
                         afterUs: 30 + random.next() % 300)
            case .validateReads(let tx, let operations):
                banks[index].stagingInFlight += 1
                schedule(.staged(index, tx, operations: operations, writers: [], readOnly: true, incarnation: banks[index].incarnation),
                         afterUs: 30 + random.next() % 300)
            case .apply(let tx, let operations, _):
                if !everDurableCommit.contains(tx) {
                    violation("decision-before-commit", "\(names[index]) applied \(tx), whose COMMIT record was never durable")
                }
                if (applied[tx] ?? 0) & (1 << index) != 0 {
                    violation("atomicity", "\(names[index]) applied \(tx) twice")
                }
                for operation in operations {
                    guard let account = operation.account, operation.isWrite else { continue }
                    let balance = banks[index].balances[account, default: 0] + operation.delta.value
                    banks[index].balances[account] = balance
                    banks[index].versions[account] = ((banks[index].versions[account]?.version ?? 0) + 1, tx)
                    if balance < 0 { violation("non-negative", "\(names[index])/\(account) went to \(balance) applying \(tx)") }
                }
                banks[index].prepared[tx] = nil
                banks[index].committed.insert(tx)
                applied[tx, default: 0] |= 1 << index
            case .discard(let tx):
                banks[index].prepared[tx] = nil
            case .reply(let reply):
                sendToCoordinator(from: index, reply)
            }
        }
        scheduleInquiryIfPrepared(index)
    }

    /// Prepared branches ask again every 20 to 40 ms until they are resolved.
    mutating func scheduleInquiryIfPrepared(_ index: Int) {
        guard banks[index].up, !banks[index].inquiryScheduled, !banks[index].prepared.isEmpty else { return }
        banks[index].inquiryScheduled = true
        schedule(.inquiry(index, incarnation: banks[index].incarnation), afterUs: 20_000 + random.next() % 20_000)
    }

    mutating func restartParticipant(_ index: Int) {
        var bank = banks[index]
        bank.up = true
        if options.bug == .forgetPreparedOnRestart { bank.prepared.removeAll() }
        bank.machine = ParticipantProtocol(participant: names[index], plantedBug: options.bug?.engineBug == .noLocks ? .noLocks : nil)
        for (tx, branch) in bank.prepared.sorted(by: { $0.key < $1.key }) {
            _ = bank.machine.handle(.restored(tx, operations: branch.operations, writers: branch.writers))
        }
        bank.inquiryScheduled = false
        banks[index] = bank
        record(7, UInt64(bank.prepared.count), UInt64(index))
        scheduleInquiryIfPrepared(index)
    }

    // MARK: - The coordinator

    mutating func feed(_ input: CoordinatorInput) {
        guard coordinatorProcess.up else { return }
        var effects: [CoordinatorEffect] = []
        swap(&effects, &coordinatorEffects)
        effects.removeAll(keepingCapacity: true)
        coordinatorProcess.coordinator.handle(input, nowUs: nowUs, into: &effects)
        defer { swap(&effects, &coordinatorEffects) }
        for effect in effects {
            switch effect {
            case .send(let participant, let message):
                sendToParticipant(indexOf[participant]!, message)
            case .appendDecision(let record, let forced):
                coordinatorProcess.unsynced.append((record, forced))
                if !coordinatorProcess.syncScheduled {
                    coordinatorProcess.syncScheduled = true
                    schedule(.logSync(incarnation: coordinatorProcess.incarnation), afterUs: 50 + random.next() % 300)
                }
            case .setTimer(let timer, let afterUs):
                schedule(.timer(timer, incarnation: coordinatorProcess.incarnation), afterUs: afterUs)
            case .cancelTimer:
                break // a cancelled timer that fires anyway is ignored by its generation
            case .emit(let event):
                if case .voteReceived(let tx, let participant, _, _) = event.kind, let vote = voteInFlight,
                   vote.tx == tx, indexOf[participant] == vote.index, !vote.observed.isEmpty {
                    seen[tx, default: [:]][vote.index] = vote.observed // the vote that counted
                }
                if case .deadlockDetected = event.kind { cases["deadlock", default: 0] += 1 }
                if case .recovered = event.kind { cases["in-doubt resolved by recovery", default: 0] += 1 }
            case .observed:
                break
            case .decided(let tx, let outcome):
                if told[tx] == nil { told[tx] = outcome }
            case .finished:
                break
            case .fatal(let reason):
                crashCoordinator(reason: reason)
                return
            }
        }
    }

    mutating func crashCoordinator(reason: String) {
        guard coordinatorProcess.up else { return }
        injected["coordinator crash", default: 0] += 1
        let states = coordinatorProcess.coordinator.transactions.values.map(\.state)
        if states.contains(.prepared) { cases["coordinator crash before the decision is durable", default: 0] += 1 }
        if states.contains(.committing) { cases["coordinator crash after the decision is durable", default: 0] += 1 }
        if !coordinatorProcess.unsynced.isEmpty { injected["unsynced log records lost", default: 0] += coordinatorProcess.unsynced.count }
        coordinatorProcess.up = false
        coordinatorProcess.incarnation += 1
        coordinatorProcess.unsynced.removeAll()
        coordinatorProcess.syncScheduled = false
        record(8, 0, 0)
        schedule(.restartCoordinator, afterUs: 1_000 + random.next() % 20_000)
    }

    /// A new incarnation with a higher epoch, recovered from the durable log and the banks'
    /// prepared write-sets, exactly as `SandhiNode.start` does.
    mutating func restartCoordinator() {
        let epoch = coordinatorProcess.epoch + 1
        coordinatorProcess = CoordinatorProcess(
            coordinator: Coordinator(configuration: Self.coordinatorConfiguration(options)), up: true,
            incarnation: coordinatorProcess.incarnation, epoch: epoch)
        record(9, UInt64(epoch), 0)
        var ended = Set<TransactionID>()
        var commits: [(TransactionID, [ParticipantID])] = []
        for record in durableLog {
            switch record {
            case .commit(let tx, let participants): commits.append((tx, participants))
            case .end(let tx): ended.insert(tx)
            default: break
            }
        }
        var preparedAt: [TransactionID: (participants: [ParticipantID], locks: [ResourceID])] = [:]
        for (index, bank) in banks.enumerated() {
            for (tx, branch) in bank.prepared {
                var entry = preparedAt[tx] ?? (branch.writers.isEmpty ? [names[index]] : branch.writers, [])
                entry.locks += ParticipantProtocol.writtenAccounts(branch.operations).map { ResourceID(participant: names[index], account: $0) }
                preparedAt[tx] = entry
            }
        }
        let committed = Set(commits.map(\.0))
        for (tx, participants) in commits where !ended.contains(tx) || preparedAt[tx] != nil {
            feed(.recoverCommitted(tx, participants: participants, locks: preparedAt[tx]?.locks ?? []))
        }
        for (tx, entry) in preparedAt.sorted(by: { $0.key < $1.key }) where !committed.contains(tx) {
            feed(.recoverInDoubt(tx, participants: entry.participants, locks: entry.locks))
        }
    }

    // MARK: - The network

    mutating func sendToParticipant(_ index: Int, _ message: ParticipantMessage) {
        let kind: MessageKind
        switch message {
        case .prepare: kind = .prepare
        case .commit: kind = .commit
        case .rollback: kind = .rollback
        }
        deliver(kind, partitioned: banks[index].partitionedUntilUs > nowUs) { world, delayUs in
            world.schedule(.toParticipant(index, message), afterUs: delayUs)
        }
    }

    mutating func sendToCoordinator(from index: Int, _ reply: ParticipantReply) {
        let kind: MessageKind
        if case .vote = reply { kind = .vote } else { kind = .ack }
        deliver(kind, partitioned: banks[index].partitionedUntilUs > nowUs) { world, delayUs in
            world.schedule(.toCoordinator(index, reply), afterUs: delayUs)
        }
    }

    /// Loses, duplicates or delays one message, by the seed's profile.
    enum MessageKind: String {
        case prepare, vote, commit, rollback, ack
        var lost: String {
            switch self {
            case .prepare: "lost prepare"
            case .vote: "lost vote"
            case .commit: "lost commit"
            case .rollback: "lost rollback"
            case .ack: "lost ack"
            }
        }
        var duplicated: String {
            switch self {
            case .prepare: "duplicated prepare"
            case .vote: "duplicated vote"
            case .commit: "duplicated commit"
            case .rollback: "duplicated rollback"
            case .ack: "duplicated ack"
            }
        }
    }

    mutating func deliver(_ kind: MessageKind, partitioned: Bool, _ enqueue: (inout SimulatedWorld, UInt64) -> Void) {
        let faulty = nowUs < faultsStopAtUs
        if faulty && partitioned {
            cases[kind.lost, default: 0] += 1
            injected["message cut by a partition", default: 0] += 1
            return
        }
        if faulty && chance(faults.lossPerMille) {
            cases[kind.lost, default: 0] += 1
            injected["message lost", default: 0] += 1
            return
        }
        var delayUs = 20 + random.next() % 200
        if faulty && chance(faults.delayPerMille) {
            delayUs += random.next() % 20_000
            injected["message delayed", default: 0] += 1
        }
        enqueue(&self, delayUs)
        if faulty && chance(faults.duplicationPerMille) {
            cases[kind.duplicated, default: 0] += 1
            injected["message duplicated", default: 0] += 1
            enqueue(&self, delayUs + random.next() % 5_000)
        }
    }

    // MARK: - The nemesis

    mutating func nemesis() {
        if chance(faults.participantCrashPerMille) {
            let index = pick(names.count)
            if banks[index].up {
                injected["participant crash", default: 0] += 1
                if banks[index].stagingInFlight > 0 { cases["participant crash before its durable vote", default: 0] += 1 }
                if !banks[index].prepared.isEmpty { cases["participant crash after its durable vote", default: 0] += 1 }
                banks[index].up = false
                banks[index].incarnation += 1
                banks[index].stagingInFlight = 0
                record(10, 0, UInt64(index))
                schedule(.restartParticipant(index), afterUs: 1_000 + random.next() % 20_000)
            }
        }
        if chance(faults.coordinatorCrashPerMille) { crashCoordinator(reason: "crash") }
        if chance(faults.partitionPerMille) {
            let index = pick(names.count)
            banks[index].partitionedUntilUs = nowUs + 1_000 + random.next() % 30_000
            injected["partition", default: 0] += 1
        }
    }

    // MARK: - Invariants

    mutating func violation(_ invariant: String, _ detail: String) {
        violations.append(SimulationReport.Violation(invariant: invariant, detail: detail, step: step))
    }

    mutating func checkFinalState(timedOut: Bool) {
        if timedOut || !settled {
            let stuck = coordinatorProcess.coordinator.transactions.keys.sorted().prefix(5).map(\.description)
            let prepared = banks.enumerated().flatMap { index, bank in bank.prepared.keys.sorted().map { "\(names[index]):\($0)" } }.prefix(5)
            violation("liveness", "not settled \(options.settleLimitUs / 1_000_000)s after faults stopped: in flight \(stuck), prepared \(Array(prepared))")
        }
        var total: Int64 = 0
        for (index, bank) in banks.enumerated() {
            if !bank.prepared.isEmpty || !bank.machine.lockOwners.isEmpty {
                violation("no-orphans", "\(names[index]) still holds \(bank.prepared.keys.sorted().map(\.description)) prepared, locks \(bank.machine.lockOwners.count)")
            }
            total += bank.balances.values.reduce(0, +)
        }
        if !coordinatorProcess.coordinator.locks.table.isEmpty {
            violation("no-orphans", "the coordinator's lock table still holds \(coordinatorProcess.coordinator.locks.table.count) resources")
        }
        if total != openingTotal { violation("conservation", "total \(total), opened with \(openingTotal)") }
        for (tx, branches) in submitted.sorted(by: { $0.key < $1.key }) {
            let writers = Set(branches.filter { !$0.isReadOnly }.map { names.firstIndex(of: $0.participant)! })
            let bits = applied[tx] ?? 0
            let at = Set((0..<names.count).filter { bits & (1 << $0) != 0 })
            if !at.isEmpty && at != writers {
                violation("atomicity", "\(tx) applied at \(at.sorted().map { names[$0].name }) of \(writers.sorted().map { names[$0].name })")
            }
            if told[tx]?.isCommitted == true && at != writers {
                violation("durability", "\(tx) was reported committed but is applied at \(at.sorted().map { names[$0].name }) only")
            }
            if let outcome = told[tx], !outcome.isCommitted, !at.isEmpty {
                violation("atomicity", "\(tx) was reported aborted but applied at \(at.sorted().map { names[$0].name })")
            }
        }
        checkIsolation()
    }

    /// Builds the history of every submitted transaction from what the banks saw, and checks it.
    /// A transaction counts as committed when it was applied somewhere or was only read (told
    /// committed); atomicity is checked on its own above.
    mutating func checkIsolation() {
        var history: [HistoryTransaction] = []
        for (tx, branches) in submitted.sorted(by: { $0.key < $1.key }) {
            let committed = (applied[tx] ?? 0) != 0 || told[tx]?.isCommitted == true
            guard committed else {
                history.append(HistoryTransaction(id: tx.description, outcome: .aborted, ops: []))
                continue
            }
            var ops: [HistoryTransaction.Op] = []
            for branch in branches {
                guard let index = indexOf[branch.participant], let observed = seen[tx]?[index] ?? staged[tx]?[index] else { continue }
                for (operation, before) in zip(branch.operations.filter { $0.account != nil }, observed) {
                    let key = "\(branch.participant)/\(before.account)"
                    ops.append(.read(key: key, value: before.balance.value, version: Int64(before.version), writer: before.writer?.description))
                    if operation.isWrite {
                        ops.append(.write(key: key, value: before.balance.value + operation.delta.value, version: Int64(before.version) + 1))
                    }
                }
            }
            history.append(HistoryTransaction(id: tx.description, outcome: .committed, ops: ops))
        }
        let report = HistoryChecker().check(header: HistoryHeader(totalPaise: openingTotal), transactions: history)
        for anomaly in report.anomalies.prefix(3) { violation("isolation", anomaly.description) }
    }

    // MARK: - Trace

    /// Folds one event into the trace hash, and keeps a readable line of it for the tail.
    mutating func record(_ code: UInt64, _ a: UInt64, _ b: UInt64) {
        // FNV-1a over 64-bit words rather than bytes: as good at telling runs apart, eight
        // times fewer multiplications on a path taken for every event.
        traceHash = (traceHash ^ code) &* 0x0000_0100_0000_01b3
        traceHash = (traceHash ^ nowUs) &* 0x0000_0100_0000_01b3
        traceHash = (traceHash ^ a) &* 0x0000_0100_0000_01b3
        traceHash = (traceHash ^ b) &* 0x0000_0100_0000_01b3
        guard options.traceTail > 0 else { return }
        trace[traceNext] = (code, nowUs, a, b)
        traceNext = (traceNext + 1) % trace.count
    }

    func describe(_ entry: (code: UInt64, atUs: UInt64, a: UInt64, b: UInt64)) -> String {
        let tx = TransactionID(rawValue: entry.a)
        let at = "\(formatMicros(entry.atUs))"
        switch entry.code {
        case 1: return "\(at) client submits \(tx)"
        case 2: return "\(at) \(names[Int(entry.b)]) receives a message for \(tx)"
        case 3: return "\(at) coordinator receives \(names[Int(entry.b)])'s reply for \(tx)"
        case 4: return "\(at) \(names[Int(entry.b)]) finished staging \(tx)"
        case 5: return "\(at) decision log syncs \(entry.a) record(s)"
        case 6: return "\(at) timer fires for \(tx)"
        case 7: return "\(at) \(names[Int(entry.b)]) restarts with \(entry.a) prepared branch(es)"
        case 8: return "\(at) coordinator crashes"
        case 9: return "\(at) coordinator restarts, epoch \(entry.a)"
        case 10: return "\(at) \(names[Int(entry.b)]) crashes"
        case 11: return "\(at) \(names[Int(entry.b)]) asks about its prepared branches"
        default: return "\(at) event \(entry.code)"
        }
    }
}
