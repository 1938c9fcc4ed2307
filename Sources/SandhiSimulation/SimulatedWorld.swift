import Glibc
import Logging
import SandhiEngine
import SandhiParticipants
import SandhiIO
import SandhiRuntime

// A deterministic world around the code that ships: the engine's `Coordinator`, the banks
// (`SQLiteBank`, each on its own `SimulatedDisk` through the SQLite VFS, driven by the
// participant worker's `ParticipantWorkerCore`), the decision log (`DecisionLogStore` on a
// `SimulatedDisk`, batched by the group-commit writer's `GroupCommitBatch`), the
// reconciliation journal (`ReconciliationJournal`, on the same disk) and recovery
// (`RecoveryPlan`, as `SandhiNode` runs it), joined by a simulated network, all on one virtual
// clock and one seeded generator. Nothing here reads the real time or the system's entropy,
// so a seed replays the same run, event for event (FoundationDB's and TigerBeetle's way of
// making failures reproducible). Only the waiting is the world's: where a thread would sleep,
// an event is scheduled.
//
// The fault model ("nemesis"), each fault with a per-mille rate drawn from the seed:
//   network      loss, duplication, extra delay (reordering); partitions: one participant cut
//                off, half of them, one link cut one way only, and a bridge (see the nemesis)
//   processes    crash and restart of a participant (its queue and unsent replies lost; the
//                bank reopens from its disk, SQLite's WAL recovery and all) or of the
//                coordinator (the new incarnation recovers from the durable log and the banks)
//   disk         a crash loses power (unsynced sectors, sizes and names land all, none, or each
//                or not: torn) or kills only the process (the page cache stays, though pages
//                a failed sync marked clean may be evicted); a log fsync that fails
//                (fsyncgate) halts the coordinator, and so does a reconciliation record whose
//                fsync fails; a bank's fsync that fails stops the bank
//                without a reply, and its process restarts
//   clocks       the coordinator's clock jumps forwards and backwards
//   heuristics   a bank whose branch stays prepared too long decides it alone, commit or
//                rollback (see +Heuristics.swift); once the faults stop, a simulated operator
//                settles every heuristic case the coordinator recorded
//
// Checked as it runs: no participant is sent a COMMIT whose decision is not durable (a
// heuristic commit is its own decision), no client is told of a commit whose decision is not
// durable, no participant replies (a YES included) before its WAL as read is on its disk, no
// FORGET goes out before the reconciliation record of the mixed outcome it settles is
// durable, recovery never cuts a synced log record nor loses a reconciliation record the
// journal acknowledged, and every bank reopens. Checked once
// faults stop and everything settles: no balance negative, atomicity (a mixed outcome only as a case in the
// reconciliation queue, and every case true to what the banks did, money included),
// conservation (less what the operator wrote off), durability of every commit a client was
// told of, no orphaned prepared state, locks or unforgotten heuristic decisions, every case
// settled, liveness (everything finishes within a bound of virtual time), and isolation: the
// history of what every committed transaction read and wrote (values, versions, writers, as
// the banks saw them) goes through `SandhiHistory`'s checker (G0 ... G2-item).

public struct SimulatedWorld {
    // MARK: - Processes

    struct Bank {
        /// The bank's machine: its disk outlives every crash of the bank's process.
        let disk: SimulatedDisk
        /// Everything the bank writes goes to `disk`, SQLite's files through a VFS over it.
        let io: FileIO
        /// The bank that ships, open on `disk`; nil while its process is down.
        var store: SQLiteBank?
        /// The worker's decisions, as its thread would take them (see +Participants.swift).
        var worker: ParticipantWorkerCore
        /// Bumped at every crash: work scheduled by an earlier incarnation is void.
        var incarnation = 0
        /// Messages in the worker's queue, not yet taken.
        var inbox: [ParticipantMessage] = []
        /// When the worker's next round is scheduled (nil: asleep until a message comes), and
        /// that round's generation: a round rescheduled earlier voids the later one.
        var roundAtUs: UInt64?
        var roundGeneration: UInt64 = 0
        /// The worker is storing or syncing until then: what arrives meanwhile is the next batch.
        var busyUntilUs: UInt64 = 0
        /// Replies made durable but not yet handed to the network (the real worker's fsync ->
        /// deliver window): a crash there loses them.
        var repliesInFlight = 0
        /// Prepares stored and not synced when the process last crashed: landed whole or dropped?
        var unsyncedPrepares: [TransactionID] = []
        /// Survives everything: each branch this bank ever decided alone, and whether it committed.
        var decidedAlone: [TransactionID: Bool] = [:]
        /// The link's two directions: coordinator to this participant, and back. Cut until then.
        var cutToUntilUs: UInt64 = 0
        var cutFromUntilUs: UInt64 = 0

        var up: Bool { store != nil }
    }

    struct Submission {
        var id: TransactionID
        var branches: [Branch]
        /// Run by the simulated operator to settle a heuristic case (retry-commit, compensate),
        /// not submitted by a client.
        var linked = false
        /// What the client was told (the first word is the one that counts).
        var told: Outcome?
        /// Where it was applied, a bit per participant: each bank's committed branches too.
        var applied: UInt16 = 0
        /// Its COMMIT record was durable at some point (synced, or found by a recovery).
        var durable = false
        /// Its timers set and not cancelled, as the real `TimerService` keeps them live: a
        /// cancelled timer that surfaces is skipped, unless the nemesis lets it win the race
        /// with its cancel. The coordinator keeps at most one of each (it cancels the old one
        /// before it sets another); generations make them unique within an incarnation, and
        /// the incarnation check drops an earlier incarnation's.
        var liveTimer: TimerID?
        var liveVictimTimer: TimerID?
    }

    struct CoordinatorProcess {
        /// The coordinator with the driver's bookkeeping around it, as `CoordinatorDriver` runs
        /// it; a client is its submission's slot in the ledger.
        var core: CoordinatorDriverCore
        var up = true
        var incarnation = 0
        /// Read from the log at each start (one above the highest there), as `SandhiNode` does.
        var epoch: UInt32 = 1
        var nextSequence: UInt64 = 1
        /// Queued for the log writer, not yet taken (a crash loses them), or, while the power
        /// goes during the writer's fsync, its batch.
        var unsynced: [(record: DecisionRecord, forced: Bool)] = []
        var syncScheduled = false
        /// The writer's batch rules, as `GroupCommitWriter` runs them.
        var logWriter = GroupCommitBatch()
        /// How far the coordinator's clock is from true (virtual) time: skewed and jumping, in
        /// both directions. Its timers are relative, so a jump must change nothing but readings.
        var clockOffsetUs: Int64 = 0

        func clock(_ trueUs: UInt64) -> UInt64 { UInt64(max(0, Int64(trueUs) + clockOffsetUs)) }
    }

    enum EventKind {
        case submit(Int)
        case toParticipant(Int, ParticipantMessage)
        case toCoordinator(Int, ParticipantReply)
        /// The participant's worker takes a batch (see +Participants.swift); a round
        /// rescheduled earlier voids this one.
        case workerRound(Int, generation: UInt64)
        /// The worker syncs what its round stored, and sends the replies.
        case workerSync(Int, incarnation: Int)
        case logSync(incarnation: Int)
        /// The log writer reports a durable COMMIT record to the coordinator: a hop of its own,
        /// so a crash can fall between the decision becoming durable and the first COMMIT.
        case decisionDurable(TransactionID, LogPosition, incarnation: Int)
        case timer(TimerID, incarnation: Int)
        /// Voided by a later crash of the same bank (a coordinator's restart may have brought
        /// the bank up early, and it may have crashed again since).
        case restartParticipant(Int, incarnation: Int)
        case restartCoordinator
        /// A participant hands a reply, durable already, to the network.
        case participantSends(Int, ParticipantReply, incarnation: Int)
    }

    // MARK: - State

    let options: SimulationOptions
    let faults: FaultProfile
    var random: SplitMix64
    var nowUs: UInt64 = 0 {
        didSet { virtualClock.nowUs = nowUs }
    }
    var queue = EventQueue()
    /// Each queued event's kind, by its key's slot (the heap moves 24 plain bytes, not an enum
    /// with arrays in it); freed slots are reused, so this is as long as the queue's peak.
    var payloads: [EventKind] = []
    var freeSlots: [Int] = []
    /// When each client submits its transfer, in order (increasing), and the next to come: kept
    /// out of the queue, which they would only deepen.
    var submissionTimes: [UInt64] = []
    var nextSubmission = 0
    var nextEventSequence: UInt64 = 0
    var step = 0
    var faultsStopAtUs: UInt64 = 0

    let names: [ParticipantID]
    let accounts: [AccountID]
    /// Reused effect buffers: a simulation handles millions of inputs.
    var coordinatorActions: [CoordinatorDriverCore.Action] = []
    /// The log writer's other batch buffer (see `.logSync`), empty between syncs.
    var spareSyncBatch: [(record: DecisionRecord, forced: Bool)] = []
    var banks: [Bank]
    /// The clock every bank and worker reads: the world's `nowUs`, moved with it.
    let virtualClock = VirtualClock()
    var coordinatorProcess: CoordinatorProcess
    /// Survives coordinator crashes.
    /// The coordinator's disk: it outlives the coordinator's crashes (see +DecisionLog.swift).
    let logDisk: SimulatedDisk
    /// The decision log the coordinator's process has open on it; nil while it is down.
    var logStore: DecisionLogStore?
    /// COMMITs an fsync acknowledged, and every END ever appended: recovery must find every
    /// such COMMIT whose transaction has no END. (An END is written once every participant has
    /// applied the COMMIT; reclamation may then drop both, once the END reached the disk by
    /// any way: a sync, a segment's roll, or a crash that kept unsynced bytes.)
    var syncedCommits: Set<TransactionID> = []
    var appendedEnds: Set<TransactionID> = []
    /// COMMITs appended and not synced when the coordinator last crashed, and whether a log
    /// fsync had failed: what the next recovery may find lost.
    var lostCandidates: [TransactionID] = []
    var logSyncFailed = false
    let openingTotal: Int64

    // The clients' view, and what the checks need to know of each transaction.
    var workload: [[Branch]] = []
    /// One entry per transaction submitted, in id order. Ids are dense within an epoch (this
    /// world hands them out), so `slot(of:)` finds one by arithmetic, without hashing.
    var ledger: [Submission] = []
    /// The ledger slot of each epoch's first transaction, by epoch.
    var epochStarts: [Int] = [0, 0]
    /// What each branch's operations saw, at `slot * participants + bank`, as carried by the
    /// vote the coordinator counted (a duplicate PREPARE can stage a branch again later; that
    /// vote is not counted): the record the isolation check is built from.
    var seen: [[Observation]?] = []
    /// What each branch saw at its last successful staging, at the same index: for a vote
    /// counted without its observations (a repeat YES from a participant already prepared
    /// carries none).
    var staged: [[Observation]?] = []
    /// The vote being delivered, until the coordinator says whether it counted it.
    var voteInFlight: (tx: TransactionID, index: Int, observed: [Observation])?
    /// A heuristic report echoing the coordinator's question is being delivered.
    var answerInFlight = false
    /// The coordinator's reconciliation journal, the one that ships, on the decision log's disk
    /// (nil while the coordinator is down).
    var reconciliationJournal: ReconciliationJournal?
    /// Every reconciliation record the journal acknowledged (an append returns once synced),
    /// applied in order: what a FORGET must find first, and what the journal must give back
    /// after any crash.
    var reconciliationAcknowledged = ReconciliationQueue()
    /// A record whose append failed: after a crash the journal may hold it or not.
    var reconciliationUnacknowledged: ReconciliationRecord?
    /// The power went during a journal append: the crash that follows is a power loss.
    var journalPowerCut = false
    /// The actions the simulated operator has taken on each heuristic case, in order.
    var operatorActions: [TransactionID: [ReconcileAction]] = [:]

    // What the run did.
    var injected = Tally<Fault>()
    var cases = Tally<FailureCase>()
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
        precondition((2...Self.participantNames.count).contains(options.participants))
        names = Array(Self.participantNames.prefix(options.participants))
        accounts = options.accountsPerParticipant <= Self.accountNames.count ? Array(Self.accountNames.prefix(options.accountsPerParticipant))
            : (0..<options.accountsPerParticipant).map { AccountID(validated: "a\($0)") }
        banks = []
        for (index, name) in names.enumerated() {
            let disk = Self.makeBankDisk(seed: options.seed ^ (0xBA4C_0000 + UInt64(index)), participant: name, accounts: accounts,
                                         openingBalance: options.openingBalance)
            var worker = ParticipantWorkerCore(id: name, configuration: Self.workerConfiguration, clocks: virtualClock.clocks,
                                               logger: Self.quietLogger)
            worker.inquiring = true
            worker.sweepsAllowed = true
            banks.append(Bank(disk: disk, io: .through(disk), worker: worker))
        }
        // Epoch 1, `CoordinatorProcess.epoch`'s first value.
        coordinatorProcess = CoordinatorProcess(core: CoordinatorDriverCore(coordinator: Coordinator(configuration: Self.coordinatorConfiguration(options), epoch: 1)))
        (logDisk, logStore) = Self.makeLogDisk(seed: options.seed ^ 0x5EED_D15C, epoch: coordinatorProcess.epoch)
        do {
            (reconciliationJournal, _, _) = try ReconciliationJournal.open(path: Self.reconciliationPath, fileSystem: logDisk,
                                                                           logger: Self.quietLogger)
        } catch {
            preconditionFailure("a new reconciliation journal on a healthy simulated disk failed: \(error)")
        }
        openingTotal = options.openingBalance * Int64(options.participants * options.accountsPerParticipant)
        trace = Array(repeating: (0, 0, 0, 0), count: max(1, options.traceTail))
        for index in banks.indices {
            banks[index].store = openBank(index)
        }
    }

    /// What the shipped components log, silenced; `SANDHI_SIMULATION_LOG=1` sends it to
    /// standard error, for following one seed.
    static let quietLogger = Logger(label: "sandhi-simulation") { label in
        getenv("SANDHI_SIMULATION_LOG") != nil ? StreamLogHandler.standardError(label: label) as any LogHandler : SwiftLogNoOpLogHandler()
    }

    /// The participants and accounts every world is made of, validated once rather than per
    /// seed, and each account's name in the isolation history (`participant/account`).
    static let participantNames = ["hdfc", "icici", "axis", "sbi", "kotak", "yes", "pnb", "bob"].map { ParticipantID(validated: $0) }
    static let accountNames = (0..<64).map { AccountID(validated: "a\($0)") }
    static let historyKeys = participantNames.map { participant in accountNames.map { "\(participant)/\($0)" } }

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
        // Sized for the workload at once (and for the few transactions the simulated operator
        // adds), rather than grown by doubling from empty in every seed.
        workload.reserveCapacity(options.transactions)
        submissionTimes.reserveCapacity(options.transactions)
        ledger.reserveCapacity(options.transactions + 8)
        seen.reserveCapacity((options.transactions + 8) * names.count)
        staged.reserveCapacity((options.transactions + 8) * names.count)
        for index in 0..<options.transactions {
            workload.append(randomTransfer())
            submissionTimes.append(UInt64(index) * 400 + random.next() % 400)
        }
        faultsStopAtUs = UInt64(options.transactions) * 400 + 20_000
        let limitUs = faultsStopAtUs + options.settleLimitUs
        // Run until nothing is left to happen; then, the faults over and everything settled, the
        // operator settles the heuristic cases left open, and everything settles again.
        while drain(untilUs: limitUs) && settled && reconcileOpenCases() {}
        checkFinalState(timedOut: !queue.isEmpty && !settled)
        closeBanks()
        reconciliationJournal?.close()
        var committed = 0, aborted = 0, linked = 0
        for entry in ledger {
            if entry.linked { linked += 1; continue }
            if let outcome = entry.told { if outcome.isCommitted { committed += 1 } else { aborted += 1 } }
        }
        let keepTrace = !violations.isEmpty || options.traceTailOfPassingRuns
        let tail = !keepTrace ? [] : (0..<trace.count).map { trace[(traceNext + $0) % trace.count] }.filter { $0.code != 0 }.map(describe)
        let queue = coordinatorProcess.core.coordinator.reconciliation
        return SimulationReport(
            seed: options.seed, bug: options.bug, faults: faults, transactions: ledger.count - linked, committed: committed, aborted: aborted,
            steps: step, virtualTimeUs: nowUs, injected: injected.named(\.name), cases: cases.named(\.name), violations: violations, traceHash: traceHash,
            traceTail: tail, heuristicCases: queue.order.count, linkedTransactions: linked, writtenOffPaise: writtenOff(queue),
            transactionsRequested: options.transactions)
    }

    /// Processes events until none is left (true) or the next one is due after `untilUs`.
    mutating func drain(untilUs limitUs: UInt64) -> Bool {
        while true {
            // The clients' submissions come first at any time they share with another event: as
            // if scheduled before everything else, which is when they are drawn.
            if nextSubmission < submissionTimes.count, queue.first.map({ submissionTimes[nextSubmission] <= $0.atUs }) ?? true {
                nowUs = max(nowUs, submissionTimes[nextSubmission])
                step += 1
                nextSubmission += 1
                process(.submit(nextSubmission - 1))
            } else if let event = queue.popMin() {
                if event.atUs > limitUs { queue.insert(event); return false }
                nowUs = max(nowUs, event.atUs)
                step += 1
                var kind = EventKind.restartCoordinator
                swap(&kind, &payloads[event.slot])
                freeSlots.append(event.slot)
                process(kind)
            } else {
                return true
            }
            if nowUs < faultsStopAtUs { nemesis() }
        }
    }

    /// A participant's index (a scan: there are at most eight, and it hashes no string).
    func index(of participant: ParticipantID) -> Int? { names.firstIndex(of: participant) }

    /// The ledger slot of a transaction this world submitted.
    func slot(of tx: TransactionID) -> Int? {
        let epoch = Int(tx.epoch)
        guard epoch < epochStarts.count else { return nil }
        let slot = epochStarts[epoch] + Int(tx.sequence) - 1
        guard slot >= epochStarts[epoch], slot < ledger.count, ledger[slot].id == tx else { return nil }
        return slot
    }

    func isLive(_ timer: TimerID) -> Bool {
        guard let slot = slot(of: timer.transaction) else { return false }
        return (timer.kind == .deadlockVictim ? ledger[slot].liveVictimTimer : ledger[slot].liveTimer) == timer
    }

    mutating func setLive(_ timer: TimerID, _ live: Bool) {
        guard let slot = slot(of: timer.transaction) else { return }
        if timer.kind == .deadlockVictim {
            if live || ledger[slot].liveVictimTimer == timer { ledger[slot].liveVictimTimer = live ? timer : nil }
        } else {
            if live || ledger[slot].liveTimer == timer { ledger[slot].liveTimer = live ? timer : nil }
        }
    }

    func isDurable(_ tx: TransactionID) -> Bool { slot(of: tx).map { ledger[$0].durable } ?? false }

    mutating func setStaged(_ tx: TransactionID, _ index: Int, _ observed: [Observation]) {
        if let slot = slot(of: tx) { staged[slot * names.count + index] = observed }
    }

    /// An account's index (a scan of a handful: cheaper than hashing its name).
    func accountIndex(of account: AccountID) -> Int? { accounts.firstIndex(of: account) }

    /// Nothing left in flight: every queued event is a stale timer or a late message.
    var settled: Bool {
        coordinatorProcess.up && coordinatorProcess.core.coordinator.inFlightCount == 0
            && banks.allSatisfy { bank in
                bank.store.map { $0.inDoubt().isEmpty && $0.unforgottenHeuristics().isEmpty } ?? false
            }
    }

    mutating func schedule(_ kind: consuming EventKind, afterUs: UInt64) {
        nextEventSequence += 1
        let slot: Int
        if let free = freeSlots.popLast() {
            payloads[free] = kind
            slot = free
        } else {
            slot = payloads.count
            payloads.append(kind)
        }
        queue.insert(EventQueue.Key(atUs: nowUs + afterUs, sequence: nextEventSequence, slot: slot))
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

    /// A message's kind in a trace line (the high bits of its participant's index).
    static func traceKind(_ message: ParticipantMessage) -> UInt64 {
        switch message {
        case .prepare: 1
        case .commit: 2
        case .rollback: 3
        case .forget: 4
        }
    }

    static func traceKind(_ reply: ParticipantReply) -> UInt64 {
        switch reply {
        case .vote(_, .yes, _): 1
        case .vote: 2
        case .acknowledged: 3
        case .heuristic: 4
        }
    }

    // MARK: - Events

    mutating func process(_ kind: EventKind) {
        switch kind {
        case .submit(let index):
            guard coordinatorProcess.up else { record(1, 0, 0); injected[.submissionRefused] += 1; return }
            let id = TransactionID(epoch: coordinatorProcess.epoch, sequence: coordinatorProcess.nextSequence)
            coordinatorProcess.nextSequence += 1
            ledger.append(Submission(id: id, branches: workload[index]))
            seen.append(contentsOf: repeatElement(nil, count: names.count))
            staged.append(contentsOf: repeatElement(nil, count: names.count))
            // The client asks to hear at the decision: the earliest word it can be given.
            coordinatorProcess.core.wait(for: id, client: ledger.count - 1, answerWhen: .decided, nowUs: coordinatorProcess.clock(nowUs))
            record(1, id.rawValue, 0)
            feed(.begin(id, branches: workload[index]))
            feed(.requestCommit(id))
        case .toParticipant(let index, let message):
            guard banks[index].up else { return }
            record(2, message.transaction.rawValue, UInt64(index) | Self.traceKind(message) << 8)
            deliverToParticipant(index, message)
        case .toCoordinator(let index, let reply):
            guard coordinatorProcess.up else { return }
            record(3, reply.transaction.rawValue, UInt64(index) | Self.traceKind(reply) << 8)
            switch reply {
            case .vote(let tx, let vote, let observed):
                voteInFlight = (tx, index, observed)
                feed(.voted(tx, participant: names[index], vote: vote, observed: observed))
                voteInFlight = nil
            case .acknowledged(let tx):
                let asking = coordinatorProcess.core.coordinator.heuristicQuestionsOutstanding
                feed(.acknowledged(tx, participant: names[index]))
                // An acknowledgement settles a question only when the report asked about was stale.
                if coordinatorProcess.core.coordinator.heuristicQuestionsOutstanding < asking { cases[.staleHeuristicReportDropped] += 1 }
            case .heuristic(let tx, let committed, let operations, let writers, let tag):
                answerInFlight = tag != nil
                feed(.heuristicReported(tx, participant: names[index], committed: committed, operations: operations, writers: writers,
                                        source: .message(confirming: tag)))
                answerInFlight = false
            }
        case .workerRound(let index, let generation):
            guard banks[index].up, banks[index].roundGeneration == generation, banks[index].roundAtUs != nil else { return }
            workerRound(index)
        case .workerSync(let index, let incarnation):
            guard banks[index].up, banks[index].incarnation == incarnation else { return }
            workerSync(index)
        case .logSync(let incarnation):
            guard coordinatorProcess.up, coordinatorProcess.incarnation == incarnation else { return }
            coordinatorProcess.syncScheduled = false
            // The batch taken whole, an empty buffer with room left in its place: two buffers
            // take turns, where copying out and clearing allocated one per sync.
            var batch: [(record: DecisionRecord, forced: Bool)] = []
            swap(&batch, &spareSyncBatch)
            swap(&batch, &coordinatorProcess.unsynced)
            defer {
                batch.removeAll(keepingCapacity: true)
                spareSyncBatch = batch
            }
            record(5, UInt64(batch.count), 0)
            writeLogBatch(batch, incarnation: incarnation)
        case .decisionDurable(let tx, let position, let incarnation):
            guard coordinatorProcess.up, coordinatorProcess.incarnation == incarnation else { return }
            record(12, tx.rawValue, 0)
            feed(.decisionDurable(tx, position: position))
        case .timer(let timer, let incarnation):
            guard coordinatorProcess.up, coordinatorProcess.incarnation == incarnation else { return }
            if isLive(timer) {
                setLive(timer, false) // fired
            } else {
                guard nowUs < faultsStopAtUs && chance(faults.staleTimerPerMille) else { return }
                injected[.staleTimerFired] += 1 // the coordinator must ignore it (its generation is old)
            }
            record(6, timer.transaction.rawValue, UInt64(timer.kind.rawValue))
            feed(.timerFired(timer))
        case .participantSends(let index, let reply, let incarnation):
            guard banks[index].up, banks[index].incarnation == incarnation else { return }
            banks[index].repliesInFlight -= 1
            sendToCoordinator(from: index, reply)
        case .restartParticipant(let index, let incarnation):
            guard banks[index].incarnation == incarnation else { return }
            restartParticipant(index)
        case .restartCoordinator:
            restartCoordinator()
        }
    }
}
