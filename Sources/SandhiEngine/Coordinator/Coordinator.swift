// The coordinator side of two-phase commit with presumed abort, as a pure state machine.
//
// One `CoordinatorTransaction` per transaction in flight; `Coordinator` routes inputs to them,
// enforces the in-flight limit and forgets a transaction once every participant has
// acknowledged. No I/O happens here: every input returns effects (send, append to the log,
// set a timer, emit an event) that a driver performs, the real-time driver with files and
// threads, the simulator with virtual time and a seeded fault model.
//
//                      begin
//                        |
//                        v                 requestAbort
//                   +---------+------------------------------------+
//                   | active  |                                    |
//                   +---------+                                    |
//                        | requestCommit: PREPARE to every branch  |
//                        v                                         v
//                   +-----------+  NO vote / deadline / abort  +----------+  all acks   +---------+
//                   | preparing |----------------------------->| aborting |------------>| aborted |
//                   +-----------+                              +----------+             +---------+
//      all READ-ONLY /   | every vote YES or READ-ONLY,            ^  recoverInDoubt
//   (no log, no phase 2) | at least one YES: force COMMIT record   |
//          v             v
//   +-----------+   +-----------+  decisionDurable  +------------+  all acks  +-----------+
//   | committed |<--| prepared  |------------------>| committing |----------->| committed |
//   +-----------+   +-----------+                   +------------+            +-----------+
//                                                        ^  recoverCommitted
//
//   committing / aborting --every branch answered, one decided alone the other way--> heuristic
//   (a mixed outcome: recorded in the reconciliation queue for an operator, then forgotten here)
//
// Transitions and their effects:
//   active     --requestCommit-->    preparing   send PREPARE x n, set prepareDeadline timer
//   active     --requestAbort-->     aborted     (nothing was sent; nothing to undo)
//   preparing  --voted NO-->         aborting    ROLLBACK to every branch that may hold state
//   preparing  --deadline-->         aborting    same; the silent participants are named
//   preparing  --requestAbort-->     aborting    same
//   preparing  --last vote, all RO-> committed   nothing to log, nothing to send
//   preparing  --last vote-->        prepared    append COMMIT record (forced)
//   prepared   --decisionDurable-->  committing  COMMIT to every YES voter, set resend timer
//   prepared   --decisionFailed-->   prepared    fatal: the driver must stop; recovery decides
//   committing --acknowledged(last)->committed   append END (not forced), forget
//   aborting   --acknowledged(last)->aborted     forget (presumed abort: nothing to log)
//   committing/aborting --resend-->  same        resend to the silent, back off exponentially
//   committing/aborting --HEURISTIC, agrees-->  same     FORGET to it; counts as acknowledged
//   committing/aborting --last answer, mixed--> heuristic record the case (durable before
//                                               anything else), FORGET to the deciders, END
//   (forgotten)  --HEURISTIC commit-->  (none)   presumed abort, but the report may be a stale copy:
//                                                ROLLBACK carrying a question (HeuristicQuestions.swift)
//   (forgotten)  --HEURISTIC commit echoing the question-->  (none)  the outcome is mixed; record it
//   (forgotten)  --ACK of the question-->  (none)  it held nothing: a stale copy; drop the question
//   open case    --resolveHeuristic--> a new linked transaction (retry-commit, compensate),
//                                      or only a record (mark-resolved); see ReconciliationQueue
//
// Safety rules this file exists to keep:
//   * COMMIT is never sent before the COMMIT record is durable.
//   * Nothing is ever logged for an abort; a missing record means abort.
//   * Once decided, the outcome never changes; late and duplicate messages only re-send the
//     decided outcome (a YES vote for a forgotten transaction is answered with ROLLBACK).

/// Known bugs a test can plant in the coordinator, to prove the checkers fail when they must.
public enum PlantedBug: String, Hashable, Sendable, CaseIterable {
    /// Take no locks anywhere: the coordinator asks for none, and participants neither hold
    /// locks for prepared branches nor refuse a prepare that touches one, so transactions
    /// interleave freely and two can prepare against the same balance.
    case noLocks = "no-locks"
    /// Send COMMIT as soon as the decision is made, without waiting for the COMMIT record to be
    /// durable (and append it unforced): a coordinator crash then loses a decision that some
    /// participants already acted on.
    case commitBeforeDurable = "commit-before-durable"
    /// Never re-send an unacknowledged COMMIT or ROLLBACK: a lost one leaves its participant
    /// prepared, holding locks, for good.
    case skipResend = "skip-resend"
    /// Take every heuristic report as agreeing with the decision: a mixed outcome is
    /// acknowledged, forgotten at the participant, and never reaches the reconciliation queue.
    case ignoreHeuristics = "ignore-heuristics"
}

/// The protocol state of one transaction at the coordinator.
public enum TransactionState: String, Hashable, Sendable, Codable, CaseIterable {
    case active, preparing, prepared, committing, committed, aborting, aborted
    /// A participant decided on its own against the decision: the outcome is mixed, and the
    /// case waits in the reconciliation queue for an operator.
    case heuristic

    public var isFinal: Bool { self == .committed || self == .aborted || self == .heuristic }
}

public struct Coordinator: Sendable {
    public struct Configuration: Sendable {
        /// How long phase one may take before the transaction is aborted.
        public var prepareTimeoutMs: UInt64 = 5_000
        /// First delay before re-sending an unacknowledged COMMIT/ROLLBACK; doubles per attempt.
        public var resendInitialMs: UInt64 = 50
        public var resendMaxMs: UInt64 = 5_000
        /// Transactions tracked at once; `begin` beyond this is rejected (a bound on every queue).
        public var maxInFlight: Int = 65_536
        /// Seed of the jitter added to resend delays.
        public var seed: UInt64 = 0x5A4D_4849
        /// How long one lock request may wait before its transaction aborts.
        public var lockTimeoutMs: UInt64 = 2_000
        /// Check for a cycle whenever a wait begins. Off, only lock timeouts break deadlocks.
        public var detectDeadlocks = true
        public var victimPolicy: VictimPolicy = .leastWork
        /// How long the operator has to pick a different victim before the engine aborts its
        /// own choice; 0 aborts at once.
        public var deadlockGraceMs: UInt64 = 0
        /// Deadlocks remembered for the console and `sandhi check --deadlocks`.
        public var deadlockHistoryLimit = 64
        /// Waiters one resource may queue (a bound on every queue).
        public var maxWaitersPerResource = 65_536
        /// Tests only: a known bug to plant, to show that a checker catches it.
        public var plantedBug: PlantedBug?
        /// Wall-clock milliseconds since 1970 at the driver's time 0, so that the audit records
        /// of heuristic cases carry dates (the engine itself reads no clock).
        public var wallClockOffsetMs: Int64 = 0
        /// Committed transactions remembered after they are forgotten (`recentCommits`).
        public var recentCommitsRemembered = 65_536
        /// Questions about heuristic reports of unknown transactions outstanding at once
        /// (`HeuristicQuestions`: when full, the oldest is dropped and asked again if need be).
        public var maxHeuristicQuestions = 65_536

        public init() {}
    }

    /// A participant's progress within one transaction.
    public enum BranchStatus: Hashable, Sendable {
        /// PREPARE not sent yet (transaction still active).
        case idle
        case awaitingVote(sentAtUs: UInt64)
        case voted(Vote)
        /// COMMIT or ROLLBACK sent, no acknowledgement yet.
        case awaitingAck(sentAtUs: UInt64)
        case acknowledged
        /// The participant committed or rolled back on its own (a heuristic decision).
        case decidedAlone(committed: Bool)
    }

    public struct BranchProgress: Hashable, Sendable {
        public var branch: Branch
        public var status: BranchStatus
        /// What the participant's operations saw, from its YES or READ-ONLY vote.
        public var observed: [Observation] = []
    }

    public struct CoordinatorTransaction: Hashable, Sendable {
        public let id: TransactionID
        public internal(set) var state: TransactionState
        public internal(set) var branches: [BranchProgress]
        public let beganAtUs: UInt64
        public internal(set) var decisionPosition: LogPosition?
        /// Rebuilt by recovery from the log or the participants: its COMMIT record (if any)
        /// was durable before this process started, at a position nobody reported.
        public internal(set) var recovered = false
        /// Why it aborts, from the moment that was decided (one boxed field: most transactions
        /// commit, and the table of those in flight is walked often).
        public internal(set) var abortOutcome: Outcome?
        public var abortReason: String? {
            if case .aborted(let reason, _, _)? = abortOutcome { return reason }
            return nil
        }
        public var abortCause: AbortCause { abortOutcome?.abortCause ?? .requested }
        /// The NO vote that aborted it, if one did (`abortCause` says whether it is transient).
        public var abortRefusal: Refusal? { abortOutcome?.refusal }
        var timer: TimerID?
        var resendAttempt: UInt32 = 0
        var decisionRequestedAtUs: UInt64 = 0
        /// The locks it needs, in program order; the first `locksGranted` are held.
        public internal(set) var lockPlan: [LockRequest] = []
        public internal(set) var locksGranted = 0
        /// The client asked to commit while locks were still outstanding: prepare once granted.
        var commitRequested = false
        /// Set while this transaction is a chosen deadlock victim inside the grace period.
        var victimTimer: TimerID?
        /// Report what the operations observed to the client (reads, or asked for).
        var observe = false

        /// Active and queued for a lock.
        public var isWaitingForLock: Bool { state == .active && locksGranted < lockPlan.count }
        public var operationCount: Int { branches.reduce(0) { $0 + $1.branch.operations.count } }
        public var participantsPrepared: Int { branches.reduce(0) { $0 + ($1.status == .voted(.yes) ? 1 : 0) } }

        func index(of participant: ParticipantID) -> Int? {
            branches.firstIndex { $0.branch.participant == participant }
        }
    }

    public let configuration: Configuration
    public private(set) var transactions: [TransactionID: CoordinatorTransaction] = [:]
    /// Strict two-phase locking across every participant, with the global wait-for graph.
    public private(set) var locks: LockManager
    public private(set) var deadlockHistory: DeadlockHistory
    /// Deadlocks found and not yet broken (a victim inside its grace period, or manual policy).
    public private(set) var unresolvedDeadlocks: [Deadlock] = []
    /// Every heuristic case found, open or settled (rebuilt from its records at start).
    public internal(set) var reconciliation: ReconciliationQueue
    /// Until `recoveryComplete`, a transaction it does not know may yet be recovered from the
    /// log: nothing is presumed about it.
    public internal(set) var recovering: Bool
    /// The last committed transactions, after they finished (bounded, oldest dropped first). A
    /// heuristic report can reach the coordinator after the transaction it is about finished:
    /// a duplicate, or one delayed by the network past the FORGET that settled it. Presumed
    /// abort must not judge those: a transaction here committed. (Bounded, and empty at start
    /// but for what the log still holds: past it, a stale report meets a question instead.)
    var recentCommits = RecentSet()
    /// This incarnation's epoch: what makes its questions' tags differ from every other
    /// incarnation's (0 only for a coordinator that never restarts, as in tests).
    public let epoch: UInt32
    /// Heuristic commits reported for transactions not known here, asked about and not yet
    /// answered (HeuristicQuestions.swift).
    var questions = HeuristicQuestions()
    var nextQuestion: UInt64 = 1
    /// Grants and cycles produced while handling one input, settled before it returns.
    private var lockChanges = LockManager.Changes()
    /// Spare buffers for `settleLocks` to swap with `lockChanges` (see there).
    private var settlingChanges = LockManager.Changes()
    private var nextDeadlockID: UInt64 = 1
    private var random: SplitMix64
    private var nextTimerGeneration: UInt32 = 1

    /// - Parameters:
    ///   - recovering: the driver will feed recovery (`recover...`) and then
    ///     `recoveryComplete`; until then nothing is presumed about an unknown transaction.
    ///   - epoch: this incarnation's epoch, durable in the log before the coordinator hears
    ///     anything (unique to it: the tags of its questions carry it).
    public init(configuration: Configuration = Configuration(), reconciliation: ReconciliationQueue = ReconciliationQueue(),
                recovering: Bool = false, epoch: UInt32 = 0) {
        precondition(configuration.prepareTimeoutMs > 0, "prepare timeout must be positive")
        precondition(configuration.resendInitialMs > 0 && configuration.resendInitialMs <= configuration.resendMaxMs)
        precondition(configuration.maxInFlight > 0)
        precondition(configuration.lockTimeoutMs > 0, "lock timeout must be positive")
        precondition(configuration.maxHeuristicQuestions > 0)
        precondition(epoch <= TransactionID.maxEpoch, "epoch \(epoch) exceeds 24 bits")
        self.configuration = configuration
        self.epoch = epoch
        var lockConfiguration = LockManager.Configuration()
        lockConfiguration.detectDeadlocks = configuration.detectDeadlocks
        lockConfiguration.maxWaitersPerResource = configuration.maxWaitersPerResource
        self.locks = LockManager(configuration: lockConfiguration)
        self.deadlockHistory = DeadlockHistory(limit: configuration.deadlockHistoryLimit)
        self.random = SplitMix64(seed: configuration.seed)
        self.reconciliation = reconciliation
        self.recovering = recovering
    }

    public var inFlightCount: Int { transactions.count }

    /// Questions about heuristic reports of unknown transactions not yet answered.
    public var heuristicQuestionsOutstanding: Int { questions.count }

    public func state(of transaction: TransactionID) -> TransactionState? { transactions[transaction]?.state }

    /// Feeds one input; returns the effects the driver must perform, in order.
    public mutating func handle(_ input: CoordinatorInput, nowUs: UInt64) -> [CoordinatorEffect] {
        var effects: [CoordinatorEffect] = []
        handle(input, nowUs: nowUs, into: &effects)
        return effects
    }

    public mutating func handle(_ input: CoordinatorInput, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        switch input {
        case .begin(let id, let branches, let observe):
            begin(id, branches: branches, observe: observe, nowUs: nowUs, into: &effects)
        case .requestCommit(let id):
            requestCommit(id, nowUs: nowUs, into: &effects)
        case .requestAbort(let id, let reason):
            guard var tx = take(id) else { return }
            defer { store(tx) }
            switch tx.state {
            case .active, .preparing:
                abort(&tx, reason: reason, cause: .requested, nowUs: nowUs, into: &effects)
            case .prepared, .committing, .committed, .aborting, .aborted, .heuristic:
                break // decided already: an abort request cannot change the outcome
            }
        case .forceAbort(let id, let note):
            forceAbort(id, note: note, nowUs: nowUs, into: &effects)
        case .checkDeadlocks:
            for cycle in locks.graph.findCycles() {
                deadlockFound(cycle, byFullCheck: true, nowUs: nowUs, into: &effects)
            }
        case .voted(let id, let participant, let vote, let observed):
            voted(id, participant: participant, vote: vote, observed: observed, nowUs: nowUs, into: &effects)
        case .decisionDurable(let id, let position):
            decisionDurable(id, position: position, nowUs: nowUs, into: &effects)
        case .decisionFailed(let id, let reason):
            guard let tx = transactions[id] else { return }
            assert(tx.state == .prepared, "a decision can only fail while it is being logged")
            let message = "COMMIT record for \(id) failed to reach disk (\(reason)); its durability is unknown"
            effects.append(.emit(EngineEvent(atUs: nowUs, .fatal(reason: message))))
            effects.append(.fatal(message))
        case .acknowledged(let id, let participant):
            acknowledged(id, participant: participant, nowUs: nowUs, into: &effects)
        case .timerFired(let timer):
            timerFired(timer, nowUs: nowUs, into: &effects)
        case .recoverCommitted(let id, let participants, let locks):
            recover(id, participants: participants, locks: locks, commit: true, nowUs: nowUs, into: &effects)
        case .recoverInDoubt(let id, let participants, let locks):
            recover(id, participants: participants, locks: locks, commit: false, nowUs: nowUs, into: &effects)
        case .recoveryComplete:
            recoveryComplete(nowUs: nowUs, into: &effects)
        case .rememberCommitted(let ids):
            for id in ids { recentCommits.insert(id, limit: configuration.recentCommitsRemembered) }
        case .heuristicReported(let id, let participant, let committed, let operations, let writers, let source):
            heuristicReported(id, participant: participant, committed: committed, operations: operations, writers: writers,
                              source: source, nowUs: nowUs, into: &effects)
        case .resolveHeuristic(let id, let action, let operatorName, let note, let linked):
            resolveHeuristic(id, action: action, operatorName: operatorName, note: note, linked: linked, nowUs: nowUs, into: &effects)
        }
        settleLocks(nowUs: nowUs, into: &effects)
    }

    // MARK: - Phase one

    mutating func begin(_ id: TransactionID, branches: [Branch], observe: Bool, nowUs: UInt64,
                                into effects: inout [CoordinatorEffect]) {
        precondition(transactions[id] == nil, "transaction \(id) began twice")
        if let problem = Self.validate(branches) {
            reject(id, reason: problem, nowUs: nowUs, into: &effects)
            return
        }
        guard transactions.count < configuration.maxInFlight else {
            reject(id, reason: "coordinator at capacity (\(configuration.maxInFlight) transactions in flight)", nowUs: nowUs, into: &effects)
            return
        }
        var tx = CoordinatorTransaction(
            id: id, state: .active,
            branches: branches.map { BranchProgress(branch: $0, status: .idle) },
            beganAtUs: nowUs)
        tx.lockPlan = configuration.plantedBug == .noLocks ? [] : LockRequest.plan(for: branches)
        // Reads are asked for their values; writes' observations only when the client wants them.
        tx.observe = observe || branches.contains { branch in branch.operations.contains { if case .read = $0 { true } else { false } } }
        effects.append(.emit(EngineEvent(atUs: nowUs, .began(id, participants: branches.map { $0.participant }, amount: Branch.amountMoved(by: branches)))))
        acquireLocks(&tx, nowUs: nowUs, into: &effects)
        store(tx)
    }

    /// Why a set of branches cannot form a transaction, or nil.
    public static func validate(_ branches: [Branch]) -> String? {
        if branches.isEmpty { return "a transaction needs at least one participant" }
        if branches.count > DecisionRecord.maxParticipants { return "more than \(DecisionRecord.maxParticipants) participants" }
        // A transfer names a handful of participants: a scan beats building a set, until it doesn't.
        var seen: Set<ParticipantID>? = branches.count > 16 ? [] : nil
        for (index, branch) in branches.enumerated() {
            let repeated = seen != nil ? !seen!.insert(branch.participant).inserted
                                       : branches[..<index].contains { $0.participant == branch.participant }
            if repeated { return "participant \(branch.participant) appears twice" }
            if branch.operations.isEmpty { return "participant \(branch.participant) has no operations" }
            if branch.operations.count > OperationCodec.maxOperations { return "participant \(branch.participant) has too many operations" }
            for operation in branch.operations {
                switch operation {
                case .debit(let account, let amount), .credit(let account, let amount):
                    guard amount.value > 0, amount <= Paise.maxAmount else {
                        return "amount for \(branch.participant)/\(account) must be between 1 paisa and \(Paise.maxAmount)"
                    }
                case .fileReport(let report):
                    guard report.amount.value > 0, report.amount <= Paise.maxAmount else { return "report amount out of range" }
                case .read:
                    break
                }
            }
        }
        return nil
    }

    /// Why these branches would create or destroy money, or nil (conservation, invariant 2:
    /// debits equal credits, TDS being a credit to the tax ledger). The state machine itself
    /// does not insist on it; drivers check it where clients hand in transfers.
    public static func imbalance(_ branches: [Branch]) -> String? {
        var debits: Int64 = 0, credits: Int64 = 0
        for branch in branches {
            for operation in branch.operations {
                switch operation {
                case .debit(_, let amount):
                    let (sum, overflow) = debits.addingReportingOverflow(amount.value)
                    if overflow { return "the debits add up beyond \(Paise(Int64.max))" }
                    debits = sum
                case .credit(_, let amount):
                    let (sum, overflow) = credits.addingReportingOverflow(amount.value)
                    if overflow { return "the credits add up beyond \(Paise(Int64.max))" }
                    credits = sum
                case .read, .fileReport:
                    break
                }
            }
        }
        return debits == credits ? nil : "debits \(Paise(debits)) and credits \(Paise(credits)) do not balance"
    }

    private mutating func reject(_ id: TransactionID, reason: String, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        effects.append(.emit(EngineEvent(atUs: nowUs, .rejected(id, reason: reason))))
        effects.append(.decided(id, .aborted(reason: reason, cause: .rejected)))
        linkedEnded(id, committed: false, reason: "rejected: \(reason)", nowUs: nowUs, into: &effects)
        effects.append(.finished(id, .aborted(reason: reason, cause: .rejected)))
    }

    mutating func requestCommit(_ id: TransactionID, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        guard var tx = take(id) else { return }
        defer { store(tx) }
        guard tx.state == .active else { return }
        if tx.isWaitingForLock {
            tx.commitRequested = true // prepared once the last lock is granted
            return
        }
        prepare(&tx, nowUs: nowUs, into: &effects)
    }

    /// Phase one starts: every lock is held.
    private mutating func prepare(_ tx: inout CoordinatorTransaction, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        assert(tx.state == .active && tx.locksGranted == tx.lockPlan.count)
        let id = tx.id
        transition(&tx, to: .preparing, nowUs: nowUs, into: &effects)
        let writers = Self.participants(of: tx.branches) { !$0.branch.isReadOnly }
        for index in tx.branches.indices {
            let branch = tx.branches[index].branch
            tx.branches[index].status = .awaitingVote(sentAtUs: nowUs)
            effects.append(.send(branch.participant, .prepare(id, operations: branch.operations, writers: writers)))
            effects.append(.emit(EngineEvent(atUs: nowUs, .prepareSent(id, participant: branch.participant))))
        }
        setTimer(&tx, kind: .prepareDeadline, afterUs: configuration.prepareTimeoutMs * 1_000, into: &effects)
    }

    private mutating func voted(_ id: TransactionID, participant: ParticipantID, vote: Vote, observed: [Observation], nowUs: UInt64,
                                into effects: inout [CoordinatorEffect]) {
        func unknown() {
            // Forgotten (finished) or never known. Presumed abort: whoever is prepared for a
            // transaction we hold no decision for must roll back. A participant that already
            // committed a forgotten transaction treats this ROLLBACK as a no-op.
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "vote \(vote.label) for an unknown transaction"))))
            if vote == .yes { effects.append(.send(participant, .rollback(id))) }
        }
        if recovering && transactions[id] == nil {
            // The log may yet say COMMIT: answering this YES with ROLLBACK now would undo a
            // committed transaction at one participant. It says YES again (an inquiry, or its
            // restart), and by then recovery has fed everything it found.
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "vote \(vote.label) during recovery"))))
            return
        }
        guard var tx = take(id) else { return unknown() }
        defer { store(tx) }
        guard let index = tx.index(of: participant) else { return unknown() }
        switch (tx.state, tx.branches[index].status) {
        case (.preparing, .awaitingVote(let sentAtUs)):
            tx.branches[index].status = .voted(vote)
            if tx.observe { tx.branches[index].observed = observed }
            effects.append(.emit(EngineEvent(atUs: nowUs, .voteReceived(id, participant: participant, vote: vote, latencyUs: nowUs &- sentAtUs))))
            if case .no(let refusal) = vote {
                abort(&tx, reason: "\(participant) voted NO: \(refusal)", cause: refusal.abortCause, refusal: refusal, nowUs: nowUs, into: &effects)
            } else if tx.branches.allSatisfy({ if case .voted = $0.status { return true } else { return false } }) {
                decide(&tx, nowUs: nowUs, into: &effects)
            }
        case (.aborting, .awaitingAck(let sentAtUs)):
            // The vote crossed our ROLLBACK. A YES means the participant holds state until the
            // ROLLBACK (already on its way) lands; NO or READ-ONLY means it holds nothing.
            effects.append(.emit(EngineEvent(atUs: nowUs, .voteReceived(id, participant: participant, vote: vote, latencyUs: nowUs &- sentAtUs))))
            if vote != .yes {
                tx.branches[index].status = .acknowledged
                finishIfAcknowledged(&tx, nowUs: nowUs, into: &effects)
            }
        case (.aborting, .acknowledged) where vote == .yes:
            // Our ROLLBACK overtook the PREPARE: the participant acknowledged it as "never
            // prepared", then prepared anyway. It holds locks now, so it must hear ROLLBACK again.
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "YES after its ROLLBACK was acknowledged; rolling back again"))))
            tx.branches[index].status = .awaitingAck(sentAtUs: nowUs)
            sendPhaseTwo(tx, index: index, nowUs: nowUs, into: &effects)
            if tx.timer == nil {
                setTimer(&tx, kind: .resend, afterUs: configuration.resendInitialMs * 1_000, into: &effects)
            }
        default:
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "vote \(vote.label) while \(tx.state)"))))
        }
    }

    /// Every branch voted YES or READ-ONLY.
    private mutating func decide(_ tx: inout CoordinatorTransaction, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        assert(tx.state == .preparing)
        cancelTimer(&tx, into: &effects)
        let yesVoters = Self.participants(of: tx.branches) { $0.status == .voted(.yes) }
        if yesVoters.isEmpty {
            // Read-only optimisation: nobody holds anything, so there is nothing to log or send.
            for index in tx.branches.indices { tx.branches[index].status = .acknowledged }
            transition(&tx, to: .committed, nowUs: nowUs, into: &effects)
            reportObservations(tx, into: &effects)
            effects.append(.decided(tx.id, .committed))
            releaseLocks(tx, nowUs: nowUs)
            finish(&tx, outcome: .committed, nowUs: nowUs, into: &effects)
            return
        }
        transition(&tx, to: .prepared, nowUs: nowUs, into: &effects)
        tx.decisionRequestedAtUs = nowUs
        if configuration.plantedBug == .commitBeforeDurable {
            effects.append(.appendDecision(.commit(transaction: tx.id, participants: yesVoters), forced: false))
            enterCommitting(&tx, position: LogPosition(segment: 0, offset: 0), nowUs: nowUs, into: &effects)
            return
        }
        effects.append(.appendDecision(.commit(transaction: tx.id, participants: yesVoters), forced: true))
        effects.append(.emit(EngineEvent(atUs: nowUs, .decisionLogging(tx.id))))
    }

    // MARK: - Phase two

    private mutating func decisionDurable(_ id: TransactionID, position: LogPosition, nowUs: UInt64,
                                          into effects: inout [CoordinatorEffect]) {
        guard var tx = take(id) else { return }
        defer { store(tx) }
        guard tx.state == .prepared else {
            assertionFailure("decision durable for \(id) in state \(tx.state)")
            return
        }
        enterCommitting(&tx, position: position, nowUs: nowUs, into: &effects)
    }

    /// The COMMIT record is durable: tell the client, send COMMIT, release the locks.
    private mutating func enterCommitting(_ tx: inout CoordinatorTransaction, position: LogPosition, nowUs: UInt64,
                                          into effects: inout [CoordinatorEffect]) {
        let id = tx.id
        tx.decisionPosition = position
        effects.append(.emit(EngineEvent(atUs: nowUs, .decisionDurable(id, position: position, latencyUs: nowUs &- tx.decisionRequestedAtUs))))
        transition(&tx, to: .committing, nowUs: nowUs, into: &effects)
        reportObservations(tx, into: &effects)
        effects.append(.decided(id, .committed))
        for index in tx.branches.indices {
            if tx.branches[index].status == .voted(.yes) {
                tx.branches[index].status = .awaitingAck(sentAtUs: nowUs)
                sendPhaseTwo(tx, index: index, nowUs: nowUs, into: &effects)
            } else {
                tx.branches[index].status = .acknowledged // READ-ONLY voters are done
            }
        }
        setTimer(&tx, kind: .resend, afterUs: configuration.resendInitialMs * 1_000, into: &effects)
        // Strict 2PL's release point is the decision. The COMMITs above are queued ahead of
        // any PREPARE a waiter sends once granted, and every participant also keeps its own
        // locks until it has applied the commit, so no one can read around it.
        releaseLocks(tx, nowUs: nowUs)
    }

    /// The participants of the branches that pass `test`, in branch order: one array built
    /// (a filter then a map built two, on every prepare and every decision).
    private static func participants(of branches: [BranchProgress], where test: (BranchProgress) -> Bool) -> [ParticipantID] {
        var participants: [ParticipantID] = []
        participants.reserveCapacity(branches.count)
        for progress in branches where test(progress) { participants.append(progress.branch.participant) }
        return participants
    }

    private func reportObservations(_ tx: CoordinatorTransaction, into effects: inout [CoordinatorEffect]) {
        guard tx.branches.contains(where: { !$0.observed.isEmpty }) else { return }
        var observed: [ParticipantID: [Observation]] = [:]
        for progress in tx.branches where !progress.observed.isEmpty { observed[progress.branch.participant] = progress.observed }
        effects.append(.observed(tx.id, observed))
    }

    private mutating func abort(_ tx: inout CoordinatorTransaction, reason: String, cause: AbortCause, refusal: Refusal? = nil,
                                nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        assert(tx.state == .active || tx.state == .preparing)
        // A client reads the cause and the refusal together: a participant's cause with no NO
        // to show for it, or a NO under another cause, would tell it two different stories.
        precondition((refusal?.abortCause).map { $0 == cause } ?? (cause != .participantRefused && cause != .participantBusy),
                     "abort cause \(cause) does not match the refusal \(refusal.map(\.description) ?? "none")")
        cancelTimer(&tx, into: &effects)
        cancelVictimTimer(&tx, into: &effects)
        let outcome = Outcome.aborted(reason: reason, cause: cause, refusal: refusal)
        tx.abortOutcome = outcome
        transition(&tx, to: .aborting, nowUs: nowUs, into: &effects)
        effects.append(.decided(tx.id, outcome))
        for index in tx.branches.indices {
            switch tx.branches[index].status {
            case .awaitingVote, .voted(.yes):
                // May hold prepared state (or will, once a PREPARE in flight lands).
                tx.branches[index].status = .awaitingAck(sentAtUs: nowUs)
                sendPhaseTwo(tx, index: index, nowUs: nowUs, into: &effects)
            case .idle, .voted, .awaitingAck, .acknowledged, .decidedAlone:
                tx.branches[index].status = .acknowledged
            }
        }
        if !finishIfAcknowledged(&tx, nowUs: nowUs, into: &effects) {
            setTimer(&tx, kind: .resend, afterUs: configuration.resendInitialMs * 1_000, into: &effects)
        }
        releaseLocks(tx, nowUs: nowUs)
        dissolveDeadlocks(leftBy: tx.id, nowUs: nowUs, into: &effects)
    }

    private mutating func acknowledged(_ id: TransactionID, participant: ParticipantID, nowUs: UInt64,
                                       into effects: inout [CoordinatorEffect]) {
        func unexpected() {
            effects.append(.emit(EngineEvent(atUs: nowUs, .lateMessage(id, participant: participant, what: "duplicate or unexpected acknowledgement"))))
        }
        guard var tx = take(id) else {
            // Not in flight: perhaps the answer to a question about a heuristic report.
            if !questionAcknowledged(id, participant: participant, nowUs: nowUs, into: &effects) { unexpected() }
            return
        }
        defer { store(tx) }
        guard let index = tx.index(of: participant), case .awaitingAck(let sentAtUs) = tx.branches[index].status,
              tx.state == .committing || tx.state == .aborting else { return unexpected() }
        tx.branches[index].status = .acknowledged
        effects.append(.emit(EngineEvent(atUs: nowUs, .acknowledged(id, participant: participant, latencyUs: nowUs &- sentAtUs))))
        finishIfAcknowledged(&tx, nowUs: nowUs, into: &effects)
    }

    @discardableResult
    mutating func finishIfAcknowledged(_ tx: inout CoordinatorTransaction, nowUs: UInt64,
                                               into effects: inout [CoordinatorEffect]) -> Bool {
        guard tx.state == .committing || tx.state == .aborting,
              tx.branches.allSatisfy({ $0.status.hasAnswered }) else { return false }
        cancelTimer(&tx, into: &effects)
        releaseLocks(tx, nowUs: nowUs) // a recovered transaction holds its locks until here
        let decision: LoggedDecision = tx.state == .committing ? .commit : .abort
        let outcome: Outcome = decision == .commit ? .committed : (tx.abortOutcome ?? .aborted(reason: "aborted", cause: .requested))
        // A linked transaction's end settles its case (or reopens it) before END can reach the
        // log: once END is durable its segment may be reclaimed, and with it the only trace of
        // the linked transaction's outcome.
        linkedEnded(tx.id, committed: decision == .commit, reason: tx.abortReason ?? "aborted", nowUs: nowUs, into: &effects)
        if decision == .commit { recentCommits.insert(tx.id, limit: configuration.recentCommitsRemembered) }
        if tx.branches.contains(where: { $0.status.decidedAlone.map { $0 != (decision == .commit) } ?? false }) {
            openCase(for: tx, decision: decision, nowUs: nowUs, into: &effects)
            if decision == .commit { effects.append(.appendDecision(.end(transaction: tx.id), forced: false)) }
            transition(&tx, to: .heuristic, nowUs: nowUs, into: &effects)
            effects.append(.finished(tx.id, outcome))
            return true
        }
        if tx.state == .committing {
            effects.append(.appendDecision(.end(transaction: tx.id), forced: false))
            transition(&tx, to: .committed, nowUs: nowUs, into: &effects)
            finish(&tx, outcome: .committed, nowUs: nowUs, into: &effects)
        } else {
            transition(&tx, to: .aborted, nowUs: nowUs, into: &effects)
            finish(&tx, outcome: tx.abortOutcome ?? .aborted(reason: "aborted", cause: .requested), nowUs: nowUs, into: &effects)
        }
        return true
    }

    private func finish(_ tx: inout CoordinatorTransaction, outcome: Outcome, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        assert(tx.state.isFinal)
        effects.append(.emit(EngineEvent(atUs: nowUs, .finished(tx.id, outcome: outcome, durationUs: nowUs &- tx.beganAtUs))))
        effects.append(.finished(tx.id, outcome))
    }

    private func sendPhaseTwo(_ tx: CoordinatorTransaction, index: Int, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        let participant = tx.branches[index].branch.participant
        let commit = tx.state == .committing
        effects.append(.send(participant, commit ? .commit(tx.id) : .rollback(tx.id)))
        effects.append(.emit(EngineEvent(atUs: nowUs, .phaseTwoSent(tx.id, participant: participant, commit: commit, attempt: tx.resendAttempt))))
    }

    // MARK: - Locks and deadlocks

    /// Asks for the plan's locks one at a time, in program order, as statements would: stops
    /// at the first that must wait (with a lock timeout set). With every lock held, and the
    /// commit requested, phase one starts.
    private mutating func acquireLocks(_ tx: inout CoordinatorTransaction, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        assert(tx.state == .active && tx.timer == nil)
        while tx.locksGranted < tx.lockPlan.count {
            let request = tx.lockPlan[tx.locksGranted]
            switch locks.acquire(tx.id, request, nowUs: nowUs, into: &lockChanges) {
            case .granted:
                tx.locksGranted += 1
            case .waiting(let blockers):
                effects.append(.emit(EngineEvent(atUs: nowUs, .lockWaiting(tx.id, resource: request.resource, mode: request.mode, blockers: blockers))))
                setTimer(&tx, kind: .lockTimeout, afterUs: configuration.lockTimeoutMs * 1_000, into: &effects)
                return
            case .refused(let reason):
                abort(&tx, reason: "lock refused: \(reason)", cause: .rejected, nowUs: nowUs, into: &effects)
                return
            }
        }
        if tx.commitRequested { prepare(&tx, nowUs: nowUs, into: &effects) }
    }

    private mutating func releaseLocks(_ tx: CoordinatorTransaction, nowUs: UInt64) {
        locks.releaseAll(tx.id, nowUs: nowUs, into: &lockChanges)
    }

    /// Works through what lock changes set off: a granted waiter goes on acquiring (and may
    /// prepare, or wait again); a closed cycle is a deadlock. Each step may set off more, so
    /// this is a work list rather than recursion.
    private mutating func settleLocks(nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        while !lockChanges.grants.isEmpty || !lockChanges.cycles.isEmpty {
            // The batch's buffers come from (and go back to) `settlingChanges`: a fresh pair per
            // batch allocated again at every input that granted a lock.
            var batch = LockManager.Changes()
            swap(&batch, &settlingChanges)
            swap(&batch, &lockChanges)
            defer {
                batch.grants.removeAll(keepingCapacity: true)
                batch.cycles.removeAll(keepingCapacity: true)
                swap(&batch, &settlingChanges)
            }
            for grant in batch.grants {
                guard var tx = take(grant.transaction) else {
                    assertionFailure("a grant for \(grant.transaction), which is not in flight")
                    continue
                }
                defer { store(tx) }
                guard tx.isWaitingForLock, tx.lockPlan[tx.locksGranted].resource == grant.resource else {
                    assertionFailure("a grant for \(grant.transaction), which does not wait for \(grant.resource)")
                    continue
                }
                effects.append(.emit(EngineEvent(atUs: nowUs, .lockGranted(tx.id, resource: grant.resource, mode: grant.mode, waitedUs: grant.waitedUs))))
                cancelTimer(&tx, into: &effects) // its lock timeout
                tx.locksGranted += 1
                acquireLocks(&tx, nowUs: nowUs, into: &effects)
            }
            for cycle in batch.cycles {
                deadlockFound(cycle, byFullCheck: false, nowUs: nowUs, into: &effects)
            }
        }
    }

    /// A cycle in the wait-for graph: weigh its members, pick the victim, and abort it now or
    /// when the grace period ends.
    private mutating func deadlockFound(_ cycle: WaitForGraph.Cycle, byFullCheck: Bool, nowUs: UInt64,
                                        into effects: inout [CoordinatorEffect]) {
        // Still real? A cycle reported earlier in this input may have been broken since.
        let members = cycle.members
        guard members.allSatisfy({ transactions[$0]?.isWaitingForLock == true }),
              zip(members, members.dropFirst() + members.prefix(1)).allSatisfy({ locks.graph.hasEdge(from: $0, to: $1) }) else { return }
        let memberSet = Set(members)
        if unresolvedDeadlocks.contains(where: { Set($0.cycle) == memberSet }) { return } // known, in its grace period
        // Only a member that holds what the member before it waits for can break the cycle by
        // leaving. A member that merely queues between them (its edge in is "queued behind
        // me", not "I hold it") would leave the cycle re-formed around the gap: aborting it
        // throws work away and then the next deadlock report names the same cycle.
        let candidates = members.indices.compactMap { index -> VictimCandidate? in
            let id = members[index]
            let previous = members[(index + members.count - 1) % members.count]
            guard let wanted = locks.resource(waitedOnBy: previous), locks.mode(of: id, on: wanted) != nil else { return nil }
            let tx = transactions[id]!
            return VictimCandidate(transaction: id, waitsFor: locks.resource(waitedOnBy: id), locksHeld: locks.heldCount(by: id),
                                   operations: tx.operationCount, ageUs: nowUs &- tx.beganAtUs,
                                   participantsPrepared: tx.participantsPrepared)
        }
        assert(!candidates.isEmpty, "a cycle of waits with no holder in it")
        let choice = configuration.victimPolicy.choose(from: candidates)
        let graceUs = configuration.deadlockGraceMs * 1_000
        var deadlock = Deadlock(
            id: nextDeadlockID, detectedAtUs: nowUs, cycle: members, candidates: candidates,
            policy: configuration.victimPolicy, victim: choice?.victim,
            reason: choice?.reason ?? "manual policy: waiting for the operator (lock timeout \(configuration.lockTimeoutMs)ms)",
            abortAtUs: choice == nil ? nil : nowUs + graceUs, foundByFullCheck: byFullCheck, resolution: nil)
        nextDeadlockID += 1
        effects.append(.emit(EngineEvent(atUs: nowUs, .deadlockDetected(deadlock))))
        guard let victim = choice?.victim, var tx = take(victim) else {
            deadlockHistory.record(deadlock)
            unresolvedDeadlocks.append(deadlock)
            return
        }
        if graceUs == 0 {
            deadlock.resolution = .victimAborted(victim, atUs: nowUs)
            deadlockHistory.record(deadlock)
            effects.append(.emit(EngineEvent(atUs: nowUs, .deadlockVictimAborted(deadlockID: deadlock.id, victim: victim, byOperator: false))))
            abort(&tx, reason: Self.victimReason(deadlock), cause: .deadlock, nowUs: nowUs, into: &effects)
        } else {
            deadlockHistory.record(deadlock)
            unresolvedDeadlocks.append(deadlock)
            // Already the victim of a standing deadlock: that timer fires first and settles both.
            if tx.victimTimer == nil {
                let timer = TimerID(transaction: victim, kind: .deadlockVictim, generation: nextTimerGeneration)
                nextTimerGeneration &+= 1
                tx.victimTimer = timer
                effects.append(.setTimer(timer, afterUs: graceUs))
            }
        }
        store(tx)
    }

    static func victimReason(_ deadlock: Deadlock) -> String {
        "deadlock victim (\(deadlock.reason)) in \(deadlock.description)"
    }

    /// The operator aborts a transaction: a deadlock member of their choice, or anything not
    /// yet decided.
    private mutating func forceAbort(_ id: TransactionID, note: String, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        guard var tx = take(id) else {
            effects.append(.emit(EngineEvent(atUs: nowUs, .operatorRefused(id, reason: "not in flight"))))
            return
        }
        defer { store(tx) }
        guard tx.state == .active || tx.state == .preparing else {
            effects.append(.emit(EngineEvent(atUs: nowUs, .operatorRefused(id, reason: "already \(tx.state)"))))
            return
        }
        let overridden = unresolvedDeadlocks.filter { $0.cycle.contains(id) }
        unresolvedDeadlocks.removeAll { $0.cycle.contains(id) }
        for deadlock in overridden {
            deadlockHistory.resolve(deadlock.id, .operatorAborted(id, atUs: nowUs))
            effects.append(.emit(EngineEvent(atUs: nowUs, .deadlockVictimAborted(deadlockID: deadlock.id, victim: id, byOperator: true))))
            // The operator overrode the engine's pick, which no longer needs aborting for this one.
            if let chosen = deadlock.victim, chosen != id { releaseVictimTimerIfUnneeded(chosen, into: &effects) }
        }
        abort(&tx, reason: "aborted by the operator: \(note)", cause: .operatorAbort, nowUs: nowUs, into: &effects)
    }

    /// Plants a bookkeeping bug for tests: the engine forgets the deadlocks it is waiting on,
    /// so only the periodic full check can find them again.
    mutating func forgetUnresolvedDeadlocksForTesting() {
        unresolvedDeadlocks.removeAll()
    }

    /// `tx` left every cycle it was in another way (a lock timeout, an abort).
    private mutating func dissolveDeadlocks(leftBy id: TransactionID, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        guard !unresolvedDeadlocks.isEmpty else { return }
        let dissolved = unresolvedDeadlocks.filter { $0.cycle.contains(id) }
        unresolvedDeadlocks.removeAll { $0.cycle.contains(id) }
        for deadlock in dissolved {
            deadlockHistory.resolve(deadlock.id, .dissolved(by: id, atUs: nowUs))
            if let chosen = deadlock.victim, chosen != id { releaseVictimTimerIfUnneeded(chosen, into: &effects) }
        }
    }

    /// Cancels `victim`'s grace-period timer unless another standing deadlock still names it.
    private mutating func releaseVictimTimerIfUnneeded(_ victim: TransactionID, into effects: inout [CoordinatorEffect]) {
        guard !unresolvedDeadlocks.contains(where: { $0.victim == victim }), var chosen = take(victim) else { return }
        cancelVictimTimer(&chosen, into: &effects)
        store(chosen)
    }

    // MARK: - Timers

    private mutating func timerFired(_ timer: TimerID, nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        guard var tx = take(timer.transaction) else { return }
        defer { store(tx) }
        if timer.kind == .deadlockVictim {
            guard tx.victimTimer == timer else { return } // stale: the deadlock was broken already
            tx.victimTimer = nil
            // Every standing deadlock that chose this transaction ends with its abort.
            let chosenIn = unresolvedDeadlocks.filter { $0.victim == tx.id }
            guard let first = chosenIn.first, tx.state == .active else { return }
            unresolvedDeadlocks.removeAll { $0.victim == tx.id }
            for deadlock in chosenIn {
                deadlockHistory.resolve(deadlock.id, .victimAborted(tx.id, atUs: nowUs))
                effects.append(.emit(EngineEvent(atUs: nowUs, .deadlockVictimAborted(deadlockID: deadlock.id, victim: tx.id, byOperator: false))))
            }
            abort(&tx, reason: Self.victimReason(first), cause: .deadlock, nowUs: nowUs, into: &effects)
            return
        }
        guard tx.timer == timer else { return } // stale: state moved on
        tx.timer = nil
        switch (timer.kind, tx.state) {
        case (.lockTimeout, .active):
            let resource = locks.resource(waitedOnBy: tx.id)
            assert(resource != nil, "a lock timeout outlived its wait")
            let holders = resource.flatMap { locks.table[$0]?.holders.map(\.transaction.description) } ?? []
            effects.append(.emit(EngineEvent(atUs: nowUs, .lockTimedOut(tx.id, resource: resource, waitedUs: configuration.lockTimeoutMs * 1_000))))
            abort(&tx, reason: "lock wait timed out after \(configuration.lockTimeoutMs)ms for \(resource.map(\.description) ?? "a lock")"
                  + (holders.isEmpty ? "" : " held by \(holders.joined(separator: ", "))"), cause: .lockTimeout, nowUs: nowUs, into: &effects)
        case (.prepareDeadline, .preparing):
            let silent = tx.branches.filter { if case .awaitingVote = $0.status { return true } else { return false } }
                .map(\.branch.participant)
            effects.append(.emit(EngineEvent(atUs: nowUs, .prepareTimedOut(tx.id, silent: silent))))
            abort(&tx, reason: "prepare timed out after \(configuration.prepareTimeoutMs)ms waiting for "
                  + silent.map(\.name).joined(separator: ", "), cause: .prepareTimeout, nowUs: nowUs, into: &effects)
        case (.resend, .committing), (.resend, .aborting):
            tx.resendAttempt += 1
            var silent: [ParticipantID] = []
            for index in tx.branches.indices where configuration.plantedBug != .skipResend {
                if case .awaitingAck = tx.branches[index].status {
                    silent.append(tx.branches[index].branch.participant)
                    sendPhaseTwo(tx, index: index, nowUs: nowUs, into: &effects)
                }
            }
            assert(!silent.isEmpty || configuration.plantedBug == .skipResend, "a resend timer outlived its last acknowledgement")
            let delayUs = resendDelayUs(attempt: tx.resendAttempt)
            effects.append(.emit(EngineEvent(atUs: nowUs, .retryScheduled(tx.id, participants: silent, attempt: tx.resendAttempt, delayUs: delayUs))))
            setTimer(&tx, kind: .resend, afterUs: delayUs, into: &effects)
        default:
            assertionFailure("timer \(timer) fired in state \(tx.state)")
        }
    }

    /// Exponential backoff with up to 25% jitter, capped, so that many transactions stuck on
    /// one dead participant do not retry in lockstep.
    private mutating func resendDelayUs(attempt: UInt32) -> UInt64 {
        let baseMs = min(configuration.resendMaxMs, configuration.resendInitialMs << UInt64(min(attempt, 20)))
        let baseUs = baseMs * 1_000
        return baseUs + random.next() % (baseUs / 4 + 1)
    }

    private mutating func setTimer(_ tx: inout CoordinatorTransaction, kind: TimerID.Kind, afterUs: UInt64,
                                   into effects: inout [CoordinatorEffect]) {
        cancelTimer(&tx, into: &effects)
        let timer = TimerID(transaction: tx.id, kind: kind, generation: nextTimerGeneration)
        nextTimerGeneration &+= 1
        tx.timer = timer
        effects.append(.setTimer(timer, afterUs: afterUs))
    }

    private func cancelVictimTimer(_ tx: inout CoordinatorTransaction, into effects: inout [CoordinatorEffect]) {
        if let timer = tx.victimTimer {
            effects.append(.cancelTimer(timer))
            tx.victimTimer = nil
        }
    }

    private func cancelTimer(_ tx: inout CoordinatorTransaction, into effects: inout [CoordinatorEffect]) {
        if let timer = tx.timer {
            effects.append(.cancelTimer(timer))
            tx.timer = nil
        }
    }

    // MARK: - Recovery

    private mutating func recover(_ id: TransactionID, participants: [ParticipantID], locks held: [ResourceID], commit: Bool,
                                  nowUs: UInt64, into effects: inout [CoordinatorEffect]) {
        precondition(!participants.isEmpty, "recovery of \(id) names no participant")
        guard transactions[id] == nil else { return } // already being driven
        // Its prepared branches still hold these accounts at the participants; hold them here
        // too, so that a new transaction queues for them instead of being refused there, and
        // the console shows who holds them. Two prepared branches never write one account (the
        // participants' own locks saw to that), so every one of these is granted.
        for resource in held where configuration.plantedBug != .noLocks {
            let result = locks.acquire(id, LockRequest(resource: resource, mode: .exclusive), nowUs: nowUs, into: &lockChanges)
            precondition(result == .granted, "recovered \(id) conflicts on \(resource)")
        }
        var tx = CoordinatorTransaction(
            id: id, state: commit ? .committing : .aborting,
            branches: participants.map { BranchProgress(branch: Branch(participant: $0, operations: []), status: .awaitingAck(sentAtUs: nowUs)) },
            beganAtUs: nowUs)
        tx.recovered = true
        if !commit { tx.abortOutcome = .aborted(reason: "in doubt at recovery: no COMMIT record (presumed abort)", cause: .presumedAbort) }
        let outcome: Outcome = tx.abortOutcome ?? .committed
        effects.append(.emit(EngineEvent(atUs: nowUs, .recovered(id, decision: outcome, participants: participants))))
        effects.append(.decided(id, outcome))
        for index in tx.branches.indices { sendPhaseTwo(tx, index: index, nowUs: nowUs, into: &effects) }
        setTimer(&tx, kind: .resend, afterUs: configuration.resendInitialMs * 1_000, into: &effects)
        store(tx)
    }

    // MARK: - Bookkeeping

    func transition(_ tx: inout CoordinatorTransaction, to next: TransactionState, nowUs: UInt64,
                            into effects: inout [CoordinatorEffect]) {
        assert(Self.allowed(from: tx.state, to: next), "illegal transition \(tx.state) -> \(next)")
        effects.append(.emit(EngineEvent(atUs: nowUs, .stateChanged(tx.id, from: tx.state, to: next))))
        tx.state = next
    }

    /// The edges of the diagram at the top of this file.
    public static func allowed(from: TransactionState, to: TransactionState) -> Bool {
        switch (from, to) {
        case (.active, .preparing), (.active, .aborting),
             (.preparing, .prepared), (.preparing, .aborting), (.preparing, .committed),
             (.prepared, .committing),
             (.committing, .committed), (.aborting, .aborted),
             (.committing, .heuristic), (.aborting, .heuristic):
            return true
        default:
            return false
        }
    }

    /// Takes a transaction out of the table to change it; `store` puts it back. A copy left in
    /// the table would make every change to the copy's arrays (its branches) copy them first.
    mutating func take(_ id: TransactionID) -> CoordinatorTransaction? {
        transactions.removeValue(forKey: id)
    }

    /// Keeps a live transaction, or forgets a finished one.
    mutating func store(_ tx: CoordinatorTransaction) {
        if tx.state.isFinal {
            transactions[tx.id] = nil
        } else {
            assert(tx.state != .committing || tx.decisionPosition != nil || tx.recovered, "committing without a durable decision")
            assert([.preparing, .committing, .aborting].contains(tx.state) == (tx.timer != nil) || tx.isWaitingForLock,
                   "timer bookkeeping out of step in \(tx.state)")
            // (Waiting, or granted with the grant not yet settled at the end of this input.)
            assert(!tx.isWaitingForLock || (tx.timer?.kind == .lockTimeout
                                            && (locks.resource(waitedOnBy: tx.id) != nil || lockChanges.grants.contains { $0.transaction == tx.id })),
                   "a waiting transaction without its lock timeout")
            transactions[tx.id] = tx
        }
    }
}
