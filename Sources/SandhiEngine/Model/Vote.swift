/// A participant's answer to PREPARE.
public enum Vote: Hashable, Sendable, Codable {
    /// Prepared durably: the write-set is persisted and the touched accounts are locked.
    case yes
    /// Nothing to commit here (only reads): the participant is done and skips phase two.
    case readOnly
    /// Cannot commit, and why (insufficient funds, an account locked...).
    case no(Refusal)

    public var isNo: Bool {
        if case .no = self { return true }
        return false
    }

    public var refusal: Refusal? {
        if case .no(let refusal) = self { return refusal }
        return nil
    }
}

/// How a transaction ended, as told to the client that submitted it.
public enum Outcome: Hashable, Sendable, Codable {
    case committed
    /// `reason` is for people; `cause` is for programs (a client retrying deadlock victims, a
    /// benchmark counting aborts by kind); `refusal` is the participant's NO when the cause is
    /// `participantRefused` or `participantBusy`, and nil otherwise. Boxed: an outcome travels
    /// inline in events and effects, and most of them are commits.
    indirect case aborted(reason: String, cause: AbortCause, refusal: Refusal? = nil)

    public var isCommitted: Bool { self == .committed }

    public var abortCause: AbortCause? {
        if case .aborted(_, let cause, _) = self { return cause }
        return nil
    }

    /// The participant's NO that aborted the transaction, if one did.
    public var refusal: Refusal? {
        if case .aborted(_, _, let refusal) = self { return refusal }
        return nil
    }
}

/// Why a transaction aborted.
public enum AbortCause: String, Hashable, Sendable, Codable, CaseIterable {
    /// The client asked.
    case requested
    /// An operator aborted it (`forceAbort`), e.g. as the deadlock victim of their choice.
    case operatorAbort = "operator"
    /// Refused before it began: invalid, or the coordinator or a lock queue was full.
    case rejected
    /// A participant voted NO about the transfer or the data (insufficient funds, unknown
    /// account, ...): `Refusal.isTransient` is false.
    case participantRefused = "participant-refused"
    /// A participant voted NO because of what else is in flight there (another prepared branch
    /// still held the account, its outcome not landed yet; a row locked in its database):
    /// `Refusal.isTransient` is true, and it is worth running again.
    case participantBusy = "participant-busy"
    /// A participant did not vote before the prepare deadline.
    case prepareTimeout = "prepare-timeout"
    /// A lock request waited longer than the lock timeout.
    case lockTimeout = "lock-timeout"
    /// Chosen as the victim of a deadlock.
    case deadlock
    /// In doubt at recovery with no COMMIT record: presumed abort.
    case presumedAbort = "presumed-abort"

    /// Worth running again as it is: it lost a race for locks, not an argument with the data.
    public var isTransient: Bool { self == .deadlock || self == .lockTimeout || self == .participantBusy }
}

/// Where a record sits in the decision log: segment number and byte offset within the segment.
public struct LogPosition: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var segment: UInt64
    public var offset: UInt64

    public init(segment: UInt64, offset: UInt64) {
        self.segment = segment
        self.offset = offset
    }

    public var description: String { "segment \(segment) @\(offset)" }
    public static func < (lhs: LogPosition, rhs: LogPosition) -> Bool {
        (lhs.segment, lhs.offset) < (rhs.segment, rhs.offset)
    }
}
