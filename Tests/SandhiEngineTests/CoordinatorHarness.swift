// Test helpers: fixtures, readable views of coordinator effects, and a harness that drives a
// `Coordinator` with a virtual clock and remembers which timers are live.
import Testing
import SandhiEngine

// MARK: - Fixtures

enum Fixture {
    static let hdfc = ParticipantID(validated: "hdfc")
    static let icici = ParticipantID(validated: "icici")
    static let axis = ParticipantID(validated: "axis")
    static let sbi = ParticipantID(validated: "sbi")
    static let regulator = ParticipantID(validated: "regulator")

    static func account(_ name: String) -> AccountID { AccountID(validated: name) }

    static func tx(_ sequence: UInt64, epoch: UInt32 = 1) -> TransactionID {
        TransactionID(epoch: epoch, sequence: sequence)
    }

    /// A branch that writes (debits `amount` from `savings`).
    static func debit(_ participant: ParticipantID, _ amount: Int64 = 10_000, account: String = "savings") -> Branch {
        Branch(participant: participant, operations: [.debit(account: Self.account(account), amount: Paise(amount))])
    }

    /// A branch that writes (credits `amount` to `current`).
    static func credit(_ participant: ParticipantID, _ amount: Int64 = 10_000, account: String = "current") -> Branch {
        Branch(participant: participant, operations: [.credit(account: Self.account(account), amount: Paise(amount))])
    }

    /// `participant`'s NO about the data: its `account` cannot pay ₹100.
    static func insufficientFunds(_ participant: ParticipantID, account: String = "savings") -> Refusal {
        .insufficientFunds(ResourceID(participant: participant, account: Self.account(account)), balance: Paise(0), debit: Paise(10_000))
    }

    /// A NO vote about the data (insufficient funds at `participant`): final, not worth retrying.
    static func no(_ participant: ParticipantID) -> Vote { .no(insufficientFunds(participant)) }

    /// A branch that only reads, so its participant votes READ-ONLY.
    static func read(_ participant: ParticipantID, account: String = "savings") -> Branch {
        Branch(participant: participant, operations: [.read(account: Self.account(account))])
    }
}

// MARK: - Readable effects

struct Sent: Hashable, CustomStringConvertible {
    var participant: ParticipantID
    var message: ParticipantMessage

    var description: String { "\(message) -> \(participant)" }
}

struct Appended: Hashable {
    var record: DecisionRecord
    var forced: Bool
}

struct TimerSet: Hashable {
    var timer: TimerID
    var afterUs: UInt64
}

struct Decision: Hashable {
    var transaction: TransactionID
    var outcome: Outcome
}

extension CoordinatorEffect {
    var sent: Sent? {
        if case .send(let participant, let message) = self { return Sent(participant: participant, message: message) }
        return nil
    }

    var appended: Appended? {
        if case .appendDecision(let record, let forced) = self { return Appended(record: record, forced: forced) }
        return nil
    }

    var timerSet: TimerSet? {
        if case .setTimer(let timer, let afterUs) = self { return TimerSet(timer: timer, afterUs: afterUs) }
        return nil
    }

    var timerCancelled: TimerID? {
        if case .cancelTimer(let timer) = self { return timer }
        return nil
    }

    var event: EngineEvent? {
        if case .emit(let event) = self { return event }
        return nil
    }

    var decided: Decision? {
        if case .decided(let tx, let outcome) = self { return Decision(transaction: tx, outcome: outcome) }
        return nil
    }

    var finished: Decision? {
        if case .finished(let tx, let outcome) = self { return Decision(transaction: tx, outcome: outcome) }
        return nil
    }

    var fatalMessage: String? {
        if case .fatal(let message) = self { return message }
        return nil
    }
}

extension Array where Element == CoordinatorEffect {
    var sends: [Sent] { compactMap(\.sent) }
    var appends: [Appended] { compactMap(\.appended) }
    var timersSet: [TimerSet] { compactMap(\.timerSet) }
    var timersCancelled: [TimerID] { compactMap(\.timerCancelled) }
    var events: [EngineEvent.Kind] { compactMap(\.event).map(\.kind) }
    var decisions: [Decision] { compactMap(\.decided) }
    var finishes: [Decision] { compactMap(\.finished) }
    var fatals: [String] { compactMap(\.fatalMessage) }

    /// Participants sent PREPARE, in order.
    var prepared: [ParticipantID] {
        sends.filter { if case .prepare = $0.message { return true } else { return false } }.map(\.participant)
    }

    /// Participants sent COMMIT, in order.
    var committed: [ParticipantID] {
        sends.filter { if case .commit = $0.message { return true } else { return false } }.map(\.participant)
    }

    /// Participants sent ROLLBACK, in order.
    var rolledBack: [ParticipantID] {
        sends.filter { if case .rollback = $0.message { return true } else { return false } }.map(\.participant)
    }

    var stateChanges: [(from: TransactionState, to: TransactionState)] {
        events.compactMap { if case .stateChanged(_, let from, let to) = $0 { return (from, to) } else { return nil } }
    }

    var lateMessages: [String] {
        events.compactMap { if case .lateMessage(_, _, let what) = $0 { return what } else { return nil } }
    }
}

extension Outcome {
    var abortReason: String? {
        if case .aborted(let reason, _, _) = self { return reason }
        return nil
    }
}

// MARK: - Harness

/// Wraps a coordinator: feeds it inputs at a virtual time, records every effect, and keeps the
/// timers it asked for (live until fired or cancelled) so that tests can fire them.
struct CoordinatorHarness {
    private(set) var coordinator: Coordinator
    private(set) var nowUs: UInt64 = 1_000_000
    /// Every effect so far, in order.
    private(set) var history: [CoordinatorEffect] = []
    /// Timers set and neither fired nor cancelled, with the virtual time they are due.
    private(set) var liveTimers: [TimerID: UInt64] = [:]
    private var nextLogOffset: UInt64 = 0

    init(_ configure: (inout Coordinator.Configuration) -> Void = { _ in }) {
        var configuration = Coordinator.Configuration()
        configure(&configuration)
        coordinator = Coordinator(configuration: configuration)
    }

    /// Drives `coordinator` as made (a restarted one, say, with its epoch and reconciliation queue).
    init(coordinator: Coordinator) {
        self.coordinator = coordinator
    }

    @discardableResult
    mutating func handle(_ input: CoordinatorInput) -> [CoordinatorEffect] {
        let effects = coordinator.handle(input, nowUs: nowUs)
        for effect in effects {
            if let set = effect.timerSet { liveTimers[set.timer] = nowUs + set.afterUs }
            if let cancelled = effect.timerCancelled { liveTimers[cancelled] = nil }
        }
        history += effects
        return effects
    }

    mutating func advance(us: UInt64) { nowUs += us }

    /// The one live timer of `tx`, if any.
    func liveTimer(of tx: TransactionID) -> TimerID? {
        let timers = liveTimers.keys.filter { $0.transaction == tx }
        precondition(timers.count <= 1, "more than one live timer for \(tx): \(timers)")
        return timers.first
    }

    /// Advances the clock to `timer`'s due time (if it is live and due later) and fires it.
    @discardableResult
    mutating func fire(_ timer: TimerID) -> [CoordinatorEffect] {
        if let due = liveTimers.removeValue(forKey: timer), due > nowUs { nowUs = due }
        return handle(.timerFired(timer))
    }

    // Shorthands for the common inputs.

    @discardableResult
    mutating func begin(_ tx: TransactionID, _ branches: [Branch]) -> [CoordinatorEffect] {
        handle(.begin(tx, branches: branches))
    }

    @discardableResult
    mutating func requestCommit(_ tx: TransactionID) -> [CoordinatorEffect] { handle(.requestCommit(tx)) }

    @discardableResult
    mutating func requestAbort(_ tx: TransactionID, reason: String = "client gave up") -> [CoordinatorEffect] {
        handle(.requestAbort(tx, reason: reason))
    }

    @discardableResult
    mutating func vote(_ tx: TransactionID, _ participant: ParticipantID, _ vote: Vote) -> [CoordinatorEffect] {
        handle(.voted(tx, participant: participant, vote: vote))
    }

    @discardableResult
    mutating func durable(_ tx: TransactionID) -> [CoordinatorEffect] {
        nextLogOffset += 64
        return handle(.decisionDurable(tx, position: LogPosition(segment: 1, offset: nextLogOffset)))
    }

    @discardableResult
    mutating func ack(_ tx: TransactionID, _ participant: ParticipantID) -> [CoordinatorEffect] {
        handle(.acknowledged(tx, participant: participant))
    }

    /// Begins `tx` and requests commit: the transaction is `preparing`.
    mutating func startPreparing(_ tx: TransactionID, _ branches: [Branch]) {
        begin(tx, branches)
        requestCommit(tx)
    }

    /// Begins `tx`, prepares it, and delivers `votes` in order.
    mutating func prepare(_ tx: TransactionID, _ branches: [Branch], votes: [(ParticipantID, Vote)]) {
        startPreparing(tx, branches)
        for (participant, vote) in votes { self.vote(tx, participant, vote) }
    }

    // Views of the coordinator.

    func state(_ tx: TransactionID) -> TransactionState? { coordinator.state(of: tx) }

    func transaction(_ tx: TransactionID) -> Coordinator.CoordinatorTransaction? { coordinator.transactions[tx] }

    func status(_ tx: TransactionID, _ participant: ParticipantID) -> Coordinator.BranchStatus? {
        coordinator.transactions[tx]?.branches.first { $0.branch.participant == participant }?.status
    }
}
