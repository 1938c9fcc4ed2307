import DequeModule
import SandhiEngine

/// What the console remembers of each recent transaction, built from the event stream: its
/// participants' votes, its protocol timeline (for the detail view's message diagram) and how
/// it ended. Bounded: the last `capacity` transactions, `maxEvents` events each; older ones
/// are forgotten first (a console that ran for a week must not grow).
public struct TransactionHistory: Sendable {
    /// How a participant stands in one transaction, as a vote glyph shows it.
    public enum Mark: Hashable, Sendable {
        case notAsked, pending, yes, no, readOnly, timedOut, heuristic, acknowledged
    }

    public struct Entry: Sendable {
        public var transaction: TransactionID
        public var participants: [ParticipantID]
        public var marks: [ParticipantID: Mark] = [:]
        public var events: [EngineEvent] = []
        public var eventsDropped = 0
        public var beganAtUs: UInt64
        public var finishedAtUs: UInt64?
        public var outcome: Outcome?
        public var heuristic = false
        /// What the transfer moves (from its `began` event; unknown for a recovered one).
        public var amount: Paise?
        public var lastState: TransactionState = .active
    }

    public let capacity: Int
    public let maxEvents: Int
    public private(set) var entries: [TransactionID: Entry] = [:]
    /// Oldest first.
    public private(set) var order = Deque<TransactionID>()

    public init(capacity: Int = 2_000, maxEvents: Int = 64) {
        precondition(capacity > 0 && maxEvents > 0)
        self.capacity = capacity
        self.maxEvents = maxEvents
    }

    public subscript(tx: TransactionID) -> Entry? { entries[tx] }

    /// Finished transactions, newest first.
    public var finished: [Entry] {
        order.reversed().compactMap { entries[$0] }.filter { $0.outcome != nil || $0.heuristic }
    }

    public mutating func record(_ event: EngineEvent) {
        guard let tx = event.transaction else { return }
        if case .deadlockDetected = event.kind { return } // about many transactions; the waits screen has it
        if entries[tx] == nil {
            var participants: [ParticipantID] = []
            if case .began(_, let named, _) = event.kind { participants = named }
            if case .recovered(_, _, let named) = event.kind { participants = named }
            entries[tx] = Entry(transaction: tx, participants: participants, beganAtUs: event.atUs)
            order.append(tx)
            if order.count > capacity { entries[order.removeFirst()] = nil }
        }
        // In place: a copy taken out of the dictionary and written back would copy the
        // entry's event list on every append (the dictionary still holds the original).
        Self.apply(event, to: &entries[tx]!, maxEvents: maxEvents)
    }

    private static func apply(_ event: EngineEvent, to entry: inout Entry, maxEvents: Int) {
        if entry.events.count < maxEvents { entry.events.append(event) } else { entry.eventsDropped += 1 }
        switch event.kind {
        case .began(_, _, let amount): entry.amount = amount
        case .prepareSent(_, let participant): entry.marks[participant] = .pending
        case .voteReceived(_, let participant, let vote, _):
            switch vote {
            case .yes: entry.marks[participant] = .yes
            case .readOnly: entry.marks[participant] = .readOnly
            case .no: entry.marks[participant] = .no
            }
        case .prepareTimedOut(_, let silent): for participant in silent { entry.marks[participant] = .timedOut }
        case .acknowledged(_, let participant, _):
            if entry.marks[participant] != .no { entry.marks[participant] = .acknowledged }
        case .heuristicReported(_, let participant, _, _): entry.marks[participant] = .heuristic
        case .heuristicCaseOpened: entry.heuristic = true
        case .stateChanged(_, _, let to):
            entry.lastState = to
            if to == .heuristic { entry.heuristic = true; entry.finishedAtUs = event.atUs }
        case .finished(_, let outcome, _):
            entry.outcome = outcome
            entry.finishedAtUs = event.atUs
        case .rejected(_, let reason):
            entry.outcome = .aborted(reason: reason, cause: .rejected)
            entry.finishedAtUs = event.atUs
        default:
            break
        }
    }
}
