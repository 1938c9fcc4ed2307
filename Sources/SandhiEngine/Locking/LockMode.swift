/// How concurrent transactions are kept apart. Strict two-phase locking is the one built; the
/// optimistic (`occ`), Percolator and TrueTime styles of DESIGN.md are to come, and a
/// configuration naming one of them is refused rather than silently run as `2pl`.
public enum ConcurrencyMode: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Strict two-phase locking: shared and exclusive locks held until the decision.
    case twoPhaseLocking = "2pl"

    public var description: String { rawValue }
}

/// How a transaction holds a resource: many readers, or one writer.
public enum LockMode: UInt8, Hashable, Sendable, Codable, CustomStringConvertible {
    case shared
    case exclusive

    /// Whether a holder in `self` and a holder in `other` may coexist.
    public func isCompatible(with other: LockMode) -> Bool {
        self == .shared && other == .shared
    }

    /// Whether holding `self` already gives what `requested` asks for.
    public func covers(_ requested: LockMode) -> Bool {
        self == .exclusive || requested == .shared
    }

    public var description: String { self == .shared ? "S" : "X" }
}

/// One lock a transaction asks for.
public struct LockRequest: Hashable, Sendable {
    public var resource: ResourceID
    public var mode: LockMode

    public init(resource: ResourceID, mode: LockMode) {
        self.resource = resource
        self.mode = mode
    }

    /// The locks a set of branches needs, in program order: X for every account a debit or
    /// credit touches, S for every account only read. An account read and later written is
    /// asked for S then X (an upgrade), as a transaction executing statements would.
    public static func plan(for branches: [Branch]) -> [LockRequest] {
        var plan: [LockRequest] = []
        // A transfer asks for a handful of locks: a linear search beats hashing. An audit asks
        // for thousands: index them.
        let operationCount = branches.reduce(0) { $0 + $1.operations.count }
        var position: [ResourceID: Int]? = operationCount > 16 ? [:] : nil
        plan.reserveCapacity(operationCount)
        for branch in branches {
            for operation in branch.operations {
                guard let account = operation.account else { continue }
                let resource = ResourceID(participant: branch.participant, account: account)
                let mode: LockMode = operation.isWrite ? .exclusive : .shared
                let earlier = position != nil ? position![resource] : plan.lastIndex { $0.resource == resource }
                // Read earlier and written now: the upgrade is a request of its own, here.
                if let earlier, plan[earlier].mode.covers(mode) { continue }
                position?[resource] = plan.count
                plan.append(LockRequest(resource: resource, mode: mode))
            }
        }
        return plan
    }
}
