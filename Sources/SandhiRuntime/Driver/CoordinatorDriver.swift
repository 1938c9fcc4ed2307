import Glibc
import Logging
import SandhiEngine
import SandhiParticipants

/// Why a transfer could not be driven to an outcome.
public enum CoordinatorError: Error, CustomStringConvertible, Equatable {
    /// The coordinator stopped (a decision's durability became unknown, or shutdown). The
    /// transaction's outcome is whatever recovery finds in the log.
    case halted(String)
    /// A branch or a recovered transaction names a participant this coordinator does not drive.
    case unknownParticipant(ParticipantID, transaction: TransactionID?)
    /// The transfer would create or destroy money.
    case unbalanced(String)
    /// An operator command the engine refused, with its reason.
    case refused(String)

    public var description: String {
        switch self {
        case .halted(let reason): return "coordinator halted: \(reason)"
        case .unknownParticipant(let participant, let transaction):
            return "unknown participant \(participant)" + (transaction.map { " named by \($0)" } ?? "")
        case .unbalanced(let why): return "transfer refused: \(why)"
        case .refused(let why): return why
        }
    }
}

/// What a client learns about its transfer.
public struct TransferResult: Sendable, Equatable {
    public var transaction: TransactionID
    public var outcome: Outcome
    /// From submission to the moment the client was answered.
    public var latencyUs: UInt64
    /// Committed only: what each participant's operations saw, in operation order (the values
    /// read; for a debit or credit, the balance before it).
    public var observed: [ParticipantID: [Observation]] = [:]

    public init(transaction: TransactionID, outcome: Outcome, latencyUs: UInt64, observed: [ParticipantID: [Observation]] = [:]) {
        self.transaction = transaction
        self.outcome = outcome
        self.latencyUs = latencyUs
        self.observed = observed
    }
}

/// The real-time driver: runs the engine's `Coordinator` on real threads, real files and real
/// time. What it decides around the engine (which client hears what and when, and when the
/// coordinator halts) is `CoordinatorDriverCore`, which the simulator runs too; this class adds
/// the lock, the threads, the clock and the files. It performs the core's actions: messages go
/// to per-participant workers (each a thread batching its storage commits), decisions go to
/// the group-commit log writer, timers to the timer thread, events to the subscriber,
/// reconciliation records to the journal, answers to the waiting clients. What comes back (votes, acknowledgements,
/// durable decisions) lands in one inbox that a dispatcher thread feeds to the coordinator in
/// batches; clients' transfers and timers enter directly.
///
///     clients ──transfer──▶ ┌─────────────┐ ──send──▶ participant workers ──replies──┐
///     timers ──timerFired─▶ │ Coordinator │ ──append─▶ group-commit log ──durable───┤
///     inbox dispatcher ───▶ └─────────────┘                                          │
///            ▲──────────────────────────────── inbox ◀────────────────────────────────┘
///
/// Every input is handled under one lock, and the effects that order matters for (sends, log
/// appends, timers, events) are performed before the lock is released, so two inputs can never
/// reorder their messages to one participant. None of those effects may block, because the
/// threads they hand work to need this lock to answer: sends never wait (a full participant
/// queue drops the message, which a timer re-sends), and the log writer's queue is sized far
/// above what the coordinator's in-flight limit can put in it.
public final class CoordinatorDriver: Sendable {
    public enum AnswerWhen: Sendable {
        /// As soon as the outcome is decided: COMMIT durable in the log (phase two continues in
        /// the background; recovery finishes it after any crash), or abort chosen.
        case decided
        /// Once every participant has acknowledged the outcome.
        case finished
    }

    public struct Configuration: Sendable {
        public var coordinator = Coordinator.Configuration()
        /// How often the full cycle check runs over the wait-for graph: the safety net behind
        /// the check made whenever a wait begins. 0 turns it off.
        public var fullDeadlockCheckMs: UInt64 = 1_000
        /// Under live faults: how long a participant's branch stays prepared before it asks the
        /// coordinator about it (see `ParticipantWorker`).
        public var participantInquiryMs: UInt64 = 500
        public init() {}
    }

    /// A client waiting for its transfer's outcome.
    typealias Client = CheckedContinuation<TransferResult, Error>
    typealias Core = CoordinatorDriverCore

    struct State {
        /// The coordinator, its waiting clients (by number), and whether it halted.
        var core: Core
        /// What each number the core knows a client by stands for.
        var clients: [Core.Client: Client] = [:]
        var nextClient: Core.Client = 0
        var nextSequence: UInt64 = 1
        var shutDown = false
        /// One input's actions: kept to reuse its storage.
        var actions: [Core.Action] = []

        /// A number for `client`, for the core to know it by.
        mutating func register(_ client: Client) -> Core.Client {
            let number = nextClient
            nextClient &+= 1
            clients[number] = client
            return number
        }

        /// Queues the answer for client `number`, for after the lock.
        mutating func answer(_ number: Core.Client, _ result: Result<TransferResult, CoordinatorError>, into resume: inout AfterUnlock) {
            guard let client = clients.removeValue(forKey: number) else { preconditionFailure("client \(number) answered twice") }
            resume.answers.append((client, result.mapError { $0 }))
        }
        /// Live faults in force (CoordinatorDriver+Faults.swift).
        var faults = LiveFaultState()
    }

    public let epoch: UInt32
    let state: Lock<State>
    let workers: [ParticipantID: ParticipantWorker]
    let log: GroupCommitWriter
    let timers: Lock<TimerService<TimerID>?>
    private let logger: Logger
    let onEvent: (@Sendable (EngineEvent) -> Void)?
    /// Where heuristic cases and operator actions are made durable (nil: kept in memory only,
    /// for tests of the driver alone).
    private let journal: ReconciliationJournal?

    /// - Parameters:
    ///   - epoch: this coordinator process's epoch, already durable in the log.
    ///   - onEvent: called under the driver's lock for every event, in order; it must be quick
    ///     and must not call back into the driver.
    ///   - journal, reconciliation: the durable reconciliation record and what it holds.
    public init(epoch: UInt32, log: GroupCommitWriter, resources: [ParticipantResource],
                configuration: Configuration = Configuration(), logger: Logger,
                journal: ReconciliationJournal? = nil, reconciliation: ReconciliationQueue = ReconciliationQueue(),
                onEvent: (@Sendable (EngineEvent) -> Void)? = nil) {
        self.epoch = epoch
        self.log = log
        self.logger = logger
        self.onEvent = onEvent
        self.journal = journal
        var coordinatorConfiguration = configuration.coordinator
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        coordinatorConfiguration.wallClockOffsetMs = Int64(wall.tv_sec) * 1_000 + Int64(wall.tv_nsec) / 1_000_000
            - Int64(MonotonicClock.nowUs() / 1_000)
        // Every driver recovers first (`recover`, then `completeRecovery`).
        self.state = Lock(State(core: Core(coordinator: Coordinator(configuration: coordinatorConfiguration, reconciliation: reconciliation,
                                                                    recovering: true, epoch: epoch))))
        self.timers = Lock(nil)
        // Each transaction has at most a few messages queued per participant at a time
        // (PREPARE, then one COMMIT or ROLLBACK, plus rare resends), so this never blocks the
        // coordinator's lock.
        let capacity = configuration.coordinator.maxInFlight * 4
        var workers: [ParticipantID: ParticipantWorker] = [:]
        let deliverBox = DeliverBox()
        for resource in resources {
            workers[resource.id] = ParticipantWorker(
                resource: resource, capacity: capacity, inquiryIntervalUs: configuration.participantInquiryMs * 1_000, logger: logger,
                onFailure: { reason in deliverBox.driver?.halt(reason) },
                deliver: { replies in deliverBox.driver?.deliver(replies) })
        }
        self.workers = workers
        self.deliverBox = deliverBox
        deliverBox.driver = self
        let service = TimerService<TimerID> { [weak deliverBox] timer in
            deliverBox?.driver?.input(.timerFired(timer))
        }
        timers.withLock { $0 = service }
        startThread(name: "sandhi-inbox") { [weak deliverBox] in deliverBox?.driver?.dispatchInbox() }
        let intervalMs = configuration.fullDeadlockCheckMs
        if intervalMs > 0 && configuration.coordinator.detectDeadlocks {
            startThread(name: "sandhi-deadlocks") { [weak deliverBox] in
                while true {
                    usleep(UInt32(min(intervalMs * 1_000, 1_000_000)))
                    guard let driver = deliverBox?.driver, driver.haltReason == nil else { return }
                    driver.input(.checkDeadlocks)
                }
            }
        }
    }

    /// What the participants and the log report back, waiting to be fed to the coordinator.
    private enum Inbound {
        case replies([(ParticipantID, ParticipantReply)])
        case input(CoordinatorInput)
    }

    /// The coordinator's inbox. Participant workers and the log writer only push here and go
    /// straight back to their own disk: acting on a batch of votes or decisions (which sends
    /// more messages, appends records, resumes clients) never delays their next fsync.
    /// Unbounded in principle, bounded in fact: every entry answers a message or record the
    /// coordinator sent, and it holds at most `maxInFlight` transactions.
    private let inbox = BlockingQueue<Inbound>(capacity: Int.max)

    /// Feeds the inbox to the coordinator in batches, on its own thread: one lock acquisition
    /// for everything that arrived meanwhile.
    private func dispatchInbox() {
        var batch: [Inbound] = []
        while true {
            inbox.drain(into: &batch)
            if batch.isEmpty { return } // closed and drained
            var resume = AfterUnlock()
            state.withLock { state in
                let now = MonotonicClock.nowUs()
                for inbound in batch {
                    switch inbound {
                    case .replies(let replies):
                        for (participant, reply) in replies {
                            // A partition cuts replies too. With no live fault in force, this
                            // flag is all they cost.
                            if state.faults.engaged && state.faults.losesReply(from: participant) { continue }
                            switch reply {
                            case .vote(let tx, let vote, let observed):
                                handle(.voted(tx, participant: participant, vote: vote, observed: observed), nowUs: now, state: &state, resume: &resume)
                            case .acknowledged(let tx):
                                handle(.acknowledged(tx, participant: participant), nowUs: now, state: &state, resume: &resume)
                            case .heuristic(let tx, let committed, let operations, let writers, let tag):
                                handle(.heuristicReported(tx, participant: participant, committed: committed, operations: operations,
                                                          writers: writers, source: .message(confirming: tag)),
                                       nowUs: now, state: &state, resume: &resume)
                            }
                        }
                    case .input(let input):
                        handle(input, nowUs: now, state: &state, resume: &resume)
                    }
                }
            }
            finish(resume)
        }
    }

    /// Breaks the reference cycle workers -> driver without making `init` two-phase for callers.
    private final class DeliverBox: @unchecked Sendable {
        weak var driver: CoordinatorDriver?
    }
    private let deliverBox: DeliverBox

    public var participants: [ParticipantID] { workers.keys.sorted() }

    // MARK: - Client API

    /// Runs one distributed transaction: every branch prepared, then committed everywhere or
    /// nowhere.
    /// `observe`: return what every operation saw (`TransferResult.observed`); reads' values are
    /// returned either way.
    ///
    /// `reserved`: run it under an id taken earlier from `reserveTransactionID()` (a caller that
    /// must record the id durably before anything can happen under it: an idempotency key).
    public func transfer(_ branches: [Branch], answerWhen: AnswerWhen = .finished, observe: Bool = false,
                         reserved: TransactionID? = nil) async throws -> TransferResult {
        if let imbalance = Coordinator.imbalance(branches) { throw CoordinatorError.unbalanced(imbalance) }
        return try await withCheckedThrowingContinuation { continuation in
            var resume = AfterUnlock()
            state.withLock { state in
                if let reason = state.core.halted ?? (state.shutDown ? "shutting down" : nil) {
                    continuation.resume(throwing: CoordinatorError.halted(reason))
                    return
                }
                for branch in branches where workers[branch.participant] == nil {
                    continuation.resume(throwing: CoordinatorError.unknownParticipant(branch.participant, transaction: nil))
                    return
                }
                let id: TransactionID
                if let reserved {
                    precondition(reserved.epoch == epoch && reserved.sequence < state.nextSequence,
                                 "a reserved id comes from this driver's reserveTransactionID()")
                    id = reserved
                } else {
                    id = TransactionID(epoch: epoch, sequence: state.nextSequence)
                    state.nextSequence += 1
                }
                let now = MonotonicClock.nowUs()
                state.core.wait(for: id, client: state.register(continuation), answerWhen: answerWhen, nowUs: now)
                handle(.begin(id, branches: branches, observe: observe), nowUs: now, state: &state, resume: &resume)
                handle(.requestCommit(id), nowUs: now, state: &state, resume: &resume)
            }
            finish(resume)
        }
    }

    /// Takes the next transaction id without beginning anything under it, for one later
    /// `transfer(_:reserved:)`. An id reserved and never used is a gap in the sequence: nothing
    /// was logged or prepared under it, so presumed abort answers for it like any other.
    public func reserveTransactionID() -> TransactionID {
        state.withLock { state in
            defer { state.nextSequence += 1 }
            return TransactionID(epoch: epoch, sequence: state.nextSequence)
        }
    }

    /// Whether `tx` was ever handed out by this driver, or belongs to an earlier epoch.
    public func hasIssued(_ tx: TransactionID) -> Bool {
        tx.epoch < epoch || (tx.epoch == epoch && state.withLock { tx.sequence < $0.nextSequence })
    }

    /// Shutting down: no new transaction is taken (`shutdown` has begun), though those in
    /// flight may still be draining.
    public var isShuttingDown: Bool { state.withLock { $0.shutDown } }

    /// Drives recovery as `plan` decided it: every input fed in one step, under the driver's
    /// lock, so that no reply can slip between two of them (a YES reaching a transaction whose
    /// COMMIT is in the log but not yet fed would be answered ROLLBACK). Then waits, up to
    /// `waitMs`, for the transactions it drives to be acknowledged everywhere, and returns those
    /// that are not: they stay in flight, holding their locks, and are resent until their
    /// participants answer, so one participant that cannot take its decision (gone, or failing
    /// that one message every time) never keeps the coordinator from going live.
    /// Only then may participants decide overdue branches alone (heuristic sweeps): the
    /// decisions recovery sends are queued to them first.
    public func recover(_ plan: RecoveryPlan, waitMs: UInt64 = 30_000) async throws -> [TransactionID] {
        // Refuse rather than resolve part of a transaction: a participant missing from the
        // configuration would be left prepared, holding its locks, with nobody to tell it.
        for decision in plan.decisions {
            if let missing = decision.participants.first(where: { workers[$0] == nil }) {
                throw CoordinatorError.unknownParticipant(missing, transaction: decision.transaction)
            }
        }
        var resume = AfterUnlock()
        try state.withLock { state in
            if let reason = state.core.halted { throw CoordinatorError.halted(reason) }
            let now = MonotonicClock.nowUs()
            for input in plan.inputs { handle(input, nowUs: now, state: &state, resume: &resume) }
        }
        finish(resume)
        for worker in workers.values { worker.allowSweeps() }
        var pending = plan.decisions.map(\.transaction)
        let deadlineUs = MonotonicClock.nowUs() + waitMs * 1_000
        while true {
            let (halted, unfinished) = state.withLock { state in
                (state.core.halted, pending.filter { state.core.coordinator.transactions[$0] != nil })
            }
            if let halted { throw CoordinatorError.halted(halted) }
            pending = unfinished
            if pending.isEmpty || MonotonicClock.nowUs() >= deadlineUs { return pending }
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    /// Stops the workers, the timers and the log writer. First lets transactions already
    /// decided finish their phase two (up to `drainTimeoutMs`), so that a clean stop leaves
    /// nothing for recovery; whatever is still in flight after that is answered with `halted`
    /// and settled by recovery on the next start. Idempotent. Call it from a thread the
    /// drain does not depend on (not a participant worker, the log writer or the inbox).
    public func shutdown(drainTimeoutMs: UInt64 = 5_000) {
        let first = state.withLock { state in
            let first = !state.shutDown
            state.shutDown = true
            return first
        }
        guard first else { return }
        let deadlineUs = MonotonicClock.nowUs() + drainTimeoutMs * 1_000
        while inFlightCount > 0 && haltReason == nil && MonotonicClock.nowUs() < deadlineUs {
            usleep(1_000)
        }
        halt("shut down", failure: false)
        timers.withLock { $0?.stop(); $0 = nil }
        stopDelayTimers()
        for worker in workers.values { worker.stop() }
        log.shutdown()
        inbox.close()
    }

    /// The operator aborts `tx` (a deadlock member of their choice, or anything not yet
    /// decided); the deadlock history records it as an override. Returns why it could not be
    /// done, or nil.
    @discardableResult
    public func forceAbort(_ tx: TransactionID, note: String) -> String? {
        var refusal: String?
        var resume = AfterUnlock()
        state.withLock { state in
            guard let transaction = state.core.coordinator.transactions[tx] else { refusal = "\(tx) is not in flight"; return }
            guard transaction.state == .active || transaction.state == .preparing else {
                refusal = "\(tx) is already \(transaction.state): its outcome is decided"
                return
            }
            handle(.forceAbort(tx, note: note), nowUs: MonotonicClock.nowUs(), state: &state, resume: &resume)
        }
        finish(resume)
        return refusal
    }

    /// The last deadlocks (bounded), newest last, and how many there have been in all.
    public var deadlocks: (recent: [Deadlock], total: Int) {
        state.withLock { (Array($0.core.coordinator.deadlockHistory.entries), $0.core.coordinator.deadlockHistory.totalCount) }
    }

    /// Live fault: the decision log's next fsync fails. The coordinator then halts (a decision
    /// whose durability is unknown must not be acted on) and recovery settles it on restart.
    public func failNextLogSync() {
        log.failNextSync()
    }

    /// Stops accepting inputs and fails every waiting client: the coordinator cannot go on
    /// safely (or is shutting down). Recovery on the next start settles what was in flight.
    func halt(_ reason: String, failure: Bool = true) {
        var resume = AfterUnlock()
        state.withLock { state in
            if failure && state.core.halted == nil { logger.critical("coordinator halted", metadata: ["reason": "\(reason)"]) }
            halt(reason, state: &state, resume: &resume)
        }
        finish(resume)
    }

    /// `halt`, under the driver's lock.
    func halt(_ reason: String, state: inout State, resume: inout AfterUnlock) {
        var actions: [Core.Action] = []
        state.core.halt(reason, into: &actions)
        for case .answer(let number, let result) in actions { state.answer(number, result, into: &resume) }
    }

    public var inFlightCount: Int { state.withLock { $0.core.coordinator.inFlightCount } }

    public var haltReason: String? { state.withLock { $0.core.halted } }

    /// Batches, messages and fsyncs of each participant (messages per fsync is the group-commit factor).
    public var participantStats: [(participant: ParticipantID, batches: Int, messages: Int, syncs: Int)] {
        workers.values.sorted { $0.id < $1.id }.map { ($0.id, $0.batches, $0.messages, $0.syncs) }
    }

    /// The decision log's fsyncs and records so far (records per fsync is its group-commit factor).
    public var logStats: (syncs: Int, records: Int) { log.stats }

    // MARK: - Reconciliation

    /// Every heuristic case, open or settled, in the order found.
    public var reconciliation: ReconciliationQueue { state.withLock { $0.core.coordinator.reconciliation } }

    /// An operator settles heuristic case `tx`. For retry-commit and compensate this runs the
    /// linked transaction to its end; returns the case afterwards (its last entries say how the
    /// action went). Throws `refused` with the engine's reason when the action cannot be taken.
    public func resolveHeuristic(_ tx: TransactionID, action: ReconcileAction, operatorName: String, note: String) async throws -> HeuristicCase {
        _ = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<TransferResult, Error>) in
            var resume = AfterUnlock()
            state.withLock { state in
                if let reason = state.core.halted ?? (state.shutDown ? "shutting down" : nil) {
                    continuation.resume(throwing: CoordinatorError.halted(reason))
                    return
                }
                if let refusal = state.core.coordinator.refusal(of: action, on: tx, operatorName: operatorName, note: note) {
                    continuation.resume(throwing: CoordinatorError.refused(refusal))
                    return
                }
                let linked = TransactionID(epoch: epoch, sequence: state.nextSequence)
                state.nextSequence += 1
                let now = MonotonicClock.nowUs()
                // Answered when the linked transaction finishes, like a client's transfer.
                state.core.wait(for: linked, client: state.register(continuation), answerWhen: .finished, nowUs: now)
                handle(.resolveHeuristic(tx, action: action, operatorName: operatorName, note: note, linked: linked),
                       nowUs: now, state: &state, resume: &resume)
                let running: Bool
                if case .acting(_, let runningAs) = state.core.coordinator.reconciliation[tx]?.status { running = runningAs == linked } else { running = false }
                if !running, let number = state.core.stopWaiting(for: linked), let client = state.clients.removeValue(forKey: number) {
                    // Nothing to run (mark-resolved): done already.
                    resume.answers.append((client, .success(TransferResult(transaction: linked, outcome: .committed, latencyUs: 0, observed: [:]))))
                }
            }
            finish(resume)
        }
        guard let settled = reconciliation[tx] else { throw CoordinatorError.refused("\(tx) is not a heuristic case") }
        return settled
    }

    // MARK: - Inputs from workers, the log and timers

    func deliver(_ replies: [(ParticipantID, ParticipantReply)]) {
        inbox.push(.replies(replies))
    }

    func input(_ input: CoordinatorInput) {
        var resume = AfterUnlock()
        state.withLock { state in
            handle(input, nowUs: MonotonicClock.nowUs(), state: &state, resume: &resume)
        }
        finish(resume)
    }

    // MARK: - Effects

    private func handle(_ input: CoordinatorInput, nowUs: UInt64, state: inout State,
                        resume: inout AfterUnlock) {
        // Swapped out, not copied: a second reference would make the first append copy it.
        var actions: [Core.Action] = []
        swap(&actions, &state.actions)
        actions.removeAll(keepingCapacity: true)
        state.core.handle(input, nowUs: nowUs, into: &actions)
        var index = 0
        while index < actions.count {
            switch actions[index] {
            case .send(let participant, let message):
                guard let worker = workers[participant] else {
                    preconditionFailure("coordinator addressed unknown participant \(participant)")
                }
                // Live faults route the message (lost, held or passed on); with none in force
                // this flag is all they cost.
                if state.faults.engaged {
                    sendThroughFaults(message, to: worker, nowUs: nowUs, faults: &state.faults, resume: &resume)
                } else {
                    resume.send(message, via: worker)
                }
            case .appendDecision(let record, let forced):
                let tx = record.transaction
                let inbox = self.inbox
                let writerAsleep = log.appendWithoutWaking(record, forced: forced, completion: { result in
                    guard forced, let tx else { return }
                    switch result {
                    case .success(let position): inbox.push(.input(.decisionDurable(tx, position: position)))
                    case .failure(let error): inbox.push(.input(.decisionFailed(tx, reason: "\(error)")))
                    }
                })
                if writerAsleep { resume.wakeLog = true }
            case .setTimer(let timer, let afterUs):
                timers.withLock { $0?.schedule(timer, afterUs: afterUs) }
            case .cancelTimer(let timer):
                timers.withLock { $0?.cancel(timer) }
            case .emit(let event):
                onEvent?(event)
            case .recordReconciliation(let record):
                do {
                    try journal?.append(record)
                } catch {
                    // Whatever follows (a FORGET) may depend on this record: stop here. The
                    // participant keeps its heuristic decision and reports it after a restart.
                    let instead = state.core.recordFailed("reconciliation record for \(record.transaction) failed to reach disk (\(error))",
                                                          unperformed: Array(actions[(index + 1)...]))
                    actions.replaceSubrange((index + 1)..., with: instead)
                }
            case .answer(let number, let result):
                state.answer(number, result, into: &resume)
            case .halt(let reason):
                logger.critical("coordinator halted", metadata: ["reason": "\(reason)"])
            }
            index += 1
        }
        swap(&actions, &state.actions)
    }

    /// What an input leaves to do once the driver's lock is released: clients to answer, and
    /// participant workers to wake. Waking a sleeping worker is a system call; under the lock
    /// it would stall every other input for its duration. The messages themselves are already
    /// queued, in order, under the lock.
    struct AfterUnlock {
        var answers: [(Client, Result<TransferResult, Error>)] = []
        var wake: [ParticipantWorker] = []
        var wakeLog = false

        /// Queues `message` (in order, under the driver's lock) and notes the worker to wake.
        mutating func send(_ message: ParticipantMessage, via worker: ParticipantWorker) {
            if worker.enqueue(message), !wake.contains(where: { $0 === worker }) { wake.append(worker) }
        }
    }

    func finish(_ after: AfterUnlock) {
        for worker in after.wake { worker.wake() }
        if after.wakeLog { log.wakeWriter() }
        for (client, result) in after.answers { client.resume(with: result) }
    }
}
