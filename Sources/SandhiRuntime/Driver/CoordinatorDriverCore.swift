import SandhiEngine

/// What the driver decides around the engine's `Coordinator`, without its threads, its lock,
/// its clock or its files: which client waits on which transaction and when it is answered,
/// and when the coordinator stops for good. `CoordinatorDriver` runs it under its lock on real
/// threads; the simulator runs the same core on virtual time, so what clients are told, and
/// when the coordinator halts, are the code that ships under every seed's faults.
///
///     ┌─────────┐  fatal effect / reconciliation record not durable / halt   ┌────────┐
///     │ running │ ──────────────────────────────────────────────────────────▶ │ halted │
///     └─────────┘      (every waiting client answered `halted`, once)         └────────┘
///
/// Transitions:
/// - running: `handle` feeds an input to the coordinator and turns its effects into actions,
///   in order; `decided` and `finished` answer the client waiting on that transaction (as it
///   asked: at the decision, or once every participant has acknowledged).
/// - running → halted: the engine's `fatal` effect (a decision's durability is unknown), a
///   reconciliation record the driver could not make durable (`recordFailed`: what the
///   coordinator meant to do after it, a FORGET, may depend on it), or `halt` (a participant's
///   failed fsync, a crash, a shutdown). Every waiter is answered `halted`; recovery on the next
///   start settles what was in flight.
/// - halted: inputs are ignored; the first reason stays.
///
/// A client is a number its driver gave it (the driver keeps what it stands for: a
/// continuation in production, a submission's slot in the simulator). Not generic: a generic
/// core is not specialised across modules, and its every action went through generic
/// metadata and value witnesses, a tenth of the coordinator's time.
public struct CoordinatorDriverCore {
    public typealias Client = Int

    /// A client waiting for a transaction's outcome.
    struct Waiter {
        var client: Client
        var answerWhen: CoordinatorDriver.AnswerWhen
        var submittedAtUs: UInt64
        var observed: [ParticipantID: [Observation]] = [:]
    }

    /// What the driver must do, in order, for one input.
    public enum Action {
        case send(ParticipantID, ParticipantMessage)
        /// Append to the decision log; when `forced`, feed back `decisionDurable` once synced.
        case appendDecision(DecisionRecord, forced: Bool)
        case setTimer(TimerID, afterUs: UInt64)
        case cancelTimer(TimerID)
        case emit(EngineEvent)
        /// Make durable before any later action; if that fails, call `recordFailed`.
        case recordReconciliation(ReconciliationRecord)
        case answer(Client, Result<TransferResult, CoordinatorError>)
        /// The coordinator stopped, for this reason (the answers came before).
        case halt(String)
    }

    public private(set) var coordinator: Coordinator
    /// Why the coordinator stopped; nil while it runs.
    public private(set) var halted: String?
    private var waiters: [TransactionID: Waiter] = [:]
    /// The coordinator's effects for one input: kept to reuse its storage.
    private var effects: [CoordinatorEffect] = []

    public init(coordinator: Coordinator) {
        self.coordinator = coordinator
    }

    /// Clients waiting for an answer.
    public var waitingCount: Int { waiters.count }

    /// `client` waits for the outcome of `tx` (submitted at `nowUs`, for its latency).
    public mutating func wait(for tx: TransactionID, client: Client, answerWhen: CoordinatorDriver.AnswerWhen, nowUs: UInt64) {
        precondition(waiters[tx] == nil, "two clients wait on \(tx)")
        waiters[tx] = Waiter(client: client, answerWhen: answerWhen, submittedAtUs: nowUs)
    }

    /// Takes back the client waiting on `tx`, unanswered (for a transaction that never ran).
    public mutating func stopWaiting(for tx: TransactionID) -> Client? {
        waiters.removeValue(forKey: tx)?.client
    }

    /// Feeds `input` to the coordinator and appends what the driver must do about it.
    public mutating func handle(_ input: CoordinatorInput, nowUs: UInt64, into actions: inout [Action]) {
        guard halted == nil else { return }
        precondition(effects.isEmpty, "effects left over from an earlier input")
        coordinator.handle(input, nowUs: nowUs, into: &effects)
        // Taken in order from the back of the reversed buffer: each effect is moved out whole
        // (no copy of its payload to retain and release), and the buffer ends empty with its
        // capacity. Reversed through a buffer pointer, which swaps bits: `Array.reverse()`
        // copies each effect in and out.
        effects.withUnsafeMutableBufferPointer { $0.reverse() }
        while let effect = effects.popLast() {
            switch consume effect {
            case .send(let participant, let message):
                actions.append(.send(participant, message))
            case .appendDecision(let record, let forced):
                actions.append(.appendDecision(record, forced: forced))
            case .setTimer(let timer, let afterUs):
                actions.append(.setTimer(timer, afterUs: afterUs))
            case .cancelTimer(let timer):
                actions.append(.cancelTimer(timer))
            case .emit(let event):
                actions.append(.emit(event))
            case .recordReconciliation(let record):
                actions.append(.recordReconciliation(record))
            case .observed(let tx, let observed):
                waiters[tx]?.observed = observed
            case .decided(let tx, let outcome):
                if let waiter = waiters[tx], waiter.answerWhen == .decided {
                    waiters[tx] = nil
                    actions.append(.answer(waiter.client, .success(Self.result(tx, outcome, waiter, nowUs: nowUs))))
                }
            case .finished(let tx, let outcome):
                if let waiter = waiters.removeValue(forKey: tx) {
                    actions.append(.answer(waiter.client, .success(Self.result(tx, outcome, waiter, nowUs: nowUs))))
                }
            case .fatal(let reason):
                // Nothing after a fatal effect is acted on: the decision it concerns may or may
                // not be durable, and only recovery from the log may say which.
                effects.removeAll(keepingCapacity: true)
                halt(reason, into: &actions)
                return
            }
        }
    }

    /// Stops the coordinator: every waiting client is answered `halted`. The first reason
    /// stays; a second halt answers nobody new and adds no `halt` action.
    public mutating func halt(_ reason: String, into actions: inout [Action]) {
        let first = halted == nil
        if first { halted = reason }
        let answer = CoordinatorError.halted(halted!)
        for tx in waiters.keys.sorted() { actions.append(.answer(waiters[tx]!.client, .failure(answer))) }
        waiters.removeAll()
        if first { actions.append(.halt(reason)) }
    }

    /// A reconciliation record did not reach the disk: the coordinator stops there. Returns
    /// what to do instead of `unperformed` (the actions after the record, in order): they are
    /// dropped, but a client one of them answered hears `halted` instead (it was already
    /// taken off the waiters), as does every client still waiting.
    public mutating func recordFailed(_ reason: String, unperformed: [Action]) -> [Action] {
        precondition(halted == nil, "a record acted on after the coordinator halted")
        var instead: [Action] = []
        for case .answer(let client, _) in unperformed { instead.append(.answer(client, .failure(.halted(reason)))) }
        halt(reason, into: &instead)
        return instead
    }

    private static func result(_ tx: TransactionID, _ outcome: Outcome, _ waiter: Waiter, nowUs: UInt64) -> TransferResult {
        TransferResult(transaction: tx, outcome: outcome, latencyUs: nowUs &- waiter.submittedAtUs, observed: waiter.observed)
    }
}
