import DequeModule

/// How the coordinator picks which member of a deadlock to abort.
public enum VictimPolicy: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Fewest locks held plus operations: the least work thrown away (the default).
    case leastWork = "least-work"
    /// The most recently begun: the oldest transactions keep their place.
    case youngest
    /// Fewest participants already voted YES: the least phase-one work undone.
    case fewestPrepared = "fewest-prepared"
    /// Nobody automatically: the operator picks a victim (the lock timeout is the backstop).
    case manual

    public var description: String { rawValue }

    /// The victim among `candidates` and why, or nil under `.manual`. Ties go to the youngest
    /// (the highest id), so the choice is a pure function of the figures.
    public func choose(from candidates: [VictimCandidate]) -> (victim: TransactionID, reason: String)? {
        precondition(!candidates.isEmpty, "a deadlock has members")
        func youngestFirst(_ a: VictimCandidate, _ b: VictimCandidate) -> Bool {
            a.ageUs != b.ageUs ? a.ageUs < b.ageUs : a.transaction > b.transaction
        }
        switch self {
        case .manual:
            return nil
        case .youngest:
            let pick = candidates.min(by: youngestFirst)!
            return (pick.transaction, "youngest: began \(formatMicros(pick.ageUs)) ago")
        case .leastWork:
            let pick = candidates.min { $0.work != $1.work ? $0.work < $1.work : youngestFirst($0, $1) }!
            return (pick.transaction, "least work: \(pick.locksHeld) locks held + \(pick.operations) operations")
        case .fewestPrepared:
            let pick = candidates.min {
                $0.participantsPrepared != $1.participantsPrepared ? $0.participantsPrepared < $1.participantsPrepared : youngestFirst($0, $1)
            }!
            return (pick.transaction, "fewest prepared: \(pick.participantsPrepared) participants voted YES")
        }
    }
}

/// One member of a deadlock, with the figures every policy weighs.
public struct VictimCandidate: Hashable, Sendable, Codable {
    public var transaction: TransactionID
    /// The resource it waits for (the edge that puts it in the cycle).
    public var waitsFor: ResourceID?
    public var locksHeld: Int
    public var operations: Int
    public var ageUs: UInt64
    public var participantsPrepared: Int

    public init(transaction: TransactionID, waitsFor: ResourceID?, locksHeld: Int, operations: Int, ageUs: UInt64,
                participantsPrepared: Int) {
        self.transaction = transaction
        self.waitsFor = waitsFor
        self.locksHeld = locksHeld
        self.operations = operations
        self.ageUs = ageUs
        self.participantsPrepared = participantsPrepared
    }

    public var work: Int { locksHeld + operations }
}

/// A cycle in the wait-for graph, what the engine chose to do about it, and how it ended.
public struct Deadlock: Hashable, Sendable, Codable, Identifiable {
    public enum Resolution: Hashable, Sendable, Codable {
        /// The chosen victim was aborted by the engine (at once, or when the grace period ran out).
        case victimAborted(TransactionID, atUs: UInt64)
        /// The operator aborted a member of their choice before the engine did.
        case operatorAborted(TransactionID, atUs: UInt64)
        /// A member left the cycle another way (its lock wait timed out, it was aborted).
        case dissolved(by: TransactionID, atUs: UInt64)
    }

    public var id: UInt64
    public var detectedAtUs: UInt64
    /// In wait order: `cycle[i]` waits for `cycle[i+1]`, the last for the first.
    public var cycle: [TransactionID]
    /// The members whose abort breaks the cycle: those holding a lock the member before them
    /// waits for. (A member that only queues behind another for the same lock is in the cycle
    /// too, but aborting it would not free anything.)
    public var candidates: [VictimCandidate]
    public var policy: VictimPolicy
    /// The engine's pick; nil under the manual policy.
    public var victim: TransactionID?
    public var reason: String
    /// When the engine aborts the victim unless the operator acts first.
    public var abortAtUs: UInt64?
    /// How the periodic full check, rather than the edge that closed the cycle, found it.
    public var foundByFullCheck: Bool
    public var resolution: Resolution?

    public var description: String {
        (cycle + cycle.prefix(1)).map(\.description).joined(separator: " -> ")
    }
}

/// The last `limit` deadlocks, newest last: what the console's Waits screen and
/// `sandhi check --deadlocks` show.
public struct DeadlockHistory: Sendable {
    public let limit: Int
    public private(set) var entries: Deque<Deadlock> = []
    /// Every deadlock ever recorded, including those the window no longer holds.
    public private(set) var totalCount = 0

    public init(limit: Int) {
        precondition(limit > 0)
        self.limit = limit
    }

    mutating func record(_ deadlock: Deadlock) {
        if entries.count == limit { entries.removeFirst() }
        entries.append(deadlock)
        totalCount += 1
    }

    mutating func resolve(_ id: UInt64, _ resolution: Deadlock.Resolution) {
        guard let index = entries.lastIndex(where: { $0.id == id }) else { return }
        entries[index].resolution = resolution
    }
}
